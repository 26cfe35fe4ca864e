/* bench_util.h - the clock and the median helper every benchmark uses. */
#ifndef MC_BENCH_UTIL_H
#define MC_BENCH_UTIL_H

#include <math.h>
#include <string.h>
#include <time.h>

#include "common/weight_rule.h"
#include "core/tensor.h"

static inline double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* qsort comparator for doubles (medians of repeated timings) */
static inline int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline int bench_ends_with(const char *s, const char *t) {
    size_t a = strlen(s), b = strlen(t);
    return a >= b && strcmp(s + a - b, t) == 0;
}

/* Fills an open_clip model declared without a checkpoint with the weight rule at the teacher_vit
 * golden's ranges by tensor name (shared/golden/teacher_vit/README.md), and for CoCa's own
 * tensors (pooler projections, CLS embedding, pooler queries) tools/reference/gen_coca_ref.py's. */
static inline void bench_fill_openclip(mc_tensor_map *w) {
    for (int i = 0; i < w->count; i++) {
        mc_named_tensor *t = &w->items[i];
        const char *n = t->name;
        double fan_in = t->t.ndim >= 2 ? (double)t->t.shape[1] : 1.0, lo, hi;
        for (int d = 2; d < t->t.ndim; d++) fan_in *= (double)t->t.shape[d];
        if (strstr(n, "ln_") && bench_ends_with(n, ".weight")) lo = 0.5, hi = 1.5;
        else if (bench_ends_with(n, "bias")) lo = -0.1, hi = 0.1;
        else if (bench_ends_with(n, "token_embedding.weight") || bench_ends_with(n, "class_embedding") ||
                 bench_ends_with(n, "cls_emb") || bench_ends_with(n, "attn_pool.query"))
            lo = -0.5, hi = 0.5;
        else if (bench_ends_with(n, "positional_embedding")) lo = -0.1, hi = 0.1;
        else if (bench_ends_with(n, "logit_scale")) lo = hi = log(1 / 0.07);
        else if (bench_ends_with(n, "in_proj_weight") || bench_ends_with(n, "q_proj_weight") ||
                 bench_ends_with(n, "k_proj_weight") || bench_ends_with(n, "v_proj_weight"))
            hi = 2 * sqrt(3 / fan_in), lo = -hi;
        else if (bench_ends_with(n, "proj") || bench_ends_with(n, "text_projection")) hi = sqrt(3 / (double)t->t.shape[0]), lo = -hi;
        else hi = sqrt(3 / fan_in), lo = -hi;
        float *v = (float *)t->t.data;
        uint64_t h = mc_fnv1a64(n);
        int64_t cnt = mc_tensor_numel(&t->t);
#pragma omp parallel for schedule(static)
        for (int64_t j = 0; j < cnt; j++) v[j] = mc_weight_rule_value(h, (uint64_t)j, lo, hi);
    }
}

#endif
