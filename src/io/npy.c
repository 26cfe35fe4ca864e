/* npy.c - .npy parse/encode and .npz read/write; see npy.h. */
#include "io/npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static const struct { const char *descr; size_t size; } TYPES[MC_NPY_TYPE_COUNT] = {
    [MC_NPY_F32] = {"<f4", 4}, [MC_NPY_F16] = {"<f2", 2}, [MC_NPY_F64] = {"<f8", 8},
    [MC_NPY_I8] = {"|i1", 1},  [MC_NPY_U8] = {"|u1", 1},  [MC_NPY_I16] = {"<i2", 2},
    [MC_NPY_U16] = {"<u2", 2}, [MC_NPY_I32] = {"<i4", 4}, [MC_NPY_U32] = {"<u4", 4},
    [MC_NPY_I64] = {"<i8", 8}, [MC_NPY_U64] = {"<u8", 8}, [MC_NPY_BOOL] = {"|b1", 1},
};

const char *mc_npy_descr(mc_npy_type t) { return (unsigned)t < MC_NPY_TYPE_COUNT ? TYPES[t].descr : "?"; }
size_t mc_npy_itemsize(mc_npy_type t) { return (unsigned)t < MC_NPY_TYPE_COUNT ? TYPES[t].size : 0; }

/* ---- the header literal ---- */

typedef struct lit {
    const char *s;
    size_t n, i;
} lit;

static void ws(lit *l) {
    while (l->i < l->n && strchr(" \t\n\r\f\v", l->s[l->i]) && l->s[l->i]) l->i++;
}

static int eat(lit *l, char c) {
    ws(l);
    if (l->i < l->n && l->s[l->i] == c) {
        l->i++;
        return 1;
    }
    return 0;
}

/* A quoted string (either quote) into out[cap]; -1 if malformed or too long. */
static int str_lit(lit *l, char *out, size_t cap) {
    ws(l);
    if (l->i >= l->n || (l->s[l->i] != '\'' && l->s[l->i] != '"')) return -1;
    char q = l->s[l->i++];
    size_t k = 0;
    while (l->i < l->n && l->s[l->i] != q) {
        char c = l->s[l->i++];
        if (c == '\n') return -1;
        if (c == '\\') {
            if (l->i >= l->n) return -1;
            c = l->s[l->i++];
        }
        if (k + 1 >= cap) return -1;
        out[k++] = c;
    }
    if (l->i >= l->n) return -1;
    l->i++;
    out[k] = 0;
    return 0;
}

static int word(lit *l, const char *w) {
    ws(l);
    size_t k = strlen(w);
    if (l->n - l->i >= k && !memcmp(l->s + l->i, w, k)) {
        char nx = l->i + k < l->n ? l->s[l->i + k] : 0;
        if ((nx >= 'a' && nx <= 'z') || (nx >= 'A' && nx <= 'Z') || (nx >= '0' && nx <= '9') || nx == '_') return 0;
        l->i += k;
        return 1;
    }
    return 0;
}

static int parse_type(const char *d, mc_npy_type *t, const char **why) {
    size_t n = strlen(d);
    if (n >= 2 && d[0] == '>' && strcmp(d + 1, "u1") && strcmp(d + 1, "i1") && strcmp(d + 1, "b1")) {
        *why = "big-endian data is not supported";
        return -1;
    }
    if (n >= 1 && strchr("<>=|", d[0])) d++;
    if (!strcmp(d, "O") || !strcmp(d, "O8")) {
        *why = "object arrays (pickled data) are not supported";
        return -1;
    }
    static const char *names[MC_NPY_TYPE_COUNT] = {"f4", "f2", "f8", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "b1"};
    for (int i = 0; i < MC_NPY_TYPE_COUNT; i++)
        if (!strcmp(d, names[i])) {
            *t = (mc_npy_type)i;
            return 0;
        }
    *why = "unsupported dtype";
    return -1;
}

static int header_fail(const char *name, mc_err *e, const char *why, const char *detail) {
    return mc_fail(e, MC_E_FORMAT, "%s: npy header: %s%s%s", name, why, detail ? " " : "", detail ? detail : "");
}

static int parse_header(const char *h, size_t n, const char *name, mc_npy *a, mc_err *e) {
    lit l = {h, n, 0};
    int seen_descr = 0, seen_fortran = 0, seen_shape = 0, fortran = 0;
    char descr[64] = "";
    if (!eat(&l, '{')) return header_fail(name, e, "not a dict literal", NULL);
    while (!eat(&l, '}')) {
        char key[32];
        if (str_lit(&l, key, sizeof key) || !eat(&l, ':')) return header_fail(name, e, "malformed dict literal", NULL);
        if (!strcmp(key, "descr")) {
            ws(&l);
            if (l.i < l.n && (l.s[l.i] == '[' || l.s[l.i] == '('))
                return header_fail(name, e, "structured dtypes are not supported", NULL);
            if (str_lit(&l, descr, sizeof descr)) return header_fail(name, e, "descr is not a dtype string", NULL);
            seen_descr = 1;
        } else if (!strcmp(key, "fortran_order")) {
            if (word(&l, "True")) fortran = 1;
            else if (word(&l, "False")) fortran = 0;
            else return header_fail(name, e, "fortran_order is not True or False", NULL);
            seen_fortran = 1;
        } else if (!strcmp(key, "shape")) {
            if (!eat(&l, '(')) return header_fail(name, e, "shape is not a tuple", NULL);
            int nd = 0, comma = 1, last_comma = 0;
            while (!eat(&l, ')')) {
                if (!comma) return header_fail(name, e, "malformed shape tuple", NULL);
                ws(&l);
                int64_t v = 0;
                size_t d0 = l.i;
                while (l.i < l.n && l.s[l.i] >= '0' && l.s[l.i] <= '9') {
                    if (v > (INT64_MAX - 9) / 10) return header_fail(name, e, "dimension out of range", NULL);
                    v = v * 10 + (l.s[l.i++] - '0');
                }
                if (l.i == d0) return header_fail(name, e, "shape holds something other than non-negative ints", NULL);
                if (nd >= MC_MAX_DIMS) return header_fail(name, e, "more dimensions than supported", NULL);
                a->shape[nd++] = v;
                comma = last_comma = eat(&l, ',');
            }
            if (nd == 1 && !last_comma) return header_fail(name, e, "shape is not a tuple", NULL);
            a->ndim = nd;
            seen_shape = 1;
        } else {
            return header_fail(name, e, "unexpected key", key);
        }
        if (!eat(&l, ',')) {
            if (!eat(&l, '}')) return header_fail(name, e, "malformed dict literal", NULL);
            break;
        }
    }
    ws(&l);
    if (l.i != l.n) return header_fail(name, e, "trailing characters after the dict", NULL);
    if (!seen_descr || !seen_fortran || !seen_shape) return header_fail(name, e, "missing descr, fortran_order or shape", NULL);
    const char *why;
    if (parse_type(descr, &a->type, &why)) return header_fail(name, e, why, descr);
    if (fortran && a->ndim > 1) return header_fail(name, e, "Fortran-order arrays are not supported", NULL);
    return 0;
}

int mc_npy_parse(const void *buf, size_t len, const char *name, mc_npy *a, mc_err *e) {
    const unsigned char *b = buf;
    memset(a, 0, sizeof *a);
    if (len < 10 || memcmp(b, "\x93NUMPY", 6)) return mc_fail(e, MC_E_FORMAT, "%s: not a .npy array (bad magic)", name);
    a->major = b[6];
    a->minor = b[7];
    size_t hl, off;
    if (a->major == 1 && a->minor == 0) {
        hl = (size_t)b[8] | (size_t)b[9] << 8;
        off = 10;
    } else if ((a->major == 2 || a->major == 3) && a->minor == 0) {
        if (len < 12) return mc_fail(e, MC_E_FORMAT, "%s: truncated .npy header", name);
        hl = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        off = 12;
    } else {
        return mc_fail(e, MC_E_FORMAT, "%s: unsupported .npy format version %d.%d", name, a->major, a->minor);
    }
    if (hl > MC_NPY_MAX_HEADER) return mc_fail(e, MC_E_FORMAT, "%s: .npy header of %zu bytes (numpy's limit is %d)", name, hl, MC_NPY_MAX_HEADER);
    if (hl > len - off) return mc_fail(e, MC_E_FORMAT, "%s: truncated .npy header", name);
    const char *h = (const char *)b + off;
    if (memchr(h, 0, hl)) return mc_fail(e, MC_E_FORMAT, "%s: npy header contains a NUL byte", name);
    int rc = parse_header(h, hl, name, a, e);
    if (rc) return rc;
    int64_t numel = 1;
    size_t isz = mc_npy_itemsize(a->type);
    for (int i = 0; i < a->ndim; i++) {
        if (a->shape[i] && numel > INT64_MAX / a->shape[i]) return mc_fail(e, MC_E_FORMAT, "%s: npy shape too large", name);
        numel *= a->shape[i];
    }
    size_t have = len - off - hl;
    if ((uint64_t)numel > have / isz)
        return mc_fail(e, MC_E_FORMAT, "%s: truncated .npy data (%lld elements of %zu bytes need %llu bytes, %zu present)",
                       name, (long long)numel, isz, (unsigned long long)numel * isz, have);
    a->numel = numel;
    a->nbytes = (size_t)numel * isz;
    a->data = numel ? b + off + hl : NULL;
    return 0;
}

int mc_npy_encode(mc_npy_type t, int ndim, const int64_t *shape, const void *data, int version,
                  unsigned char **out, size_t *out_len, mc_err *e) {
    *out = NULL;
    *out_len = 0;
    if ((unsigned)t >= MC_NPY_TYPE_COUNT || ndim < 0 || ndim > MC_MAX_DIMS || version < 0 || version > 3)
        return mc_fail(e, MC_E_ARG, "mc_npy_encode: bad dtype, rank or version");
    char h[512];
    int k = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': (", TYPES[t].descr);
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] && numel > INT64_MAX / shape[i])) return mc_fail(e, MC_E_ARG, "mc_npy_encode: bad shape");
        numel *= shape[i];
        k += snprintf(h + k, sizeof h - (size_t)k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    }
    k += snprintf(h + k, sizeof h - (size_t)k, "%s), }", ndim == 1 ? "," : "");
    if (ndim > 0) { /* room to grow the first axis in place (GROWTH_AXIS_MAX_DIGITS = 21) */
        char d[24];
        int dl = snprintf(d, sizeof d, "%lld", (long long)shape[0]);
        for (int i = dl; i < 21; i++) h[k++] = ' ';
    }
    size_t isz = TYPES[t].size;
    if ((uint64_t)numel > (SIZE_MAX - 1024) / isz) return mc_fail(e, MC_E_NOMEM, "mc_npy_encode: array too large");
    size_t hlen = (size_t)k + 1;
    if (version == 0) version = hlen + (64 - (10 + hlen) % 64) > 65535 ? 2 : 1; /* as _wrap_header_guess_version */
    size_t fmt = version == 1 ? 2 : 4;
    size_t pad = 64 - (8 + fmt + hlen) % 64;
    size_t total_h = hlen + pad;
    if (version == 1 && total_h > 65535) return mc_fail(e, MC_E_ARG, "mc_npy_encode: header too big for version 1.0");
    size_t n = 8 + fmt + total_h + (size_t)numel * isz;
    unsigned char *b = malloc(n ? n : 1);
    if (!b) return mc_fail(e, MC_E_NOMEM, "out of memory encoding a .npy array");
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)version;
    b[7] = 0;
    for (size_t i = 0; i < fmt; i++) b[8 + i] = (unsigned char)(total_h >> (8 * i));
    memcpy(b + 8 + fmt, h, (size_t)k);
    memset(b + 8 + fmt + k, ' ', pad);
    b[8 + fmt + total_h - 1] = '\n';
    if (numel) memcpy(b + 8 + fmt + total_h, data, (size_t)numel * isz);
    *out = b;
    *out_len = n;
    return 0;
}

double mc_npy_get_f64(const mc_npy *a, int64_t i, int u16_as_bf16) {
    size_t isz = mc_npy_itemsize(a->type);
    const unsigned char *p = (const unsigned char *)a->data + (size_t)i * isz;
    union { float f; double d; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; uint64_t u64; int64_t i64; } v;
    memcpy(&v, p, isz);
    switch (a->type) {
    case MC_NPY_F32: return v.f;
    case MC_NPY_F16: return mc_f16_to_f32(v.u16);
    case MC_NPY_F64: return v.d;
    case MC_NPY_I8: return (int8_t)p[0];
    case MC_NPY_U8: return p[0];
    case MC_NPY_BOOL: return p[0] ? 1.0 : 0.0;
    case MC_NPY_I16: return u16_as_bf16 ? mc_bf16_to_f32(v.u16) : v.i16;
    case MC_NPY_U16: return u16_as_bf16 ? mc_bf16_to_f32(v.u16) : v.u16;
    case MC_NPY_I32: return v.i32;
    case MC_NPY_U32: return v.u32;
    case MC_NPY_I64: return (double)v.i64;
    case MC_NPY_U64: return (double)v.u64;
    default: return 0;
    }
}

void mc_npy_to_f32(const mc_npy *a, int u16_as_bf16, float *dst) {
    if (a->type == MC_NPY_F32) { /* the common case, possibly unaligned */
        if (a->numel) memcpy(dst, a->data, a->nbytes);
        return;
    }
    for (int64_t i = 0; i < a->numel; i++) dst[i] = (float)mc_npy_get_f64(a, i, u16_as_bf16);
}

/* ---- .npz read ---- */

int mc_npz_open(mc_npz *z, const void *buf, size_t len, const char *name, mc_err *e) {
    memset(z, 0, sizeof *z);
    z->name = name;
    if (!mc_zip_sniff(buf, len)) return mc_fail(e, MC_E_FORMAT, "%s: not an .npz archive (no zip signature)", name);
    return mc_zip_open(&z->zip, buf, len, name, e);
}

static int find_member(const mc_npz *z, const char *key) {
    int i = mc_zip_find(&z->zip, key);
    if (i >= 0) return i;
    size_t n = strlen(key);
    char tmp[512];
    if (n + 5 > sizeof tmp) return -1;
    memcpy(tmp, key, n);
    memcpy(tmp + n, ".npy", 5);
    return mc_zip_find(&z->zip, tmp);
}

int mc_npz_has(const mc_npz *z, const char *key) { return find_member(z, key) >= 0; }

int mc_npz_get(mc_npz *z, const char *key, mc_npy *a, mc_err *e) {
    int i = find_member(z, key);
    if (i < 0) return mc_fail(e, MC_E_FORMAT, "%s: no array '%s'", z->name, key);
    const void *data;
    size_t size;
    void *owned = NULL;
    int rc = mc_zip_read(&z->zip, i, &data, &size, &owned, 1, e);
    if (rc) return rc;
    if (owned) {
        void **o = realloc(z->owned, ((size_t)z->nowned + 1) * sizeof *o);
        if (!o) {
            free(owned);
            return mc_fail(e, MC_E_NOMEM, "%s: out of memory", z->name);
        }
        z->owned = o;
        z->owned[z->nowned++] = owned;
    }
    char what[600];
    snprintf(what, sizeof what, "%s: array '%s'", z->name, key);
    return mc_npy_parse(data, size, what, a, e);
}

void mc_npz_close(mc_npz *z) {
    for (int i = 0; i < z->nowned; i++) free(z->owned[i]);
    free(z->owned);
    mc_zip_close(&z->zip);
    memset(z, 0, sizeof *z);
}

/* ---- .npz write (stored members, like np.savez) ---- */

struct mc_npz_entry {
    char name[208];
    uint32_t crc, size, offset;
};

void mc_npz_writer_init(mc_npz_writer *w) { memset(w, 0, sizeof *w); }

void mc_npz_writer_free(mc_npz_writer *w) {
    free(w->buf);
    free(w->entries);
    memset(w, 0, sizeof *w);
}

static void put(mc_npz_writer *w, const void *p, size_t n) {
    if (w->failed) return;
    if (w->len + n > w->cap) {
        size_t c = w->cap ? w->cap : 4096;
        while (c < w->len + n) c *= 2;
        void *q = realloc(w->buf, c);
        if (!q) {
            w->failed = 1;
            return;
        }
        w->buf = q;
        w->cap = c;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void put_le(mc_npz_writer *w, uint32_t v, int n) {
    unsigned char b[4];
    for (int i = 0; i < n; i++) b[i] = (unsigned char)(v >> (8 * i));
    put(w, b, (size_t)n);
}

/* DOS date of 1980-01-01 00:00, the earliest zip time: reproducible archives. */
#define DOS_TIME 0
#define DOS_DATE 0x21

/* The fields local and central headers share: version needed .. extra length. */
static void put_common(mc_npz_writer *w, const struct mc_npz_entry *en) {
    put_le(w, 20, 2);          /* version needed */
    put_le(w, 0, 2);           /* flags */
    put_le(w, 0, 2);           /* stored */
    put_le(w, DOS_TIME, 2);
    put_le(w, DOS_DATE, 2);
    put_le(w, en->crc, 4);
    put_le(w, en->size, 4);
    put_le(w, en->size, 4);
    put_le(w, (uint32_t)strlen(en->name), 2);
    put_le(w, 0, 2);           /* extra */
}

int mc_npz_writer_add(mc_npz_writer *w, const char *key, mc_npy_type t, int ndim, const int64_t *shape,
                      const void *data, mc_err *e) {
    size_t kl = key ? strlen(key) : 0;
    if (!kl || kl > 200) return mc_fail(e, MC_E_ARG, "npz: bad array name");
    char name[208];
    snprintf(name, sizeof name, "%s.npy", key);
    for (int i = 0; i < w->count; i++)
        if (!strcmp(w->entries[i].name, name)) return mc_fail(e, MC_E_ARG, "npz: duplicate array '%s'", key);
    unsigned char *npy;
    size_t n;
    int rc = mc_npy_encode(t, ndim, shape, data, 0, &npy, &n, e);
    if (rc) return rc;
    if (n >= 0xFFFFFFFFu || w->len + n + 256 >= 0xFFFFFFFFu) {
        free(npy);
        return mc_fail(e, MC_E_ARG, "npz: array '%s' too large for a non-ZIP64 archive", key);
    }
    if (w->count == w->cap_entries) {
        int c = w->cap_entries ? w->cap_entries * 2 : 8;
        struct mc_npz_entry *q = realloc(w->entries, (size_t)c * sizeof *q);
        if (!q) {
            free(npy);
            return mc_fail(e, MC_E_NOMEM, "out of memory");
        }
        w->entries = q;
        w->cap_entries = c;
    }
    struct mc_npz_entry *en = &w->entries[w->count++];
    memcpy(en->name, name, strlen(name) + 1);
    en->crc = (uint32_t)crc32(0, npy, (uInt)n);
    en->size = (uint32_t)n;
    en->offset = (uint32_t)w->len;
    put_le(w, 0x04034b50, 4);
    put_common(w, en);
    put(w, name, strlen(name));
    put(w, npy, n);
    free(npy);
    if (w->failed) return mc_fail(e, MC_E_NOMEM, "out of memory writing an .npz archive");
    return 0;
}

int mc_npz_writer_finish(mc_npz_writer *w, unsigned char **out, size_t *out_len, mc_err *e) {
    uint32_t cd = (uint32_t)w->len;
    for (int i = 0; i < w->count; i++) {
        const struct mc_npz_entry *en = &w->entries[i];
        size_t nl = strlen(en->name);
        put_le(w, 0x02014b50, 4);
        put_le(w, 0x0314, 2);  /* made by: Unix, 2.0 (as Python's zipfile) */
        put_common(w, en);
        put_le(w, 0, 2);       /* comment */
        put_le(w, 0, 2);       /* disk */
        put_le(w, 0, 2);       /* internal attributes */
        put_le(w, 0600u << 16, 4); /* external: -rw------- as zipfile.writestr */
        put_le(w, en->offset, 4);
        put(w, en->name, nl);
    }
    uint32_t cd_size = (uint32_t)w->len - cd;
    put_le(w, 0x06054b50, 4);
    put_le(w, 0, 2);
    put_le(w, 0, 2);
    put_le(w, (uint32_t)w->count, 2);
    put_le(w, (uint32_t)w->count, 2);
    put_le(w, cd_size, 4);
    put_le(w, cd, 4);
    put_le(w, 0, 2);
    if (w->failed) {
        mc_npz_writer_free(w);
        return mc_fail(e, MC_E_NOMEM, "out of memory writing an .npz archive");
    }
    *out = w->buf;
    *out_len = w->len;
    w->buf = NULL;
    free(w->entries);
    memset(w, 0, sizeof *w);
    return 0;
}
