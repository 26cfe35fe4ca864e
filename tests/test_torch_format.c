/* torch.save reader and writer.
 *
 * 1. Every shared/golden/torch_format/X.pt reads exactly as X.pt.expected.json says:
 *    dtype, shape, stride, storage offset/numel, storage sharing, values (exact), scalars,
 *    zip entries; the legacy (pre-1.6) file is read too.
 * 2. Default (unwrapped) names, routing through mc_checkpoint_load.
 * 3. Bad input: truncation at every length, corrupt central directory bytes, a bad
 *    pickle opcode, views and persistent ids that do not fit their storage: an error
 *    naming the file, never a crash (run under ASan too).
 * 4. mc_torch_save: the s0 weight-rule model and the golden files round-trip bit-exact.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "common/test_util.h"
#include "common/weight_rule.h"
#include "io/checkpoint.h"
#include "io/mapped_file.h"
#include "io/torch_checkpoint.h"
#include "io/torch_writer.h"
#include "io/zip.h"

/* ---- scalar collection ---- */

typedef struct scalar {
    char path[256];
    mc_torch_value v;
    char str[256];
} scalar;

typedef struct scalars {
    scalar items[64];
    int n;
} scalars;

static void on_scalar(void *ctx, const char *const *path, int depth, const mc_torch_value *v) {
    scalars *s = ctx;
    if (s->n == 64) return;
    scalar *x = &s->items[s->n++];
    x->path[0] = 0;
    for (int i = 0; i < depth; i++) {
        if (i) strncat(x->path, ".", sizeof x->path - strlen(x->path) - 1);
        strncat(x->path, path[i], sizeof x->path - strlen(x->path) - 1);
    }
    x->v = *v;
    if (v->kind == MC_TORCH_STR) {
        size_t n = v->len < sizeof x->str - 1 ? v->len : sizeof x->str - 1;
        memcpy(x->str, v->s, n);
        x->str[n] = 0;
    }
}

static void join_path(const mc_json *path, char *out, size_t n) {
    out[0] = 0;
    for (int i = 0; i < path->count; i++) {
        if (i) strncat(out, ".", n - strlen(out) - 1);
        strncat(out, path->items[i].str, n - strlen(out) - 1);
    }
}

static mc_json *load_json(const char *path) {
    char *text;
    size_t len;
    mc_err e = {0};
    if (mc_read_file(path, 1 << 20, &text, &len, &e)) mc_test_fatal("golden data missing: %s", e.msg);
    mc_json *j = mc_json_parse(text, len, &e);
    free(text);
    if (!j) mc_test_fatal("%s: %s", path, e.msg);
    return j;
}

/* ---- 1. golden files ---- */

/* Checks the .pt at `path` against the expectation at `jpath` (schema of the golden
 * README section 6; "format"/"zip_entries"/"default_names" are checked when present). */
static void check_expected(const char *file, const char *path, const char *jpath) {
    mc_json *exp = load_json(jpath);
    const mc_json *tensors = mc_json_get(exp, "tensors"), *sc = mc_json_get(exp, "scalars");
    if (!tensors || !sc) mc_test_fatal("%s: malformed expectation", file);

    scalars got_sc = {0};
    mc_torch_options opt = {.keep_paths = 1, .on_scalar = on_scalar, .ctx = &got_sc};
    mc_tensor_map m;
    mc_tensor_map_init(&m);
    mc_err e = {0};
    int r = mc_torch_load_ex(path, &opt, &m, &e);
    CHECK(r == 0, "%s: load failed: %s", file, e.msg);
    if (r) { mc_json_free(exp); return; }
    CHECK(m.count == tensors->count, "%s: %d tensors, expected %d", file, m.count, tensors->count);
    long long nvalues = 0;
    for (int i = 0; i < tensors->count; i++) {
        const mc_json *x = &tensors->items[i];
        char name[256];
        join_path(mc_json_get(x, "path"), name, sizeof name);
        const mc_tensor *t = mc_tensor_map_find(&m, name);
        CHECK(t != NULL, "%s: tensor '%s' missing", file, name);
        if (!t) continue;
        CHECK(i < m.count && strcmp(m.items[i].name, name) == 0, "%s: tensor %d is not '%s' (order)", file, i, name);
        CHECK(strcmp(mc_dtype_name(t->dtype), mc_json_get(x, "dtype")->str) == 0, "%s: %s dtype %s, expected %s", file,
              name, mc_dtype_name(t->dtype), mc_json_get(x, "dtype")->str);
        const mc_json *shape = mc_json_get(x, "shape"), *stride = mc_json_get(x, "stride");
        int ok = t->ndim == shape->count && t->ndim == stride->count;
        for (int d = 0; ok && d < t->ndim; d++)
            ok = t->shape[d] == (int64_t)shape->items[d].number && t->stride[d] == (int64_t)stride->items[d].number;
        CHECK(ok, "%s: %s shape/stride mismatch", file, name);
        CHECK(t->storage_offset == (int64_t)mc_json_get(x, "storage_offset")->number, "%s: %s storage_offset %lld", file,
              name, (long long)t->storage_offset);
        CHECK(t->storage_numel == (int64_t)mc_json_get(x, "storage_numel")->number, "%s: %s storage_numel %lld", file,
              name, (long long)t->storage_numel);
        /* sharing: same storage id as every listed tensor; when null, as no earlier tensor */
        const mc_json *share = mc_json_get(x, "shares_storage_with");
        if (share->type == MC_JSON_ARRAY) {
            for (int k = 0; k < share->count; k++) {
                char other[256];
                join_path(&(mc_json){.type = MC_JSON_ARRAY, .count = 1, .items = (mc_json *)&share->items[k]}, other,
                          sizeof other);
                const mc_tensor *o = mc_tensor_map_find(&m, other);
                CHECK(o && o->storage_id == t->storage_id, "%s: %s should share storage with %s", file, name, other);
            }
        } else {
            for (int k = 0; k < i && k < m.count; k++)
                CHECK(m.items[k].t.storage_id != t->storage_id, "%s: %s shares storage with %s", file, name, m.items[k].name);
        }
        const mc_json *vals = mc_json_get(x, "values");
        CHECK(vals->count == mc_tensor_numel(t), "%s: %s has %lld values, expected %d", file, name,
              (long long)mc_tensor_numel(t), vals->count);
        for (int k = 0; k < vals->count && k < mc_tensor_numel(t); k++) {
            double g = mc_tensor_get_f64(t, k), want = vals->items[k].number;
            int same = g == want && signbit(g) == signbit(want);
            if (!same) {
                CHECK(same, "%s: %s[%d] = %.17g, expected %.17g", file, name, k, g, want);
                break;
            }
            nvalues++;
        }
        if (t->dtype == MC_DTYPE_I64 && vals->count) { /* int64 beyond 2^53 would not survive the double */
            int64_t v0;
            memcpy(&v0, t->data, 8);
            CHECK((double)v0 == vals->items[0].number, "%s: %s int64 bits", file, name);
        }
    }
    CHECK(got_sc.n == sc->count, "%s: %d scalars, expected %d", file, got_sc.n, sc->count);
    for (int i = 0; i < sc->count && i < got_sc.n; i++) {
        const mc_json *x = &sc->items[i], *v = mc_json_get(x, "value");
        char name[256];
        join_path(mc_json_get(x, "path"), name, sizeof name);
        const scalar *g = &got_sc.items[i];
        CHECK(strcmp(g->path, name) == 0, "%s: scalar %d path '%s', expected '%s'", file, i, g->path, name);
        if (v->type == MC_JSON_STRING)
            CHECK(g->v.kind == MC_TORCH_STR && strcmp(g->str, v->str) == 0, "%s: scalar %s", file, name);
        else if (v->type == MC_JSON_BOOL)
            CHECK(g->v.kind == MC_TORCH_BOOL && g->v.i == v->boolean, "%s: scalar %s", file, name);
        else if (v->type == MC_JSON_NULL)
            CHECK(g->v.kind == MC_TORCH_NONE, "%s: scalar %s", file, name);
        else if (v->type == MC_JSON_NUMBER)
            CHECK((g->v.kind == MC_TORCH_INT && (double)g->v.i == v->number) ||
                      (g->v.kind == MC_TORCH_FLOAT && g->v.f == v->number),
                  "%s: scalar %s", file, name);
        else
            CHECK(0, "%s: unexpected scalar type in expectation", file);
    }
    /* the archive's member names */
    const mc_json *ze = mc_json_get(exp, "zip_entries"), *fj = mc_json_get(exp, "format");
    const char *fmt = fj ? fj->str : "";
    if (strcmp(fmt, "zip") == 0) {
        CHECK(ze && ze->type == MC_JSON_ARRAY, "%s: zip_entries missing", file);
        mc_zip z;
        r = mc_zip_open(&z, m.map_addr, m.map_len, file, &e);
        CHECK(r == 0, "%s: %s", file, e.msg);
        if (!r && ze) {
            CHECK(z.count == ze->count, "%s: %d zip entries, expected %d", file, z.count, ze->count);
            for (int i = 0; i < ze->count; i++) CHECK(mc_zip_find(&z, ze->items[i].str) >= 0, "%s: no entry %s", file, ze->items[i].str);
            mc_zip_close(&z);
        }
    } else if (fj) {
        CHECK(strcmp(fmt, "legacy") == 0 && mc_torch_sniff_legacy(m.map_addr, m.map_len), "%s: legacy format", file);
    }
    /* default names: "state_dict"/"model" unwrapped, "module." stripped */
    const mc_json *dn = mc_json_get(exp, "default_names");
    if (dn) {
        mc_tensor_map d;
        mc_tensor_map_init(&d);
        r = mc_checkpoint_load(path, &d, &e);
        CHECK(r == 0, "%s: %s", file, e.msg);
        CHECK(d.count == dn->count, "%s: %d tensors by default, expected %d", file, d.count, dn->count);
        for (int i = 0; i < d.count && i < dn->count; i++)
            CHECK(strcmp(d.items[i].name, dn->items[i].str) == 0, "%s: default name %d is '%s', expected '%s'", file, i,
                  d.items[i].name, dn->items[i].str);
        mc_tensor_map_free(&d);
    }
    printf("ok   %-28s %d tensors, %lld values, %d scalars exact\n", file, m.count, nvalues, got_sc.n);
    mc_tensor_map_free(&m);
    mc_json_free(exp);
}

static void check_golden(const char *file) {
    char rel[256], jrel[256];
    snprintf(rel, sizeof rel, "golden/torch_format/%s", file);
    snprintf(jrel, sizeof jrel, "golden/torch_format/%s.expected.json", file);
    check_expected(file, mc_test_path(rel), mc_test_path(jrel));
}

static void check_extra(const char *file) {
    char path[1024], jpath[1024];
    snprintf(path, sizeof path, "%s/torch_extra/%s", MC_TEST_DATA_DIR, file);
    snprintf(jpath, sizeof jpath, "%s/torch_extra/%s.expected.json", MC_TEST_DATA_DIR, file);
    check_expected(file, path, jpath);
}

/* ---- 2. default names and routing ---- */

static void check_default_names(void) {
    mc_tensor_map m;
    mc_tensor_map_init(&m);
    mc_err e = {0};
    int r = mc_checkpoint_load(mc_test_path("golden/torch_format/nested.pt"), &m, &e);
    CHECK(r == 0, "nested.pt via mc_checkpoint_load: %s", e.msg);
    const char *names[] = {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                           "1.num_batches_tracked"};
    CHECK(m.count == 7, "nested.pt: %d tensors after unwrapping state_dict", m.count);
    for (int i = 0; i < 7 && i < m.count; i++) CHECK(strcmp(m.items[i].name, names[i]) == 0, "nested.pt name %d: %s", i, m.items[i].name);
    const float *w;
    r = mc_tensor_map_f32(&m, "0.weight", 2, (const int64_t[]){2, 3}, &w, &e);
    CHECK(r == 0 && w[1] == -1.0f && w[5] == -0.125f, "nested.pt: 0.weight binds as f32");
    mc_tensor_map_free(&m);

    /* legacy through the router; safetensors through the router */
    mc_tensor_map_init(&m);
    r = mc_checkpoint_load(mc_test_path("golden/torch_format/big_endian_or_legacy.pt"), &m, &e);
    CHECK(r == 0 && m.count == 3, "legacy via mc_checkpoint_load: %s", e.msg);
    mc_tensor_map_free(&m);
    mc_tensor_map_init(&m);
    r = mc_checkpoint_load(mc_test_path("golden/s0.golden.safetensors"), &m, &e);
    CHECK(r == 0 && mc_tensor_map_find(&m, "output.image_embed"), "safetensors via mc_checkpoint_load: %s", e.msg);
    mc_tensor_map_free(&m);
}

/* ---- 3. bad input ---- */

static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, sizeof buf[0], "%s/%s", tmpdir, name);
    return b;
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) mc_test_fatal("cannot write %s", path);
    fclose(f);
}

static unsigned char *read_all(const char *rel, size_t *n) {
    char *d;
    mc_err e = {0};
    if (mc_read_file(mc_test_path(rel), 1 << 24, &d, n, &e)) mc_test_fatal("golden data missing: %s", e.msg);
    return (unsigned char *)d;
}

/* Expects mc_checkpoint_load to fail with a message naming the file (and containing `want`). */
static void expect_fail(const char *what, const void *data, size_t n, const char *want) {
    const char *path = tmp_path("bad.pt");
    write_file(path, data, n);
    mc_tensor_map m;
    mc_tensor_map_init(&m);
    mc_err e = {0};
    int r = mc_checkpoint_load(path, &m, &e);
    CHECK(r < 0, "%s: accepted", what);
    CHECK(strstr(e.msg, path) != NULL, "%s: message does not name the file: %s", what, e.msg);
    CHECK(!want || strstr(e.msg, want), "%s: message '%s' lacks '%s'", what, e.msg, want);
    CHECK(m.count == 0 && !m.map_addr, "%s: map not left empty", what);
    if (r < 0) printf("ok   %-34s -> %s\n", what, e.msg);
    mc_tensor_map_free(&m);
}

/* Offset of the central directory entry for `member` and of its data. */
static void locate(const unsigned char *buf, size_t n, const char *member, size_t *cd, size_t *data, size_t *size) {
    mc_zip z;
    mc_err e = {0};
    if (mc_zip_open(&z, buf, n, "x", &e)) mc_test_fatal("%s", e.msg);
    int i = mc_zip_find(&z, member);
    if (i < 0) mc_test_fatal("no member %s", member);
    const void *d;
    void *owned;
    if (mc_zip_read(&z, i, &d, size, &owned, 1, &e)) mc_test_fatal("%s", e.msg);
    *cd = (size_t)((const unsigned char *)z.entries[i].name - buf) - 46;
    *data = (size_t)((const unsigned char *)d - buf);
    mc_zip_close(&z);
}

static void fix_crc(unsigned char *buf, size_t cd, size_t data, size_t size) {
    uint32_t c = (uint32_t)crc32(0, buf + data, (uInt)size);
    for (int k = 0; k < 4; k++) buf[cd + 16 + (size_t)k] = (unsigned char)(c >> (8 * k));
}

static void check_bad_input(void) {
    size_t n, ln;
    unsigned char *basic = read_all("golden/torch_format/basic.pt", &n);
    unsigned char *legacy = read_all("golden/torch_format/big_endian_or_legacy.pt", &ln);
    unsigned char *copy = malloc(n);
    mc_err e;

    /* truncation at every length (in memory), and a few on disk for the messages */
    int accepted = 0;
    for (size_t len = 0; len < n; len++) {
        mc_tensor_map m;
        mc_tensor_map_init(&m);
        if (mc_checkpoint_parse(basic, len, "basic.pt", &m, &e) == 0) accepted++;
        mc_tensor_map_free(&m);
    }
    CHECK(accepted == 0, "truncated basic.pt accepted at %d lengths", accepted);
    accepted = 0;
    for (size_t len = 0; len < ln; len++) {
        mc_tensor_map m;
        mc_tensor_map_init(&m);
        if (mc_checkpoint_parse(legacy, len, "legacy.pt", &m, &e) == 0) accepted++;
        mc_tensor_map_free(&m);
    }
    CHECK(accepted == 0, "truncated legacy file accepted at %d lengths", accepted);
    printf("ok   truncation at all %zu + %zu lengths rejected\n", n, ln);
    expect_fail("truncated to 1000 bytes", basic, 1000, "end-of-central-directory");
    expect_fail("truncated to 4100 bytes", basic, 4100, NULL);
    expect_fail("legacy truncated to 500 bytes", legacy, 500, NULL);
    expect_fail("empty file", basic, 0, "empty");
    expect_fail("not a checkpoint", "hello world, this is text", 25, "not a PyTorch or safetensors checkpoint");

    /* corrupt central directory fields */
    size_t cd, data, size;
    locate(basic, n, "basic/data/3", &cd, &data, &size);
    memcpy(copy, basic, n); copy[cd] ^= 0xff;
    expect_fail("central directory signature", copy, n, "central directory");
    memcpy(copy, basic, n); copy[cd + 42] ^= 0x01;
    expect_fail("central directory local offset", copy, n, "basic/data/3");
    memcpy(copy, basic, n); copy[cd + 28] = 0xff;
    expect_fail("central directory name length", copy, n, NULL);
    memcpy(copy, basic, n); copy[cd + 16] ^= 0x55;
    expect_fail("central directory CRC", copy, n, "CRC");
    memcpy(copy, basic, n); copy[cd + 20] = 0x10; copy[cd + 24] = 0x10;
    expect_fail("central directory sizes", copy, n, NULL);
    memcpy(copy, basic, n); copy[data] ^= 0x40;
    expect_fail("storage bytes (CRC)", copy, n, "CRC");
    /* every byte of the directory flipped: an error or the same tensors, never a crash */
    size_t cd0;
    locate(basic, n, "basic/data.pkl", &cd0, &data, &size);
    int flips = 0, rejected = 0;
    for (size_t p = cd0; p < n; p++) {
        memcpy(copy, basic, n);
        copy[p] ^= 0xff;
        mc_tensor_map m;
        mc_tensor_map_init(&m);
        int r = mc_checkpoint_parse(copy, n, "basic.pt", &m, &e);
        flips++;
        if (r) rejected++;
        else CHECK(m.count == 14, "flip at %zu: %d tensors", p, m.count);
        mc_tensor_map_free(&m);
    }
    printf("ok   %d directory bytes flipped: %d rejected, the rest read the same 14 tensors\n", flips, rejected);

    /* bad pickle opcode (CRC recomputed so the pickle itself is reached) */
    memcpy(copy, basic, n);
    copy[data + 2] = 0xff; /* the opcode after PROTO 2 */
    fix_crc(copy, cd0, data, size);
    expect_fail("bad pickle opcode", copy, n, "unsupported opcode 0xff");
    memcpy(copy, basic, n);
    copy[data + size - 1] = 'K'; /* STOP replaced */
    fix_crc(copy, cd0, data, size);
    expect_fail("pickle without STOP", copy, n, "pickle");
    free(copy);

    /* views.pt: a view larger than its storage, and a persistent id larger than its record */
    size_t vn;
    unsigned char *views = read_all("golden/torch_format/views.pt", &vn);
    locate(views, vn, "views/data.pkl", &cd, &data, &size);
    unsigned char *v2 = malloc(vn);
    const unsigned char pat_size[] = {'K', 4, 'K', 6, 0x86}; /* base: size (4, 6) */
    const unsigned char pat_numel[] = {'K', 24, 't'};        /* storage 0: numel 24 */
    unsigned char *hit = memmem(views + data, size, pat_size, sizeof pat_size);
    if (!hit) mc_test_fatal("views.pt: size tuple not found");
    memcpy(v2, views, vn);
    v2[hit - views + 1] = 5;
    fix_crc(v2, cd, data, size);
    expect_fail("view larger than its storage", v2, vn, "does not fit its storage");
    hit = memmem(views + data, size, pat_numel, sizeof pat_numel);
    if (!hit) mc_test_fatal("views.pt: numel not found");
    memcpy(v2, views, vn);
    v2[hit - views + 1] = 25;
    fix_crc(v2, cd, data, size);
    expect_fail("storage record too small", v2, vn, "too small");
    /* a storage offset pushing a view off the end: slice has offset 8 */
    const unsigned char pat_off[] = {'Q', 'K', 8};
    hit = memmem(views + data, size, pat_off, sizeof pat_off);
    if (!hit) mc_test_fatal("views.pt: offset not found");
    memcpy(v2, views, vn);
    v2[hit - views + 2] = 20;
    fix_crc(v2, cd, data, size);
    expect_fail("storage offset out of range", v2, vn, "tensor 'slice'");
    free(v2);
    free(views);

    /* legacy: corrupt element count of the first storage */
    unsigned char *l2 = malloc(ln);
    memcpy(l2, legacy, ln);
    const unsigned char pat_cnt[] = {6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x3f};
    hit = memmem(l2, ln, pat_cnt, sizeof pat_cnt);
    if (!hit) mc_test_fatal("legacy: storage count not found");
    hit[0] = 7;
    expect_fail("legacy storage count", l2, ln, "legacy storage");
    free(l2);
    free(basic);
    free(legacy);
}

static int same_tensor(const mc_tensor *a, const mc_tensor *b);

/* ---- 3b. hand-built archives: ZIP64 extras, deflate, hostile pickles ---- */

typedef struct buf {
    unsigned char *p;
    size_t n, cap;
} buf;

static void bput(buf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) mc_test_fatal("out of memory");
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void ble(buf *b, uint64_t v, int n) {
    for (int i = 0; i < n; i++) { unsigned char c = (unsigned char)(v >> (8 * i)); bput(b, &c, 1); }
}
static void bstr(buf *b, const char *s) { bput(b, s, strlen(s)); }

static int deflate_end_ok(z_stream *s) { return deflate(s, Z_FINISH); }

typedef struct zmember {
    const char *name;
    const void *data;
    size_t n;
} zmember;

/* A zip of the members: zip64 = sizes and offsets through ZIP64 extra fields only;
 * deflate = method 8 (raw deflate by zlib). */
static buf build_zip(const zmember *mem, int n, int zip64, int deflate) {
    buf z = {0}, cd = {0};
    for (int i = 0; i < n; i++) {
        uint32_t crc = (uint32_t)crc32(0, mem[i].data, (uInt)mem[i].n);
        unsigned char *comp = (unsigned char *)mem[i].data;
        size_t clen = mem[i].n;
        if (deflate) {
            z_stream s = {0};
            uLong bound = compressBound((uLong)mem[i].n) + 64;
            comp = malloc(bound);
            if (!comp || deflateInit2(&s, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) mc_test_fatal("zlib");
            s.next_in = (unsigned char *)mem[i].data;
            s.avail_in = (uInt)mem[i].n;
            s.next_out = comp;
            s.avail_out = (uInt)bound;
            if (deflate_end_ok(&s) != Z_STREAM_END) mc_test_fatal("deflate");
            clen = s.total_out;
            deflateEnd(&s);
        }
        size_t off = z.n, nlen = strlen(mem[i].name);
        ble(&z, 0x04034b50u, 4); ble(&z, 45, 2); ble(&z, 0, 2); ble(&z, deflate ? 8 : 0, 2); ble(&z, 0, 4);
        ble(&z, crc, 4);
        ble(&z, zip64 ? 0xffffffffu : clen, 4);
        ble(&z, zip64 ? 0xffffffffu : mem[i].n, 4);
        ble(&z, nlen, 2);
        ble(&z, zip64 ? 20 : 0, 2);
        bstr(&z, mem[i].name);
        if (zip64) { ble(&z, 1, 2); ble(&z, 16, 2); ble(&z, mem[i].n, 8); ble(&z, clen, 8); }
        bput(&z, comp, clen);
        if (deflate) free(comp);
        ble(&cd, 0x02014b50u, 4); ble(&cd, 45, 2); ble(&cd, 45, 2); ble(&cd, 0, 2); ble(&cd, deflate ? 8 : 0, 2);
        ble(&cd, 0, 4); ble(&cd, crc, 4);
        ble(&cd, zip64 ? 0xffffffffu : clen, 4);
        ble(&cd, zip64 ? 0xffffffffu : mem[i].n, 4);
        ble(&cd, nlen, 2);
        ble(&cd, zip64 ? 28 : 0, 2);
        ble(&cd, 0, 2); ble(&cd, 0, 2); ble(&cd, 0, 2); ble(&cd, 0, 4);
        ble(&cd, zip64 ? 0xffffffffu : off, 4);
        bstr(&cd, mem[i].name);
        if (zip64) { ble(&cd, 1, 2); ble(&cd, 24, 2); ble(&cd, mem[i].n, 8); ble(&cd, clen, 8); ble(&cd, off, 8); }
    }
    size_t cd_off = z.n;
    bput(&z, cd.p, cd.n);
    size_t e64 = z.n;
    if (zip64) {
        ble(&z, 0x06064b50u, 4); ble(&z, 44, 8); ble(&z, 45, 2); ble(&z, 45, 2); ble(&z, 0, 4); ble(&z, 0, 4);
        ble(&z, (uint64_t)n, 8); ble(&z, (uint64_t)n, 8); ble(&z, cd.n, 8); ble(&z, cd_off, 8);
        ble(&z, 0x07064b50u, 4); ble(&z, 0, 4); ble(&z, e64, 8); ble(&z, 1, 4);
    }
    ble(&z, 0x06054b50u, 4); ble(&z, 0, 4);
    ble(&z, zip64 ? 0xffff : (uint64_t)n, 2); ble(&z, zip64 ? 0xffff : (uint64_t)n, 2);
    ble(&z, zip64 ? 0xffffffffu : cd.n, 4); ble(&z, zip64 ? 0xffffffffu : cd_off, 4); ble(&z, 0, 2);
    free(cd.p);
    return z;
}

/* pickle snippets */
static void p_str(buf *b, const char *s) { bstr(b, "X"); ble(b, strlen(s), 4); bstr(b, s); }
static void p_global(buf *b, const char *mod, const char *name) {
    bstr(b, "c"); bstr(b, mod); bstr(b, "\n"); bstr(b, name); bstr(b, "\n");
}
static void p_int(buf *b, int v) { bstr(b, "K"); unsigned char c = (unsigned char)v; bput(b, &c, 1); }
/* _rebuild_tensor_v2(storage(type, key, numel), 0, (n,), (1,), False, OrderedDict()) */
static void p_tensor(buf *b, const char *ctor, const char *stype, const char *key, int numel, int n) {
    p_global(b, "torch._utils", ctor);
    bstr(b, "((");
    p_str(b, "storage");
    p_global(b, "torch", stype);
    p_str(b, key);
    p_str(b, "cpu");
    p_int(b, numel);
    bstr(b, "tQ");
    p_int(b, 0);
    bstr(b, "(");
    p_int(b, n);
    bstr(b, "t(");
    p_int(b, 1);
    bstr(b, "t\x89");
    p_global(b, "collections", "OrderedDict");
    bstr(b, ")Rt");
    bstr(b, "R");
}

static const float four[4] = {1.0f, -2.0f, 0.5f, 8.0f};

/* Parses pickle `pk` inside a zip with the storage t/data/0 = four floats. */
static int parse_pickle(const buf *pk, mc_tensor_map *m, mc_err *e, const char *extra_name, const char *extra) {
    zmember mem[3] = {{"t/data.pkl", pk->p, pk->n}, {"t/data/0", four, sizeof four}, {extra_name, extra, extra ? strlen(extra) : 0}};
    buf z = build_zip(mem, extra ? 3 : 2, 0, 0);
    mc_tensor_map_init(m);
    int r = mc_checkpoint_parse(z.p, z.n, "hand.pt", m, e);
    free(z.p); /* the views point into z: callers only look at names and errors */
    return r;
}

static void expect_pickle_error(const char *what, const buf *pk, const char *want) {
    mc_tensor_map m;
    mc_err e = {0};
    int r = parse_pickle(pk, &m, &e, NULL, NULL);
    CHECK(r < 0 && strstr(e.msg, "hand.pt") && strstr(e.msg, want), "%s: r=%d '%s' (want '%s')", what, r, e.msg, want);
    CHECK(m.count == 0, "%s: map not empty", what);
    if (r < 0 && strstr(e.msg, want)) printf("ok   %-34s -> %s\n", what, e.msg);
    mc_tensor_map_free(&m);
}

static void check_hand_built(void) {
    /* ZIP64 extras and deflate: basic.pt repacked four ways reads the same */
    size_t n;
    unsigned char *basic = read_all("golden/torch_format/basic.pt", &n);
    mc_zip z;
    mc_err e = {0};
    if (mc_zip_open(&z, basic, n, "basic.pt", &e)) mc_test_fatal("%s", e.msg);
    zmember mem[32];
    char names[32][64];
    void *owned[32];
    int nm = z.count < 32 ? z.count : 32;
    for (int i = 0; i < nm; i++) {
        snprintf(names[i], sizeof names[i], "%.*s", (int)z.entries[i].name_len, z.entries[i].name);
        mem[i].name = names[i];
        if (mc_zip_read(&z, i, &mem[i].data, &mem[i].n, &owned[i], 1, &e)) mc_test_fatal("%s", e.msg);
    }
    mc_tensor_map ref;
    mc_tensor_map_init(&ref);
    if (mc_checkpoint_parse(basic, n, "basic.pt", &ref, &e)) mc_test_fatal("%s", e.msg);
    for (int mode = 0; mode < 4; mode++) {
        buf zz = build_zip(mem, nm, mode & 1, mode >> 1);
        mc_tensor_map m;
        mc_tensor_map_init(&m);
        int r = mc_checkpoint_parse(zz.p, zz.n, "repacked.pt", &m, &e);
        CHECK(r == 0, "repacked (zip64 %d, deflate %d): %s", mode & 1, mode >> 1, e.msg);
        int same = m.count == ref.count;
        for (int i = 0; same && i < m.count; i++)
            same = strcmp(m.items[i].name, ref.items[i].name) == 0 && same_tensor(&m.items[i].t, &ref.items[i].t);
        CHECK(same, "repacked (zip64 %d, deflate %d) reads differently", mode & 1, mode >> 1);
        printf("%-4s basic.pt repacked, zip64 %d, deflate %d: %d tensors identical\n", same ? "ok" : "FAIL", mode & 1,
               mode >> 1, m.count);
        if (mode == 3) {
            /* corrupt deflate stream; an inflated size that is a lie */
            mc_zip z2;
            if (mc_zip_open(&z2, zz.p, zz.n, "x", &e)) mc_test_fatal("%s", e.msg);
            int k = mc_zip_find(&z2, "basic/data/13");
            size_t lo = (size_t)z2.entries[k].local_offset, dstart = lo + 30 + 13 + 20;
            size_t cdent = (size_t)((const unsigned char *)z2.entries[k].name - zz.p) - 46;
            mc_zip_close(&z2);
            unsigned char *c = malloc(zz.n);
            memcpy(c, zz.p, zz.n);
            c[dstart + 3] ^= 0x5a;
            expect_fail("corrupt deflate data", c, zz.n, "basic/data/13");
            memcpy(c, zz.p, zz.n);
            c[cdent + 46 + 13 + 4 + 3] = 0x40; /* ZIP64 usize: 1 GiB from a few bytes */
            expect_fail("deflate size bomb", c, zz.n, "claims");
            memcpy(c, zz.p, zz.n);
            c[cdent + 46 + 13 + 4] += 1; /* usize one larger than the stream inflates to */
            expect_fail("inflated size mismatch", c, zz.n, "basic/data/13");
            memcpy(c, zz.p, zz.n);
            c[cdent + 46 + 13 + 2] = 8; /* ZIP64 extra too short for its fields */
            expect_fail("short ZIP64 extra field", c, zz.n, "ZIP64");
            free(c);
        }
        mc_tensor_map_free(&m);
        free(zz.p);
    }
    for (int i = 0; i < nm; i++) free(owned[i]);
    mc_zip_close(&z);
    mc_tensor_map_free(&ref);
    free(basic);

    /* a hand-written pickle the reader must accept: an opaque object (argparse.Namespace
     * with BUILD state) and an unknown call next to a tensor */
    buf pk = {0};
    bstr(&pk, "\x80\x02}(");
    p_str(&pk, "w");
    p_tensor(&pk, "_rebuild_tensor_v2", "FloatStorage", "0", 4, 4);
    p_str(&pk, "args");
    p_global(&pk, "argparse", "Namespace");
    bstr(&pk, ")R}");
    p_str(&pk, "lr");
    p_tensor(&pk, "_rebuild_tensor_v2", "ComplexFloatStorage", "9", 1, 1); /* inside an opaque object: ignored */
    bstr(&pk, "sb");
    p_str(&pk, "x");
    p_global(&pk, "os", "system");
    bstr(&pk, "(");
    p_str(&pk, "echo pwned");
    bstr(&pk, "tRu.");
    mc_tensor_map m;
    int r = parse_pickle(&pk, &m, &e, NULL, NULL);
    CHECK(r == 0 && m.count == 1 && strcmp(m.items[0].name, "w") == 0, "opaque objects: r=%d %s, %d tensors", r, e.msg, m.count);
    mc_tensor_map_free(&m);
    printf("ok   opaque objects and unknown calls next to a tensor are skipped\n");

    /* hostile or unsupported pickles */
    pk.n = 0;
    bstr(&pk, "\x80\x02}(");
    p_str(&pk, "w");
    p_tensor(&pk, "_rebuild_tensor_v2", "ComplexFloatStorage", "0", 2, 2);
    bstr(&pk, "u.");
    expect_pickle_error("unknown storage type", &pk, "tensor 'w': storage '0' has unsupported type torch.ComplexFloatStorage");
    pk.n = 0;
    bstr(&pk, "\x80\x02}(");
    p_str(&pk, "q");
    p_tensor(&pk, "_rebuild_qtensor", "FloatStorage", "0", 4, 4);
    bstr(&pk, "u.");
    expect_pickle_error("unsupported tensor constructor", &pk, "unsupported tensor constructor torch._utils._rebuild_qtensor");
    pk.n = 0;
    bstr(&pk, "\x80\x02}(");
    p_str(&pk, "w");
    p_tensor(&pk, "_rebuild_tensor_v2", "FloatStorage", "7", 4, 4);
    bstr(&pk, "u.");
    expect_pickle_error("missing storage record", &pk, "storage record 't/data/7' is missing");
    pk.n = 0;
    bstr(&pk, "\x80\x02}(");
    p_str(&pk, "a.b");
    p_tensor(&pk, "_rebuild_tensor_v2", "FloatStorage", "0", 4, 4);
    p_str(&pk, "a");
    bstr(&pk, "}");
    p_str(&pk, "b");
    p_tensor(&pk, "_rebuild_tensor_v2", "FloatStorage", "0", 4, 2);
    bstr(&pk, "su.");
    expect_pickle_error("duplicate names", &pk, "duplicate tensor name 'a.b'");
    pk.n = 0;
    bstr(&pk, "\x80\x02}(");
    p_str(&pk, "w");
    p_tensor(&pk, "_rebuild_tensor_v2", "FloatStorage", "0", 4, 4);
    p_str(&pk, "loop");
    bput(&pk, "]q\0h\0au.", 8); /* a list that contains itself */
    expect_pickle_error("self-containing list", &pk, "nested more than 64 levels");
    pk.n = 0;
    bput(&pk, "\x80\x02}q\0", 5); /* 40 levels of {a: d, b: d}: 2^40 paths */
    for (int i = 0; i < 40; i++) {
        bstr(&pk, "}(");
        p_str(&pk, "a");
        bstr(&pk, "h");
        unsigned char k = (unsigned char)i;
        bput(&pk, &k, 1);
        p_str(&pk, "b");
        bstr(&pk, "h");
        bput(&pk, &k, 1);
        bstr(&pk, "uq");
        k++;
        bput(&pk, &k, 1);
    }
    bstr(&pk, ".");
    expect_pickle_error("shared-reference blow-up", &pk, "too many shared references");
    pk.n = 0;
    bstr(&pk, "\x80\x02}r\xff\xff\xff\xff.");
    expect_pickle_error("huge memo index", &pk, "memo index out of range");
    pk.n = 0;
    bstr(&pk, "\x80\x02");
    for (int i = 0; i < 100000; i++) bstr(&pk, "(");
    expect_pickle_error("100000 MARKs, no STOP", &pk, "no STOP");
    pk.n = 0;
    bstr(&pk, "\x80\x02}(");
    p_str(&pk, "w");
    p_tensor(&pk, "_rebuild_tensor_v2", "FloatStorage", "0", 4, 4);
    bstr(&pk, "u.");
    r = parse_pickle(&pk, &m, &e, "t/byteorder", "big");
    CHECK(r == MC_E_UNSUPPORTED && strstr(e.msg, "byte order 'big'"), "big-endian byteorder: %s", e.msg);
    mc_tensor_map_free(&m);
    r = parse_pickle(&pk, &m, &e, "t/byteorder", "little");
    CHECK(r == 0 && m.count == 1, "little-endian byteorder record: %s", e.msg);
    mc_tensor_map_free(&m);
    free(pk.p);
    zmember ts[2] = {{"m/constants.pkl", "\x80\x02).", 4}, {"m/version", "3\n", 2}};
    buf zz = build_zip(ts, 2, 0, 0);
    expect_fail("TorchScript archive", zz.p, zz.n, "TorchScript");
    free(zz.p);
}

/* ---- 4. writer ---- */

static int same_tensor(const mc_tensor *a, const mc_tensor *b) {
    if (a->dtype != b->dtype || a->ndim != b->ndim) return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return 0;
    size_t es = mc_dtype_size(a->dtype);
    int64_t n = mc_tensor_numel(a);
    for (int64_t i = 0; i < n; i++) {
        /* compare element bytes through a contiguous walk of both views */
        int64_t oa = 0, ob = 0, r = i;
        for (int d = a->ndim - 1; d >= 0; d--) {
            int64_t k = r % a->shape[d];
            r /= a->shape[d];
            oa += k * a->stride[d];
            ob += k * b->stride[d];
        }
        if (memcmp((const char *)a->data + oa * (int64_t)es, (const char *)b->data + ob * (int64_t)es, es)) return 0;
    }
    return 1;
}

static void roundtrip(const char *what, const mc_tensor_map *src) {
    const char *path = tmp_path("roundtrip.pt");
    mc_err e = {0};
    int r = mc_torch_save(path, src, &e);
    CHECK(r == 0, "%s: save failed: %s", what, e.msg);
    mc_tensor_map m;
    mc_tensor_map_init(&m);
    r = mc_checkpoint_load(path, &m, &e);
    CHECK(r == 0, "%s: reading back failed: %s", what, e.msg);
    int bad = 0;
    CHECK(m.count == src->count, "%s: %d tensors read back, %d written", what, m.count, src->count);
    for (int i = 0; i < m.count && i < src->count; i++) {
        const mc_tensor *a = &src->items[i].t, *b = &m.items[i].t;
        if (strcmp(m.items[i].name, src->items[i].name) || !same_tensor(a, b) || !mc_tensor_is_contiguous(b) ||
            (mc_tensor_numel(b) && (uintptr_t)b->data % 64)) {
            if (!bad++) CHECK(0, "%s: tensor %d (%s) differs after the round trip", what, i, src->items[i].name);
        }
    }
    printf("%-4s %-28s %d tensors written and read back bit-exact (%zu bytes)\n", bad ? "FAIL" : "ok", what, m.count, m.map_len);
    mc_tensor_map_free(&m);
    unlink(path);
}

static void check_writer(void) {
    const char *files[] = {"basic.pt", "views.pt", "nested.pt", "big_endian_or_legacy.pt"};
    for (int k = 0; k < 4; k++) {
        char rel[128];
        snprintf(rel, sizeof rel, "golden/torch_format/%s", files[k]);
        mc_tensor_map m;
        mc_tensor_map_init(&m);
        mc_err e = {0};
        if (mc_checkpoint_load(mc_test_path(rel), &m, &e)) mc_test_fatal("%s", e.msg);
        roundtrip(files[k], &m);
        mc_tensor_map_free(&m);
    }
    /* the s0 weight-rule model: 893 tensors, 54M elements */
    mc_tensor_map m;
    mc_tensor_map_init(&m);
    mc_err e = {0};
    uint64_t sum;
    if (mc_weights_from_tsv(mc_test_path("golden/s0.params.tsv"), &m, &sum, &e)) mc_test_fatal("%s", e.msg);
    roundtrip("s0 weight-rule model", &m);
    mc_tensor_map_free(&m);

    /* a failed write leaves nothing behind */
    mc_tensor_map_init(&m);
    const char *bad = tmp_path("no/such/dir/x.pt");
    int r = mc_torch_save(bad, &m, &e);
    CHECK(r < 0 && strstr(e.msg, bad), "save into a missing folder: %s", e.msg);
    float dummy = 1;
    mc_tensor t = {.dtype = MC_DTYPE_COUNT, .ndim = 1, .shape = {1}, .stride = {1}, .data = &dummy};
    mc_tensor_map_add(&m, "bad", &t, &e);
    const char *p = tmp_path("invalid.pt");
    r = mc_torch_save(p, &m, &e);
    CHECK(r < 0 && access(p, F_OK) != 0, "invalid dtype: rejected without leaving a file");
    mc_tensor_map_free(&m);
    /* no temporary files left in the folder */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp", tmpdir);
    CHECK(system(cmd) != 0, "temporary files left in %s", tmpdir);
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/mc_torch_format_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) mc_test_fatal("cannot create a temporary folder");

    const char *files[] = {"basic.pt", "views.pt", "nested.pt", "big_endian_or_legacy.pt"};
    for (int i = 0; i < 4; i++) check_golden(files[i]);
    const char *extra[] = {"proto4.pt", "proto5.pt", "params.pt", "train.pt", "bare.pt", "model.pt", "deflated.pt",
                           "legacy_p4.pt"};
    for (int i = 0; i < 8; i++) check_extra(extra[i]);
    check_default_names();
    check_bad_input();
    check_hand_built();
    check_writer();

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    return mc_test_finish("torch_format");
}
