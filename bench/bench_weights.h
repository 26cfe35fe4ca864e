/* bench_weights.h - random-but-deterministic weights for declared open_clip models (CLIP and
 * CoCa) in the benchmarks: the project's weight rule (tests/common/weight_rule.h) with the
 * goldens' ranges by tensor name. */
#ifndef MC_BENCH_WEIGHTS_H
#define MC_BENCH_WEIGHTS_H

#include <math.h>
#include <string.h>

#include "common/weight_rule.h"
#include "core/tensor.h"

static inline int ends_with(const char *s, const char *t) {
    size_t a = strlen(s), b = strlen(t);
    return a >= b && strcmp(s + a - b, t) == 0;
}

/* The teacher_vit golden's ranges by tensor name (and tools/reference/gen_coca_ref.py's for the CoCa
 * tensors: attentional pooler projections, CLS embedding, pooler queries). */
static inline void bench_fill_openclip(mc_tensor_map *w) {
    for (int i = 0; i < w->count; i++) {
        mc_named_tensor *t = &w->items[i];
        const char *n = t->name;
        double fan_in = t->t.ndim >= 2 ? (double)t->t.shape[1] : 1.0, lo, hi;
        for (int d = 2; d < t->t.ndim; d++) fan_in *= (double)t->t.shape[d];
        if (strstr(n, "ln_") && ends_with(n, ".weight")) lo = 0.5, hi = 1.5;
        else if (ends_with(n, "bias")) lo = -0.1, hi = 0.1;
        else if (ends_with(n, "token_embedding.weight") || ends_with(n, "class_embedding") || ends_with(n, "cls_emb") ||
                 ends_with(n, "attn_pool.query"))
            lo = -0.5, hi = 0.5;
        else if (ends_with(n, "positional_embedding")) lo = -0.1, hi = 0.1;
        else if (ends_with(n, "logit_scale")) lo = hi = log(1 / 0.07);
        else if (ends_with(n, "in_proj_weight") || ends_with(n, "q_proj_weight") || ends_with(n, "k_proj_weight") ||
                 ends_with(n, "v_proj_weight"))
            hi = 2 * sqrt(3 / fan_in), lo = -hi;
        else if (ends_with(n, "proj") || ends_with(n, "text_projection")) hi = sqrt(3 / (double)t->t.shape[0]), lo = -hi;
        else hi = sqrt(3 / fan_in), lo = -hi;
        float *v = (float *)t->t.data;
        uint64_t h = mc_fnv1a64(n);
        int64_t cnt = mc_tensor_numel(&t->t);
#pragma omp parallel for schedule(static)
        for (int64_t j = 0; j < cnt; j++) v[j] = mc_weight_rule_value(h, (uint64_t)j, lo, hi);
    }
}

#endif
