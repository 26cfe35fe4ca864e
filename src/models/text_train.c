/* Text towers in training mode (see text_train.h). Same discipline as mci_train.c: saved
 * tensors from ctx->tape, temporaries from ctx->work, arithmetic only while live. */
#include "models/text_train.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/layers.h"

#define TAKE(c, n) mc_tape_take((c)->tape, (size_t)(n))
#define WORK(c, n) mc_tape_take((c)->work, (size_t)(n))
#define FLIVE(c) mc_tape_live((c)->tape)
#define BLIVE(c) mc_tape_live((c)->work)
#define G(c, p) mc_grad_of((c)->grads, (p))

#define BN_EPS 1e-5f

static mc_bn_params bn_of(const mc_text_repmixer *b, int i) {
    return (mc_bn_params){b->bn[i][0], b->bn[i][1], b->bn[i][2], b->bn[i][3], BN_EPS};
}

/* [C,1,1,K] -> [K,C] */
static void kernel_t(float *dst, const float *src, int C, int K) {
    for (int c = 0; c < C; c++)
        for (int k = 0; k < K; k++) dst[(size_t)k * C + c] = src[(size_t)c * K + k];
}

/* grad[C,1,1,K] += dw_t[K,C] */
static void kernel_t_grad(float *grad, const float *dw_t, int C, int K) {
    if (!grad) return;
    for (int c = 0; c < C; c++)
        for (int k = 0; k < K; k++) grad[(size_t)c * K + k] += dw_t[(size_t)k * C + c];
}

/* ---------------------------------------------------------------- Text-RepMixer */

float *mc_text_repmixer_train_forward(mc_train_ctx *c, const mc_text_repmixer *b, mc_text_repmixer_save *s,
                                      const float *x, int N, int T) {
    int C = b->dim, K = b->kernel, F = b->hidden, M = N * T;
    size_t n = (size_t)M * C;
    mc_bn_params bn[4] = {bn_of(b, 0), bn_of(b, 1), bn_of(b, 2), bn_of(b, 3)};
    s->x = x;
    s->wm_t = TAKE(c, (size_t)K * C);
    s->wf_t = TAKE(c, (size_t)K * C);
    s->a = TAKE(c, n);
    s->t = TAKE(c, n);
    s->x1 = TAKE(c, n);
    s->d = TAKE(c, n);
    s->e = TAKE(c, n);
    s->h = TAKE(c, (size_t)M * F);
    s->f = TAKE(c, n);
    s->out = TAKE(c, n);
    size_t mk = mc_tape_mark(c->work);
    float *u = WORK(c, n), *v = WORK(c, n), *hg = WORK(c, (size_t)M * F); /* GELU output: recomputed by backward */
    if (FLIVE(c)) {
        kernel_t(s->wm_t, b->wm, C, K);
        kernel_t(s->wf_t, b->wf, C, K);
        mc_dwconv_tokens_forward(s->a, x, s->wm_t, NULL, N, T, C, K);
    }
    /* t = BN_ms(x) + BN_mc(a) - BN_n(x) */
    mc_train_bn_forward(c, &s->bn[0], s->t, x, &bn[0], M, C, 1);
    mc_train_bn_forward(c, &s->bn[1], u, s->a, &bn[1], M, C, 1);
    mc_train_bn_forward(c, &s->bn[2], v, x, &bn[2], M, C, 1);
    if (FLIVE(c)) {
        mc_add_forward(s->t, u, n); /* (t + u) - v, as one expression rounds it */
        mc_sub_forward(s->t, v, n);
        memcpy(s->x1, x, n * sizeof(float));
        mc_add_scaled_channels(s->x1, s->t, b->tm_ls, M, C, 1);
        mc_dwconv_tokens_forward(s->d, s->x1, s->wf_t, NULL, N, T, C, K);
    }
    mc_train_bn_forward(c, &s->bn[3], s->e, s->d, &bn[3], M, C, 1);
    if (FLIVE(c)) {
        mc_linear_forward(s->h, s->e, b->fc1_w, b->fc1_b, M, C, F);
        mc_gelu_forward(hg, s->h, (size_t)M * F);
        mc_linear_forward(s->f, hg, b->fc2_w, b->fc2_b, M, F, C);
        memcpy(s->out, s->x1, n * sizeof(float));
        mc_add_scaled_channels(s->out, s->f, b->ls, M, C, 1);
    }
    mc_tape_release(c->work, mk);
    return s->out;
}

void mc_text_repmixer_train_backward(mc_train_ctx *c, const mc_text_repmixer *b, const mc_text_repmixer_save *s,
                                     float *dx, const float *dy, int N, int T) {
    int C = b->dim, K = b->kernel, F = b->hidden, M = N * T;
    size_t n = (size_t)M * C;
    mc_bn_params bn[4] = {bn_of(b, 0), bn_of(b, 1), bn_of(b, 2), bn_of(b, 3)};
    size_t mk = mc_tape_mark(c->work);
    float *dx1 = WORK(c, n), *u = WORK(c, n), *v = WORK(c, n), *dh = WORK(c, (size_t)M * (F > C ? F : C));
    float *dwk = WORK(c, (size_t)K * C), *hg = WORK(c, (size_t)M * F);
    if (BLIVE(c)) {
        memcpy(dx1, dy, n * sizeof(float));
        mc_layer_scale_backward(u, G(c, b->ls), dy, s->f, b->ls, M, C, 1);            /* u = d f */
        mc_gelu_forward(hg, s->h, (size_t)M * F);
        mc_linear_backward(dh, G(c, b->fc2_w), G(c, b->fc2_b), u, hg, b->fc2_w, M, F, C, 0);
        mc_gelu_backward(dh, dh, s->h, (size_t)M * F, 0);
        mc_linear_backward(u, G(c, b->fc1_w), G(c, b->fc1_b), dh, s->e, b->fc1_w, M, C, F, 0); /* u = d e */
    }
    mc_train_bn_backward(c, &s->bn[3], v, u, s->d, &bn[3], M, C, 1, 0);                 /* v = d d */
    if (BLIVE(c)) {
        memset(dwk, 0, (size_t)K * C * sizeof(float));
        mc_dwconv_tokens_backward(u, dwk, NULL, v, s->x1, s->wf_t, N, T, C, K);         /* u = d x1 (conv) */
        kernel_t_grad(G(c, b->wf), dwk, C, K);
        mc_add_forward(dx1, u, n);
        mc_layer_scale_backward(u, G(c, b->tm_ls), dx1, s->t, b->tm_ls, M, C, 1);      /* u = d t */
        memcpy(dx, dx1, n * sizeof(float));
    }
    mc_train_bn_backward(c, &s->bn[0], dx, u, s->x, &bn[0], M, C, 1, 1);
    mc_train_bn_backward(c, &s->bn[1], v, u, s->a, &bn[1], M, C, 1, 0);                 /* v = d a */
    if (BLIVE(c)) {
        mc_neg_forward(u, u, n);
        memset(dwk, 0, (size_t)K * C * sizeof(float));
        mc_dwconv_tokens_backward(dh, dwk, NULL, v, s->x, s->wm_t, N, T, C, K);         /* dh = d x (conv) */
        kernel_t_grad(G(c, b->wm), dwk, C, K);
        mc_add_forward(dx, dh, n);
    }
    mc_train_bn_backward(c, &s->bn[2], dx, u, s->x, &bn[2], M, C, 1, 1);
    mc_tape_release(c->work, mk);
}

/* ---------------------------------------------------------------- transformer layer */

static float attn_scale(int D) { return (float)(1.0 / sqrt((double)D)); }

/* Self-attention over packed qkv [N,T,3C] as mc_attention_general sees it (the masked path). */
static mc_attention_args self_args(const float *qkv, int N, int T, int H, int D, int causal, const uint8_t *mask) {
    (void)N;
    size_t ld = 3 * (size_t)H * D;
    return (mc_attention_args){.q = qkv, .k = qkv + (size_t)H * D, .v = qkv + 2 * (size_t)H * D, .q_ld = ld,
                               .kv_ld = ld, .q_batch = (size_t)T * ld, .kv_batch = (size_t)T * ld, .Tq = T, .Tk = T,
                               .H = H, .D = D, .scale = attn_scale(D), .causal_off = causal ? 0 : INT_MAX,
                               .mask = mask};
}

/* Dropout then stochastic depth of a residual branch r [N, per] in place, masks saved (when on). */
static void branch_drop(mc_train_ctx *c, float *r, float *mask, float *keep, int N, size_t per, float p) {
    if (mask) mc_dropout_forward(r, mask, r, (size_t)N * per, p, c->rng);
    if (keep) mc_drop_path_forward(r, keep, r, N, per, c->rate.drop_path, c->rng);
}
static void branch_drop_backward(float *dr, const float *mask, const float *keep, int N, size_t per) {
    if (keep) mc_drop_path_backward(dr, dr, keep, N, per);
    if (mask) mc_dropout_backward(dr, dr, mask, (size_t)N * per);
}

float *mc_transformer_train_forward(mc_train_ctx *c, const mc_transformer_layer *l, mc_transformer_save *s,
                                    const float *x, int N, int T, int causal) {
    return mc_transformer_train_forward_masked(c, l, s, x, N, T, causal, NULL);
}

float *mc_transformer_train_forward_masked(mc_train_ctx *c, const mc_transformer_layer *l, mc_transformer_save *s,
                                           const float *x, int N, int T, int causal, const uint8_t *mask) {
    int C = l->dim, F = l->ffn_dim, H = l->heads, D = C / H, M = N * T;
    size_t n = (size_t)M * C;
    const mc_dropout_rates *rt = &c->rate;
    int drop = c->train && rt->drop > 0, fdrop = c->train && rt->ffn > 0, dpath = c->train && rt->drop_path > 0;
    int adrop = c->train && rt->attn > 0 && !mask;
    s->x = x;
    s->h1 = TAKE(c, n);
    s->mean1 = TAKE(c, M);
    s->rstd1 = TAKE(c, M);
    s->qkv = TAKE(c, 3 * n);
    s->p = TAKE(c, (size_t)N * H * T * T);
    s->o = TAKE(c, n);
    s->x1 = TAKE(c, n);
    s->h2 = TAKE(c, n);
    s->mean2 = TAKE(c, M);
    s->rstd2 = TAKE(c, M);
    s->f = TAKE(c, (size_t)M * F);
    s->out = TAKE(c, n);
    s->m_o = drop ? TAKE(c, n) : NULL;
    s->m_f = drop ? TAKE(c, n) : NULL;
    s->m_g = fdrop ? TAKE(c, (size_t)M * F) : NULL;
    s->keep1 = dpath ? TAKE(c, N) : NULL;
    s->keep2 = dpath ? TAKE(c, N) : NULL;
    s->m_p = adrop ? TAKE(c, (size_t)N * H * T * T) : NULL;
    int masked = s->masked = drop || fdrop || dpath;
    /* the GELU output is not kept: backward recomputes it from f (and m_g) */
    size_t mk = mc_tape_mark(c->work);
    float *g = WORK(c, (size_t)M * F), *r = masked ? WORK(c, n) : NULL;
    if (!FLIVE(c)) {
        mc_tape_release(c->work, mk);
        return s->out;
    }
    mc_layernorm_train_forward(s->h1, s->mean1, s->rstd1, x, l->ln1_w, l->ln1_b, M, C, l->ln_eps);
    mc_linear_forward(s->qkv, s->h1, l->qkv_w, l->qkv_b, M, C, 3 * C);
    if (mask) {
        mc_attention_args a = self_args(s->qkv, N, T, H, D, causal, mask);
        mc_attention_general_train_forward(s->o, s->p, &a, N);
    } else if (s->m_p) {
        mc_attention_dropout_train_forward(s->o, s->p, s->m_p, s->qkv, N, T, H, D, attn_scale(D), causal, rt->attn, c->rng);
    } else {
        mc_attention_train_forward(s->o, s->p, s->qkv, N, T, H, D, attn_scale(D), causal);
    }
    memcpy(s->x1, x, n * sizeof(float));
    if (!masked) mc_linear_accumulate(s->x1, s->o, l->out_w, l->out_b, M, C, C);
    else { /* x1 = x + drop_path(dropout(out_proj(o))) */
        mc_linear_forward(r, s->o, l->out_w, l->out_b, M, C, C);
        branch_drop(c, r, s->m_o, s->keep1, N, (size_t)T * C, rt->drop);
        mc_add_forward(s->x1, r, n);
    }
    mc_layernorm_train_forward(s->h2, s->mean2, s->rstd2, s->x1, l->ln2_w, l->ln2_b, M, C, l->ln_eps);
    mc_linear_forward(s->f, s->h2, l->fc1_w, l->fc1_b, M, C, F);
    mc_gelu_forward(g, s->f, (size_t)M * F);
    if (s->m_g) mc_dropout_forward(g, s->m_g, g, (size_t)M * F, rt->ffn, c->rng);
    memcpy(s->out, s->x1, n * sizeof(float));
    if (!masked) mc_linear_accumulate(s->out, g, l->fc2_w, l->fc2_b, M, F, C);
    else { /* out = x1 + drop_path(dropout(fc2(dropout_ffn(gelu(f))))) */
        mc_linear_forward(r, g, l->fc2_w, l->fc2_b, M, F, C);
        branch_drop(c, r, s->m_f, s->keep2, N, (size_t)T * C, rt->drop);
        mc_add_forward(s->out, r, n);
    }
    mc_tape_release(c->work, mk);
    return s->out;
}

void mc_transformer_train_backward(mc_train_ctx *c, const mc_transformer_layer *l, const mc_transformer_save *s,
                                   float *dx, const float *dy, int N, int T, int causal) {
    mc_transformer_train_backward_masked(c, l, s, dx, dy, N, T, causal, NULL);
}

void mc_transformer_train_backward_masked(mc_train_ctx *c, const mc_transformer_layer *l,
                                          const mc_transformer_save *s, float *dx, const float *dy, int N, int T,
                                          int causal, const uint8_t *mask) {
    int C = l->dim, F = l->ffn_dim, H = l->heads, D = C / H, M = N * T;
    size_t n = (size_t)M * C, per = (size_t)T * C;
    int masked = s->masked;
    size_t mk = mc_tape_mark(c->work);
    float *dx1 = WORK(c, n), *dh = WORK(c, n), *dg = WORK(c, (size_t)M * F), *dq = WORK(c, 3 * n);
    float *sc = WORK(c, mc_attention_backward_scratch(N, T, H)), *g = WORK(c, (size_t)M * F);
    float *dr = masked ? WORK(c, n) : NULL;
    if (BLIVE(c)) {
        /* feed-forward branch: out = x1 + [drop] fc2([drop_ffn] gelu(fc1(ln2(x1)))) */
        memcpy(dx1, dy, n * sizeof(float));
        mc_gelu_forward(g, s->f, (size_t)M * F);
        if (s->m_g) mc_dropout_backward(g, g, s->m_g, (size_t)M * F); /* the forward's masked GELU output */
        const float *dbr = dy;
        if (masked) {
            memcpy(dr, dy, n * sizeof(float));
            branch_drop_backward(dr, s->m_f, s->keep2, N, per);
            dbr = dr;
        }
        mc_linear_backward(dg, G(c, l->fc2_w), G(c, l->fc2_b), dbr, g, l->fc2_w, M, F, C, 0);
        if (s->m_g) mc_dropout_backward(dg, dg, s->m_g, (size_t)M * F);
        mc_gelu_backward(dg, dg, s->f, (size_t)M * F, 0);
        mc_linear_backward(dh, G(c, l->fc1_w), G(c, l->fc1_b), dg, s->h2, l->fc1_w, M, C, F, 0);
        mc_layernorm_backward(dx1, G(c, l->ln2_w), G(c, l->ln2_b), dh, s->x1, s->mean2, s->rstd2, l->ln2_w, M, C, 1);
        /* attention branch: x1 = x + [drop] out_proj(attn(qkv(ln1(x)))) */
        memcpy(dx, dx1, n * sizeof(float));
        dbr = dx1;
        if (masked) {
            memcpy(dr, dx1, n * sizeof(float));
            branch_drop_backward(dr, s->m_o, s->keep1, N, per);
            dbr = dr;
        }
        mc_linear_backward(dh, G(c, l->out_w), G(c, l->out_b), dbr, s->o, l->out_w, M, C, C, 0);
        if (mask) { /* scratch: H*T <= N*H*T floats */
            mc_attention_args a = self_args(s->qkv, N, T, H, D, causal, mask);
            memset(dq, 0, 3 * n * sizeof(float));
            mc_attention_general_backward(dq, dq + C, dq + 2 * C, dh, &a, s->p, N, sc);
        } else if (s->m_p) {
            mc_attention_dropout_backward(dq, dh, s->qkv, s->p, s->m_p, N, T, H, D, attn_scale(D), causal, sc);
        } else {
            mc_attention_backward(dq, dh, s->qkv, s->p, N, T, H, D, attn_scale(D), causal, sc);
        }
        mc_linear_backward(dh, G(c, l->qkv_w), G(c, l->qkv_b), dq, s->h1, l->qkv_w, M, C, 3 * C, 0);
        mc_layernorm_backward(dx, G(c, l->ln1_w), G(c, l->ln1_b), dh, s->x, s->mean1, s->rstd1, l->ln1_w, M, C, 1);
    }
    mc_tape_release(c->work, mk);
}

/* ---------------------------------------------------------------- tower */

int mc_text_train_state_init(mc_text_train_state *st, const mc_text_encoder *m, mc_err *e) {
    memset(st, 0, sizeof *st);
    st->n_blocks = m->n_blocks;
    st->rm = calloc((size_t)m->n_blocks, sizeof *st->rm);
    st->tf = calloc((size_t)m->n_blocks, sizeof *st->tf);
    if (!st->rm || !st->tf) {
        mc_text_train_state_free(st);
        return mc_fail(e, MC_E_NOMEM, "out of memory for the text training state");
    }
    return 0;
}

void mc_text_train_state_free(mc_text_train_state *st) {
    free(st->rm);
    free(st->tf);
    st->rm = NULL;
    st->tf = NULL;
}

int mc_text_train_forward(mc_train_ctx *c, const mc_text_encoder *m, mc_text_train_state *st, const int32_t *tokens,
                          int N, mc_err *e) {
    int T = m->context, C = m->dim, P = m->proj_dim, M = N * T;
    if (N < 1) return mc_fail(e, MC_E_ARG, "text encoder: batch size %d", N);
    if (st->n_blocks != m->n_blocks) return mc_fail(e, MC_E_ARG, "text training state built for another model");
    if (tokens)
        for (int i = 0; i < M; i++)
            if (tokens[i] < 0 || tokens[i] >= m->vocab)
                return mc_fail(e, MC_E_ARG, "text encoder: token id %d at sequence %d position %d is outside [0, %d)",
                               (int)tokens[i], i / T, i % T, m->vocab);
    st->N = N;
    st->tokens = tokens;
    st->x0 = TAKE(c, (size_t)M * C);
    st->m_e = c->train && c->rate.embed > 0 ? TAKE(c, (size_t)M * C) : NULL;
    if (FLIVE(c)) {
        mc_embedding_forward(st->x0, tokens, m->tok_emb, m->pos_emb, N, T, C);
        if (st->m_e) mc_dropout_forward(st->x0, st->m_e, st->x0, (size_t)M * C, c->rate.embed, c->rng);
    }
    const float *x = st->x0;
    /* every transformer layer gets the tower's stochastic depth rate (ctx->rate.drop_path) */
    for (int i = 0; i < m->n_blocks; i++) {
        const mc_text_block *b = &m->blocks[i];
        x = b->is_repmixer ? mc_text_repmixer_train_forward(c, &b->rm, &st->rm[i], x, N, T)
                           : mc_transformer_train_forward(c, &b->tf, &st->tf[i], x, N, T, m->causal);
    }
    st->xl = x;
    st->xf = TAKE(c, (size_t)M * C);
    st->ln_mean = TAKE(c, M);
    st->ln_rstd = TAKE(c, M);
    st->eot = (int32_t *)TAKE(c, N);
    st->pooled = TAKE(c, (size_t)N * C);
    st->embed = TAKE(c, (size_t)N * P);
    if (FLIVE(c)) {
        mc_layernorm_train_forward(st->xf, st->ln_mean, st->ln_rstd, x, m->ln_w, m->ln_b, M, C, 1e-5f);
        mc_eot_pool_forward(st->pooled, st->eot, st->xf, tokens, N, T, C);
        mc_matmul_forward(st->embed, st->pooled, m->proj, N, C, P);
    }
    if (c->tape->base && (c->tape->overflow || c->work->overflow))
        return mc_fail(e, MC_E_NOMEM, "text encoder: training activation arena too small (%zu + %zu floats needed)",
                       c->tape->peak, c->work->peak);
    return 0;
}

int mc_text_train_backward(mc_train_ctx *c, const mc_text_encoder *m, mc_text_train_state *st, const float *dembed,
                           mc_err *e) {
    int N = st->N, T = m->context, C = m->dim, P = m->proj_dim, M = N * T;
    size_t n = (size_t)M * C, mk = mc_tape_mark(c->work);
    float *da = WORK(c, n), *db = WORK(c, n), *dp = WORK(c, (size_t)N * C), *t;
    if (BLIVE(c)) {
        mc_matmul_backward(dp, G(c, m->proj), dembed, st->pooled, m->proj, N, C, P, 0);
        mc_eot_pool_backward(db, dp, st->eot, N, T, C);
        mc_layernorm_backward(da, G(c, m->ln_w), G(c, m->ln_b), db, st->xl, st->ln_mean, st->ln_rstd, m->ln_w, M, C, 0);
    }
    for (int i = m->n_blocks - 1; i >= 0; i--) {
        const mc_text_block *b = &m->blocks[i];
        if (b->is_repmixer) mc_text_repmixer_train_backward(c, &b->rm, &st->rm[i], db, da, N, T);
        else mc_transformer_train_backward(c, &b->tf, &st->tf[i], db, da, N, T, m->causal);
        t = da, da = db, db = t;
    }
    /* embed_dropout, then the positional embedding [1,1,T,C] and token embedding rows */
    if (BLIVE(c) && st->m_e) mc_dropout_backward(da, da, st->m_e, n);
    if (BLIVE(c)) mc_embedding_backward(G(c, m->tok_emb), G(c, m->pos_emb), da, st->tokens, N, T, C);
    mc_tape_release(c->work, mk);
    if (c->work->base && c->work->overflow)
        return mc_fail(e, MC_E_NOMEM, "text encoder: backward work arena too small (%zu floats needed)", c->work->peak);
    return 0;
}

int mc_text_train_sizes(const mc_text_encoder *m, int N, const mc_dropout_rates *rates, size_t *tape_floats,
                        size_t *work_floats, mc_err *e) {
    mc_tape tape = {0}, work = {0};
    mc_train_ctx c = mc_train_measure_ctx(&tape, &work, rates);
    mc_text_train_state st;
    int r = mc_text_train_state_init(&st, m, e);
    if (r) return r;
    if (!(r = mc_text_train_forward(&c, m, &st, NULL, N, e))) r = mc_text_train_backward(&c, m, &st, NULL, e);
    mc_text_train_state_free(&st);
    *tape_floats = tape.peak;
    *work_floats = work.peak;
    return r;
}
