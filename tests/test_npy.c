/* NPY / NPZ and the DataCompDR member parsers.
 *
 * 1. Every .npy numpy wrote (np.save and format.write_array for versions 1.0, 2.0, 3.0;
 *    every supported dtype; 0-d, empty and 3-d shapes) parses to numpy's dtype, shape and
 *    values (exact), and mc_npy_encode rewrites each file byte for byte.
 * 2. bfloat16 bit patterns stored as '<u2' convert exactly; round-to-nearest-even ties.
 * 3. Big-endian, Fortran-order, object, structured and string arrays written by numpy, and
 *    hand-made bad headers and every truncation, give one-line errors naming the file.
 * 4. np.savez / np.savez_compressed embeddings (f32, f16, with syn_text_emb) read exactly
 *    through mc_npz and mc_dr_parse_npz; our npz writer and the bf16 pth.gz writer round-trip.
 * 5. syn.json / paug.json (list and JSON-string forms) / txt and their malformed variants.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/files.h"
#include "common/test_util.h"
#include "io/dr_sample.h"
#include "io/npy.h"

#define DATA MC_TEST_DATA_DIR "/shards/"

/* The file named by entry m's "file" (its path into path[cap]). */
static unsigned char *read_listed(const mc_json *m, char *path, size_t cap, size_t *n) {
    snprintf(path, cap, DATA "%s", mc_json_get(m, "file")->str);
    return mc_test_read(path, n);
}

static void check_numpy_files(void) {
    mc_json *meta = mc_test_json(DATA "npy.json");
    int files = 0, exact_rewrites = 0;
    for (int i = 0; i < meta->count; i++) {
        const mc_json *m = &meta->items[i];
        char path[512];
        size_t n;
        unsigned char *buf = read_listed(m, path, sizeof path, &n);
        mc_npy a;
        mc_err e;
        int rc = mc_npy_parse(buf, n, path, &a, &e);
        CHECK(rc == 0, "%s", e.msg);
        if (rc) {
            free(buf);
            continue;
        }
        files++;
        const mc_json *shape = mc_json_get(m, "shape"), *vals = mc_json_get(m, "values"), *bf = mc_json_get(m, "bf16");
        CHECK(!strcmp(mc_npy_descr(a.type), mc_json_get(m, "descr")->str), "%s: descr %s", path, mc_npy_descr(a.type));
        CHECK(a.major == (int)mc_json_get(m, "version")->number, "%s: version %d", path, a.major);
        CHECK(a.ndim == shape->count, "%s: ndim %d", path, a.ndim);
        for (int d = 0; d < a.ndim && d < shape->count; d++) CHECK(a.shape[d] == (int64_t)shape->items[d].number, "%s: shape", path);
        CHECK(a.numel == vals->count, "%s: numel %lld", path, (long long)a.numel);
        int bad = 0;
        for (int64_t k = 0; k < a.numel && k < vals->count; k++) bad += mc_npy_get_f64(&a, k, 0) != vals->items[k].number;
        CHECK(bad == 0, "%s: %d values differ from numpy", path, bad);
        if (bf) {
            float *f = malloc((size_t)a.numel * sizeof *f);
            mc_npy_to_f32(&a, 1, f);
            for (int64_t k = 0; k < a.numel; k++) CHECK(f[k] == (float)bf->items[k].number, "bf16 [%lld]: %g", (long long)k, f[k]);
            free(f);
        }
        /* rewrite with the version numpy used (np.save: its own choice) */
        int ver = mc_json_get(m, "by_np_save")->boolean ? 0 : a.major;
        unsigned char *out;
        size_t on;
        rc = mc_npy_encode(a.type, a.ndim, a.shape, a.data, ver, &out, &on, &e);
        CHECK(rc == 0 && on == n && !memcmp(out, buf, n), "%s: our encoding differs from numpy's (%zu vs %zu bytes)", path, on, n);
        exact_rewrites += rc == 0 && on == n && !memcmp(out, buf, n);
        if (!rc) free(out);
        /* every truncation is an error */
        int trunc_ok = 1;
        for (size_t cut = 0; cut < n; cut++) {
            mc_npy t;
            if (mc_npy_parse(buf, cut, path, &t, &e) == 0 && !(a.nbytes == 0 && cut >= n - a.nbytes)) trunc_ok = 0;
            else if (!strstr(e.msg, path)) trunc_ok = 0;
        }
        CHECK(trunc_ok, "%s: a truncation parsed or its message lacks the name", path);
        free(buf);
    }
    printf("  %d numpy .npy files read exactly, %d rewritten byte for byte\n", files, exact_rewrites);
    mc_json_free(meta);

    const char *bad[][2] = {{"npy_bad_bigendian.npy", "big-endian"}, {"npy_bad_fortran.npy", "Fortran"},
                            {"npy_bad_object.npy", "object arrays"}, {"npy_bad_struct.npy", "structured"},
                            {"npy_bad_unicode.npy", "unsupported dtype"}};
    for (int i = 0; i < 5; i++) {
        char path[512];
        snprintf(path, sizeof path, DATA "%s", bad[i][0]);
        size_t n;
        unsigned char *buf = mc_test_read(path, &n);
        mc_npy a;
        mc_err e;
        CHECK(mc_npy_parse(buf, n, path, &a, &e) < 0 && strstr(e.msg, bad[i][1]) && strstr(e.msg, path) && !strchr(e.msg, '\n'),
              "%s: '%s'", path, e.msg);
        free(buf);
    }
}

static void check_headers(void) {
    struct { const char *h; const char *err; } cases[] = {
        {"{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2,)}", NULL},
        {"{ 'shape' : ( 2 , ) ,\n 'fortran_order':False,'descr':'<f4',}   ", NULL},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", NULL}, /* 1-D: same layout */
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", "not a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", "non-negative"},
        {"{'descr': '<f4', 'fortran_order': False}", "missing"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", "unexpected key"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", "True or False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x", "trailing"},
        {"{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", "unsupported dtype"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", "dimensions"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", "range"},
        {"['descr']", "dict"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char buf[512] = "\x93NUMPY\x01\x00";
        size_t hl = strlen(cases[i].h);
        buf[8] = (unsigned char)hl;
        buf[9] = 0;
        memcpy(buf + 10, cases[i].h, hl);
        memset(buf + 10 + hl, 0, 8);
        mc_npy a;
        mc_err e;
        int rc = mc_npy_parse(buf, 10 + hl + 8, "h.npy", &a, &e);
        if (!cases[i].err) CHECK(rc == 0 && a.ndim == 1 && a.shape[0] == 2 && a.type == MC_NPY_F32, "header %zu: %s", i, rc ? e.msg : "");
        else CHECK(rc < 0 && strstr(e.msg, cases[i].err) && strstr(e.msg, "h.npy"), "header %zu: '%s'", i, rc ? e.msg : "accepted");
    }
    unsigned char v4[16] = "\x93NUMPY\x04\x00\x00\x00";
    mc_npy a;
    mc_err e;
    CHECK(mc_npy_parse(v4, 16, "v4.npy", &a, &e) < 0 && strstr(e.msg, "version 4.0"), "version 4: %s", e.msg);
    CHECK(mc_npy_parse("hello world!", 12, "t.npy", &a, &e) < 0 && strstr(e.msg, "bad magic"), "magic");
    /* bf16 rounding: ties to even, as torch's .to(torch.bfloat16) */
    CHECK(mc_f32_to_bf16(1.00390625f) == 0x3f80 && mc_f32_to_bf16(1.01171875f) == 0x3f82, "bf16 ties to even");
    CHECK(mc_f32_to_bf16(nextafterf(1.00390625f, 2.0f)) == 0x3f81, "bf16 above the tie rounds up");
}

static void cmp_rows(const char *what, const float *got, const mc_json *want, int n) {
    int bad = 0;
    for (int i = 0; i < n; i++) bad += got[i] != (float)want->items[i].number;
    CHECK(bad == 0 && want->count == n, "%s: %d values differ (%d vs %d)", what, bad, n, want->count);
}

static void check_npz(void) {
    mc_json *meta = mc_test_json(DATA "npz.json");
    for (int i = 0; i < meta->count; i++) {
        const mc_json *m = &meta->items[i];
        char path[512];
        size_t n;
        unsigned char *buf = read_listed(m, path, sizeof path, &n);
        mc_dr_emb emb;
        mc_err e;
        int rc = mc_dr_parse_npz(buf, n, path, &emb, &e);
        CHECK(rc == 0, "%s", e.msg);
        const mc_json *arrs = mc_json_get(m, "arrays");
        const mc_json *ie = mc_json_get(arrs, "image_emb"), *te = mc_json_get(arrs, "text_emb"), *se = mc_json_get(arrs, "syn_text_emb");
        if (!rc) {
            CHECK(emb.dim == 6 && emb.n_image == 4 && emb.n_text == 3 && emb.n_syn == (se ? 2 : 0), "%s: sizes", path);
            cmp_rows(path, emb.image_emb, mc_json_get(ie, "values"), emb.n_image * emb.dim);
            cmp_rows(path, emb.text_emb, mc_json_get(te, "values"), emb.n_text * emb.dim);
            if (se) cmp_rows(path, emb.syn_text_emb, mc_json_get(se, "values"), emb.n_syn * emb.dim);
            mc_dr_emb_free(&emb);
        }
        /* truncated or corrupted archives: errors, never crashes */
        int silent = 0;
        for (size_t cut = 0; cut < n; cut += 7) {
            if (mc_dr_parse_npz(buf, cut, path, &emb, &e) == 0) silent++, mc_dr_emb_free(&emb);
        }
        unsigned char *cp = malloc(n);
        for (size_t k = 0; k < n; k += 13) {
            memcpy(cp, buf, n);
            cp[k] ^= 0x5a;
            if (mc_dr_parse_npz(cp, n, path, &emb, &e) == 0) mc_dr_emb_free(&emb);
        }
        free(cp);
        CHECK(silent == 0, "%s: %d truncations parsed", path, silent);
        free(buf);
    }
    printf("  %d numpy .npz files read exactly (stored and deflated)\n", meta->count);
    mc_json_free(meta);
}

static void fill(float *x, int n, float s) {
    for (int i = 0; i < n; i++) x[i] = sinf((float)i * 0.37f + s) * 3.0f;
}

static void check_emb_writers(void) {
    enum { D = 9 };
    float ie[5 * D], te[4 * D], se[2 * D];
    fill(ie, 5 * D, 0.1f);
    fill(te, 4 * D, 0.2f);
    fill(se, 2 * D, 0.3f);
    for (int syn = 0; syn < 2; syn++) {
        mc_dr_emb in = {.dim = D, .n_image = 5, .image_emb = ie, .n_text = 4, .text_emb = te, .n_syn = syn ? 2 : 0,
                        .syn_text_emb = syn ? se : NULL};
        unsigned char *b;
        size_t n;
        mc_err e;
        mc_dr_emb out;
        CHECK(mc_dr_encode_npz(&in, &b, &n, &e) == 0, "encode npz: %s", e.msg);
        CHECK(mc_dr_parse_npz(b, n, "ours.npz", &out, &e) == 0, "reparse npz: %s", e.msg);
        CHECK(out.dim == D && out.n_image == 5 && out.n_text == 4 && out.n_syn == in.n_syn &&
                  !memcmp(out.image_emb, ie, sizeof ie) && !memcmp(out.text_emb, te, sizeof te) &&
                  (!syn || !memcmp(out.syn_text_emb, se, sizeof se)),
              "npz round trip");
        mc_dr_emb_free(&out);
        free(b);
        CHECK(mc_dr_encode_pth_gz(&in, &b, &n, &e) == 0, "encode pth.gz: %s", e.msg);
        CHECK(mc_dr_parse_pth_gz(b, n, "ours.pth.gz", &out, &e) == 0, "reparse pth.gz: %s", e.msg);
        int bad = 0;
        for (int i = 0; i < 5 * D; i++) bad += out.image_emb[i] != mc_bf16_to_f32(mc_f32_to_bf16(ie[i]));
        for (int i = 0; i < 4 * D; i++) bad += out.text_emb[i] != mc_bf16_to_f32(mc_f32_to_bf16(te[i]));
        for (int i = 0; syn && i < 2 * D; i++) bad += out.syn_text_emb[i] != mc_bf16_to_f32(mc_f32_to_bf16(se[i]));
        CHECK(bad == 0 && out.n_syn == in.n_syn && out.dim == D, "pth.gz bf16 round trip: %d values", bad);
        mc_dr_emb_free(&out);
        int silent = 0;
        for (size_t cut = 0; cut < n; cut += 5)
            if (mc_dr_parse_pth_gz(b, cut, "cut.pth.gz", &out, &e) == 0) silent++, mc_dr_emb_free(&out);
        CHECK(silent == 0, "pth.gz: %d truncations parsed", silent);
        CHECK(mc_dr_parse_pth_gz(b + 10, n - 10, "x.pth.gz", &out, &e) < 0 && strstr(e.msg, "gzip"), "not gzip: %s", e.msg);
        free(b);
    }
    /* shape problems */
    mc_npz_writer w;
    unsigned char *b;
    size_t n;
    mc_err e;
    mc_dr_emb out;
    int64_t s2[2] = {5, D}, s3[2] = {4, D + 1}, s1[1] = {D};
    mc_npz_writer_init(&w);
    mc_npz_writer_add(&w, "image_emb", MC_NPY_F32, 2, s2, ie, &e);
    mc_npz_writer_add(&w, "text_emb", MC_NPY_F32, 2, s3, ie, &e); /* 40 of ie's 45 values */
    mc_npz_writer_finish(&w, &b, &n, &e);
    CHECK(mc_dr_parse_npz(b, n, "w.npz", &out, &e) < 0 && strstr(e.msg, "width"), "width mismatch: %s", e.msg);
    free(b);
    mc_npz_writer_init(&w);
    mc_npz_writer_add(&w, "image_emb", MC_NPY_F32, 2, s2, ie, &e);
    mc_npz_writer_finish(&w, &b, &n, &e);
    CHECK(mc_dr_parse_npz(b, n, "w.npz", &out, &e) < 0 && strstr(e.msg, "no 'text_emb'"), "missing text_emb: %s", e.msg);
    free(b);
    mc_npz_writer_init(&w);
    mc_npz_writer_add(&w, "image_emb", MC_NPY_F32, 1, s1, ie, &e);
    mc_npz_writer_add(&w, "text_emb", MC_NPY_I64, 1, s1, ie, &e);
    CHECK(mc_npz_writer_add(&w, "text_emb", MC_NPY_F32, 1, s1, ie, &e) < 0 && strstr(e.msg, "duplicate"), "duplicate array");
    mc_npz_writer_finish(&w, &b, &n, &e);
    CHECK(mc_dr_parse_npz(b, n, "w.npz", &out, &e) < 0 && strstr(e.msg, "2-D"), "1-D: %s", e.msg);
    free(b);
    CHECK(mc_dr_parse_npz("PK\3\4junk", 9, "j.npz", &out, &e) < 0 && strstr(e.msg, "j.npz"), "junk npz: %s", e.msg);
}

static void check_json_members(void) {
    mc_strlist l;
    mc_strlist_init(&l);
    mc_err e;
    const char *syn = "{\"syn_text\": [\"a red car\", \"caf\\u00e9 \\ud83d\\ude00\"], \"other_captions\": [\"x\"]}";
    CHECK(mc_dr_parse_syn(syn, strlen(syn), "s.json", NULL, &l, &e) == 0 && l.count == 2 &&
              !strcmp(l.items[1], "caf\xc3\xa9 \xf0\x9f\x98\x80"),
          "syn.json: %s", e.msg);
    CHECK(mc_dr_parse_syn(syn, strlen(syn), "s.json", "other_captions", &l, &e) == 0 && l.count == 3, "other key");
    const char *dup = "{\"syn_text\": [\"first\"], \"syn_text\": [\"last\"]}";
    CHECK(mc_dr_parse_syn(dup, strlen(dup), "d.json", NULL, &l, &e) == 0 && !strcmp(l.items[3], "last"), "last duplicate wins");
    struct { const char *j, *err; } bad[] = {
        {"{\"syn_text\": \"x\"}", "not a list"}, {"{\"syn_text\": []}", "empty"}, {"{\"syn_text\": [1]}", "not a string"},
        {"{\"other\": [\"x\"]}", "no \"syn_text\""}, {"[\"x\"]", "not a JSON object"}, {"{\"syn_text\": [\"a\\u0000b\"]}", "NUL"},
        {"{\"syn_text\": [\"\xff\"]}", "UTF-8"}, {"{\"syn_text\": [\"x\"", "s.json"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int before = l.count;
        CHECK(mc_dr_parse_syn(bad[i].j, strlen(bad[i].j), "s.json", NULL, &l, &e) < 0 && strstr(e.msg, bad[i].err) &&
                  strstr(e.msg, "s.json") && l.count == before,
              "bad syn %zu: %s", i, e.msg);
    }
    mc_strlist_free(&l);

    const char *plist = "{\"param_aug\": [[[1, 2, 3, 4], [[5, 0.5]]], [[0, 0, 8, 8], null]]}";
    const char *pstr = "{\"param_aug\": \"[[[1, 2, 3, 4], [[5, 0.5]]], [[0, 0, 8, 8], null]]\"}";
    mc_dr_paug a, b;
    CHECK(mc_dr_parse_paug(plist, strlen(plist), "p.json", &a, &e) == 0 && a.count == 2, "paug list: %s", e.msg);
    CHECK(mc_dr_parse_paug(pstr, strlen(pstr), "p.json", &b, &e) == 0 && b.count == 2, "paug string: %s", e.msg);
    if (a.count == 2 && b.count == 2) {
        const mc_json *x = mc_dr_paug_at(&a, 0), *y = mc_dr_paug_at(&b, 0);
        CHECK(x->type == MC_JSON_ARRAY && y->type == MC_JSON_ARRAY && x->items[0].items[3].number == 4 &&
                  y->items[1].items[0].items[1].number == 0.5,
              "paug contents");
    }
    mc_dr_paug_free(&a);
    mc_dr_paug_free(&b);
    const char *pbad[] = {"{\"param_aug\": []}", "{\"param_aug\": \"[1, \"}", "{\"param_aug\": 3}", "{}", "{\"param_aug\": [null]}"};
    for (int i = 0; i < 5; i++)
        CHECK(mc_dr_parse_paug(pbad[i], strlen(pbad[i]), "p.json", &a, &e) < 0 && strstr(e.msg, "p.json") && !a.root,
              "bad paug %d: %s", i, e.msg);

    char *t;
    CHECK(mc_dr_parse_text("a cat \xe2\x9c\x93", 9, "t.txt", &t, &e) == 0 && !strcmp(t, "a cat \xe2\x9c\x93"), "txt");
    free(t);
    const char *badutf[] = {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x9c", "a\0b"};
    size_t lens[] = {2, 3, 4, 2, 3};
    for (int i = 0; i < 5; i++)
        CHECK(mc_dr_parse_text(badutf[i], lens[i], "t.txt", &t, &e) < 0 && strstr(e.msg, "t.txt"), "bad text %d", i);
}

int main(void) {
    check_numpy_files();
    check_headers();
    check_npz();
    check_emb_writers();
    check_json_members();
    return mc_test_finish("test_npy");
}
