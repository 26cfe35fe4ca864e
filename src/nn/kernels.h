/* kernels.h - the argument block of the per-ISA GEMM drivers (see isa.h, gemm_tile.inc). */
#ifndef MC_NN_KERNELS_H
#define MC_NN_KERNELS_H

#include <stddef.h>

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
} mc_gemm_args;

#endif
