/* Text-tower input and output layers: token + positional embedding, EOT pooling; and the
 * seeded regularisers (dropout, stochastic depth). See layers.h. */
#include <string.h>

#include "nn/layers.h"

void mc_embedding_forward(float *x, const int32_t *tokens, const float *tok_emb, const float *pos_emb, int N, int T,
                          int C) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < (size_t)N * T; i++) {
        const float *te = tok_emb + (size_t)tokens[i] * C, *pe = pos_emb + (i % T) * C;
        float *xi = x + i * C;
        for (int c = 0; c < C; c++) xi[c] = te[c] + pe[c];
    }
}

void mc_embedding_backward(float *dtok, float *dpos, const float *dx, const int32_t *tokens, int N, int T, int C) {
    /* serial over tokens for dtok (repeated ids hit the same row); each thread owns a
     * slice of channels so it is still parallel without atomics */
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        for (size_t i = 0; i < (size_t)N * T; i++) {
            float g = dx[i * C + c];
            if (dtok) dtok[(size_t)tokens[i] * C + c] += g;
            if (dpos) dpos[(i % T) * C + c] += g;
        }
    }
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
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * save_mask[i];
}

void mc_drop_path_forward(float *y, float *save_keep, const float *x, int B, size_t per, float p, mc_rng *rng) {
    float keep = p > 0.f ? 1.f / (1.f - p) : 1.f;
    for (int b = 0; b < B; b++) save_keep[b] = p > 0.f ? (mc_rng_uniform(rng) < p ? 0.f : keep) : 1.f;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < per; i++) y[(size_t)b * per + i] = x[(size_t)b * per + i] * save_keep[b];
}

void mc_drop_path_backward(float *dx, const float *dy, const float *save_keep, int B, size_t per) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < per; i++) dx[(size_t)b * per + i] = dy[(size_t)b * per + i] * save_keep[b];
}
