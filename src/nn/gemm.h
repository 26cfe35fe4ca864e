/* gemm.h - single-precision matrix multiply, the workhorse of every layer.
 *
 * Row-major C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, op = identity or transpose.
 * lda/ldb/ldc are row strides in elements of the matrices as stored. Multithreaded with
 * OpenMP (the caller's omp thread count); deterministic for a given thread count.
 */
#ifndef MC_NN_GEMM_H
#define MC_NN_GEMM_H

void mc_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);

#endif
