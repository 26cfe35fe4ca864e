/* Thread-count independence of training: three whole training steps (src/train/step.h: both
 * towers forward and backward, the reinforced loss with lambda 1, global-norm clipping that
 * is active here, AdamW, the clamp) of the small custom configuration
 * (tests/data/configs/tiny_mci.json, weight rule, batch 4, random images, tokens and unit-norm
 * teacher rows) with 1, 2 and 3 threads of the library's pool (core/parallel.h). Every loss
 * part, every gradient norm and every parameter, gradient, moment and BatchNorm statistic
 * must be bit-identical: each parallel loop gives every output element to one task with a
 * fixed summation order, and the reductions (the gradient norm) sum in blocks fixed by the
 * tensor size, never by the thread count. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/test_util.h"
#include "common/weight_rule.h"
#include "core/parallel.h"
#include "models/clip.h"
#include "models/config.h"
#include "train/step.h"

enum { B = 4, STEPS = 3, DT = 1536 };

typedef struct run {
    float *data, *grad, *m, *v;
    size_t n;
    mc_step_stats stats[STEPS];
} run;

static uint64_t rng_state;
static double rnd(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * 0x1p-53;
}

static float *copy(const float *p, size_t n) {
    float *q = malloc(sizeof(float) * n);
    if (!q) mc_test_fatal("out of memory");
    memcpy(q, p, sizeof(float) * n);
    return q;
}

static void train(int threads, run *out) {
    mc_err e = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s/configs/tiny_mci.json", MC_TEST_DATA_DIR);
    mc_clip_config cfg;
    mc_clip clip;
    if (mc_clip_config_load(path, &cfg, &e) || mc_clip_init_config(&clip, &cfg, NULL, 1, 1, 0, &e))
        mc_test_fatal("%s", e.msg);
    mc_weight_rule_fill_store(&clip.store);
    mc_train_config tc = {.loss = mc_drclip_config_default(1.0f), .adamw = mc_adamw_config_default(0),
                          .grad_clip = 1.0f, .accum = 1, .bn_groups = 1};
    mc_trainer t;
    if (mc_trainer_init(&t, &clip, &tc, B, 2, NULL, &e)) mc_test_fatal("%s", e.msg);
    int R = cfg.image_size, T = cfg.text.context_length;
    float *images = malloc(sizeof(float) * B * 3 * R * R), *U = malloc(sizeof(float) * B * DT);
    float *V = malloc(sizeof(float) * 2 * B * DT);
    int32_t *tok = calloc((size_t)2 * B * T, sizeof(int32_t));
    if (!images || !U || !V || !tok) mc_test_fatal("out of memory");
    rng_state = 88172645463325252ull;
    for (size_t i = 0; i < (size_t)B * 3 * R * R; i++) images[i] = (float)rnd();
    for (int n = 0; n < 2 * B; n++) { /* <sot> words <eot> */
        int len = 3 + (int)(rnd() * (T - 4));
        tok[n * T] = 49406;
        for (int k = 1; k < len; k++) tok[n * T + k] = 1 + (int)(rnd() * 40000);
        tok[n * T + len] = 49407;
    }
    for (int r = 0; r < 3 * B; r++) { /* unit-norm halves, one per teacher */
        float *row = r < B ? U + (size_t)r * DT : V + (size_t)(r - B) * DT;
        for (int h = 0; h < 2; h++) {
            double s = 0;
            for (int k = 0; k < DT / 2; k++) {
                row[h * DT / 2 + k] = (float)(rnd() - 0.5);
                s += (double)row[h * DT / 2 + k] * row[h * DT / 2 + k];
            }
            for (int k = 0; k < DT / 2; k++) row[h * DT / 2 + k] /= (float)sqrt(s);
        }
    }
    mc_train_batch mb = {images, tok, U, V};
    mc_threads_set(threads);
    for (int s = 0; s < STEPS; s++)
        if (mc_trainer_step(&t, &mb, 1e-3f, &out->stats[s], &e)) mc_test_fatal("step %d: %s", s, e.msg);
    mc_threads_set(0);
    out->n = clip.store.total;
    out->data = copy(clip.store.data, out->n);
    out->grad = copy(clip.store.grad, out->n);
    out->m = copy(clip.store.m, out->n);
    out->v = copy(clip.store.v, out->n);
    free(images);
    free(U);
    free(V);
    free(tok);
    mc_trainer_free(&t);
    mc_clip_free(&clip);
}

/* index of the first differing float, or -1 */
static long first_diff(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(a + i, b + i, sizeof(float))) return (long)i;
    return -1;
}

int main(void) {
    run r[3];
    int threads[3] = {1, 2, 3};
    for (int i = 0; i < 3; i++) train(threads[i], &r[i]);
    printf("  gradient norms before clipping: %.6g %.6g %.6g, loss after %d steps %.6g\n", r[0].stats[0].grad_norm,
           r[0].stats[1].grad_norm, r[0].stats[2].grad_norm, STEPS, r[0].stats[STEPS - 1].loss.total);
    int clipped = 0;
    for (int s = 0; s < STEPS; s++) clipped += r[0].stats[s].grad_norm > 1.0;
    CHECK(clipped > 0, "clipping active in at least one step (norms %g %g %g)", r[0].stats[0].grad_norm,
             r[0].stats[1].grad_norm, r[0].stats[2].grad_norm);
    for (int i = 1; i < 3; i++) {
        for (int s = 0; s < STEPS; s++) {
            const mc_step_stats *a = &r[0].stats[s], *b = &r[i].stats[s];
            CHECK(a->loss.total == b->loss.total && a->grad_norm == b->grad_norm,
                     "%d threads, step %d: loss %.9g norm %.12g (1 thread: %.9g, %.12g)", threads[i], s + 1,
                     b->loss.total, b->grad_norm, a->loss.total, a->grad_norm);
        }
        const char *what[4] = {"parameters", "gradients", "first moments", "second moments"};
        const float *A[4] = {r[0].data, r[0].grad, r[0].m, r[0].v}, *Bv[4] = {r[i].data, r[i].grad, r[i].m, r[i].v};
        for (int k = 0; k < 4; k++) {
            long d = first_diff(A[k], Bv[k], r[0].n);
            CHECK(d < 0, "%d threads: %s bit-identical to 1 thread (first difference at %ld of %zu)", threads[i],
                     what[k], d, r[0].n);
        }
    }
    for (int i = 0; i < 3; i++) {
        free(r[i].data);
        free(r[i].grad);
        free(r[i].m);
        free(r[i].v);
    }
    return mc_test_finish("train_threads");
}
