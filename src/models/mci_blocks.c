/* MCi building blocks: parameter binding, training-form and reparameterized forwards, reparameterization.
 *
 * Buffer discipline (see mc_mci_ws): block forwards use ws->t0/t1 and ws->h for their
 * intermediates; mc_mci_mobileone_forward uses ws->t2 for its scale branch, so callers
 * never pass t2 as a MobileOne input or output. ws->v holds per-channel vectors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/mci.h"

#define BN_EPS 1e-5f

/* ---------------------------------------------------------------- binding */

#define NAME_LEN 256

/* dst = prefix + s, truncated to NAME_LEN-1 (real names are < 100 characters; a truncated
 * one just fails the lookup). dst may be prefix. */
static void sub(char *dst, const char *prefix, const char *s) {
    size_t a = strlen(prefix), b = strlen(s);
    if (a > NAME_LEN - 1) a = NAME_LEN - 1;
    if (b > NAME_LEN - 1 - a) b = NAME_LEN - 1 - a;
    memmove(dst, prefix, a);
    memcpy(dst + a, s, b);
    dst[a + b] = 0;
}

static int bind(mc_mci_binder *b, const float **p, const char *prefix, const char *suffix, int ndim,
                const int64_t *shape) {
    char name[NAME_LEN];
    sub(name, prefix, suffix);
    return mc_tensor_map_f32(b->map, name, ndim, shape, p, b->e);
}

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define NDIM(...) ((int)(sizeof(SHAPE(__VA_ARGS__)) / sizeof(int64_t)))
#define BIND(b, p, prefix, suffix, ...) bind(b, p, prefix, suffix, NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__))

/* BatchNorm2d(C) at prefix + "." (weight, bias, running_mean, running_var). */
static int bind_bn(mc_mci_binder *b, mc_bn_params *bn, const char *prefix, int C) {
    char p[NAME_LEN];
    sub(p, prefix, ".");
    int r;
    if ((r = BIND(b, &bn->weight, p, "weight", C)) || (r = BIND(b, &bn->bias, p, "bias", C)) ||
        (r = BIND(b, &bn->mean, p, "running_mean", C)) || (r = BIND(b, &bn->var, p, "running_var", C)))
        return r;
    bn->eps = BN_EPS;
    return 0;
}

/* Sequential(conv (no bias) [cout, cin_g, k, k], bn) at prefix: prefix.conv.weight, prefix.bn.* */
static int bind_convbn(mc_mci_binder *b, mc_mci_convbn *cb, const char *prefix, int cout, int cin_g, int k) {
    char p[NAME_LEN];
    int r = BIND(b, &cb->w, prefix, ".conv.weight", cout, cin_g, k, k);
    if (r) return r;
    sub(p, prefix, ".bn");
    return bind_bn(b, &cb->bn, p, cout);
}

/* SE with 1x1 conv names n1/n2 ("reduce"/"expand" or "fc1"/"fc2"); rd from the checkpoint
 * is checked against the architecture's value. */
static int bind_se(mc_mci_binder *b, mc_mci_se *se, const char *prefix, const char *n1, const char *n2, int C,
                   int rd) {
    char p[NAME_LEN];
    int r;
    se->C = C;
    se->rd = rd;
    sub(p, prefix, ".");
    sub(p, p, n1);
    if ((r = BIND(b, &se->w1, p, ".weight", rd, C, 1, 1)) || (r = BIND(b, &se->b1, p, ".bias", rd))) return r;
    sub(p, prefix, ".");
    sub(p, p, n2);
    if ((r = BIND(b, &se->w2, p, ".weight", C, rd, 1, 1)) || (r = BIND(b, &se->b2, p, ".bias", C))) return r;
    return 0;
}

int mc_mci_bind_mobileone(mc_mci_binder *b, mc_mci_mobileone *blk, const char *prefix, int cin, int cout, int k,
                          int stride, int groups, int use_scale_branch, int use_conv, int use_se, int act) {
    char p[NAME_LEN];
    int r;
    memset(blk, 0, sizeof *blk);
    blk->s = (mc_conv2d_shape){cin, cout, k, k, stride, k / 2, k / 2, groups};
    blk->has_conv = use_conv;
    blk->has_scale = use_scale_branch && k > 1;
    blk->has_skip = cin == cout && stride == 1;
    blk->has_se = use_se;
    blk->act = act;
    int cin_g = cin / groups;
    if (blk->has_skip) {
        sub(p, prefix, ".rbr_skip");
        if ((r = bind_bn(b, &blk->skip, p, cin))) return r;
    }
    if (blk->has_conv) {
        sub(p, prefix, ".rbr_conv.0");
        if ((r = bind_convbn(b, &blk->conv, p, cout, cin_g, k))) return r;
    }
    if (blk->has_scale) {
        sub(p, prefix, ".rbr_scale");
        if ((r = bind_convbn(b, &blk->scale, p, cout, cin_g, 1))) return r;
    }
    if (use_se) {
        /* MobileOne's SEBlock: int(C * 0.0625) channels, reduce/expand */
        sub(p, prefix, ".se");
        if ((r = bind_se(b, &blk->se, p, "reduce", "expand", cout, (int)(cout * 0.0625)))) return r;
    }
    return 0;
}

static int bind_convffn(mc_mci_binder *b, mc_mci_convffn *f, const char *prefix, int C, int hidden) {
    char p[NAME_LEN];
    int r;
    f->C = C;
    f->hidden = hidden;
    f->k = 7;
    sub(p, prefix, ".conv");
    if ((r = bind_convbn(b, &f->dw, p, C, 1, 7))) return r;
    if ((r = BIND(b, &f->fc1_w, prefix, ".fc1.weight", hidden, C, 1, 1)) ||
        (r = BIND(b, &f->fc1_b, prefix, ".fc1.bias", hidden)) ||
        (r = BIND(b, &f->fc2_w, prefix, ".fc2.weight", C, hidden, 1, 1)) ||
        (r = BIND(b, &f->fc2_b, prefix, ".fc2.bias", C)))
        return r;
    return 0;
}

int mc_mci_bind_repmixer_block(mc_mci_binder *b, mc_mci_repmixer_block *blk, const char *prefix, int C, int k,
                               double mlp_ratio) {
    char p[NAME_LEN];
    int r;
    memset(blk, 0, sizeof *blk);
    blk->C = C;
    blk->k = k;
    sub(p, prefix, ".token_mixer.mixer");
    if ((r = mc_mci_bind_mobileone(b, &blk->mixer, p, C, C, k, 1, C, 1, 1, 0, 0))) return r;
    sub(p, prefix, ".token_mixer.norm");
    if ((r = mc_mci_bind_mobileone(b, &blk->norm, p, C, C, k, 1, C, 0, 0, 0, 0))) return r;
    if ((r = BIND(b, &blk->mix_ls, prefix, ".token_mixer.layer_scale", C, 1, 1))) return r;
    sub(p, prefix, ".convffn");
    if ((r = bind_convffn(b, &blk->ffn, p, C, (int)(C * mlp_ratio)))) return r;
    return BIND(b, &blk->ls, prefix, ".layer_scale", C, 1, 1);
}

int mc_mci_bind_attention_block(mc_mci_binder *b, mc_mci_attention_block *blk, const char *prefix, int C,
                                int head_dim, double mlp_ratio) {
    char p[NAME_LEN];
    int r;
    memset(blk, 0, sizeof *blk);
    if (head_dim <= 0 || C % head_dim) return mc_fail(b->e, MC_E_MODEL, "%s: %d channels not a multiple of head width %d", prefix, C, head_dim);
    blk->C = C;
    blk->head_dim = head_dim;
    blk->heads = C / head_dim;
    sub(p, prefix, ".norm");
    if ((r = bind_bn(b, &blk->norm, p, C))) return r;
    if ((r = BIND(b, &blk->qkv_w, prefix, ".token_mixer.qkv.weight", 3 * C, C)) ||
        (r = BIND(b, &blk->proj_w, prefix, ".token_mixer.proj.weight", C, C)) ||
        (r = BIND(b, &blk->proj_b, prefix, ".token_mixer.proj.bias", C)) ||
        (r = BIND(b, &blk->ls1, prefix, ".layer_scale_1", C, 1, 1)) ||
        (r = BIND(b, &blk->ls2, prefix, ".layer_scale_2", C, 1, 1)))
        return r;
    sub(p, prefix, ".convffn");
    return bind_convffn(b, &blk->ffn, p, C, (int)(C * mlp_ratio));
}

int mc_mci_bind_patch_embed(mc_mci_binder *b, mc_mci_patch_embed *pe, const char *prefix, int cin, int cout,
                            int use_se) {
    char p[NAME_LEN];
    int r;
    memset(pe, 0, sizeof *pe);
    pe->cin = cin;
    pe->cout = cout;
    pe->has_se = use_se;
    pe->lk_s = (mc_conv2d_shape){cin, cout, 7, 7, 2, 3, 3, cin};
    pe->small_s = (mc_conv2d_shape){cin, cout, 3, 3, 2, 1, 1, cin};
    int cin_g = 1;
    sub(p, prefix, ".proj.0.lkb_origin");
    if ((r = bind_convbn(b, &pe->lk, p, cout, cin_g, 7))) return r;
    sub(p, prefix, ".proj.0.small_conv");
    if ((r = bind_convbn(b, &pe->small, p, cout, cin_g, 3))) return r;
    if (use_se) {
        /* timm SqueezeExcite(rd_ratio=0.25): make_divisible(C/4, 8, round_limit=0), fc1/fc2 */
        int rd = (int)(cout * 0.25 + 4) / 8 * 8;
        if (rd < 8) rd = 8;
        sub(p, prefix, ".proj.0.se");
        if ((r = bind_se(b, &pe->se, p, "fc1", "fc2", cout, rd))) return r;
    }
    sub(p, prefix, ".proj.1");
    return mc_mci_bind_mobileone(b, &pe->pw, p, cout, cout, 1, 1, 1, 1, 1, 0, 1);
}

int mc_mci_bind_repcpe(mc_mci_binder *b, mc_mci_repcpe *cpe, const char *prefix, int C) {
    memset(cpe, 0, sizeof *cpe);
    cpe->C = C;
    cpe->k = 7;
    int r = BIND(b, &cpe->w, prefix, ".pe.weight", C, 1, 7, 7);
    return r ? r : BIND(b, &cpe->b, prefix, ".pe.bias", C);
}

/* ---------------------------------------------------------------- reparameterization */

static float *zeros(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

int mc_mci_mobileone_reparameterize(mc_mci_mobileone *blk) {
    const mc_conv2d_shape *s = &blk->s;
    int cin_g = s->cin / s->groups;
    free(blk->rep_w);
    free(blk->rep_b);
    blk->rep_w = zeros((size_t)s->cout * cin_g * s->kh * s->kw);
    blk->rep_b = zeros((size_t)s->cout);
    if (!blk->rep_w || !blk->rep_b) return MC_E_NOMEM;
    if (blk->has_conv)
        mc_reparameterize_add_conv_bn(blk->rep_w, blk->rep_b, s->cout, cin_g, s->kh, s->kw, blk->conv.w, NULL, s->kh, s->kw,
                               &blk->conv.bn);
    if (blk->has_scale)
        mc_reparameterize_add_conv_bn(blk->rep_w, blk->rep_b, s->cout, cin_g, s->kh, s->kw, blk->scale.w, NULL, 1, 1,
                               &blk->scale.bn);
    if (blk->has_skip) mc_reparameterize_add_identity_bn(blk->rep_w, blk->rep_b, s->cout, cin_g, s->kh, s->kw, &blk->skip);
    return 0;
}

static int convffn_reparameterize(mc_mci_convffn *f) {
    free(f->rep_dw_w);
    free(f->rep_dw_b);
    f->rep_dw_w = zeros((size_t)f->C * f->k * f->k);
    f->rep_dw_b = zeros((size_t)f->C);
    if (!f->rep_dw_w || !f->rep_dw_b) return MC_E_NOMEM;
    mc_reparameterize_add_conv_bn(f->rep_dw_w, f->rep_dw_b, f->C, 1, f->k, f->k, f->dw.w, NULL, f->k, f->k, &f->dw.bn);
    return 0;
}

/* x + ls * (mixer(x) - norm(x)) = conv(x, id + ls * (Wm - Wn)) + ls * (bm - bn) */
int mc_mci_repmixer_block_reparameterize(mc_mci_repmixer_block *blk) {
    int r, C = blk->C, kk = blk->k * blk->k;
    if ((r = mc_mci_mobileone_reparameterize(&blk->mixer)) || (r = mc_mci_mobileone_reparameterize(&blk->norm))) return r;
    free(blk->rep_w);
    free(blk->rep_b);
    blk->rep_w = zeros((size_t)C * kk);
    blk->rep_b = zeros((size_t)C);
    if (!blk->rep_w || !blk->rep_b) return MC_E_NOMEM;
    for (int c = 0; c < C; c++) {
        float ls = blk->mix_ls[c];
        for (int t = 0; t < kk; t++)
            blk->rep_w[c * kk + t] = ls * (blk->mixer.rep_w[c * kk + t] - blk->norm.rep_w[c * kk + t]);
        blk->rep_b[c] = ls * (blk->mixer.rep_b[c] - blk->norm.rep_b[c]);
    }
    mc_reparameterize_add_identity(blk->rep_w, C, 1, blk->k, blk->k, 1.f);
    /* the branch kernels are not needed any more */
    mc_mci_free_mobileone(&blk->mixer);
    mc_mci_free_mobileone(&blk->norm);
    return convffn_reparameterize(&blk->ffn);
}

int mc_mci_attention_block_reparameterize(mc_mci_attention_block *blk) { return convffn_reparameterize(&blk->ffn); }

int mc_mci_patch_embed_reparameterize(mc_mci_patch_embed *pe) {
    free(pe->rep_lk_w);
    free(pe->rep_lk_b);
    pe->rep_lk_w = zeros((size_t)pe->cout * 49);
    pe->rep_lk_b = zeros((size_t)pe->cout);
    if (!pe->rep_lk_w || !pe->rep_lk_b) return MC_E_NOMEM;
    mc_reparameterize_add_conv_bn(pe->rep_lk_w, pe->rep_lk_b, pe->cout, 1, 7, 7, pe->lk.w, NULL, 7, 7, &pe->lk.bn);
    mc_reparameterize_add_conv_bn(pe->rep_lk_w, pe->rep_lk_b, pe->cout, 1, 7, 7, pe->small.w, NULL, 3, 3, &pe->small.bn);
    return mc_mci_mobileone_reparameterize(&pe->pw);
}

int mc_mci_repcpe_reparameterize(mc_mci_repcpe *cpe) {
    size_t n = (size_t)cpe->C * cpe->k * cpe->k;
    free(cpe->rep_w);
    cpe->rep_w = malloc(n * sizeof(float));
    if (!cpe->rep_w) return MC_E_NOMEM;
    memcpy(cpe->rep_w, cpe->w, n * sizeof(float));
    mc_reparameterize_add_identity(cpe->rep_w, cpe->C, 1, cpe->k, cpe->k, 1.f);
    return 0;
}

void mc_mci_free_mobileone(mc_mci_mobileone *blk) {
    free(blk->rep_w);
    free(blk->rep_b);
    blk->rep_w = blk->rep_b = NULL;
}
void mc_mci_free_repmixer_block(mc_mci_repmixer_block *blk) {
    mc_mci_free_mobileone(&blk->mixer);
    mc_mci_free_mobileone(&blk->norm);
    free(blk->rep_w);
    free(blk->rep_b);
    free(blk->ffn.rep_dw_w);
    free(blk->ffn.rep_dw_b);
    blk->rep_w = blk->rep_b = blk->ffn.rep_dw_w = blk->ffn.rep_dw_b = NULL;
}
void mc_mci_free_attention_block(mc_mci_attention_block *blk) {
    free(blk->ffn.rep_dw_w);
    free(blk->ffn.rep_dw_b);
    blk->ffn.rep_dw_w = blk->ffn.rep_dw_b = NULL;
}
void mc_mci_free_patch_embed(mc_mci_patch_embed *pe) {
    free(pe->rep_lk_w);
    free(pe->rep_lk_b);
    pe->rep_lk_w = pe->rep_lk_b = NULL;
    mc_mci_free_mobileone(&pe->pw);
}
void mc_mci_free_repcpe(mc_mci_repcpe *cpe) {
    free(cpe->rep_w);
    cpe->rep_w = NULL;
}

/* ---------------------------------------------------------------- forward */

/* y = bn(y) in place (eval statistics); coefficient scratch v[2C]. */
static void bn_inplace(float *y, const mc_bn_params *bn, int B, int C, int HW, float *v) {
    mc_batchnorm_eval_coeffs(v, v + C, bn->weight, bn->bias, bn->mean, bn->var, bn->eps, C);
    mc_channel_affine_forward(y, y, v, v + C, B, C, HW);
}

/* y += sign * bn(x) */
static void bn_add(float *y, const float *x, const mc_bn_params *bn, float sign, int B, int C, int HW, float *v) {
    mc_batchnorm_eval_coeffs(v, v + C, bn->weight, bn->bias, bn->mean, bn->var, bn->eps, C);
    if (sign != 1.f)
        for (int c = 0; c < 2 * C; c++) v[c] *= sign;
    mc_channel_affine_add(y, x, v, v + C, B, C, HW);
}

/* x[B,C,HW] *= sigmoid(W2 relu(W1 mean(x) + b1) + b2); scratch v[B*(2C+rd)] */
static void se_forward(const mc_mci_se *se, float *x, int B, int HW, float *v) {
    int C = se->C, rd = se->rd;
    float *s = v, *r = s + (size_t)B * C, *g = r + (size_t)B * rd;
    mc_mean_hw_forward(s, x, B, C, HW);
    mc_linear_forward(r, s, se->w1, se->b1, B, C, rd);
    mc_relu_forward(r, r, (size_t)B * rd);
    mc_linear_forward(g, r, se->w2, se->b2, B, rd, C);
    mc_sigmoid_forward(g, g, (size_t)B * C);
    mc_scale_channels(x, g, B, C, HW);
}

void mc_mci_mobileone_forward(const mc_mci_mobileone *blk, float *out, const float *in, int B, int H, int W,
                              int reparameterized, mc_mci_ws *ws) {
    const mc_conv2d_shape *s = &blk->s;
    int Ho = mc_conv_out(H, s->kh, s->stride, s->pad_h), Wo = mc_conv_out(W, s->kw, s->stride, s->pad_w);
    int HWo = Ho * Wo, C = s->cout;
    if (reparameterized) {
        /* GELU fused into the convolution unless squeeze-excite comes between */
        mc_conv_epilogue ep = {blk->act && !blk->has_se, NULL, NULL};
        mc_conv2d_forward_ep(out, in, blk->rep_w, blk->rep_b, s, B, H, W, &ep);
        if (blk->has_se) se_forward(&blk->se, out, B, HWo, ws->v);
        if (blk->act && blk->has_se) mc_gelu_forward(out, out, (size_t)B * C * HWo);
        return;
    }
    if (blk->has_conv) {
        mc_conv2d_forward(out, in, blk->conv.w, NULL, s, B, H, W);
        bn_inplace(out, &blk->conv.bn, B, C, HWo, ws->v);
    } else {
        memset(out, 0, (size_t)B * C * HWo * sizeof(float));
    }
    if (blk->has_scale) {
        mc_conv2d_shape s1 = *s;
        s1.kh = s1.kw = 1;
        s1.pad_h = s1.pad_w = 0;
        mc_conv2d_forward(ws->t2, in, blk->scale.w, NULL, &s1, B, H, W);
        bn_add(out, ws->t2, &blk->scale.bn, 1.f, B, C, HWo, ws->v);
    }
    if (blk->has_skip) bn_add(out, in, &blk->skip, 1.f, B, C, HWo, ws->v);
    if (blk->has_se) se_forward(&blk->se, out, B, HWo, ws->v);
    if (blk->act) mc_gelu_forward(out, out, (size_t)B * C * HWo);
}

/* x[B,C,HW] += ls[c] * ffn(x)[c]: out gets ffn(x); uses ws->t1 and ws->h (the hidden
 * activations). fc1's GELU and the layer-scaled residual run in fc1's and fc2's GEMM tiles. */
static void convffn_residual(const mc_mci_convffn *f, const float *ls, float *out, float *x, int B, int H, int W,
                             int reparameterized, mc_mci_ws *ws) {
    int C = f->C, HW = H * W;
    mc_conv2d_shape dw = {C, C, f->k, f->k, 1, f->k / 2, f->k / 2, C};
    float *t = ws->t1;
    if (reparameterized) {
        mc_conv2d_forward(t, x, f->rep_dw_w, f->rep_dw_b, &dw, B, H, W);
    } else {
        mc_conv2d_forward(t, x, f->dw.w, NULL, &dw, B, H, W);
        bn_inplace(t, &f->dw.bn, B, C, HW, ws->v);
    }
    mc_conv2d_shape fc1 = {C, f->hidden, 1, 1, 1, 0, 0, 1}, fc2 = {f->hidden, C, 1, 1, 1, 0, 0, 1};
    mc_conv_epilogue gelu = {1, NULL, NULL}, res = {0, x, ls};
    mc_conv2d_forward_ep(ws->h, t, f->fc1_w, f->fc1_b, &fc1, B, H, W, &gelu);
    mc_conv2d_forward_ep(out, ws->h, f->fc2_w, f->fc2_b, &fc2, B, H, W, &res);
}

void mc_mci_repmixer_block_forward(const mc_mci_repmixer_block *blk, float *x, int B, int H, int W, int reparameterized,
                                   mc_mci_ws *ws) {
    int C = blk->C, HW = H * W;
    size_t n = (size_t)B * C * HW;
    if (reparameterized) {
        mc_conv2d_shape s = {C, C, blk->k, blk->k, 1, blk->k / 2, blk->k / 2, C};
        mc_conv2d_forward(ws->t0, x, blk->rep_w, blk->rep_b, &s, B, H, W);
        memcpy(x, ws->t0, n * sizeof(float));
    } else {
        /* t0 = mixer(x) - norm(x); norm is BN only */
        mc_mci_mobileone_forward(&blk->mixer, ws->t0, x, B, H, W, 0, ws);
        bn_add(ws->t0, x, &blk->norm.skip, -1.f, B, C, HW, ws->v);
        mc_add_scaled_channels(x, ws->t0, blk->mix_ls, B, C, HW);
    }
    convffn_residual(&blk->ffn, blk->ls, ws->t0, x, B, H, W, reparameterized, ws);
}

int mc_mci_attention_block_forward(const mc_mci_attention_block *blk, float *x, int B, int H, int W, int reparameterized,
                                   mc_mci_ws *ws) {
    int C = blk->C, N = H * W;
    /* tokens [B, N, C] of bn(x) */
    mc_batchnorm_eval_coeffs(ws->v, ws->v + C, blk->norm.weight, blk->norm.bias, blk->norm.mean, blk->norm.var,
                             blk->norm.eps, C);
    mc_channel_affine_forward(ws->t0, x, ws->v, ws->v + C, B, C, N);
    mc_transpose_chw_to_hwc(ws->t1, ws->t0, B, C, N);
    mc_linear_forward(ws->h, ws->t1, blk->qkv_w, NULL, B * N, C, 3 * C);
    int r = mc_attention_forward(ws->t0, ws->h, B, N, blk->heads, blk->head_dim, 1.0f / sqrtf((float)blk->head_dim), 0);
    if (r) return r;
    mc_linear_forward(ws->t1, ws->t0, blk->proj_w, blk->proj_b, B * N, C, C);
    mc_transpose_hwc_to_chw(ws->t0, ws->t1, B, C, N);
    mc_add_scaled_channels(x, ws->t0, blk->ls1, B, C, N);
    convffn_residual(&blk->ffn, blk->ls2, ws->t0, x, B, H, W, reparameterized, ws);
    return 0;
}

void mc_mci_repcpe_forward(const mc_mci_repcpe *cpe, float *x, int B, int H, int W, int reparameterized, mc_mci_ws *ws) {
    int C = cpe->C;
    size_t n = (size_t)B * C * H * W;
    mc_conv2d_shape s = {C, C, cpe->k, cpe->k, 1, cpe->k / 2, cpe->k / 2, C};
    mc_conv2d_forward(ws->t0, x, reparameterized ? cpe->rep_w : cpe->w, cpe->b, &s, B, H, W);
    if (reparameterized) memcpy(x, ws->t0, n * sizeof(float));
    else mc_add_forward(x, ws->t0, n);
}

void mc_mci_patch_embed_forward(const mc_mci_patch_embed *pe, float *out, const float *in, int B, int H, int W,
                                int reparameterized, mc_mci_ws *ws) {
    int Ho = mc_conv_out(H, 7, 2, 3), Wo = mc_conv_out(W, 7, 2, 3), C = pe->cout, HWo = Ho * Wo;
    if (reparameterized) {
        mc_conv2d_forward(ws->t0, in, pe->rep_lk_w, pe->rep_lk_b, &pe->lk_s, B, H, W);
    } else {
        mc_conv2d_forward(ws->t0, in, pe->lk.w, NULL, &pe->lk_s, B, H, W);
        bn_inplace(ws->t0, &pe->lk.bn, B, C, HWo, ws->v);
        mc_conv2d_forward(ws->t1, in, pe->small.w, NULL, &pe->small_s, B, H, W);
        bn_add(ws->t0, ws->t1, &pe->small.bn, 1.f, B, C, HWo, ws->v);
    }
    if (pe->has_se) se_forward(&pe->se, ws->t0, B, HWo, ws->v);
    mc_gelu_forward(ws->t0, ws->t0, (size_t)B * C * HWo);
    mc_mci_mobileone_forward(&pe->pw, out, ws->t0, B, Ho, Wo, reparameterized, ws);
}
