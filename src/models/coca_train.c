/* CoCa in training mode (see coca_train.h). Same discipline as text_train.c: saved tensors
 * from ctx->tape, temporaries from ctx->work, arithmetic only while the tapes are live (a
 * measuring pass with NULL bases sizes both). */
#include "models/coca_train.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "core/rng.h"
#include "nn/layers.h"
#include "nn/simd_expf.h"
#include "train/loss.h"

#define TAKE(c, n) mc_tape_take((c)->tape, (size_t)(n))
#define WORK(c, n) mc_tape_take((c)->work, (size_t)(n))
#define FLIVE(c) mc_tape_live((c)->tape)
#define BLIVE(c) mc_tape_live((c)->work)
#define G(c, p) mc_grad_of((c)->grads, (p))

/* the gradient of p + off (NULL when p has none) */
static float *g_at(mc_train_ctx *c, const float *p, size_t off) {
    float *g = G(c, p);
    return g ? g + off : NULL;
}

static float head_scale(int D) { return (float)(1.0 / sqrt((double)D)); }

/* ---------------------------------------------------------------- the trainable model */

int mc_coca_trainable_init(mc_coca_trainable *t, const mc_oc_cfg *cfg, mc_tensor_map *weights, mc_err *e) {
    memset(t, 0, sizeof *t);
    mc_param_store_init(&t->store);
    if (cfg->quick_gelu) {
        if (weights) mc_tensor_map_free(weights);
        return mc_fail(e, MC_E_UNSUPPORTED, "%s: CoCa training supports nn.GELU only (quick_gelu is set)",
                       cfg->name[0] ? cfg->name : "CoCa");
    }
    if (cfg->text.proj_bias || cfg->text.proj_none) {
        if (weights) mc_tensor_map_free(weights);
        return mc_fail(e, MC_E_UNSUPPORTED, "%s: CoCa training needs the text_projection matrix (no proj_bias/none)",
                       cfg->name[0] ? cfg->name : "CoCa");
    }
    mc_coca decl;
    int r = mc_coca_init_declared(&decl, cfg, e); /* the names and shapes, in binding order */
    if (r) {
        if (weights) mc_tensor_map_free(weights);
        return r;
    }
    r = mc_param_store_from_map(&t->store, &decl.clip.weights, NULL, e);
    mc_coca_free(&decl);
    if (!r && weights) r = mc_param_store_load_map(&t->store, weights, NULL, e);
    if (weights) mc_tensor_map_free(weights);
    mc_tensor_map views;
    if (!r) r = mc_param_store_as_map(&t->store, &views, e);
    if (!r) r = mc_coca_init(&t->m, &views, cfg, e); /* owns (and frees) the views */
    if (!r) t->logit_scale = mc_param_store_data(&t->store, "logit_scale");
    if (!r && !t->logit_scale) r = mc_fail(e, MC_E_MODEL, "CoCa: no logit_scale parameter");
    if (!r && !isfinite(*t->logit_scale)) r = mc_fail(e, MC_E_MODEL, "CoCa: logit_scale is not a finite number");
    if (r) mc_coca_trainable_free(t);
    return r;
}

void mc_coca_trainable_free(mc_coca_trainable *t) {
    mc_coca_free(&t->m);
    mc_param_store_free(&t->store);
    t->logit_scale = NULL;
}

/* ---------------------------------------------------------------- fresh initialisation */

/* a draw in (0, 1): log() of it is finite */
static double unit(mc_rng *r) { return mc_rng_double(r) + 0x1p-54; }
static void fill_normal(float *p, size_t n, double std, mc_rng *s) { /* Box-Muller */
    for (size_t i = 0; i < n; i++) {
        double u = unit(s), v = unit(s);
        p[i] = (float)(std * sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v));
    }
}
static void fill_uniform(float *p, size_t n, double bound, mc_rng *s) {
    for (size_t i = 0; i < n; i++) p[i] = (float)(bound * (2.0 * unit(s) - 1.0));
}
static void fill_const(float *p, size_t n, float v) {
    for (size_t i = 0; i < n; i++) p[i] = v;
}
static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}
static int has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

void mc_coca_init_fresh(mc_coca_trainable *t, uint64_t seed) {
    const mc_oc_cfg *cfg = &t->m.clip.cfg;
    int Cv = cfg->vision.width, W = cfg->text.width, Lt = cfg->text.layers;
    for (int i = 0; i < t->store.count; i++) {
        const mc_param *p = &t->store.params[i];
        if (p->flags & MC_PARAM_COUNTER) continue;
        float *x = t->store.data + p->offset;
        const char *name = p->name;
        mc_rng s;
        mc_rng_init(&s, seed, (uint64_t)i); /* one stream per tensor */
        int text = has_prefix(name, "text.") && !has_prefix(name, "text_decoder.");
        int64_t fan_in = p->ndim == 2 ? p->shape[1] : 1;
        if (strcmp(name, "logit_scale") == 0) {
            fill_const(x, p->numel, (float)log(1.0 / 0.07));
        } else if (strstr(name, "ln_") && ends_with(name, ".weight")) {
            fill_const(x, p->numel, 1.f);
        } else if (strstr(name, "ln_") && ends_with(name, ".bias")) {
            fill_const(x, p->numel, 0.f);
        } else if (text) {
            double proj_std = pow(W, -0.5) * pow(2.0 * Lt, -0.5);
            if (ends_with(name, "token_embedding.weight")) fill_normal(x, p->numel, 0.02, &s);
            else if (ends_with(name, "positional_embedding") || ends_with(name, "cls_emb")) fill_normal(x, p->numel, 0.01, &s);
            else if (ends_with(name, "attn.in_proj_weight")) fill_normal(x, p->numel, pow(W, -0.5), &s);
            else if (ends_with(name, "attn.out_proj.weight") || ends_with(name, "mlp.c_proj.weight"))
                fill_normal(x, p->numel, proj_std, &s);
            else if (ends_with(name, "mlp.c_fc.weight")) fill_normal(x, p->numel, pow(2.0 * W, -0.5), &s);
            else if (ends_with(name, "text_projection")) fill_normal(x, p->numel, pow(W, -0.5), &s);
            else if (ends_with(name, "in_proj_bias") || ends_with(name, "out_proj.bias")) fill_const(x, p->numel, 0.f);
            else if (ends_with(name, "mlp.c_fc.bias")) fill_uniform(x, p->numel, pow(W, -0.5), &s);
            else if (ends_with(name, "mlp.c_proj.bias")) fill_uniform(x, p->numel, pow(4.0 * W, -0.5), &s);
            else fill_normal(x, p->numel, 0.02, &s);
        } else { /* visual.* and text_decoder.*: PyTorch defaults plus the ViT's own draws */
            if (strcmp(name, "visual.conv1.weight") == 0) {
                fill_uniform(x, p->numel, 1.0 / sqrt((double)(p->shape[1] * p->shape[2] * p->shape[3])), &s);
            } else if (strcmp(name, "visual.class_embedding") == 0 || strcmp(name, "visual.positional_embedding") == 0 ||
                       strcmp(name, "visual.proj") == 0) {
                fill_normal(x, p->numel, pow(Cv, -0.5), &s);
            } else if (ends_with(name, "attn_pool.query")) {
                fill_normal(x, p->numel, 1.0, &s);
            } else if (ends_with(name, "in_proj_weight")) { /* xavier_uniform of the [3D, in] tensor */
                fill_uniform(x, p->numel, sqrt(6.0 / (double)(p->shape[0] + p->shape[1])), &s);
            } else if (ends_with(name, "q_proj_weight") || ends_with(name, "k_proj_weight") ||
                       ends_with(name, "v_proj_weight")) {
                fill_uniform(x, p->numel, sqrt(6.0 / (double)(p->shape[0] + p->shape[1])), &s);
            } else if (ends_with(name, "in_proj_bias") || ends_with(name, "out_proj.bias")) {
                fill_const(x, p->numel, 0.f);
            } else if (strcmp(name, "text_decoder.text_projection") == 0) {
                fill_normal(x, p->numel, pow(p->shape[0], -0.5), &s);
            } else if (p->ndim == 2) { /* nn.Linear: kaiming_uniform(a = sqrt 5) = U(+-1/sqrt(fan_in)) */
                fill_uniform(x, p->numel, 1.0 / sqrt((double)fan_in), &s);
            } else if (ends_with(name, ".bias")) { /* nn.Linear bias: U(+-1/sqrt(fan_in)) of its weight */
                char wname[256];
                size_t n = strlen(name) - 4;
                snprintf(wname, sizeof wname, "%.*sweight", (int)n, name);
                const mc_param *w = mc_param_store_find(&t->store, wname);
                fill_uniform(x, p->numel, w && w->ndim == 2 ? 1.0 / sqrt((double)w->shape[1]) : 0.0, &s);
            } else {
                fill_normal(x, p->numel, 0.02, &s);
            }
        }
    }
    t->m.clip.logit_scale_raw = *t->logit_scale;
}

/* ---------------------------------------------------------------- state */

int mc_coca_train_state_init(mc_coca_train_state *st, const mc_coca *m, mc_err *e) {
    memset(st, 0, sizeof *st);
    st->vl = calloc((size_t)m->clip.visual->layers + 1, sizeof *st->vl);
    st->tl = calloc((size_t)m->clip.text->layers + 1, sizeof *st->tl);
    st->ds = calloc((size_t)m->dec.layers + 1, sizeof *st->ds);
    st->cs = calloc((size_t)m->dec.layers + 1, sizeof *st->cs);
    if (!st->vl || !st->tl || !st->ds || !st->cs) {
        mc_coca_train_state_free(st);
        return mc_fail(e, MC_E_NOMEM, "out of memory for the CoCa training state");
    }
    return 0;
}

void mc_coca_train_state_free(mc_coca_train_state *st) {
    free(st->vl);
    free(st->tl);
    free(st->ds);
    free(st->cs);
    memset(st, 0, sizeof *st);
}

/* ---------------------------------------------------------------- cross-attention block */

static mc_attention_args cross_args(const mc_coca_cross_save *s, int T, int Ti, int H, int W) {
    return (mc_attention_args){.q = s->q, .k = s->k, .v = s->v, .q_ld = (size_t)W, .kv_ld = (size_t)W,
                               .q_batch = (size_t)T * W, .kv_batch = (size_t)Ti * W, .Tq = T, .Tk = Ti, .H = H,
                               .D = W / H, .scale = head_scale(W / H), .causal_off = INT_MAX};
}

/* x [N,T,W] against image tokens img [N,Ti,W] -> s->out */
static const float *cross_forward(mc_train_ctx *c, const mc_transformer_layer *l, mc_coca_cross_save *s,
                                  const float *x, const float *img, int N, int T, int Ti) {
    int W = l->dim, F = l->ffn_dim, H = l->heads, M = N * T, Mi = N * Ti;
    size_t n = (size_t)M * W, ni = (size_t)Mi * W;
    s->x = x;
    s->img = img;
    s->h1 = TAKE(c, n), s->mean1 = TAKE(c, M), s->rstd1 = TAKE(c, M);
    s->hk = TAKE(c, ni), s->meank = TAKE(c, Mi), s->rstdk = TAKE(c, Mi);
    s->q = TAKE(c, n), s->k = TAKE(c, ni), s->v = TAKE(c, ni);
    s->p = TAKE(c, (size_t)N * H * T * Ti);
    s->o = TAKE(c, n), s->x1 = TAKE(c, n);
    s->h2 = TAKE(c, n), s->mean2 = TAKE(c, M), s->rstd2 = TAKE(c, M);
    s->f = TAKE(c, (size_t)M * F);
    s->out = TAKE(c, n);
    size_t mk = mc_tape_mark(c->work);
    float *g = WORK(c, (size_t)M * F);
    if (FLIVE(c) && mc_tape_live(c->work)) {
        size_t WW = (size_t)W * W;
        mc_layernorm_train_forward(s->h1, s->mean1, s->rstd1, x, l->ln1_w, l->ln1_b, M, W, l->ln_eps);
        mc_layernorm_train_forward(s->hk, s->meank, s->rstdk, img, l->ln1kv_w, l->ln1kv_b, Mi, W, l->ln_eps);
        mc_linear_forward(s->q, s->h1, l->qkv_w, l->qkv_b, M, W, W);
        mc_linear_forward(s->k, s->hk, l->qkv_w + WW, l->qkv_b + W, Mi, W, W);
        mc_linear_forward(s->v, s->hk, l->qkv_w + 2 * WW, l->qkv_b + 2 * W, Mi, W, W);
        mc_attention_args a = cross_args(s, T, Ti, H, W);
        mc_attention_general_train_forward(s->o, s->p, &a, N);
        memcpy(s->x1, x, n * sizeof(float));
        mc_linear_accumulate(s->x1, s->o, l->out_w, l->out_b, M, W, W);
        mc_layernorm_train_forward(s->h2, s->mean2, s->rstd2, s->x1, l->ln2_w, l->ln2_b, M, W, l->ln_eps);
        mc_linear_forward(s->f, s->h2, l->fc1_w, l->fc1_b, M, W, F);
        mc_gelu_forward(g, s->f, (size_t)M * F);
        memcpy(s->out, s->x1, n * sizeof(float));
        mc_linear_accumulate(s->out, g, l->fc2_w, l->fc2_b, M, F, W);
    }
    mc_tape_release(c->work, mk);
    return s->out;
}

/* dx [N,T,W] written from dy; dimg [N,Ti,W] += (the image tokens feed every cross block). */
static void cross_backward(mc_train_ctx *c, const mc_transformer_layer *l, const mc_coca_cross_save *s, float *dx,
                           float *dimg, const float *dy, int N, int T, int Ti) {
    int W = l->dim, F = l->ffn_dim, H = l->heads, M = N * T, Mi = N * Ti;
    size_t n = (size_t)M * W, ni = (size_t)Mi * W, WW = (size_t)W * W;
    size_t mk = mc_tape_mark(c->work);
    float *dx1 = WORK(c, n), *dh = WORK(c, n), *dg = WORK(c, (size_t)M * F), *g = WORK(c, (size_t)M * F);
    float *dq = WORK(c, n), *dk = WORK(c, ni), *dv = WORK(c, ni), *dhk = WORK(c, ni);
    mc_attention_args a = cross_args(s, T, Ti, H, W);
    float *sc = WORK(c, mc_attention_general_backward_scratch(&a));
    if (BLIVE(c)) {
        memcpy(dx1, dy, n * sizeof(float));
        mc_gelu_forward(g, s->f, (size_t)M * F);
        mc_linear_backward(dg, G(c, l->fc2_w), G(c, l->fc2_b), dy, g, l->fc2_w, M, F, W, 0);
        mc_gelu_backward(dg, dg, s->f, (size_t)M * F, 0);
        mc_linear_backward(dh, G(c, l->fc1_w), G(c, l->fc1_b), dg, s->h2, l->fc1_w, M, W, F, 0);
        mc_layernorm_backward(dx1, G(c, l->ln2_w), G(c, l->ln2_b), dh, s->x1, s->mean2, s->rstd2, l->ln2_w, M, W, 1);
        memcpy(dx, dx1, n * sizeof(float));
        mc_linear_backward(dh, G(c, l->out_w), G(c, l->out_b), dx1, s->o, l->out_w, M, W, W, 0);
        memset(dq, 0, n * sizeof(float));
        memset(dk, 0, ni * sizeof(float));
        memset(dv, 0, ni * sizeof(float));
        mc_attention_general_backward(dq, dk, dv, dh, &a, s->p, N, sc);
        mc_linear_backward(dh, G(c, l->qkv_w), G(c, l->qkv_b), dq, s->h1, l->qkv_w, M, W, W, 0);
        mc_layernorm_backward(dx, G(c, l->ln1_w), G(c, l->ln1_b), dh, s->x, s->mean1, s->rstd1, l->ln1_w, M, W, 1);
        mc_linear_backward(dhk, g_at(c, l->qkv_w, WW), g_at(c, l->qkv_b, W), dk, s->hk, l->qkv_w + WW, Mi, W, W, 0);
        mc_linear_backward(dhk, g_at(c, l->qkv_w, 2 * WW), g_at(c, l->qkv_b, 2 * W), dv, s->hk, l->qkv_w + 2 * WW, Mi,
                           W, W, 1);
        mc_layernorm_backward(dimg, G(c, l->ln1kv_w), G(c, l->ln1kv_b), dhk, s->img, s->meank, s->rstdk, l->ln1kv_w,
                              Mi, W, 1);
    }
    mc_tape_release(c->work, mk);
}

/* ---------------------------------------------------------------- forward */

static mc_attention_args pool_args(const mc_oc_vision *v, const mc_coca_train_state *st) {
    int D = v->out_dim, T = v->n_tok, H = v->cfg.attn_pooler_heads;
    return (mc_attention_args){.q = st->q, .k = st->k, .v = st->v, .q_ld = (size_t)D, .kv_ld = (size_t)D,
                               .q_batch = 0, .kv_batch = (size_t)T * D, .Tq = v->cfg.attn_pooler_queries, .Tk = T,
                               .H = H, .D = D / H, .scale = head_scale(D / H), .causal_off = INT_MAX};
}

static void vision_forward(mc_train_ctx *c, const mc_oc_vision *v, mc_coca_train_state *st, const float *images,
                           int B) {
    int C = v->width, g = v->grid, P = g * g, T = v->n_tok, D = v->out_dim, Q = v->cfg.attn_pooler_queries;
    int H = v->cfg.attn_pooler_heads, R = v->cfg.image_size, M = B * T, E = v->out_dim;
    float eps = (float)v->cfg.ln_eps;
    st->patch = TAKE(c, (size_t)B * C * P);
    st->emb = TAKE(c, (size_t)M * C);
    if (FLIVE(c)) {
        mc_conv2d_shape cs = {3, C, v->patch, v->patch, v->patch, 0, 0, 1};
        mc_conv2d_forward(st->patch, images, v->conv1, NULL, &cs, B, R, R);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                float *xt = st->emb + ((size_t)b * T + t) * C;
                const float *pe = v->pos + (size_t)t * C;
                for (int k = 0; k < C; k++)
                    xt[k] = (t == 0 ? v->cls[k] : st->patch[((size_t)b * C + k) * P + (t - 1)]) + pe[k];
            }
    }
    const float *x = st->emb;
    st->pre = NULL;
    if (v->ln_pre_w) {
        st->pre = TAKE(c, (size_t)M * C), st->pre_mean = TAKE(c, M), st->pre_rstd = TAKE(c, M);
        if (FLIVE(c)) mc_layernorm_train_forward(st->pre, st->pre_mean, st->pre_rstd, x, v->ln_pre_w, v->ln_pre_b, M, C, eps);
        x = st->pre;
    }
    for (int i = 0; i < v->layers; i++) x = mc_transformer_train_forward(c, &v->blocks[i], &st->vl[i], x, B, T, 0);
    st->xv = x;
    /* attentional pooler */
    st->xk = TAKE(c, (size_t)M * C), st->k_mean = TAKE(c, M), st->k_rstd = TAKE(c, M);
    st->qn = TAKE(c, (size_t)Q * D), st->q_mean = TAKE(c, Q), st->q_rstd = TAKE(c, Q), st->q = TAKE(c, (size_t)Q * D);
    st->k = TAKE(c, (size_t)M * D), st->v = TAKE(c, (size_t)M * D);
    st->pp = TAKE(c, (size_t)B * H * Q * T);
    st->po = TAKE(c, (size_t)B * Q * D), st->pout = TAKE(c, (size_t)B * Q * D);
    st->post = TAKE(c, (size_t)B * Q * D), st->post_mean = TAKE(c, B * Q), st->post_rstd = TAKE(c, B * Q);
    st->pooled = TAKE(c, (size_t)B * D), st->img_feat = TAKE(c, (size_t)B * E);
    st->img_tok = TAKE(c, (size_t)B * (Q - 1) * D);
    if (!FLIVE(c)) return;
    mc_layernorm_train_forward(st->xk, st->k_mean, st->k_rstd, x, v->ln_k_w, v->ln_k_b, M, C, eps);
    mc_layernorm_train_forward(st->qn, st->q_mean, st->q_rstd, v->pool_query, v->ln_q_w, v->ln_q_b, Q, D, eps);
    mc_linear_forward(st->q, st->qn, v->pool_q_w, v->pool_in_b, Q, D, D);
    mc_linear_forward(st->k, st->xk, v->pool_k_w, v->pool_in_b + D, M, C, D);
    mc_linear_forward(st->v, st->xk, v->pool_v_w, v->pool_in_b + 2 * D, M, C, D);
    mc_attention_args a = pool_args(v, st);
    mc_attention_general_train_forward(st->po, st->pp, &a, B);
    mc_linear_forward(st->pout, st->po, v->pool_out_w, v->pool_out_b, B * Q, D, D);
    mc_layernorm_train_forward(st->post, st->post_mean, st->post_rstd, st->pout, v->ln_post_w, v->ln_post_b, B * Q, D,
                               eps);
    for (int b = 0; b < B; b++) {
        const float *y = st->post + (size_t)b * Q * D;
        float *pb = st->pooled + (size_t)b * D;
        if (v->cfg.pool_type == MC_OC_POOL_TOK) {
            memcpy(pb, y, sizeof(float) * D);
        } else { /* avg of outputs 1.. */
            for (int k = 0; k < D; k++) {
                float s = 0.f;
                for (int t = 1; t < Q; t++) s += y[(size_t)t * D + k];
                pb[k] = s / (float)(Q - 1);
            }
        }
        memcpy(st->img_tok + (size_t)b * (Q - 1) * D, y + D, sizeof(float) * (size_t)(Q - 1) * D);
    }
    mc_matmul_forward(st->img_feat, st->pooled, v->proj, B, D, E);
}

static void text_forward(mc_train_ctx *c, const mc_oc_text *t, mc_coca_train_state *st, const int32_t *tokens, int B) {
    int L = t->context, S = L + 1, W = t->width, E = t->out_dim, M = B * S;
    st->mask = (uint8_t *)TAKE(c, ((size_t)B * S * S + 3) / 4);
    st->tx0 = TAKE(c, (size_t)M * W);
    if (FLIVE(c)) {
        mc_oc_text_cls_mask(t, tokens, B, L, st->mask);
        for (int b = 0; b < B; b++)
            for (int s = 0; s < S; s++) {
                const float *te = s < L ? t->tok_emb + (size_t)tokens[(size_t)b * L + s] * W : t->cls_emb;
                const float *pe = t->pos_emb + (size_t)s * W;
                float *xi = st->tx0 + ((size_t)b * S + s) * W;
                for (int k = 0; k < W; k++) xi[k] = te[k] + pe[k];
            }
    }
    const float *x = st->tx0;
    for (int i = 0; i < t->layers; i++)
        x = mc_transformer_train_forward_masked(c, &t->blocks[i], &st->tl[i], x, B, S, t->causal, st->mask);
    st->xt = x;
    st->cls = TAKE(c, (size_t)B * W), st->cls_mean = TAKE(c, B), st->cls_rstd = TAKE(c, B);
    st->txt_feat = TAKE(c, (size_t)B * E);
    size_t mk = mc_tape_mark(c->work);
    float *row = WORK(c, (size_t)B * W);
    if (FLIVE(c) && mc_tape_live(c->work)) {
        for (int b = 0; b < B; b++) memcpy(row + (size_t)b * W, x + ((size_t)b * S + L) * W, sizeof(float) * W);
        mc_layernorm_train_forward(st->cls, st->cls_mean, st->cls_rstd, row, t->ln_w, t->ln_b, B, W,
                                   (float)t->cfg.ln_eps);
        mc_matmul_forward(st->txt_feat, st->cls, t->proj, B, W, E);
    }
    mc_tape_release(c->work, mk);
}

static void decoder_forward(mc_train_ctx *c, const mc_coca *m, mc_coca_train_state *st, int B) {
    const mc_coca_decoder *d = &m->dec;
    int L = m->clip.text->context, S = L + 1, Td = L - 1, W = d->width, M = B * Td, Ti = m->n_img_tok;
    st->dx0 = TAKE(c, (size_t)M * W);
    if (FLIVE(c))
        for (int b = 0; b < B; b++)
            memcpy(st->dx0 + (size_t)b * Td * W, st->xt + (size_t)b * S * W, sizeof(float) * (size_t)Td * W);
    const float *x = st->dx0;
    for (int i = 0; i < d->layers; i++) {
        x = mc_transformer_train_forward(c, &d->self_blocks[i], &st->ds[i], x, B, Td, 1);
        x = cross_forward(c, &d->cross_blocks[i], &st->cs[i], x, st->img_tok, B, Td, Ti);
    }
    st->xd = x;
    st->dln = TAKE(c, (size_t)M * W), st->dln_mean = TAKE(c, M), st->dln_rstd = TAKE(c, M);
    /* logits only where a label counts (labels tokens[:, 1:] that are not padding): the
     * vocabulary projection is most of a small captioner's cost, padding most of its rows */
    st->rows = (int32_t *)TAKE(c, M);
    st->dlc = TAKE(c, (size_t)M * W);
    st->logits = TAKE(c, (size_t)M * d->vocab);
    st->n_rows = M;
    if (!FLIVE(c)) return;
    mc_layernorm_train_forward(st->dln, st->dln_mean, st->dln_rstd, x, d->ln_w, d->ln_b, M, W, 1e-5f);
    int n = 0;
    for (int b = 0; b < B; b++)
        for (int p = 0; p < Td; p++)
            if (st->tokens[(size_t)b * L + p + 1] != 0) st->rows[n++] = b * Td + p;
    st->n_rows = n;
    for (int i = 0; i < n; i++) memcpy(st->dlc + (size_t)i * W, st->dln + (size_t)st->rows[i] * W, sizeof(float) * W);
    mc_matmul_forward(st->logits, st->dlc, d->proj, n, W, d->vocab);
}

int mc_coca_train_forward(mc_train_ctx *c, const mc_coca *m, mc_coca_train_state *st, const float *images,
                          const int32_t *tokens, int B, mc_err *e) {
    const mc_oc_text *t = m->clip.text;
    int L = t->context;
    if (B < 1) return mc_fail(e, MC_E_ARG, "CoCa training: batch size %d", B);
    if (L < 2) return mc_fail(e, MC_E_ARG, "CoCa training: a text context of %d tokens (at least 2)", L);
    if (m->dec.context < L - 1)
        return mc_fail(e, MC_E_ARG, "CoCa training: the decoder's context %d is shorter than %d", m->dec.context, L - 1);
    if (tokens)
        for (size_t i = 0; i < (size_t)B * L; i++)
            if (tokens[i] < 0 || tokens[i] >= t->vocab)
                return mc_fail(e, MC_E_ARG, "CoCa training: token id %d at sequence %d position %d is outside [0, %d)",
                               (int)tokens[i], (int)(i / L), (int)(i % L), t->vocab);
    st->B = B, st->L = L, st->Td = L - 1, st->tokens = tokens, st->images = images;
    vision_forward(c, m->clip.visual, st, images, B);
    text_forward(c, t, st, tokens, B);
    decoder_forward(c, m, st, B);
    if (c->tape->base && (c->tape->overflow || c->work->overflow))
        return mc_fail(e, MC_E_NOMEM, "CoCa training: activation arena too small (%zu + %zu floats needed)",
                       c->tape->peak, c->work->peak);
    return 0;
}

/* ---------------------------------------------------------------- backward */

/* dimg_tok [B,Q-1,D] (decoder) and dimg [B,E] (NULL: zero) -> vision parameter gradients. */
static void vision_backward(mc_train_ctx *c, const mc_oc_vision *v, mc_coca_train_state *st, const float *dimg,
                            const float *dtok) {
    int B = st->B, C = v->width, g = v->grid, P = g * g, T = v->n_tok, D = v->out_dim, Q = v->cfg.attn_pooler_queries;
    int M = B * T, E = v->out_dim, R = v->cfg.image_size;
    size_t mk = mc_tape_mark(c->work);
    float *dpost = WORK(c, (size_t)B * Q * D), *dpool = WORK(c, (size_t)B * D), *dpo = WORK(c, (size_t)B * Q * D);
    float *dq = WORK(c, (size_t)Q * D), *dqn = WORK(c, (size_t)Q * D), *dk = WORK(c, (size_t)M * D);
    float *dv = WORK(c, (size_t)M * D), *dxk = WORK(c, (size_t)M * C);
    float *da = WORK(c, (size_t)M * C), *db = WORK(c, (size_t)M * C), *dpatch = WORK(c, (size_t)B * C * P);
    mc_attention_args a = pool_args(v, st);
    float *sc = WORK(c, mc_attention_general_backward_scratch(&a));
    mc_conv2d_shape cs = {3, C, v->patch, v->patch, v->patch, 0, 0, 1};
    float *csc = WORK(c, mc_conv2d_backward_scratch(&cs, R, R));
    if (BLIVE(c)) {
        memset(dpost, 0, sizeof(float) * (size_t)B * Q * D);
        if (dimg) {
            mc_matmul_backward(dpool, G(c, v->proj), dimg, st->pooled, v->proj, B, D, E, 0);
            for (int b = 0; b < B; b++) {
                float *y = dpost + (size_t)b * Q * D;
                const float *pb = dpool + (size_t)b * D;
                if (v->cfg.pool_type == MC_OC_POOL_TOK)
                    for (int k = 0; k < D; k++) y[k] += pb[k];
                else
                    for (int t = 1; t < Q; t++)
                        for (int k = 0; k < D; k++) y[(size_t)t * D + k] += pb[k] / (float)(Q - 1);
            }
        }
        if (dtok)
            for (int b = 0; b < B; b++)
                for (size_t i = 0; i < (size_t)(Q - 1) * D; i++) dpost[(size_t)b * Q * D + D + i] += dtok[(size_t)b * (Q - 1) * D + i];
        mc_layernorm_backward(dpo, G(c, v->ln_post_w), G(c, v->ln_post_b), dpost, st->pout, st->post_mean,
                              st->post_rstd, v->ln_post_w, B * Q, D, 0);
        mc_linear_backward(dpost, G(c, v->pool_out_w), G(c, v->pool_out_b), dpo, st->po, v->pool_out_w, B * Q, D, D, 0);
        memset(dq, 0, sizeof(float) * (size_t)Q * D);
        memset(dk, 0, sizeof(float) * (size_t)M * D);
        memset(dv, 0, sizeof(float) * (size_t)M * D);
        mc_attention_general_backward(dq, dk, dv, dpost, &a, st->pp, B, sc);
        mc_linear_backward(dqn, G(c, v->pool_q_w), G(c, v->pool_in_b), dq, st->qn, v->pool_q_w, Q, D, D, 0);
        float *gquery = G(c, v->pool_query);
        if (gquery) /* the query parameter's gradient: ln_q's input gradient, accumulated */
            mc_layernorm_backward(gquery, G(c, v->ln_q_w), G(c, v->ln_q_b), dqn, v->pool_query, st->q_mean, st->q_rstd,
                                  v->ln_q_w, Q, D, 1);
        mc_linear_backward(dxk, G(c, v->pool_k_w), g_at(c, v->pool_in_b, D), dk, st->xk, v->pool_k_w, M, C, D, 0);
        mc_linear_backward(dxk, G(c, v->pool_v_w), g_at(c, v->pool_in_b, 2 * (size_t)D), dv, st->xk, v->pool_v_w, M,
                           C, D, 1);
        mc_layernorm_backward(da, G(c, v->ln_k_w), G(c, v->ln_k_b), dxk, st->xv, st->k_mean, st->k_rstd, v->ln_k_w, M,
                              C, 0);
    }
    for (int i = v->layers - 1; i >= 0; i--) {
        mc_transformer_train_backward(c, &v->blocks[i], &st->vl[i], db, da, B, T, 0);
        float *t = da;
        da = db, db = t;
    }
    if (BLIVE(c)) {
        if (v->ln_pre_w) {
            mc_layernorm_backward(db, G(c, v->ln_pre_w), G(c, v->ln_pre_b), da, st->emb, st->pre_mean, st->pre_rstd,
                                  v->ln_pre_w, M, C, 0);
            float *t = da;
            da = db, db = t;
        }
        float *gcls = G(c, v->cls), *gpos = G(c, v->pos);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                const float *dt = da + ((size_t)b * T + t) * C;
                if (gpos)
                    for (int k = 0; k < C; k++) gpos[(size_t)t * C + k] += dt[k];
                if (t == 0) {
                    if (gcls)
                        for (int k = 0; k < C; k++) gcls[k] += dt[k];
                } else {
                    for (int k = 0; k < C; k++) dpatch[((size_t)b * C + k) * P + (t - 1)] = dt[k];
                }
            }
        if (G(c, v->conv1))
            mc_conv2d_backward(NULL, G(c, v->conv1), NULL, dpatch, st->images, v->conv1, &cs, B, R, R, 0, csc);
    }
    mc_tape_release(c->work, mk);
}

int mc_coca_train_backward(mc_train_ctx *c, const mc_coca *m, mc_coca_train_state *st, const float *dimg,
                           const float *dtxt, const float *dlogits, mc_err *e) {
    const mc_oc_text *t = m->clip.text;
    const mc_coca_decoder *d = &m->dec;
    int B = st->B, L = st->L, S = L + 1, Td = st->Td, W = t->width, E = t->out_dim, Md = B * Td, Ti = m->n_img_tok;
    int D = m->embed_dim;
    size_t mk = mc_tape_mark(c->work);
    float *dtok = WORK(c, (size_t)B * Ti * D);
    float *da = WORK(c, (size_t)Md * W), *db = WORK(c, (size_t)Md * W);
    float *ta = WORK(c, (size_t)B * S * W), *tb = WORK(c, (size_t)B * S * W), *dcls = WORK(c, (size_t)B * W);
    if (BLIVE(c)) {
        memset(dtok, 0, sizeof(float) * (size_t)B * Ti * D);
        if (dlogits) {
            float *dc = da; /* [n_rows, W] compact, then scattered to every row (zeros: no label) */
            mc_matmul_backward(dc, G(c, d->proj), dlogits, st->dlc, d->proj, st->n_rows, W, d->vocab, 0);
            memset(db, 0, sizeof(float) * (size_t)Md * W);
            for (int i = 0; i < st->n_rows; i++)
                memcpy(db + (size_t)st->rows[i] * W, dc + (size_t)i * W, sizeof(float) * W);
            mc_layernorm_backward(da, G(c, d->ln_w), G(c, d->ln_b), db, st->xd, st->dln_mean, st->dln_rstd, d->ln_w, Md,
                                  W, 0);
        } else {
            memset(da, 0, sizeof(float) * (size_t)Md * W);
        }
    }
    for (int i = d->layers - 1; i >= 0; i--) {
        cross_backward(c, &d->cross_blocks[i], &st->cs[i], db, dtok, da, B, Td, Ti);
        mc_transformer_train_backward(c, &d->self_blocks[i], &st->ds[i], da, db, B, Td, 1);
    }
    /* the text tower's outputs: rows 0..L-2 feed the decoder, row L (CLS) the features */
    if (BLIVE(c)) {
        memset(ta, 0, sizeof(float) * (size_t)B * S * W);
        for (int b = 0; b < B; b++)
            memcpy(ta + (size_t)b * S * W, da + (size_t)b * Td * W, sizeof(float) * (size_t)Td * W);
        if (dtxt) {
            float *row = tb; /* x[:, L] gathered */
            for (int b = 0; b < B; b++) memcpy(row + (size_t)b * W, st->xt + ((size_t)b * S + L) * W, sizeof(float) * W);
            mc_matmul_backward(dcls, G(c, t->proj), dtxt, st->cls, t->proj, B, W, E, 0);
            mc_layernorm_backward(row + (size_t)B * W, G(c, t->ln_w), G(c, t->ln_b), dcls, row, st->cls_mean,
                                  st->cls_rstd, t->ln_w, B, W, 0);
            for (int b = 0; b < B; b++)
                memcpy(ta + ((size_t)b * S + L) * W, row + (size_t)(B + b) * W, sizeof(float) * W);
        }
    }
    for (int i = t->layers - 1; i >= 0; i--) {
        mc_transformer_train_backward_masked(c, &t->blocks[i], &st->tl[i], tb, ta, B, S, t->causal, st->mask);
        float *x = ta;
        ta = tb, tb = x;
    }
    if (BLIVE(c)) {
        float *gtok = G(c, t->tok_emb), *gpos = G(c, t->pos_emb), *gcls = G(c, t->cls_emb);
        for (int b = 0; b < B; b++)
            for (int s = 0; s < S; s++) {
                const float *dx = ta + ((size_t)b * S + s) * W;
                if (gpos)
                    for (int k = 0; k < W; k++) gpos[(size_t)s * W + k] += dx[k];
                float *gt = s < L ? (gtok ? gtok + (size_t)st->tokens[(size_t)b * L + s] * W : NULL) : gcls;
                if (gt)
                    for (int k = 0; k < W; k++) gt[k] += dx[k];
            }
    }
    vision_backward(c, m->clip.visual, st, dimg, dtok);
    mc_tape_release(c->work, mk);
    if (c->work->base && c->work->overflow)
        return mc_fail(e, MC_E_NOMEM, "CoCa training: backward work arena too small (%zu floats needed)", c->work->peak);
    return 0;
}

int mc_coca_train_sizes(const mc_coca *m, int B, size_t *tape_floats, size_t *work_floats, mc_err *e) {
    mc_tape tape = {0}, work = {0};
    mc_train_ctx c = {.tape = &tape, .work = &work, .grads = NULL, .train = 1, .bn_momentum = 0.1f};
    mc_coca_train_state st;
    int r = mc_coca_train_state_init(&st, m, e);
    if (r) return r;
    if (!(r = mc_coca_train_forward(&c, m, &st, NULL, NULL, B, e)))
        r = mc_coca_train_backward(&c, m, &st, NULL, NULL, NULL, e);
    mc_coca_train_state_free(&st);
    *tape_floats = tape.peak;
    *work_floats = work.peak;
    return r;
}

/* ---------------------------------------------------------------- CoCaLoss */

size_t mc_coca_loss_scratch(const mc_coca *m, int B) {
    int E = m->embed_dim;
    mc_drclip_input in = {.B = B, .E = E, .n_sets = 1};
    size_t rows = (size_t)B * (m->clip.text->context - 1); /* the caption rows' losses, in doubles */
    return (size_t)4 * B * E + (size_t)2 * B + mc_drclip_scratch_size(&in) + 2 * rows + 32;
}


/* -log softmax(row)[label] over V logits; with drow (may alias row) k * (softmax - onehot(label))
 * written. The exponentials go in blocks of 16 (each block through the vector expf, a tail of
 * V % 16 through the scalar one) summed into 8 double accumulators in a fixed pattern, so a
 * row's result depends on V and its values only, not on its address or the thread. */
static double xent_row(const float *row, float *drow, int V, int label, double k) {
    float mx = row[0];
#pragma omp simd reduction(max : mx)
    for (int q = 1; q < V; q++) mx = row[q] > mx ? row[q] : mx;
    float at = row[label];
    double acc[8] = {0};
    int q = 0;
    for (; q + 16 <= V; q += 16) {
        float ex[16];
#ifdef MC_EXPF_SIMD
#pragma omp simd
#endif
        for (int j = 0; j < 16; j++) ex[j] = expf(row[q + j] - mx);
        for (int j = 0; j < 16; j++) acc[j & 7] += ex[j];
        if (drow) memcpy(drow + q, ex, sizeof ex);
    }
    for (; q < V; q++) {
        float x = expf(row[q] - mx);
        acc[0] += x;
        if (drow) drow[q] = x;
    }
    double sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    if (drow) {
        float f = (float)(k / sum);
        for (int i = 0; i < V; i++) drow[i] *= f;
        drow[label] -= (float)k;
    }
    return log(sum) + (double)mx - (double)at;
}

/* rows [b, e) of the caption cross-entropy, each into its own loss slot (pool task) */
typedef struct {
    const mc_coca_train_state *st;
    float *dlogits;
    double *rl;
    int V, Td, L;
    double kk;
} xent_job;

static void xent_rows(void *arg, int b, int e) {
    const xent_job *j = arg;
    for (int i = b; i < e; i++) {
        int r = j->st->rows[i], label = j->st->tokens[(size_t)(r / j->Td) * j->L + r % j->Td + 1];
        float *drow = j->dlogits ? j->dlogits + (size_t)i * j->V : NULL;
        j->rl[i] = xent_row(j->st->logits + (size_t)i * j->V, drow, j->V, label, j->kk);
    }
}

int mc_coca_loss_grad(const mc_coca *m, const mc_coca_train_state *st, float t, double clip_weight,
                      double caption_weight, float dloss, float *scratch, mc_coca_losses *out, float *dlogits,
                      float *dimg, float *dtxt, float *dt, mc_err *e) {
    int B = st->B, E = m->embed_dim, V = m->dec.vocab, Td = st->Td, L = st->L;
    float *xn = scratch, *yn = xn + (size_t)B * E, *nx = yn + (size_t)B * E, *ny = nx + B;
    float *gx = ny + B, *gy = gx + (size_t)B * E;
    float *ls = (float *)(((uintptr_t)(gy + (size_t)B * E) + 63) & ~(uintptr_t)63);
    mc_l2_normalize_forward(xn, nx, st->img_feat, B, E);
    mc_l2_normalize_forward(yn, ny, st->txt_feat, B, E);
    float s = mc_logit_scale_forward(t);
    mc_drclip_config cfg = {.weights = {(float)clip_weight, 0.f}, .n_teachers = 0};
    mc_drclip_input in = {.B = B, .E = E, .image = xn, .n_sets = 1, .text = {yn}, .scale = s};
    mc_drclip_losses dl;
    int r = mc_drclip_loss_forward(&cfg, &in, ls, &dl, e);
    if (r) return r;
    /* caption cross-entropy: mean over the labels tokens[:, 1:] that are not the pad id 0
     * (create_loss builds CoCaLoss with its default pad_id); the logits rows are those labels.
     * Rows in parallel (each its own loss slot), summed in row order: thread-count independent */
    long count = st->n_rows;
    double *rl = (double *)(((uintptr_t)(ls + mc_drclip_scratch_size(&in)) + 63) & ~(uintptr_t)63);
    const double kk = dloss * caption_weight / (double)(count ? count : 1); /* d/dlogit = w / count * (softmax - onehot) */
    xent_job xj = {st, dlogits, rl, V, Td, L, kk};
    mc_parallel_for(st->n_rows, mc_parallel_grain(st->n_rows, 4), xent_rows, &xj);
    double cap = 0;
    for (int i = 0; i < st->n_rows; i++) cap += rl[i];
    out->clip = dl.contrastive;
    out->caption = caption_weight * (count ? cap / (double)count : 0.0); /* torch gives NaN for no label */
    if (!count) out->caption = NAN;
    out->total = out->clip + out->caption;
    if (dlogits) {
        mc_drclip_grads g = {.image = gx, .text = {gy}};
        mc_drclip_loss_backward(&cfg, &in, ls, dloss, &g);
        mc_l2_normalize_backward(dimg, gx, xn, nx, B, E);
        mc_l2_normalize_backward(dtxt, gy, yn, ny, B, E);
        *dt = mc_logit_scale_backward(t, g.scale);
    }
    return 0;
}
