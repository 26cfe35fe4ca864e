/* batch.h - embedding many images or texts with every core busy, bad inputs skipped.
 *
 * Images are decoded and preprocessed in parallel (OpenMP over the batch), then embedded as
 * one batch (the model's kernels thread themselves). Used by `index` and `eval`, and by
 * programs that evaluate checkpoints (training, the experiment).
 */
#ifndef MC_EVAL_BATCH_H
#define MC_EVAL_BATCH_H

#include <stdint.h>

#include "mobileclip.h"
#include "core/error.h"

/* Fills chw[3, R, R] for item i; must be safe to call from several threads at once. */
typedef int (*mc_batch_load_fn)(void *user, int i, int R, float *chw, mc_err *e);

typedef struct mc_batch_hooks {
    void *user;
    /* item i could not be loaded (called in item order, on the calling thread) */
    void (*on_skip)(void *user, int i, const char *reason);
    /* done of total items finished (called with 0 first) */
    void (*on_progress)(void *user, long long done, long long total);
} mc_batch_hooks;

/* Embeds n items into out[n][dim] as unit rows. An item whose load fails gets ok[i] = 0, a zero
 * row and an on_skip call; ok may be NULL, and then the first failure is returned instead.
 * batch: items per model call (<= 0: 16). Errors other than a bad item (memory, model) are
 * returned with e filled. */
int mc_batch_embed_images(mobileclip_ctx *ctx, int n, int batch, mc_batch_load_fn load, void *load_user, float *out,
                          uint8_t *ok, const mc_batch_hooks *hooks, mc_err *e);
/* A mc_batch_load_fn over a path array (user = const char *const *paths). */
int mc_batch_load_path(void *user, int i, int R, float *chw, mc_err *e);
/* Grey 8-bit images [n][h][w] (user = a mc_batch_gray): replicated to RGB as PIL's
 * convert('RGB'), then the reference preprocessing. */
typedef struct mc_batch_gray {
    const uint8_t *pixels;
    int h, w;
} mc_batch_gray;
int mc_batch_load_gray(void *user, int i, int R, float *chw, mc_err *e);

/* Encoded images in memory (user = a mc_batch_bytes): decoded by signature (JPEG/PNG/WebP). */
typedef struct mc_batch_bytes {
    const unsigned char *const *data;
    const size_t *size;
    const char *const *names;  /* for messages */
} mc_batch_bytes;
int mc_batch_load_bytes(void *user, int i, int R, float *chw, mc_err *e);

/* Embeds n texts into out[n][dim] as unit rows, in chunks with progress. */
int mc_batch_embed_texts(mobileclip_ctx *ctx, const char *const *texts, int n, float *out,
                         const mc_batch_hooks *hooks, mc_err *e);

#endif
