/* gemm.h - single-precision matrix multiply, the workhorse of every layer.
 *
 * Row-major C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, op = identity or transpose.
 * lda/ldb/ldc are row strides in elements of the matrices as stored. Runs the kernels of the
 * instruction set chosen at run time (nn/isa.h) on the library's threads (core/parallel.h);
 * the result does not depend on the thread count.
 */
#ifndef MC_NN_GEMM_H
#define MC_NN_GEMM_H

#include "nn/kernels.h"

void mc_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);

/* The same with alpha = 1 and a bias fused into the first pass: bias_m[i] added to row i
 * and/or bias_n[j] to column j of C (either may be NULL). beta must be 0 or 1. */
void mc_sgemm_bias(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc, const float *bias_m, const float *bias_n);

/* The same, then the epilogue of nn/kernels.h (GELU, layer-scaled residual into ep->res) on
 * C, run on each finished tile while it is in cache (ep may be NULL). ep->res_scale is
 * indexed by the row i of C [M, N]. */
void mc_sgemm_ep(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc, const float *bias_m, const float *bias_n, const mc_gemm_epilogue *ep);

#endif
