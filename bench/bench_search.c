/* bench_search [N] [DIM] [K] [REPEATS]: brute-force search time over N random unit rows stored as
 * float16 (default 1,000,000 x 512, top 10), per kernel variant the CPU supports, with the
 * index's own scoring + top-k code. Prints the best and median of REPEATS runs in ms. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <omp.h>

#include "core/tensor.h"
#include "index/search.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float gauss(void) { /* sum of uniforms: good enough for random directions */
    float s = 0;
    for (int k = 0; k < 4; k++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        s += (float)(rng >> 11) * 0x1p-53f - 0.5f;
    }
    return s;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: bench_search [N=1000000] [DIM=512] [K=10] [REPEATS=10]\n");
        return 0;
    }
    long n = argc > 1 ? atol(argv[1]) : 1000000, dim = argc > 2 ? atol(argv[2]) : 512;
    int k = argc > 3 ? atoi(argv[3]) : 10, reps = argc > 4 ? atoi(argv[4]) : 10;
    if (n < 1 || dim < 1 || k < 1 || reps < 1) return 2;
    uint16_t *rows = malloc(sizeof(uint16_t) * (size_t)n * (size_t)dim);
    float *scores = malloc(sizeof(float) * (size_t)n), *q = malloc(sizeof(float) * (size_t)dim), *v = malloc(sizeof(float) * (size_t)dim);
    mc_search_hit *hits = malloc(sizeof(mc_search_hit) * (size_t)k);
    double *t = malloc(sizeof(double) * (size_t)reps);
    if (!rows || !scores || !q || !v || !hits || !t) { fprintf(stderr, "out of memory\n"); return 1; }
    for (long i = 0; i <= n; i++) {
        float *dst = i < n ? v : q, s = 0;
        for (long d = 0; d < dim; d++) {
            dst[d] = gauss();
            s += dst[d] * dst[d];
        }
        for (long d = 0; d < dim; d++) dst[d] /= sqrtf(s);
        if (i < n)
            for (long d = 0; d < dim; d++) rows[(size_t)i * dim + d] = mc_f32_to_f16(v[d]);
    }
    printf("bench_search: %ld rows x %ld dims float16 (%.0f MiB), top %d, %d threads, default kernel %s\n", n, dim,
           (double)n * dim * 2 / (1 << 20), k, omp_get_max_threads(), mc_search_kernel_name());
    const char *kernels[] = {"avx512f", "avx2", "portable"};
    int start = !strcmp(mc_search_kernel_name(), "avx512f") ? 0 : !strcmp(mc_search_kernel_name(), "avx2") ? 1 : 2;
    for (int kv = start; kv < 3; kv++) {
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            mc_search_scores_with(kernels[kv], q, rows, MC_INDEX_F16, n, (int)dim, scores);
            mc_search_topk(scores, n, k, hits);
            t[r] = (now() - t0) * 1e3;
        }
        qsort(t, (size_t)reps, sizeof *t, cmp_double);
        printf("  %-9s best %8.2f ms  median %8.2f ms  (top score %.4f at row %ld)\n", kernels[kv], t[0],
               t[reps / 2], hits[0].score, (long)hits[0].index);
        if (kv == 2) break;
        if (reps > 3) reps = 3; /* the slower variants only for comparison */
    }
    free(rows), free(scores), free(q), free(v), free(hits), free(t);
    return 0;
}
