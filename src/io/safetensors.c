#include "io/safetensors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/mapped_file.h"

static uint64_t read_u64le(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

int mc_safetensors_sniff(const void *buf, size_t len) {
    if (len < 10) return 0;
    uint64_t n = read_u64le(buf);
    /* a plausible header length (even beyond the end, so a truncated file is reported as one) */
    return n >= 2 && n <= ((uint64_t)100 << 20) && ((const char *)buf)[8] == '{';
}

static int parse_dtype(const char *s, mc_dtype *t) {
    static const struct { const char *name; mc_dtype t; } map[] = {
        {"F32", MC_DTYPE_F32}, {"F16", MC_DTYPE_F16}, {"BF16", MC_DTYPE_BF16}, {"F64", MC_DTYPE_F64},
        {"I64", MC_DTYPE_I64}, {"I32", MC_DTYPE_I32}, {"I16", MC_DTYPE_I16}, {"I8", MC_DTYPE_I8},
        {"U8", MC_DTYPE_U8}, {"BOOL", MC_DTYPE_BOOL},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(s, map[i].name) == 0) { *t = map[i].t; return 0; }
    return -1;
}

/* A JSON number that is a non-negative integer below 2^53. */
static int as_index(const mc_json *j, uint64_t *out) {
    if (!j || j->type != MC_JSON_NUMBER || j->number < 0 || j->number > 9007199254740992.0 ||
        j->number != (double)(uint64_t)j->number)
        return -1;
    *out = (uint64_t)j->number;
    return 0;
}

static int parse_entry(const char *name, const char *key, const mc_json *v, const unsigned char *data,
                       uint64_t data_len, mc_tensor_map *m, mc_err *e) {
    const mc_json *dt = mc_json_get(v, "dtype"), *sh = mc_json_get(v, "shape"), *off = mc_json_get(v, "data_offsets");
    mc_tensor t = {0};
    t.storage_id = -1;
    if (!dt || dt->type != MC_JSON_STRING || parse_dtype(dt->str, &t.dtype))
        return mc_fail(e, MC_E_FORMAT, "%s: tensor '%s': missing or unknown dtype", name, key);
    if (!sh || sh->type != MC_JSON_ARRAY || sh->count > MC_MAX_DIMS)
        return mc_fail(e, MC_E_FORMAT, "%s: tensor '%s': bad shape", name, key);
    if (!off || off->type != MC_JSON_ARRAY || off->count != 2)
        return mc_fail(e, MC_E_FORMAT, "%s: tensor '%s': bad data_offsets", name, key);
    uint64_t numel = 1, begin, end;
    t.ndim = sh->count;
    for (int d = 0; d < sh->count; d++) {
        uint64_t n;
        if (as_index(&sh->items[d], &n) || n > ((uint64_t)1 << 40) || (n && numel > (((uint64_t)1 << 62) / n)))
            return mc_fail(e, MC_E_FORMAT, "%s: tensor '%s': bad shape", name, key);
        t.shape[d] = (int64_t)n;
        numel *= n;
    }
    int64_t s = 1;
    for (int d = t.ndim - 1; d >= 0; d--) { t.stride[d] = s; s *= t.shape[d]; }
    if (as_index(&off->items[0], &begin) || as_index(&off->items[1], &end) || begin > end || end > data_len)
        return mc_fail(e, MC_E_FORMAT, "%s: tensor '%s': data_offsets outside the file (truncated?)", name, key);
    if (numel > data_len / mc_dtype_size(t.dtype) || end - begin != numel * mc_dtype_size(t.dtype))
        return mc_fail(e, MC_E_FORMAT, "%s: tensor '%s': data size %llu does not match shape and dtype", name, key,
                       (unsigned long long)(end - begin));
    t.data = data + begin;
    t.storage_numel = (int64_t)numel;
    return mc_tensor_map_add(m, key, &t, e);
}

int mc_safetensors_parse(const void *buf, size_t len, const char *name, mc_tensor_map *m,
                         mc_json **header_out, mc_err *e) {
    const unsigned char *b = buf;
    if (len < 8) return mc_fail(e, MC_E_FORMAT, "%s: truncated safetensors file (%zu bytes)", name, len);
    uint64_t hlen = read_u64le(b);
    if (hlen > len - 8) return mc_fail(e, MC_E_FORMAT, "%s: safetensors header length %llu exceeds the file size",
                                       name, (unsigned long long)hlen);
    mc_err je = {0};
    mc_json *h = mc_json_parse((const char *)b + 8, (size_t)hlen, &je);
    if (!h) return mc_fail(e, MC_E_FORMAT, "%s: safetensors header: %s", name, je.msg);
    if (h->type != MC_JSON_OBJECT) {
        mc_json_free(h);
        return mc_fail(e, MC_E_FORMAT, "%s: safetensors header is not a JSON object", name);
    }
    const unsigned char *data = b + 8 + hlen;
    uint64_t data_len = len - 8 - hlen;
    int count0 = m->count;
    for (int i = 0; i < h->count; i++) {
        if (strcmp(h->keys[i], "__metadata__") == 0) continue;
        int r = parse_entry(name, h->keys[i], &h->items[i], data, data_len, m, e);
        if (r) {
            /* leave the map as it was: no entries pointing into a buffer the caller may drop */
            while (m->count > count0) free(m->items[--m->count].name);
            mc_json_free(h);
            return r;
        }
    }
    if (header_out) *header_out = h;
    else mc_json_free(h);
    free(m->source);
    m->source = strdup(name);
    return 0;
}

static int parse_mapped(const void *buf, size_t len, const char *name, mc_tensor_map *m, void *header_out, mc_err *e) {
    return mc_safetensors_parse(buf, len, name, m, header_out, e);
}

int mc_safetensors_load(const char *path, mc_tensor_map *m, mc_json **header_out, mc_err *e) {
    return mc_tensor_map_load_file(path, m, parse_mapped, header_out, e);
}

static const char *st_dtype_name(mc_dtype t) {
    static const char *names[MC_DTYPE_COUNT] = {"F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"};
    return (unsigned)t < MC_DTYPE_COUNT ? names[t] : "?";
}

/* Appends printf output to a growing buffer. */
static int buf_printf(char **buf, size_t *len, size_t *cap, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (n < 0) return -1;
        if ((size_t)n < *cap - *len) { *len += (size_t)n; return 0; }
        size_t nc = (*cap + (size_t)n + 1) * 2;
        char *nb = realloc(*buf, nc);
        if (!nb) return -1;
        *buf = nb;
        *cap = nc;
    }
}

static int write_all(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n ? 0 : -1; }

int mc_safetensors_save(const char *path, const mc_tensor_map *m, mc_err *e) {
    size_t cap = 4096, len = 0;
    char *h = malloc(cap);
    uint64_t off = 0;
    int bad = !h || buf_printf(&h, &len, &cap, "{");
    for (int i = 0; i < m->count && !bad; i++) {
        const mc_tensor *t = &m->items[i].t;
        uint64_t bytes = (uint64_t)mc_tensor_numel(t) * mc_dtype_size(t->dtype);
        bad |= buf_printf(&h, &len, &cap, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "", m->items[i].name,
                          st_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim && !bad; d++) bad |= buf_printf(&h, &len, &cap, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        bad |= buf_printf(&h, &len, &cap, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                          (unsigned long long)(off + bytes));
        off += bytes;
    }
    bad |= buf_printf(&h, &len, &cap, "}");
    while (!bad && len % 8) bad |= buf_printf(&h, &len, &cap, " ");
    if (bad) { free(h); return mc_fail(e, MC_E_NOMEM, "%s: out of memory building the header", path); }

    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) { free(h); return mc_fail(e, MC_E_IO, "%s: cannot create: %s", tmp, strerror(errno)); }
    unsigned char hl[8];
    for (int k = 0; k < 8; k++) hl[k] = (unsigned char)((uint64_t)len >> (8 * k));
    int r = write_all(f, hl, 8) || write_all(f, h, len);
    free(h);
    for (int i = 0; i < m->count && !r; i++) {
        const mc_tensor *t = &m->items[i].t;
        size_t es = mc_dtype_size(t->dtype);
        int64_t n = mc_tensor_numel(t);
        if (mc_tensor_is_contiguous(t)) {
            r = n ? write_all(f, t->data, (size_t)n * es) : 0;
        } else {
            for (int64_t k = 0; k < n && !r; k++) {
                int64_t o = 0, rem = k;
                for (int d = t->ndim - 1; d >= 0; d--) { o += (rem % t->shape[d]) * t->stride[d]; rem /= t->shape[d]; }
                r = write_all(f, (const char *)t->data + o * (int64_t)es, es);
            }
        }
    }
    if (fclose(f) != 0) r = -1;
    if (r || rename(tmp, path) != 0) {
        remove(tmp);
        return mc_fail(e, MC_E_IO, "%s: write failed: %s", path, strerror(errno));
    }
    return 0;
}
