#include "io/torch_checkpoint.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/mapped_file.h"
#include "io/pickle.h"
#include "io/zip.h"

#define MAX_DEPTH 64      /* nesting of dicts/lists below the root */
#define MAX_CALL_NESTING 8 /* Parameter(rebuild_from_type(rebuild_tensor(...))) */

/* Every legacy file starts with a small pickle of the magic number 0x1950a86a20f9469cfc6c
 * (a LONG1 of 10 bytes; protocol 4+ adds a FRAME before it). */
static const unsigned char legacy_magic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

int mc_torch_sniff_legacy(const void *buf, size_t len) {
    const unsigned char *b = buf;
    if (len < 14 || b[0] != 0x80 || b[1] < 2 || b[1] > 5) return 0;
    mc_pickle p;
    if (mc_pickle_parse(buf, len < 64 ? len : 64, "", &p, NULL)) return 0;
    int ok = p.root->type == MC_PK_BIGINT && p.root->len == 10 && memcmp(p.root->s, legacy_magic, 10) == 0;
    mc_pickle_free(&p);
    return ok;
}

typedef struct storage {
    const char *key;
    size_t klen;
    mc_dtype dtype;
    int64_t numel;
    const unsigned char *data; /* NULL until loaded */
    int loaded;
    int id;                    /* -1 until a tensor uses it */
} storage;

typedef struct ctx {
    const char *name;
    const mc_torch_options *opt;
    mc_tensor_map *m;
    mc_err *e;
    const mc_zip *zip;         /* zip mode */
    const char *prefix;
    size_t prefix_len;
    storage *st;
    int nst, capst;
    int *hash;                 /* open addressing: index + 1 into st, 0 = empty */
    size_t hcap;
    int next_id;
    size_t budget;             /* nodes a walk may still visit (shared references can blow up) */
    char *path[MAX_DEPTH];
    int depth;
    char *nbuf;                /* joined name */
    size_t ncap;
    int in_tensor;             /* messages name the tensor nbuf */
} ctx;

/* "<file>: [tensor '<name>': ]<reason>" */
static int cfail(ctx *c, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int cfail(ctx *c, int code, const char *fmt, ...) {
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (c->in_tensor) return mc_fail(c->e, code, "%s: tensor '%.200s': %s", c->name, c->nbuf, what);
    return mc_fail(c->e, code, "%s: %s", c->name, what);
}

/* ---- storages ---- */

static const struct { const char *name; mc_dtype t; } storage_types[] = {
    {"FloatStorage", MC_DTYPE_F32}, {"HalfStorage", MC_DTYPE_F16}, {"BFloat16Storage", MC_DTYPE_BF16},
    {"DoubleStorage", MC_DTYPE_F64}, {"LongStorage", MC_DTYPE_I64}, {"IntStorage", MC_DTYPE_I32},
    {"ShortStorage", MC_DTYPE_I16}, {"CharStorage", MC_DTYPE_I8}, {"ByteStorage", MC_DTYPE_U8},
    {"BoolStorage", MC_DTYPE_BOOL}, {"UntypedStorage", MC_DTYPE_U8},
};

static int storage_dtype(const mc_pk_obj *g, mc_dtype *t) {
    if (!g || g->type != MC_PK_GLOBAL) return -1;
    if (!((g->len == 5 && memcmp(g->s, "torch", 5) == 0) || (g->len == 10 && memcmp(g->s, "torch.cuda", 10) == 0)))
        return -1;
    for (size_t i = 0; i < sizeof storage_types / sizeof storage_types[0]; i++)
        if (strlen(storage_types[i].name) == g->len2 && memcmp(g->s2, storage_types[i].name, g->len2) == 0) {
            *t = storage_types[i].t;
            return 0;
        }
    return -1;
}

static uint64_t hash_key(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

static int find_storage(const ctx *c, const char *key, size_t klen) {
    if (!c->hcap) return -1;
    for (size_t h = hash_key(key, klen) & (c->hcap - 1);; h = (h + 1) & (c->hcap - 1)) {
        int k = c->hash[h] - 1;
        if (k < 0) return -1;
        if (c->st[k].klen == klen && memcmp(c->st[k].key, key, klen) == 0) return k;
    }
}

static int add_storage(ctx *c, const storage *s) {
    if (c->nst == c->capst) {
        int cap = c->capst ? c->capst * 2 : 64;
        storage *n = realloc(c->st, (size_t)cap * sizeof *n);
        if (!n) return -1;
        c->st = n;
        c->capst = cap;
    }
    if ((size_t)(c->nst + 1) * 2 > c->hcap) { /* keep the load factor below 1/2 */
        size_t cap = c->hcap ? c->hcap * 2 : 128;
        int *h = calloc(cap, sizeof *h);
        if (!h) return -1;
        for (int k = 0; k < c->nst; k++) {
            size_t i = hash_key(c->st[k].key, c->st[k].klen) & (cap - 1);
            while (h[i]) i = (i + 1) & (cap - 1);
            h[i] = k + 1;
        }
        free(c->hash);
        c->hash = h;
        c->hcap = cap;
    }
    size_t i = hash_key(s->key, s->klen) & (c->hcap - 1);
    while (c->hash[i]) i = (i + 1) & (c->hcap - 1);
    c->st[c->nst] = *s;
    c->hash[i] = ++c->nst;
    return c->nst - 1;
}

/* Points the storage at data[0..numel) of its dtype, copying when the data is not
 * aligned to the element size (then the copy is owned by the map). */
static int set_storage_data(ctx *c, storage *s, const unsigned char *data) {
    size_t es = mc_dtype_size(s->dtype);
    if ((uintptr_t)data % es != 0) {
        size_t n = (size_t)s->numel * es;
        unsigned char *copy = mc_tensor_map_own(c->m, malloc(n ? n : 1));
        if (!copy) return cfail(c, MC_E_NOMEM, "out of memory copying storage '%.*s'", (int)s->klen, s->key);
        memcpy(copy, data, n);
        data = copy;
    }
    s->data = data;
    s->loaded = 1;
    return 0;
}

/* zip mode: the storage lives in the member <prefix>/data/<key>. */
static int load_zip_storage(ctx *c, storage *s) {
    char member[512];
    if (c->prefix_len + 6 + s->klen >= sizeof member)
        return cfail(c, MC_E_FORMAT, "storage key too long");
    snprintf(member, sizeof member, "%.*s/data/%.*s", (int)c->prefix_len, c->prefix, (int)s->klen, s->key);
    if (strlen(member) != c->prefix_len + 6 + s->klen) /* a NUL inside the key */
        return cfail(c, MC_E_FORMAT, "invalid storage key");
    int i = mc_zip_find(c->zip, member);
    if (i < 0) return cfail(c, MC_E_FORMAT, "storage record '%s' is missing from the archive", member);
    const void *data;
    size_t size;
    void *owned;
    int r = mc_zip_read(c->zip, i, &data, &size, &owned, !c->opt->skip_crc, c->e);
    if (r) return r;
    if (owned && !mc_tensor_map_own(c->m, owned))
        return cfail(c, MC_E_NOMEM, "out of memory");
    size_t es = mc_dtype_size(s->dtype);
    if ((uint64_t)s->numel > size / es)
        return cfail(c, MC_E_FORMAT, "storage '%s' holds %zu bytes, too small for %" PRId64 " %s elements",
                       member, size, s->numel, mc_dtype_name(s->dtype));
    return set_storage_data(c, s, data);
}

/* Resolves a persistent id ('storage', torch.<T>Storage, key, location, numel[, view])
 * to a storage index, registering (and in zip mode loading) it on first sight. */
static int get_storage(ctx *c, const mc_pk_obj *persid, int *out) {
    const mc_pk_obj *pid = persid->args;
    mc_dtype dt;
    if (pid->type != MC_PK_TUPLE || pid->count < 5 || !mc_pk_is_str(pid->items[0], "storage") ||
        pid->items[2]->type != MC_PK_STR || pid->items[4]->type != MC_PK_INT || pid->items[4]->i < 0)
        return cfail(c, MC_E_FORMAT, "malformed storage persistent id");
    const mc_pk_obj *key = pid->items[2];
    if (storage_dtype(pid->items[1], &dt)) {
        const mc_pk_obj *g = pid->items[1];
        if (g->type == MC_PK_GLOBAL)
            return cfail(c, MC_E_UNSUPPORTED, "storage '%.*s' has unsupported type %.*s.%.*s",
                           (int)(key->len > 64 ? 64 : key->len), key->s, (int)(g->len > 64 ? 64 : g->len), g->s,
                           (int)(g->len2 > 64 ? 64 : g->len2), g->s2);
        return cfail(c, MC_E_FORMAT, "storage persistent id without a storage type");
    }
    if (pid->count > 5 && pid->items[5]->type != MC_PK_NONE)
        return cfail(c, MC_E_UNSUPPORTED, "storage views (pre-0.4 legacy format) are not supported");
    int k = find_storage(c, key->s, key->len);
    if (k >= 0) {
        if (c->st[k].dtype != dt || c->st[k].numel != pid->items[4]->i)
            return cfail(c, MC_E_FORMAT, "storage '%.*s' is used with different types or sizes",
                           (int)(key->len > 64 ? 64 : key->len), key->s);
        *out = k;
        return 0;
    }
    if ((uint64_t)pid->items[4]->i > ((uint64_t)1 << 60))
        return cfail(c, MC_E_FORMAT, "storage '%.*s' has an absurd size",
                       (int)(key->len > 64 ? 64 : key->len), key->s);
    storage s = {.key = key->s, .klen = key->len, .dtype = dt, .numel = pid->items[4]->i, .id = -1};
    k = add_storage(c, &s);
    if (k < 0) return cfail(c, MC_E_NOMEM, "out of memory");
    if (c->zip) {
        int r = load_zip_storage(c, &c->st[k]);
        if (r) return r;
    }
    *out = k;
    return 0;
}

/* ---- tensors ---- */

static int gname(const mc_pk_obj *f, const char *module, const char *name) { return mc_pk_is_global(f, module, name); }

/* 1: a tensor constructor we rebuild; 2: a tensor constructor we do not support; 0: other. */
static int tensor_call_kind(const mc_pk_obj *o) {
    if (!o || o->type != MC_PK_CALL || !o->func || o->func->type != MC_PK_GLOBAL) return 0;
    const mc_pk_obj *f = o->func;
    if (gname(f, "torch._utils", "_rebuild_tensor_v2") || gname(f, "torch._utils", "_rebuild_tensor") ||
        gname(f, "torch._utils", "_rebuild_parameter") || gname(f, "torch._utils", "_rebuild_parameter_with_state") ||
        gname(f, "torch._tensor", "_rebuild_from_type_v2") || gname(f, "torch._utils", "_rebuild_from_type_v2") ||
        gname(f, "torch.nn.parameter", "Parameter"))
        return 1;
    if ((f->len == 12 && memcmp(f->s, "torch._utils", 12) == 0 && f->len2 > 8 && memcmp(f->s2, "_rebuild_", 9) == 0) ||
        (f->len == 13 && memcmp(f->s, "torch._tensor", 13) == 0 && f->len2 > 8 && memcmp(f->s2, "_rebuild_", 9) == 0))
        return 2;
    return 0;
}

static int tensor_fail(ctx *c, const char *what) { return cfail(c, MC_E_FORMAT, "%s", what); }

static int int_tuple(const mc_pk_obj *o, int64_t *v, int *n) {
    if (!o || (o->type != MC_PK_TUPLE && o->type != MC_PK_LIST)) return -1;
    if (o->count > MC_MAX_DIMS) return -2;
    for (int i = 0; i < o->count; i++) {
        if (o->items[i]->type != MC_PK_INT || o->items[i]->i < 0) return -1;
        v[i] = o->items[i]->i;
    }
    *n = o->count;
    return 0;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, ...) */
static int build_view(ctx *c, const mc_pk_obj *args, mc_tensor *t) {
    if (!args || args->type != MC_PK_TUPLE || args->count < 4) return tensor_fail(c, "malformed _rebuild_tensor arguments");
    const mc_pk_obj *ps = args->items[0], *off = args->items[1];
    if (ps->type != MC_PK_PERSID) return tensor_fail(c, "its storage is not a storage reference");
    if (off->type != MC_PK_INT || off->i < 0) return tensor_fail(c, "bad storage offset");
    int64_t stride[MC_MAX_DIMS];
    int ns = 0, r;
    memset(t, 0, sizeof *t);
    if ((r = int_tuple(args->items[2], t->shape, &t->ndim)) || int_tuple(args->items[3], stride, &ns))
        return tensor_fail(c, r == -2 ? "more dimensions than supported (8)" : "bad size or stride");
    if (ns != t->ndim) return tensor_fail(c, "size and stride have different lengths");
    int k;
    if ((r = get_storage(c, ps, &k))) return r;
    storage *s = &c->st[k];
    if (!s->loaded) return tensor_fail(c, "its storage data is missing from the file");
    /* the view must lie inside the storage: offset + sum((size-1)*stride) < numel */
    int64_t numel = 1, last = off->i;
    for (int d = 0; d < t->ndim; d++) {
        t->stride[d] = stride[d];
        if (t->shape[d] && numel > INT64_MAX / t->shape[d]) return tensor_fail(c, "size overflows");
        numel *= t->shape[d];
    }
    int inside = last < s->numel || numel == 0;
    for (int d = 0; d < t->ndim && numel && inside; d++) {
        int64_t span = t->shape[d] - 1;
        if (stride[d] && span > (s->numel - 1 - last) / stride[d]) inside = 0;
        else last += span * stride[d];
    }
    if (!inside) {
        char a[128], b[128];
        char msg[400];
        snprintf(msg, sizeof msg, "view %s stride %s offset %" PRId64 " does not fit its storage '%.*s' of %" PRId64 " elements",
                 mc_shape_str(t->shape, t->ndim, a, sizeof a), mc_shape_str(stride, t->ndim, b, sizeof b), off->i,
                 (int)(s->klen > 32 ? 32 : s->klen), s->key, s->numel);
        return tensor_fail(c, msg);
    }
    if (s->id < 0) s->id = c->next_id++;
    t->dtype = s->dtype;
    t->data = numel ? s->data + (size_t)off->i * mc_dtype_size(s->dtype) : NULL;
    t->storage_id = s->id;
    t->storage_offset = off->i;
    t->storage_numel = s->numel;
    return 0;
}

static int eval_tensor(ctx *c, const mc_pk_obj *o, mc_tensor *t, int level) {
    if (level > MAX_CALL_NESTING) return tensor_fail(c, "tensor constructors nested too deeply");
    int kind = tensor_call_kind(o);
    if (kind == 0) return tensor_fail(c, "expected a tensor");
    const mc_pk_obj *f = o->func, *a = o->args;
    if (kind == 2) {
        char msg[200];
        snprintf(msg, sizeof msg, "unsupported tensor constructor %.*s.%.*s (sparse, quantized, ...)", (int)f->len, f->s,
                 (int)(f->len2 > 64 ? 64 : f->len2), f->s2);
        return tensor_fail(c, msg);
    }
    if (gname(f, "torch._utils", "_rebuild_tensor_v2") || gname(f, "torch._utils", "_rebuild_tensor"))
        return build_view(c, a, t);
    if (!a || a->type != MC_PK_TUPLE || a->count < 1) return tensor_fail(c, "malformed tensor constructor arguments");
    if (gname(f, "torch._tensor", "_rebuild_from_type_v2") || gname(f, "torch._utils", "_rebuild_from_type_v2")) {
        /* (func, type, args, state): the tensor is func(*args) */
        if (a->count < 3) return tensor_fail(c, "malformed _rebuild_from_type_v2 arguments");
        mc_pk_obj inner = {.type = MC_PK_CALL, .func = a->items[0], .args = a->items[2]};
        return eval_tensor(c, &inner, t, level + 1);
    }
    /* _rebuild_parameter[_with_state](data, ...), Parameter(data, ...) */
    return eval_tensor(c, a->items[0], t, level + 1);
}

/* ---- walking the object graph ---- */

static int join_path(ctx *c) {
    size_t n = 1;
    for (int i = 0; i < c->depth; i++) n += strlen(c->path[i]) + 1;
    if (n > c->ncap) {
        char *b = realloc(c->nbuf, n);
        if (!b) return mc_fail(c->e, MC_E_NOMEM, "%s: out of memory", c->name);
        c->nbuf = b;
        c->ncap = n;
    }
    size_t k = 0;
    for (int i = 0; i < c->depth; i++) {
        if (i) c->nbuf[k++] = '.';
        size_t l = strlen(c->path[i]);
        memcpy(c->nbuf + k, c->path[i], l);
        k += l;
    }
    c->nbuf[k] = 0;
    return 0;
}

/* Text of a dict key, or NULL for keys that cannot be part of a name. */
static char *key_text(const mc_pk_obj *k) {
    char tmp[64];
    switch (k->type) {
    case MC_PK_STR: {
        char *s = malloc(k->len + 1);
        if (s) { memcpy(s, k->s, k->len); s[k->len] = 0; }
        return s;
    }
    case MC_PK_INT: snprintf(tmp, sizeof tmp, "%" PRId64, k->i); break;
    case MC_PK_BOOL: snprintf(tmp, sizeof tmp, "%s", k->i ? "True" : "False"); break;
    case MC_PK_NONE: snprintf(tmp, sizeof tmp, "None"); break;
    default: return NULL;
    }
    return strdup(tmp);
}

static int walk(ctx *c, const mc_pk_obj *o, int tensors, int scalars);

static int walk_child(ctx *c, char *comp, const mc_pk_obj *v, int tensors, int scalars) {
    if (!comp) return mc_fail(c->e, MC_E_NOMEM, "%s: out of memory", c->name);
    if (c->depth >= MAX_DEPTH) {
        free(comp);
        return mc_fail(c->e, MC_E_FORMAT, "%s: objects nested more than %d levels deep", c->name, MAX_DEPTH);
    }
    c->path[c->depth++] = comp;
    int r = walk(c, v, tensors, scalars);
    free(c->path[--c->depth]);
    return r;
}

static int walk(ctx *c, const mc_pk_obj *o, int tensors, int scalars) {
    if (c->budget == 0)
        return mc_fail(c->e, MC_E_FORMAT, "%s: object graph too large (too many shared references)", c->name);
    c->budget--;
    mc_torch_value v = {0};
    switch (o->type) {
    case MC_PK_DICT:
        for (int i = 0; i < o->count; i++) {
            const mc_pk_obj *k = o->items[2 * i];
            if (k->type != MC_PK_STR && k->type != MC_PK_INT && k->type != MC_PK_BOOL && k->type != MC_PK_NONE) continue;
            int r = walk_child(c, key_text(k), o->items[2 * i + 1], tensors, scalars);
            if (r) return r;
        }
        return 0;
    case MC_PK_LIST:
    case MC_PK_TUPLE:
        for (int i = 0; i < o->count; i++) {
            char tmp[16];
            snprintf(tmp, sizeof tmp, "%d", i);
            int r = walk_child(c, strdup(tmp), o->items[i], tensors, scalars);
            if (r) return r;
        }
        return 0;
    case MC_PK_CALL: {
        if (!tensors || !tensor_call_kind(o)) return 0; /* opaque object */
        int r = join_path(c);
        if (r) return r;
        mc_tensor t;
        c->in_tensor = 1;
        r = eval_tensor(c, o, &t, 0);
        c->in_tensor = 0;
        if (r) return r;
        return mc_tensor_map_add(c->m, c->nbuf, &t, c->e);
    }
    case MC_PK_NONE: v.kind = MC_TORCH_NONE; break;
    case MC_PK_BOOL: v.kind = MC_TORCH_BOOL; v.i = o->i; break;
    case MC_PK_INT: v.kind = MC_TORCH_INT; v.i = o->i; break;
    case MC_PK_FLOAT: v.kind = MC_TORCH_FLOAT; v.f = o->f; break;
    case MC_PK_STR: v.kind = MC_TORCH_STR; v.s = o->s; v.len = o->len; break;
    default: return 0;
    }
    if (scalars && c->opt->on_scalar) c->opt->on_scalar(c->opt->ctx, (const char *const *)c->path, c->depth, &v);
    return 0;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp((*(const mc_named_tensor *const *)a)->name, (*(const mc_named_tensor *const *)b)->name);
}

/* Walks the unpickled root: scalars over everything, tensors below the unwrapped root. */
static int process(ctx *c, const mc_pk_obj *root, size_t nobjects) {
    const mc_pk_obj *troot = root;
    if (!c->opt->keep_paths && root->type == MC_PK_DICT) {
        const mc_pk_obj *sd = mc_pk_dict_get(root, "state_dict");
        if (!sd || sd->type != MC_PK_DICT) sd = mc_pk_dict_get(root, "model");
        if (sd && sd->type == MC_PK_DICT) troot = sd;
    }
    int r;
    if (c->opt->on_scalar) {
        c->budget = 4 * nobjects + 1024;
        if ((r = walk(c, root, 0, 1))) return r;
    }
    c->budget = 4 * nobjects + 1024;
    if ((r = walk(c, troot, 1, 0))) return r;
    mc_tensor_map *m = c->m;
    if (!c->opt->keep_paths && m->count) {
        int all = 1;
        for (int i = 0; i < m->count && all; i++) all = strncmp(m->items[i].name, "module.", 7) == 0;
        for (int i = 0; i < m->count && all; i++)
            memmove(m->items[i].name, m->items[i].name + 7, strlen(m->items[i].name + 7) + 1);
    }
    /* names must be unique ({"a.b": x, "a": {"b": y}} would collide) */
    if (m->count > 1) {
        mc_named_tensor **s = malloc((size_t)m->count * sizeof *s);
        if (!s) return mc_fail(c->e, MC_E_NOMEM, "%s: out of memory", c->name);
        for (int i = 0; i < m->count; i++) s[i] = &m->items[i];
        qsort(s, (size_t)m->count, sizeof *s, cmp_names);
        for (int i = 1; i < m->count; i++)
            if (strcmp(s[i - 1]->name, s[i]->name) == 0) {
                r = mc_fail(c->e, MC_E_FORMAT, "%s: duplicate tensor name '%.200s'", c->name, s[i]->name);
                free(s);
                return r;
            }
        free(s);
    }
    return 0;
}

/* ---- the two container formats ---- */

static int parse_zip(ctx *c, const void *buf, size_t len) {
    mc_zip z;
    int r = mc_zip_open(&z, buf, len, c->name, c->e);
    if (r) return r;
    c->zip = &z;
    int pkl = -1, torchscript = 0;
    for (int i = 0; i < z.count && pkl < 0; i++) {
        const mc_zip_entry *en = &z.entries[i];
        const char *slash = memchr(en->name, '/', en->name_len);
        if (!slash || slash == en->name) continue;
        size_t pre = (size_t)(slash - en->name), rest = en->name_len - pre - 1;
        if (rest == 8 && memcmp(slash + 1, "data.pkl", 8) == 0) {
            pkl = i;
            c->prefix = en->name;
            c->prefix_len = pre;
        }
        if (rest == 13 && memcmp(slash + 1, "constants.pkl", 13) == 0) torchscript = 1;
    }
    const void *pk = NULL, *bo = NULL;
    size_t pklen = 0, bolen = 0;
    void *pk_owned = NULL, *bo_owned = NULL;
    mc_pickle p = {0};
    if (pkl < 0) {
        r = torchscript ? mc_fail(c->e, MC_E_UNSUPPORTED, "%s: a TorchScript archive (torch.jit.save), not a torch.save checkpoint", c->name)
                        : mc_fail(c->e, MC_E_FORMAT, "%s: zip archive without a <folder>/data.pkl record (not a torch.save checkpoint)", c->name);
        goto done;
    }
    /* torch >= 2.1 records the byte order; older files are little-endian */
    char bname[300];
    snprintf(bname, sizeof bname, "%.*s/byteorder", (int)(c->prefix_len > 256 ? 256 : c->prefix_len), c->prefix);
    int bi = mc_zip_find(&z, bname);
    if (bi >= 0) {
        if ((r = mc_zip_read(&z, bi, &bo, &bolen, &bo_owned, !c->opt->skip_crc, c->e))) goto done;
        if (!(bolen == 6 && memcmp(bo, "little", 6) == 0)) {
            r = mc_fail(c->e, MC_E_UNSUPPORTED, "%s: byte order '%.*s' is not supported (only little-endian)", c->name,
                        (int)(bolen > 16 ? 16 : bolen), (const char *)bo);
            goto done;
        }
    }
    if ((r = mc_zip_read(&z, pkl, &pk, &pklen, &pk_owned, !c->opt->skip_crc, c->e))) goto done;
    char pname[600];
    snprintf(pname, sizeof pname, "%s: %.*s/data.pkl", c->name, (int)(c->prefix_len > 256 ? 256 : c->prefix_len), c->prefix);
    if ((r = mc_pickle_parse(pk, pklen, pname, &p, c->e))) goto done;
    r = process(c, p.root, p.nobjects);
done:
    mc_pickle_free(&p);
    free(pk_owned);
    free(bo_owned);
    mc_zip_close(&z);
    c->zip = NULL;
    return r;
}

static int parse_legacy(ctx *c, const unsigned char *b, size_t len) {
    mc_pickle p[5];
    memset(p, 0, sizeof p);
    size_t pos = 0;
    int r = 0;
    static const char *what[5] = {"magic number", "protocol version", "sys_info", "object", "storage keys"};
    for (int k = 0; k < 5; k++) {
        char pname[300];
        snprintf(pname, sizeof pname, "%s: legacy %s pickle", c->name, what[k]);
        if ((r = mc_pickle_parse(b + pos, len - pos, pname, &p[k], c->e))) goto done;
        pos += p[k].end;
    }
    if (p[1].root->type != MC_PK_INT || p[1].root->i != 1001) {
        r = mc_fail(c->e, MC_E_UNSUPPORTED, "%s: unsupported legacy protocol version", c->name);
        goto done;
    }
    const mc_pk_obj *le = mc_pk_dict_get(p[2].root, "little_endian");
    if (le && le->type == MC_PK_BOOL && !le->i) {
        r = mc_fail(c->e, MC_E_UNSUPPORTED, "%s: big-endian legacy checkpoint is not supported", c->name);
        goto done;
    }
    /* Storage element sizes come from the persistent ids, so register them before the data. */
    for (int i = 0; i < p[3].npersids; i++) {
        int k;
        if ((r = get_storage(c, p[3].persids[i], &k))) goto done;
    }
    const mc_pk_obj *keys = p[4].root;
    if (keys->type != MC_PK_LIST && keys->type != MC_PK_TUPLE) {
        r = mc_fail(c->e, MC_E_FORMAT, "%s: legacy storage key list is not a list", c->name);
        goto done;
    }
    for (int i = 0; i < keys->count; i++) {
        const mc_pk_obj *key = keys->items[i];
        int k = key->type == MC_PK_STR ? find_storage(c, key->s, key->len) : -1;
        if (k < 0 || c->st[k].loaded) {
            r = mc_fail(c->e, MC_E_FORMAT, "%s: legacy storage key %d is unknown or repeated", c->name, i);
            goto done;
        }
        storage *s = &c->st[k];
        if (len - pos < 8) {
            r = mc_fail(c->e, MC_E_FORMAT, "%s: truncated legacy storage data", c->name);
            goto done;
        }
        uint64_t n = 0;
        for (int j = 7; j >= 0; j--) n = n << 8 | b[pos + (size_t)j];
        pos += 8;
        size_t es = mc_dtype_size(s->dtype);
        if (n != (uint64_t)s->numel || n > (len - pos) / es) {
            r = mc_fail(c->e, MC_E_FORMAT, "%s: legacy storage '%.*s': %llu elements %s", c->name,
                        (int)(s->klen > 32 ? 32 : s->klen), s->key, (unsigned long long)n,
                        n != (uint64_t)s->numel ? "do not match its persistent id" : "run past the end of the file (truncated?)");
            goto done;
        }
        if ((r = set_storage_data(c, s, b + pos))) goto done;
        pos += (size_t)n * es;
    }
    r = process(c, p[3].root, p[3].nobjects);
done:
    for (int k = 0; k < 5; k++) mc_pickle_free(&p[k]);
    return r;
}

int mc_torch_parse_ex(const void *buf, size_t len, const char *name, const mc_torch_options *opt,
                      mc_tensor_map *m, mc_err *e) {
    mc_torch_options defaults = {0};
    if (m->count || m->map_addr || m->nbuffers)
        return mc_fail(e, MC_E_ARG, "%s: mc_torch_parse needs an empty tensor map", name);
    ctx c = {.name = name, .opt = opt ? opt : &defaults, .m = m, .e = e};
    int r;
    if (mc_zip_sniff(buf, len)) r = parse_zip(&c, buf, len);
    else if (mc_torch_sniff_legacy(buf, len)) r = parse_legacy(&c, buf, len);
    else r = mc_fail(e, MC_E_FORMAT, "%s: not a torch.save file (neither a zip archive nor the legacy format)", name);
    for (int i = 0; i < c.depth; i++) free(c.path[i]);
    free(c.st);
    free(c.hash);
    free(c.nbuf);
    if (r) {
        mc_tensor_map_free(m);
        mc_tensor_map_init(m);
        return r;
    }
    free(m->source);
    m->source = strdup(name);
    return 0;
}

int mc_torch_parse(const void *buf, size_t len, const char *name, mc_tensor_map *m, mc_err *e) {
    return mc_torch_parse_ex(buf, len, name, NULL, m, e);
}

static int parse_mapped(const void *buf, size_t len, const char *name, mc_tensor_map *m, void *opt, mc_err *e) {
    return mc_torch_parse_ex(buf, len, name, opt, m, e);
}

int mc_torch_load_ex(const char *path, const mc_torch_options *opt, mc_tensor_map *m, mc_err *e) {
    if (m->count || m->map_addr || m->nbuffers)
        return mc_fail(e, MC_E_ARG, "%s: mc_torch_load needs an empty tensor map", path);
    return mc_tensor_map_load_file(path, m, parse_mapped, (void *)opt, e);
}

int mc_torch_load(const char *path, mc_tensor_map *m, mc_err *e) { return mc_torch_load_ex(path, NULL, m, e); }
