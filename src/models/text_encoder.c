/* MobileCLIP text encoder (Base and MCt); see text_encoder.h. */
#include "models/text_encoder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ops.h"

#define PREFIX "text_encoder."
#define MAX_BLOCKS 4096

static const char *src_name(const mc_tensor_map *w) { return w->source ? w->source : "checkpoint"; }

/* Shape of a required tensor, or a clear error. */
static const mc_tensor *need(const mc_tensor_map *w, const char *name, int ndim, mc_err *e) {
    const mc_tensor *t = mc_tensor_map_find(w, name);
    if (!t) {
        mc_fail(e, MC_E_MODEL, "%s: missing tensor '%s'", src_name(w), name);
        return NULL;
    }
    if (t->ndim != ndim) {
        char s[128];
        mc_fail(e, MC_E_MODEL, "%s: tensor '%s' has shape %s, expected %d dimensions", src_name(w), name,
                mc_shape_str(t->shape, t->ndim, s, sizeof s), ndim);
        return NULL;
    }
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] < 1 || t->shape[i] > (1 << 24)) {
            char s[128];
            mc_fail(e, MC_E_MODEL, "%s: tensor '%s' has implausible shape %s", src_name(w), name,
                    mc_shape_str(t->shape, t->ndim, s, sizeof s));
            return NULL;
        }
    return t;
}

void mc_text_encoder_free(mc_text_encoder *m) {
    if (!m) return;
    if (m->blocks)
        for (int i = 0; i < m->n_blocks; i++)
            if (m->blocks[i].is_repmixer) mc_text_repmixer_free(&m->blocks[i].rm);
    free(m->blocks);
    free(m);
}

/* The configuration a checkpoint implies (no configuration given): widths from the tensor
 * shapes, the layer kinds from the names, heads = C / 64; the FFN widths and RepMixer kernel
 * are left 0 (read by the binders). */
static int infer_config(const mc_tensor_map *w, int causal, mc_text_config *c, int *proj, mc_err *e) {
    memset(c, 0, sizeof *c);
    const mc_tensor *t;
    if (!(t = need(w, PREFIX "embedding_layer.weight", 2, e))) return e ? e->code : MC_E_MODEL;
    c->vocab_size = (int)t->shape[0];
    int C = c->dim = (int)t->shape[1];
    if (!(t = need(w, PREFIX "positional_embedding.pos_embed.pos_embed", 4, e))) return e ? e->code : MC_E_MODEL;
    c->context_length = (int)t->shape[2];
    if (!(t = need(w, PREFIX "projection_layer", 2, e))) return e ? e->code : MC_E_MODEL;
    *proj = (int)t->shape[1];
    c->causal = causal ? 1 : 0;
    if (C / 64 < 1 || C % 64)
        return mc_fail(e, MC_E_MODEL, "%s: text width %d is not a multiple of the 64-wide heads", src_name(w), C);
    /* count the elements of text_encoder.transformer and find the RepMixer blocks */
    char prefix[128];
    int n = 0, n_rep = 0, first = 0, last = 0;
    for (;; n++) {
        snprintf(prefix, sizeof prefix, PREFIX "transformer.%d.", n);
        if (!mc_tensor_map_has_prefix(w, prefix)) break;
        if (n == MAX_BLOCKS) return mc_fail(e, MC_E_MODEL, "%s: more than %d text layers", src_name(w), MAX_BLOCKS);
        snprintf(prefix, sizeof prefix, PREFIX "transformer.%d.token_mixer.", n);
        int rep = mc_tensor_map_has_prefix(w, prefix);
        n_rep += rep;
        if (n == 0) first = rep;
        last = rep;
    }
    if (n == 0) return mc_fail(e, MC_E_MODEL, "%s: no tensors under '" PREFIX "transformer.0.'", src_name(w));
    /* MCt puts its two RepMixer blocks first and last; anything else is not a known model */
    if (n_rep == 2 && n >= 2 && first && last) c->mct = 1;
    else if (n_rep)
        return mc_fail(e, MC_E_MODEL, "%s: unrecognised text encoder layout (%d RepMixer blocks among %d layers)",
                       src_name(w), n_rep, n);
    c->n_layers = n - 2 * c->mct;
    if (c->n_layers > MC_TEXT_MAX_LAYERS)
        return mc_fail(e, MC_E_MODEL, "%s: %d text transformer layers (at most %d)", src_name(w), c->n_layers,
                       MC_TEXT_MAX_LAYERS);
    for (int i = 0; i < c->n_layers; i++) c->heads[i] = C / 64;
    return 0;
}

static int init(mc_text_encoder *m, mc_tensor_map *w, const mc_text_config *c, int proj, mc_err *e) {
    int C = m->dim = c->dim;
    m->vocab = c->vocab_size;
    m->context = c->context_length;
    m->proj_dim = proj;
    m->causal = c->causal ? 1 : 0;
    m->heads = c->n_layers > 0 ? c->heads[0] : C / 64;
    if (C < 1 || m->vocab < 1 || m->context < 1 || proj < 1 || c->n_layers < 0 || c->n_layers > MC_TEXT_MAX_LAYERS)
        return mc_fail(e, MC_E_MODEL, "%s: bad text encoder configuration", src_name(w));

    int r;
    const int64_t s_emb[2] = {m->vocab, C}, s_pos[4] = {1, 1, m->context, C}, s_c[1] = {C},
                  s_proj[2] = {C, m->proj_dim};
    if ((r = mc_tensor_map_f32(w, PREFIX "embedding_layer.weight", 2, s_emb, &m->tok_emb, e)) ||
        (r = mc_tensor_map_f32(w, PREFIX "positional_embedding.pos_embed.pos_embed", 4, s_pos, &m->pos_emb, e)) ||
        (r = mc_tensor_map_f32(w, PREFIX "final_layer_norm.weight", 1, s_c, &m->ln_w, e)) ||
        (r = mc_tensor_map_f32(w, PREFIX "final_layer_norm.bias", 1, s_c, &m->ln_b, e)) ||
        (r = mc_tensor_map_f32(w, PREFIX "projection_layer", 2, s_proj, &m->proj, e)))
        return r;

    int n = c->n_layers + 2 * (c->mct ? 1 : 0);
    m->variant = c->mct ? MC_TEXT_MCT : MC_TEXT_BASE;
    m->blocks = calloc((size_t)(n ? n : 1), sizeof *m->blocks);
    if (!m->blocks) return mc_fail(e, MC_E_NOMEM, "out of memory");
    m->n_blocks = n;
    for (int i = 0; i < n; i++) {
        mc_text_block *b = &m->blocks[i];
        char prefix[128];
        snprintf(prefix, sizeof prefix, PREFIX "transformer.%d.", i);
        b->is_repmixer = c->mct && (i == 0 || i == n - 1);
        int l = i - (c->mct ? 1 : 0); /* transformer layer index */
        r = b->is_repmixer ? mc_text_repmixer_bind_dims(&b->rm, w, prefix, C, c->repmixer_kernel, c->repmixer_hidden, e)
                           : mc_transformer_layer_bind_dims(&b->tf, w, prefix, C, c->heads[l], c->ffn_dims[l], e);
        if (r) return r;
    }
    const char *extra = mc_tensor_map_first_unused(w, PREFIX);
    if (extra) return mc_fail(e, MC_E_MODEL, "%s: unexpected tensor '%s' in the text encoder", src_name(w), extra);
    return 0;
}

int mc_text_encoder_init_config(mc_text_encoder **out, mc_tensor_map *w, const mc_text_config *cfg, int proj_dim,
                                mc_err *e) {
    *out = NULL;
    mc_text_encoder *m = calloc(1, sizeof *m);
    if (!m) return mc_fail(e, MC_E_NOMEM, "out of memory");
    int r = init(m, w, cfg, proj_dim, e);
    if (r) {
        mc_text_encoder_free(m);
        return r;
    }
    *out = m;
    return 0;
}

int mc_text_encoder_init(mc_text_encoder **out, mc_tensor_map *w, int causal, mc_err *e) {
    *out = NULL;
    mc_text_config c;
    int proj = 0, r = infer_config(w, causal, &c, &proj, e);
    return r ? r : mc_text_encoder_init_config(out, w, &c, proj, e);
}

int mc_text_encoder_reparameterize(mc_text_encoder *m, mc_err *e) {
    for (int i = 0; i < m->n_blocks; i++)
        if (m->blocks[i].is_repmixer && mc_text_repmixer_reparameterize(&m->blocks[i].rm))
            return mc_fail(e, MC_E_NOMEM, "out of memory reparameterizing text layer %d", i);
    m->reparameterized = 1;
    return 0;
}

int mc_text_encoder_forward(mc_text_encoder *m, const int32_t *tokens, int N, int reparameterized, float *embed,
                            const mc_trace *trace, mc_err *e) {
    if (N < 1) return mc_fail(e, MC_E_ARG, "text encoder: batch size %d", N);
    if (reparameterized && !m->reparameterized)
        return mc_fail(e, MC_E_ARG, "text encoder: reparameterized forward requested before reparameterization");
    int T = m->context, C = m->dim, P = m->proj_dim;
    for (int i = 0; i < N * T; i++)
        if (tokens[i] < 0 || tokens[i] >= m->vocab)
            return mc_fail(e, MC_E_ARG, "text encoder: token id %d at sequence %d position %d is outside [0, %d)",
                           (int)tokens[i], i / T, i % T, m->vocab);
    /* pooled position of each sequence: the first position of the largest id (EOT = 49407 is
     * the largest in the vocabulary) */
    int *pool = malloc(sizeof(int) * (size_t)N), Tr = 1; /* Tr: positions run through the layers */
    if (!pool) return mc_fail(e, MC_E_NOMEM, "text encoder: out of memory for %d sequences", N);
    for (int n = 0; n < N; n++) {
        const int32_t *tk = tokens + (size_t)n * T;
        int best = 0;
        for (int t = 1; t < T; t++)
            if (tk[t] > tk[best]) best = t;
        pool[n] = best;
        if (best + 1 > Tr) Tr = best + 1;
    }
    /* Causal early exit: with the causal mask no position attends to a later one, so the
     * positions after the last pooled one change nothing that is read; they are dropped
     * (the kept positions get the same values up to float rounding: the GEMM tile shape may
     * differ with the token count). Traces show whole sequences, so a traced run keeps them. */
    if (!m->causal || (trace && trace->fn)) Tr = T;
    size_t M = (size_t)N * Tr, scratch = 0;
    for (int i = 0; i < m->n_blocks; i++) {
        const mc_text_block *b = &m->blocks[i];
        size_t s = b->is_repmixer ? mc_text_repmixer_scratch(&b->rm, N, Tr) : mc_transformer_layer_scratch(&b->tf, N, Tr);
        if (s > scratch) scratch = s;
    }
    float *x = malloc(sizeof(float) * (M * C + scratch + (size_t)N * C));
    if (!x) {
        free(pool);
        return mc_fail(e, MC_E_NOMEM, "text encoder: out of memory for %d sequences", N);
    }
    float *work = x + M * C, *pooled = work + scratch;
    int64_t shape[3] = {N, Tr, C};

    /* token + positional embedding (embed_scale is computed by the reference but unused);
     * x [N, Tr, C] */
    for (size_t i = 0; i < M; i++) {
        size_t n = i / Tr, t = i % Tr;
        const float *te = m->tok_emb + (size_t)tokens[n * T + t] * C, *pe = m->pos_emb + t * C;
        float *xi = x + i * C;
        for (int c = 0; c < C; c++) xi[c] = te[c] + pe[c];
    }
    mc_trace_emit(trace, "token_embedding", x, 3, shape);

    /* Untraced, the last layer computes its per-token part (a transformer's output projection
     * and FFN, a RepMixer's 1x1 convs) for the pooled rows only: nothing reads the other rows
     * afterwards. */
    int traced = trace && trace->fn, last = m->n_blocks - 1, rows_only = !traced;
    for (int i = 0; i < m->n_blocks; i++) {
        const mc_text_block *b = &m->blocks[i];
        int r = 0;
        if (i == last && rows_only && b->is_repmixer)
            mc_text_repmixer_forward_rows(&b->rm, x, N, Tr, reparameterized, pool, pooled, work);
        else if (b->is_repmixer) mc_text_repmixer_forward(&b->rm, x, N, Tr, reparameterized, work);
        else if (i == last && rows_only) r = mc_transformer_layer_forward_rows(&b->tf, x, N, Tr, m->causal, pool, pooled, work);
        else r = mc_transformer_layer_forward(&b->tf, x, N, Tr, m->causal, work);
        if (r) {
            free(x);
            free(pool);
            return mc_fail(e, MC_E_NOMEM, "text encoder: out of memory in layer %d", i);
        }
        if (traced) {
            char name[32];
            snprintf(name, sizeof name, "transformer.%d", i);
            mc_trace_emit(trace, name, x, 3, shape);
        }
    }
    if (rows_only) {
        mc_layernorm_forward(pooled, pooled, m->ln_w, m->ln_b, N, C, 1e-5f);
    } else {
        mc_layernorm_forward(x, x, m->ln_w, m->ln_b, (int)M, C, 1e-5f);
        mc_trace_emit(trace, "final_layer_norm", x, 3, shape);
        for (int n = 0; n < N; n++) memcpy(pooled + (size_t)n * C, x + ((size_t)n * Tr + pool[n]) * C, sizeof(float) * C);
    }
    int64_t pshape[2] = {N, C}, eshape[2] = {N, P};
    mc_trace_emit(trace, "eot_pooled", pooled, 2, pshape);
    mc_matmul_forward(embed, pooled, m->proj, N, C, P);
    mc_trace_emit(trace, "embed", embed, 2, eshape);
    free(x);
    free(pool);
    return 0;
}
