/* Linear layers, LayerNorm and attention over token sequences [N, T, C]. */
#include <math.h>
#include <stdlib.h>

#include "nn/gemm.h"
#include "nn/ops.h"

void mc_linear_forward(float *out, const float *in, const float *W, const float *b, int N, int in_f, int out_f) {
    mc_sgemm(0, 1, N, out_f, in_f, 1.f, in, in_f, W, in_f, 0.f, out, out_f);
    if (b)
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++)
            for (int j = 0; j < out_f; j++) out[(size_t)n * out_f + j] += b[j];
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

void mc_attention_forward(float *out, const float *qkv, int N, int T, int H, int D, float scale, int causal) {
    int C = H * D;
#pragma omp parallel
    {
        float *q = malloc(sizeof(float) * ((size_t)T * D * 3 + (size_t)T * T));
        float *k = q + (size_t)T * D, *v = k + (size_t)T * D, *att = v + (size_t)T * D;
#pragma omp for collapse(2) schedule(static)
        for (int n = 0; n < N; n++)
            for (int h = 0; h < H; h++) {
                const float *base = qkv + (size_t)n * T * 3 * C;
                for (int t = 0; t < T; t++)
                    for (int d = 0; d < D; d++) {
                        const float *row = base + (size_t)t * 3 * C + h * D + d;
                        q[t * D + d] = row[0] * scale;
                        k[t * D + d] = row[C];
                        v[t * D + d] = row[2 * C];
                    }
                /* att[T,T] = q k^T */
                for (int i = 0; i < T; i++)
                    for (int j = 0; j < T; j++) {
                        float s = 0.f;
                        for (int d = 0; d < D; d++) s += q[i * D + d] * k[j * D + d];
                        att[i * T + j] = (causal && j > i) ? -INFINITY : s;
                    }
                mc_softmax_rows(att, T, T);
                for (int i = 0; i < T; i++) {
                    float *o = out + ((size_t)n * T + i) * C + h * D;
                    for (int d = 0; d < D; d++) o[d] = 0.f;
                    for (int j = 0; j < T; j++) {
                        float a = att[i * T + j];
                        for (int d = 0; d < D; d++) o[d] += a * v[j * D + d];
                    }
                }
            }
        free(q);
    }
}
