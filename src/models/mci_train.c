/* MCi training-mode forward and backward (see mci_train.h).
 *
 * Every forward takes, in order, the tensors it keeps from ctx->tape and its temporaries
 * from ctx->work (released before it returns); arithmetic runs only while the tape is live,
 * so the same code measures the step (base == NULL). Backwards take their temporaries
 * from ctx->work between a mark and a release and compute only while it is live.
 * Gradients of parameters: G(ctx, p) (NULL: skipped).
 */
#include "models/mci_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "nn/layers.h"

#define TAKE(c, n) mc_tape_take((c)->tape, (size_t)(n))
#define WORK(c, n) mc_tape_take((c)->work, (size_t)(n))
#define FLIVE(c) mc_tape_live((c)->tape)
#define BLIVE(c) mc_tape_live((c)->work)
#define G(c, p) mc_grad_of((c)->grads, (p))

static size_t zmax(size_t a, size_t b) { return a > b ? a : b; }

/* dx (acc: +=) and the weight / bias gradients of a convolution */
static void conv_bwd(mc_train_ctx *c, float *dx, const float *w, const float *b, const float *dy, const float *x,
                     const mc_conv2d_shape *s, int B, int H, int W, int acc) {
    size_t mk = mc_tape_mark(c->work);
    float *scr = WORK(c, mc_conv2d_backward_scratch(s, H, W));
    if (BLIVE(c)) mc_conv2d_backward(dx, G(c, w), G(c, b), dy, x, w, s, B, H, W, acc, scr);
    mc_tape_release(c->work, mk);
}

/* t = m - t elementwise (the RepMixer's mixer minus its norm), on the library's pool */
typedef struct sub_job {
    float *t;
    const float *m;
} sub_job;

static void rsub_span(void *arg, size_t b, size_t e) {
    const sub_job *j = arg;
    for (size_t i = b; i < e; i++) j->t[i] = j->m[i] - j->t[i];
}

/* Stochastic depth on a residual branch f[B, per] in place (train mode, this block's rate
 * > 0); the factors are kept for backward. NULL when off (nothing taken). */
static float *drop_path_fwd(mc_train_ctx *c, float *f, int B, size_t per) {
    if (!c->train || c->rate.drop_path <= 0.f) return NULL;
    float *keep = TAKE(c, B);
    if (FLIVE(c)) mc_drop_path_forward(f, keep, f, B, per, c->rate.drop_path, c->rng);
    return keep;
}

/* A layer-scaled residual: out[B,C,HW] = x + ls[c] * drop_path(f), out taken from the tape and
 * the drop-path factors stored in *keep (NULL when off). f is modified in place. */
static float *scaled_residual_fwd(mc_train_ctx *c, const float *x, float *f, const float *ls, int B, int C, int HW,
                                  float **keep) {
    size_t n = (size_t)B * C * HW;
    *keep = drop_path_fwd(c, f, B, (size_t)C * HW);
    float *out = TAKE(c, n);
    if (FLIVE(c)) {
        memcpy(out, x, n * sizeof(float));
        mc_add_scaled_channels(out, f, ls, B, C, HW);
    }
    return out;
}

/* ---------------------------------------------------------------- squeeze-excite */

/* x[B,C,HW] * sigmoid(W2 relu(W1 mean_hw(x) + b1) + b2) */
static float *se_fwd(mc_train_ctx *c, const mc_mci_se *se, mc_se_save *s, const float *x, int B, int HW) {
    int C = se->C, rd = se->rd;
    s->x = x;
    s->pooled = TAKE(c, B * C);
    s->h = TAKE(c, B * rd);
    s->hr = TAKE(c, B * rd);
    s->g = TAKE(c, B * C);
    s->out = TAKE(c, (size_t)B * C * HW);
    if (!FLIVE(c)) return s->out;
    mc_mean_hw_forward(s->pooled, x, B, C, HW);
    mc_linear_forward(s->h, s->pooled, se->w1, se->b1, B, C, rd);
    mc_relu_forward(s->hr, s->h, (size_t)B * rd);
    mc_linear_forward(s->g, s->hr, se->w2, se->b2, B, rd, C);
    mc_sigmoid_forward(s->g, s->g, (size_t)B * C);
    memcpy(s->out, x, sizeof(float) * B * C * HW);
    mc_scale_channels(s->out, s->g, B, C, HW);
    return s->out;
}

static void se_bwd(mc_train_ctx *c, const mc_mci_se *se, const mc_se_save *s, float *dx, const float *dy, int B,
                   int HW) {
    int C = se->C, rd = se->rd;
    size_t mk = mc_tape_mark(c->work);
    float *dg = WORK(c, B * C), *dh = WORK(c, B * rd), *dp = WORK(c, B * C);
    if (BLIVE(c)) {
        mc_scale_channels_backward(dx, dg, dy, s->x, s->g, B, C, HW);
        mc_sigmoid_backward(dg, dg, s->g, (size_t)B * C, 0);
        mc_linear_backward(dh, G(c, se->w2), G(c, se->b2), dg, s->hr, se->w2, B, rd, C, 0);
        mc_relu_backward(dh, dh, s->h, (size_t)B * rd, 0);
        mc_linear_backward(dp, G(c, se->w1), G(c, se->b1), dh, s->pooled, se->w1, B, C, rd, 0);
        mc_mean_hw_backward(dx, dp, B, C, HW, 1);
    }
    mc_tape_release(c->work, mk);
}

/* ---------------------------------------------------------------- MobileOne */

static mc_conv2d_shape scale_shape(const mc_conv2d_shape *s) {
    mc_conv2d_shape s1 = *s;
    s1.kh = s1.kw = 1;
    s1.pad_h = s1.pad_w = 0;
    return s1;
}

float *mc_mci_mobileone_train_forward(mc_train_ctx *c, const mc_mci_mobileone *blk, mc_mobileone_save *s,
                                      const float *x, int B, int H, int W) {
    const mc_conv2d_shape *sh = &blk->s;
    mc_conv2d_shape s1 = scale_shape(sh);
    int Ho = mc_conv_out(H, sh->kh, sh->stride, sh->pad_h), Wo = mc_conv_out(W, sh->kw, sh->stride, sh->pad_w);
    int C = sh->cout, HWo = Ho * Wo;
    size_t n = (size_t)B * C * HWo;
    memset(s, 0, sizeof *s);
    s->B = B, s->H = H, s->W = W, s->Ho = Ho, s->Wo = Wo;
    s->x = x;
    s->sum = TAKE(c, n);
    if (blk->has_conv) s->conv = TAKE(c, n);
    if (blk->has_scale) s->scale = TAKE(c, n);
    size_t mk = mc_tape_mark(c->work);
    float *tmp = WORK(c, n);
    if (blk->has_conv) {
        if (FLIVE(c)) mc_conv2d_forward(s->conv, x, blk->conv.w, NULL, sh, B, H, W);
        mc_train_bn_forward(c, &s->bn_conv, s->sum, s->conv, &blk->conv.bn, B, C, HWo);
    } else if (FLIVE(c)) {
        memset(s->sum, 0, n * sizeof(float));
    }
    if (blk->has_scale) {
        if (FLIVE(c)) mc_conv2d_forward(s->scale, x, blk->scale.w, NULL, &s1, B, H, W);
        mc_train_bn_forward(c, &s->bn_scale, tmp, s->scale, &blk->scale.bn, B, C, HWo);
        if (FLIVE(c)) mc_add_forward(s->sum, tmp, n);
    }
    if (blk->has_skip) {
        mc_train_bn_forward(c, &s->bn_skip, tmp, x, &blk->skip, B, C, HWo);
        if (FLIVE(c)) mc_add_forward(s->sum, tmp, n);
    }
    mc_tape_release(c->work, mk);
    float *cur = s->sum;
    if (blk->has_se) cur = se_fwd(c, &blk->se, &s->se, cur, B, HWo);
    s->pre = cur;
    if (blk->act) {
        s->out = TAKE(c, n);
        if (FLIVE(c)) mc_gelu_forward(s->out, cur, n);
    } else {
        s->out = cur;
    }
    return s->out;
}

void mc_mci_mobileone_train_backward(mc_train_ctx *c, const mc_mci_mobileone *blk, const mc_mobileone_save *s,
                                     float *dx, const float *dy) {
    const mc_conv2d_shape *sh = &blk->s;
    mc_conv2d_shape s1 = scale_shape(sh);
    int B = s->B, C = sh->cout, HWo = s->Ho * s->Wo;
    size_t n = (size_t)B * C * HWo;
    size_t mk = mc_tape_mark(c->work);
    float *da = WORK(c, n), *dsum = WORK(c, n), *dt = WORK(c, n);
    const float *cur = dy;
    if (blk->act) {
        if (BLIVE(c)) mc_gelu_backward(da, dy, s->pre, n, 0);
        cur = da;
    }
    if (blk->has_se) se_bwd(c, &blk->se, &s->se, dsum, cur, B, HWo);
    else if (BLIVE(c)) memcpy(dsum, cur, n * sizeof(float));
    int written = 0;
    if (blk->has_conv) {
        mc_train_bn_backward(c, &s->bn_conv, dt, dsum, s->conv, &blk->conv.bn, B, C, HWo, 0);
        conv_bwd(c, dx, blk->conv.w, NULL, dt, s->x, sh, B, s->H, s->W, written);
        written = 1;
    }
    if (blk->has_scale) {
        mc_train_bn_backward(c, &s->bn_scale, dt, dsum, s->scale, &blk->scale.bn, B, C, HWo, 0);
        conv_bwd(c, dx, blk->scale.w, NULL, dt, s->x, &s1, B, s->H, s->W, written);
        written = 1;
    }
    if (blk->has_skip) {
        mc_train_bn_backward(c, &s->bn_skip, dx, dsum, s->x, &blk->skip, B, C, HWo, written);
        written = 1;
    }
    if (!written && dx && BLIVE(c)) memset(dx, 0, sizeof(float) * B * sh->cin * s->H * s->W);
    mc_tape_release(c->work, mk);
}

/* ---------------------------------------------------------------- ConvFFN */

static void ffn_shapes(const mc_mci_convffn *f, mc_conv2d_shape *dw, mc_conv2d_shape *fc1, mc_conv2d_shape *fc2) {
    *dw = (mc_conv2d_shape){f->C, f->C, f->k, f->k, 1, f->k / 2, f->k / 2, f->C};
    *fc1 = (mc_conv2d_shape){f->C, f->hidden, 1, 1, 1, 0, 0, 1};
    *fc2 = (mc_conv2d_shape){f->hidden, f->C, 1, 1, 1, 0, 0, 1};
}

/* drop(fc2(drop(gelu(fc1(bn(dwconv(x))))))), drop: FastViT's drop_rate (ctx->rate.drop) */
static float *ffn_fwd(mc_train_ctx *c, const mc_mci_convffn *f, mc_convffn_save *s, const float *x, int B, int H,
                      int W) {
    mc_conv2d_shape dw, fc1, fc2;
    ffn_shapes(f, &dw, &fc1, &fc2);
    size_t n = (size_t)B * f->C * H * W, nh = (size_t)B * f->hidden * H * W;
    int drop = s->dropout = c->train && c->rate.drop > 0;
    s->x = x;
    s->dw = TAKE(c, n);
    s->a = TAKE(c, n);
    s->h = TAKE(c, nh);
    s->out = TAKE(c, n);
    s->m_g = drop ? TAKE(c, nh) : NULL;
    s->m_o = drop ? TAKE(c, n) : NULL;
    /* the GELU output is not kept: backward recomputes it from h (saves 3/8 of the block) */
    size_t mk = mc_tape_mark(c->work);
    float *hg = WORK(c, nh);
    if (FLIVE(c)) mc_conv2d_forward(s->dw, x, f->dw.w, NULL, &dw, B, H, W);
    mc_train_bn_forward(c, &s->bn, s->a, s->dw, &f->dw.bn, B, f->C, H * W);
    if (FLIVE(c)) {
        mc_conv2d_forward(s->h, s->a, f->fc1_w, f->fc1_b, &fc1, B, H, W);
        mc_gelu_forward(hg, s->h, nh);
        if (drop) mc_dropout_forward(hg, s->m_g, hg, nh, c->rate.drop, c->rng);
        mc_conv2d_forward(s->out, hg, f->fc2_w, f->fc2_b, &fc2, B, H, W);
        if (drop) mc_dropout_forward(s->out, s->m_o, s->out, n, c->rate.drop, c->rng);
    }
    mc_tape_release(c->work, mk);
    return s->out;
}

static void ffn_bwd(mc_train_ctx *c, const mc_mci_convffn *f, const mc_convffn_save *s, float *dx, const float *dy,
                    int B, int H, int W, int acc) {
    mc_conv2d_shape dw, fc1, fc2;
    ffn_shapes(f, &dw, &fc1, &fc2);
    size_t n = (size_t)B * f->C * H * W, nh = (size_t)B * f->hidden * H * W;
    size_t mk = mc_tape_mark(c->work);
    float *dh = WORK(c, nh), *hg = WORK(c, nh), *da = WORK(c, n), *ddw = WORK(c, n);
    float *dyo = s->dropout ? WORK(c, n) : NULL; /* dy through the output dropout */
    if (BLIVE(c)) {
        mc_gelu_forward(hg, s->h, nh);
        if (s->m_g) mc_dropout_backward(hg, hg, s->m_g, nh); /* the forward's dropped GELU output */
        if (dyo) mc_dropout_backward(dyo, dy, s->m_o, n);
    }
    conv_bwd(c, dh, f->fc2_w, f->fc2_b, dyo ? dyo : dy, hg, &fc2, B, H, W, 0);
    if (BLIVE(c) && s->m_g) mc_dropout_backward(dh, dh, s->m_g, nh);
    if (BLIVE(c)) mc_gelu_backward(dh, dh, s->h, nh, 0);
    conv_bwd(c, da, f->fc1_w, f->fc1_b, dh, s->a, &fc1, B, H, W, 0);
    mc_train_bn_backward(c, &s->bn, ddw, da, s->dw, &f->dw.bn, B, f->C, H * W, 0);
    conv_bwd(c, dx, f->dw.w, NULL, ddw, s->x, &dw, B, H, W, acc);
    mc_tape_release(c->work, mk);
}

/* ---------------------------------------------------------------- RepMixer block */

/* out = x1 + ls * ffn(x1), x1 = x + ls_mix * (mixer(x) - norm(x)) */
float *mc_mci_repmixer_train_forward(mc_train_ctx *c, const mc_mci_repmixer_block *blk, mc_repmixer_save *s,
                                     const float *x, int B, int H, int W) {
    int C = blk->C, HW = H * W;
    size_t n = (size_t)B * C * HW;
    s->x = x;
    float *m = mc_mci_mobileone_train_forward(c, &blk->mixer, &s->mixer, x, B, H, W);
    s->t = TAKE(c, n);
    mc_train_bn_forward(c, &s->norm, s->t, x, &blk->norm.skip, B, C, HW);
    s->x1 = TAKE(c, n);
    if (FLIVE(c)) {
        sub_job j = {s->t, m};
        mc_parallel_span(n, 16384, rsub_span, &j);
        memcpy(s->x1, x, n * sizeof(float));
        mc_add_scaled_channels(s->x1, s->t, blk->mix_ls, B, C, HW);
    }
    float *f = ffn_fwd(c, &blk->ffn, &s->ffn, s->x1, B, H, W);
    s->out = scaled_residual_fwd(c, s->x1, f, blk->ls, B, C, HW, &s->keep);
    return s->out;
}

void mc_mci_repmixer_train_backward(mc_train_ctx *c, const mc_mci_repmixer_block *blk, const mc_repmixer_save *s,
                                    float *dx, const float *dy, int B, int H, int W) {
    int C = blk->C, HW = H * W;
    size_t n = (size_t)B * C * HW;
    size_t mk = mc_tape_mark(c->work);
    float *dx1 = WORK(c, n), *df = WORK(c, n), *dt = WORK(c, n);
    if (BLIVE(c)) {
        memcpy(dx1, dy, n * sizeof(float));
        mc_layer_scale_backward(df, G(c, blk->ls), dy, s->ffn.out, blk->ls, B, C, HW);
        if (s->keep) mc_drop_path_backward(df, df, s->keep, B, (size_t)C * HW);
    }
    ffn_bwd(c, &blk->ffn, &s->ffn, dx1, df, B, H, W, 1);
    if (BLIVE(c)) mc_layer_scale_backward(dt, G(c, blk->mix_ls), dx1, s->t, blk->mix_ls, B, C, HW);
    mc_mci_mobileone_train_backward(c, &blk->mixer, &s->mixer, dx, dt);
    if (BLIVE(c)) {
        mc_add_forward(dx, dx1, n);
        mc_neg_forward(dt, dt, n);
    }
    mc_train_bn_backward(c, &s->norm, dx, dt, s->x, &blk->norm.skip, B, C, HW, 1);
    mc_tape_release(c->work, mk);
}

/* ---------------------------------------------------------------- attention block */

float *mc_mci_attention_train_forward(mc_train_ctx *c, const mc_mci_attention_block *blk, mc_attention_save *s,
                                      const float *x, int B, int H, int W) {
    int C = blk->C, N = H * W, nh = blk->heads, hd = blk->head_dim;
    size_t n = (size_t)B * C * N;
    s->x = x;
    size_t mk = mc_tape_mark(c->work);
    float *xn = WORK(c, n);
    mc_train_bn_forward(c, &s->bn, xn, x, &blk->norm, B, C, N);
    s->tok = TAKE(c, n);
    if (FLIVE(c)) mc_transpose_chw_to_hwc(s->tok, xn, B, C, N);
    s->qkv = TAKE(c, 3 * n);
    s->p = TAKE(c, (size_t)B * nh * N * N);
    s->o = TAKE(c, n);
    s->a = TAKE(c, n);
    if (FLIVE(c)) {
        mc_linear_forward(s->qkv, s->tok, blk->qkv_w, NULL, B * N, C, 3 * C);
        mc_attention_train_forward(s->o, s->p, s->qkv, B, N, nh, hd, 1.0f / sqrtf((float)hd), 0);
        mc_linear_forward(xn, s->o, blk->proj_w, blk->proj_b, B * N, C, C);
        mc_transpose_hwc_to_chw(s->a, xn, B, C, N);
    }
    mc_tape_release(c->work, mk);
    s->x1 = scaled_residual_fwd(c, x, s->a, blk->ls1, B, C, N, &s->keep1);
    float *f = ffn_fwd(c, &blk->ffn, &s->ffn, s->x1, B, H, W);
    s->out = scaled_residual_fwd(c, s->x1, f, blk->ls2, B, C, N, &s->keep2);
    return s->out;
}

void mc_mci_attention_train_backward(mc_train_ctx *c, const mc_mci_attention_block *blk, const mc_attention_save *s,
                                     float *dx, const float *dy, int B, int H, int W) {
    int C = blk->C, N = H * W, nh = blk->heads, hd = blk->head_dim;
    size_t n = (size_t)B * C * N;
    size_t mk = mc_tape_mark(c->work);
    float *dx1 = WORK(c, n), *df = WORK(c, n), *dtok = WORK(c, n), *dq = WORK(c, 3 * n);
    float *sc = WORK(c, mc_attention_backward_scratch(B, N, nh));
    if (BLIVE(c)) {
        memcpy(dx1, dy, n * sizeof(float));
        mc_layer_scale_backward(df, G(c, blk->ls2), dy, s->ffn.out, blk->ls2, B, C, N);
        if (s->keep2) mc_drop_path_backward(df, df, s->keep2, B, (size_t)C * N);
    }
    ffn_bwd(c, &blk->ffn, &s->ffn, dx1, df, B, H, W, 1);
    if (BLIVE(c)) {
        /* df: d a [B,C,N] -> dtok: d proj [B,N,C] -> df: d o -> dq: d qkv -> dtok: d tokens */
        mc_layer_scale_backward(df, G(c, blk->ls1), dx1, s->a, blk->ls1, B, C, N);
        if (s->keep1) mc_drop_path_backward(df, df, s->keep1, B, (size_t)C * N);
        mc_transpose_chw_to_hwc(dtok, df, B, C, N);
        mc_linear_backward(df, G(c, blk->proj_w), G(c, blk->proj_b), dtok, s->o, blk->proj_w, B * N, C, C, 0);
        mc_attention_backward(dq, df, s->qkv, s->p, B, N, nh, hd, 1.0f / sqrtf((float)hd), 0, sc);
        mc_linear_backward(dtok, G(c, blk->qkv_w), NULL, dq, s->tok, blk->qkv_w, B * N, C, 3 * C, 0);
        mc_transpose_hwc_to_chw(df, dtok, B, C, N);
        memcpy(dx, dx1, n * sizeof(float));
    }
    mc_train_bn_backward(c, &s->bn, dx, df, s->x, &blk->norm, B, C, N, 1);
    mc_tape_release(c->work, mk);
}

/* ---------------------------------------------------------------- PatchEmbed, RepCPE */

float *mc_mci_patch_embed_train_forward(mc_train_ctx *c, const mc_mci_patch_embed *pe, mc_patch_embed_save *s,
                                        const float *x, int B, int H, int W) {
    int Ho = mc_conv_out(H, 7, 2, 3), Wo = mc_conv_out(W, 7, 2, 3), C = pe->cout, HWo = Ho * Wo;
    size_t n = (size_t)B * C * HWo;
    s->x = x;
    s->H = H, s->W = W, s->Ho = Ho, s->Wo = Wo;
    s->lk = TAKE(c, n);
    s->sm = TAKE(c, n);
    s->sum = TAKE(c, n);
    size_t mk = mc_tape_mark(c->work);
    float *tmp = WORK(c, n);
    if (FLIVE(c)) {
        mc_conv2d_forward(s->lk, x, pe->lk.w, NULL, &pe->lk_s, B, H, W);
        mc_conv2d_forward(s->sm, x, pe->small.w, NULL, &pe->small_s, B, H, W);
    }
    mc_train_bn_forward(c, &s->bn_lk, s->sum, s->lk, &pe->lk.bn, B, C, HWo);
    mc_train_bn_forward(c, &s->bn_sm, tmp, s->sm, &pe->small.bn, B, C, HWo);
    if (FLIVE(c)) mc_add_forward(s->sum, tmp, n);
    mc_tape_release(c->work, mk);
    s->pre = pe->has_se ? se_fwd(c, &pe->se, &s->se, s->sum, B, HWo) : s->sum;
    s->g = TAKE(c, n);
    if (FLIVE(c)) mc_gelu_forward(s->g, s->pre, n);
    return mc_mci_mobileone_train_forward(c, &pe->pw, &s->pw, s->g, B, Ho, Wo);
}

void mc_mci_patch_embed_train_backward(mc_train_ctx *c, const mc_mci_patch_embed *pe, const mc_patch_embed_save *s,
                                       float *dx, const float *dy, int B) {
    int C = pe->cout, HWo = s->Ho * s->Wo;
    size_t n = (size_t)B * C * HWo;
    size_t mk = mc_tape_mark(c->work);
    float *dg = WORK(c, n), *dsum = WORK(c, n), *dt = WORK(c, n);
    mc_mci_mobileone_train_backward(c, &pe->pw, &s->pw, dg, dy);
    if (BLIVE(c)) mc_gelu_backward(dg, dg, s->pre, n, 0);
    if (pe->has_se) se_bwd(c, &pe->se, &s->se, dsum, dg, B, HWo);
    else if (BLIVE(c)) memcpy(dsum, dg, n * sizeof(float));
    mc_train_bn_backward(c, &s->bn_lk, dt, dsum, s->lk, &pe->lk.bn, B, C, HWo, 0);
    conv_bwd(c, dx, pe->lk.w, NULL, dt, s->x, &pe->lk_s, B, s->H, s->W, 0);
    mc_train_bn_backward(c, &s->bn_sm, dt, dsum, s->sm, &pe->small.bn, B, C, HWo, 0);
    conv_bwd(c, dx, pe->small.w, NULL, dt, s->x, &pe->small_s, B, s->H, s->W, 1);
    mc_tape_release(c->work, mk);
}

static mc_conv2d_shape cpe_shape(const mc_mci_repcpe *cpe) {
    return (mc_conv2d_shape){cpe->C, cpe->C, cpe->k, cpe->k, 1, cpe->k / 2, cpe->k / 2, cpe->C};
}

/* x + dwconv(x) + b */
float *mc_mci_repcpe_train_forward(mc_train_ctx *c, const mc_mci_repcpe *cpe, const float *x, int B, int H, int W) {
    size_t n = (size_t)B * cpe->C * H * W;
    mc_conv2d_shape s = cpe_shape(cpe);
    float *out = TAKE(c, n);
    if (FLIVE(c)) {
        mc_conv2d_forward(out, x, cpe->w, cpe->b, &s, B, H, W);
        mc_add_forward(out, x, n);
    }
    return out;
}

void mc_mci_repcpe_train_backward(mc_train_ctx *c, const mc_mci_repcpe *cpe, const float *x, float *dx,
                                  const float *dy, int B, int H, int W) {
    mc_conv2d_shape s = cpe_shape(cpe);
    if (BLIVE(c)) memcpy(dx, dy, sizeof(float) * B * cpe->C * H * W);
    conv_bwd(c, dx, cpe->w, cpe->b, dy, x, &s, B, H, W, 1);
}

/* ---------------------------------------------------------------- tower */

int mc_mci_train_state_init(mc_mci_train_state *st, const mc_mci *m, mc_err *e) {
    memset(st, 0, sizeof *st);
    for (int k = 0; k < m->nelements; k++) {
        const mc_mci_element *el = &m->net[k];
        if (el->kind == MC_MCI_REPMIXER_STAGE) st->rep[k] = calloc((size_t)el->nblocks, sizeof *st->rep[k]);
        if (el->kind == MC_MCI_ATTENTION_STAGE) st->attn[k] = calloc((size_t)el->nblocks, sizeof *st->attn[k]);
        if ((el->kind == MC_MCI_REPMIXER_STAGE && !st->rep[k]) || (el->kind == MC_MCI_ATTENTION_STAGE && !st->attn[k])) {
            mc_mci_train_state_free(st);
            return mc_fail(e, MC_E_NOMEM, "out of memory for the training state");
        }
    }
    return 0;
}

void mc_mci_train_state_free(mc_mci_train_state *st) {
    for (int k = 0; k < MC_MCI_MAX_ELEMENTS; k++) {
        free(st->rep[k]);
        free(st->attn[k]);
        st->rep[k] = NULL;
        st->attn[k] = NULL;
    }
}

int mc_mci_train_forward(mc_train_ctx *c, const mc_mci *m, mc_mci_train_state *st, const float *images, int B, int R,
                         mc_err *e) {
    if (B < 1 || R < 32) return mc_fail(e, MC_E_ARG, "%s: bad training input size B=%d R=%d", m->cfg->name, B, R);
    st->B = B, st->R = R;
    int H = R, W = R;
    size_t mx = 0;
    const float *x = images;
    for (int i = 0; i < 3; i++) {
        x = mc_mci_mobileone_train_forward(c, &m->stem[i], &st->stem[i], x, B, H, W);
        H = st->stem[i].Ho, W = st->stem[i].Wo;
        mx = zmax(mx, (size_t)B * m->stem[i].s.cout * H * W);
    }
    /* stochastic depth: block j of the nb stage blocks gets rate * j / (nb - 1) (the reference's
     * block_dpr); bc is the blocks' context */
    int nb = 0, j = 0;
    for (int k = 0; k < m->nelements; k++) nb += m->net[k].nblocks;
    mc_train_ctx bc = *c;
    for (int k = 0; k < m->nelements; k++) {
        const mc_mci_element *el = &m->net[k];
        st->elem_hw[k][0] = H, st->elem_hw[k][1] = W;
        switch (el->kind) {
        case MC_MCI_REPMIXER_STAGE:
        case MC_MCI_ATTENTION_STAGE:
            for (int i = 0; i < el->nblocks; i++, j++) {
                bc.rate.drop_path = nb > 1 ? (float)((double)c->rate.drop_path * j / (nb - 1)) : 0.f;
                x = el->kind == MC_MCI_REPMIXER_STAGE
                        ? mc_mci_repmixer_train_forward(&bc, &el->rep[i], &st->rep[k][i], x, B, H, W)
                        : mc_mci_attention_train_forward(&bc, &el->attn[i], &st->attn[k][i], x, B, H, W);
            }
            break;
        case MC_MCI_REPCPE:
            st->cpe_x[k] = x;
            x = mc_mci_repcpe_train_forward(c, &el->cpe, x, B, H, W);
            break;
        case MC_MCI_PATCH_EMBED:
            x = mc_mci_patch_embed_train_forward(c, &el->pe, &st->pe[k], x, B, H, W);
            H = st->pe[k].Ho, W = st->pe[k].Wo;
            break;
        }
        mx = zmax(mx, (size_t)B * el->cout * H * W);
    }
    x = mc_mci_mobileone_train_forward(c, &m->conv_exp, &st->conv_exp, x, B, H, W);
    int Cx = m->conv_exp.s.cout;
    st->Hf = H, st->Wf = W;
    mx = zmax(mx, (size_t)B * Cx * H * W);
    st->max_act = mx;
    st->pooled = TAKE(c, (size_t)B * Cx);
    st->embed = TAKE(c, (size_t)B * m->embed_dim);
    if (FLIVE(c)) {
        mc_mean_hw_forward(st->pooled, x, B, Cx, H * W);
        mc_matmul_forward(st->embed, st->pooled, m->head_proj, B, Cx, m->embed_dim);
    }
    if (c->tape->base && (c->tape->overflow || c->work->overflow))
        return mc_fail(e, MC_E_NOMEM, "%s: training activation arena too small (%zu + %zu floats needed)", m->cfg->name,
                       c->tape->peak, c->work->peak);
    return 0;
}

int mc_mci_train_backward(mc_train_ctx *c, const mc_mci *m, mc_mci_train_state *st, const float *dembed, mc_err *e) {
    int B = st->B, Cx = m->conv_exp.s.cout;
    size_t mk = mc_tape_mark(c->work);
    float *da = WORK(c, st->max_act), *db = WORK(c, st->max_act), *dp = WORK(c, (size_t)B * Cx), *t;
    if (BLIVE(c)) {
        mc_matmul_backward(dp, G(c, m->head_proj), dembed, st->pooled, m->head_proj, B, Cx, m->embed_dim, 0);
        mc_mean_hw_backward(da, dp, B, Cx, st->Hf * st->Wf, 0);
    }
#define SWAP() (t = da, da = db, db = t)
    mc_mci_mobileone_train_backward(c, &m->conv_exp, &st->conv_exp, db, da);
    SWAP();
    for (int k = m->nelements - 1; k >= 0; k--) {
        const mc_mci_element *el = &m->net[k];
        int H = st->elem_hw[k][0], W = st->elem_hw[k][1];
        switch (el->kind) {
        case MC_MCI_REPMIXER_STAGE:
            for (int i = el->nblocks - 1; i >= 0; i--) {
                mc_mci_repmixer_train_backward(c, &el->rep[i], &st->rep[k][i], db, da, B, H, W);
                SWAP();
            }
            break;
        case MC_MCI_ATTENTION_STAGE:
            for (int i = el->nblocks - 1; i >= 0; i--) {
                mc_mci_attention_train_backward(c, &el->attn[i], &st->attn[k][i], db, da, B, H, W);
                SWAP();
            }
            break;
        case MC_MCI_REPCPE:
            mc_mci_repcpe_train_backward(c, &el->cpe, st->cpe_x[k], db, da, B, H, W);
            SWAP();
            break;
        case MC_MCI_PATCH_EMBED:
            mc_mci_patch_embed_train_backward(c, &el->pe, &st->pe[k], db, da, B);
            SWAP();
            break;
        }
    }
    for (int i = 2; i >= 0; i--) {
        mc_mci_mobileone_train_backward(c, &m->stem[i], &st->stem[i], i ? db : NULL, da);
        SWAP();
    }
#undef SWAP
    mc_tape_release(c->work, mk);
    if (c->work->base && c->work->overflow)
        return mc_fail(e, MC_E_NOMEM, "%s: backward work arena too small (%zu floats needed)", m->cfg->name,
                       c->work->peak);
    return 0;
}

int mc_mci_train_sizes(const mc_mci *m, int B, int R, const mc_dropout_rates *rates, size_t *tape_floats,
                       size_t *work_floats, mc_err *e) {
    mc_tape tape = {0}, work = {0};
    mc_train_ctx c = mc_train_measure_ctx(&tape, &work, rates);
    mc_mci_train_state st;
    int r = mc_mci_train_state_init(&st, m, e);
    if (r) return r;
    if (!(r = mc_mci_train_forward(&c, m, &st, NULL, B, R, e))) r = mc_mci_train_backward(&c, m, &st, NULL, e);
    mc_mci_train_state_free(&st);
    *tape_floats = tape.peak;
    *work_floats = work.peak;
    return r;
}
