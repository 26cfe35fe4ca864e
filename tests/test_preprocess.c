/* Image decoding + reference preprocessing against shared/golden/preprocess.safetensors
 * (PIL 9.4 + torchvision 0.14 bytes), the float model inputs of the golden model files,
 * and bad input (truncated, corrupt, empty, absurd sizes, directories, missing files). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "common/test_util.h"
#include "image/image.h"
#include "image/preprocess.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"


static int json_int(const mc_json *o, const char *k) {
    const mc_json *v = mc_json_get(o, k);
    if (!v || v->type != MC_JSON_NUMBER) mc_test_fatal("metadata: '%s' missing", k);
    return (int)v->number;
}

/* ---- golden comparison ---- */

static void check_golden(void) {
    mc_tensor_map m;
    mc_json *hdr = NULL;
    mc_test_load_golden("golden/preprocess.safetensors", &m, &hdr);
    const mc_json *meta = mc_json_get(hdr, "__metadata__");
    const mc_json *images_s = meta ? mc_json_get(meta, "images") : NULL;
    if (!images_s || images_s->type != MC_JSON_STRING) mc_test_fatal("preprocess.safetensors: no images metadata");
    mc_err e = {0};
    mc_json *images = mc_json_parse(images_s->str, images_s->len, &e);
    if (!images || images->type != MC_JSON_OBJECT) mc_test_fatal("images metadata: %s", e.msg);
    CHECK(images->count == 12, "expected 12 images in the metadata, got %d", images->count);

    int compared = 0;
    for (int i = 0; i < images->count; i++) {
        const char *file = images->keys[i];
        const mc_json *info = &images->items[i];
        char rel[256];
        snprintf(rel, sizeof rel, "images/%s", file);
        mc_image im;
        double t0 = (mc_test_now() * 1e3);
        int r = mc_image_load(mc_test_path(rel), &im, &e);
        double t_dec = (mc_test_now() * 1e3) - t0;
        CHECK(r == 0, "%s: load failed: %s", file, e.msg);
        if (r) continue;
        CHECK(im.w == json_int(info, "width") && im.h == json_int(info, "height"), "%s: size %dx%d, want %dx%d",
              file, im.w, im.h, json_int(info, "width"), json_int(info, "height"));
        const int Rs[2] = {256, 224};
        for (int k = 0; k < 2; k++) {
            int R = Rs[k];
            char key[16];
            snprintf(key, sizeof key, "%d", R);
            const mc_json *ri = mc_json_get(info, key);
            if (!ri) mc_test_fatal("%s: no metadata for %d", file, R);
            int rw, rh, left, top;
            CHECK(mc_image_shorter_size(im.w, im.h, R, &rw, &rh, &e) == 0, "%s: shorter_size: %s", file, e.msg);
            mc_image_center_offsets(rw, rh, R, R, &left, &top);
            CHECK(rw == json_int(ri, "resized_width") && rh == json_int(ri, "resized_height"),
                  "%s@%d: resized %dx%d, want %dx%d", file, R, rw, rh, json_int(ri, "resized_width"),
                  json_int(ri, "resized_height"));
            CHECK(left == json_int(ri, "crop_left") && top == json_int(ri, "crop_top"),
                  "%s@%d: crop offsets %d,%d, want %d,%d", file, R, left, top, json_int(ri, "crop_left"),
                  json_int(ri, "crop_top"));

            char name[256];
            snprintf(name, sizeof name, "%s.%d", file, R);
            const mc_tensor *ref = mc_test_tensor(&m, name);
            CHECK(ref->dtype == MC_DTYPE_U8 && ref->ndim == 3 && ref->shape[0] == 3 && ref->shape[1] == R &&
                      ref->shape[2] == R && mc_tensor_is_contiguous(ref),
                  "%s: golden tensor is not uint8 [3,%d,%d]", name, R, R);
            const uint8_t *gold = ref->data;

            /* The one-call path (only the crop window is resampled). */
            mc_image crop;
            t0 = (mc_test_now() * 1e3);
            r = mc_image_preprocess_u8(&im, R, &crop, &e);
            double t_pre = (mc_test_now() * 1e3) - t0;
            CHECK(r == 0, "%s: preprocess: %s", name, e.msg);
            if (r) continue;
            long diff_px = 0;
            int maxd = 0;
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < R; y++)
                    for (int x = 0; x < R; x++) {
                        int d = abs((int)crop.rgb[((size_t)y * R + x) * 3 + c] - (int)gold[((size_t)c * R + y) * R + x]);
                        if (d) diff_px++;
                        if (d > maxd) maxd = d;
                    }
            printf("%-4s %-40s %4dx%-4d -> %4dx%-4d crop +%d+%d  max diff %d, %ld values differ  "
                   "(decode %.1f ms, preprocess %.2f ms)\n",
                   maxd == 0 ? "ok" : "FAIL", name, im.w, im.h, rw, rh, left, top, maxd, diff_px, t_dec, t_pre);
            CHECK(maxd == 0, "%s: preprocessed bytes differ from the reference (max %d levels, %ld values)", name,
                  maxd, diff_px);

            /* The step-by-step path: full resize, then crop, must give the same bytes. */
            mc_image full, crop2;
            r = mc_image_resize_shorter(&im, R, &full, &e);
            CHECK(r == 0, "%s: resize_shorter: %s", name, e.msg);
            if (r == 0) {
                CHECK(full.w == rw && full.h == rh, "%s: resize_shorter gave %dx%d", name, full.w, full.h);
                r = mc_image_center_crop(&full, R, R, &crop2, &e);
                CHECK(r == 0, "%s: center_crop: %s", name, e.msg);
                if (r == 0) {
                    CHECK(memcmp(crop2.rgb, crop.rgb, (size_t)R * R * 3) == 0,
                          "%s: resize+crop differs from the windowed preprocess", name);
                    mc_image_free(&crop2);
                }
                mc_image_free(&full);
            }

            /* Float input: exactly (float)v / 255.0f in CHW. */
            float *chw = malloc(sizeof(float) * 3 * R * R);
            r = mc_image_preprocess(&im, R, chw, &e);
            CHECK(r == 0, "%s: preprocess(float): %s", name, e.msg);
            long bad = 0;
            for (size_t j = 0; r == 0 && j < (size_t)3 * R * R; j++)
                if (chw[j] != (float)gold[j] / 255.0f) bad++;
            CHECK(bad == 0, "%s: %ld floats differ from v/255.0f", name, bad);
            free(chw);
            mc_image_free(&crop);
            compared++;
        }
        mc_image_free(&im);
    }
    CHECK(compared == 24, "compared %d of 24 golden tensors", compared);
    mc_json_free(images);
    mc_json_free(hdr);
    mc_tensor_map_free(&m);
}

/* The golden model files hold the float model inputs of chelsea.png and astronaut.png
 * (ToTensor output of the reference): ours must match bit for bit. */
static void check_model_inputs(const char *arch, int R) {
    char rel[64];
    snprintf(rel, sizeof rel, "golden/%s.golden.safetensors", arch);
    mc_tensor_map m;
    mc_json *hdr = NULL;
    mc_test_load_golden(rel, &m, &hdr);
    const mc_tensor *in = mc_test_tensor(&m, "input.image");
    CHECK(in->dtype == MC_DTYPE_F32 && in->ndim == 4 && in->shape[0] == 2 && in->shape[2] == R &&
              mc_tensor_is_contiguous(in),
          "%s input.image shape", arch);
    const char *files[2] = {"images/chelsea.png", "images/astronaut.png"};
    float *chw = malloc(sizeof(float) * 3 * R * R);
    for (int b = 0; b < 2; b++) {
        mc_image im;
        mc_err e = {0};
        int r = mc_image_load(mc_test_path(files[b]), &im, &e);
        CHECK(r == 0, "%s: %s", files[b], e.msg);
        if (r) continue;
        r = mc_image_preprocess(&im, R, chw, &e);
        CHECK(r == 0, "%s: %s", files[b], e.msg);
        const float *ref = (const float *)in->data + (size_t)b * 3 * R * R;
        int same = r == 0 && memcmp(chw, ref, sizeof(float) * 3 * R * R) == 0;
        printf("%-4s %s input.image[%d] (%s) bit-exact\n", same ? "ok" : "FAIL", arch, b, files[b]);
        CHECK(same, "%s input.image[%d]: float input differs", arch, b);
        mc_image_free(&im);
    }
    free(chw);
    mc_json_free(hdr);
    mc_tensor_map_free(&m);
}

/* ---- bad input ---- */

static char tmpdir[256];

static const char *write_tmp(const char *name, const void *data, size_t n) {
    static char paths[4][512];
    static int k;
    char *p = paths[k++ & 3];
    snprintf(p, sizeof paths[0], "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "wb");
    if (!f) mc_test_fatal("cannot write %s", p);
    if (n && fwrite(data, 1, n, f) != n) mc_test_fatal("cannot write %s", p);
    fclose(f);
    return p;
}

/* Decoding must fail with a negative code and a message naming `name` and containing `want`
 * (if non-NULL); out must be left empty. */
static void expect_fail_mem(const char *what, const void *buf, size_t n, const char *want) {
    mc_image im;
    mc_err e = {0};
    int r = mc_image_decode(buf, n, what, &im, &e);
    int ok = r < 0 && im.rgb == NULL && strstr(e.msg, what) && (!want || strstr(e.msg, want));
    printf("%-4s %-44s -> %s\n", ok ? "ok" : "FAIL", what, r < 0 ? e.msg : "(decoded)");
    CHECK(ok, "%s: expected failure mentioning '%s', got rc %d '%s'", what, want ? want : "", r, e.msg);
    if (r == 0) mc_image_free(&im);
}

static void expect_fail_path(const char *path, const char *want) {
    mc_image im;
    mc_err e = {0};
    int r = mc_image_load(path, &im, &e);
    int ok = r < 0 && im.rgb == NULL && strstr(e.msg, path) && (!want || strstr(e.msg, want));
    printf("%-4s load %-39s -> %s\n", ok ? "ok" : "FAIL", strrchr(path, '/') ? strrchr(path, '/') + 1 : path,
           r < 0 ? e.msg : "(decoded)");
    CHECK(ok, "%s: expected failure mentioning '%s', got rc %d '%s'", path, want ? want : "", r, e.msg);
    if (r == 0) mc_image_free(&im);
}

static void put32be(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* A PNG signature + IHDR (valid CRC) + an IDAT of a few zero bytes + IEND. */
static size_t craft_png(uint8_t *b, uint32_t w, uint32_t h) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    size_t n = 0;
    memcpy(b, sig, 8);
    n = 8;
    put32be(b + n, 13);
    memcpy(b + n + 4, "IHDR", 4);
    put32be(b + n + 8, w);
    put32be(b + n + 12, h);
    b[n + 16] = 8, b[n + 17] = 2, b[n + 18] = 0, b[n + 19] = 0, b[n + 20] = 0; /* 8-bit RGB */
    put32be(b + n + 21, (uint32_t)crc32(0, b + n + 4, 17));
    n += 25;
    static const uint8_t idat[] = {0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01};
    put32be(b + n, sizeof idat);
    memcpy(b + n + 4, "IDAT", 4);
    memcpy(b + n + 8, idat, sizeof idat);
    put32be(b + n + 8 + sizeof idat, (uint32_t)crc32(0, b + n + 4, 4 + sizeof idat));
    n += 12 + sizeof idat;
    put32be(b + n, 0);
    memcpy(b + n + 4, "IEND", 4);
    put32be(b + n + 8, (uint32_t)crc32(0, b + n + 4, 4));
    return n + 12;
}

/* SOI + baseline SOF0 (1 component) + SOS header: enough for jpeg_read_header. */
static size_t craft_jpeg(uint8_t *b, int w, int h) {
    size_t n = 0;
    const uint8_t soi[2] = {0xff, 0xd8};
    memcpy(b, soi, 2);
    n = 2;
    const uint8_t sof[13] = {0xff, 0xc0, 0, 11, 8, (uint8_t)(h >> 8), (uint8_t)h, (uint8_t)(w >> 8), (uint8_t)w,
                             1, 1, 0x11, 0};
    memcpy(b + n, sof, sizeof sof);
    n += sizeof sof;
    const uint8_t sos[10] = {0xff, 0xda, 0, 8, 1, 1, 0x00, 0, 63, 0};
    memcpy(b + n, sos, sizeof sos);
    n += sizeof sos;
    memset(b + n, 0, 64);
    return n + 64;
}

static void check_bad_input(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mc_test_preprocess_XXXXXX");
    if (!mkdtemp(tmpdir)) mc_test_fatal("mkdtemp failed");

    mc_err e = {0};
    char *jpg = NULL, *png = NULL;
    size_t njpg = 0, npng = 0;
    if (mc_read_file(mc_test_path("images/rocket.jpg"), 1 << 24, &jpg, &njpg, &e)) mc_test_fatal("%s", e.msg);
    if (mc_read_file(mc_test_path("images/coins.png"), 1 << 24, &png, &npng, &e)) mc_test_fatal("%s", e.msg);

    /* Truncations. JPEG: any cut before the end of the entropy-coded data is an error, also a
     * cut of just the final EOI marker: libjpeg's Huffman decoder reads ahead, so the last
     * row runs out of data (PIL 9.4, without LOAD_TRUNCATED_IMAGES, raises "image file is
     * truncated" in the same place). Data after EOI is ignored. */
    size_t jcuts[] = {3, 4, 20, 200, 623, 1000, njpg / 4, njpg / 2, njpg - 200, njpg - 3, njpg - 2};
    for (size_t i = 0; i < sizeof jcuts / sizeof *jcuts; i++) {
        char what[64];
        snprintf(what, sizeof what, "rocket.jpg cut at %zu of %zu", jcuts[i], njpg);
        expect_fail_mem(what, jpg, jcuts[i], "truncated JPEG");
    }
    {
        char *c = malloc(njpg + 100);
        memcpy(c, jpg, njpg);
        for (int i = 0; i < 100; i++) c[njpg + i] = (char)(i * 7 + 1);
        mc_image a, b;
        int ra = mc_image_decode(jpg, njpg, "rocket.jpg", &a, &e);
        int rb = mc_image_decode(c, njpg + 100, "rocket.jpg + junk", &b, &e);
        int same = ra == 0 && rb == 0 && a.w == b.w && a.h == b.h && memcmp(a.rgb, b.rgb, (size_t)a.w * a.h * 3) == 0;
        printf("%-4s rocket.jpg with 100 junk bytes after EOI decodes to the same pixels\n", same ? "ok" : "FAIL");
        CHECK(same, "JPEG with trailing junk: rc %d/%d %s", ra, rb, e.msg);
        if (ra == 0) mc_image_free(&a);
        if (rb == 0) mc_image_free(&b);
        free(c);
    }
    size_t pcuts[] = {8, 9, 20, 33, 41, 100, npng / 3, npng / 2, npng - 40};
    for (size_t i = 0; i < sizeof pcuts / sizeof *pcuts; i++) {
        char what[64];
        snprintf(what, sizeof what, "coins.png cut at %zu of %zu", pcuts[i], npng);
        expect_fail_mem(what, png, pcuts[i], "truncated PNG");
    }
    expect_fail_mem("jpeg magic only", jpg, 2, "not a JPEG, PNG or WebP");
    expect_fail_mem("png magic only", png, 7, "not a JPEG, PNG or WebP");
    expect_fail_mem("text file", "hello, world\n", 13, "not a JPEG, PNG or WebP image");
    expect_fail_mem("empty buffer", "", 0, "empty");

    /* Corrupt bytes. PNG: a flipped byte in IDAT fails its CRC. */
    {
        char *c = malloc(npng);
        memcpy(c, png, npng);
        c[npng / 2] ^= 0x5a;
        expect_fail_mem("coins.png with a flipped IDAT byte", c, npng, "corrupt PNG");
        memcpy(c, png, npng);
        c[12] = 'X'; /* IHDR renamed: libpng wants IHDR first */
        expect_fail_mem("coins.png without IHDR", c, npng, "corrupt PNG");
        free(c);
    }
    /* JPEG: corrupt the frame header (entropy-data damage is only a warning, as in PIL). */
    {
        char *c = malloc(njpg);
        size_t sof = 0;
        for (size_t i = 2; i + 1 < njpg; i++)
            if ((uint8_t)jpg[i] == 0xff && ((uint8_t)jpg[i + 1] == 0xc0 || (uint8_t)jpg[i + 1] == 0xc2)) {
                sof = i;
                break;
            }
        CHECK(sof > 0, "rocket.jpg: no SOF marker found");
        memcpy(c, jpg, njpg);
        c[sof + 4] = 12; /* 12-bit precision: libjpeg-turbo's 8-bit build refuses */
        expect_fail_mem("rocket.jpg with 12-bit precision", c, njpg, "corrupt JPEG");
        memcpy(c, jpg, njpg);
        c[sof + 9] = 2; /* 2 components, lengths then disagree */
        expect_fail_mem("rocket.jpg with 2 components", c, njpg, "JPEG");
        memset(c + 3, 0x55, njpg - 3);
        expect_fail_mem("JPEG magic + garbage", c, njpg, "corrupt JPEG");
        /* Entropy-coded data damaged: decodes (warnings only), no crash. */
        memcpy(c, jpg, njpg);
        for (size_t i = njpg / 2; i < njpg / 2 + 64; i++) c[i] = (char)(i * 37);
        mc_image im;
        int r = mc_image_decode(c, njpg, "rocket.jpg with damaged scan data", &im, &e);
        printf("%-4s rocket.jpg with damaged scan data decodes (libjpeg warnings are not fatal)\n", r == 0 ? "ok" : "FAIL");
        CHECK(r == 0 && im.w == 640 && im.h == 427, "damaged scan data: %s", e.msg);
        if (r == 0) mc_image_free(&im);
        free(c);
    }

    /* Absurd sizes, rejected before allocating. */
    uint8_t b[256];
    size_t n = craft_png(b, 100000, 100000);
    expect_fail_mem("png claiming 100000x100000", b, n, "image too large");
    expect_fail_path(write_tmp("huge.png", b, n), "image too large");
    n = craft_png(b, 2000000, 1);
    expect_fail_mem("png claiming 2000000x1", b, n, "PNG");
    n = craft_jpeg(b, 60000, 60000);
    expect_fail_mem("jpeg claiming 60000x60000", b, n, "image too large");
    expect_fail_path(write_tmp("huge.jpg", b, n), "image too large");
    n = craft_jpeg(b, 65535, 65535);
    expect_fail_mem("jpeg claiming 65535x65535", b, n, "corrupt JPEG");
    n = craft_png(b, 0, 5);
    expect_fail_mem("png claiming 0x5", b, n, "corrupt PNG");
    n = craft_jpeg(b, 0, 5);
    expect_fail_mem("jpeg claiming 0x5", b, n, "corrupt JPEG");
    /* A plausible size whose pixel data is missing. */
    n = craft_png(b, 64, 64);
    expect_fail_mem("png 64x64 with 1 byte of pixel data", b, n, "corrupt PNG");

    /* Files: empty, directory, missing, text, truncated on disk. */
    expect_fail_path(write_tmp("empty.png", "", 0), "empty");
    expect_fail_path(tmpdir, "directory");
    char missing[512];
    snprintf(missing, sizeof missing, "%s/no_such_file.jpg", tmpdir);
    expect_fail_path(missing, "cannot open");
    expect_fail_path(write_tmp("notes.png", "not an image\n", 13), "not a JPEG, PNG or WebP image");
    expect_fail_path(write_tmp("cut.jpg", jpg, njpg / 2), "truncated JPEG");
    expect_fail_path(write_tmp("cut.png", png, npng / 2), "truncated PNG");

    /* Preprocess argument checks. */
    {
        mc_image im = {0};
        float f[3];
        CHECK(mc_image_preprocess(&im, 224, f, &e) < 0, "preprocess of an empty image must fail");
        int rw, rh;
        CHECK(mc_image_shorter_size(10, 10, 0, &rw, &rh, &e) < 0, "R = 0 must fail");
        CHECK(mc_image_shorter_size(1, 1000000, 256, &rw, &rh, &e) < 0, "extreme aspect ratio must fail: %dx%d", rw, rh);
        CHECK(mc_image_shorter_size(1, 300, 256, &rw, &rh, &e) == 0 && rw == 256 && rh == 76800,
              "1x300 -> 256x76800, got %dx%d", rw, rh);
    }

    /* Clean up the temp dir. */
    const char *names[] = {"huge.png", "huge.jpg", "empty.png", "notes.png", "cut.jpg", "cut.png"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", tmpdir, names[i]);
        unlink(p);
    }
    rmdir(tmpdir);
    free(jpg);
    free(png);
}

/* ---- resample semantics on tiny images, worked out by hand from PIL's rules ---- */

static void check_resample_by_hand(void) {
    mc_err e = {0};
    /* Upscale 2 -> 4 of [0, 255] (one row, so the vertical pass is skipped): scale 0.5,
     * support 1. Out 0: center 0.25, taps {0} -> 0. Out 1: center 0.75, taps {0: 0.75,
     * 1: 0.25}, 255 * 1048576 + 2^21 >> 22 = 64. Out 2: weights 0.25/0.75 -> 191.75 -> 191.
     * Out 3: 255. */
    uint8_t px2[6] = {0, 0, 0, 255, 255, 255};
    mc_image a = {2, 1, px2}, o;
    CHECK(mc_image_resize(&a, 4, 1, &o, &e) == 0, "resize 2->4: %s", e.msg);
    static const uint8_t up[4] = {0, 64, 191, 255};
    int ok = 1;
    for (int x = 0; x < 4; x++) ok &= o.rgb[3 * x] == up[x] && o.rgb[3 * x + 1] == up[x] && o.rgb[3 * x + 2] == up[x];
    printf("%-4s resize [0,255] 2->4 = [%d,%d,%d,%d] (want 0,64,191,255)\n", ok ? "ok" : "FAIL", o.rgb[0], o.rgb[3],
           o.rgb[6], o.rgb[9]);
    CHECK(ok, "upscale by hand");
    mc_image_free(&o);

    /* Downscale 4 -> 2 of [0, 100, 200, 255] as a column (horizontal pass skipped): scale 2,
     * support 2. Out 0: center 1, taps 0..2 weights 3/7, 3/7, 1/7 -> 71.9 -> 71.
     * Out 1: center 3, taps 1..3 weights 1/7, 3/7, 3/7 -> 209.8 -> 209 (truncation of the
     * rounded fixed-point sum, not float rounding: 1465/7 = 209.29). */
    uint8_t px4[12] = {0, 0, 0, 100, 100, 100, 200, 200, 200, 255, 255, 255};
    mc_image b = {1, 4, px4};
    CHECK(mc_image_resize(&b, 1, 2, &o, &e) == 0, "resize 4->2: %s", e.msg);
    ok = o.rgb[0] == 71 && o.rgb[3] == 209;
    printf("%-4s resize [0,100,200,255] 4->2 = [%d,%d] (want 71,209)\n", ok ? "ok" : "FAIL", o.rgb[0], o.rgb[3]);
    CHECK(ok, "downscale by hand");
    mc_image_free(&o);

    /* Same size: bytes unchanged. A constant image stays constant at any size. */
    mc_image c;
    CHECK(mc_image_alloc(&c, 37, 23, &e) == 0, "alloc");
    for (int i = 0; i < 37 * 23 * 3; i++) c.rgb[i] = (uint8_t)(i % 3 == 0 ? 0 : i % 3 == 1 ? 137 : 255);
    const int sizes[][2] = {{37, 23}, {300, 10}, {5, 200}, {1, 1}, {36, 24}, {74, 46}};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        CHECK(mc_image_resize(&c, sizes[k][0], sizes[k][1], &o, &e) == 0, "resize const: %s", e.msg);
        ok = 1;
        for (int i = 0; i < sizes[k][0] * sizes[k][1]; i++)
            ok &= o.rgb[3 * i] == 0 && o.rgb[3 * i + 1] == 137 && o.rgb[3 * i + 2] == 255;
        CHECK(ok, "constant 37x23 image resized to %dx%d is not constant", sizes[k][0], sizes[k][1]);
        mc_image_free(&o);
    }
    printf("ok   constant image stays constant under 6 resizes (incl. identity)\n");
    /* Center crop larger than the image pads with zeros like torchvision (pad (crop-size)//2
     * before), smaller crops use round-half-even offsets. */
    int l, t;
    mc_image_center_offsets(37, 23, 30, 30, &l, &t);
    CHECK(l == 4 && t == -3, "offsets 37x23 crop 30: %d,%d want 4,-3", l, t); /* 3.5 -> 4, pad 7 // 2 = 3 */
    mc_image_center_offsets(39, 10, 30, 5, &l, &t);
    CHECK(l == 4 && t == 2, "offsets 39x10 crop 30x5: %d,%d want 4,2", l, t); /* 4.5 -> 4, 2.5 -> 2 */
    CHECK(mc_image_center_crop(&c, 30, 30, &o, &e) == 0, "crop: %s", e.msg);
    ok = o.rgb[0] == 0 && o.rgb[1] == 0 && o.rgb[2] == 0;                       /* row 0 is padding */
    ok &= o.rgb[(3 * 30 + 0) * 3 + 1] == 137 && o.rgb[(25 * 30 + 29) * 3 + 1] == 137; /* rows 3..25 are image */
    ok &= o.rgb[(26 * 30) * 3 + 1] == 0;                                          /* row 26 is padding */
    CHECK(ok, "center crop with padding");
    mc_image_free(&o);
    mc_image_free(&c);
}

int main(void) {
    check_resample_by_hand();
    check_golden();
    check_model_inputs("s0", 256);
    check_model_inputs("b", 224);
    check_bad_input();
    return mc_test_finish("preprocess");
}
