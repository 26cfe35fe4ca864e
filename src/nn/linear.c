/* Linear layers, LayerNorm and attention over token sequences [N, T, C]. */
#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "nn/gemm.h"
#include "nn/kernel_attr.h"
#include "nn/ops.h"

/* out = beta * out + in @ W^T + b   (beta 0: overwrite, 1: accumulate) */
static void linear(float *out, const float *in, const float *W, const float *b, int N, int in_f, int out_f, float beta) {
    mc_sgemm(0, 1, N, out_f, in_f, 1.f, in, in_f, W, in_f, beta, out, out_f);
    if (b)
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++)
            for (int j = 0; j < out_f; j++) out[(size_t)n * out_f + j] += b[j];
}

void mc_linear_forward(float *out, const float *in, const float *W, const float *b, int N, int in_f, int out_f) {
    linear(out, in, W, b, N, in_f, out_f, 0.f);
}

void mc_linear_accumulate(float *out, const float *in, const float *W, const float *b, int N, int in_f, int out_f) {
    linear(out, in, W, b, N, in_f, out_f, 1.f);
}

void mc_matmul_forward(float *out, const float *in, const float *P, int N, int in_f, int out_f) {
    mc_sgemm(0, 0, N, out_f, in_f, 1.f, in, in_f, P, out_f, 0.f, out, out_f);
}

void mc_layernorm_forward(float *y, const float *x, const float *w, const float *b, int N, int C, float eps) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *v = x + (size_t)n * C;
        float *o = y + (size_t)n * C;
        double mean = 0, var = 0;
        for (int c = 0; c < C; c++) mean += v[c];
        mean /= C;
        for (int c = 0; c < C; c++) var += (v[c] - mean) * (v[c] - mean);
        var /= C;
        float inv = (float)(1.0 / sqrt(var + eps)), m = (float)mean;
        for (int c = 0; c < C; c++) o[c] = (v[c] - m) * inv * w[c] + b[c];
    }
}

/* One (sequence, head) pair per task, spread over the threads, each computed serially in
 * cache-sized per-thread buffers (a single parallel region: many small regions cost more than
 * the arithmetic when the cores are shared). Query rows go in blocks of 4 so every k and v
 * element loaded serves 4 rows:
 *   s[r][j] = (q_r * scale) . k_j    over kT [D, T] so the inner loop runs along j (SIMD)
 *   p = softmax(s[r]);  o_r = sum_j p[j] v_j                  inner loop along d (SIMD)
 * Causal rows only visit j <= i (the masked scores would be exp(-inf) = 0). */

/* One head: q [T,D] (already scaled), kT [D,T], v [T,D] -> o rows at out + i*ldo;
 * sc is [4, T] work space. */
MC_HOT_KERNEL static void attend_head(float *out, int ldo, const float *q, const float *kT, const float *v, float *sc,
                                      int T, int D, int causal) {
    for (int i0 = 0; i0 < T; i0 += 4) {
        int rb = T - i0 < 4 ? T - i0 : 4;
        int nj = causal ? i0 + rb : T; /* columns any row of the block needs */
        float *s0 = sc, *s1 = sc + T, *s2 = sc + 2 * T, *s3 = sc + 3 * T;
        const float *q0 = q + (size_t)i0 * D;
        /* rows past rb reuse row 0's q and their results are ignored */
        const float *q1 = rb > 1 ? q0 + D : q0, *q2 = rb > 2 ? q0 + 2 * D : q0, *q3 = rb > 3 ? q0 + 3 * D : q0;
        for (int j = 0; j < nj; j++) s0[j] = s1[j] = s2[j] = s3[j] = 0.f;
        for (int d = 0; d < D; d++) {
            const float a0 = q0[d], a1 = q1[d], a2 = q2[d], a3 = q3[d], *kd = kT + (size_t)d * T;
#pragma omp simd
            for (int j = 0; j < nj; j++) {
                float k = kd[j];
                s0[j] += a0 * k;
                s1[j] += a1 * k;
                s2[j] += a2 * k;
                s3[j] += a3 * k;
            }
        }
        for (int r = 0; r < rb; r++) {
            float *sr = sc + (size_t)r * T;
            int len = causal ? i0 + r + 1 : T;
            mc_softmax_rows(sr, 1, len);
            for (int j = len; j < nj; j++) sr[j] = 0.f;
        }
        for (int r = 0; r < rb; r++) {
            float *o = out + (size_t)(i0 + r) * ldo;
            const float *sr = sc + (size_t)r * T;
            for (int d = 0; d < D; d++) o[d] = 0.f;
            for (int j = 0; j < nj; j++) {
                const float p = sr[j], *vj = v + (size_t)j * D;
#pragma omp simd
                for (int d = 0; d < D; d++) o[d] += p * vj[d];
            }
        }
    }
}

int mc_attention_forward(float *out, const float *qkv, int N, int T, int H, int D, float scale, int causal) {
    int C = H * D, failed = 0;
#pragma omp parallel
    {
        float *q = malloc(sizeof(float) * ((size_t)3 * T * D + (size_t)4 * T));
        if (!q) {
#pragma omp atomic write
            failed = 1;
        }
        float *kT = q ? q + (size_t)T * D : NULL, *v = kT ? kT + (size_t)T * D : NULL, *sc = v ? v + (size_t)T * D : NULL;
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int n = 0; n < N; n++)
            for (int h = 0; h < H; h++) {
                if (!q) continue;
                const float *base = qkv + (size_t)n * T * 3 * C + (size_t)h * D;
                for (int t = 0; t < T; t++) {
                    const float *row = base + (size_t)t * 3 * C;
                    for (int d = 0; d < D; d++) {
                        q[(size_t)t * D + d] = row[d] * scale;
                        kT[(size_t)d * T + t] = row[C + d];
                        v[(size_t)t * D + d] = row[2 * C + d];
                    }
                }
                attend_head(out + (size_t)n * T * C + (size_t)h * D, C, q, kT, v, sc, T, D, causal);
            }
        free(q);
    }
    return failed ? MC_E_NOMEM : 0;
}
