/* kernels.h - the argument block of the per-ISA GEMM drivers (see isa.h, gemm_tile.inc). */
#ifndef MC_NN_KERNELS_H
#define MC_NN_KERNELS_H

#include <stddef.h>

/* What is done to a finished tile of C while it is still in cache (after the last K pass),
 * instead of a separate pass over the whole output:
 *   gelu: C = GELU(C) (the kernels' own gelu, the same function mc_gelu_forward runs);
 *   res:  res(i, j) += res_scale[i] * C(i, j), res(i, j) at res[i * ldr + j] (c_trans:
 *         res[j * ldr + i]); a layer-scaled residual x += ls * f(x). Same products and sums
 *         as mc_add_scaled_channels, so the result does not change. */
typedef struct mc_gemm_epilogue {
    int gelu;
    float *res;
    const float *res_scale; /* [M], with res */
    int ldr;
} mc_gemm_epilogue;

/* C = alpha * op(A) op(B) + beta * C (+ bias[i] on row i), op(A) [M,K], op(B) [K,N].
 * c_trans: element (i, j) of C lives at C[j * ldc + i] (the driver computes a transposed
 * problem). beta is 0 (overwrite) or 1 (accumulate); other values are applied by the caller. */
typedef struct mc_gemm_args {
    int M, N, K;
    const float *A;
    int lda, trans_a;
    const float *B;
    int ldb, trans_b;
    float alpha, beta;
    float *C;
    int ldc, c_trans;
    const float *bias; /* [M] or NULL */
    mc_gemm_epilogue ep;
} mc_gemm_args;

#endif
