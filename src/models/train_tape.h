/* train_tape.h - the two pieces of memory plumbing every training forward/backward shares.
 *
 * mc_tape: the activation arena of one training step. Forwards carve every tensor that
 *   backward needs (and their outputs) from it in order; nothing is freed until the step ends
 *   (mc_tape_reset). Sizing: run the same forward on a tape with base == NULL ("measure"
 *   mode): every take returns NULL, no arithmetic runs, and `peak` ends as the exact number
 *   of floats the real step takes - one size query that can never disagree with the code.
 *   The backward's temporaries come from a second tape used as a stack (mc_tape_mark /
 *   mc_tape_release around each block).
 *
 * mc_grad_map: where a parameter's gradient lives. The parameter store keeps every
 *   gradient at the same offset in an arena of the same size as the parameters
 *   (TRAINING_DESIGN.md), so grad(p) = grad + (p - data). Pointers outside [data, data+n)
 *   (or a NULL map / grad) have no gradient: backward skips them (frozen parameters).
 */
#ifndef MC_MODELS_TRAIN_TAPE_H
#define MC_MODELS_TRAIN_TAPE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "models/dropout_rates.h"
#include "models/reparameterize.h"
#include "nn/layers.h"

typedef struct mc_tape {
    float *base;       /* NULL: measure mode */
    size_t cap, top;   /* floats */
    size_t peak;       /* largest top seen */
    int overflow;      /* a take did not fit (the step must be abandoned) */
} mc_tape;

/* n floats, 16-float (64-byte) aligned; NULL in measure mode or on overflow. */
static inline float *mc_tape_take(mc_tape *t, size_t n) {
    size_t at = (t->top + 15) & ~(size_t)15;
    if (at + n > t->peak) t->peak = at + n;
    if (!t->base || at + n > t->cap) {
        if (t->base) t->overflow = 1;
        t->top = at + n;
        return NULL;
    }
    t->top = at + n;
    return t->base + at;
}
static inline size_t mc_tape_mark(const mc_tape *t) { return t->top; }
static inline void mc_tape_release(mc_tape *t, size_t mark) { t->top = mark; }
static inline void mc_tape_reset(mc_tape *t) { t->top = 0; t->overflow = 0; }
/* 1 when takes return real memory (computation should run). */
static inline int mc_tape_live(const mc_tape *t) { return t->base != NULL && !t->overflow; }

typedef struct mc_grad_map {
    const float *data; /* parameter arena */
    float *grad;       /* gradient arena, same size; NULL: no gradients */
    size_t n;          /* floats */
} mc_grad_map;

static inline float *mc_grad_of(const mc_grad_map *g, const float *p) {
    if (!g || !g->grad || !p) return NULL;
    uintptr_t a = (uintptr_t)p, lo = (uintptr_t)g->data, hi = lo + g->n * sizeof(float);
    return a >= lo && a < hi ? g->grad + (a - lo) / sizeof(float) : NULL;
}

/* What every training forward/backward gets (ctx first). */
typedef struct mc_train_ctx {
    mc_tape *tape;            /* activations kept for backward */
    mc_tape *work;            /* backward temporaries (stack) */
    const mc_grad_map *grads; /* where gradients go (NULL: none) */
    int train;                /* 1: BatchNorm batch statistics + running-stat update */
    float bn_momentum;        /* 0.1 as PyTorch */
    /* Dropout and stochastic depth (models/dropout_rates.h; all 0 = off, the default). A tower's
     * forward reads its tower's rates here and hands each block its own drop_path (the MCi
     * linear schedule, the ViT's linspace, the text tower's constant); masks are drawn from
     * *rng (needed when a rate is > 0), and are taken from the tape only then. */
    mc_dropout_rates rate;
    mc_rng *rng;
} mc_train_ctx;

/* The context of a measure pass (train mode, no gradients, the tower's rates: NULL = none), for the
 * towers' *_train_sizes. */
static inline mc_train_ctx mc_train_measure_ctx(mc_tape *tape, mc_tape *work, const mc_dropout_rates *rates) {
    mc_train_ctx c = {.tape = tape, .work = work, .grads = NULL, .train = 1, .bn_momentum = 0.1f};
    if (rates) c.rate = *rates;
    return c;
}

typedef struct mc_bn_save {
    float *mean, *rstd; /* [C] batch statistics (training mode) */
} mc_bn_save;

/* BatchNorm of a training forward on x[outer, C, inner] (NCHW: B, C, HW; tokens: N*T, C, 1):
 * batch statistics saved in s (taken from ctx->tape) and running statistics updated when
 * ctx->train, the running statistics otherwise. Backward: dx written (acc_dx: added), the
 * weight/bias gradients accumulated through ctx->grads. No-ops while a tape measures. */
void mc_train_bn_forward(mc_train_ctx *ctx, mc_bn_save *s, float *y, const float *x, const mc_bn_params *bn,
                         int outer, int C, int inner);
void mc_train_bn_backward(mc_train_ctx *ctx, const mc_bn_save *s, float *dx, const float *dy, const float *x,
                          const mc_bn_params *bn, int outer, int C, int inner, int acc_dx);

#endif
