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
 * the arithmetic when the cores are shared); the head itself in attend.inc, built for the
 * baseline and, on x86-64, for AVX2 + FMA (this file is compiled for the baseline: the head
 * at SSE2 width was ~7% of a caption). Causal rows only visit j <= i (the masked scores
 * would be exp(-inf) = 0). */
#include "nn/simd_expf.h" /* the vector expf */
typedef float av8 __attribute__((vector_size(32), aligned(4), may_alias));
#define ATT_NAME attend_head_base
#include "nn/attend.inc"
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define ATT_NAME attend_head_avx2
#include "nn/attend.inc"
#pragma GCC pop_options
#define ATT_AVX2 1
#endif

static void attend_head(float *out, int ldo, const float *q, const float *kT, int ldk, const float *v, float *sc,
                        int T, int D, int causal) {
#ifdef ATT_AVX2
    if (mc_kernels_get()->isa >= MC_ISA_AVX2) {
        attend_head_avx2(out, ldo, q, kT, ldk, v, sc, T, D, causal);
        return;
    }
#endif
    attend_head_base(out, ldo, q, kT, ldk, v, sc, T, D, causal);
}

typedef struct attn_job {
    float *out;
    const float *qkv;
    int T, H, D, causal, failed;
    float scale;
} attn_job;

/* (sequence, head) pairs [t0, t1), with buffers of their own (2*T*D + (D + 4)*ldk floats). */
static void attn_task(void *arg, int t0, int t1) {
    attn_job *j = arg;
    int T = j->T, H = j->H, D = j->D, C = H * D, ldk = (T + 7) / 8 * 8;
    float *q = malloc(sizeof(float) * ((size_t)2 * T * D + (size_t)D * ldk + (size_t)4 * ldk));
    if (!q) {
        __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    float *kT = q + (size_t)T * D, *v = kT + (size_t)D * ldk, *sc = v + (size_t)T * D;
    for (int d = 0; d < D; d++) /* the padding columns read by the last score vector */
        for (int i = T; i < ldk; i++) kT[(size_t)d * ldk + i] = 0.f;
    for (int t = t0; t < t1; t++) {
        int n = t / H, h = t % H;
        const float *base = j->qkv + (size_t)n * T * 3 * C + (size_t)h * D;
        for (int i = 0; i < T; i++) {
            const float *row = base + (size_t)i * 3 * C;
            for (int d = 0; d < D; d++) {
                q[(size_t)i * D + d] = row[d] * j->scale;
                kT[(size_t)d * ldk + i] = row[C + d];
                v[(size_t)i * D + d] = row[2 * C + d];
            }
        }
        attend_head(j->out + (size_t)n * T * C + (size_t)h * D, C, q, kT, ldk, v, sc, T, D, j->causal);
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
