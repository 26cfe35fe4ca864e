/* Text-RepMixer block in token layout [N, T, C]; see text_repmixer.h. */
#include "models/text_repmixer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/reparameterize.h"
#include "models/transformer.h"
#include "nn/kernel_attr.h"
#include "nn/ops.h"

#define BN_EPS 1e-5f

/* One output token: o[c] = bias[c] + sum over the in-range taps k of w_t[k, c] * x[t + k - K/2, c]. */
MC_HOT_KERNEL static void dw_token(float *restrict o, const float *x, const float *w_t, const float *bias, int t,
                                   int T, int C, int K) {
    int pad = K / 2;
    for (int c = 0; c < C; c++) o[c] = bias ? bias[c] : 0.f;
    for (int k = 0; k < K; k++) {
        int s = t + k - pad;
        if (s < 0 || s >= T) continue;
        const float *xs = x + (size_t)s * C, *wk = w_t + (size_t)k * C;
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] += wk[c] * xs[c];
    }
}

void mc_dwconv_tokens_forward(float *out, const float *x, const float *w_t, const float *bias, int N, int T, int C,
                              int K) {
    for (int n = 0; n < N; n++)
        for (int t = 0; t < T; t++)
            dw_token(out + ((size_t)n * T + t) * C, x + (size_t)n * T * C, w_t, bias, t, T, C, K);
}

static int bind(mc_tensor_map *w, const char *prefix, const char *name, int ndim, const int64_t *shape,
                const float **out, mc_err *e) {
    char full[512];
    if (snprintf(full, sizeof full, "%s%s", prefix, name) >= (int)sizeof full)
        return mc_fail(e, MC_E_ARG, "tensor name too long: %s%s", prefix, name);
    return mc_tensor_map_f32(w, full, ndim, shape, out, e);
}

static int bind_bn(mc_tensor_map *w, const char *prefix, const char *bn, int C, const float **out4, mc_err *e) {
    static const char *parts[4] = {"weight", "bias", "running_mean", "running_var"};
    int64_t shape[1] = {C};
    for (int i = 0; i < 4; i++) {
        char name[256];
        snprintf(name, sizeof name, "%s.%s", bn, parts[i]);
        int r = bind(w, prefix, name, 1, shape, &out4[i], e);
        if (r) return r;
    }
    return 0;
}

/* [C, 1, 1, K] -> [K, C] */
static void transpose_kernel(float *dst, const float *src, int C, int K) {
    for (int c = 0; c < C; c++)
        for (int k = 0; k < K; k++) dst[(size_t)k * C + c] = src[(size_t)c * K + k];
}

/* The training form's eval-mode caches (transposed kernels, BatchNorm scale/shift) from the
 * current parameter values. */
static void refresh(mc_text_repmixer *b) {
    int C = b->dim, K = b->kernel;
    transpose_kernel(b->wm_t, b->wm, C, K);
    transpose_kernel(b->wf_t, b->wf, C, K);
    float *sc[4] = {b->ms_s, b->mc_s, b->n_s, b->f_s}, *sh[4] = {b->ms_t, b->mc_t, b->n_t, b->f_t};
    for (int i = 0; i < 4; i++)
        mc_batchnorm_eval_coeffs(sc[i], sh[i], b->bn[i][0], b->bn[i][1], b->bn[i][2], b->bn[i][3], BN_EPS, C);
}

int mc_text_repmixer_bind(mc_text_repmixer *b, mc_tensor_map *w, const char *prefix, int dim, mc_err *e) {
    return mc_text_repmixer_bind_dims(b, w, prefix, dim, 0, 0, e);
}

int mc_text_repmixer_bind_dims(mc_text_repmixer *b, mc_tensor_map *w, const char *prefix, int dim, int kernel,
                               int hidden, mc_err *e) {
    memset(b, 0, sizeof *b);
    int C = dim;
    b->dim = C;
    const char *src = w->source ? w->source : "checkpoint";
    char name[512];
    const mc_tensor *t;
    if (kernel <= 0) { /* kernel size from the mixer conv */
        snprintf(name, sizeof name, "%stoken_mixer.mixer.rbr_conv.0.conv.weight", prefix);
        t = mc_tensor_map_find(w, name);
        if (!t) return mc_fail(e, MC_E_MODEL, "%s: missing tensor '%s'", src, name);
        if (t->ndim != 4 || t->shape[3] < 1 || t->shape[3] > 1023 || t->shape[3] % 2 == 0) {
            char s[128];
            return mc_fail(e, MC_E_MODEL, "%s: tensor '%s' has shape %s, expected [%d, 1, 1, K] with odd K", src, name,
                           mc_shape_str(t->shape, t->ndim, s, sizeof s), C);
        }
        kernel = (int)t->shape[3];
    }
    if (hidden <= 0) { /* FFN width from fc1 */
        snprintf(name, sizeof name, "%sconvffn.fc1.weight", prefix);
        t = mc_tensor_map_find(w, name);
        if (!t) return mc_fail(e, MC_E_MODEL, "%s: missing tensor '%s'", src, name);
        if (t->ndim != 4 || t->shape[0] < 1 || t->shape[0] > (1 << 20)) {
            char s[128];
            return mc_fail(e, MC_E_MODEL, "%s: tensor '%s' has shape %s, expected [F, %d, 1, 1]", src, name,
                           mc_shape_str(t->shape, t->ndim, s, sizeof s), C);
        }
        hidden = (int)t->shape[0];
    }
    int K = b->kernel = kernel, F = b->hidden = hidden;

    const int64_t s_c11[3] = {C, 1, 1}, s_k[4] = {C, 1, 1, K}, s_fc1[4] = {F, C, 1, 1}, s_fc2[4] = {C, F, 1, 1};
    const int64_t s_f[1] = {F}, s_c[1] = {C};
    int r;
    if ((r = bind(w, prefix, "token_mixer.layer_scale", 3, s_c11, &b->tm_ls, e)) ||
        (r = bind_bn(w, prefix, "token_mixer.mixer.rbr_skip", C, b->bn[0], e)) ||
        (r = bind(w, prefix, "token_mixer.mixer.rbr_conv.0.conv.weight", 4, s_k, &b->wm, e)) ||
        (r = bind_bn(w, prefix, "token_mixer.mixer.rbr_conv.0.bn", C, b->bn[1], e)) ||
        (r = bind_bn(w, prefix, "token_mixer.norm.rbr_skip", C, b->bn[2], e)) ||
        (r = bind(w, prefix, "convffn.conv.conv.weight", 4, s_k, &b->wf, e)) ||
        (r = bind_bn(w, prefix, "convffn.conv.bn", C, b->bn[3], e)) ||
        (r = bind(w, prefix, "convffn.fc1.weight", 4, s_fc1, &b->fc1_w, e)) ||
        (r = bind(w, prefix, "convffn.fc1.bias", 1, s_f, &b->fc1_b, e)) ||
        (r = bind(w, prefix, "convffn.fc2.weight", 4, s_fc2, &b->fc2_w, e)) ||
        (r = bind(w, prefix, "convffn.fc2.bias", 1, s_c, &b->fc2_b, e)) ||
        (r = bind(w, prefix, "layer_scale", 3, s_c11, &b->ls, e)))
        return r;

    size_t n = 4 * (size_t)K * C + 10 * (size_t)C;
    float *p = b->buf = calloc(n, sizeof(float));
    if (!p) return mc_fail(e, MC_E_NOMEM, "%s: out of memory for the RepMixer block %s", src, prefix);
    b->wm_t = p; p += (size_t)K * C;
    b->wf_t = p; p += (size_t)K * C;
    b->rm_w = p; p += (size_t)K * C;
    b->rf_w = p; p += (size_t)K * C;
    float **vecs[10] = {&b->ms_s, &b->ms_t, &b->mc_s, &b->mc_t, &b->n_s, &b->n_t, &b->f_s, &b->f_t, &b->rm_b, &b->rf_b};
    for (int i = 0; i < 10; i++) { *vecs[i] = p; p += C; }
    refresh(b);
    return 0;
}

void mc_text_repmixer_free(mc_text_repmixer *b) {
    if (!b) return;
    free(b->buf);
    b->buf = NULL;
}

int mc_text_repmixer_reparameterize(mc_text_repmixer *b) {
    /* rebuilt from the current parameters on every call (the plan builder's path) */
    refresh(b);
    int C = b->dim, K = b->kernel;
    float *wm = calloc((size_t)3 * C * K + 2 * (size_t)C, sizeof(float));
    if (!wm) return MC_E_NOMEM;
    float *wn = wm + (size_t)C * K, *wf = wn + (size_t)C * K, *bm = wf + (size_t)C * K, *bnrm = bm + C;
    mc_bn_params bn[4];
    for (int i = 0; i < 4; i++) bn[i] = (mc_bn_params){b->bn[i][0], b->bn[i][1], b->bn[i][2], b->bn[i][3], BN_EPS};
    /* mixer = conv+BN branch + skip BN; norm = skip BN alone */
    mc_reparameterize_add_conv_bn(wm, bm, C, 1, 1, K, b->wm, NULL, 1, K, &bn[1]);
    mc_reparameterize_add_identity_bn(wm, bm, C, 1, 1, K, &bn[0]);
    mc_reparameterize_add_identity_bn(wn, bnrm, C, 1, 1, K, &bn[2]);
    /* token mixer: id + ls * (mixer - norm) */
    for (int c = 0; c < C; c++) {
        float ls = b->tm_ls[c];
        for (int k = 0; k < K; k++) {
            size_t i = (size_t)c * K + k;
            wm[i] = ls * (wm[i] - wn[i]);
        }
        b->rm_b[c] = ls * (bm[c] - bnrm[c]);
    }
    mc_reparameterize_add_identity(wm, C, 1, 1, K, 1.0f);
    transpose_kernel(b->rm_w, wm, C, K);
    /* ConvFFN conv + BN */
    memset(b->rf_b, 0, sizeof(float) * C);
    mc_reparameterize_add_conv_bn(wf, b->rf_b, C, 1, 1, K, b->wf, NULL, 1, K, &bn[3]);
    transpose_kernel(b->rf_w, wf, C, K);
    free(wm);
    b->reparameterized = 1;
    return 0;
}

/* scratch: a [M, C] | h [M, F] */
size_t mc_text_repmixer_scratch(const mc_text_repmixer *b, int N, int T) {
    size_t M = (size_t)N * T;
    return M * b->dim + M * b->hidden;
}

/* Token mixer (x updated in place), then the ConvFFN's depthwise conv + BN into a [M, C]. */
static void mix_and_dwconv(const mc_text_repmixer *b, float *x, int N, int T, int reparameterized, float *a) {
    int C = b->dim, K = b->kernel, M = N * T;
    if (reparameterized && !b->reparameterized) reparameterized = 0; /* callers check; the training form is the same map */
    /* token mixer */
    if (reparameterized) {
        mc_dwconv_tokens_forward(a, x, b->rm_w, b->rm_b, N, T, C, K);
        memcpy(x, a, sizeof(float) * (size_t)M * C);
    } else {
        mc_dwconv_tokens_forward(a, x, b->wm_t, NULL, N, T, C, K);
        for (int i = 0; i < M; i++) {
            float *xi = x + (size_t)i * C;
            const float *ai = a + (size_t)i * C;
            for (int c = 0; c < C; c++) {
                float v = xi[c];
                float mixer = (v * b->ms_s[c] + b->ms_t[c]) + (ai[c] * b->mc_s[c] + b->mc_t[c]);
                float norm = v * b->n_s[c] + b->n_t[c];
                xi[c] = v + b->tm_ls[c] * (mixer - norm);
            }
        }
    }
    /* ConvFFN: depthwise conv + BN (then 1x1 conv, GELU, 1x1 conv in ffn_tail) */
    if (reparameterized) {
        mc_dwconv_tokens_forward(a, x, b->rf_w, b->rf_b, N, T, C, K);
    } else {
        mc_dwconv_tokens_forward(a, x, b->wf_t, NULL, N, T, C, K);
        for (int i = 0; i < M; i++) {
            float *ai = a + (size_t)i * C;
            for (int c = 0; c < C; c++) ai[c] = ai[c] * b->f_s[c] + b->f_t[c];
        }
    }
}

/* x[M, C] += ls * fc2(GELU(fc1(a))); a [M, C] is overwritten, h [M, F] is scratch */
static void ffn_tail(const mc_text_repmixer *b, float *x, float *a, int M, float *h) {
    int C = b->dim, F = b->hidden;
    mc_linear_gelu_forward(h, a, b->fc1_w, b->fc1_b, M, C, F);
    mc_linear_forward(a, h, b->fc2_w, b->fc2_b, M, F, C);
    for (int i = 0; i < M; i++) {
        float *xi = x + (size_t)i * C;
        const float *ai = a + (size_t)i * C;
        for (int c = 0; c < C; c++) xi[c] += b->ls[c] * ai[c];
    }
}

void mc_text_repmixer_forward(const mc_text_repmixer *b, float *x, int N, int T, int reparameterized, float *scratch) {
    float *a = scratch, *h = a + (size_t)N * T * b->dim;
    mix_and_dwconv(b, x, N, T, reparameterized, a);
    ffn_tail(b, x, a, N * T, h);
}

void mc_text_repmixer_forward_rows(const mc_text_repmixer *b, float *x, int N, int T, int reparameterized, const int *rows,
                                   float *out, float *scratch) {
    int C = b->dim;
    float *a = scratch, *h = a + (size_t)N * T * C;
    mix_and_dwconv(b, x, N, T, reparameterized, a);
    /* gather row rows[n] of each sequence to the front of a (source n*T + rows[n] >= n: safe in
     * increasing n) and of the mixed x into out */
    for (int n = 0; n < N; n++) {
        size_t src = ((size_t)n * T + rows[n]) * C;
        memmove(a + (size_t)n * C, a + src, sizeof(float) * C);
        memcpy(out + (size_t)n * C, x + src, sizeof(float) * C);
    }
    ffn_tail(b, out, a, N, h);
}
