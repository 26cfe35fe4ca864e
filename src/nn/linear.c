/* Linear layers, LayerNorm and attention over token sequences [N, T, C]. */
#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "core/parallel.h"
#include "nn/gemm.h"
#include "nn/isa.h"
#include "nn/kernel_attr.h"
#include "nn/ops.h"

/* out = beta * out + in @ W^T + b   (beta 0: overwrite, 1: accumulate; the bias is fused) */
static void linear(float *out, const float *in, const float *W, const float *b, int N, int in_f, int out_f, float beta) {
    mc_sgemm_bias(0, 1, N, out_f, in_f, in, in_f, W, in_f, beta, out, out_f, NULL, b);
}

void mc_linear_forward(float *out, const float *in, const float *W, const float *b, int N, int in_f, int out_f) {
    linear(out, in, W, b, N, in_f, out_f, 0.f);
}

void mc_linear_accumulate(float *out, const float *in, const float *W, const float *b, int N, int in_f, int out_f) {
    linear(out, in, W, b, N, in_f, out_f, 1.f);
}

void mc_linear_gelu_forward(float *out, const float *in, const float *W, const float *b, int N, int in_f, int out_f) {
    mc_gemm_epilogue ep = {1, NULL, NULL, 0};
    mc_sgemm_ep(0, 1, N, out_f, in_f, in, in_f, W, in_f, 0.f, out, out_f, NULL, b, &ep);
}

void mc_matmul_forward(float *out, const float *in, const float *P, int N, int in_f, int out_f) {
    mc_sgemm(0, 0, N, out_f, in_f, 1.f, in, in_f, P, out_f, 0.f, out, out_f);
}

typedef struct ln_job {
    float *y;
    const float *x, *w, *b;
    int C;
    float eps;
} ln_job;

static void ln_rows(void *arg, int n0, int n1) {
    const ln_job *j = arg;
    const float *w = j->w, *b = j->b;
    int C = j->C;
    float eps = j->eps;
    for (int n = n0; n < n1; n++) {
        const float *v = j->x + (size_t)n * C;
        float *o = j->y + (size_t)n * C;
        double mean = 0, var = 0;
        for (int c = 0; c < C; c++) mean += v[c];
        mean /= C;
        for (int c = 0; c < C; c++) var += (v[c] - mean) * (v[c] - mean);
        var /= C;
        float inv = (float)(1.0 / sqrt(var + eps)), m = (float)mean;
        for (int c = 0; c < C; c++) o[c] = (v[c] - m) * inv * w[c] + b[c];
    }
}

void mc_layernorm_forward(float *y, const float *x, const float *w, const float *b, int N, int C, float eps) {
    ln_job j = {y, x, w, b, C, eps};
    mc_parallel_for(N, mc_parallel_grain(N, 2), ln_rows, &j);
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

typedef struct attn_job {
    float *out;
    const float *qkv;
    int T, H, D, causal, failed;
    float scale;
} attn_job;

/* (sequence, head) pairs [t0, t1), with buffers of their own (3*T*D + 4*T floats). */
static void attn_task(void *arg, int t0, int t1) {
    attn_job *j = arg;
    int T = j->T, H = j->H, D = j->D, C = H * D;
    float *q = malloc(sizeof(float) * ((size_t)3 * T * D + (size_t)4 * T));
    if (!q) {
        __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    float *kT = q + (size_t)T * D, *v = kT + (size_t)T * D, *sc = v + (size_t)T * D;
    for (int t = t0; t < t1; t++) {
        int n = t / H, h = t % H;
        const float *base = j->qkv + (size_t)n * T * 3 * C + (size_t)h * D;
        for (int i = 0; i < T; i++) {
            const float *row = base + (size_t)i * 3 * C;
            for (int d = 0; d < D; d++) {
                q[(size_t)i * D + d] = row[d] * j->scale;
                kT[(size_t)d * T + i] = row[C + d];
                v[(size_t)i * D + d] = row[2 * C + d];
            }
        }
        attend_head(j->out + (size_t)n * T * C + (size_t)h * D, C, q, kT, v, sc, T, D, j->causal);
    }
    free(q);
}

int mc_attention_forward(float *out, const float *qkv, int N, int T, int H, int D, float scale, int causal) {
    attn_job j = {out, qkv, T, H, D, causal, 0, scale};
    /* q k^T and p v: 2 T^2 D per head, about half of it when causal */
    mc_macs_add((uint64_t)N * H * D * 2 * (causal ? (uint64_t)T * (T + 1) / 2 : (uint64_t)T * T));
    mc_parallel_for(N * H, 1, attn_task, &j);
    return j.failed ? MC_E_NOMEM : 0;
}
