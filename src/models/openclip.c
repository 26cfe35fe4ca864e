/* open_clip CLIP (ViT image tower + text transformer); see openclip.h. */
#include "models/openclip.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment/augment.h"
#include "core/parallel.h"
#include "image/preprocess.h"
#include "io/checkpoint.h"
#include "nn/ops.h"

static const char *src_name(const mc_tensor_map *w) { return w->source ? w->source : "checkpoint"; }

/* ---- binding ---- */

/* Declares `name` (zero-filled, `shape`) when asked and absent. */
static int declare(mc_oc_binder *b, const char *name, int ndim, const int64_t *shape, mc_err *e) {
    if (!b->declare || mc_tensor_map_find(b->w, name)) return 0;
    return mc_tensor_map_add_zero(b->w, name, MC_DTYPE_F32, ndim, shape, NULL, e);
}

int mc_oc_param(mc_oc_binder *b, const char *prefix, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2,
                int64_t d3, const float **out, mc_err *e) {
    char full[256];
    if (snprintf(full, sizeof full, "%s%s", prefix, name) >= (int)sizeof full)
        return mc_fail(e, MC_E_ARG, "tensor name too long: %s%s", prefix, name);
    int64_t shape[4] = {d0, d1, d2, d3};
    int r = declare(b, full, ndim, shape, e);
    return r ? r : mc_tensor_map_f32(b->w, full, ndim, shape, out, e);
}

int mc_oc_bind_blocks(mc_oc_binder *b, const char *prefix, int n, int C, int H, double mlp_ratio, double eps,
                      mc_activation act, mc_transformer_layer **out, mc_err *e) {
    int F = (int)(C * mlp_ratio); /* open_clip: mlp_width = int(d_model * mlp_ratio) */
    if (F < 1) return mc_fail(e, MC_E_MODEL, "%s: MLP width %d", prefix, F);
    mc_transformer_layer *L = calloc((size_t)n, sizeof *L);
    if (!L) return mc_fail(e, MC_E_NOMEM, "out of memory");
    *out = L;
    for (int i = 0; i < n; i++) {
        char p[192];
        snprintf(p, sizeof p, "%s%d.", prefix, i);
        if (b->declare) {
            int nd[12];
            int64_t sh[12][2];
            mc_transformer_layer_shapes(C, F, nd, sh);
            for (int j = 0; j < 12; j++) {
                char full[320];
                snprintf(full, sizeof full, "%s%s", p, mc_transformer_names_openclip.name[j]);
                int r = declare(b, full, nd[j], sh[j], e);
                if (r) return r;
            }
        }
        int r = mc_transformer_layer_bind_as(&L[i], b->w, p, &mc_transformer_names_openclip, C, H, F, act, e);
        if (r) return r;
        L[i].ln_eps = (float)eps;
    }
    /* a checkpoint with more blocks than the config is not this model */
    char p[192];
    snprintf(p, sizeof p, "%s%d.", prefix, n);
    if (mc_tensor_map_has_prefix(b->w, p))
        return mc_fail(e, MC_E_MODEL, "%s: has tensors under '%s' but the config has %d layers", src_name(b->w), p, n);
    return 0;
}

/* CoCa's AttentionalPooler under "<prefix>attn_pool.": query [Q, D], nn.MultiheadAttention(D, heads,
 * kdim = vdim = C) (separate q/k/v_proj_weight when C != D, else one in_proj_weight), ln_q [D],
 * ln_k [C]. */
static int bind_pooler(mc_oc_vision *v, mc_oc_binder *b, const char *prefix, mc_err *e) {
    char p[160];
    snprintf(p, sizeof p, "%sattn_pool.", prefix);
    int C = v->width, D = v->out_dim, Q = v->cfg.attn_pooler_queries, r;
    if ((r = mc_oc_param(b, p, "query", 2, Q, D, 0, 0, &v->pool_query, e)) ||
        (r = mc_oc_param(b, p, "ln_q.weight", 1, D, 0, 0, 0, &v->ln_q_w, e)) ||
        (r = mc_oc_param(b, p, "ln_q.bias", 1, D, 0, 0, 0, &v->ln_q_b, e)) ||
        (r = mc_oc_param(b, p, "ln_k.weight", 1, C, 0, 0, 0, &v->ln_k_w, e)) ||
        (r = mc_oc_param(b, p, "ln_k.bias", 1, C, 0, 0, 0, &v->ln_k_b, e)) ||
        (r = mc_oc_param(b, p, "attn.in_proj_bias", 1, 3 * D, 0, 0, 0, &v->pool_in_b, e)) ||
        (r = mc_oc_param(b, p, "attn.out_proj.weight", 2, D, D, 0, 0, &v->pool_out_w, e)) ||
        (r = mc_oc_param(b, p, "attn.out_proj.bias", 1, D, 0, 0, 0, &v->pool_out_b, e)))
        return r;
    if (C == D) { /* torch packs equal-width projections into one [3D, D] matrix */
        const float *w;
        if ((r = mc_oc_param(b, p, "attn.in_proj_weight", 2, 3 * D, D, 0, 0, &w, e))) return r;
        v->pool_q_w = w;
        v->pool_k_w = w + (size_t)D * D;
        v->pool_v_w = w + (size_t)2 * D * D;
        return 0;
    }
    if ((r = mc_oc_param(b, p, "attn.q_proj_weight", 2, D, D, 0, 0, &v->pool_q_w, e)) ||
        (r = mc_oc_param(b, p, "attn.k_proj_weight", 2, D, C, 0, 0, &v->pool_k_w, e)) ||
        (r = mc_oc_param(b, p, "attn.v_proj_weight", 2, D, C, 0, 0, &v->pool_v_w, e)))
        return r;
    return 0;
}

int mc_oc_vision_bind(mc_oc_vision *v, mc_oc_binder *b, const char *prefix, const mc_oc_vision_cfg *cfg, int out_dim,
                      mc_activation act, mc_err *e) {
    memset(v, 0, sizeof *v);
    v->cfg = *cfg;
    int C = v->width = cfg->width, p = v->patch = cfg->patch_size;
    v->heads = cfg->width / cfg->head_width;
    v->layers = cfg->layers;
    v->grid = cfg->image_size / p;
    v->n_tok = 1 + v->grid * v->grid;
    v->out_dim = out_dim;
    /* with the pooler, ln_post and proj act on its embed_dim-wide outputs */
    int P = v->pool_dim = cfg->attentional_pool ? out_dim : C;
    v->n_out_tok = cfg->attentional_pool ? cfg->attn_pooler_queries - 1 : 0;
    if (cfg->attentional_pool && (cfg->attn_pooler_queries < 2 || out_dim % cfg->attn_pooler_heads))
        return mc_fail(e, MC_E_MODEL, "%s: attentional pooler with %d queries and %d heads over width %d", prefix,
                       cfg->attn_pooler_queries, cfg->attn_pooler_heads, out_dim);
    char blocks[160];
    snprintf(blocks, sizeof blocks, "%stransformer.resblocks.", prefix);
    int r;
    if ((r = mc_oc_param(b, prefix, "class_embedding", 1, C, 0, 0, 0, &v->cls, e)) ||
        (r = mc_oc_param(b, prefix, "positional_embedding", 2, v->n_tok, C, 0, 0, &v->pos, e)) ||
        (r = mc_oc_param(b, prefix, "conv1.weight", 4, C, 3, p, p, &v->conv1, e)))
        return r;
    if (!cfg->no_ln_pre && ((r = mc_oc_param(b, prefix, "ln_pre.weight", 1, C, 0, 0, 0, &v->ln_pre_w, e)) ||
                            (r = mc_oc_param(b, prefix, "ln_pre.bias", 1, C, 0, 0, 0, &v->ln_pre_b, e))))
        return r;
    if ((r = mc_oc_bind_blocks(b, blocks, cfg->layers, C, v->heads, cfg->mlp_ratio, cfg->ln_eps, act, &v->blocks, e)))
        return r;
    if (cfg->attentional_pool && (r = bind_pooler(v, b, prefix, e))) return r;
    if ((r = mc_oc_param(b, prefix, "ln_post.weight", 1, P, 0, 0, 0, &v->ln_post_w, e)) ||
        (r = mc_oc_param(b, prefix, "ln_post.bias", 1, P, 0, 0, 0, &v->ln_post_b, e)) ||
        (r = mc_oc_param(b, prefix, "proj", 2, P, out_dim, 0, 0, &v->proj, e)))
        return r;
    return 0;
}

void mc_oc_vision_release(mc_oc_vision *v) {
    if (!v) return;
    free(v->blocks);
    v->blocks = NULL;
}

int mc_oc_text_bind(mc_oc_text *t, mc_oc_binder *b, const char *prefix, const mc_oc_text_cfg *cfg, int out_dim,
                    mc_activation act, mc_err *e) {
    memset(t, 0, sizeof *t);
    t->cfg = *cfg;
    int W = t->width = cfg->width;
    t->vocab = cfg->vocab_size;
    t->context = cfg->context_length;
    t->n_pos = cfg->context_length + (cfg->embed_cls ? 1 : 0);
    t->heads = cfg->heads;
    t->layers = cfg->layers;
    t->out_dim = cfg->proj_none ? W : out_dim;
    t->causal = !cfg->no_causal_mask;
    char blocks[160];
    snprintf(blocks, sizeof blocks, "%stransformer.resblocks.", prefix);
    int r;
    if ((r = mc_oc_param(b, prefix, "token_embedding.weight", 2, t->vocab, W, 0, 0, &t->tok_emb, e)) ||
        (r = mc_oc_param(b, prefix, "positional_embedding", 2, t->n_pos, W, 0, 0, &t->pos_emb, e)) ||
        (cfg->embed_cls && (r = mc_oc_param(b, prefix, "cls_emb", 1, W, 0, 0, 0, &t->cls_emb, e))) ||
        (r = mc_oc_bind_blocks(b, blocks, cfg->layers, W, t->heads, cfg->mlp_ratio, cfg->ln_eps, act, &t->blocks, e)) ||
        (r = mc_oc_param(b, prefix, "ln_final.weight", 1, W, 0, 0, 0, &t->ln_w, e)) ||
        (r = mc_oc_param(b, prefix, "ln_final.bias", 1, W, 0, 0, 0, &t->ln_b, e)))
        return r;
    if (cfg->proj_none) return 0;
    if (cfg->proj_bias)
        return (r = mc_oc_param(b, prefix, "text_projection.weight", 2, out_dim, W, 0, 0, &t->proj, e))
                   ? r
                   : mc_oc_param(b, prefix, "text_projection.bias", 1, out_dim, 0, 0, 0, &t->proj_b, e);
    return mc_oc_param(b, prefix, "text_projection", 2, W, out_dim, 0, 0, &t->proj, e);
}

void mc_oc_text_release(mc_oc_text *t) {
    if (!t) return;
    free(t->blocks);
    t->blocks = NULL;
}

/* ---- forward ---- */

/* The token tables of both towers, built as tasks on the library's pool (core/parallel.h):
 * task i writes token row i only. */
typedef struct oc_tokens_job {
    const mc_oc_vision *v;
    const mc_oc_text *t;
    float *x;
    const float *patches;
    const int32_t *tokens;
    int T, C, P, L;
} oc_tokens_job;

/* vision: row b * T + t = class token (t = 0) or patch t - 1 of image b, + position t */
static void oc_vision_rows(void *arg, int r0, int r1) {
    const oc_tokens_job *j = arg;
    int T = j->T, C = j->C, P = j->P;
    for (int r = r0; r < r1; r++) {
        int b = r / T, t = r % T;
        float *xt = j->x + (size_t)r * C;
        const float *pe = j->v->pos + (size_t)t * C;
        if (t == 0) {
            for (int c = 0; c < C; c++) xt[c] = j->v->cls[c] + pe[c];
        } else {
            const float *src = j->patches + (size_t)b * C * P + (t - 1);
            for (int c = 0; c < C; c++) xt[c] = src[(size_t)c * P] + pe[c];
        }
    }
}

/* text: row n * S + s = token s of sequence n (s = L: the class embedding), + position s */
static void oc_text_rows(void *arg, int r0, int r1) {
    const oc_tokens_job *j = arg;
    const mc_oc_text *t = j->t;
    int S = j->T, W = j->C, L = j->L;
    for (int i = r0; i < r1; i++) {
        int n = i / S, s = i % S;
        const float *te = s < L ? t->tok_emb + (size_t)j->tokens[(size_t)n * L + s] * W : t->cls_emb;
        const float *pe = t->pos_emb + (size_t)s * W;
        float *xi = j->x + (size_t)i * W;
        for (int c = 0; c < W; c++) xi[c] = te[c] + pe[c];
    }
}

int mc_oc_vision_tokens(const mc_oc_vision *v, const float *images, int B, float *x, const mc_trace *trace,
                        mc_err *e) {
    if (B < 1) return mc_fail(e, MC_E_ARG, "open_clip ViT: batch size %d", B);
    int C = v->width, p = v->patch, g = v->grid, P = g * g, T = v->n_tok, R = v->cfg.image_size;
    size_t M = (size_t)B * T;
    size_t scratch = mc_transformer_stack_scratch(v->blocks, v->layers, B, T), patches = (size_t)B * C * P;
    float *buf = malloc(sizeof(float) * (scratch > patches ? scratch : patches));
    if (!buf) return mc_fail(e, MC_E_NOMEM, "open_clip ViT: out of memory for %d images", B);

    /* conv1: [B,3,R,R] -> [B,C,g,g]; a partial last patch row/column is dropped like torch's */
    mc_conv2d_shape cs = {3, C, p, p, p, 0, 0, 1};
    mc_conv2d_forward(buf, images, v->conv1, NULL, &cs, B, R, R);
    /* tokens [B, T, C]: class token, then the patches row-major; + positional embedding */
    oc_tokens_job j = {.v = v, .x = x, .patches = buf, .T = T, .C = C, .P = P};
    mc_parallel_for(B * T, mc_parallel_grain(B * T, 4), oc_vision_rows, &j);
    int64_t shape[3] = {B, T, C};
    mc_trace_emit(trace, "embed", x, 3, shape);
    if (v->ln_pre_w) {
        mc_layernorm_forward(x, x, v->ln_pre_w, v->ln_pre_b, (int)M, C, (float)v->cfg.ln_eps);
        mc_trace_emit(trace, "ln_pre", x, 3, shape);
    }
    int r = mc_transformer_stack_forward(v->blocks, v->layers, x, B, T, 0, buf, trace, "resblock%02d");
    free(buf);
    return r ? mc_fail(e, r, "open_clip ViT: out of memory in the transformer") : 0;
}

/* AttentionalPooler: x [B, T, C] (overwritten by ln_k) -> out [B, Q, D]. */
static int attn_pool(const mc_oc_vision *v, float *x, int B, float *out) {
    int C = v->width, D = v->out_dim, T = v->n_tok, Q = v->cfg.attn_pooler_queries, H = v->cfg.attn_pooler_heads;
    size_t M = (size_t)B * T;
    float *q = malloc(sizeof(float) * ((size_t)Q * D * 2 + M * 2 * D + (size_t)B * Q * D));
    if (!q) return MC_E_NOMEM;
    float *qn = q + (size_t)Q * D, *k = qn + (size_t)Q * D, *val = k + M * D, *o = val + M * D;
    mc_layernorm_forward(x, x, v->ln_k_w, v->ln_k_b, (int)M, C, (float)v->cfg.ln_eps);
    mc_layernorm_forward(qn, v->pool_query, v->ln_q_w, v->ln_q_b, Q, D, (float)v->cfg.ln_eps);
    mc_linear_forward(q, qn, v->pool_q_w, v->pool_in_b, Q, D, D);
    mc_linear_forward(k, x, v->pool_k_w, v->pool_in_b + D, (int)M, C, D);
    mc_linear_forward(val, x, v->pool_v_w, v->pool_in_b + 2 * D, (int)M, C, D);
    /* the same Q queries for every image (q_batch 0) */
    mc_attention_args a = {.q = q, .k = k, .v = val, .q_ld = (size_t)D, .kv_ld = (size_t)D, .q_batch = 0,
                           .kv_batch = (size_t)T * D, .Tq = Q, .Tk = T, .H = H, .D = D / H,
                           .scale = (float)(1.0 / sqrt((double)(D / H))), .causal_off = INT_MAX};
    int r = mc_attention_general(o, &a, B);
    if (!r) mc_linear_forward(out, o, v->pool_out_w, v->pool_out_b, B * Q, D, D);
    free(q);
    return r;
}

int mc_oc_vision_encode(const mc_oc_vision *v, const float *images, int B, float *out, float *tokens,
                        const mc_trace *trace, mc_err *e) {
    if (B < 1) return mc_fail(e, MC_E_ARG, "open_clip ViT: batch size %d", B);
    int C = v->width, T = v->n_tok, P = v->pool_dim, Q = v->cfg.attentional_pool ? v->cfg.attn_pooler_queries : 0;
    size_t M = (size_t)B * T;
    float *x = malloc(sizeof(float) * (M * C + (size_t)B * Q * P + (size_t)B * P));
    if (!x) return mc_fail(e, MC_E_NOMEM, "open_clip ViT: out of memory for %d images", B);
    float *pooled_all = x + M * C, *pooled = pooled_all + (size_t)B * Q * P;
    int r = mc_oc_vision_tokens(v, images, B, x, trace, e);
    if (r) {
        free(x);
        return r;
    }
    float eps = (float)v->cfg.ln_eps;
    /* the pooler's Q outputs replace the T tokens; "tok" / "avg" then pool those */
    const float *seq = x;
    int S = T;
    if (Q) {
        if ((r = attn_pool(v, x, B, pooled_all))) {
            free(x);
            return mc_fail(e, r, "open_clip ViT: out of memory in the attentional pooler");
        }
        mc_layernorm_forward(pooled_all, pooled_all, v->ln_post_w, v->ln_post_b, B * Q, P, eps);
        int64_t qs[3] = {B, Q, P};
        mc_trace_emit(trace, "attn_pool", pooled_all, 3, qs);
        seq = pooled_all;
        S = Q;
        if (tokens)
            for (int b = 0; b < B; b++)
                memcpy(tokens + (size_t)b * (Q - 1) * P, pooled_all + ((size_t)b * Q + 1) * P,
                       sizeof(float) * (size_t)(Q - 1) * P);
    }
    if (v->cfg.pool_type == MC_OC_POOL_TOK) {
        /* LayerNorm is per token: normalising only the pooled class token is the same */
        for (int b = 0; b < B; b++) memcpy(pooled + (size_t)b * P, seq + (size_t)b * S * P, sizeof(float) * P);
        if (!Q) mc_layernorm_forward(pooled, pooled, v->ln_post_w, v->ln_post_b, B, P, eps);
    } else { /* avg of the patch tokens; ln_post before (default) or after the pooling */
        int after = !Q && v->cfg.final_ln_after_pool;
        if (!Q && !after) mc_layernorm_forward(x, x, v->ln_post_w, v->ln_post_b, (int)M, C, eps);
        for (int b = 0; b < B; b++)
            for (int c = 0; c < P; c++) {
                float s = 0.f;
                for (int t = 1; t < S; t++) s += seq[((size_t)b * S + t) * P + c];
                pooled[(size_t)b * P + c] = s / (float)(S - 1);
            }
        if (after) mc_layernorm_forward(pooled, pooled, v->ln_post_w, v->ln_post_b, B, C, eps);
    }
    int64_t ps[2] = {B, P}, fs[2] = {B, v->out_dim};
    mc_trace_emit(trace, "pooled", pooled, 2, ps);
    mc_matmul_forward(out, pooled, v->proj, B, P, v->out_dim);
    mc_trace_emit(trace, "features", out, 2, fs);
    free(x);
    return 0;
}

int mc_oc_vision_forward(const mc_oc_vision *v, const float *images, int B, float *out, const mc_trace *trace,
                         mc_err *e) {
    return mc_oc_vision_encode(v, images, B, out, NULL, trace, e);
}

static int check_ids(const mc_oc_text *t, const int32_t *tokens, int N, int L, mc_err *e) {
    for (size_t i = 0; i < (size_t)N * L; i++)
        if (tokens[i] < 0 || tokens[i] >= t->vocab)
            return mc_fail(e, MC_E_ARG, "open_clip text: token id %d at sequence %d position %d is outside [0, %d)",
                           (int)tokens[i], (int)(i / L), (int)(i % L), t->vocab);
    return 0;
}

/* CoCa's build_cls_mask on top of the causal mask, as a byte mask [N, S, S] (S = L + 1): the
 * token rows see tokens <= themselves; the CLS row (S-1) sees key 0 always and key j >= 1
 * when tokens[j-1] != pad_id (F.pad shifts the padding mask one column right, so the CLS row
 * skips itself when the last token is padding). */
void mc_oc_text_cls_mask(const mc_oc_text *t, const int32_t *tokens, int N, int L, uint8_t *mask) {
    int S = L + 1;
    for (int n = 0; n < N; n++) {
        uint8_t *m = mask + (size_t)n * S * S;
        for (int i = 0; i < S; i++)
            for (int j = 0; j < S; j++) m[(size_t)i * S + j] = (uint8_t)(j <= i);
        uint8_t *last = m + (size_t)(S - 1) * S;
        for (int j = 1; j < S; j++) last[j] = tokens[(size_t)n * L + j - 1] != t->cfg.pad_id;
    }
}

int mc_oc_text_tokens_len(const mc_oc_text *t, const int32_t *tokens, int N, int L, float *x, const mc_trace *trace,
                          mc_err *e) {
    if (N < 1) return mc_fail(e, MC_E_ARG, "open_clip text: batch size %d", N);
    if (L < 1 || L > t->context)
        return mc_fail(e, MC_E_ARG, "open_clip text: %d tokens, the context holds 1 to %d", L, t->context);
    int r = check_ids(t, tokens, N, L, e);
    if (r) return r;
    int W = t->width, S = L + (t->cls_emb ? 1 : 0);
    size_t M = (size_t)N * S;
    float *work = malloc(sizeof(float) * mc_transformer_stack_scratch(t->blocks, t->layers, N, S));
    uint8_t *mask = t->cls_emb ? malloc((size_t)N * S * S) : NULL;
    if (!work || (t->cls_emb && !mask)) {
        free(work);
        free(mask);
        return mc_fail(e, MC_E_NOMEM, "open_clip text: out of memory for %d sequences", N);
    }
    oc_tokens_job j = {.t = t, .x = x, .tokens = tokens, .T = S, .C = W, .L = L};
    mc_parallel_for((int)M, mc_parallel_grain((int)M, 4), oc_text_rows, &j);
    if (mask) mc_oc_text_cls_mask(t, tokens, N, L, mask);
    int64_t shape[3] = {N, S, W};
    mc_trace_emit(trace, "embed", x, 3, shape);
    r = mc_transformer_stack_forward_masked(t->blocks, t->layers, x, N, S, t->causal, mask, work, trace,
                                            "resblock%02d");
    free(work);
    free(mask);
    return r ? mc_fail(e, r, "open_clip text: out of memory in the transformer") : 0;
}

int mc_oc_text_tokens(const mc_oc_text *t, const int32_t *tokens, int N, float *x, const mc_trace *trace, mc_err *e) {
    return mc_oc_text_tokens_len(t, tokens, N, t->context, x, trace, e);
}

int mc_oc_text_forward(const mc_oc_text *t, const int32_t *tokens, int N, float *out, const mc_trace *trace,
                       mc_err *e) {
    if (N < 1) return mc_fail(e, MC_E_ARG, "open_clip text: batch size %d", N);
    int T = t->context, S = t->n_pos, W = t->width, D = t->out_dim;
    float *x = malloc(sizeof(float) * ((size_t)N * S * W + (size_t)N * W));
    if (!x) return mc_fail(e, MC_E_NOMEM, "open_clip text: out of memory for %d sequences", N);
    float *pooled = x + (size_t)N * S * W;
    int r = mc_oc_text_tokens(t, tokens, N, x, trace, e);
    if (r) {
        free(x);
        return r;
    }
    float eps = (float)t->cfg.ln_eps;
    if (t->cls_emb) { /* CoCa: the appended CLS token, ln_final after pooling */
        for (int n = 0; n < N; n++)
            memcpy(pooled + (size_t)n * W, x + ((size_t)n * S + S - 1) * W, sizeof(float) * W);
        mc_layernorm_forward(pooled, pooled, t->ln_w, t->ln_b, N, W, eps);
    } else {
        int64_t shape[3] = {N, T, W};
        mc_layernorm_forward(x, x, t->ln_w, t->ln_b, N * T, W, eps);
        mc_trace_emit(trace, "ln_final", x, 3, shape);
        for (int n = 0; n < N; n++) {
            const int32_t *tk = tokens + (size_t)n * T;
            int at = 0;
            if (t->cfg.pool_type == MC_OC_POOL_LAST) at = T - 1;
            else if (t->cfg.pool_type == MC_OC_POOL_ARGMAX) /* torch.argmax: the first of equal maxima */
                for (int i = 1; i < T; i++)
                    if (tk[i] > tk[at]) at = i;
            memcpy(pooled + (size_t)n * W, x + ((size_t)n * T + at) * W, sizeof(float) * W);
        }
    }
    int64_t ps[2] = {N, W}, fs[2] = {N, D};
    mc_trace_emit(trace, "pooled", pooled, 2, ps);
    if (!t->proj) memcpy(out, pooled, sizeof(float) * (size_t)N * W);
    else if (t->proj_b) mc_linear_forward(out, pooled, t->proj, t->proj_b, N, W, D);
    else mc_matmul_forward(out, pooled, t->proj, N, W, D);
    mc_trace_emit(trace, "features", out, 2, fs);
    free(x);
    return 0;
}

/* ---- the CLIP model ---- */

void mc_openclip_free(mc_openclip *m) {
    if (!m) return;
    mc_oc_vision_release(m->visual);
    free(m->visual);
    mc_oc_text_release(m->text);
    free(m->text);
    mc_tensor_map_free(&m->weights);
    memset(m, 0, sizeof *m);
}

static int scalar(mc_oc_binder *b, const char *name, float value, float *out, mc_err *e) {
    const mc_tensor *t = mc_tensor_map_find(b->w, name);
    if (!t && b->declare) {
        int64_t one[1] = {1};
        int r = declare(b, name, 0, one, e);
        if (r) return r;
        float *p = (float *)(mc_tensor_map_find(b->w, name)->data);
        *p = value;
        t = mc_tensor_map_find(b->w, name);
    }
    if (!t) return mc_fail(e, MC_E_MODEL, "%s: missing tensor '%s'", src_name(b->w), name);
    if (mc_tensor_numel(t) != 1 || t->ndim > 1) {
        char s[128];
        return mc_fail(e, MC_E_MODEL, "%s: tensor '%s' has shape %s, expected a scalar", src_name(b->w), name,
                       mc_shape_str(t->shape, t->ndim, s, sizeof s));
    }
    *out = (float)mc_tensor_get_f64(t, 0);
    if (!isfinite(*out)) return mc_fail(e, MC_E_MODEL, "%s: %s is not a finite number", src_name(b->w), name);
    mc_tensor_map_mark_used(b->w, name);
    return 0;
}

static int init(mc_openclip *m, const mc_oc_cfg *cfg, int load_image, int load_text, int declare_all, int keep_decoder,
                mc_err *e) {
    m->cfg = *cfg;
    mc_oc_binder b = {&m->weights, declare_all};
    const char *src = src_name(&m->weights), *tp = cfg->custom_text ? "text." : "";
    mc_activation act = cfg->quick_gelu ? MC_ACT_QUICKGELU : MC_ACT_GELU;
    /* a checkpoint of another family fails on its first tensor; say what it looks like instead */
    if (!declare_all && load_image && !mc_tensor_map_has_prefix(&m->weights, "visual.")) {
        if (mc_tensor_map_has_prefix(&m->weights, "image_encoder."))
            return mc_fail(e, MC_E_MODEL, "%s: a MobileCLIP checkpoint (image_encoder.* tensors), not an open_clip %s "
                           "model (visual.* tensors)", src, cfg->name);
        return mc_fail(e, MC_E_MODEL, "%s: no 'visual.*' tensors: not an open_clip %s checkpoint", src, cfg->name);
    }
    int r;
    if ((r = scalar(&b, "logit_scale", (float)log(1 / 0.07), &m->logit_scale_raw, e))) return r;
    if (cfg->has_logit_bias && (r = scalar(&b, "logit_bias", 0.f, &m->logit_bias, e))) return r;
    if (load_image) {
        if (!(m->visual = calloc(1, sizeof *m->visual))) return mc_fail(e, MC_E_NOMEM, "out of memory");
        if ((r = mc_oc_vision_bind(m->visual, &b, "visual.", &cfg->vision, cfg->embed_dim, act, e))) return r;
        const char *extra = mc_tensor_map_first_unused(&m->weights, "visual.");
        if (extra) return mc_fail(e, MC_E_MODEL, "%s: unexpected tensor '%s' for %s", src, extra, cfg->name);
    }
    if (load_text) {
        if (!(m->text = calloc(1, sizeof *m->text))) return mc_fail(e, MC_E_NOMEM, "out of memory");
        if ((r = mc_oc_text_bind(m->text, &b, tp, &cfg->text, cfg->embed_dim, act, e))) return r;
    }
    if (load_image && load_text && !keep_decoder) {
        /* OpenAI's state dicts carry three integers open_clip drops before loading */
        static const char *const openai_extra[] = {"input_resolution", "context_length", "vocab_size"};
        for (int i = 0; i < 3; i++) mc_tensor_map_mark_used(&m->weights, openai_extra[i]);
        /* a CoCa checkpoint used as CLIP: its caption decoder is not part of the contrastive model
         * (models/coca.h binds it) */
        if (cfg->has_multimodal)
            for (int i = 0; i < m->weights.count; i++)
                if (!strncmp(m->weights.items[i].name, "text_decoder.", 13)) m->weights.items[i].used = 1;
        const char *extra = mc_tensor_map_first_unused(&m->weights, "");
        if (extra) return mc_fail(e, MC_E_MODEL, "%s: unexpected tensor '%s' for %s", src, extra, cfg->name);
    }
    return 0;
}

int mc_openclip_init(mc_openclip *m, mc_tensor_map *weights, const mc_oc_cfg *cfg, int load_image, int load_text,
                     mc_err *e) {
    memset(m, 0, sizeof *m);
    m->weights = *weights;
    memset(weights, 0, sizeof *weights);
    int r = init(m, cfg, load_image, load_text, 0, 0, e);
    if (r) {
        if (e && !e->code) mc_fail(e, r, "open_clip init failed");
        mc_openclip_free(m);
    }
    return r;
}

int mc_openclip_init_declared(mc_openclip *m, const mc_oc_cfg *cfg, mc_err *e) {
    memset(m, 0, sizeof *m);
    mc_tensor_map_init(&m->weights);
    int r = init(m, cfg, 1, 1, 1, 0, e);
    if (r) mc_openclip_free(m);
    return r;
}

int mc_openclip_init_towers(mc_openclip *m, mc_tensor_map *weights, const mc_oc_cfg *cfg, mc_err *e) {
    memset(m, 0, sizeof *m);
    if (weights) {
        m->weights = *weights;
        memset(weights, 0, sizeof *weights);
    } else {
        mc_tensor_map_init(&m->weights);
    }
    int r = init(m, cfg, 1, 1, !weights, 1, e);
    if (r) {
        if (e && !e->code) mc_fail(e, r, "open_clip init failed");
        mc_openclip_free(m);
    }
    return r;
}

int mc_openclip_load(mc_openclip *m, const char *path, const mc_oc_cfg *cfg, mc_err *e) {
    mc_tensor_map w;
    mc_tensor_map_init(&w);
    memset(m, 0, sizeof *m);
    int r = mc_checkpoint_load(path, &w, e);
    if (r) {
        mc_tensor_map_free(&w);
        return r;
    }
    return mc_openclip_init(m, &w, cfg, 1, 1, e);
}

int mc_openclip_encode_image(const mc_openclip *m, const float *images, int B, float *out, const mc_trace *trace,
                             mc_err *e) {
    if (!m->visual) return mc_fail(e, MC_E_UNSUPPORTED, "%s: the image tower was not loaded", m->cfg.name);
    return mc_oc_vision_forward(m->visual, images, B, out, trace, e);
}

int mc_openclip_encode_text(const mc_openclip *m, const int32_t *tokens, int N, float *out, const mc_trace *trace,
                            mc_err *e) {
    if (!m->text) return mc_fail(e, MC_E_UNSUPPORTED, "%s: the text tower was not loaded", m->cfg.name);
    return mc_oc_text_forward(m->text, tokens, N, out, trace, e);
}

int mc_openclip_preprocess(const mc_oc_cfg *cfg, const mc_image *im, float *chw, mc_err *e) {
    int R = cfg->vision.image_size;
    mc_image crop = {0};
    int r = mc_image_eval_crop_u8(im, R, cfg->bicubic ? MC_RESAMPLE_BICUBIC : MC_RESAMPLE_BILINEAR, &crop, e);
    if (r) return r;
    mc_image_to_tensor(&crop, chw);
    mc_image_free(&crop);
    mc_augment_normalize(chw, (size_t)R * R, cfg->mean, cfg->std);
    return 0;
}
