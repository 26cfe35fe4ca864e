/* Batched embedding with parallel decoding (see batch.h). */
#include "eval/batch.h"

#include <stdlib.h>
#include <string.h>

#include "api/context.h"
#include "core/parallel.h"
#include "image/image.h"
#include "image/preprocess.h"

int mc_batch_load_path(void *user, int i, int R, float *chw, mc_err *e) {
    const char *path = ((const char *const *)user)[i];
    mc_image img = {0};
    int r = mc_image_load(path, &img, e);
    if (!r && (r = mc_image_preprocess(&img, R, chw, e))) mc_err_prefix(e, "%s", path);
    mc_image_free(&img);
    return r;
}

int mc_batch_load_bytes(void *user, int i, int R, float *chw, mc_err *e) {
    const mc_batch_bytes *b = user;
    mc_image img = {0};
    int r = mc_image_decode(b->data[i], b->size[i], b->names[i], &img, e);
    if (!r && (r = mc_image_preprocess(&img, R, chw, e))) mc_err_prefix(e, "%s", b->names[i]);
    mc_image_free(&img);
    return r;
}

int mc_batch_load_gray(void *user, int i, int R, float *chw, mc_err *e) {
    const mc_batch_gray *g = user;
    mc_image img = {0};
    int r = mc_image_alloc(&img, g->w, g->h, e);
    if (r) return r;
    const uint8_t *src = g->pixels + (size_t)i * g->h * g->w;
    for (size_t p = 0; p < (size_t)g->h * g->w; p++) img.rgb[3 * p] = img.rgb[3 * p + 1] = img.rgb[3 * p + 2] = src[p];
    r = mc_image_preprocess(&img, R, chw, e);
    mc_image_free(&img);
    return r;
}

/* One batch's images decoded and preprocessed as tasks on the library's pool (core/parallel.h),
 * item k into its own plane, code and error. */
typedef struct load_job {
    mc_batch_load_fn load;
    void *user;
    int start, R;
    size_t plane;
    float *chw;
    mc_err *errs;
    int *codes;
} load_job;

static void load_items(void *arg, int k0, int k1) {
    const load_job *j = arg;
    for (int k = k0; k < k1; k++) {
        mc_err_clear(&j->errs[k]);
        j->codes[k] = j->load(j->user, j->start + k, j->R, j->chw + j->plane * (size_t)k, &j->errs[k]);
    }
}

int mc_batch_embed_images(mobileclip_ctx *ctx, int n, int batch, mc_batch_load_fn load, void *load_user, float *out,
                          uint8_t *ok, const mc_batch_hooks *hooks, mc_err *e) {
    if (batch <= 0) batch = 16;
    const int R = mobileclip_image_size(ctx), dim = mobileclip_embed_dim(ctx);
    const size_t plane = (size_t)3 * R * R;
    float *chw = malloc(sizeof(float) * plane * (size_t)batch), *emb = malloc(sizeof(float) * (size_t)dim * (size_t)batch);
    mc_err *errs = calloc((size_t)batch, sizeof *errs);
    int *codes = calloc((size_t)batch, sizeof *codes), r = 0;
    if (!chw || !emb || !errs || !codes) r = mc_fail(e, MC_E_NOMEM, "out of memory");
    if (!r && n && hooks && hooks->on_progress) hooks->on_progress(hooks->user, 0, n); /* starts the clock */
    for (int start = 0; start < n && !r; start += batch) {
        int b = n - start < batch ? n - start : batch;
        int threads = mc_ctx_threads_begin(ctx); /* the context's --threads for decoding too */
        load_job lj = {load, load_user, start, R, plane, chw, errs, codes};
        mc_parallel_for(b, 1, load_items, &lj);
        mc_ctx_threads_end(threads);
        /* move the good items together, in order */
        int good = 0;
        for (int k = 0; k < b && !r; k++) {
            if (codes[k] == MC_E_NOMEM) r = mc_fail(e, MC_E_NOMEM, "%s", errs[k].msg);
            else if (codes[k] && !ok) r = mc_fail(e, codes[k], "%s", errs[k].msg);
            else if (codes[k]) {
                ok[start + k] = 0;
                if (hooks && hooks->on_skip) hooks->on_skip(hooks->user, start + k, errs[k].msg);
            } else {
                if (good != k) memmove(chw + plane * (size_t)good, chw + plane * (size_t)k, sizeof(float) * plane);
                good++;
            }
        }
        if (!r && good && mobileclip_encode_images(ctx, chw, good, emb, 1))
            r = mc_fail(e, MC_E_MODEL, "%s", mobileclip_last_error(ctx));
        for (int k = 0, g = 0; k < b && !r; k++) {
            float *dst = out + (size_t)(start + k) * dim;
            if (codes[k]) memset(dst, 0, sizeof(float) * (size_t)dim);
            else {
                memcpy(dst, emb + (size_t)g++ * dim, sizeof(float) * (size_t)dim);
                if (ok) ok[start + k] = 1;
            }
        }
        if (!r && hooks && hooks->on_progress) hooks->on_progress(hooks->user, start + b, n);
    }
    free(chw), free(emb), free(errs), free(codes);
    return r;
}

int mc_batch_embed_texts(mobileclip_ctx *ctx, const char *const *texts, int n, float *out,
                         const mc_batch_hooks *hooks, mc_err *e) {
    const int chunk = 256, dim = mobileclip_embed_dim(ctx);
    if (n && hooks && hooks->on_progress) hooks->on_progress(hooks->user, 0, n);
    for (int i = 0; i < n; i += chunk) {
        int b = n - i < chunk ? n - i : chunk;
        if (mobileclip_encode_texts(ctx, texts + i, b, out + (size_t)i * dim, 1))
            return mc_fail(e, MC_E_MODEL, "%s", mobileclip_last_error(ctx));
        if (hooks && hooks->on_progress) hooks->on_progress(hooks->user, i + b, n);
    }
    return 0;
}
