/* MobileCLIP ViT image tower; see vit.h. */
#include "models/vit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/reparam.h"
#include "nn/ops.h"

#define PREFIX "image_encoder.model."
#define MAX_LAYERS 4096

static const char *src_name(const mc_tensor_map *w) { return w->source ? w->source : "checkpoint"; }

int mc_vit_detect(const mc_tensor_map *w) {
    return mc_tensor_map_find(w, PREFIX "patch_emb.0.block.conv.weight") != NULL &&
           mc_tensor_map_has_prefix(w, PREFIX "transformer.0.");
}

static const mc_tensor *need(const mc_tensor_map *w, const char *name, int ndim, mc_err *e) {
    const mc_tensor *t = mc_tensor_map_find(w, name);
    if (!t) {
        mc_fail(e, MC_E_MODEL, "%s: missing tensor '%s'", src_name(w), name);
        return NULL;
    }
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] >= 1 && t->shape[i] <= (1 << 24);
    if (!ok) {
        char s[128];
        mc_fail(e, MC_E_MODEL, "%s: tensor '%s' has unexpected shape %s (%d dimensions expected)", src_name(w),
                name, mc_shape_str(t->shape, t->ndim, s, sizeof s), ndim);
        return NULL;
    }
    return t;
}

void mc_vit_free(mc_vit *m) {
    if (!m) return;
    free(m->layers);
    free(m->bn_coef);
    free(m->rep_w[0]);
    free(m);
}

static int bind_bn(mc_tensor_map *w, int i, int S, const float **out4, mc_err *e) {
    static const char *parts[4] = {"weight", "bias", "running_mean", "running_var"};
    int64_t shape[1] = {S};
    for (int j = 0; j < 4; j++) {
        char name[128];
        snprintf(name, sizeof name, PREFIX "patch_emb.%d.block.norm.%s", i, parts[j]);
        int r = mc_tensor_map_f32(w, name, 1, shape, &out4[j], e);
        if (r) return r;
    }
    return 0;
}

static int init(mc_vit *m, mc_tensor_map *w, mc_err *e) {
    const mc_tensor *t0, *t1, *t2, *t;
    if (!(t0 = need(w, PREFIX "patch_emb.0.block.conv.weight", 4, e)) ||
        !(t1 = need(w, PREFIX "patch_emb.1.block.conv.weight", 4, e)) ||
        !(t2 = need(w, PREFIX "patch_emb.2.block.conv.weight", 4, e)))
        return MC_E_MODEL;
    int S = m->stem_dim = (int)t0->shape[0];
    int C = m->width = (int)t2->shape[0];
    m->k[0] = (int)t0->shape[2];
    m->k[1] = (int)t1->shape[2];
    m->k[2] = (int)t2->shape[2];
    if (!(t = need(w, PREFIX "pos_embed.pos_embed.pos_embed", 4, e))) return MC_E_MODEL;
    m->n_pos = (int)t->shape[2];
    if (!(t = need(w, PREFIX "classifier.proj", 2, e))) return MC_E_MODEL;
    m->proj_dim = (int)t->shape[1];
    m->heads = C / 64;
    if (m->heads < 1 || C % 64)
        return mc_fail(e, MC_E_MODEL, "%s: ViT width %d is not a multiple of the 64-wide heads", src_name(w), C);

    int r;
    const int64_t s_w0[4] = {S, 3, m->k[0], m->k[0]}, s_w1[4] = {S, S, m->k[1], m->k[1]},
                  s_w2[4] = {C, S, m->k[2], m->k[2]}, s_c[1] = {C}, s_cls[3] = {1, 1, C},
                  s_pos[4] = {1, 1, m->n_pos, C}, s_proj[2] = {C, m->proj_dim};
    if ((r = mc_tensor_map_f32(w, PREFIX "patch_emb.0.block.conv.weight", 4, s_w0, &m->stem_w[0], e)) ||
        (r = bind_bn(w, 0, S, m->bn[0], e)) ||
        (r = mc_tensor_map_f32(w, PREFIX "patch_emb.1.block.conv.weight", 4, s_w1, &m->stem_w[1], e)) ||
        (r = bind_bn(w, 1, S, m->bn[1], e)) ||
        (r = mc_tensor_map_f32(w, PREFIX "patch_emb.2.block.conv.weight", 4, s_w2, &m->stem_w[2], e)) ||
        (r = mc_tensor_map_f32(w, PREFIX "patch_emb.2.block.conv.bias", 1, s_c, &m->stem_b2, e)) ||
        (r = mc_tensor_map_f32(w, PREFIX "pos_embed.pos_embed.pos_embed", 4, s_pos, &m->pos, e)) ||
        (r = mc_tensor_map_f32(w, PREFIX "post_transformer_norm.weight", 1, s_c, &m->post_ln_w, e)) ||
        (r = mc_tensor_map_f32(w, PREFIX "post_transformer_norm.bias", 1, s_c, &m->post_ln_b, e)) ||
        (r = mc_tensor_map_f32(w, PREFIX "classifier.proj", 2, s_proj, &m->proj, e)))
        return r;
    /* the reference also has a cls-less variant (mean pooling), but no MobileCLIP model uses it:
     * a checkpoint without the token is treated as broken rather than silently re-pooled */
    if ((r = mc_tensor_map_f32(w, PREFIX "cls_token", 3, s_cls, &m->cls, e))) return r;

    int n = 0;
    char prefix[128];
    for (;; n++) {
        snprintf(prefix, sizeof prefix, PREFIX "transformer.%d.", n);
        if (!mc_tensor_map_has_prefix(w, prefix)) break;
        if (n == MAX_LAYERS) return mc_fail(e, MC_E_MODEL, "%s: more than %d ViT layers", src_name(w), MAX_LAYERS);
    }
    if (n == 0) return mc_fail(e, MC_E_MODEL, "%s: no tensors under '" PREFIX "transformer.0.'", src_name(w));
    m->depth = n;
    m->layers = calloc((size_t)n, sizeof *m->layers);
    if (!m->layers) return mc_fail(e, MC_E_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        snprintf(prefix, sizeof prefix, PREFIX "transformer.%d.", i);
        if ((r = mc_transformer_layer_bind(&m->layers[i], w, prefix, C, m->heads, e))) return r;
    }
    const char *extra = mc_tensor_map_first_unused(w, "image_encoder.");
    if (extra) return mc_fail(e, MC_E_MODEL, "%s: unexpected tensor '%s' in the ViT image encoder", src_name(w), extra);

    m->bn_coef = malloc(sizeof(float) * 4 * (size_t)S);
    if (!m->bn_coef) return mc_fail(e, MC_E_NOMEM, "out of memory");
    for (int i = 0; i < 2; i++)
        mc_batchnorm_eval_coeffs(m->bn_coef + (size_t)(2 * i) * S, m->bn_coef + (size_t)(2 * i + 1) * S, m->bn[i][0],
                                 m->bn[i][1], m->bn[i][2], m->bn[i][3], 1e-5f, S);
    return 0;
}

int mc_vit_init(mc_vit **out, mc_tensor_map *w, mc_err *e) {
    *out = NULL;
    mc_vit *m = calloc(1, sizeof *m);
    if (!m) return mc_fail(e, MC_E_NOMEM, "out of memory");
    int r = init(m, w, e);
    if (r) {
        if (e && !e->code) mc_fail(e, r, "ViT init failed");
        mc_vit_free(m);
        return r;
    }
    *out = m;
    return 0;
}

int mc_vit_reparameterize(mc_vit *m, mc_err *e) {
    if (m->reparameterized) return 0;
    int S = m->stem_dim;
    size_t n0 = (size_t)S * 3 * m->k[0] * m->k[0], n1 = (size_t)S * S * m->k[1] * m->k[1];
    float *p = calloc(n0 + n1 + 2 * (size_t)S, sizeof(float));
    if (!p) return mc_fail(e, MC_E_NOMEM, "out of memory reparameterizing the ViT stem");
    m->rep_w[0] = p;
    m->rep_w[1] = p + n0;
    m->rep_b[0] = p + n0 + n1;
    m->rep_b[1] = m->rep_b[0] + S;
    int cin[2] = {3, S};
    for (int i = 0; i < 2; i++) {
        mc_bn_params bn = {m->bn[i][0], m->bn[i][1], m->bn[i][2], m->bn[i][3], 1e-5f};
        mc_reparam_add_conv_bn(m->rep_w[i], m->rep_b[i], S, cin[i], m->k[i], m->k[i], m->stem_w[i], NULL, m->k[i],
                               m->k[i], &bn);
    }
    m->reparameterized = 1;
    return 0;
}

/* Positional embeddings for P tokens: the stored [n_pos, C] table, or (P != n_pos) its
 * linear resampling along the sequence with half-pixel centres, clamped at the ends, which
 * is what the reference's bilinear F.interpolate of [1, 1, n_pos, C] to (P, C) computes. */
static void resample_pos(float *dst, const float *pos, int n_pos, int P, int C) {
    double scale = (double)n_pos / P;
    for (int i = 0; i < P; i++) {
        double s = (i + 0.5) * scale - 0.5;
        if (s < 0) s = 0;
        int i0 = (int)s;
        if (i0 > n_pos - 1) i0 = n_pos - 1;
        int i1 = i0 + 1 < n_pos ? i0 + 1 : n_pos - 1;
        float l1 = (float)(s - i0), l0 = 1.f - l1;
        for (int c = 0; c < C; c++) dst[(size_t)i * C + c] = l0 * pos[(size_t)i0 * C + c] + l1 * pos[(size_t)i1 * C + c];
    }
}

int mc_vit_forward(mc_vit *m, const float *images, int B, int R, int reparam, float *embed, const mc_trace *trace,
                   mc_err *e) {
    if (B < 1) return mc_fail(e, MC_E_ARG, "ViT: batch size %d", B);
    if (reparam && !m->reparameterized)
        return mc_fail(e, MC_E_ARG, "ViT: reparameterized forward requested before reparameterization");
    int S = m->stem_dim, C = m->width, Pd = m->proj_dim;
    mc_conv2d_shape cs[3];
    int h[4];
    h[0] = R;
    for (int i = 0; i < 3; i++) {
        int k = m->k[i], pad = (k - 1) / 2; /* the reference's default padding */
        cs[i] = (mc_conv2d_shape){i ? S : 3, i == 2 ? C : S, k, k, k, pad, pad, 1};
        h[i + 1] = h[i] + 2 * pad >= k ? mc_conv_out(h[i], k, k, pad) : 0;
    }
    if (h[3] < 1) return mc_fail(e, MC_E_ARG, "ViT: input resolution %d is too small for the %d-pixel patch stem", R,
                                  m->k[0] * m->k[1] * m->k[2]);
    if (R > 16384) return mc_fail(e, MC_E_ARG, "ViT: input resolution %d is larger than 16384", R);
    int P = h[3] * h[3], T = P + 1;
    size_t s1 = (size_t)B * S * h[1] * h[1], s2 = (size_t)B * S * h[2] * h[2], s3 = (size_t)B * C * P;
    size_t M = (size_t)B * T, scratch = 0;
    for (int i = 0; i < m->depth; i++) {
        size_t s = mc_transformer_layer_scratch(&m->layers[i], B, T);
        if (s > scratch) scratch = s;
    }
    /* buf: the stem activations, later the layer scratch and the pooled tokens;
     * x: the token stream [B, T, C], followed by the resampled positions when P != n_pos */
    size_t stem = s1 + s2 + s3, body = scratch + (size_t)B * C, npos = P != m->n_pos ? (size_t)P * C : 0;
    float *buf = malloc(sizeof(float) * (stem > body ? stem : body));
    float *x = malloc(sizeof(float) * (M * C + npos));
    if (!buf || !x) {
        free(buf);
        free(x);
        return mc_fail(e, MC_E_NOMEM, "ViT: out of memory for %d images of %dx%d", B, R, R);
    }

    /* stem: [B,3,R,R] -> [B,S,h1,h1] -> [B,S,h2,h2] -> [B,C,h3,h3] */
    float *a1 = buf, *a2 = a1 + s1, *a3 = a2 + s2;
    const float *in = images;
    float *outs[2] = {a1, a2};
    for (int i = 0; i < 2; i++) {
        size_t n = i ? s2 : s1;
        int hw = h[i + 1] * h[i + 1];
        if (reparam) {
            mc_conv2d_forward(outs[i], in, m->rep_w[i], m->rep_b[i], &cs[i], B, h[i], h[i]);
        } else {
            mc_conv2d_forward(outs[i], in, m->stem_w[i], NULL, &cs[i], B, h[i], h[i]);
            mc_channel_affine_forward(outs[i], outs[i], m->bn_coef + (size_t)(2 * i) * S,
                                      m->bn_coef + (size_t)(2 * i + 1) * S, B, S, hw);
        }
        mc_gelu_forward(outs[i], outs[i], n);
        in = outs[i];
    }
    mc_conv2d_forward(a3, a2, m->stem_w[2], m->stem_b2, &cs[2], B, h[2], h[2]);
    int64_t pshape[4] = {B, C, h[3], h[3]};
    mc_trace_emit(trace, "patch_emb", a3, 4, pshape);

    /* tokens: [cls | patches + pos] */
    const float *pos = m->pos;
    if (npos) {
        resample_pos(x + M * C, m->pos, m->n_pos, P, C);
        pos = x + M * C;
    }
    for (int b = 0; b < B; b++)
        for (int p = 0; p < P; p++) {
            float *xt = x + ((size_t)b * T + 1 + p) * C;
            const float *pe = pos + (size_t)p * C, *src = a3 + (size_t)b * C * P + p;
            for (int c = 0; c < C; c++) xt[c] = src[(size_t)c * P] + pe[c];
        }
    for (int b = 0; b < B; b++) memcpy(x + (size_t)b * T * C, m->cls, sizeof(float) * C);
    int64_t tshape[3] = {B, T, C};
    mc_trace_emit(trace, "transformer_input", x, 3, tshape);

    float *work = buf, *pooled = buf + scratch;
    for (int i = 0; i < m->depth; i++) {
        if (mc_transformer_layer_forward(&m->layers[i], x, B, T, 0, work)) {
            free(buf);
            free(x);
            return mc_fail(e, MC_E_NOMEM, "ViT: out of memory in layer %d", i);
        }
        if (trace && trace->fn) {
            char name[32];
            snprintf(name, sizeof name, "transformer.%d", i);
            mc_trace_emit(trace, name, x, 3, tshape);
        }
    }
    mc_layernorm_forward(x, x, m->post_ln_w, m->post_ln_b, (int)M, C, 1e-5f);
    mc_trace_emit(trace, "post_transformer_norm", x, 3, tshape);

    for (int b = 0; b < B; b++) memcpy(pooled + (size_t)b * C, x + (size_t)b * T * C, sizeof(float) * C);
    int64_t cshape[2] = {B, C}, eshape[2] = {B, Pd};
    mc_trace_emit(trace, "cls_pooled", pooled, 2, cshape);
    mc_matmul_forward(embed, pooled, m->proj, B, C, Pd);
    mc_trace_emit(trace, "embed", embed, 2, eshape);
    free(buf);
    free(x);
    return 0;
}
