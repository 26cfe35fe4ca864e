/* Pre-norm transformer encoder layer over [N, T, C] token sequences. */
#include "models/transformer.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nn/gemm.h"
#include "nn/ops.h"

static int bind(mc_tensor_map *w, const char *prefix, const char *name, int ndim, int64_t d0, int64_t d1,
                const float **out, mc_err *e) {
    char full[512];
    if (snprintf(full, sizeof full, "%s%s", prefix, name) >= (int)sizeof full)
        return mc_fail(e, MC_E_ARG, "tensor name too long: %s%s", prefix, name);
    int64_t shape[2] = {d0, d1};
    return mc_tensor_map_f32(w, full, ndim, shape, out, e);
}

const mc_transformer_names mc_transformer_names_mobileclip = {{
    "pre_norm_mha.0.weight", "pre_norm_mha.0.bias", "pre_norm_mha.1.qkv_proj.weight", "pre_norm_mha.1.qkv_proj.bias",
    "pre_norm_mha.1.out_proj.weight", "pre_norm_mha.1.out_proj.bias", "pre_norm_ffn.0.weight", "pre_norm_ffn.0.bias",
    "pre_norm_ffn.1.weight", "pre_norm_ffn.1.bias", "pre_norm_ffn.4.weight", "pre_norm_ffn.4.bias"}};

const mc_transformer_names mc_transformer_names_openclip = {{
    "ln_1.weight", "ln_1.bias", "attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight",
    "attn.out_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight",
    "mlp.c_proj.bias"}};

int mc_transformer_layer_bind_as(mc_transformer_layer *l, mc_tensor_map *w, const char *prefix,
                                 const mc_transformer_names *names, int dim, int heads, int ffn_dim,
                                 mc_activation act, mc_err *e) {
    if (dim <= 0 || heads <= 0 || dim % heads)
        return mc_fail(e, MC_E_MODEL, "%s: width %d is not divisible into %d heads", prefix, dim, heads);
    l->dim = dim;
    l->heads = heads;
    l->act = act;
    l->ln_eps = 1e-5f;
    const char *const *n = names->name;
    int F = ffn_dim;
    if (F <= 0) {
        /* FFN width from fc1's first dimension (4C in every MobileCLIP model, but read it). */
        char name[512];
        snprintf(name, sizeof name, "%s%s", prefix, n[8]);
        const mc_tensor *fc1 = mc_tensor_map_find(w, name);
        if (!fc1) return mc_fail(e, MC_E_MODEL, "%s: missing tensor '%s'", w->source ? w->source : "checkpoint", name);
        if (fc1->ndim != 2 || fc1->shape[0] <= 0 || fc1->shape[0] > (1 << 20)) {
            char s[128];
            return mc_fail(e, MC_E_MODEL, "%s: tensor '%s' has shape %s, expected [F, %d]",
                           w->source ? w->source : "checkpoint", name, mc_shape_str(fc1->shape, fc1->ndim, s, sizeof s),
                           dim);
        }
        F = (int)fc1->shape[0];
    }
    l->ffn_dim = F;
    int nd[12];
    int64_t sh[12][2];
    mc_transformer_layer_shapes(dim, F, nd, sh);
    const float **dst[12] = {&l->ln1_w, &l->ln1_b, &l->qkv_w, &l->qkv_b, &l->out_w, &l->out_b,
                             &l->ln2_w, &l->ln2_b, &l->fc1_w, &l->fc1_b, &l->fc2_w, &l->fc2_b};
    for (int i = 0; i < 12; i++) {
        int r = bind(w, prefix, n[i], nd[i], sh[i][0], sh[i][1], dst[i], e);
        if (r) return r;
    }
    return 0;
}

void mc_transformer_layer_shapes(int C, int F, int ndim[12], int64_t shape[12][2]) {
    const int64_t s[12][2] = {{C, 0},     {C, 0}, {3 * (int64_t)C, C}, {3 * (int64_t)C, 0}, {C, C}, {C, 0},
                              {C, 0},     {C, 0}, {F, C},              {F, 0},              {C, F}, {C, 0}};
    for (int i = 0; i < 12; i++) {
        shape[i][0] = s[i][0];
        shape[i][1] = s[i][1];
        ndim[i] = s[i][1] ? 2 : 1;
    }
}

int mc_transformer_layer_bind(mc_transformer_layer *l, mc_tensor_map *w, const char *prefix, int dim, int heads,
                              mc_err *e) {
    return mc_transformer_layer_bind_dims(l, w, prefix, dim, heads, 0, e);
}

int mc_transformer_layer_bind_dims(mc_transformer_layer *l, mc_tensor_map *w, const char *prefix, int dim, int heads,
                                   int ffn_dim, mc_err *e) {
    return mc_transformer_layer_bind_as(l, w, prefix, &mc_transformer_names_mobileclip, dim, heads, ffn_dim,
                                        MC_ACT_GELU, e);
}

/* scratch layout: h [M, C] (normed input, then attention output) | big [M, max(3C, F)]
 * (qkv, then the FFN hidden). */
size_t mc_transformer_layer_scratch(const mc_transformer_layer *l, int N, int T) {
    size_t M = (size_t)N * T, C = (size_t)l->dim, F = (size_t)l->ffn_dim;
    size_t big = 3 * C > F ? 3 * C : F, rows = (size_t)N * (2 * C + F); /* _rows: a | hn | f */
    return M * C + (M * big > rows ? M * big : rows);
}

/* h = attention over x's normed rows, before the output projection (qkv: [M, 3C] scratch) */
static int attention_branch(const mc_transformer_layer *l, const float *x, int N, int T, int causal, float *h,
                            float *qkv) {
    int C = l->dim, H = l->heads, D = C / H, M = N * T;
    mc_layernorm_forward(h, x, l->ln1_w, l->ln1_b, M, C, l->ln_eps);
    mc_linear_forward(qkv, h, l->qkv_w, l->qkv_b, M, C, 3 * C);
    /* head_dim^-0.5 evaluated in double and rounded once, as the reference's Python scalar */
    return mc_attention_forward(h, qkv, N, T, H, D, (float)(1.0 / sqrt((double)D)), causal);
}

/* x[M, C] += out_proj(a) then x += FFN(LN2(x)); h [M, C] and f [M, F] are scratch */
static void residual_tail(const mc_transformer_layer *l, float *x, const float *a, int M, float *h, float *f) {
    int C = l->dim, F = l->ffn_dim;
    mc_linear_accumulate(x, a, l->out_w, l->out_b, M, C, C);
    mc_layernorm_forward(h, x, l->ln2_w, l->ln2_b, M, C, l->ln_eps);
    if (l->act == MC_ACT_QUICKGELU) {
        mc_linear_forward(f, h, l->fc1_w, l->fc1_b, M, C, F);
        mc_quickgelu_forward(f, f, (size_t)M * F);
    } else {
        mc_linear_gelu_forward(f, h, l->fc1_w, l->fc1_b, M, C, F);
    }
    mc_linear_accumulate(x, f, l->fc2_w, l->fc2_b, M, F, C);
}

int mc_transformer_layer_forward(const mc_transformer_layer *l, float *x, int N, int T, int causal, float *scratch) {
    int C = l->dim, M = N * T;
    float *h = scratch, *qkv = h + (size_t)M * C;
    int r = attention_branch(l, x, N, T, causal, h, qkv);
    if (r) return r;
    residual_tail(l, x, h, M, h, qkv); /* h is read by the projection before LN2 rewrites it */
    return 0;
}

int mc_transformer_layer_forward_rows(const mc_transformer_layer *l, const float *x, int N, int T, int causal,
                                      const int *rows, float *out, float *scratch) {
    int C = l->dim, M = N * T;
    float *h = scratch, *qkv = h + (size_t)M * C;
    int r = attention_branch(l, x, N, T, causal, h, qkv);
    if (r) return r;
    /* qkv is free now: a [N, C] | hn [N, C] | f [N, F] */
    float *a = qkv, *hn = a + (size_t)N * C, *f = hn + (size_t)N * C;
    for (int n = 0; n < N; n++) {
        size_t src = ((size_t)n * T + rows[n]) * C;
        memcpy(a + (size_t)n * C, h + src, sizeof(float) * C);
        memcpy(out + (size_t)n * C, x + src, sizeof(float) * C);
    }
    residual_tail(l, out, a, N, hn, f);
    return 0;
}

/* head_dim^-0.5 evaluated in double and rounded once, as the reference's Python scalar */
static float attn_scale(int D) { return (float)(1.0 / sqrt((double)D)); }

int mc_transformer_layer_forward_masked(const mc_transformer_layer *l, float *x, int N, int T, int causal,
                                        const uint8_t *mask, float *scratch) {
    if (!mask) return mc_transformer_layer_forward(l, x, N, T, causal, scratch);
    int C = l->dim, H = l->heads, D = C / H, M = N * T;
    float *h = scratch, *qkv = h + (size_t)M * C;
    mc_layernorm_forward(h, x, l->ln1_w, l->ln1_b, M, C, l->ln_eps);
    mc_linear_forward(qkv, h, l->qkv_w, l->qkv_b, M, C, 3 * C);
    mc_attention_args a = {.q = qkv, .k = qkv + C, .v = qkv + 2 * C, .q_ld = 3 * (size_t)C, .kv_ld = 3 * (size_t)C,
                           .q_batch = 3 * (size_t)T * C, .kv_batch = 3 * (size_t)T * C, .Tq = T, .Tk = T, .H = H,
                           .D = D, .scale = attn_scale(D), .causal_off = causal ? 0 : INT_MAX, .mask = mask};
    int r = mc_attention_general(h, &a, N);
    if (r) return r;
    residual_tail(l, x, h, M, h, qkv);
    return 0;
}

int mc_transformer_layer_step(const mc_transformer_layer *l, float *x, int R, int pos, float *kc, float *vc, int Tmax,
                              float *scratch) {
    int C = l->dim, H = l->heads, D = C / H;
    float *h = scratch, *qkv = h + (size_t)R * C;
    mc_layernorm_forward(h, x, l->ln1_w, l->ln1_b, R, C, l->ln_eps);
    mc_linear_forward(qkv, h, l->qkv_w, l->qkv_b, R, C, 3 * C);
    for (int r = 0; r < R; r++) {
        size_t at = ((size_t)r * Tmax + pos) * C;
        memcpy(kc + at, qkv + (size_t)r * 3 * C + C, sizeof(float) * C);
        memcpy(vc + at, qkv + (size_t)r * 3 * C + 2 * C, sizeof(float) * C);
    }
    mc_attention_args a = {.q = qkv, .k = kc, .v = vc, .q_ld = 3 * (size_t)C, .kv_ld = (size_t)C,
                           .q_batch = 3 * (size_t)C, .kv_batch = (size_t)Tmax * C, .Tq = 1, .Tk = pos + 1,
                           .H = H, .D = D, .scale = attn_scale(D), .causal_off = INT_MAX};
    int r = mc_attention_general(h, &a, R);
    if (r) return r;
    residual_tail(l, x, h, R, h, qkv);
    return 0;
}

void mc_transformer_cross_kv(const mc_transformer_layer *l, const float *ctx, int M, float *kv, float *scratch) {
    int C = l->dim;
    mc_layernorm_forward(scratch, ctx, l->ln1kv_w, l->ln1kv_b, M, C, l->ln_eps);
    /* rows C..3C of in_proj_weight are the key then the value projection */
    mc_linear_forward(kv, scratch, l->qkv_w + (size_t)C * C, l->qkv_b + C, M, C, 2 * C);
}

int mc_transformer_cross_forward(const mc_transformer_layer *l, float *x, int N, int T, const float *kv, int Tk,
                                 const int *kv_index, float *scratch) {
    int C = l->dim, H = l->heads, D = C / H, M = N * T;
    float *h = scratch, *q = h + (size_t)M * C;
    mc_layernorm_forward(h, x, l->ln1_w, l->ln1_b, M, C, l->ln_eps);
    mc_linear_forward(q, h, l->qkv_w, l->qkv_b, M, C, C);
    mc_attention_args a = {.q = q, .k = kv, .v = kv + C, .q_ld = (size_t)C, .kv_ld = 2 * (size_t)C,
                           .q_batch = (size_t)T * C, .kv_batch = (size_t)Tk * 2 * C, .kv_index = kv_index,
                           .Tq = T, .Tk = Tk, .H = H, .D = D, .scale = attn_scale(D), .causal_off = INT_MAX};
    int r = mc_attention_general(h, &a, N);
    if (r) return r;
    residual_tail(l, x, h, M, h, q);
    return 0;
}

size_t mc_transformer_stack_scratch(const mc_transformer_layer *layers, int n, int N, int T) {
    size_t m = 0;
    for (int i = 0; i < n; i++) {
        size_t s = mc_transformer_layer_scratch(&layers[i], N, T);
        if (s > m) m = s;
    }
    return m;
}

int mc_transformer_stack_forward(const mc_transformer_layer *layers, int n, float *x, int N, int T, int causal,
                                 float *scratch, const mc_trace *trace, const char *trace_fmt) {
    return mc_transformer_stack_forward_masked(layers, n, x, N, T, causal, NULL, scratch, trace, trace_fmt);
}

int mc_transformer_stack_forward_masked(const mc_transformer_layer *layers, int n, float *x, int N, int T, int causal,
                                        const uint8_t *mask, float *scratch, const mc_trace *trace,
                                        const char *trace_fmt) {
    int64_t shape[3] = {N, T, n > 0 ? layers[0].dim : 0};
    for (int i = 0; i < n; i++) {
        int r = mc_transformer_layer_forward_masked(&layers[i], x, N, T, causal, mask, scratch);
        if (r) return r;
        if (trace && trace->fn) {
            char name[64];
            snprintf(name, sizeof name, trace_fmt, i);
            mc_trace_emit(trace, name, x, 3, shape);
        }
    }
    return 0;
}
