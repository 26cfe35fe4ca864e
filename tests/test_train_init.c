/* The initialisation of a model trained from scratch (src/train/init.c, rules in init.h):
 * every tensor of the tiny MCi + MCt configuration, S0 and (unless MC_TEST_SHORT) ViT-B/16 +
 * Base text is checked against the distribution the reference gives it, restated here by role
 * (constants exactly; uniform: bound and variance; normal / truncated normal: mean and standard
 * deviation within sampling error), with the text tower's layer count taken from the
 * configuration. The values are a function of the seed only, and the experiment's baseline
 * (experiment/random_init.h) is the same code path. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/test_util.h"
#include "experiment/random_init.h"
#include "models/clip.h"
#include "models/config.h"
#include "train/init.h"

enum { CONST, UNIFORM, NORMAL };

static int ends(const char *s, const char *t) {
    size_t a = strlen(s), b = strlen(t);
    return a >= b && !strcmp(s + a - b, t);
}

typedef struct want {
    int kind;
    double v;
} want;

static double fan_bound(const mc_param *w) { return 1 / sqrt((double)w->numel / (double)w->shape[0]); }

/* The reference's distribution of a rank >= 2 weight, by role (L: text attention layers). */
static want weight_want(const mc_param *p, int L) {
    const char *n = p->name;
    int text = !strncmp(n, "text_encoder.", 13), mci_attn = strstr(n, ".token_mixer.qkv.") || strstr(n, ".token_mixer.proj.");
    if (strstr(n, ".convffn.") || (!text && mci_attn) || (!text && ends(n, "cls_token"))) return (want){NORMAL, 0.02};
    if (ends(n, "proj") && !strstr(n, "_proj") && !strstr(n, "token_mixer"))
        return (want){NORMAL, pow((double)p->shape[0], -0.5)}; /* head.proj, classifier.proj */
    if (ends(n, "projection_layer")) return (want){NORMAL, pow((double)p->shape[0], -0.5)};
    if (text && ends(n, "embedding_layer.weight")) return (want){NORMAL, 0.02};
    if (text && strstr(n, "positional_embedding")) return (want){NORMAL, 0.01};
    if (!text && strstr(n, "pos_embed")) return (want){NORMAL, pow((double)p->shape[p->ndim - 1], -0.5)};
    if (text && strstr(n, "qkv_proj.weight")) return (want){NORMAL, pow((double)p->shape[1], -0.5)};
    if (text && (strstr(n, "out_proj.weight") || strstr(n, "pre_norm_ffn.4.weight")))
        return (want){NORMAL, pow((double)p->shape[0], -0.5) * pow(2.0 * L, -0.5)};
    if (text && strstr(n, "pre_norm_ffn.1.weight")) return (want){NORMAL, pow(2.0 * (double)p->shape[1], -0.5)};
    return (want){UNIFORM, fan_bound(p)};
}

static want want_for(const mc_param_store *s, const mc_param *p, int L) {
    const char *n = p->name;
    if (!strcmp(n, "logit_scale")) return (want){CONST, log(1 / 0.07)};
    if (ends(n, "running_var")) return (want){CONST, 1};
    if (ends(n, "running_mean")) return (want){CONST, 0};
    if (strstr(n, "layer_scale")) return (want){CONST, 1e-5};
    if (p->ndim >= 2) return weight_want(p, L);
    if (ends(n, ".bias")) {
        char wn[512];
        snprintf(wn, sizeof wn, "%.*sweight", (int)strlen(n) - 4, n);
        const mc_param *w = mc_param_store_find(s, wn);
        if (!w || w->ndim == 1) return (want){CONST, 0}; /* a norm's */
        want ww = weight_want(w, L);
        int zero = ww.kind == NORMAL && (ww.v == 0.02 || (!strncmp(n, "text_encoder.", 13) && strstr(n, "_proj.")));
        return zero ? (want){CONST, 0} : (want){UNIFORM, fan_bound(w)};
    }
    return (want){CONST, 1}; /* norm gains */
}

static void check_model(const char *label, const mc_clip_config *cfg, int *n_kind, int seeds) {
    mc_clip c;
    mc_err e = {0};
    if (mc_clip_init_config(&c, cfg, NULL, 1, 1, 0, &e)) {
        CHECK(0, "%s: declare: %s", label, e.msg);
        return;
    }
    double t0 = mc_test_now();
    mc_train_init_params(&c.store, 42);
    printf("%s: %d tensors, %zu floats initialised in %.2f s\n", label, c.store.count, c.store.total, mc_test_now() - t0);
    int bad = 0, L = cfg->text.n_layers;
    for (int i = 0; i < c.store.count; i++) {
        const mc_param *p = &c.store.params[i];
        if (p->flags & MC_PARAM_COUNTER) {
            bad += c.store.counters[p->offset] != 0;
            continue;
        }
        const float *x = c.store.data + p->offset;
        want w = want_for(&c.store, p, L);
        n_kind[w.kind]++;
        double s = 0, s2 = 0, mx = 0, N = (double)p->numel;
        int exact = 1;
        for (size_t k = 0; k < p->numel; k++) {
            s += x[k], s2 += (double)x[k] * x[k], mx = fmax(mx, fabs(x[k]));
            exact &= x[k] == (float)w.v;
        }
        double mean = s / N, sd = sqrt(fmax(s2 / N - mean * mean, 0)), want_sd = w.kind == UNIFORM ? w.v / sqrt(3) : w.v;
        int ok = 1;
        if (w.kind == CONST) ok = exact;
        else {
            /* ~6 standard errors of the mean and of the standard deviation (4th moments bounded) */
            ok = fabs(mean) <= 6 * want_sd / sqrt(N) + 1e-7 && (N < 64 || fabs(sd / want_sd - 1) <= 6 / sqrt(N) + 1e-3) &&
                 (w.kind != UNIFORM || mx <= w.v) && mx <= 2;
        }
        if (!ok) {
            bad++;
            if (bad <= 10)
                printf("  %s %s [%zu]: mean %.3g sd %.4g max %.3g; want %s %.4g\n", label, p->name, p->numel, mean, sd, mx,
                       w.kind == CONST ? "constant" : w.kind == UNIFORM ? "uniform bound" : "normal sd", w.v);
        }
    }
    CHECK(bad == 0, "%s: %d tensors off the reference's distribution", label, bad);
    /* a function of the seed only: again = same bytes; another seed: different values */
    float *copy = seeds ? malloc(sizeof(float) * c.store.total) : NULL;
    CHECK(!seeds || copy != NULL, "out of memory");
    if (copy) {
        memcpy(copy, c.store.data, sizeof(float) * c.store.total);
        mc_experiment_random_init(&c.store, 42); /* the experiment's baseline: the same code path */
        CHECK(!memcmp(copy, c.store.data, sizeof(float) * c.store.total), "%s: same seed, same values", label);
        mc_train_init_params(&c.store, 43);
        size_t differ = 0;
        for (size_t k = 0; k < c.store.total; k++) differ += copy[k] != c.store.data[k];
        CHECK(differ > c.store.total / 2, "%s: another seed changes %zu of %zu values", label, differ, c.store.total);
        free(copy);
    }
    mc_clip_free(&c);
}

int main(void) {
    mc_clip_config cfg;
    mc_err e = {0};
    int n[3] = {0};
    if (mc_clip_config_load(MC_TEST_DATA_DIR "/configs/tiny_mci.json", &cfg, &e)) mc_test_fatal("tiny_mci: %s", e.msg);
    check_model("tiny_mci", &cfg, n, 1);
    CHECK(n[CONST] > 20 && n[UNIFORM] > 20 && n[NORMAL] >= 10, "tiny_mci: %d constant, %d uniform, %d normal tensors",
          n[CONST], n[UNIFORM], n[NORMAL]);
    int archs[2] = {0, 3};
    for (int k = 0; k < (getenv("MC_TEST_SHORT") ? 1 : 2); k++) {
        if (mc_clip_config_builtin(archs[k], &cfg, &e)) mc_test_fatal("builtin %d: %s", archs[k], e.msg);
        check_model(archs[k] ? "b" : "s0", &cfg, n, 0);
    }
    return mc_test_finish("train_init");
}
