/* Converted model files (models/clip_convert.c, io/model_file.h, docs/MODEL_FORMAT.md):
 *  1. for each arch of $MC_TEST_ARCHS (default "s0") and f32, bf16, int8 (MC_TEST_SHORT: int8): the golden
 *     weight rule is converted, the file opened (mapped: no store, no reparameterization) and
 *     its embeddings of the golden images and captions are bit-identical to the same precision
 *     from the weights; a text-only open too; a mapped f32 model set to int8 repacks to the
 *     checkpoint's int8 numbers exactly;
 *  2. the checks of the format on a real file, each edited in place and restored: another format
 *     version, project version, packing layout, unknown or missing CPU feature bits (the header
 *     re-signed, so the check itself is reached), a flipped byte in the tensor table (checksum), a
 *     misaligned or mis-sized tensor entry (re-signed), a truncated file and a truncated table:
 *     each refused with its one-line message naming the file; training's checkpoint loader
 *     refuses a converted file. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sha256.h"
#include "io/checkpoint.h"
#include "io/model_file.h"
#include "models/clip.h"
#include "models/plan_tensors.h"
#include "common/test_util.h"

typedef struct inputs {
    float *img;
    int32_t *tok;
    int ni, nt;
} inputs;

static void encode(mc_clip *c, const inputs *in, float *img_out, float *txt_out, const char *what) {
    mc_err e = {0};
    if (img_out) CHECK(mc_clip_encode_image(c, in->img, in->ni, img_out, NULL, &e) == 0, "%s image: %s", what, e.msg);
    if (txt_out) CHECK(mc_clip_encode_text(c, in->tok, in->nt, txt_out, NULL, &e) == 0, "%s text: %s", what, e.msg);
}

static void same(const float *a, const float *b, size_t n, const char *what) {
    size_t diff = 0;
    for (size_t i = 0; i < n; i++) diff += memcmp(&a[i], &b[i], sizeof *a) != 0;
    CHECK(diff == 0, "%s: %zu of %zu values differ from the checkpoint's", what, diff, n);
}

/* ---------------------------------------------------------------- header edits */

static size_t file_len(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return (size_t)n;
}

/* the header and metadata (everything before the data) */
static unsigned char *read_meta(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY);
    unsigned char h[256];
    if (fd < 0 || pread(fd, h, 256, 0) != 256) mc_test_fatal("%s: cannot read the header", path);
    uint64_t doff;
    memcpy(&doff, h + 160, 8);
    unsigned char *m = malloc(doff);
    if (!m || pread(fd, m, doff, 0) != (ssize_t)doff) mc_test_fatal("%s: cannot read the metadata", path);
    close(fd);
    *len = doff;
    return m;
}

static void write_meta(const char *path, const unsigned char *m, size_t len) {
    int fd = open(path, O_WRONLY);
    if (fd < 0 || pwrite(fd, m, len, 0) != (ssize_t)len) mc_test_fatal("%s: cannot write", path);
    close(fd);
}

static void resign(unsigned char *m, size_t len) {
    mc_sha256 h;
    mc_sha256_init(&h);
    mc_sha256_update(&h, m, 224);
    mc_sha256_update(&h, m + 256, len - 256);
    mc_sha256_final(&h, m + 224);
}

/* Opens path and expects a failure whose message names the file and contains `want`. */
static void expect_refused(const char *path, const char *want, const char *what) {
    mc_clip c;
    mc_err e = {0};
    int r = mc_clip_open_converted(&c, path, 1, 1, &e);
    CHECK(r != 0 && strstr(e.msg, want) && strstr(e.msg, path) && !strchr(e.msg, '\n'),
          "%s: got %d '%s', want a one-line error with '%s'", what, r, e.msg, want);
    if (!r) mc_clip_free(&c);
}

typedef void (*edit_fn)(unsigned char *m, size_t len);
static void e_version(unsigned char *m, size_t n) { (void)n, m[8] ^= 2; }
static void e_project(unsigned char *m, size_t n) { snprintf((char *)m + 16, 32, "0.0.0-other"), resign(m, n); }
static void e_tiles(unsigned char *m, size_t n) { m[52] = 16, resign(m, n); }
static void e_unknown_feature(unsigned char *m, size_t n) { m[64] |= 0x80, resign(m, n); }
static void e_table_byte(unsigned char *m, size_t n) {
    uint64_t toff;
    memcpy(&toff, m + 136, 8);
    m[toff + 3] ^= 0x20; /* a character of the first tensor's name, not re-signed */
    (void)n;
}
static void e_misaligned(unsigned char *m, size_t n) {
    uint64_t toff, off;
    memcpy(&toff, m + 136, 8);
    memcpy(&off, m + toff + 128 + 112, 8); /* the second tensor's offset */
    off += 4;
    memcpy(m + toff + 128 + 112, &off, 8);
    resign(m, n);
}
static void e_size(unsigned char *m, size_t n) {
    uint64_t toff, sz;
    memcpy(&toff, m + 136, 8);
    memcpy(&sz, m + toff + 128 + 120, 8);
    sz += 4;
    memcpy(m + toff + 128 + 120, &sz, 8);
    resign(m, n);
}
static uint64_t missing_feature;
static void e_missing_feature(unsigned char *m, size_t n) { memcpy(m + 64, &missing_feature, 8), resign(m, n); }

static void edited(const char *path, edit_fn fn, const char *want, const char *what) {
    size_t len;
    unsigned char *orig = read_meta(path, &len), *m = malloc(len);
    memcpy(m, orig, len);
    fn(m, len);
    write_meta(path, m, len);
    expect_refused(path, want, what);
    write_meta(path, orig, len);
    free(orig);
    free(m);
}

static void test_refusals(const char *path) {
    edited(path, e_version, "format version", "another format version");
    edited(path, e_project, "converted by mobileclip 0.0.0-other", "another project version");
    edited(path, e_tiles, "packed for 16x32 tiles", "another packing layout");
    edited(path, e_unknown_feature, "unknown to this build", "unknown CPU feature bits");
    edited(path, e_table_byte, "checksum mismatch", "a flipped byte in the tensor table");
    edited(path, e_misaligned, "not 64-byte aligned", "a misaligned tensor");
    edited(path, e_size, "its shape needs", "a tensor size that does not match its shape");
    uint64_t have = mc_mf_cpu_features();
    for (int b = 0; b < 7 && !missing_feature; b++)
        if (!(have & (1u << b))) missing_feature = 1u << b;
    if (missing_feature) edited(path, e_missing_feature, "which this CPU lacks", "a CPU feature this CPU lacks");
    else printf("     (this CPU has every known feature: the missing-feature refusal is not exercised)\n");
    /* the unedited file still opens (the edits were restored) */
    mc_clip c;
    mc_err e = {0};
    CHECK(mc_clip_open_converted(&c, path, 1, 1, &e) == 0, "restored file: %s", e.msg);
    mc_clip_free(&c);
    /* training and every checkpoint reader refuse it with the reason */
    mc_tensor_map w;
    mc_tensor_map_init(&w);
    CHECK(mc_checkpoint_load(path, &w, &e) != 0 && strstr(e.msg, "converted model"), "checkpoint loader: '%s'", e.msg);
    mc_tensor_map_free(&w);
    /* truncation (last: it destroys the file) */
    size_t n = file_len(path);
    CHECK(truncate(path, (off_t)(n - 100)) == 0, "truncate");
    expect_refused(path, "truncated converted model", "a truncated file");
    CHECK(truncate(path, 1000) == 0, "truncate");
    expect_refused(path, "truncated converted model", "a truncated tensor table");
    CHECK(truncate(path, 100) == 0, "truncate");
    expect_refused(path, "truncated converted model", "a truncated header");
}

/* ---------------------------------------------------------------- round trips */

static void test_arch(const char *arch, const char *dir) {
    char path[512];
    mc_err e = {0};
    mc_tensor_map w, g;
    int a = mc_test_load_arch(arch, &w, &g);
    mc_clip c;
    if (mc_clip_init(&c, &w, (mc_arch)a, 1, 1, 1, &e)) mc_test_fatal("%s: %s", arch, e.msg);
    int R = c.config.image_size, E = c.config.embed_dim, T = c.config.text.context_length;
    const mc_tensor *gi = mc_test_tensor(&g, "input.image"), *gt = mc_test_tensor(&g, "input.tokens");
    inputs in = {malloc(sizeof(float) * (size_t)3 * R * R * gi->shape[0]), malloc(sizeof(int32_t) * gt->shape[0] * T),
                 (int)gi->shape[0], (int)gt->shape[0]};
    mc_tensor_to_f32(gi, in.img);
    for (int64_t i = 0; i < gt->shape[0] * T; i++) in.tok[i] = (int32_t)mc_tensor_get_f64(gt, i);
    size_t ni = (size_t)in.ni * E, nt = (size_t)in.nt * E;
    float *ri = malloc(sizeof(float) * ni), *rt = malloc(sizeof(float) * nt);
    float *gi_ = malloc(sizeof(float) * ni), *gt_ = malloc(sizeof(float) * nt);
    float *int8_i = malloc(sizeof(float) * ni), *int8_t_ = malloc(sizeof(float) * nt);
    static const uint8_t id[32] = {1, 2, 3};
    /* the sanitizer pass (MC_TEST_SHORT): int8 only, which holds f32 and packed tensors */
    int first = getenv("MC_TEST_SHORT") ? MC_PREC_INT8 : MC_PREC_F32;
    for (int p = first; p < MC_PREC_COUNT; p++) {
        const char *pn = mc_precision_name((mc_precision)p);
        char what[64];
        snprintf(what, sizeof what, "%s %s", arch, pn);
        CHECK(mc_clip_set_precision(&c, (mc_precision)p, &e) == 0, "%s: %s", what, e.msg);
        encode(&c, &in, ri, rt, what);
        if (p == MC_PREC_INT8) memcpy(int8_i, ri, sizeof(float) * ni), memcpy(int8_t_, rt, sizeof(float) * nt);
        snprintf(path, sizeof path, "%s/%s_%s.mcm", dir, arch, pn);
        double t0 = mc_test_now();
        CHECK(mc_clip_save_converted(&c, path, id, &e) == 0, "%s save: %s", what, e.msg);
        double t1 = mc_test_now();
        mc_clip m;
        int r = mc_clip_open_converted(&m, path, 1, 1, &e);
        double t2 = mc_test_now();
        CHECK(r == 0, "%s open: %s", what, e.msg);
        if (r) continue;
        printf("     %s: %.1f MB written in %.2f s, opened in %.2f ms; %d packed weights\n", what,
               (double)mc_clip_mapping_bytes(&m) / 1048576.0, t1 - t0, (t2 - t1) * 1e3, m.lowp.n);
        CHECK(m.store.total == 0 && m.mapping && m.precision == (mc_precision)p && m.lowp.n == c.lowp.n &&
                  m.lowp.bytes == c.lowp.bytes && m.arch == c.arch,
              "%s: opened model: store %zu floats, precision %d, %d packed (want %d)", what, m.store.total,
              (int)m.precision, m.lowp.n, c.lowp.n);
        CHECK(!memcmp(mc_clip_mapping_model_id(&m), id, 32), "%s: model identity", what);
        CHECK(mc_clip_plan_build(&m, &e) != 0 && strstr(e.msg, "checkpoint"), "%s: plan rebuild refused: '%s'", what,
              e.msg);
        encode(&m, &in, gi_, gt_, what);
        same(gi_, ri, ni, what);
        same(gt_, rt, nt, what);
        if (p == MC_PREC_INT8 && first == MC_PREC_F32) {
            /* a mapped f32 model repacked to int8 (the f32 file below) equals the checkpoint's int8 */
            mc_clip f;
            snprintf(path, sizeof path, "%s/%s_f32.mcm", dir, arch);
            CHECK(mc_clip_open_converted(&f, path, 1, 1, &e) == 0, "%s: %s", what, e.msg);
            CHECK(mc_clip_set_precision(&f, MC_PREC_INT8, &e) == 0, "%s repack: %s", what, e.msg);
            encode(&f, &in, gi_, gt_, "f32 file repacked to int8");
            same(gi_, int8_i, ni, "f32 file repacked to int8 (image)");
            same(gt_, int8_t_, nt, "f32 file repacked to int8 (text)");
            mc_clip_free(&f);
        }
        mc_clip_free(&m);
        /* one tower only */
        snprintf(path, sizeof path, "%s/%s_%s.mcm", dir, arch, pn);
        CHECK(mc_clip_open_converted(&m, path, 0, 1, &e) == 0, "%s text-only: %s", what, e.msg);
        CHECK(!m.mci && !m.vit && m.text, "%s text-only: towers", what);
        encode(&m, &in, NULL, gt_, what);
        same(gt_, rt, nt, "text-only open");
        mc_clip_free(&m);
    }
    mc_clip_free(&c);
    mc_tensor_map_free(&g);
    free(in.img), free(in.tok), free(ri), free(rt), free(gi_), free(gt_), free(int8_i), free(int8_t_);
    snprintf(path, sizeof path, "%s/%s_int8.mcm", dir, arch);
    test_refusals(path);
    for (int p = MC_PREC_F32; p < MC_PREC_COUNT; p++) {
        snprintf(path, sizeof path, "%s/%s_%s.mcm", dir, arch, mc_precision_name((mc_precision)p));
        unlink(path);
    }
}

int main(void) {
    char dir[] = "/tmp/mc_convert_XXXXXX";
    if (!mkdtemp(dir)) mc_test_fatal("mkdtemp");
    const char *archs = getenv("MC_TEST_ARCHS");
    char list[64];
    snprintf(list, sizeof list, "%s", archs && *archs ? archs : "s0");
    for (char *s = strtok(list, ", "); s; s = strtok(NULL, ", ")) test_arch(s, dir);
    rmdir(dir);
    return mc_test_finish("convert");
}
