/* Packed, cache-blocked SGEMM with a 6x16 register-tiled micro-kernel written with GCC
 * vector extensions (compiles to AVX2/FMA with -march=native, SSE otherwise).
 *
 * Blocking: K in KC chunks (packed B panel stays in L2), N in NC chunks, M split across
 * threads in MR-row strips. A is packed per (strip, KC) into MR x KC column-major tiles.
 * One parallel region per call: threads share the packing of each B block, then take
 * strips. With beta = 0 the first K block stores into C instead of accumulating.
 */
#include "nn/gemm.h"
#include "nn/kernel_attr.h"

#include <stdlib.h>
#include <string.h>

#include <omp.h>

#define MR 6
#define NR 16
#define KC 256
#define NC 1024

/* may_alias: loaded straight from float arrays; aligned(4): unaligned loads are fine.
 * (memcpy into a vector made GCC split the load into two 16-byte halves through the
 * stack, a store-forwarding stall that cost 5x.) */
typedef float v8 __attribute__((vector_size(32), aligned(4), may_alias));


/* Packs B[k0:k0+kc, j0:j0+nc] into NR-wide panels: panel p holds [kc][NR], zero padded.
 * Threads split the panels (called inside the parallel region). */
static void pack_b(int tb, const float *B, int ldb, int k0, int kc, int j0, int nc, float *dst) {
    int panels = (nc + NR - 1) / NR;
#pragma omp for schedule(static)
    for (int pi = 0; pi < panels; pi++) {
        int p = pi * NR, w = nc - p < NR ? nc - p : NR;
        float *d = dst + (size_t)p * kc;
        if (!tb && w == NR) {
            const float *src = B + (size_t)k0 * ldb + j0 + p;
            for (int k = 0; k < kc; k++, src += ldb) {
                *(v8 *)(d + k * NR) = *(const v8 *)src;
                *(v8 *)(d + k * NR + 8) = *(const v8 *)(src + 8);
            }
        } else if (!tb) {
            for (int k = 0; k < kc; k++) {
                const float *src = B + (size_t)(k0 + k) * ldb + j0 + p;
                int j = 0;
                for (; j < w; j++) d[k * NR + j] = src[j];
                for (; j < NR; j++) d[k * NR + j] = 0.f;
            }
        } else {
            /* B stored [N, K]: column j of op(B) is contiguous */
            for (int j = 0; j < NR; j++) {
                if (j < w) {
                    const float *src = B + (size_t)(j0 + p + j) * ldb + k0;
                    for (int k = 0; k < kc; k++) d[k * NR + j] = src[k];
                } else {
                    for (int k = 0; k < kc; k++) d[k * NR + j] = 0.f;
                }
            }
        }
    }
}

/* Packs A[i0:i0+mr, k0:k0+kc] as [kc][MR], zero padded rows. */
static void pack_a(int ta, const float *A, int lda, int i0, int mr, int k0, int kc, float *dst) {
    if (!ta && mr == MR) { /* common case: six row streams, contiguous writes */
        const float *r0 = A + (size_t)i0 * lda + k0, *r1 = r0 + lda, *r2 = r1 + lda, *r3 = r2 + lda, *r4 = r3 + lda,
                    *r5 = r4 + lda;
        for (int k = 0; k < kc; k++, dst += MR) {
            dst[0] = r0[k]; dst[1] = r1[k]; dst[2] = r2[k];
            dst[3] = r3[k]; dst[4] = r4[k]; dst[5] = r5[k];
        }
        return;
    }
    for (int i = 0; i < MR; i++) {
        if (i >= mr) {
            for (int k = 0; k < kc; k++) dst[k * MR + i] = 0.f;
        } else if (!ta) {
            const float *src = A + (size_t)(i0 + i) * lda + k0;
            for (int k = 0; k < kc; k++) dst[k * MR + i] = src[k];
        } else {
            const float *src = A + (size_t)k0 * lda + i0 + i;
            for (int k = 0; k < kc; k++) dst[k * MR + i] = src[(size_t)k * lda];
        }
    }
}

/* acc[MR][NR] = packed A tile (kc x MR) times packed B panel (kc x NR). */
MC_HOT_KERNEL static void micro_kernel(int kc, const float *restrict a, const float *restrict b, float *restrict acc) {
    v8 c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0};
    v8 c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0};
    for (int k = 0; k < kc; k++) {
        v8 b0 = *(const v8 *)(b + k * NR), b1 = *(const v8 *)(b + k * NR + 8);
        const float *ak = a + k * MR;
        c00 += ak[0] * b0; c01 += ak[0] * b1;
        c10 += ak[1] * b0; c11 += ak[1] * b1;
        c20 += ak[2] * b0; c21 += ak[2] * b1;
        c30 += ak[3] * b0; c31 += ak[3] * b1;
        c40 += ak[4] * b0; c41 += ak[4] * b1;
        c50 += ak[5] * b0; c51 += ak[5] * b1;
    }
    v8 *o = (v8 *)acc;
    o[0] = c00; o[1] = c01; o[2] = c10; o[3] = c11; o[4] = c20; o[5] = c21;
    o[6] = c30; o[7] = c31; o[8] = c40; o[9] = c41; o[10] = c50; o[11] = c51;
}

static void scale_c(int M, int N, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.f) memset(c, 0, (size_t)N * sizeof(float));
        else if (beta != 1.f) for (int j = 0; j < N; j++) c[j] *= beta;
    }
}

/* C tile (mr x w at c, row stride ldc) = (first ? 0 : C) + alpha * acc */
static void store_tile(float *c, int ldc, const float *acc, int mr, int w, float alpha, int first) {
    if (w == NR) {
        v8 va = (v8){0} + alpha;
        for (int i = 0; i < mr; i++, c += ldc) {
            v8 r0 = va * *(const v8 *)(acc + i * NR), r1 = va * *(const v8 *)(acc + i * NR + 8);
            if (first) {
                *(v8 *)c = r0;
                *(v8 *)(c + 8) = r1;
            } else {
                *(v8 *)c += r0;
                *(v8 *)(c + 8) += r1;
            }
        }
        return;
    }
    for (int i = 0; i < mr; i++, c += ldc)
        for (int j = 0; j < w; j++) c[j] = (first ? 0.f : c[j]) + alpha * acc[i * NR + j];
}

/* Few rows (decoding steps: one token per sequence): the packed path copies all of B for them
 * (as costly as the product when M <= 8) and gives each thread MR rows, so one or two threads
 * work. Here each thread takes a block of columns and reads its part of B once; every element's
 * sum is in k order. */
#define SMALL_NB 64
static void gemm_small_m(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                         const float *B, int ldb, int overwrite, float *C, int ldc) {
    int blocks = (N + SMALL_NB - 1) / SMALL_NB;
#pragma omp parallel for schedule(static)
    for (int bl = 0; bl < blocks; bl++) {
        int j0 = bl * SMALL_NB, nj = N - j0 < SMALL_NB ? N - j0 : SMALL_NB;
        float acc[SMALL_NB];
        for (int i = 0; i < M; i++) {
            if (trans_b) {
                for (int j = 0; j < nj; j++) {
                    const float *bj = B + (size_t)(j0 + j) * ldb;
                    float s = 0.f;
                    if (!trans_a) {
                        const float *ai = A + (size_t)i * lda;
#pragma omp simd reduction(+ : s)
                        for (int k = 0; k < K; k++) s += ai[k] * bj[k];
                    } else {
                        for (int k = 0; k < K; k++) s += A[(size_t)k * lda + i] * bj[k];
                    }
                    acc[j] = s;
                }
            } else {
                for (int j = 0; j < nj; j++) acc[j] = 0.f;
                for (int k = 0; k < K; k++) {
                    float a = trans_a ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                    const float *bk = B + (size_t)k * ldb + j0;
#pragma omp simd
                    for (int j = 0; j < nj; j++) acc[j] += a * bk[j];
                }
            }
            float *c = C + (size_t)i * ldc + j0;
            for (int j = 0; j < nj; j++) c[j] = (overwrite ? 0.f : c[j]) + alpha * acc[j];
        }
    }
}

void mc_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.f) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    /* beta = 0: the first K block overwrites C (no separate clearing pass) */
    int overwrite = beta == 0.f;
    if (!overwrite && beta != 1.f) scale_c(M, N, beta, C, ldc);
    if ((M <= 8 || (M + MR - 1) / MR < omp_get_max_threads()) && N >= 2 * SMALL_NB) {
        gemm_small_m(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, overwrite, C, ldc);
        return;
    }
    int ncap = N < NC ? N : NC;
    int npad = (ncap + NR - 1) / NR * NR;
    float *bpack = aligned_alloc(64, (size_t)KC * npad * sizeof(float));
    if (!bpack) { /* out of memory: plain loops, same result up to rounding */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float acc = 0.f;
                for (int k = 0; k < K; k++)
                    acc += (trans_a ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) *
                           (trans_b ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
                float *c = C + (size_t)i * ldc + j;
                *c = (overwrite ? 0.f : *c) + alpha * acc;
            }
        return;
    }
    int strips = (M + MR - 1) / MR;
#pragma omp parallel
    {
        float apack[KC * MR] __attribute__((aligned(64)));
        float acc[MR * NR] __attribute__((aligned(64)));
        for (int j0 = 0; j0 < N; j0 += NC) {
            int nc = N - j0 < NC ? N - j0 : NC;
            for (int k0 = 0; k0 < K; k0 += KC) {
                int kc = K - k0 < KC ? K - k0 : KC, first = overwrite && k0 == 0;
                pack_b(trans_b, B, ldb, k0, kc, j0, nc, bpack); /* ends with a barrier */
#pragma omp for schedule(static)
                for (int s = 0; s < strips; s++) {
                    int i0 = s * MR, mr = M - i0 < MR ? M - i0 : MR;
                    pack_a(trans_a, A, lda, i0, mr, k0, kc, apack);
                    for (int p = 0; p < nc; p += NR) {
                        int w = nc - p < NR ? nc - p : NR;
                        micro_kernel(kc, apack, bpack + (size_t)p * kc, acc);
                        store_tile(C + (size_t)i0 * ldc + j0 + p, ldc, acc, mr, w, alpha, first);
                    }
                }
                /* implicit barrier: bpack is reused by the next pack_b */
            }
        }
    }
    free(bpack);
}
