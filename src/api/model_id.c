/* mobileclip_model_id: an identity of a checkpoint's weights, independent of the file format
 * (torch.save or safetensors) and of which towers are loaded.
 *
 *   id = SHA-256 over the floating-point tensors sorted by name (strcmp) of
 *        name '\0' | ndim (u32 LE) | shape (i64 LE each) | XXH3-128(values as float32 LE, row-major)
 *        (the 128-bit hash as its canonical big-endian 16 bytes)
 * XXH3 (Debian libxxhash-dev, used header-only) reads the ~200-600 MB of values at memory speed,
 * where SHA-256 over all of them cost seconds per command; the per-tensor hash guards against
 * accidents, not adversaries. Integer tensors (BatchNorm counters) are not weights. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "api/context.h"
#include "core/parallel.h"
#include "core/sha256.h"

#define XXH_INLINE_ALL
#include <xxhash.h>


static int is_float(mc_dtype t) {
    return t == MC_DTYPE_F32 || t == MC_DTYPE_F16 || t == MC_DTYPE_BF16 || t == MC_DTYPE_F64;
}

/* Digest of one tensor's values as contiguous float32. */
static int tensor_digest(const mc_tensor *t, uint8_t out[16]) {
    int64_t n = mc_tensor_numel(t);
    float *tmp = NULL;
    const void *data = t->data;
    if (!(t->dtype == MC_DTYPE_F32 && mc_tensor_is_contiguous(t))) {
        if (!(tmp = malloc(sizeof(float) * (size_t)(n ? n : 1)))) return -1;
        mc_tensor_to_f32(t, tmp);
        data = tmp;
    }
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(data, (size_t)n * 4));
    memcpy(out, c.digest, 16);
    free(tmp);
    return 0;
}

/* The tensors' digests as tasks on the library's pool (core/parallel.h), each into its slot. */
typedef struct digest_job {
    const mc_tensor_map *m;
    const int *order;
    uint8_t (*digests)[16];
    _Atomic int failed;
} digest_job;

static void digest_items(void *arg, int i0, int i1) {
    digest_job *j = arg;
    for (int i = i0; i < i1; i++)
        if (tensor_digest(&j->m->items[j->order[i]].t, j->digests[i])) atomic_store(&j->failed, 1);
}

int mc_model_id_of_map(const mc_tensor_map *m, uint8_t id[32], mc_err *e) {
    int *order = malloc(sizeof(int) * (size_t)(m->count ? m->count : 1));
    uint8_t (*digests)[16] = malloc(16 * (size_t)(m->count ? m->count : 1));
    if (!order || !digests) {
        free(order), free(digests);
        return mc_fail(e, MC_E_NOMEM, "out of memory");
    }
    int n = 0, failed = 0;
    for (int i = 0; i < m->count; i++)
        if (is_float(m->items[i].t.dtype)) order[n++] = i;
    for (int i = 1; i < n; i++) /* insertion sort by name: ~2000 tensors, once per run */
        for (int j = i; j > 0 && strcmp(m->items[order[j - 1]].name, m->items[order[j]].name) > 0; j--) {
            int t = order[j]; order[j] = order[j - 1]; order[j - 1] = t;
        }
    digest_job dj = {m, order, digests, 0};
    mc_parallel_for(n, 1, digest_items, &dj);
    failed = atomic_load(&dj.failed);
    if (!failed) {
        mc_sha256 h;
        mc_sha256_init(&h);
        for (int i = 0; i < n; i++) {
            const mc_named_tensor *it = &m->items[order[i]];
            uint32_t nd = (uint32_t)it->t.ndim;
            mc_sha256_update(&h, it->name, strlen(it->name) + 1);
            mc_sha256_update(&h, &nd, 4);
            mc_sha256_update(&h, it->t.shape, sizeof(int64_t) * (size_t)it->t.ndim);
            mc_sha256_update(&h, digests[i], 16);
        }
        mc_sha256_final(&h, id);
    }
    free(order), free(digests);
    return failed ? mc_fail(e, MC_E_NOMEM, "out of memory") : 0;
}

/* With both towers loaded the store holds every tensor of the checkpoint (as float32), so the
 * identity is computed from it on demand; a context that loaded one tower computed it from the
 * whole checkpoint at load (api/context.c), so image-only and text-only contexts of one
 * checkpoint agree. */
int mobileclip_model_id(mobileclip_ctx *ctx, uint8_t id[32]) {
    if (!ctx) return MC_E_ARG;
    if (!id) return mc_fail(&ctx->err, MC_E_ARG, "model_id: NULL output");
    if (!ctx->has_model_id && ctx->model.mapping)
        return mc_fail(&ctx->err, MC_E_UNSUPPORTED, "%s: the converted model records no model identity",
                       mc_clip_mapping_path(&ctx->model));
    if (!ctx->has_model_id) {
        mc_tensor_map views;
        int r = mc_param_store_as_map(&ctx->model.store, &views, &ctx->err);
        if (r) return r;
        int threads = mc_ctx_threads_begin(ctx);
        r = mc_model_id_of_map(&views, ctx->model_id, &ctx->err);
        mc_ctx_threads_end(threads);
        mc_tensor_map_free(&views);
        if (r) return r;
        ctx->has_model_id = 1;
    }
    memcpy(id, ctx->model_id, 32);
    return 0;
}
