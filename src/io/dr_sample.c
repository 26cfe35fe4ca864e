/* dr_sample.c - DataCompDR member parsers and writers; see dr_sample.h. */
#include "io/dr_sample.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/tensor.h"
#include "io/npy.h"
#include "io/torch_checkpoint.h"
#include "io/torch_writer.h"

int mc_utf8_valid(const void *sv, size_t n) {
    const unsigned char *s = sv;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) { i++; continue; }
        int k;
        unsigned cp, min;
        if (c >= 0xc2 && c <= 0xdf) k = 1, cp = c & 0x1f, min = 0x80;
        else if (c >= 0xe0 && c <= 0xef) k = 2, cp = c & 0x0f, min = 0x800;
        else if (c >= 0xf0 && c <= 0xf4) k = 3, cp = c & 0x07, min = 0x10000;
        else return 0;
        if (n - i <= (size_t)k) return 0;
        for (int j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) return 0;
        i += (size_t)k + 1;
    }
    return 1;
}

int mc_dr_parse_text(const void *buf, size_t len, const char *name, char **out, mc_err *e) {
    *out = NULL;
    if (!mc_utf8_valid(buf, len)) return mc_fail(e, MC_E_FORMAT, "%s: not valid UTF-8", name);
    if (memchr(buf, 0, len)) return mc_fail(e, MC_E_FORMAT, "%s: contains a NUL byte", name);
    char *s = malloc(len + 1);
    if (!s) return mc_fail(e, MC_E_NOMEM, "%s: out of memory", name);
    memcpy(s, buf, len);
    s[len] = 0;
    *out = s;
    return 0;
}

int mc_dr_parse_json(const void *buf, size_t len, const char *name, mc_json **out, mc_err *e) {
    *out = NULL;
    if (!mc_utf8_valid(buf, len)) return mc_fail(e, MC_E_FORMAT, "%s: not valid UTF-8", name);
    mc_json *j = mc_json_parse(buf, len, e);
    if (!j) return mc_err_prefix(e, "%s", name);
    *out = j;
    return 0;
}

/* Python's json keeps the last of duplicate keys. */
static const mc_json *get_last(const mc_json *obj, const char *key) {
    if (!obj || obj->type != MC_JSON_OBJECT) return NULL;
    for (int k = obj->count - 1; k >= 0; k--)
        if (!strcmp(obj->keys[k], key)) return &obj->items[k];
    return NULL;
}

static int object_member(const void *buf, size_t len, const char *name, const char *key, mc_json **root,
                         const mc_json **val, mc_err *e) {
    int rc = mc_dr_parse_json(buf, len, name, root, e);
    if (rc) return rc;
    if ((*root)->type != MC_JSON_OBJECT) {
        mc_json_free(*root);
        *root = NULL;
        return mc_fail(e, MC_E_FORMAT, "%s: not a JSON object", name);
    }
    *val = get_last(*root, key);
    if (!*val) {
        mc_json_free(*root);
        *root = NULL;
        return mc_fail(e, MC_E_FORMAT, "%s: no \"%s\" key", name, key);
    }
    return 0;
}

int mc_dr_parse_syn(const void *buf, size_t len, const char *name, const char *key, mc_strlist *out, mc_err *e) {
    if (!key) key = "syn_text";
    mc_json *root;
    const mc_json *v;
    int rc = object_member(buf, len, name, key, &root, &v, e);
    if (rc) return rc;
    if (v->type != MC_JSON_ARRAY) rc = mc_fail(e, MC_E_FORMAT, "%s: \"%s\" is not a list", name, key);
    else if (v->count == 0) rc = mc_fail(e, MC_E_FORMAT, "%s: \"%s\" is an empty list", name, key);
    int before = out->count;
    for (int i = 0; !rc && i < v->count; i++) {
        const mc_json *s = &v->items[i];
        if (s->type != MC_JSON_STRING) rc = mc_fail(e, MC_E_FORMAT, "%s: \"%s\"[%d] is not a string", name, key, i);
        else if (memchr(s->str, 0, s->len)) rc = mc_fail(e, MC_E_FORMAT, "%s: \"%s\"[%d] contains a NUL", name, key, i);
        else rc = mc_strlist_push(out, s->str, s->len, e);
    }
    while (rc && out->count > before) {
        out->count--;
        out->bytes -= strlen(out->items[out->count]);
        free(out->items[out->count]);
    }
    mc_json_free(root);
    return rc;
}

int mc_dr_parse_paug(const void *buf, size_t len, const char *name, mc_dr_paug *p, mc_err *e) {
    memset(p, 0, sizeof *p);
    const mc_json *v;
    int rc = object_member(buf, len, name, "param_aug", &p->root, &v, e);
    if (rc) return rc;
    if (v->type == MC_JSON_STRING) { /* the Hugging Face copy: the list as a JSON string */
        p->inner = mc_json_parse(v->str, v->len, e);
        if (!p->inner) {
            mc_err_prefix(e, "%s: \"param_aug\" string", name);
            mc_dr_paug_free(p);
            return MC_E_FORMAT;
        }
        v = p->inner;
    }
    if (v->type != MC_JSON_ARRAY || v->count == 0) {
        mc_dr_paug_free(p);
        return mc_fail(e, MC_E_FORMAT, "%s: \"param_aug\" is not a non-empty list", name);
    }
    for (int i = 0; i < v->count; i++)
        if (v->items[i].type == MC_JSON_NULL) {
            mc_dr_paug_free(p);
            return mc_fail(e, MC_E_FORMAT, "%s: \"param_aug\"[%d] is null", name, i);
        }
    p->list = v;
    p->count = v->count;
    return 0;
}

void mc_dr_paug_free(mc_dr_paug *p) {
    mc_json_free(p->root);
    mc_json_free(p->inner);
    memset(p, 0, sizeof *p);
}

void mc_dr_emb_free(mc_dr_emb *m) {
    free(m->image_emb);
    free(m->text_emb);
    free(m->syn_text_emb);
    memset(m, 0, sizeof *m);
}

/* ---- embeddings: one checker for both containers ---- */

typedef struct emb_src {
    int (*get)(void *ctx, const char *key, int *present, int64_t *rows, int64_t *cols, int *is_float, mc_err *e);
    void (*convert)(void *ctx, const char *key, float *dst);
    void *ctx;
} emb_src;

static int take(const emb_src *src, const char *name, const char *key, int required, int *dim, int *rows_out,
                float **dst, mc_err *e) {
    int present = 0, is_float = 0;
    int64_t rows = 0, cols = 0;
    int rc = src->get(src->ctx, key, &present, &rows, &cols, &is_float, e);
    if (rc) return rc;
    if (!present) return required ? mc_fail(e, MC_E_FORMAT, "%s: no '%s' array", name, key) : 0;
    if (!is_float) return mc_fail(e, MC_E_FORMAT, "%s: '%s' is not a float array", name, key);
    if (rows < 0 || cols < 1 || rows > (1 << 24) || cols > (1 << 20))
        return mc_fail(e, MC_E_FORMAT, "%s: '%s' is not a 2-D [rows, D] array of sensible size", name, key);
    if (*dim && cols != *dim)
        return mc_fail(e, MC_E_FORMAT, "%s: '%s' has width %lld, other embeddings %d", name, key, (long long)cols, *dim);
    if (required && rows < 1) return mc_fail(e, MC_E_FORMAT, "%s: '%s' has no rows", name, key);
    *dim = (int)cols;
    *dst = malloc((size_t)(rows * cols > 0 ? rows * cols : 1) * sizeof(float));
    if (!*dst) return mc_fail(e, MC_E_NOMEM, "%s: out of memory", name);
    src->convert(src->ctx, key, *dst);
    *rows_out = (int)rows;
    return 0;
}

static int collect(const emb_src *src, const char *name, mc_dr_emb *out, mc_err *e) {
    memset(out, 0, sizeof *out);
    int rc = take(src, name, "image_emb", 1, &out->dim, &out->n_image, &out->image_emb, e);
    if (!rc) rc = take(src, name, "text_emb", 1, &out->dim, &out->n_text, &out->text_emb, e);
    if (!rc) rc = take(src, name, "syn_text_emb", 0, &out->dim, &out->n_syn, &out->syn_text_emb, e);
    if (rc) mc_dr_emb_free(out);
    return rc;
}

typedef struct npz_ctx {
    mc_npz z;
    mc_npy a;
} npz_ctx;

static int npz_get(void *c, const char *key, int *present, int64_t *rows, int64_t *cols, int *is_float, mc_err *e) {
    npz_ctx *x = c;
    if (!mc_npz_has(&x->z, key)) return *present = 0, 0;
    int rc = mc_npz_get(&x->z, key, &x->a, e);
    if (rc) return rc;
    *present = 1;
    *is_float = x->a.type == MC_NPY_F32 || x->a.type == MC_NPY_F16 || x->a.type == MC_NPY_F64;
    if (x->a.ndim != 2) return *rows = -1, *cols = -1, 0;
    *rows = x->a.shape[0];
    *cols = x->a.shape[1];
    return 0;
}

static void npz_convert(void *c, const char *key, float *dst) {
    npz_ctx *x = c;
    (void)key; /* x->a is the array npz_get just parsed */
    mc_npy_to_f32(&x->a, 0, dst);
}

int mc_dr_parse_npz(const void *buf, size_t len, const char *name, mc_dr_emb *out, mc_err *e) {
    memset(out, 0, sizeof *out);
    npz_ctx x;
    int rc = mc_npz_open(&x.z, buf, len, name, e);
    if (rc) return rc;
    emb_src src = {npz_get, npz_convert, &x};
    rc = collect(&src, name, out, e);
    mc_npz_close(&x.z);
    return rc;
}

typedef struct pth_ctx {
    mc_tensor_map m;
} pth_ctx;

static int pth_get(void *c, const char *key, int *present, int64_t *rows, int64_t *cols, int *is_float, mc_err *e) {
    pth_ctx *x = c;
    const mc_tensor *t = mc_tensor_map_find(&x->m, key);
    (void)e;
    if (!t) return *present = 0, 0;
    *present = 1;
    *is_float = t->dtype == MC_DTYPE_F32 || t->dtype == MC_DTYPE_F16 || t->dtype == MC_DTYPE_BF16 || t->dtype == MC_DTYPE_F64;
    if (t->ndim != 2) return *rows = -1, *cols = -1, 0;
    *rows = t->shape[0];
    *cols = t->shape[1];
    return 0;
}

static void pth_convert(void *c, const char *key, float *dst) {
    pth_ctx *x = c;
    mc_tensor_to_f32(mc_tensor_map_find(&x->m, key), dst);
}

/* gzip.decompress: concatenated members, NUL padding between/after them skipped. */
static int gunzip(const unsigned char *in, size_t n, const char *name, unsigned char **out, size_t *out_len, mc_err *e) {
    size_t cap = n * 4 + 4096, len = 0;
    if (cap > MC_DR_MAX_GUNZIP) cap = MC_DR_MAX_GUNZIP;
    unsigned char *o = malloc(cap);
    if (!o) return mc_fail(e, MC_E_NOMEM, "%s: out of memory", name);
    size_t pos = 0;
    int members = 0, rc = 0;
    while (!rc) {
        while (members && pos < n && in[pos] == 0) pos++;
        if (members && pos == n) break;
        if (n - pos < 2 || in[pos] != 0x1f || in[pos + 1] != 0x8b) {
            rc = mc_fail(e, MC_E_FORMAT, "%s: not a gzip stream%s", name, members ? " (garbage after the data)" : "");
            break;
        }
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
            rc = mc_fail(e, MC_E_NOMEM, "%s: zlib init failed", name);
            break;
        }
        zs.next_in = (unsigned char *)in + pos;
        int z = Z_OK;
        size_t avail_total = n - pos;
        while (z != Z_STREAM_END) {
            if (len == cap) {
                if (cap >= MC_DR_MAX_GUNZIP) { rc = mc_fail(e, MC_E_FORMAT, "%s: decompresses to more than %zu bytes", name, MC_DR_MAX_GUNZIP); break; }
                size_t nc = cap * 2 > MC_DR_MAX_GUNZIP ? MC_DR_MAX_GUNZIP : cap * 2;
                unsigned char *q = realloc(o, nc);
                if (!q) { rc = mc_fail(e, MC_E_NOMEM, "%s: out of memory", name); break; }
                o = q;
                cap = nc;
            }
            size_t consumed = (size_t)(zs.next_in - (in + pos));
            size_t left = avail_total - consumed;
            zs.avail_in = left > (1u << 30) ? (1u << 30) : (uInt)left;
            zs.next_out = o + len;
            size_t room = cap - len > (1u << 30) ? (1u << 30) : cap - len;
            zs.avail_out = (uInt)room;
            z = inflate(&zs, Z_NO_FLUSH);
            len += room - zs.avail_out;
            if (z == Z_STREAM_END) break;
            if (z == Z_BUF_ERROR && zs.avail_in == 0 && left == 0) { rc = mc_fail(e, MC_E_FORMAT, "%s: truncated gzip data", name); break; }
            if (z != Z_OK && z != Z_BUF_ERROR) { rc = mc_fail(e, MC_E_FORMAT, "%s: corrupt gzip data (%s)", name, zs.msg ? zs.msg : "inflate error"); break; }
        }
        pos += (size_t)(zs.next_in - (in + pos));
        inflateEnd(&zs);
        members++;
    }
    if (rc) {
        free(o);
        return rc;
    }
    *out = o;
    *out_len = len;
    return 0;
}

int mc_dr_parse_pth_gz(const void *buf, size_t len, const char *name, mc_dr_emb *out, mc_err *e) {
    memset(out, 0, sizeof *out);
    unsigned char *raw = NULL;
    size_t rlen = 0;
    int rc = gunzip(buf, len, name, &raw, &rlen, e);
    if (rc) return rc;
    pth_ctx x;
    mc_tensor_map_init(&x.m);
    mc_torch_options opt = {.keep_paths = 1};
    rc = mc_torch_parse_ex(raw, rlen, name, &opt, &x.m, e);
    if (!rc) {
        emb_src src = {pth_get, pth_convert, &x};
        rc = collect(&src, name, out, e);
    }
    mc_tensor_map_free(&x.m);
    free(raw);
    return rc;
}

static int check_emb(const mc_dr_emb *m, mc_err *e) {
    if (m->dim < 1 || m->n_image < 1 || m->n_text < 1 || m->n_syn < 0 || !m->image_emb || !m->text_emb ||
        (m->n_syn > 0 && !m->syn_text_emb))
        return mc_fail(e, MC_E_ARG, "embeddings: bad sizes or missing arrays");
    return 0;
}

int mc_dr_encode_npz(const mc_dr_emb *m, unsigned char **out, size_t *out_len, mc_err *e) {
    int rc = check_emb(m, e);
    if (rc) return rc;
    mc_npz_writer w;
    mc_npz_writer_init(&w);
    int64_t s1[2] = {m->n_image, m->dim}, s2[2] = {m->n_text, m->dim}, s3[2] = {m->n_syn, m->dim};
    rc = mc_npz_writer_add(&w, "image_emb", MC_NPY_F32, 2, s1, m->image_emb, e);
    if (!rc) rc = mc_npz_writer_add(&w, "text_emb", MC_NPY_F32, 2, s2, m->text_emb, e);
    if (!rc && m->n_syn > 0) rc = mc_npz_writer_add(&w, "syn_text_emb", MC_NPY_F32, 2, s3, m->syn_text_emb, e);
    if (!rc) return mc_npz_writer_finish(&w, out, out_len, e);
    mc_npz_writer_free(&w);
    return rc;
}

static int gzip_bytes(const unsigned char *in, size_t n, unsigned char **out, size_t *out_len, mc_err *e) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return mc_fail(e, MC_E_NOMEM, "zlib init failed");
    size_t cap = deflateBound(&zs, (uLong)n) + 64;
    unsigned char *o = malloc(cap);
    if (!o) {
        deflateEnd(&zs);
        return mc_fail(e, MC_E_NOMEM, "out of memory");
    }
    zs.next_in = (unsigned char *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = o;
    zs.avail_out = (uInt)cap;
    int z = deflate(&zs, Z_FINISH);
    size_t len = cap - zs.avail_out;
    deflateEnd(&zs);
    if (z != Z_STREAM_END) {
        free(o);
        return mc_fail(e, MC_E_NOMEM, "gzip compression failed");
    }
    *out = o;
    *out_len = len;
    return 0;
}

int mc_dr_encode_pth_gz(const mc_dr_emb *m, unsigned char **out, size_t *out_len, mc_err *e) {
    int rc = check_emb(m, e);
    if (rc) return rc;
    if ((uint64_t)(m->n_image + m->n_text + m->n_syn) * (uint64_t)m->dim > (1u << 30))
        return mc_fail(e, MC_E_ARG, "embeddings: too large for one member");
    const char *keys[3] = {"image_emb", "text_emb", "syn_text_emb"};
    const float *src[3] = {m->image_emb, m->text_emb, m->syn_text_emb};
    int rows[3] = {m->n_image, m->n_text, m->n_syn};
    uint16_t *bf[3] = {NULL, NULL, NULL};
    mc_tensor_map map;
    mc_tensor_map_init(&map);
    for (int k = 0; k < 3 && !rc; k++) {
        if (k == 2 && m->n_syn == 0) break;
        size_t cnt = (size_t)rows[k] * (size_t)m->dim;
        bf[k] = malloc(cnt * sizeof *bf[k]);
        if (!bf[k]) { rc = mc_fail(e, MC_E_NOMEM, "out of memory"); break; }
        for (size_t i = 0; i < cnt; i++) bf[k][i] = mc_f32_to_bf16(src[k][i]);
        mc_tensor t = {.dtype = MC_DTYPE_BF16, .ndim = 2, .shape = {rows[k], m->dim}, .stride = {m->dim, 1},
                       .data = bf[k], .storage_id = -1};
        rc = mc_tensor_map_add(&map, keys[k], &t, e);
    }
    char *raw = NULL;
    size_t rlen = 0;
    if (!rc) {
        FILE *f = open_memstream(&raw, &rlen);
        if (!f) rc = mc_fail(e, MC_E_NOMEM, "out of memory");
        else {
            rc = mc_torch_save_fp(f, "pth", &map, e);
            if (fclose(f) != 0 && !rc) rc = mc_fail(e, MC_E_NOMEM, "out of memory");
        }
    }
    if (!rc) rc = gzip_bytes((const unsigned char *)raw, rlen, out, out_len, e);
    free(raw);
    mc_tensor_map_free(&map);
    for (int k = 0; k < 3; k++) free(bf[k]);
    return rc;
}

const mc_wds_member *mc_dr_sample_image(const mc_wds_sample *s) {
    static const char *exts[4] = {"jpg", "png", "jpeg", "webp"};
    for (int i = 0; i < 4; i++) {
        const mc_wds_member *m = mc_wds_sample_find(s, exts[i]);
        if (m) return m;
    }
    return NULL;
}

int mc_dr_sample_emb(const mc_wds_sample *s, mc_dr_emb *out, mc_err *e) {
    char name[600];
    const mc_wds_member *m = mc_wds_sample_find(s, "npz");
    if (m) {
        snprintf(name, sizeof name, "%s: sample '%s': npz", s->shard, s->key);
        return mc_dr_parse_npz(m->data, m->size, name, out, e);
    }
    m = mc_wds_sample_find(s, "pth.gz");
    if (m) {
        snprintf(name, sizeof name, "%s: sample '%s': pth.gz", s->shard, s->key);
        return mc_dr_parse_pth_gz(m->data, m->size, name, out, e);
    }
    memset(out, 0, sizeof *out);
    return mc_fail(e, MC_E_FORMAT, "%s: sample '%s': no npz or pth.gz embeddings", s->shard, s->key);
}
