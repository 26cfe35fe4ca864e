/* Text-tower input and output layers: token + positional embedding, EOT pooling; and the
 * seeded regularisers (dropout, stochastic depth). See layers.h. */
#include <string.h>

#include "core/parallel.h"
#include "nn/layers.h"

/* Arguments of the loops below, which run on the library's pool (core/parallel.h); every item
 * writes its own outputs, so the split over threads changes nothing. */
typedef struct emb_job {
    float *out, *d2;
    const float *in, *tab, *tab2;
    const int32_t *tokens;
    int T, C;
    size_t n, per;
} emb_job;

static void embedding_rows(void *arg, size_t i0, size_t i1) {
    const emb_job *j = arg;
    int C = j->C;
    for (size_t i = i0; i < i1; i++) {
        const float *te = j->tab + (size_t)j->tokens[i] * C, *pe = j->tab2 + (i % j->T) * C;
        float *xi = j->out + i * C;
        for (int c = 0; c < C; c++) xi[c] = te[c] + pe[c];
    }
}

/* channels [c0, c1) of dtok (out) and dpos (d2), over all tokens in order */
static void embedding_grad_channels(void *arg, int c0, int c1) {
    const emb_job *j = arg;
    int C = j->C;
    for (int c = c0; c < c1; c++)
        for (size_t i = 0; i < j->n; i++) {
            float g = j->in[i * C + c];
            if (j->out) j->out[(size_t)j->tokens[i] * C + c] += g;
            if (j->d2) j->d2[(i % j->T) * C + c] += g;
        }
}

/* y = x m elementwise (m: the dropout mask, or per = the sample size and m[b] per sample) */
static void mask_span(void *arg, size_t i0, size_t i1) {
    const emb_job *j = arg;
    for (size_t i = i0; i < i1; i++) j->out[i] = j->in[i] * j->tab[i / j->per];
}

void mc_embedding_forward(float *x, const int32_t *tokens, const float *tok_emb, const float *pos_emb, int N, int T,
                          int C) {
    emb_job j = {.out = x, .tab = tok_emb, .tab2 = pos_emb, .tokens = tokens, .T = T, .C = C};
    mc_parallel_span((size_t)N * T, 64, embedding_rows, &j);
}

void mc_embedding_backward(float *dtok, float *dpos, const float *dx, const int32_t *tokens, int N, int T, int C) {
    /* serial over tokens for dtok (repeated ids hit the same row); each task owns a
     * slice of channels so it is still parallel without atomics */
    emb_job j = {.out = dtok, .d2 = dpos, .in = dx, .tokens = tokens, .T = T, .C = C, .n = (size_t)N * T};
    mc_parallel_for(C, mc_parallel_grain(C, 4), embedding_grad_channels, &j);
}

void mc_eot_pool_forward(float *out, int32_t *save_idx, const float *x, const int32_t *tokens, int N, int T, int C) {
    for (int n = 0; n < N; n++) {
        const int32_t *tk = tokens + (size_t)n * T;
        int best = 0;
        for (int t = 1; t < T; t++)
            if (tk[t] > tk[best]) best = t;
        save_idx[n] = best;
        memcpy(out + (size_t)n * C, x + ((size_t)n * T + best) * C, sizeof(float) * C);
    }
}

void mc_eot_pool_backward(float *dx, const float *dout, const int32_t *save_idx, int N, int T, int C) {
    memset(dx, 0, sizeof(float) * (size_t)N * T * C);
    for (int n = 0; n < N; n++)
        memcpy(dx + ((size_t)n * T + save_idx[n]) * C, dout + (size_t)n * C, sizeof(float) * C);
}

/* ---------------------------------------------------------------- regularisation */

void mc_dropout_forward(float *y, float *save_mask, const float *x, size_t n, float p, mc_rng *rng) {
    float keep = p > 0.f ? 1.f / (1.f - p) : 1.f;
    /* serial: the mask depends only on the seed, not on the thread count */
    for (size_t i = 0; i < n; i++) {
        float m = p > 0.f ? (mc_rng_uniform(rng) < p ? 0.f : keep) : 1.f;
        save_mask[i] = m;
        y[i] = x[i] * m;
    }
}

void mc_dropout_backward(float *dx, const float *dy, const float *save_mask, size_t n) {
    emb_job j = {.out = dx, .in = dy, .tab = save_mask, .per = 1};
    mc_parallel_span(n, 16384, mask_span, &j);
}

void mc_drop_path_forward(float *y, float *save_keep, const float *x, int B, size_t per, float p, mc_rng *rng) {
    float keep = p > 0.f ? 1.f / (1.f - p) : 1.f;
    for (int b = 0; b < B; b++) save_keep[b] = p > 0.f ? (mc_rng_uniform(rng) < p ? 0.f : keep) : 1.f;
    emb_job j = {.out = y, .in = x, .tab = save_keep, .per = per};
    mc_parallel_span((size_t)B * per, 16384, mask_span, &j);
}

void mc_drop_path_backward(float *dx, const float *dy, const float *save_keep, int B, size_t per) {
    emb_job j = {.out = dx, .in = dy, .tab = save_keep, .per = per};
    mc_parallel_span((size_t)B * per, 16384, mask_span, &j);
}
