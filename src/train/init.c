/* init.c - the initialisation of a model trained from scratch (rules in init.h). */
#include "train/init.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/parallel.h"
#include "core/rng.h"

typedef enum rule_kind { R_CONST, R_UNIFORM, R_NORMAL, R_TRUNC } rule_kind;
typedef struct rule {
    rule_kind kind;
    double v; /* the value, the uniform bound, or the standard deviation */
} rule;

static int ends(const char *s, const char *t) {
    size_t a = strlen(s), b = strlen(t);
    return a >= b && !strcmp(s + a - b, t);
}
static int starts(const char *s, const char *t) { return !strncmp(s, t, strlen(t)); }

/* PyTorch's default for nn.Conv2d / nn.Linear weights [out, in/groups, ...]: U(+-1/sqrt(fan_in)) */
static double default_bound(const mc_param *w) {
    double fan_in = w->shape[0] ? (double)w->numel / (double)w->shape[0] : 1;
    return 1 / sqrt(fan_in > 0 ? fan_in : 1);
}

/* The rule of a weight of rank >= 2 (L: the text tower's attention layers). */
static rule weight_rule(const mc_param *p, int L) {
    const char *n = p->name;
    int text = starts(n, "text_encoder."), last = p->ndim - 1;
    double w0 = (double)p->shape[0], w1 = p->ndim > 1 ? (double)p->shape[1] : 1, Lf = L > 0 ? L : 1;
    if (strstr(n, ".convffn.")) return (rule){R_TRUNC, 0.02};
    if (ends(n, "head.proj") || ends(n, "classifier.proj") || ends(n, "projection_layer"))
        return (rule){R_NORMAL, 1 / sqrt(w0)}; /* [in, E] */
    if (text) {
        if (ends(n, "embedding_layer.weight")) return (rule){R_NORMAL, 0.02};
        if (strstr(n, "pos_embed")) return (rule){R_NORMAL, 0.01};
        if (ends(n, ".qkv_proj.weight")) return (rule){R_NORMAL, 1 / sqrt(w1)};           /* [3w, w] */
        if (ends(n, ".out_proj.weight")) return (rule){R_NORMAL, 1 / sqrt(w0 * 2 * Lf)};  /* [w, w] */
        if (ends(n, ".pre_norm_ffn.1.weight")) return (rule){R_NORMAL, 1 / sqrt(2 * w1)}; /* [ffn, w] */
        if (ends(n, ".pre_norm_ffn.4.weight")) return (rule){R_NORMAL, 1 / sqrt(w0 * 2 * Lf)}; /* [w, ffn] */
    } else {
        if (ends(n, ".token_mixer.qkv.weight") || ends(n, ".token_mixer.proj.weight")) return (rule){R_TRUNC, 0.02};
        if (ends(n, "cls_token")) return (rule){R_TRUNC, 0.02};
        if (strstr(n, "pos_embed")) return (rule){R_TRUNC, 1 / sqrt((double)p->shape[last])};
    }
    return (rule){R_UNIFORM, default_bound(p)};
}

static rule rule_for(const mc_param_store *s, const mc_param *p, int L) {
    const char *n = p->name;
    if (!strcmp(n, "logit_scale")) return (rule){R_CONST, log(1 / 0.07)};
    if (ends(n, ".running_var")) return (rule){R_CONST, 1};
    if (ends(n, ".running_mean")) return (rule){R_CONST, 0};
    if (strstr(n, "layer_scale")) return (rule){R_CONST, 1e-5};
    if (ends(n, ".bias")) {
        /* a norm's bias 0; a layer's bias 0 where its weight has a reference init, else PyTorch's U */
        char wn[512];
        snprintf(wn, sizeof wn, "%.*sweight", (int)(strlen(n) - 4), n);
        const mc_param *w = mc_param_store_find(s, wn);
        if (!w || w->ndim < 2) return (rule){R_CONST, 0};
        rule wr = weight_rule(w, L);
        int mha = ends(n, ".qkv_proj.bias") || ends(n, ".out_proj.bias");
        if (wr.kind == R_TRUNC || (mha && starts(n, "text_encoder."))) return (rule){R_CONST, 0};
        return (rule){R_UNIFORM, default_bound(w)};
    }
    if (p->ndim >= 2) return weight_rule(p, L);
    return (rule){R_CONST, ends(n, ".weight") ? 1 : 0}; /* norm gains; anything else 0 */
}

/* N(0, 1) by Box-Muller over two uniforms in (0, 1). */
static double normal(mc_rng *r) {
    double u = 1 - mc_rng_double(r), v = mc_rng_double(r);
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* tensors [i0, i1) of the store, a task on the library's pool (core/parallel.h) */
typedef struct init_job {
    mc_param_store *s;
    uint64_t seed;
    int L;
} init_job;

static void init_tensors(void *arg, int i0, int i1) {
    const init_job *job = arg;
    mc_param_store *s = job->s;
    uint64_t seed = job->seed;
    int L = job->L;
    for (int i = i0; i < i1; i++) {
        const mc_param *p = &s->params[i];
        if (p->flags & MC_PARAM_COUNTER) {
            s->counters[p->offset] = 0;
            continue;
        }
        float *d = s->data + p->offset;
        rule r = rule_for(s, p, L);
        mc_rng rng;
        mc_rng_init(&rng, seed, (uint64_t)i);
        for (size_t j = 0; j < p->numel; j++) {
            double x = r.v;
            if (r.kind == R_UNIFORM) x = r.v * (2 * mc_rng_double(&rng) - 1);
            else if (r.kind == R_NORMAL) x = r.v * normal(&rng);
            else if (r.kind == R_TRUNC)
                do x = r.v * normal(&rng); while (x < -2 || x > 2);
            d[j] = (float)x;
        }
    }
}

void mc_train_init_params(mc_param_store *s, uint64_t seed) {
    int L = 0;
    for (int i = 0; i < s->count; i++)
        L += starts(s->params[i].name, "text_encoder.") && ends(s->params[i].name, ".qkv_proj.weight");
    /* one stream per tensor: the same values for any thread count */
    init_job j = {s, seed, L};
    mc_parallel_for(s->count, 1, init_tensors, &j);
}
