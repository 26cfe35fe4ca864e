/* The search index: file format round trip and every corruption refused, brute-force search
 * (each CPU kernel variant) equal to an independent double-precision ranking, SHA-256 against
 * FIPS 180-4 vectors, float16 rounding against the exact decoder. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/test_util.h"
#include "core/sha256.h"
#include "index/index.h"
#include "index/search.h"
#include "io/mapped_file.h"

static uint64_t rng = 88172645463325252ull;
static double urand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) * 0x1p-53;
}

static void unit_rows(float *v, int n, int dim) {
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int d = 0; d < dim; d++) {
            v[i * dim + d] = (float)(urand() - 0.5);
            s += (double)v[i * dim + d] * v[i * dim + d];
        }
        for (int d = 0; d < dim; d++) v[i * dim + d] = (float)(v[i * dim + d] / sqrt(s));
    }
}

static void test_sha256(void) {
    static const struct { const char *in, *hex; } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (int k = 0; k < 3; k++) {
        uint8_t d[32];
        char hex[65];
        mc_sha256_buf(v[k].in, strlen(v[k].in), d);
        mc_sha256_hex(d, hex);
        CHECK(!strcmp(hex, v[k].hex), "sha256(\"%s\") = %s", v[k].in, hex);
    }
    /* a million 'a' fed in uneven pieces */
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    mc_sha256 h;
    mc_sha256_init(&h);
    for (size_t off = 0, step = 1; off < 1000000; off += step, step = step * 3 % 1000 + 1)
        mc_sha256_update(&h, a + off, off + step > 1000000 ? 1000000 - off : step);
    uint8_t d[32];
    char hex[65];
    mc_sha256_final(&h, d);
    mc_sha256_hex(d, hex);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"), "sha256(1M a) = %s", hex);
    free(a);
}

/* f32 -> f16 must be the nearest half (ties to even) for every half interval. */
static void test_f16(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 0x7c00 && bad < 5; h++) {
        float lo = mc_f16_to_f32((uint16_t)h), hi = mc_f16_to_f32((uint16_t)(h + 1));
        float mid = (float)(((double)lo + hi) / 2);
        uint16_t at_lo = mc_f32_to_f16(lo), at_mid = mc_f32_to_f16(mid), above = mc_f32_to_f16(nextafterf(mid, INFINITY));
        uint16_t expect_mid = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        if (at_lo != h || (h + 1 < 0x7c00 && (at_mid != expect_mid || above != h + 1))) {
            bad++;
            fprintf(stderr, "f16 %04x: %04x %04x %04x\n", h, at_lo, at_mid, above);
        }
        if (mc_f32_to_f16(-lo) != (h | 0x8000)) bad++;
    }
    CHECK(!bad, "float16 rounding");
    CHECK(mc_f32_to_f16(65520.f) == 0x7c00 && mc_f32_to_f16(65519.f) == 0x7bff, "float16 overflow threshold");
    CHECK((mc_f32_to_f16(NAN) & 0x7c00) == 0x7c00 && (mc_f32_to_f16(NAN) & 0x3ff), "float16 NaN");
}

/* Independent ranking: scores in double, full sort by (score desc, index asc). */
static int64_t *ref_rank(const float *q, const float *rows, int n, int dim, double *s) {
    int64_t *order = malloc(sizeof(int64_t) * (size_t)n);
    for (int i = 0; i < n; i++) {
        double acc = 0;
        for (int d = 0; d < dim; d++) acc += (double)q[d] * rows[(size_t)i * dim + d];
        s[i] = acc;
        order[i] = i;
    }
    for (int i = 1; i < n; i++) /* insertion sort keeps the code obviously right */
        for (int j = i; j > 0 && (s[order[j]] > s[order[j - 1]] || (s[order[j]] == s[order[j - 1]] && order[j] < order[j - 1])); j--) {
            int64_t t = order[j]; order[j] = order[j - 1]; order[j - 1] = t;
        }
    return order;
}

static void test_search(void) {
    const int n = 3000, K = 25;
    const int dims[] = {512, 37};
    const char *kernels[] = {"avx512f", "avx2", "portable"};
    int first = !strcmp(mc_search_kernel_name(), "avx512f") ? 0 : !strcmp(mc_search_kernel_name(), "avx2") ? 1 : 2;
    printf("search kernel on this CPU: %s\n", mc_search_kernel_name());
    for (int di = 0; di < 2; di++) {
        int dim = dims[di];
        float *rows = malloc(sizeof(float) * (size_t)n * dim), *q = malloc(sizeof(float) * (size_t)dim),
              *dec = malloc(sizeof(float) * (size_t)n * dim), *scores = malloc(sizeof(float) * n);
        uint16_t *half = malloc(sizeof(uint16_t) * (size_t)n * dim);
        double *s = malloc(sizeof(double) * n);
        unit_rows(rows, n, dim);
        unit_rows(q, 1, dim);
        for (size_t i = 0; i < (size_t)n * dim; i++) dec[i] = mc_f16_to_f32(half[i] = mc_f32_to_f16(rows[i]));
        for (int dt = 0; dt < 2; dt++) {
            int64_t *order = ref_rank(q, dt ? dec : rows, n, dim, s);
            for (int kv = first; kv < 3; kv++) {
                mc_search_hit hits[25];
                mc_search_scores_with(kernels[kv], q, dt ? (void *)half : (void *)rows, dt ? MC_INDEX_F16 : MC_INDEX_F32, n,
                                      dim, scores);
                mc_search_topk(scores, n, K, hits);
                int same = 1;
                double worst = 0;
                for (int k = 0; k < K; k++) {
                    same &= hits[k].index == order[k];
                    worst = fmax(worst, fabs(hits[k].score - s[order[k]]));
                }
                CHECK(same && worst < 1e-6, "%s %s dim %d: top-%d differs from brute force (score err %.2e)", kernels[kv],
                      dt ? "f16" : "f32", dim, K, worst);
                printf("ok   search %-8s %s dim %3d top-%d == brute force (max score err %.1e)\n", kernels[kv],
                       dt ? "f16" : "f32", dim, K, worst);
            }
            free(order);
        }
        free(rows), free(q), free(dec), free(scores), free(half), free(s);
    }
    /* ties rank the lower row first; NaN last; k > n clipped */
    float sc[6] = {0.5f, NAN, 0.9f, 0.5f, 0.9f, -1.f};
    mc_search_hit h[6];
    mc_search_topk(sc, 6, 6, h);
    int expect[6] = {2, 4, 0, 3, 5, 1};
    int ok = 1;
    for (int k = 0; k < 6; k++) ok &= h[k].index == expect[k];
    CHECK(ok, "top-k order with ties and NaN");
}

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, sizeof buf[0], "/tmp/mc_test_index_%ld_%s", (long)getpid(), name);
    return b;
}

/* Writes an index of n entries and returns its bytes. */
static char *write_sample(const char *path, int n, mc_index_dtype dt, size_t *len, float *rows_out) {
    const int dim = 8;
    mc_index_meta meta = {.dim = dim, .dtype = dt, .arch = "s0"};
    for (int i = 0; i < 32; i++) meta.model_id[i] = (uint8_t)(i * 7);
    mc_index_item *items = calloc((size_t)n, sizeof *items);
    char (*names)[32] = malloc(32 * (size_t)n);
    uint8_t *rows = malloc((size_t)n * dim * 4);
    unit_rows(rows_out, n, dim);
    for (int i = 0; i < n; i++) {
        snprintf(names[i], 32, "dir/img_%04d.jpg", i);
        items[i].path = names[i];
        items[i].size = 1000 + i;
        items[i].mtime_ns = 1700000000000000000ll + i;
        for (int k = 0; k < 32; k++) items[i].sha256[k] = (uint8_t)(i + k);
        for (int d = 0; d < dim; d++) {
            if (dt == MC_INDEX_F32) memcpy(rows + ((size_t)i * dim + d) * 4, &rows_out[i * dim + d], 4);
            else {
                uint16_t hv = mc_f32_to_f16(rows_out[i * dim + d]);
                memcpy(rows + ((size_t)i * dim + d) * 2, &hv, 2);
            }
        }
        items[i].row = rows + (size_t)i * dim * mc_index_dtype_size(dt);
    }
    mc_err e = {0};
    CHECK(mc_index_write(path, &meta, items, (uint64_t)n, &e) == 0, "write: %s", e.msg);
    char *data = NULL;
    CHECK(mc_read_file(path, (size_t)1 << 30, &data, len, &e) == 0, "read back: %s", e.msg);
    free(items), free(names), free(rows);
    return data;
}

static void test_format(void) {
    const char *path = tmp_path("a.mci");
    float rows[40 * 8];
    size_t len;
    char *data = write_sample(path, 40, MC_INDEX_F16, &len, rows);
    mc_index ix;
    mc_err e = {0};
    CHECK(mc_index_open(path, &ix, &e) == 0, "open: %s", e.msg);
    CHECK(ix.count == 40 && ix.meta.dim == 8 && ix.meta.dtype == MC_INDEX_F16 && !strcmp(ix.meta.arch, "s0"), "header fields");
    CHECK(((uintptr_t)ix.rows & 63) == 0, "rows 64-byte aligned in the mapping");
    int ok = 1;
    for (int i = 0; i < 40; i++) {
        mc_index_item it;
        char want[32];
        snprintf(want, sizeof want, "dir/img_%04d.jpg", i);
        mc_index_get(&ix, (uint64_t)i, &it);
        ok &= !strcmp(it.path, want) && it.size == (uint64_t)(1000 + i) && it.mtime_ns == 1700000000000000000ll + i &&
              it.sha256[5] == (uint8_t)(i + 5) && mc_index_find(&ix, want) == i;
        for (int d = 0; d < 8; d++) ok &= fabsf(mc_f16_to_f32(((const uint16_t *)it.row)[d]) - rows[i * 8 + d]) < 1e-3f;
    }
    CHECK(ok, "entries read back");
    CHECK(mc_index_find(&ix, "dir/img_0040.jpg") == -1 && mc_index_find(&ix, "a") == -1, "find of absent paths");
    mc_index_close(&ix);

    /* every single-byte corruption and every truncation is refused with a reason */
    char *buf = malloc(len);
    int accepted = 0;
    for (size_t off = 0; off < len; off++) {
        memcpy(buf, data, len);
        buf[off] ^= 0x20;
        if (mc_index_parse(buf, len, "x.mci", &ix, &e) == 0) accepted++;
        else if (!strstr(e.msg, "x.mci: ")) accepted += 1000;
    }
    CHECK(!accepted, "%d single-byte corruptions accepted or unnamed", accepted);
    accepted = 0;
    for (size_t l = 0; l < len; l += 1 + l / 7)
        accepted += mc_index_parse(data, l, "x.mci", &ix, &e) == 0;
    CHECK(!accepted, "%d truncations accepted", accepted);
    mc_index_parse(data, len - 3, "x.mci", &ix, &e);
    CHECK(strstr(e.msg, "truncated") != NULL, "truncation named: %s", e.msg);
    memcpy(buf, data, len);
    buf[8] = 9; /* version */
    mc_index_parse(buf, len, "x.mci", &ix, &e);
    CHECK(strstr(e.msg, "version 9") != NULL, "version named: %s", e.msg);
    CHECK(mc_index_parse("MCLIPID", 7, "x.mci", &ix, &e) < 0 && strstr(e.msg, "not a mobileclip index"), "short file: %s", e.msg);
    free(buf);
    free(data);

    /* empty index, f32, unsorted input refused, failed write leaves the old file */
    data = write_sample(path, 0, MC_INDEX_F32, &len, rows);
    CHECK(mc_index_parse(data, len, "e", &ix, &e) == 0 && ix.count == 0, "empty index: %s", e.msg);
    free(data);
    mc_index_meta meta = {.dim = 8, .dtype = MC_INDEX_F32};
    float row[8] = {0};
    mc_index_item two[2] = {{.path = "b", .row = row}, {.path = "a", .row = row}};
    CHECK(mc_index_write(path, &meta, two, 2, &e) == MC_E_ARG, "unsorted entries refused");
    two[1].path = "b";
    CHECK(mc_index_write(path, &meta, two, 2, &e) == MC_E_ARG, "duplicate entries refused");
    CHECK(mc_index_open(path, &ix, &e) == 0 && ix.count == 0, "previous file intact after refused write");
    mc_index_close(&ix);
    CHECK(mc_index_write("/nonexistent-dir/x.mci", &meta, two, 1, &e) == MC_E_IO && strstr(e.msg, "/nonexistent-dir/x.mci"),
          "unwritable path: %s", e.msg);
    unlink(path);
}

int main(void) {
    test_sha256();
    test_f16();
    test_search();
    test_format();
    return mc_test_finish("test_index");
}
