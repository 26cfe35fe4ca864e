/* SGEMM entry points: argument normalisation and the run-time dispatch to the kernels of
 * nn/isa.h (the cache-blocked drivers live in gemm_tile.inc).
 *
 * op(A) op(B) with op(B) = B^T (a Linear layer, x @ W^T) is computed transposed,
 * C^T = W x^T: the weight becomes the in-place A operand (no repacking of the weight on
 * every call) and only the activation x is packed; the tile is stored transposed. A^T B with
 * A the larger operand is computed transposed too (C^T = B^T A). */
#include "nn/gemm.h"

#include <string.h>

#include "nn/isa.h"
#include "nn/lowp.h"

static void scale_c(int M, int N, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.f) memset(c, 0, (size_t)N * sizeof(float));
        else if (beta != 1.f) for (int j = 0; j < N; j++) c[j] *= beta;
    }
}

/* Plain loops, used only when the kernels' buffers cannot be allocated: slower, never fails. */
static void gemm_plain(const mc_gemm_args *g) {
    for (int i = 0; i < g->M; i++)
        for (int j = 0; j < g->N; j++) {
            float acc = 0.f;
            for (int k = 0; k < g->K; k++)
                acc += (g->trans_a ? g->A[(size_t)k * g->lda + i] : g->A[(size_t)i * g->lda + k]) *
                       (g->trans_b ? g->B[(size_t)j * g->ldb + k] : g->B[(size_t)k * g->ldb + j]);
            float *c = g->c_trans ? g->C + (size_t)j * g->ldc + i : g->C + (size_t)i * g->ldc + j;
            *c = (g->beta == 0.f ? 0.f : *c) + g->alpha * acc + (g->bias ? g->bias[i] : 0.f);
        }
}

/* The epilogue as a separate pass over the row-major C [M, N] (where the kernels' cannot
 * run it: the plain fallback, or a column bias added after them). */
static void epilogue_pass(const mc_gemm_epilogue *ep, int M, int N, float *C, int ldc) {
    const mc_kernels *k = mc_kernels_get();
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (ep->gelu) k->gelu(c, c, (size_t)N);
        if (ep->res) {
            float s = ep->res_scale[i], *r = ep->res + (size_t)i * ep->ldr;
            for (int j = 0; j < N; j++) r[j] += s * c[j];
        }
    }
}

/* weights: A or B is a layer's weight (mc_sgemm_bias, mc_sgemm_ep), which the low-precision
 * plan in scope may hold packed (nn/lowp.h); never for mc_sgemm, whose operands may be
 * activations. The low-precision GEMM runs the epilogue in its tiles' finish, as the kernels do. */
static void run(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                int ldb, float beta, float *C, int ldc, const float *bias_m, const float *bias_n,
                const mc_gemm_epilogue *ep, int weights) {
    if (M <= 0 || N <= 0) return;
    if (beta != 0.f && beta != 1.f) {
        scale_c(M, N, beta, C, ldc);
        beta = 1.f;
    }
    mc_gemm_epilogue none = {0}, e = ep ? *ep : none;
    mc_gemm_args g = {M, N, K, A, lda, trans_a, B, ldb, trans_b, alpha, beta, C, ldc, 0, bias_m, none};
    /* C^T = B A^T: the weight B is read in place (a row residual would need its scale per
     * column of the transposed problem: not fused) */
    if (!trans_a && trans_b && !bias_m && !e.res) {
        g = (mc_gemm_args){N, M, K, B, ldb, 0, A, lda, 1, alpha, beta, C, ldc, 1, bias_n, none};
        bias_n = NULL;
    } else if (trans_a && !trans_b && M > N && !bias_m && !e.res) {
        /* A stored [K][M] is copied transposed (gemm_tile.inc): C^T = B^T A copies the smaller
         * B^T [N][K] instead and gives the tiles more column blocks to share out (a training
         * Linear's dW = dY^T X with out > in: 120-130 -> 145-160 GFLOP/s on 2 cores) */
        g = (mc_gemm_args){N, M, K, B, ldb, 1, A, lda, 0, alpha, beta, C, ldc, 1, bias_n, none};
        bias_n = NULL;
    }
    int fused = !bias_n && K > 0 && alpha != 0.f; /* the kernels run the epilogue */
    if (fused) g.ep = e;
    if (K <= 0 || alpha == 0.f) { /* C = beta * C + bias */
        g.K = 0;
        g.alpha = 0.f;
        gemm_plain(&g);
    } else {
        mc_macs_add((uint64_t)M * N * K);
        weights = weights && !(g.trans_b && !g.c_trans); /* the weight is A: not swapped only with bias_m */
        if (weights && mc_lowp_gemm(&g)) {
            /* ran g.ep on its tiles too */
        } else if (mc_kernels_get()->gemm(&g)) {
            gemm_plain(&g);
            fused = 0;
        }
    }
    if (bias_n)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] += bias_n[j];
    if (!fused && (e.gelu || e.res)) epilogue_pass(&e, M, N, C, ldc);
}

void mc_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc) {
    run(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL, NULL, NULL, 0);
}

void mc_sgemm_bias(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc, const float *bias_m, const float *bias_n) {
    run(trans_a, trans_b, M, N, K, 1.f, A, lda, B, ldb, beta, C, ldc, bias_m, bias_n, NULL, 1);
}

void mc_sgemm_ep(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc, const float *bias_m, const float *bias_n, const mc_gemm_epilogue *ep) {
    run(trans_a, trans_b, M, N, K, 1.f, A, lda, B, ldb, beta, C, ldc, bias_m, bias_n, ep, 1);
}
