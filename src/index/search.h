/* search.h - exact (brute-force) nearest neighbours by inner product.
 *
 * Rows are unit-norm embeddings, so the inner product with a unit query is the cosine.
 * The scoring kernels are chosen per call from the running CPU (__builtin_cpu_supports):
 * AVX-512F, AVX2+FMA+F16C, or portable C. Every variant accumulates in float32; they differ
 * only in summation order (about 1e-7 relative).
 */
#ifndef MC_INDEX_SEARCH_H
#define MC_INDEX_SEARCH_H

#include <stdint.h>

#include "index/index.h"

typedef struct mc_search_hit {
    int64_t index;  /* row number */
    float score;    /* inner product */
} mc_search_hit;

/* scores[i] = <q, rows[i]> for i < n; rows [n][dim] of dtype. Threads with OpenMP over rows. */
void mc_search_scores(const float *q, const void *rows, mc_index_dtype dtype, int64_t n, int dim, float *scores);
/* The k best scores (k <= n) in descending order, ties broken by the lower row number;
 * NaN scores rank last. */
void mc_search_topk(const float *scores, int64_t n, int k, mc_search_hit *out);
/* "avx512f", "avx2" or "portable": the kernel mc_search_scores uses on this CPU. */
const char *mc_search_kernel_name(void);

/* The same kernels, forced (for tests and benchmarks comparing variants; kernel is a name
 * mc_search_kernel_name can return, and must be supported by the CPU). */
void mc_search_scores_with(const char *kernel, const float *q, const void *rows, mc_index_dtype dtype, int64_t n,
                           int dim, float *scores);

#endif
