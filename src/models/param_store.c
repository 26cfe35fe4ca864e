/* The parameter store; see param_store.h. */
#include "models/param_store.h"

#include <sys/mman.h>
#include <unistd.h>

#include <stdlib.h>
#include <string.h>

#include "io/torch_writer.h"

#define ALIGN_FLOATS 16 /* 64-byte entries, so every parameter can be loaded with aligned SIMD */

static const char *src_name(const mc_param_store *s) { return s->source ? s->source : "parameter store"; }

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

unsigned mc_param_flags_for(const char *name, int ndim) {
    if (ends_with(name, "num_batches_tracked")) return MC_PARAM_COUNTER | MC_PARAM_BUFFER | MC_PARAM_NO_DECAY;
    if (ends_with(name, "running_mean") || ends_with(name, "running_var")) return MC_PARAM_BUFFER | MC_PARAM_NO_DECAY;
    /* open_clip main.py: exclude = p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n */
    if (ndim < 2 || strstr(name, "bn") || strstr(name, "ln") || strstr(name, "bias") || strstr(name, "logit_scale"))
        return MC_PARAM_NO_DECAY;
    return 0;
}

void mc_param_store_init(mc_param_store *s) { memset(s, 0, sizeof *s); }

void mc_param_store_free(mc_param_store *s) {
    if (!s) return;
    for (int i = 0; i < s->count; i++) free(s->params[i].name);
    free(s->params);
    free(s->data);
    free(s->grad);
    free(s->m);
    free(s->v);
    free(s->counters);
    free(s->index);
    free(s->source);
    memset(s, 0, sizeof *s);
}

/* ---- name index (FNV-1a, linear probing, load <= 1/2) ---- */

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int index_slot(const mc_param_store *s, const char *name) {
    size_t mask = (size_t)s->index_cap - 1, i = (size_t)hash_name(name) & mask;
    while (s->index[i] >= 0 && strcmp(s->params[s->index[i]].name, name)) i = (i + 1) & mask;
    return (int)i;
}

static int index_grow(mc_param_store *s) {
    int cap = s->index_cap ? s->index_cap * 2 : 256;
    int *idx = malloc((size_t)cap * sizeof *idx);
    if (!idx) return MC_E_NOMEM;
    for (int i = 0; i < cap; i++) idx[i] = -1;
    free(s->index);
    s->index = idx;
    s->index_cap = cap;
    for (int i = 0; i < s->count; i++) s->index[index_slot(s, s->params[i].name)] = i;
    return 0;
}

const mc_param *mc_param_store_find(const mc_param_store *s, const char *name) {
    if (!s->index_cap) return NULL;
    int k = s->index[index_slot(s, name)];
    return k >= 0 ? &s->params[k] : NULL;
}

float *mc_param_store_data(const mc_param_store *s, const char *name) {
    const mc_param *p = mc_param_store_find(s, name);
    return p && s->data && !(p->flags & MC_PARAM_COUNTER) ? s->data + p->offset : NULL;
}

const mc_param *mc_param_store_owner(const mc_param_store *s, const float *p) {
    if (!s->data || p < s->data || p >= s->data + s->total) return NULL;
    size_t off = (size_t)(p - s->data);
    for (int i = 0; i < s->count; i++) {
        const mc_param *q = &s->params[i];
        if (!(q->flags & MC_PARAM_COUNTER) && off >= q->offset && off < q->offset + q->numel) return q;
    }
    return NULL;
}

/* ---- layout ---- */

int mc_param_store_declare(mc_param_store *s, const char *name, int ndim, const int64_t *shape, mc_err *e) {
    if (s->data) return mc_fail(e, MC_E_ARG, "%s: entry '%s' declared after allocation", src_name(s), name);
    if (ndim < 0 || ndim > MC_MAX_DIMS)
        return mc_fail(e, MC_E_MODEL, "%s: tensor '%s' has %d dimensions (at most %d)", src_name(s), name, ndim,
                       MC_MAX_DIMS);
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0 || shape[d] > ((int64_t)1 << 40))
            return mc_fail(e, MC_E_MODEL, "%s: tensor '%s' has an implausible size %lld", src_name(s), name,
                           (long long)shape[d]);
        numel *= (size_t)shape[d];
        if (numel > ((size_t)1 << 40))
            return mc_fail(e, MC_E_MODEL, "%s: tensor '%s' is implausibly large", src_name(s), name);
    }
    unsigned flags = mc_param_flags_for(name, ndim);
    if ((flags & MC_PARAM_COUNTER) && numel != 1)
        return mc_fail(e, MC_E_MODEL, "%s: counter '%s' is not a scalar", src_name(s), name);
    if (s->count * 2 >= s->index_cap && index_grow(s)) return mc_fail(e, MC_E_NOMEM, "out of memory");
    if (mc_param_store_find(s, name)) return mc_fail(e, MC_E_MODEL, "%s: tensor '%s' twice", src_name(s), name);
    if (s->count == s->cap) {
        int cap = s->cap ? s->cap * 2 : 256;
        mc_param *p = realloc(s->params, (size_t)cap * sizeof *p);
        if (!p) return mc_fail(e, MC_E_NOMEM, "out of memory");
        s->params = p;
        s->cap = cap;
    }
    mc_param *p = &s->params[s->count];
    memset(p, 0, sizeof *p);
    if (!(p->name = strdup(name))) return mc_fail(e, MC_E_NOMEM, "out of memory");
    p->ndim = ndim;
    for (int d = 0; d < ndim; d++) p->shape[d] = shape[d];
    p->numel = numel;
    p->flags = flags;
    if (flags & MC_PARAM_COUNTER) {
        p->offset = (size_t)s->ncounters++;
    } else {
        p->offset = s->total;
        s->total += (numel + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
    }
    s->index[index_slot(s, name)] = s->count;
    s->count++;
    return 0;
}

static float *arena(size_t n) {
    void *p = NULL;
    size_t bytes = (n ? n : 1) * sizeof(float);
    if (posix_memalign(&p, 64, bytes)) return NULL;
    memset(p, 0, bytes);
    return p;
}

int mc_param_store_alloc(mc_param_store *s, mc_err *e) {
    if (s->data) return 0;
    s->data = arena(s->total);
    s->counters = calloc((size_t)(s->ncounters ? s->ncounters : 1), sizeof *s->counters);
    if (!s->data || !s->counters)
        return mc_fail(e, MC_E_NOMEM, "%s: out of memory for %zu parameters", src_name(s), s->total);
    return 0;
}

int mc_param_store_alloc_grad(mc_param_store *s, mc_err *e) {
    if (!s->grad && !(s->grad = arena(s->total)))
        return mc_fail(e, MC_E_NOMEM, "%s: out of memory for the gradients", src_name(s));
    return 0;
}

int mc_param_store_alloc_adam(mc_param_store *s, mc_err *e) {
    if (!s->m && !(s->m = arena(s->total))) return mc_fail(e, MC_E_NOMEM, "%s: out of memory for AdamW", src_name(s));
    if (!s->v && !(s->v = arena(s->total))) return mc_fail(e, MC_E_NOMEM, "%s: out of memory for AdamW", src_name(s));
    return 0;
}

/* ---- values ---- */

static int is_float(mc_dtype t) {
    return t == MC_DTYPE_F32 || t == MC_DTYPE_F16 || t == MC_DTYPE_BF16 || t == MC_DTYPE_F64;
}
static int is_int(mc_dtype t) {
    return t == MC_DTYPE_I64 || t == MC_DTYPE_I32 || t == MC_DTYPE_I16 || t == MC_DTYPE_I8 || t == MC_DTYPE_U8;
}

/* Copies tensor t into entry p (shapes already checked). */
static int copy_in(mc_param_store *s, const mc_param *p, const char *src, const mc_tensor *t, mc_err *e) {
    if (p->flags & MC_PARAM_COUNTER) {
        if (!is_int(t->dtype))
            return mc_fail(e, MC_E_MODEL, "%s: counter '%s' has dtype %s, expected an integer type", src, p->name,
                           mc_dtype_name(t->dtype));
        int64_t v = 0;
        if (t->dtype == MC_DTYPE_I64) memcpy(&v, t->data, sizeof v); /* exact beyond 2^53 */
        else v = (int64_t)mc_tensor_get_f64(t, 0);
        s->counters[p->offset] = v;
        return 0;
    }
    if (!is_float(t->dtype))
        return mc_fail(e, MC_E_MODEL, "%s: tensor '%s' has dtype %s, expected a floating-point type", src, p->name,
                       mc_dtype_name(t->dtype));
    mc_tensor_to_f32(t, s->data + p->offset);
    return 0;
}

static int same_shape(const mc_param *p, const mc_tensor *t) {
    if (p->ndim != t->ndim) return 0;
    for (int d = 0; d < p->ndim; d++)
        if (p->shape[d] != t->shape[d]) return 0;
    return 1;
}

static int set_source(mc_param_store *s, const char *source, mc_err *e) {
    if (!source || (s->source && !strcmp(s->source, source))) return 0;
    char *c = strdup(source);
    if (!c) return mc_fail(e, MC_E_NOMEM, "out of memory");
    free(s->source);
    s->source = c;
    return 0;
}

static int wanted(const char *name, const char *const *prefixes) {
    if (!prefixes) return 1;
    for (; *prefixes; prefixes++)
        if (!strncmp(name, *prefixes, strlen(*prefixes))) return 1;
    return 0;
}

int mc_param_store_from_map(mc_param_store *s, const mc_tensor_map *m, const char *const *prefixes, mc_err *e) {
    int r = set_source(s, m->source, e);
    for (int i = 0; i < m->count && !r; i++) {
        const mc_named_tensor *it = &m->items[i];
        if (!wanted(it->name, prefixes)) continue;
        r = mc_param_store_declare(s, it->name, it->t.ndim, it->t.shape, e);
    }
    if (!r) r = mc_param_store_alloc(s, e);
    /* a declaring map holds only zeros, which the fresh arena already is */
    for (int i = 0; i < m->count && !r && !m->declare; i++) {
        const mc_named_tensor *it = &m->items[i];
        if (!wanted(it->name, prefixes)) continue;
        r = copy_in(s, mc_param_store_find(s, it->name), src_name(s), &it->t, e);
    }
    if (r) mc_param_store_free(s);
    return r;
}

/* After its copy, t's pages of a mapped checkpoint are not needed: they leave the process (a
 * read-only private file mapping re-reads a page from the file if it is touched again), so the
 * peak during a load is the store plus a page or two, not the whole file plus the store. */
static void release_source(const mc_tensor_map *m, const mc_tensor *t) {
    if (!m->map_addr || !t->data || !mc_tensor_is_contiguous(t)) return;
    uintptr_t lo = (uintptr_t)t->data, hi = lo + (uintptr_t)mc_tensor_numel(t) * mc_dtype_size(t->dtype);
    uintptr_t a = (uintptr_t)m->map_addr, b = a + m->map_len, pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    if (lo < a || hi > b || !pg) return;
    lo = (lo + pg - 1) / pg * pg;
    hi = hi / pg * pg;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

int mc_param_store_load_map(mc_param_store *s, const mc_tensor_map *m, const char *const *prefixes, mc_err *e) {
    const char *src = m->source ? m->source : "checkpoint";
    if (!s->data) return mc_fail(e, MC_E_ARG, "%s: store not allocated before loading", src);
    /* missing and mis-shaped first (in store order), then unexpected */
    for (int i = 0; i < s->count; i++) {
        const mc_param *p = &s->params[i];
        const mc_tensor *t = mc_tensor_map_find(m, p->name);
        if (!t) {
            if (p->flags & MC_PARAM_COUNTER) { s->counters[p->offset] = 0; continue; }
            return mc_fail(e, MC_E_MODEL, "%s: missing tensor '%s'", src, p->name);
        }
        if (!same_shape(p, t)) {
            char a[128], b[128];
            return mc_fail(e, MC_E_MODEL, "%s: tensor '%s' has shape %s, expected %s", src, p->name,
                           mc_shape_str(t->shape, t->ndim, a, sizeof a), mc_shape_str(p->shape, p->ndim, b, sizeof b));
        }
        int r = copy_in(s, p, src, t, e);
        if (r) return r;
        release_source(m, t);
    }
    for (int i = 0; i < m->count; i++)
        if (wanted(m->items[i].name, prefixes) && !mc_param_store_find(s, m->items[i].name))
            return mc_fail(e, MC_E_MODEL, "%s: unexpected tensor '%s'", src, m->items[i].name);
    return set_source(s, m->source, e);
}

int mc_param_store_as_map(const mc_param_store *s, mc_tensor_map *out, mc_err *e) {
    mc_tensor_map_init(out);
    if (!s->data) return mc_fail(e, MC_E_ARG, "%s: store not allocated", src_name(s));
    if (s->source && !(out->source = strdup(s->source))) return mc_fail(e, MC_E_NOMEM, "out of memory");
    for (int i = 0; i < s->count; i++) {
        const mc_param *p = &s->params[i];
        mc_tensor t = p->flags & MC_PARAM_COUNTER ? mc_tensor_view(MC_DTYPE_I64, s->counters + p->offset, p->ndim, p->shape)
                                                  : mc_tensor_view(MC_DTYPE_F32, s->data + p->offset, p->ndim, p->shape);
        t.storage_numel = (int64_t)p->numel;
        int r = mc_tensor_map_add(out, p->name, &t, e);
        if (r) {
            mc_tensor_map_free(out);
            return r;
        }
    }
    return 0;
}

int mc_param_store_save(const mc_param_store *s, const char *path, mc_err *e) {
    mc_tensor_map m;
    int r = mc_param_store_as_map(s, &m, e);
    if (!r) r = mc_torch_save(path, &m, e);
    mc_tensor_map_free(&m);
    return r;
}
