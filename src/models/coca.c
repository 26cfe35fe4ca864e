/* open_clip CoCa: contrastive towers + multimodal decoder with KV-cached decoding; see coca.h. */
#include "models/coca.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/checkpoint.h"
#include "nn/ops.h"

static const char *src_name(const mc_tensor_map *w) { return w->source ? w->source : "checkpoint"; }

/* Cross-attention blocks: the twelve open_clip names plus ln_1_kv [W]. */
static int bind_cross(mc_oc_binder *b, mc_coca_decoder *d, mc_activation act, mc_err *e) {
    int r = mc_oc_bind_blocks(b, "text_decoder.cross_attn.", d->layers, d->width, d->heads, 4.0, 1e-5, act,
                              &d->cross_blocks, e);
    for (int i = 0; !r && i < d->layers; i++) {
        char p[96];
        snprintf(p, sizeof p, "text_decoder.cross_attn.%d.", i);
        mc_transformer_layer *l = &d->cross_blocks[i];
        if (!(r = mc_oc_param(b, p, "ln_1_kv.weight", 1, d->width, 0, 0, 0, &l->ln1kv_w, e)))
            r = mc_oc_param(b, p, "ln_1_kv.bias", 1, d->width, 0, 0, 0, &l->ln1kv_b, e);
    }
    return r;
}

static int init(mc_coca *m, mc_tensor_map *weights, const mc_oc_cfg *cfg, mc_err *e) {
    memset(m, 0, sizeof *m);
    const char *name = cfg->name[0] ? cfg->name : "CoCa";
    if (!cfg->has_multimodal || !cfg->vision.attentional_pool || !cfg->text.embed_cls) {
        if (weights) mc_tensor_map_free(weights);
        return mc_fail(e, MC_E_ARG, "%s: not a CoCa configuration (needs multimodal_cfg, vision_cfg.attentional_pool "
                       "and text_cfg.embed_cls)", name);
    }
    if (cfg->text.width != cfg->mm.width) {
        if (weights) mc_tensor_map_free(weights);
        return mc_fail(e, MC_E_ARG, "%s: text_cfg.width %d differs from multimodal_cfg.width %d (the decoder reads "
                       "the text tokens)", name, cfg->text.width, cfg->mm.width);
    }
    if (weights && !mc_tensor_map_has_prefix(weights, "text_decoder.") && mc_tensor_map_has_prefix(weights, "visual.")) {
        int r = mc_fail(e, MC_E_MODEL, "%s: no 'text_decoder.*' tensors: a CLIP checkpoint, not a CoCa captioner",
                        src_name(weights));
        mc_tensor_map_free(weights);
        return r;
    }
    int r = mc_openclip_init_towers(&m->clip, weights, cfg, e);
    if (r) return r;
    mc_coca_decoder *d = &m->dec;
    d->width = cfg->mm.width;
    d->heads = cfg->mm.heads;
    d->layers = cfg->mm.layers;
    d->context = cfg->mm.context_length;
    d->vocab = cfg->text.vocab_size; /* the decoder's output_dim is text_cfg.vocab_size */
    m->n_img_tok = m->clip.visual->n_out_tok;
    m->embed_dim = cfg->embed_dim;
    mc_oc_binder b = {&m->clip.weights, !weights};
    mc_activation act = cfg->quick_gelu ? MC_ACT_QUICKGELU : MC_ACT_GELU;
    if ((r = mc_oc_bind_blocks(&b, "text_decoder.resblocks.", d->layers, d->width, d->heads, 4.0, 1e-5, act,
                               &d->self_blocks, e)) ||
        (r = bind_cross(&b, d, act, e)) ||
        (r = mc_oc_param(&b, "text_decoder.", "ln_final.weight", 1, d->width, 0, 0, 0, &d->ln_w, e)) ||
        (r = mc_oc_param(&b, "text_decoder.", "ln_final.bias", 1, d->width, 0, 0, 0, &d->ln_b, e)) ||
        (r = mc_oc_param(&b, "text_decoder.", "text_projection", 2, d->width, d->vocab, 0, 0, &d->proj, e)))
        return r;
    const char *extra = mc_tensor_map_first_unused(&m->clip.weights, "");
    if (extra) return mc_fail(e, MC_E_MODEL, "%s: unexpected tensor '%s' for %s", src_name(&m->clip.weights), extra, name);
    return 0;
}

int mc_coca_init(mc_coca *m, mc_tensor_map *weights, const mc_oc_cfg *cfg, mc_err *e) {
    int r = init(m, weights, cfg, e);
    if (r) mc_coca_free(m);
    return r;
}

int mc_coca_init_declared(mc_coca *m, const mc_oc_cfg *cfg, mc_err *e) { return mc_coca_init(m, NULL, cfg, e); }

int mc_coca_load(mc_coca *m, const char *path, const mc_oc_cfg *cfg, mc_err *e) {
    mc_tensor_map w;
    mc_tensor_map_init(&w);
    memset(m, 0, sizeof *m);
    int r = mc_checkpoint_load(path, &w, e);
    if (!r) return mc_coca_init(m, &w, cfg, e); /* init owns (and frees) the map */
    mc_tensor_map_free(&w);
    return r;
}

void mc_coca_free(mc_coca *m) {
    if (!m) return;
    free(m->dec.self_blocks);
    free(m->dec.cross_blocks);
    mc_openclip_free(&m->clip);
    memset(m, 0, sizeof *m);
}

int mc_coca_encode_image(const mc_coca *m, const float *images, int B, float *features, float *img_tok, mc_err *e) {
    float *f = features ? features : malloc(sizeof(float) * (size_t)(B > 0 ? B : 1) * m->embed_dim);
    if (!f) return mc_fail(e, MC_E_NOMEM, "CoCa: out of memory for %d images", B);
    int r = mc_oc_vision_encode(m->clip.visual, images, B, f, img_tok, NULL, e);
    if (!features) free(f);
    return r;
}

int mc_coca_encode_text(const mc_coca *m, const int32_t *tokens, int N, float *features, mc_err *e) {
    return mc_oc_text_forward(m->clip.text, tokens, N, features, NULL, e);
}

/* ---- KV-cached decoding ---- */

void mc_coca_state_free(mc_coca_state *s) {
    if (!s) return;
    free(s->img_index);
    free(s->text_k);
    free(s->dec_k);
    free(s->cross_kv);
    free(s->x);
    memset(s, 0, sizeof *s);
}

int mc_coca_state_init(mc_coca_state *s, const mc_coca *m, const float *img_tok, int n_img, const int *img_index,
                       int R, int max_len, mc_err *e) {
    memset(s, 0, sizeof *s);
    const mc_oc_text *t = m->clip.text;
    const mc_coca_decoder *d = &m->dec;
    int W = d->width, Ti = m->n_img_tok;
    int limit = t->context < d->context ? t->context : d->context;
    if (R < 1 || n_img < 1) return mc_fail(e, MC_E_ARG, "CoCa decoding: %d rows over %d images", R, n_img);
    if (max_len < 1 || max_len > limit)
        return mc_fail(e, MC_E_ARG, "CoCa decoding: %d positions, the model's context holds %d", max_len, limit);
    for (int r = 0; r < R; r++)
        if (img_index[r] < 0 || img_index[r] >= n_img)
            return mc_fail(e, MC_E_ARG, "CoCa decoding: row %d reads image %d of %d", r, img_index[r], n_img);
    s->m = m;
    s->R = R;
    s->max_len = max_len;
    s->n_img = n_img;
    size_t per = (size_t)R * max_len * W;
    size_t sc = mc_transformer_stack_scratch(t->blocks, t->layers, R, 1);
    size_t sd = mc_transformer_stack_scratch(d->self_blocks, d->layers, R, 1);
    size_t sx = mc_transformer_stack_scratch(d->cross_blocks, d->layers, R, 1);
    size_t kvs = (size_t)n_img * Ti * W; /* cross_kv scratch: ln_1_kv rows */
    sc = sc > sd ? sc : sd;
    sc = sc > sx ? sc : sx;
    sc = sc > kvs ? sc : kvs;
    s->img_index = malloc(sizeof(int) * (size_t)R);
    s->text_k = malloc(sizeof(float) * per * 2 * (size_t)t->layers);
    s->dec_k = malloc(sizeof(float) * per * 2 * (size_t)d->layers);
    s->cross_kv = malloc(sizeof(float) * (size_t)d->layers * n_img * Ti * 2 * W);
    s->x = malloc(sizeof(float) * ((size_t)R * W + sc + per));
    if (!s->img_index || !s->text_k || !s->dec_k || !s->cross_kv || !s->x) {
        mc_coca_state_free(s);
        return mc_fail(e, MC_E_NOMEM, "CoCa decoding: out of memory for %d rows of %d positions", R, max_len);
    }
    memcpy(s->img_index, img_index, sizeof(int) * (size_t)R);
    s->text_v = s->text_k + per * t->layers;
    s->dec_v = s->dec_k + per * d->layers;
    s->scratch = s->x + (size_t)R * W;
    s->tmp = s->scratch + sc;
    for (int l = 0; l < d->layers; l++)
        mc_transformer_cross_kv(&d->cross_blocks[l], img_tok, n_img * Ti, s->cross_kv + (size_t)l * n_img * Ti * 2 * W,
                                s->scratch);
    return 0;
}

int mc_coca_state_step(mc_coca_state *s, const int32_t *tok, float *logits, mc_err *e) {
    const mc_coca *m = s->m;
    const mc_oc_text *t = m->clip.text;
    const mc_coca_decoder *d = &m->dec;
    int R = s->R, W = d->width, p = s->pos, Ti = m->n_img_tok;
    if (p >= s->max_len) return mc_fail(e, MC_E_ARG, "CoCa decoding: position %d past the state's %d", p, s->max_len);
    for (int r = 0; r < R; r++)
        if (tok[r] < 0 || tok[r] >= t->vocab)
            return mc_fail(e, MC_E_ARG, "CoCa decoding: token id %d of row %d is outside [0, %d)", (int)tok[r], r,
                           t->vocab);
    size_t per = (size_t)R * s->max_len * W;
    for (int r = 0; r < R; r++) {
        const float *te = t->tok_emb + (size_t)tok[r] * W, *pe = t->pos_emb + (size_t)p * W;
        for (int c = 0; c < W; c++) s->x[(size_t)r * W + c] = te[c] + pe[c];
    }
    int rc = 0;
    for (int l = 0; !rc && l < t->layers; l++)
        rc = mc_transformer_layer_step(&t->blocks[l], s->x, R, p, s->text_k + per * l, s->text_v + per * l,
                                       s->max_len, s->scratch);
    for (int l = 0; !rc && l < d->layers; l++) {
        rc = mc_transformer_layer_step(&d->self_blocks[l], s->x, R, p, s->dec_k + per * l, s->dec_v + per * l,
                                       s->max_len, s->scratch);
        if (!rc)
            rc = mc_transformer_cross_forward(&d->cross_blocks[l], s->x, R, 1,
                                              s->cross_kv + (size_t)l * s->n_img * Ti * 2 * W, Ti, s->img_index,
                                              s->scratch);
    }
    if (rc) return mc_fail(e, rc, "CoCa decoding: out of memory in attention");
    mc_layernorm_forward(s->scratch, s->x, d->ln_w, d->ln_b, R, W, 1e-5f);
    mc_matmul_forward(logits, s->scratch, d->proj, R, W, d->vocab);
    s->pos++;
    return 0;
}

/* cache [R][max_len][W] rows gathered by src over positions < pos, through tmp. */
static void gather(float *cache, float *tmp, const int *src, int R, int max_len, int W, int pos) {
    size_t row = (size_t)max_len * W, used = (size_t)pos * W;
    for (int r = 0; r < R; r++) memcpy(tmp + r * row, cache + (size_t)src[r] * row, sizeof(float) * used);
    for (int r = 0; r < R; r++) memcpy(cache + r * row, tmp + r * row, sizeof(float) * used);
}

int mc_coca_state_reorder(mc_coca_state *s, const int *src, mc_err *e) {
    int R = s->R, W = s->m->dec.width;
    for (int r = 0; r < R; r++)
        if (src[r] < 0 || src[r] >= R) return mc_fail(e, MC_E_ARG, "CoCa decoding: reorder source %d of %d", src[r], R);
    size_t per = (size_t)R * s->max_len * W;
    int Lt = s->m->clip.text->layers, Ld = s->m->dec.layers;
    for (int l = 0; l < Lt; l++) {
        gather(s->text_k + per * l, s->tmp, src, R, s->max_len, W, s->pos);
        gather(s->text_v + per * l, s->tmp, src, R, s->max_len, W, s->pos);
    }
    for (int l = 0; l < Ld; l++) {
        gather(s->dec_k + per * l, s->tmp, src, R, s->max_len, W, s->pos);
        gather(s->dec_v + per * l, s->tmp, src, R, s->max_len, W, s->pos);
    }
    int *idx = (int *)s->tmp;
    for (int r = 0; r < R; r++) idx[r] = s->img_index[src[r]];
    memcpy(s->img_index, idx, sizeof(int) * (size_t)R);
    return 0;
}

/* the layers' [R][max_len][W] blocks of cache, rows kept, re-laid at the new R (each move goes
 * to an offset no later than its source, and moves run in increasing order: none overwrites a
 * source still to be read) */
static void keep_rows(float *cache, int layers, const int *rows, int n, int R, int max_len, int W, int pos) {
    size_t row = (size_t)max_len * W, used = (size_t)pos * W;
    for (int l = 0; l < layers; l++)
        for (int i = 0; i < n; i++)
            memmove(cache + ((size_t)l * n + i) * row, cache + ((size_t)l * R + rows[i]) * row, sizeof(float) * used);
}

int mc_coca_state_keep(mc_coca_state *s, const int *rows, int n, mc_err *e) {
    int R = s->R, W = s->m->dec.width;
    if (n < 1 || n > R) return mc_fail(e, MC_E_ARG, "CoCa decoding: keeping %d of %d rows", n, R);
    for (int i = 0; i < n; i++)
        if (rows[i] < 0 || rows[i] >= R || (i && rows[i] <= rows[i - 1]))
            return mc_fail(e, MC_E_ARG, "CoCa decoding: kept row %d is not ascending in [0, %d)", rows[i], R);
    int Lt = s->m->clip.text->layers, Ld = s->m->dec.layers;
    keep_rows(s->text_k, Lt, rows, n, R, s->max_len, W, s->pos);
    keep_rows(s->text_v, Lt, rows, n, R, s->max_len, W, s->pos);
    keep_rows(s->dec_k, Ld, rows, n, R, s->max_len, W, s->pos);
    keep_rows(s->dec_v, Ld, rows, n, R, s->max_len, W, s->pos);
    for (int i = 0; i < n; i++) s->img_index[i] = s->img_index[rows[i]];
    s->R = n;
    return 0;
}

int mc_coca_logits(const mc_coca *m, const float *img_tok, int n_img, const int *img_index, const int32_t *tokens,
                   int N, int L, float *logits, mc_err *e) {
    mc_coca_state s;
    int r = mc_coca_state_init(&s, m, img_tok, n_img, img_index, N, L, e);
    if (r) return r;
    int32_t *col = calloc((size_t)N, sizeof(int32_t));
    float *lg = malloc(sizeof(float) * (size_t)N * m->dec.vocab);
    if (!col || !lg) r = mc_fail(e, MC_E_NOMEM, "CoCa: out of memory for logits");
    size_t V = (size_t)m->dec.vocab;
    for (int p = 0; !r && p < L; p++) {
        for (int n = 0; n < N; n++) col[n] = tokens[(size_t)n * L + p];
        if (!(r = mc_coca_state_step(&s, col, lg, e)))
            for (int n = 0; n < N; n++) memcpy(logits + ((size_t)n * L + p) * V, lg + n * V, sizeof(float) * V);
    }
    free(col);
    free(lg);
    mc_coca_state_free(&s);
    return r;
}

/* -log softmax(row)[target], in double */
static double nll(const float *row, int n, int target) {
    double m = row[0], s = 0;
    for (int i = 1; i < n; i++) m = row[i] > m ? row[i] : m;
    for (int i = 0; i < n; i++) s += exp((double)row[i] - m);
    return log(s) + m - (double)row[target];
}

int mc_coca_loss(const mc_coca *m, const float *images, const int32_t *tokens, int N, double clip_weight,
                 double caption_weight, double *clip_loss, double *caption_loss, mc_err *e) {
    int D = m->embed_dim, L = m->clip.text->context, V = m->dec.vocab, Ti = m->n_img_tok;
    if (N < 1 || L < 2) return mc_fail(e, MC_E_ARG, "CoCa loss: %d pairs of %d tokens", N, L);
    float *fi = malloc(sizeof(float) * ((size_t)2 * N * D + (size_t)N * Ti * D + (size_t)N * (L - 1) * V + (size_t)N * N));
    int32_t *in = malloc(sizeof(int32_t) * (size_t)N * (L - 1));
    int *idx = malloc(sizeof(int) * (size_t)N);
    if (!fi || !in || !idx) {
        free(fi), free(in), free(idx);
        return mc_fail(e, MC_E_NOMEM, "CoCa loss: out of memory for %d pairs", N);
    }
    float *ft = fi + (size_t)N * D, *tok = ft + (size_t)N * D, *lg = tok + (size_t)N * Ti * D, *sim = lg + (size_t)N * (L - 1) * V;
    for (int n = 0; n < N; n++) {
        idx[n] = n;
        memcpy(in + (size_t)n * (L - 1), tokens + (size_t)n * L, sizeof(int32_t) * (size_t)(L - 1));
    }
    int r = mc_coca_encode_image(m, images, N, fi, tok, e);
    if (!r) r = mc_coca_encode_text(m, tokens, N, ft, e);
    if (!r) r = mc_coca_logits(m, tok, N, idx, in, N, L - 1, lg, e);
    if (!r) {
        /* ClipLoss: symmetric cross-entropy of exp(logit_scale) * normalised similarities */
        mc_l2_normalize_rows(fi, N, D);
        mc_l2_normalize_rows(ft, N, D);
        float scale = expf(m->clip.logit_scale_raw);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                float s = 0.f;
                for (int d = 0; d < D; d++) s += fi[(size_t)i * D + d] * ft[(size_t)j * D + d];
                sim[(size_t)i * N + j] = scale * s;
            }
        double li = 0, lt = 0;
        float *col = lg; /* reuse: a column of sim, after the caption loss below */
        double cap = 0;
        long count = 0;
        for (int n = 0; n < N; n++)
            for (int p = 0; p < L - 1; p++) {
                int label = tokens[(size_t)n * L + p + 1];
                if (label == m->clip.cfg.pad_id) continue; /* CrossEntropyLoss(ignore_index=pad_id) */
                cap += nll(lg + ((size_t)n * (L - 1) + p) * V, V, label);
                count++;
            }
        for (int i = 0; i < N; i++) {
            li += nll(sim + (size_t)i * N, N, i);
            for (int j = 0; j < N; j++) col[j] = sim[(size_t)j * N + i];
            lt += nll(col, N, i);
        }
        *clip_loss = clip_weight * (li / N + lt / N) / 2;
        *caption_loss = caption_weight * (count ? cap / (double)count : NAN);
    }
    free(fi), free(in), free(idx);
    return r;
}
