#include "io/torch_writer.h"
#include "io/atomic_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define ALIGN 64          /* torch aligns member data to 64 bytes */
#define PREFIX "archive"

/* ---- a growable byte buffer ---- */

typedef struct bytes {
    unsigned char *p;
    size_t n, cap;
    int oom;
} bytes;

static void put(bytes *b, const void *src, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) { b->oom = 1; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void put1(bytes *b, unsigned v) { unsigned char c = (unsigned char)v; put(b, &c, 1); }
static void putle(bytes *b, uint64_t v, int n) {
    unsigned char t[8];
    for (int i = 0; i < n; i++) t[i] = (unsigned char)(v >> (8 * i));
    put(b, t, (size_t)n);
}

/* ---- pickle ---- */

static void pk_str(bytes *b, const char *s) {
    size_t n = strlen(s);
    put1(b, 'X'); /* BINUNICODE */
    putle(b, n, 4);
    put(b, s, n);
}

static void pk_int(bytes *b, int64_t v) {
    if (v >= 0 && v < 256) { put1(b, 'K'); put1(b, (unsigned)v); }
    else if (v >= 0 && v < 65536) { put1(b, 'M'); putle(b, (uint64_t)v, 2); }
    else if (v >= INT32_MIN && v <= INT32_MAX) { put1(b, 'J'); putle(b, (uint64_t)v, 4); }
    else { put1(b, 0x8a); put1(b, 8); putle(b, (uint64_t)v, 8); } /* LONG1, two's complement */
}

static void pk_global(bytes *b, const char *module, const char *name) {
    put1(b, 'c');
    put(b, module, strlen(module));
    put1(b, '\n');
    put(b, name, strlen(name));
    put1(b, '\n');
}

static const char *storage_name(mc_dtype t) {
    static const char *names[MC_DTYPE_COUNT] = {
        [MC_DTYPE_F32] = "FloatStorage", [MC_DTYPE_F16] = "HalfStorage", [MC_DTYPE_BF16] = "BFloat16Storage",
        [MC_DTYPE_F64] = "DoubleStorage", [MC_DTYPE_I64] = "LongStorage", [MC_DTYPE_I32] = "IntStorage",
        [MC_DTYPE_I16] = "ShortStorage", [MC_DTYPE_I8] = "CharStorage", [MC_DTYPE_U8] = "ByteStorage",
        [MC_DTYPE_BOOL] = "BoolStorage",
    };
    return (unsigned)t < MC_DTYPE_COUNT ? names[t] : NULL;
}

/* OrderedDict([(name, _rebuild_tensor_v2(storage_i, 0, size, contiguous stride, False, OrderedDict()))]) */
static void build_pickle(bytes *b, const mc_tensor_map *m) {
    put1(b, 0x80); put1(b, 2);                       /* PROTO 2 */
    pk_global(b, "collections", "OrderedDict");
    put1(b, 'q'); put1(b, 0);                        /* memo 0 = OrderedDict */
    put1(b, ')'); put1(b, 'R');                      /* OrderedDict() */
    put1(b, '(');                                    /* MARK for SETITEMS */
    for (int i = 0; i < m->count; i++) {
        const mc_tensor *t = &m->items[i].t;
        char key[24];
        snprintf(key, sizeof key, "%d", i);
        pk_str(b, m->items[i].name);
        if (i == 0) { pk_global(b, "torch._utils", "_rebuild_tensor_v2"); put1(b, 'q'); put1(b, 1); }
        else { put1(b, 'h'); put1(b, 1); }
        put1(b, '(');
        put1(b, '(');
        pk_str(b, "storage");
        pk_global(b, "torch", storage_name(t->dtype));
        pk_str(b, key);
        pk_str(b, "cpu");
        pk_int(b, mc_tensor_numel(t));
        put1(b, 't');
        put1(b, 'Q');                                /* BINPERSID */
        pk_int(b, 0);                                /* storage offset */
        put1(b, '(');
        for (int d = 0; d < t->ndim; d++) pk_int(b, t->shape[d]);
        put1(b, 't');
        put1(b, '(');
        int64_t s = 1, st[MC_MAX_DIMS];
        for (int d = t->ndim - 1; d >= 0; d--) { st[d] = s; s *= t->shape[d]; }
        for (int d = 0; d < t->ndim; d++) pk_int(b, st[d]);
        put1(b, 't');
        put1(b, 0x89);                               /* requires_grad = False */
        put1(b, 'h'); put1(b, 0); put1(b, ')'); put1(b, 'R'); /* backward_hooks = OrderedDict() */
        put1(b, 't');
        put1(b, 'R');
    }
    put1(b, 'u');                                    /* SETITEMS */
    put1(b, '.');                                    /* STOP */
}

/* ---- zip ---- */

typedef struct member {
    char name[64];
    uint32_t crc;
    uint64_t size, offset;
} member;

typedef struct writer {
    FILE *f;
    const char *path;
    uint64_t pos;
    member *mem;
    int nmem;
    mc_err *e;
} writer;

static int wr(writer *w, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, w->f) != n)
        return mc_fail(w->e, MC_E_IO, "%s: write failed: %s", w->path, strerror(errno));
    w->pos += n;
    return 0;
}

static int wr_bytes(writer *w, const bytes *b) {
    if (b->oom) return mc_fail(w->e, MC_E_NOMEM, "%s: out of memory", w->path);
    return wr(w, b->p, b->n);
}

static uint32_t crc_update(uint32_t crc, const void *p, size_t n) { return (uint32_t)crc32_z(crc, p, (z_size_t)n); }

/* Local header with a ZIP64 extra when needed and an "FB" padding extra that puts the
 * data at a multiple of ALIGN, as torch's writer does. */
static int begin_member(writer *w, member *mb) {
    int z64 = mb->size >= 0xffffffffu;
    size_t nlen = strlen(mb->name);
    uint64_t start = w->pos + 30 + nlen + (z64 ? 20 : 0) + 4;
    size_t pad = (size_t)((ALIGN - start % ALIGN) % ALIGN);
    bytes h = {0};
    putle(&h, 0x04034b50u, 4);
    putle(&h, z64 ? 45 : 20, 2);     /* version needed */
    putle(&h, 0x0800, 2);            /* flags: UTF-8 names */
    putle(&h, 0, 2);                 /* stored */
    putle(&h, 0, 2); putle(&h, 0x21, 2); /* time 00:00, date 1980-01-01 */
    putle(&h, mb->crc, 4);
    putle(&h, z64 ? 0xffffffffu : mb->size, 4);
    putle(&h, z64 ? 0xffffffffu : mb->size, 4);
    putle(&h, nlen, 2);
    putle(&h, (z64 ? 20 : 0) + 4 + pad, 2);
    put(&h, mb->name, nlen);
    if (z64) { putle(&h, 1, 2); putle(&h, 16, 2); putle(&h, mb->size, 8); putle(&h, mb->size, 8); }
    putle(&h, 0x4246, 2);            /* "FB" */
    putle(&h, pad, 2);
    for (size_t i = 0; i < pad; i++) put1(&h, 'Z');
    mb->offset = w->pos;
    int r = wr_bytes(w, &h);
    free(h.p);
    return r;
}

static int add_member(writer *w, const char *name, uint64_t size, uint32_t crc, member **out) {
    member *mb = &w->mem[w->nmem++];
    snprintf(mb->name, sizeof mb->name, "%s/%s", PREFIX, name);
    mb->size = size;
    mb->crc = crc;
    *out = mb;
    return begin_member(w, mb);
}

static int write_small(writer *w, const char *name, const void *data, size_t n) {
    member *mb;
    int r = add_member(w, name, n, crc_update(0, data, n), &mb);
    return r ? r : wr(w, data, n);
}

/* Contiguous bytes of a tensor: its own memory when already contiguous, else a gathered copy. */
static const void *tensor_bytes(const mc_tensor *t, size_t *n, void **owned) {
    size_t es = mc_dtype_size(t->dtype);
    int64_t numel = mc_tensor_numel(t);
    *n = (size_t)numel * es;
    *owned = NULL;
    if (numel == 0) return "";
    if (mc_tensor_is_contiguous(t)) return t->data;
    unsigned char *buf = malloc(*n);
    if (!buf) return NULL;
    int64_t idx[MC_MAX_DIMS] = {0};
    for (int64_t i = 0; i < numel; i++) {
        int64_t off = 0;
        for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
        memcpy(buf + (size_t)i * es, (const unsigned char *)t->data + off * (int64_t)es, es);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
    *owned = buf;
    return buf;
}

static int write_central(writer *w) {
    bytes c = {0};
    uint64_t cd_start = w->pos;
    for (int i = 0; i < w->nmem; i++) {
        const member *mb = &w->mem[i];
        int zs = mb->size >= 0xffffffffu, zo = mb->offset >= 0xffffffffu;
        size_t nlen = strlen(mb->name), xlen = zs || zo ? 4 + 16 * (size_t)zs + 8 * (size_t)zo : 0;
        putle(&c, 0x02014b50u, 4);
        putle(&c, 0x031e, 2);                     /* made by: unix, 3.0 */
        putle(&c, zs || zo ? 45 : 20, 2);
        putle(&c, 0x0800, 2);
        putle(&c, 0, 2);
        putle(&c, 0, 2); putle(&c, 0x21, 2);
        putle(&c, mb->crc, 4);
        putle(&c, zs ? 0xffffffffu : mb->size, 4);
        putle(&c, zs ? 0xffffffffu : mb->size, 4);
        putle(&c, nlen, 2);
        putle(&c, xlen, 2);
        putle(&c, 0, 2); putle(&c, 0, 2); putle(&c, 0, 2); /* comment, disk, internal attributes */
        putle(&c, 0100644u << 16, 4);             /* external attributes: -rw-r--r-- */
        putle(&c, zo ? 0xffffffffu : mb->offset, 4);
        put(&c, mb->name, nlen);
        if (xlen) {
            putle(&c, 1, 2);
            putle(&c, xlen - 4, 2);
            if (zs) { putle(&c, mb->size, 8); putle(&c, mb->size, 8); }
            if (zo) putle(&c, mb->offset, 8);
        }
    }
    uint64_t cd_size = c.n, eocd64 = cd_start + cd_size, n = (uint64_t)w->nmem;
    /* ZIP64 end record and locator (always, like torch), then the classic end record. */
    putle(&c, 0x06064b50u, 4);
    putle(&c, 44, 8);
    putle(&c, 0x031e, 2);
    putle(&c, 45, 2);
    putle(&c, 0, 4); putle(&c, 0, 4);
    putle(&c, n, 8); putle(&c, n, 8);
    putle(&c, cd_size, 8);
    putle(&c, cd_start, 8);
    putle(&c, 0x07064b50u, 4);
    putle(&c, 0, 4);
    putle(&c, eocd64, 8);
    putle(&c, 1, 4);
    putle(&c, 0x06054b50u, 4);
    putle(&c, 0, 2); putle(&c, 0, 2);
    putle(&c, n >= 0xffff ? 0xffff : n, 2);
    putle(&c, n >= 0xffff ? 0xffff : n, 2);
    putle(&c, cd_size >= 0xffffffffu ? 0xffffffffu : cd_size, 4);
    putle(&c, cd_start >= 0xffffffffu ? 0xffffffffu : cd_start, 4);
    putle(&c, 0, 2);
    int r = wr_bytes(w, &c);
    free(c.p);
    return r;
}

static int write_all(writer *w, const mc_tensor_map *m) {
    for (int i = 0; i < m->count; i++) {
        const mc_tensor *t = &m->items[i].t;
        if (!storage_name(t->dtype) || t->ndim < 0 || t->ndim > MC_MAX_DIMS)
            return mc_fail(w->e, MC_E_ARG, "%s: tensor '%s' has an unsupported dtype or rank", w->path, m->items[i].name);
        for (int d = 0; d < t->ndim; d++)
            if (t->shape[d] < 0) return mc_fail(w->e, MC_E_ARG, "%s: tensor '%s' has a negative size", w->path, m->items[i].name);
        if (mc_tensor_numel(t) && !t->data)
            return mc_fail(w->e, MC_E_ARG, "%s: tensor '%s' has no data", w->path, m->items[i].name);
    }
    bytes pk = {0};
    build_pickle(&pk, m);
    if (pk.oom) { free(pk.p); return mc_fail(w->e, MC_E_NOMEM, "%s: out of memory", w->path); }
    int r = write_small(w, "data.pkl", pk.p, pk.n);
    free(pk.p);
    if (!r) r = write_small(w, "byteorder", "little", 6);
    for (int i = 0; i < m->count && !r; i++) {
        size_t n;
        void *owned;
        const void *data = tensor_bytes(&m->items[i].t, &n, &owned);
        if (!data) return mc_fail(w->e, MC_E_NOMEM, "%s: out of memory", w->path);
        /* zlib's crc32 takes uInt lengths: feed large tensors in pieces */
        uint32_t crc = 0;
        for (size_t k = 0; k < n; k += (size_t)1 << 30)
            crc = crc_update(crc, (const unsigned char *)data + k, n - k < ((size_t)1 << 30) ? n - k : (size_t)1 << 30);
        char name[32];
        snprintf(name, sizeof name, "data/%d", i);
        member *mb;
        r = add_member(w, name, n, crc, &mb);
        if (!r) r = wr(w, data, n);
        free(owned);
    }
    if (!r) r = write_small(w, "version", "3\n", 2);
    if (!r) r = write_central(w);
    return r;
}

int mc_torch_save_fp(FILE *f, const char *name, const mc_tensor_map *m, mc_err *e) {
    writer w = {.f = f, .path = name ? name : "(stream)", .e = e};
    w.mem = malloc(((size_t)m->count + 3) * sizeof *w.mem);
    if (!w.mem) return mc_fail(e, MC_E_NOMEM, "%s: out of memory", w.path);
    int r = write_all(&w, m);
    if (!r && fflush(f) != 0) r = mc_fail(e, MC_E_IO, "%s: write failed: %s", w.path, strerror(errno));
    free(w.mem);
    return r;
}

int mc_torch_save(const char *path, const mc_tensor_map *m, mc_err *e) {
    mc_atomic_file af;
    int r = mc_atomic_open(&af, path, e);
    if (r) return r;
    if ((r = mc_torch_save_fp(af.f, path, m, e))) {
        mc_atomic_abort(&af);
        return r;
    }
    return mc_atomic_commit(&af, e);
}
