/* Image and text embedding entry points of the public API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/context.h"
#include "core/parallel.h"
#include "image/image.h"
#include "image/preprocess.h"
#include "nn/ops.h"

/* Images are embedded in chunks so activation memory stays bounded for long file lists. */
#define MC_IMAGE_BATCH 8
#define MC_TEXT_BATCH 64

int mobileclip_load_image(mobileclip_ctx *ctx, const char *path, float *chw) {
    if (!ctx) return MC_E_ARG;
    if (!path || !chw) return mc_fail(&ctx->err, MC_E_ARG, "load_image: NULL path or output");
    mc_image img = {0};
    int r = mc_image_load(path, &img, &ctx->err);
    if (r) return r;
    r = mc_image_preprocess(&img, mobileclip_image_size(ctx), chw, &ctx->err);
    if (r) mc_err_prefix(&ctx->err, "%s", path);
    mc_image_free(&img);
    return r;
}

typedef struct load_job {
    const char *const *paths;
    float *chw;
    mc_err *errs;
    int R;
} load_job;

/* One file (decode + preprocess); its error goes to errs[i], never stops the others. */
static int load_one(void *arg, int i, mc_err *unused) {
    (void)unused;
    const load_job *j = arg;
    mc_image img = {0};
    mc_err *e = &j->errs[i];
    int r = j->paths[i] ? mc_image_load(j->paths[i], &img, e) : mc_fail(e, MC_E_ARG, "NULL image path");
    if (!r && (r = mc_image_preprocess(&img, j->R, j->chw + (size_t)i * 3 * j->R * j->R, e)))
        mc_err_prefix(e, "%s", j->paths[i]);
    mc_image_free(&img);
    e->code = r;
    return 0;
}

int mobileclip_load_images(mobileclip_ctx *ctx, const char *const *paths, int n, float *chw, int *status) {
    if (!ctx) return MC_E_ARG;
    if (n < 0 || (n > 0 && (!paths || !chw))) return mc_fail(&ctx->err, MC_E_ARG, "load_images: bad arguments");
    mc_err *errs = calloc((size_t)(n ? n : 1), sizeof *errs);
    if (!errs) return mc_fail(&ctx->err, MC_E_NOMEM, "out of memory");
    int threads = mc_ctx_threads_begin(ctx);
    /* one file per thread at a time: decoding a large photo is serial work, so files go in
     * parallel, on the library's pool (an OpenMP region here left libgomp's threads spinning
     * beside the pool's workers when the encoding started) */
    load_job j = {paths, chw, errs, mobileclip_image_size(ctx)};
    mc_parallel_items(n, load_one, &j, NULL);
    mc_ctx_threads_end(threads);
    int first = -1, failed = 0;
    for (int i = 0; i < n; i++) {
        if (status) status[i] = errs[i].code;
        if (errs[i].code && !failed++) first = i;
    }
    int r = 0;
    if (failed) {
        ctx->err = errs[first];
        if (failed > 1) {
            size_t l = strlen(ctx->err.msg);
            snprintf(ctx->err.msg + l, sizeof ctx->err.msg - l, " (and %d more image%s)", failed - 1, failed > 2 ? "s" : "");
        }
        r = errs[first].code;
    }
    free(errs);
    return r;
}

int mobileclip_encode_images(mobileclip_ctx *ctx, const float *chw, int n, float *out, int normalize) {
    if (!ctx) return MC_E_ARG;
    if (n < 0 || (n > 0 && (!chw || !out))) return mc_fail(&ctx->err, MC_E_ARG, "encode_images: bad arguments");
    int threads = mc_ctx_threads_begin(ctx), R = mobileclip_image_size(ctx), E = mobileclip_embed_dim(ctx), r = 0;
    for (int i = 0; i < n && !r; i += MC_IMAGE_BATCH) {
        int b = n - i < MC_IMAGE_BATCH ? n - i : MC_IMAGE_BATCH;
        r = mc_clip_encode_image(&ctx->model, chw + (size_t)i * 3 * R * R, b, out + (size_t)i * E, NULL, &ctx->err);
    }
    mc_ctx_threads_end(threads);
    if (!r && normalize) mc_l2_normalize_rows(out, n, E);
    return r;
}

int mobileclip_encode_image_files(mobileclip_ctx *ctx, const char *const *paths, int n, float *out, int normalize) {
    if (!ctx) return MC_E_ARG;
    if (n < 0 || (n > 0 && (!paths || !out))) return mc_fail(&ctx->err, MC_E_ARG, "encode_image_files: bad arguments");
    int R = mobileclip_image_size(ctx);
    float *buf = malloc(sizeof(float) * 3 * R * R * MC_IMAGE_BATCH);
    if (!buf) return mc_fail(&ctx->err, MC_E_NOMEM, "out of memory");
    int r = 0;
    for (int i = 0; i < n && !r; i += MC_IMAGE_BATCH) {
        int b = n - i < MC_IMAGE_BATCH ? n - i : MC_IMAGE_BATCH;
        r = mobileclip_load_images(ctx, paths + i, b, buf, NULL);
        if (!r) r = mobileclip_encode_images(ctx, buf, b, out + (size_t)i * mobileclip_embed_dim(ctx), normalize);
    }
    free(buf);
    return r;
}

/* The tokenizer: the one params named, else the built-in vocabulary, unpacked on first use so
 * that image-only contexts never pay for it. */
static int ctx_tokenizer(mobileclip_ctx *ctx) {
    if (!ctx->tokenizer && !(ctx->tokenizer = mc_tokenizer_load_builtin(&ctx->err))) return ctx->err.code;
    return 0;
}

int mobileclip_tokenize(mobileclip_ctx *ctx, const char *utf8, int32_t *ids) {
    if (!ctx) return MC_E_ARG;
    if (!utf8 || !ids) return mc_fail(&ctx->err, MC_E_ARG, "tokenize: NULL text or output");
    int r = ctx_tokenizer(ctx);
    if (!r)
        r = mc_tokenizer_encode_ctx(ctx->tokenizer, utf8, strlen(utf8), ids, mobileclip_context_length(ctx), &ctx->err);
    return r < 0 ? r : 0; /* the tokenizer returns the number of ids before padding */
}

int mobileclip_text_truncated(mobileclip_ctx *ctx, const char *utf8) {
    if (!ctx) return MC_E_ARG;
    if (!utf8) return mc_fail(&ctx->err, MC_E_ARG, "text_truncated: NULL text");
    int T = mobileclip_context_length(ctx);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(T + 1));
    if (!ids) return mc_fail(&ctx->err, MC_E_NOMEM, "out of memory");
    int r = ctx_tokenizer(ctx);
    /* one id more than the model's context: filled only by a text the model sees cut */
    if (!r) r = mc_tokenizer_encode_ctx(ctx->tokenizer, utf8, strlen(utf8), ids, T + 1, &ctx->err);
    free(ids);
    return r < 0 ? r : r > T;
}

int mobileclip_encode_tokens(mobileclip_ctx *ctx, const int32_t *ids, int n, float *out, int normalize) {
    if (!ctx) return MC_E_ARG;
    if (n < 0 || (n > 0 && (!ids || !out))) return mc_fail(&ctx->err, MC_E_ARG, "encode_tokens: bad arguments");
    int threads = mc_ctx_threads_begin(ctx), T = mobileclip_context_length(ctx), E = mobileclip_embed_dim(ctx), r = 0;
    for (int i = 0; i < n && !r; i += MC_TEXT_BATCH) {
        int b = n - i < MC_TEXT_BATCH ? n - i : MC_TEXT_BATCH;
        r = mc_clip_encode_text(&ctx->model, ids + (size_t)i * T, b, out + (size_t)i * E, NULL, &ctx->err);
    }
    mc_ctx_threads_end(threads);
    if (!r && normalize) mc_l2_normalize_rows(out, n, E);
    return r;
}

int mobileclip_encode_texts(mobileclip_ctx *ctx, const char *const *texts, int n, float *out, int normalize) {
    if (!ctx) return MC_E_ARG;
    if (n < 0 || (n > 0 && (!texts || !out))) return mc_fail(&ctx->err, MC_E_ARG, "encode_texts: bad arguments");
    size_t T = (size_t)mobileclip_context_length(ctx);
    int32_t *ids = malloc(sizeof(int32_t) * T * (size_t)(n ? n : 1));
    if (!ids) return mc_fail(&ctx->err, MC_E_NOMEM, "out of memory");
    int r = 0;
    for (int i = 0; i < n && !r; i++)
        if ((r = mobileclip_tokenize(ctx, texts[i], ids + (size_t)i * T)) && n > 1)
            mc_err_prefix(&ctx->err, "text %d", i + 1);
    if (!r) r = mobileclip_encode_tokens(ctx, ids, n, out, normalize);
    free(ids);
    return r;
}
