/* Brute-force inner-product scoring with runtime CPU dispatch, and top-k selection.
 *
 * The default build carries no CPU-specific flags: the fast variants are compiled for their
 * instruction sets with target attributes and only called when the CPU reports them. The
 * scan is memory-bound (1M x 512 f16 rows = 1 GiB), so each variant walks a row once with
 * the query held in registers/L1 and four independent accumulators. */
#include "index/search.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif
#include <math.h>
#include <string.h>

#include "core/parallel.h"
#include "core/tensor.h"

typedef void (*row_dot_fn)(const float *q, const void *rows, int64_t first, int64_t count, int dim, float *scores);

static void dot_f32_portable(const float *q, const void *rows, int64_t first, int64_t count, int dim, float *scores) {
    for (int64_t i = first; i < first + count; i++) {
        const float *r = (const float *)rows + i * dim;
        float acc[4] = {0};
        int d = 0;
        for (; d + 4 <= dim; d += 4)
            for (int k = 0; k < 4; k++) acc[k] += q[d + k] * r[d + k];
        for (; d < dim; d++) acc[0] += q[d] * r[d];
        scores[i] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    }
}

static void dot_f16_portable(const float *q, const void *rows, int64_t first, int64_t count, int dim, float *scores) {
    for (int64_t i = first; i < first + count; i++) {
        const uint16_t *r = (const uint16_t *)rows + i * dim;
        float acc[4] = {0};
        int d = 0;
        for (; d + 4 <= dim; d += 4)
            for (int k = 0; k < 4; k++) acc[k] += q[d + k] * mc_f16_to_f32(r[d + k]);
        for (; d < dim; d++) acc[0] += q[d] * mc_f16_to_f32(r[d]);
        scores[i] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define MC_SEARCH_X86 1

__attribute__((target("avx2,fma"))) static float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* One row: 8 lanes x 4 accumulators, scalar tail. */
#define ROW_LOOP_AVX2(LOAD, SCALAR)                                                                     \
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                      \
    int d = 0;                                                                                        \
    for (; d + 32 <= dim; d += 32) {                                                                  \
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), LOAD(d), a0);                                    \
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d + 8), LOAD(d + 8), a1);                            \
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d + 16), LOAD(d + 16), a2);                          \
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d + 24), LOAD(d + 24), a3);                          \
    }                                                                                                 \
    for (; d + 8 <= dim; d += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), LOAD(d), a0);          \
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));                  \
    for (; d < dim; d++) s += q[d] * SCALAR(d);                                                       \
    scores[i] = s;

__attribute__((target("avx2,fma"))) static void dot_f32_avx2(const float *q, const void *rows, int64_t first,
                                                              int64_t count, int dim, float *scores) {
    for (int64_t i = first; i < first + count; i++) {
        const float *r = (const float *)rows + i * dim;
#define LOAD(o) _mm256_loadu_ps(r + (o))
#define SCALAR(o) r[o]
        ROW_LOOP_AVX2(LOAD, SCALAR)
#undef LOAD
#undef SCALAR
    }
}

__attribute__((target("avx2,fma,f16c"))) static void dot_f16_avx2(const float *q, const void *rows, int64_t first,
                                                                   int64_t count, int dim, float *scores) {
    for (int64_t i = first; i < first + count; i++) {
        const uint16_t *r = (const uint16_t *)rows + i * dim;
#define LOAD(o) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r + (o))))
#define SCALAR(o) mc_f16_to_f32(r[o])
        ROW_LOOP_AVX2(LOAD, SCALAR)
#undef LOAD
#undef SCALAR
    }
}

/* One row: 16 lanes x 4 accumulators, scalar tail. */
#define ROW_LOOP_AVX512(LOAD, SCALAR)                                                                   \
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                      \
    int d = 0;                                                                                        \
    for (; d + 64 <= dim; d += 64) {                                                                  \
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + d), LOAD(d), a0);                                    \
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + d + 16), LOAD(d + 16), a1);                          \
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(q + d + 32), LOAD(d + 32), a2);                          \
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(q + d + 48), LOAD(d + 48), a3);                          \
    }                                                                                                 \
    for (; d + 16 <= dim; d += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + d), LOAD(d), a0);        \
    float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));     \
    for (; d < dim; d++) s += q[d] * SCALAR(d);                                                       \
    scores[i] = s;

__attribute__((target("avx512f"))) static void dot_f32_avx512(const float *q, const void *rows, int64_t first,
                                                               int64_t count, int dim, float *scores) {
    for (int64_t i = first; i < first + count; i++) {
        const float *r = (const float *)rows + i * dim;
#define LOAD(o) _mm512_loadu_ps(r + (o))
#define SCALAR(o) r[o]
        ROW_LOOP_AVX512(LOAD, SCALAR)
#undef LOAD
#undef SCALAR
    }
}

__attribute__((target("avx512f"))) static void dot_f16_avx512(const float *q, const void *rows, int64_t first,
                                                               int64_t count, int dim, float *scores) {
    for (int64_t i = first; i < first + count; i++) {
        const uint16_t *r = (const uint16_t *)rows + i * dim;
#define LOAD(o) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(r + (o))))
#define SCALAR(o) mc_f16_to_f32(r[o])
        ROW_LOOP_AVX512(LOAD, SCALAR)
#undef LOAD
#undef SCALAR
    }
}
#endif

#ifdef MC_SEARCH_X86
/* F16C from CPUID leaf 1 (ECX bit 29): clang 14's __builtin_cpu_supports does not know "f16c". */
static int has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}
#endif

const char *mc_search_kernel_name(void) {
#ifdef MC_SEARCH_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return "avx512f";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c()) return "avx2";
#endif
    return "portable";
}

static row_dot_fn pick(const char *kernel, mc_index_dtype dtype) {
    int f16 = dtype == MC_INDEX_F16;
#ifdef MC_SEARCH_X86
    if (strcmp(kernel, "avx512f") == 0) return f16 ? dot_f16_avx512 : dot_f32_avx512;
    if (strcmp(kernel, "avx2") == 0) return f16 ? dot_f16_avx2 : dot_f32_avx2;
#endif
    return f16 ? dot_f16_portable : dot_f32_portable;
}

/* rows scored as spans on the library's pool (core/parallel.h); each row's score is its own */
typedef struct scores_job {
    row_dot_fn fn;
    const float *q;
    const void *rows;
    int dim;
    float *scores;
} scores_job;

static void scores_span(void *arg, size_t b, size_t e) {
    const scores_job *j = arg;
    j->fn(j->q, j->rows, (int64_t)b, (int64_t)(e - b), j->dim, j->scores);
}

void mc_search_scores_with(const char *kernel, const float *q, const void *rows, mc_index_dtype dtype, int64_t n,
                           int dim, float *scores) {
    scores_job j = {pick(kernel, dtype), q, rows, dim, scores};
    if (n > 0) mc_parallel_span((size_t)n, 4096, scores_span, &j);
}

void mc_search_scores(const float *q, const void *rows, mc_index_dtype dtype, int64_t n, int dim, float *scores) {
    mc_search_scores_with(mc_search_kernel_name(), q, rows, dtype, n, dim, scores);
}

/* a ranks before b: higher score, NaN last, ties by lower index. */
static int better(mc_search_hit a, mc_search_hit b) {
    if (isnan(a.score) != isnan(b.score)) return isnan(b.score);
    if (a.score != b.score) return a.score > b.score;
    return a.index < b.index;
}

/* Min-heap on `better` (the root is the worst kept hit). */
static void sift_down(mc_search_hit *h, int k, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < k && better(h[w], h[l])) w = l;
        if (r < k && better(h[w], h[r])) w = r;
        if (w == i) return;
        mc_search_hit t = h[i]; h[i] = h[w]; h[w] = t;
        i = w;
    }
}

void mc_search_topk(const float *scores, int64_t n, int k, mc_search_hit *out) {
    if (k > n) k = (int)n;
    if (k <= 0) return;
    for (int i = 0; i < k; i++) out[i] = (mc_search_hit){i, scores[i]};
    for (int i = k / 2 - 1; i >= 0; i--) sift_down(out, k, i);
    for (int64_t i = k; i < n; i++) {
        mc_search_hit c = {i, scores[i]};
        if (better(c, out[0])) {
            out[0] = c;
            sift_down(out, k, 0);
        }
    }
    /* heap sort: repeatedly move the worst to the end */
    for (int end = k - 1; end > 0; end--) {
        mc_search_hit t = out[0]; out[0] = out[end]; out[end] = t;
        sift_down(out, end, 0);
    }
}
