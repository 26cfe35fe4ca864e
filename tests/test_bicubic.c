/* PIL 9.4 bicubic resampling (open_clip's eval transform) against tests/data/bicubic/, written by
 * PIL itself (tools/reference/gen_bicubic_ref.py): every case must match to 0 levels. Plus two
 * values worked out by hand and the identity / constant-image properties. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/test_util.h"
#include "image/image.h"
#include "image/preprocess.h"
#include "image/resample.h"
#include "io/json.h"
#include "io/mapped_file.h"

static const char *data_path(const char *name) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/bicubic/%s", MC_TEST_DATA_DIR, name);
    return buf[k];
}

static int json_int_at(const mc_json *arr, int i) {
    const mc_json *v = mc_json_at(arr, i);
    if (!v || v->type != MC_JSON_NUMBER) mc_test_fatal("cases.json: bad integer array");
    return (int)v->number;
}

static const char *json_str(const mc_json *o, const char *k) {
    const mc_json *v = mc_json_get(o, k);
    if (!v || v->type != MC_JSON_STRING) mc_test_fatal("cases.json: '%s' missing", k);
    return v->str;
}

/* Max level difference between two images of the same size (-1 if the sizes differ). */
static int max_diff(const mc_image *a, const mc_image *b, long *n_diff) {
    if (a->w != b->w || a->h != b->h) return -1;
    int m = 0;
    *n_diff = 0;
    for (size_t i = 0; i < (size_t)a->w * a->h * 3; i++) {
        int d = abs((int)a->rgb[i] - (int)b->rgb[i]);
        *n_diff += d != 0;
        if (d > m) m = d;
    }
    return m;
}

static void check_reference(void) {
    char *text = NULL;
    size_t len = 0;
    mc_err e = {0};
    if (mc_read_file(data_path("cases.json"), 1 << 20, &text, &len, &e)) mc_test_fatal("%s", e.msg);
    mc_json *root = mc_json_parse(text, len, &e);
    if (!root) mc_test_fatal("cases.json: %s", e.msg);
    const mc_json *cases = mc_json_get(root, "cases");
    if (!cases || cases->type != MC_JSON_ARRAY || cases->count < 1) mc_test_fatal("cases.json: no cases");
    int n_eval = 0, n_resize = 0;
    for (int i = 0; i < cases->count; i++) {
        const mc_json *c = &cases->items[i];
        const char *src = json_str(c, "source"), *op = json_str(c, "op"), *out = json_str(c, "out");
        char rel[256];
        snprintf(rel, sizeof rel, "images/%s", src);
        mc_image im = {0}, ref = {0}, got = {0};
        if (mc_image_load(mc_test_path(rel), &im, &e)) mc_test_fatal("%s", e.msg);
        if (mc_image_load(data_path(out), &ref, &e)) mc_test_fatal("%s", e.msg);
        int r;
        double t0 = mc_test_now();
        if (strcmp(op, "eval") == 0) {
            const mc_json *R = mc_json_get(c, "R"), *rs = mc_json_get(c, "resized"), *off = mc_json_get(c, "offset");
            if (!R || !rs || !off) mc_test_fatal("cases.json: eval case %d incomplete", i);
            int rw, rh, left, top;
            CHECK(mc_image_shorter_size(im.w, im.h, (int)R->number, &rw, &rh, &e) == 0, "%s", e.msg);
            mc_image_center_offsets(rw, rh, (int)R->number, (int)R->number, &left, &top);
            CHECK(rw == json_int_at(rs, 0) && rh == json_int_at(rs, 1) && left == json_int_at(off, 0) &&
                      top == json_int_at(off, 1),
                  "%s: resize %dx%d crop +%d+%d differs from the reference's", out, rw, rh, left, top);
            r = mc_image_eval_crop_u8(&im, (int)R->number, MC_RESAMPLE_BICUBIC, &got, &e);
            n_eval++;
        } else {
            const mc_json *sz = mc_json_get(c, "size");
            if (!sz) mc_test_fatal("cases.json: resize case %d incomplete", i);
            r = mc_image_resample(&im, json_int_at(sz, 0), json_int_at(sz, 1), MC_RESAMPLE_BICUBIC, &got, &e);
            n_resize++;
        }
        double ms = (mc_test_now() - t0) * 1e3;
        CHECK(r == 0, "%s: %s", out, e.msg);
        long nd = 0;
        int md = r ? -1 : max_diff(&got, &ref, &nd);
        printf("%-4s %-45s from %4dx%-4d: max diff %d levels, %ld values differ (%.2f ms)\n", md == 0 ? "ok" : "FAIL",
               out, im.w, im.h, md, nd, ms);
        CHECK(md == 0, "%s: bytes differ from PIL's (max %d levels, %ld values)", out, md, nd);
        /* the step-by-step path (whole resize, then crop) gives the same bytes as the window */
        if (r == 0 && strcmp(op, "eval") == 0) {
            mc_image full = {0}, crop = {0};
            int rw = 0, rh = 0;
            CHECK(mc_image_shorter_size(im.w, im.h, ref.w, &rw, &rh, &e) == 0 &&
                      mc_image_resample(&im, rw, rh, MC_RESAMPLE_BICUBIC, &full, &e) == 0,
                  "%s", e.msg);
            CHECK(mc_image_center_crop(&full, ref.w, ref.h, &crop, &e) == 0, "%s", e.msg);
            CHECK(crop.rgb && memcmp(crop.rgb, got.rgb, (size_t)ref.w * ref.h * 3) == 0,
                  "%s: resize + crop differs from the windowed eval crop", out);
            mc_image_free(&full);
            mc_image_free(&crop);
        }
        mc_image_free(&got);
        mc_image_free(&ref);
        mc_image_free(&im);
    }
    CHECK(n_eval >= 6 && n_resize >= 3, "only %d eval and %d resize cases", n_eval, n_resize);
    mc_json_free(root);
    free(text);
}

static void check_by_hand(void) {
    mc_err e = {0};
    /* Upscale a row [0, 255] 2 -> 4 with bicubic: scale 0.5, support 2, k(x) = 1.5|x|^3 -
     * 2.5|x|^2 + 1 for |x| < 1, -0.5(|x|^3 - 5|x|^2 + 8|x| - 4) for |x| < 2.
     * Out 0 (center 0.25): taps at distances 0.25, 1.25: k = 0.8671875, -0.0703125, normalised
     * by 0.796875 -> 255 * -0.088 < 0 -> 0. Out 1 (center 0.75): distances 0.25, 0.75:
     * k = 0.8671875, 0.2265625 -> 255 * 0.2265625 / 1.09375 = 52.82 -> 53 after the 1 << 21
     * rounding term. Mirror images: 202 and 255 (PIL 9.4 gives these four values). */
    uint8_t px2[6] = {0, 0, 0, 255, 255, 255};
    mc_image a = {2, 1, px2}, o = {0};
    CHECK(mc_image_resample(&a, 4, 1, MC_RESAMPLE_BICUBIC, &o, &e) == 0, "resize 2->4: %s", e.msg);
    static const uint8_t up[4] = {0, 53, 202, 255};
    int ok = o.rgb != NULL;
    for (int x = 0; ok && x < 4; x++) ok &= o.rgb[3 * x] == up[x] && o.rgb[3 * x + 2] == up[x];
    printf("%-4s bicubic [0,255] 2->4 = [%d,%d,%d,%d] (want 0,53,202,255)\n", ok ? "ok" : "FAIL", o.rgb[0], o.rgb[3],
           o.rgb[6], o.rgb[9]);
    CHECK(ok, "bicubic upscale by hand");
    mc_image_free(&o);

    /* A constant image stays constant (the normalised weights sum to 1 in fixed point up to the
     * rounding that PIL's 1 << 21 start absorbs), and equal sizes are the identity. */
    mc_image c = {0};
    CHECK(mc_image_alloc(&c, 29, 31, &e) == 0, "alloc");
    for (int i = 0; i < 29 * 31 * 3; i++) c.rgb[i] = (uint8_t)(i % 3 == 0 ? 1 : i % 3 == 1 ? 137 : 254);
    const int sizes[][2] = {{300, 10}, {5, 200}, {1, 1}, {28, 32}, {87, 93}};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        CHECK(mc_image_resample(&c, sizes[k][0], sizes[k][1], MC_RESAMPLE_BICUBIC, &o, &e) == 0, "%s", e.msg);
        ok = 1;
        for (int i = 0; i < sizes[k][0] * sizes[k][1]; i++)
            ok &= o.rgb[3 * i] == 1 && o.rgb[3 * i + 1] == 137 && o.rgb[3 * i + 2] == 254;
        CHECK(ok, "constant image resized to %dx%d is not constant", sizes[k][0], sizes[k][1]);
        mc_image_free(&o);
    }
    for (int i = 0; i < 29 * 31 * 3; i++) c.rgb[i] = (uint8_t)(i * 7919 % 251);
    CHECK(mc_image_resample(&c, 29, 31, MC_RESAMPLE_BICUBIC, &o, &e) == 0, "%s", e.msg);
    CHECK(o.rgb && memcmp(o.rgb, c.rgb, 29 * 31 * 3) == 0, "same-size bicubic resize is not the identity");
    mc_image_free(&o);
    mc_image_free(&c);
    printf("ok   constant images stay constant, same size is the identity\n");
}

int main(void) {
    check_reference();
    check_by_hand();
    return mc_test_finish("bicubic");
}
