/* random_init.c - the experiment's random baseline weights (rules in random_init.h). */
#include "experiment/random_init.h"

#include <math.h>
#include <string.h>

#include "models/clip.h"

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
/* uniform in (0, 1) */
static double unif(uint64_t *s) { return ((double)(mix64(*s += 0x9e3779b97f4a7c15ULL) >> 11) + 0.5) * 0x1.0p-53; }

static int ends_with(const char *s, const char *t) {
    size_t a = strlen(s), b = strlen(t);
    return a >= b && !strcmp(s + a - b, t);
}

void mc_experiment_random_init(mc_param_store *s, uint64_t seed) {
    for (int i = 0; i < s->count; i++) {
        const mc_param *p = &s->params[i];
        if (p->flags & MC_PARAM_COUNTER) {
            s->counters[p->offset] = 0;
            continue;
        }
        float *x = s->data + p->offset;
        const char *n = p->name;
        uint64_t st = mix64(seed ^ mix64(0x72616e64ULL + (uint64_t)i));
        double fill = 0, std = 0, bound = 0;
        int64_t width = p->ndim ? p->shape[p->ndim - 1] : 1, fan_in = p->shape[0] ? (int64_t)p->numel / p->shape[0] : 1;
        if (!strcmp(n, "logit_scale")) fill = log(1 / 0.07);
        else if (ends_with(n, ".running_var")) fill = 1;
        else if (strstr(n, "layer_scale")) fill = 1e-5;
        else if (ends_with(n, "embedding_layer.weight") || strstr(n, "pos_embed")) std = 1 / sqrt((double)width);
        else if (ends_with(n, "head.proj") || ends_with(n, "projection_layer")) std = 1 / sqrt((double)p->shape[0]);
        else if (p->ndim >= 2) bound = 1 / sqrt((double)(fan_in > 0 ? fan_in : 1));
        else if (p->ndim == 1 && ends_with(n, ".weight")) fill = 1;
        for (size_t k = 0; k < p->numel; k++) {
            if (std > 0) { /* Box-Muller, one value per pair of draws */
                double u = unif(&st), v = unif(&st);
                x[k] = (float)(std * sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
            } else if (bound > 0) x[k] = (float)(bound * (2 * unif(&st) - 1));
            else x[k] = (float)fill;
        }
    }
}

int mc_experiment_write_random_checkpoint(const mc_clip_config *cfg, uint64_t seed, const char *path, mc_err *e) {
    mc_clip c;
    int r = mc_clip_init_config(&c, cfg, NULL, 1, 1, 0, e);
    if (r) return r;
    mc_experiment_random_init(&c.store, seed);
    r = mc_param_store_save(&c.store, path, e);
    mc_clip_free(&c);
    return r;
}
