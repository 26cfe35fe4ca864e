/* Packed, cache-blocked SGEMM with a 6x16 register-tiled micro-kernel written with GCC
 * vector extensions (compiles to AVX2/FMA with -march=native, SSE otherwise).
 *
 * Blocking: K in KC chunks (packed B panel stays in L2), N in NC chunks, M split across
 * threads in MR-row strips. A is packed per (strip, KC) into MR x KC column-major tiles.
 */
#include "nn/gemm.h"

#include <stdlib.h>
#include <string.h>

#include <omp.h>

#define MR 6
#define NR 16
#define KC 256
#define NC 1024

typedef float v8 __attribute__((vector_size(32), aligned(4)));

static inline float a_at(int ta, const float *A, int lda, int i, int k) { return ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]; }
static inline float b_at(int tb, const float *B, int ldb, int k, int j) { return tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]; }

/* Packs B[k0:k0+kc, j0:j0+nc] into NR-wide panels: panel p holds [kc][NR], zero padded. */
static void pack_b(int tb, const float *B, int ldb, int k0, int kc, int j0, int nc, float *dst) {
    for (int p = 0; p < nc; p += NR) {
        int w = nc - p < NR ? nc - p : NR;
        float *d = dst + (size_t)p * kc;
        for (int k = 0; k < kc; k++) {
            int j = 0;
            if (!tb) {
                const float *src = B + (size_t)(k0 + k) * ldb + j0 + p;
                for (; j < w; j++) d[k * NR + j] = src[j];
            } else {
                for (; j < w; j++) d[k * NR + j] = b_at(tb, B, ldb, k0 + k, j0 + p + j);
            }
            for (; j < NR; j++) d[k * NR + j] = 0.f;
        }
    }
}

/* Packs A[i0:i0+mr, k0:k0+kc] as [kc][MR], zero padded rows. */
static void pack_a(int ta, const float *A, int lda, int i0, int mr, int k0, int kc, float *dst) {
    for (int k = 0; k < kc; k++) {
        int i = 0;
        for (; i < mr; i++) dst[k * MR + i] = a_at(ta, A, lda, i0 + i, k0 + k);
        for (; i < MR; i++) dst[k * MR + i] = 0.f;
    }
}

/* acc[MR][NR] = packed A tile (kc x MR) times packed B panel (kc x NR). */
static void micro_kernel(int kc, const float *restrict a, const float *restrict b, float *restrict acc) {
    v8 c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0};
    v8 c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0};
    for (int k = 0; k < kc; k++) {
        v8 b0, b1;
        memcpy(&b0, b + k * NR, 32);
        memcpy(&b1, b + k * NR + 8, 32);
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

void mc_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    scale_c(M, N, beta, C, ldc);
    if (K <= 0 || alpha == 0.f) return;
    int ncap = N < NC ? N : NC;
    int npad = (ncap + NR - 1) / NR * NR;
    float *bpack = aligned_alloc(64, (size_t)KC * npad * sizeof(float));
    int strips = (M + MR - 1) / MR;
    for (int j0 = 0; j0 < N; j0 += NC) {
        int nc = N - j0 < NC ? N - j0 : NC;
        for (int k0 = 0; k0 < K; k0 += KC) {
            int kc = K - k0 < KC ? K - k0 : KC;
            pack_b(trans_b, B, ldb, k0, kc, j0, nc, bpack);
#pragma omp parallel
            {
                float apack[KC * MR] __attribute__((aligned(64)));
                float acc[MR * NR] __attribute__((aligned(64)));
#pragma omp for schedule(static)
                for (int s = 0; s < strips; s++) {
                    int i0 = s * MR, mr = M - i0 < MR ? M - i0 : MR;
                    pack_a(trans_a, A, lda, i0, mr, k0, kc, apack);
                    for (int p = 0; p < nc; p += NR) {
                        int w = nc - p < NR ? nc - p : NR;
                        micro_kernel(kc, apack, bpack + (size_t)p * kc, acc);
                        for (int i = 0; i < mr; i++) {
                            float *c = C + (size_t)(i0 + i) * ldc + j0 + p;
                            const float *r = acc + i * NR;
                            for (int j = 0; j < w; j++) c[j] += alpha * r[j];
                        }
                    }
                }
            }
        }
    }
    free(bpack);
}
