/* DataCompDR augmentations against shared/golden/dr_transforms (apple/ml-mobileclip
 * training/dr/transforms.py, torchvision 0.14.1, Pillow 9.4.0):
 *   - every case reapplied from its stored compressed parameters reproduces the reference
 *     float32 tensor bit for bit and the uint8 image recovered from it exactly;
 *   - the parameters parse to the reference's decompressed form, write back to the same
 *     json.dumps bytes, the geometric ops use the same PIL matrices (every double);
 *   - paug.json round trips (list and Hugging Face JSON-string forms);
 *   - the magnitude table equals torchvision's bin-9 values;
 *   - sampling: legal ranges, torchvision's fallback, determinism, uniform op choice;
 *   - malformed parameter records are rejected with a reason;
 *   - Python float repr of the JSON writer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment/augment.h"
#include "augment/augment_internal.h"
#include "common/test_util.h"
#include "image/pil_ops.h"
#include "io/pyrepr.h"

#define PINNED_SAMPLE "[[71, 3, 406, 508], [[8, -0.26999998092651367], [7, -0.26999998092651367]]]"

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) mc_test_fatal("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) mc_test_fatal("cannot read %s", path);
    fclose(f);
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

/* Calls fn(line json) for every line of a JSON-lines file. */
static int for_lines(const char *path, void (*fn)(const mc_json *, void *), void *user) {
    size_t len;
    char *text = read_all(path, &len);
    int n = 0;
    for (char *p = text, *end; p < text + len; p = end + 1) {
        end = memchr(p, '\n', (size_t)(text + len - p));
        if (!end) end = text + len;
        if (end == p) continue;
        mc_err e = {0};
        mc_json *j = mc_json_parse(p, (size_t)(end - p), &e);
        if (!j) mc_test_fatal("%s line %d: %s", path, n + 1, e.msg);
        fn(j, user);
        mc_json_free(j);
        n++;
    }
    free(text);
    return n;
}

static const char *jstr(const mc_json *o, const char *k) {
    const mc_json *v = mc_json_get(o, k);
    if (!v || v->type != MC_JSON_STRING) mc_test_fatal("golden case: no string '%s'", k);
    return v->str;
}

static const mc_json *jget(const mc_json *o, const char *k) {
    const mc_json *v = mc_json_get(o, k);
    if (!v) mc_test_fatal("golden case: no '%s'", k);
    return v;
}

/* ---- image cache ---- */
#define MAX_IMAGES 16
static struct { char name[128]; mc_image im; } images[MAX_IMAGES];
static int n_images;

static const mc_image *get_image(const char *name) {
    for (int k = 0; k < n_images; k++)
        if (!strcmp(images[k].name, name)) return &images[k].im;
    if (n_images == MAX_IMAGES) mc_test_fatal("too many images");
    char rel[256];
    snprintf(rel, sizeof rel, "images/%s", name);
    mc_err e = {0};
    if (mc_image_load(mc_test_path(rel), &images[n_images].im, &e)) mc_test_fatal("%s", e.msg);
    snprintf(images[n_images].name, sizeof images[0].name, "%s", name);
    return &images[n_images++].im;
}

/* ---- the golden cases ---- */
typedef struct case_ctx {
    mc_augment_config cfg;
    mc_tensor_map golden;
    int cases, exact_f32, exact_u8, max_u8_diff;
    double max_f32_diff;
    /* compressed strings of the random cases, by image and draw, for the paug check */
    char compressed[8][8][256];
    char image_of[8][128];
    int n_img;
    /* every case's parameters and image, for the sensitivity check */
    char ids[80][16];
    mc_augment_params params[80];
    const mc_image *image[80];
    int n_ids;
} case_ctx;

static void check_case(const mc_json *c, void *user) {
    case_ctx *ctx = user;
    const char *id = jstr(c, "id"), *image = jstr(c, "image"), *compressed = jstr(c, "compressed");
    const mc_image *im = get_image(image);
    const mc_json *ms = jget(c, "image_mode_size");
    CHECK(im->w == (int)mc_json_at(mc_json_at(ms, 1), 0)->number && im->h == (int)mc_json_at(mc_json_at(ms, 1), 1)->number,
          "%s: decoded %s is %dx%d", id, image, im->w, im->h);
    mc_err e = {0};
    mc_augment_params p;
    int r = mc_augment_params_from_json(&ctx->cfg, compressed, strlen(compressed), &p, &e);
    CHECK(r == 0, "%s: parameters %s rejected: %s", id, compressed, e.msg);
    if (r) return;
    ctx->cases++;
    if (ctx->n_ids < 80) {
        snprintf(ctx->ids[ctx->n_ids], sizeof ctx->ids[0], "%s", id);
        ctx->params[ctx->n_ids] = p;
        ctx->image[ctx->n_ids++] = im;
    }

    /* decompress: the box and the (name, magnitude) pairs of the reference */
    const mc_json *box = jget(c, "rrc_box_top_left_height_width");
    CHECK(p.crop_i == (int)mc_json_at(box, 0)->number && p.crop_j == (int)mc_json_at(box, 1)->number &&
          p.crop_h == (int)mc_json_at(box, 2)->number && p.crop_w == (int)mc_json_at(box, 3)->number,
          "%s: crop box differs", id);
    const mc_json *dec = mc_json_get(jget(c, "decompressed"), "rand_augment");
    const mc_json *ops = dec && dec->type == MC_JSON_ARRAY ? mc_json_at(dec, 0) : NULL;
    if (!ops || ops->type == MC_JSON_NULL) {
        CHECK(!p.ra_applied, "%s: RandAugment should be skipped", id);
    } else {
        CHECK(p.ra_applied && p.num_ops == ops->count, "%s: op count", id);
        for (int k = 0; k < ops->count && k < p.num_ops; k++) {
            const mc_json *pair = mc_json_at(ops, k);
            CHECK(!strcmp(mc_augment_op_name(p.ops[k].op), mc_json_at(pair, 0)->str) &&
                  p.ops[k].magnitude == mc_json_at(pair, 1)->number,
                  "%s: op %d is %s %.17g, reference %s %.17g", id, k, mc_augment_op_name(p.ops[k].op),
                  p.ops[k].magnitude, mc_json_at(pair, 0)->str, mc_json_at(pair, 1)->number);
        }
    }
    /* compress: json.dumps bytes */
    char buf[512];
    r = mc_augment_params_to_json(&ctx->cfg, &p, buf, sizeof buf, &e);
    CHECK(r > 0 && !strcmp(buf, compressed), "%s: compressed as %s, reference %s", id, buf, compressed);

    /* the exact PIL matrices / factors the reference used */
    const mc_json *eff = jget(c, "effective_ops");
    const mc_json *osz = jget(c, "output_size_hw");
    int oh = (int)mc_json_at(osz, 0)->number, ow = (int)mc_json_at(osz, 1)->number;
    for (int k = 0; k < eff->count; k++) {
        const mc_json *op = mc_json_at(eff, k), *mat = mc_json_get(op, "pil_inverse_affine");
        if (!mat) continue;
        double m[6];
        mc_augment_op_matrix(p.ops[k].op, p.ops[k].magnitude, ow, oh, m);
        int same = 1;
        for (int t = 0; t < 6; t++) same &= m[t] == mc_json_at(mat, t)->number;
        CHECK(same, "%s: op %d matrix [%.17g %.17g %.17g %.17g %.17g %.17g] differs from PIL's", id, k, m[0], m[1],
              m[2], m[3], m[4], m[5]);
    }

    /* reapply at the case's output size */
    const mc_tensor *ref = mc_test_tensor(&ctx->golden, jstr(c, "tensor"));
    CHECK(ref->dtype == MC_DTYPE_F32 && ref->ndim == 3 && ref->shape[0] == 3 && ref->shape[1] == oh && ref->shape[2] == ow,
          "%s: golden tensor shape", id);
    size_t n = (size_t)3 * oh * ow;
    float *got = malloc(n * sizeof *got);
    mc_image u8;
    r = mc_augment_apply_u8(&ctx->cfg, &p, im, ow, oh, &u8, &e);
    CHECK(r == 0, "%s: apply: %s", id, e.msg);
    if (r) { free(got); return; }
    r = mc_augment_apply(&ctx->cfg, &p, im, ow, oh, got, &e);
    CHECK(r == 0, "%s: apply: %s", id, e.msg);
    const float *want = ref->data;
    double maxf = 0;
    int maxu = 0;
    long diff_u8 = 0;
    size_t hw = (size_t)oh * ow;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (d > maxf || got[i] != got[i]) maxf = d;
        /* the README's recovery of the uint8 image: rint((x * std + mean) * 255) in double */
        int c3 = (int)(i / hw);
        double x = (double)want[i] * (double)ctx->cfg.std[c3] + (double)ctx->cfg.mean[c3];
        int ref_u8 = (int)rint(x * 255.0);
        int mine = u8.rgb[(i % hw) * 3 + (size_t)c3];
        int du = abs(mine - ref_u8);
        if (du) diff_u8++;
        if (du > maxu) maxu = du;
    }
    if (maxf > ctx->max_f32_diff) ctx->max_f32_diff = maxf;
    if (maxu > ctx->max_u8_diff) ctx->max_u8_diff = maxu;
    ctx->exact_f32 += maxf == 0;
    ctx->exact_u8 += maxu == 0;
    if (maxu) printf("     %-6s %-28s uint8 differs: max %d levels, %ld values; float max %.3g\n", id, jstr(c, "kind"), maxu, diff_u8, maxf);
    CHECK(maxu == 0 && maxf <= 1e-6, "%s (%s): not exact (uint8 max %d, float max %.3g)", id, jstr(c, "kind"), maxu, maxf);
    mc_image_free(&u8);
    free(got);

    /* remember the random draws for the paug.json check */
    if (!strcmp(jstr(c, "kind"), "random")) {
        int d = (int)jget(c, "draw")->number, m = -1;
        for (int k = 0; k < ctx->n_img; k++)
            if (!strcmp(ctx->image_of[k], image)) m = k;
        if (m < 0 && ctx->n_img < 8) snprintf(ctx->image_of[m = ctx->n_img++], 128, "%s", image);
        if (m >= 0 && d >= 0 && d < 8) snprintf(ctx->compressed[m][d], 256, "%s", compressed);
    }
}

/* paug.jsonl: parse, compare with the cases' records, write back byte for byte, and read
 * the Hugging Face form (the list as a JSON string). */
static void check_paug(const mc_json *line, void *user) {
    case_ctx *ctx = user;
    const char *image = jstr(line, "image"), *text = jstr(line, "paug.json");
    mc_err e = {0};
    mc_augment_params *ps = NULL;
    int n = 0;
    int r = mc_augment_paug_parse(&ctx->cfg, text, strlen(text), image, &ps, &n, &e);
    CHECK(r == 0 && n == 8, "paug %s: %s (n = %d)", image, e.msg, n);
    if (r) return;
    int m = -1;
    for (int k = 0; k < ctx->n_img; k++)
        if (!strcmp(ctx->image_of[k], image)) m = k;
    CHECK(m >= 0, "paug %s: no random cases for this image", image);
    for (int d = 0; m >= 0 && d < n; d++) {
        char buf[512];
        mc_augment_params_to_json(&ctx->cfg, &ps[d], buf, sizeof buf, &e);
        CHECK(!strcmp(buf, ctx->compressed[m][d]), "paug %s[%d]: %s vs case %s", image, d, buf, ctx->compressed[m][d]);
    }
    char *out;
    size_t len;
    r = mc_augment_paug_write(&ctx->cfg, ps, n, &out, &len, &e);
    CHECK(r == 0 && len == strlen(text) && !strcmp(out, text), "paug %s: written differently:\n%s\n%s", image,
          r ? e.msg : out, text);
    if (!r) free(out);

    /* {"param_aug": "<the list as JSON text>"} */
    const char *lb = strchr(text, '['), *rb = strrchr(text, ']');
    size_t cap = 2 * strlen(text) + 32, o = 0;
    char *hf = malloc(cap);
    o += (size_t)snprintf(hf, cap, "{\"param_aug\": \"");
    for (const char *q = lb; q <= rb; q++) {
        if (*q == '"' || *q == '\\') hf[o++] = '\\';
        hf[o++] = *q;
    }
    memcpy(hf + o, "\"}", 3);
    mc_augment_params *ps2 = NULL;
    int n2 = 0;
    r = mc_augment_paug_parse(&ctx->cfg, hf, strlen(hf), image, &ps2, &n2, &e);
    CHECK(r == 0 && n2 == n && !memcmp(ps, ps2, (size_t)n * sizeof *ps), "paug %s (string form): %s", image, e.msg);
    free(ps2);
    free(hf);
    free(ps);
}

/* sensitivity.json: the reference's own measurements of a crop box off by one pixel (each
 * field +-1, with the case's RandAugment ops or with them replaced by Identity), against the
 * unperturbed output. Recomputing them checks 182 more crop boxes through the whole pipeline:
 * the perturbed outputs must differ from the reference exactly as the reference's did. */
static void check_sensitivity(case_ctx *ctx) {
    size_t len;
    char *text = read_all(mc_test_path("golden/dr_transforms/sensitivity.json"), &len);
    mc_err e = {0};
    mc_json *j = mc_json_parse(text, len, &e);
    if (!j) mc_test_fatal("sensitivity.json: %s", e.msg);
    const mc_json *list = jget(j, "crop_box_off_by_one");
    int done = 0, exact = 0;
    double worst_mean = 0;
    for (int k = 0; k < list->count; k++) {
        const mc_json *s = mc_json_at(list, k);
        const char *cid = jstr(s, "case"), *pipe = jstr(s, "pipeline"), *field = jstr(s, "field");
        int delta = (int)jget(s, "delta")->number, c = -1;
        for (int t = 0; t < ctx->n_ids; t++)
            if (!strcmp(ctx->ids[t], cid)) c = t;
        if (c < 0) mc_test_fatal("sensitivity.json: unknown case %s", cid);
        mc_augment_params base = ctx->params[c];
        if (!strcmp(pipe, "rrc_only"))
            for (int t = 0; t < base.num_ops; t++) base.ops[t].op = MC_AUG_IDENTITY, base.ops[t].magnitude = 0.0;
        mc_augment_params pert = base;
        int *f = !strcmp(field, "i") ? &pert.crop_i : !strcmp(field, "j") ? &pert.crop_j
               : !strcmp(field, "h") ? &pert.crop_h : &pert.crop_w;
        *f += delta;
        const mc_image *im = ctx->image[c];
        size_t n = (size_t)3 * 224 * 224;
        float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
        mc_image ua, ub;
        int r = mc_augment_apply(&ctx->cfg, &pert, im, 224, 224, a, &e) | mc_augment_apply(&ctx->cfg, &base, im, 224, 224, b, &e) |
                mc_augment_apply_u8(&ctx->cfg, &pert, im, 224, 224, &ua, &e) | mc_augment_apply_u8(&ctx->cfg, &base, im, 224, 224, &ub, &e);
        CHECK(r == 0, "sensitivity %s %s %s%+d: %s", cid, pipe, field, delta, e.msg);
        if (r) { free(a); free(b); continue; }
        double maxd = 0, sum = 0;
        long changed = 0;
        int maxu = 0;
        for (size_t i = 0; i < n; i++) {
            double d = fabs((double)a[i] - (double)b[i]);
            if (d > maxd) maxd = d;
            sum += d;
            changed += a[i] != b[i];
            int du = abs((int)ua.rgb[i] - (int)ub.rgb[i]);
            if (du > maxu) maxu = du;
        }
        double mean = sum / (double)n, frac = (double)changed / (double)n;
        double want_max = jget(s, "max_abs_normalized")->number, want_mean = jget(s, "mean_abs_normalized")->number;
        int want_u8 = (int)jget(s, "max_abs_u8")->number;
        double want_frac = jget(s, "frac_values_changed")->number;
        double rel_mean = fabs(mean - want_mean) / want_mean;
        if (rel_mean > worst_mean) worst_mean = rel_mean;
        int ok = fabs(maxd - want_max) <= 1e-6 && rel_mean <= 1e-5 && maxu == want_u8 && frac == want_frac;
        exact += ok;
        CHECK(ok, "sensitivity %s %s %s%+d: max %.9g (ref %.9g), mean %.9g (ref %.9g), u8 %d (ref %d), frac %.9g (ref %.9g)",
              cid, pipe, field, delta, maxd, want_max, mean, want_mean, maxu, want_u8, frac, want_frac);
        mc_image_free(&ua);
        mc_image_free(&ub);
        free(a);
        free(b);
        done++;
    }
    printf("%-4s sensitivity: %d/%d off-by-one crop boxes reproduce the reference's difference statistics "
           "(max, changed fraction, uint8 max exact; mean within %.1e)\n", exact == done && done == 182 ? "ok" : "FAIL",
           exact, done, worst_mean);
    CHECK(done == 182, "sensitivity.json: %d entries", done);
    mc_json_free(j);
    free(text);
}

static void check_magnitudes(void) {
    size_t len;
    char *text = read_all(mc_test_path("golden/dr_transforms/magnitudes.json"), &len);
    mc_err e = {0};
    mc_json *j = mc_json_parse(text, len, &e);
    if (!j) mc_test_fatal("magnitudes.json: %s", e.msg);
    const mc_json *names = jget(j, "op_names_compressed_index"), *vals = jget(j, "bin9_magnitude_for_224x224");
    CHECK(names->count == MC_AUG_NUM_OPS, "magnitudes.json: %d ops", names->count);
    int bins = (int)jget(j, "num_magnitude_bins")->number, bin = (int)jget(j, "magnitude_bin")->number;
    for (int k = 0; k < names->count && k < MC_AUG_NUM_OPS; k++) {
        const char *nm = mc_json_at(names, k)->str;
        const mc_json *v = jget(vals, nm);
        double want = jget(v, "value")->number, got = mc_augment_magnitude(k, bin, bins, 224, 224);
        CHECK(!strcmp(nm, mc_augment_op_name(k)), "op %d is %s, reference %s", k, mc_augment_op_name(k), nm);
        CHECK(got == want, "%s magnitude %.17g, reference %.17g", nm, got, want);
        CHECK(mc_augment_op_signed(k) == jget(v, "signed")->boolean, "%s signedness", nm);
    }
    /* the whole table against an independent float32 linspace (torch's two-sided formula) and
     * the posterize bins 8 - round(k / 7.5) = 8,8,8,8,7,7,...,4 */
    for (int k = 0; k < 31; k++) {
        float step = 0.9f / 30.0f;
        float down = step * (float)(30 - k); /* separate statements: no fused multiply-add */
        float lin = k < 15 ? step * (float)k : 0.9f - down;
        CHECK(mc_augment_magnitude(MC_AUG_BRIGHTNESS, k, 31, 224, 224) == (double)lin, "brightness bin %d", k);
        int post = 8 - (int)nearbyint(k / 7.5);
        CHECK(mc_augment_magnitude(MC_AUG_POSTERIZE, k, 31, 224, 224) == post, "posterize bin %d", k);
    }
    CHECK(mc_augment_magnitude(MC_AUG_TRANSLATE_X, 30, 31, 331, 100) == (double)(float)150.0 &&
          mc_augment_magnitude(MC_AUG_TRANSLATE_Y, 30, 31, 100, 331) == (double)(float)150.0,
          "translate uses width for X and height for Y");
    mc_json_free(j);
    free(text);
}

static void check_sampling(const mc_augment_config *cfg) {
    mc_err e = {0};
    const int sizes[][2] = {{512, 512}, {451, 300}, {300, 451}, {17, 13}, {1, 1}, {4000, 30}, {640, 480}};
    long op_count[MC_AUG_NUM_OPS] = {0}, signed_neg = 0, signed_total = 0, fallbacks = 0, total = 0;
    int bad = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int W = sizes[s][0], H = sizes[s][1];
        mc_rng rng;
        mc_rng_init(&rng, 1234, s);
        for (int k = 0; k < 3000; k++) {
            mc_augment_params p;
            if (mc_augment_sample(&rng, cfg, W, H, &p, &e)) { bad++; continue; }
            total++;
            bad += p.crop_h < 1 || p.crop_w < 1 || p.crop_i < 0 || p.crop_j < 0 || p.crop_i + p.crop_h > H ||
                   p.crop_j + p.crop_w > W;
            double frac = (double)p.crop_h * p.crop_w / ((double)W * H), ar = (double)p.crop_w / p.crop_h;
            /* a try accepted: the area fraction and ratio before rounding were in range, so
             * with rounding of each side by <= 0.5 they stay near it */
            double sw = p.crop_w + 0.5, sh = p.crop_h + 0.5, lw = p.crop_w - 0.5, lh = p.crop_h - 0.5;
            int in_range = sw * sh >= 0.08 * W * H && lw * lh <= 1.0 * W * H && sw / lh >= 0.75 && lw / sh <= 4.0 / 3.0;
            if (!in_range) {
                /* only torchvision's centred fallback may be outside */
                int fw = W, fh = H;
                double r = (double)W / H;
                if (r < 0.75) fh = (int)nearbyint(W / 0.75);
                else if (r > 4.0 / 3.0) fw = (int)nearbyint(H * 4.0 / 3.0);
                int is_fb = p.crop_w == fw && p.crop_h == fh && p.crop_i == (H - fh) / 2 && p.crop_j == (W - fw) / 2;
                CHECK(is_fb, "sample %dx%d: box %d,%d %dx%d (area %.3f, ratio %.3f) neither legal nor the fallback", W,
                      H, p.crop_i, p.crop_j, p.crop_w, p.crop_h, frac, ar);
                fallbacks++;
            }
            CHECK(p.ra_applied && p.num_ops == 2, "sample: RandAugment always applied with p = 1");
            for (int t = 0; t < p.num_ops; t++) {
                int op = p.ops[t].op;
                if (op < 0 || op >= MC_AUG_NUM_OPS) { bad++; continue; }
                op_count[op]++;
                double m = mc_augment_magnitude(op, 9, 31, 224, 224);
                if (mc_augment_op_signed(op)) {
                    signed_total++;
                    signed_neg += p.ops[t].magnitude == -m;
                    bad += fabs(p.ops[t].magnitude) != m;
                } else {
                    bad += p.ops[t].magnitude != m;
                }
            }
            /* sampled parameters are valid and survive the stored form */
            char buf[512];
            mc_augment_params q;
            int r = mc_augment_params_to_json(cfg, &p, buf, sizeof buf, &e);
            r = r > 0 ? mc_augment_params_from_json(cfg, buf, (size_t)r, &q, &e) : r;
            bad += r != 0 || memcmp(&p, &q, sizeof p) != 0;
        }
    }
    CHECK(bad == 0, "sampling: %d illegal or non-round-tripping parameter sets", bad);
    /* 4000x30 and 17x13-like extremes force the fallback; 1x1 always gives the full pixel */
    CHECK(fallbacks >= 3000, "sampling: expected the 4000x30 image to fall back every time (%ld fallbacks)", fallbacks);
    long draws = 2 * total;
    for (int op = 0; op < MC_AUG_NUM_OPS; op++) {
        double expect = (double)draws / MC_AUG_NUM_OPS, sd = sqrt(expect * (1 - 1.0 / MC_AUG_NUM_OPS));
        CHECK(fabs(op_count[op] - expect) < 5 * sd, "op %s drawn %ld times, expected %.0f +- %.0f", mc_augment_op_name(op),
              op_count[op], expect, sd);
    }
    double sd = sqrt(signed_total * 0.25);
    CHECK(fabs(signed_neg - signed_total * 0.5) < 5 * sd, "negative signs %ld of %ld", signed_neg, signed_total);
    printf("ok   sampling: %ld parameter sets legal, %ld fallbacks, ops uniform, signs balanced\n", total, fallbacks);

    /* determinism: the same (seed, stream) gives the same sequence; other streams differ */
    mc_rng a, b, c;
    mc_rng_init(&a, 42, 7);
    mc_rng_init(&b, 42, 7);
    mc_rng_init(&c, 42, 8);
    int same = 1, differ = 0;
    for (int k = 0; k < 100; k++) {
        mc_augment_params pa, pb, pc;
        mc_augment_sample(&a, cfg, 640, 480, &pa, &e);
        mc_augment_sample(&b, cfg, 640, 480, &pb, &e);
        mc_augment_sample(&c, cfg, 640, 480, &pc, &e);
        same &= !memcmp(&pa, &pb, sizeof pa);
        differ += memcmp(&pa, &pc, sizeof pa) != 0;
    }
    CHECK(same && differ > 90, "rng: same seed/stream reproduces (%d), other stream differs (%d of 100)", same, differ);
    /* pinned first outputs of the documented generator (xoshiro256** from splitmix64 of seed 0,
     * stream 0): splitmix64's first outputs from 0 are the published e220a8397b1dcdaf, ... */
    mc_rng z;
    mc_rng_init(&z, 0, 0);
    CHECK(z.s[0] == 0xe220a8397b1dcdafull && z.s[1] == 0x6e789e6aa1b965f4ull && z.s[2] == 0x06c45d188009454full &&
          z.s[3] == 0xf88bb8a8724c81ecull, "splitmix64 seeding differs from the published sequence");
    uint64_t want0 = (((z.s[1] * 5) << 7) | ((z.s[1] * 5) >> 57)) * 9;
    CHECK(mc_rng_next(&z) == want0, "xoshiro256** first output");
    /* pinned parameters: a change of the generator or of the sampling arithmetic shows here
     * (values recorded from this implementation; they are what reinforce stores for seed 7) */
    mc_rng_init(&a, 7, 3);
    mc_augment_params pin;
    mc_augment_sample(&a, cfg, 640, 480, &pin, &e);
    char pinned[256];
    mc_augment_params_to_json(cfg, &pin, pinned, sizeof pinned, &e);
    printf("     pinned sample (seed 7, stream 3, 640x480): %s\n", pinned);
    CHECK(!strcmp(pinned, PINNED_SAMPLE), "pinned sample changed: %s, was %s", pinned, PINNED_SAMPLE);
    /* a p < 1 RandAugment is sometimes skipped, and a hflip config flips about half the time */
    mc_augment_config c2 = *cfg;
    c2.ra_p = 0.5, c2.hflip = 1;
    mc_rng_init(&a, 5, 0);
    int skipped = 0, flipped = 0;
    for (int k = 0; k < 2000; k++) {
        mc_augment_params p;
        mc_augment_sample(&a, &c2, 300, 200, &p, &e);
        skipped += !p.ra_applied;
        flipped += p.flip;
    }
    CHECK(skipped > 850 && skipped < 1150 && flipped > 850 && flipped < 1150, "p=0.5: %d skipped, %d flipped of 2000",
          skipped, flipped);
}

/* Flip configs: the stored form gains a boolean and the image is mirrored after the crop. */
static void check_flip(const mc_augment_config *cfg) {
    mc_augment_config c2 = *cfg;
    c2.hflip = 1;
    mc_err e = {0};
    const char *rec = "[[10, 20, 100, 120], true, [[0, 0.0], [0, 0.0]]]";
    mc_augment_params p;
    int r = mc_augment_params_from_json(&c2, rec, strlen(rec), &p, &e);
    CHECK(r == 0 && p.flip == 1, "flip record: %s", e.msg);
    char buf[256];
    mc_augment_params_to_json(&c2, &p, buf, sizeof buf, &e);
    CHECK(!strcmp(buf, rec), "flip record written as %s", buf);
    const mc_image *im = get_image("chelsea.png");
    mc_image a, b;
    r = mc_augment_apply_u8(&c2, &p, im, 64, 48, &a, &e);
    p.flip = 0;
    r |= mc_augment_apply_u8(&c2, &p, im, 64, 48, &b, &e);
    CHECK(r == 0, "flip apply: %s", e.msg);
    int mirrored = 1;
    for (int y = 0; y < 48 && !r; y++)
        for (int x = 0; x < 64; x++)
            mirrored &= !memcmp(a.rgb + ((size_t)y * 64 + x) * 3, b.rgb + ((size_t)y * 64 + (63 - x)) * 3, 3);
    CHECK(mirrored, "flipped output is not the mirror image");
    mc_image_free(&a);
    mc_image_free(&b);
}

static void check_bad_records(const mc_augment_config *cfg) {
    static const struct { const char *json, *why; } bad[] = {
        {"[[1, 2, 3], [[0, 0.0], [0, 0.0]]]", "list of 4 integers"},
        {"[[1, 2, 3, 4, 5], [[0, 0.0], [0, 0.0]]]", "list of 4 integers"},
        {"[[1, 2, 3, 4]]", "entries"},
        {"[[1, 2, 3, 4], [[0, 0.0], [0, 0.0]], null]", "entries"},
        {"[[1, 2, 0, 4], [[0, 0.0], [0, 0.0]]]", "crop size"},
        {"[[1, 2, 3, -4], [[0, 0.0], [0, 0.0]]]", "crop size"},
        {"[[1.5, 2, 3, 4], [[0, 0.0], [0, 0.0]]]", "not an integer"},
        {"[[1, 2, 3, 1e300], [[0, 0.0], [0, 0.0]]]", "not an integer"},
        {"[[\"1\", 2, 3, 4], [[0, 0.0], [0, 0.0]]]", "not an integer"},
        {"[[1, 2, 3, 4], [[0, 0.0]]]", "has 1 ops"},
        {"[[1, 2, 3, 4], [[0, 0.0], [0, 0.0], [0, 0.0]]]", "has 3 ops"},
        {"[[1, 2, 3, 4], [[14, 0.0], [0, 0.0]]]", "out of range"},
        {"[[1, 2, 3, 4], [[-1, 0.0], [0, 0.0]]]", "out of range"},
        {"[[1, 2, 3, 4], [[0, 0.0], [2.5, 0.0]]]", "index is not an integer"},
        {"[[1, 2, 3, 4], [[0, 0.0], [\"ShearX\", 0.0]]]", "index is not an integer"},
        {"[[1, 2, 3, 4], [[6, -1.5], [0, 0.0]]]", "negative factor"},
        {"[[1, 2, 3, 4], [[10, 9.0], [0, 0.0]]]", "bits must be 0..8"},
        {"[[1, 2, 3, 4], [[10, -1.0], [0, 0.0]]]", "bits must be 0..8"},
        {"[[1, 2, 3, 4], [[3, 1e30], [0, 0.0]]]", "out of range"},
        {"[[1, 2, 3, 4], [[3, 0.0], [0, \"x\"]]]", "not a number"},
        {"[[1, 2, 3, 4], [[3, 0.0], [0]]]", "not a pair"},
        {"[[1, 2, 3, 4], 7]", "neither null nor a list"},
        {"{\"a\": 1}", "not a list"},
        {"[[1, 2, 3, 4], [[0, 0.0], [0, 0.0]]", "invalid JSON"},
        {"[[2000000, 2, 3, 4], [[0, 0.0], [0, 0.0]]]", "not an integer within"},
    };
    mc_err e = {0};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        mc_augment_params p;
        mc_err_clear(&e);
        int r = mc_augment_params_from_json(cfg, bad[k].json, strlen(bad[k].json), &p, &e);
        CHECK(r < 0 && strstr(e.msg, bad[k].why), "bad record %s: r=%d, message '%s' (want '%s')", bad[k].json, r, e.msg,
              bad[k].why);
    }
    static const struct { const char *json, *why; } bad_paug[] = {
        {"{\"param_aug\": []}", "has 0 records"},
        {"{\"paramaug\": []}", "no \"param_aug\""},
        {"[1]", "no \"param_aug\""},
        {"{\"param_aug\": 3}", "not a list"},
        {"{\"param_aug\": \"[[[1, 2, 3\"}", "param_aug string"},
        {"{\"param_aug\": [[[1, 2, 3, 4], [[0, 0.0], [0, 0.0]]], [[1, 2, 3, 4], [[0, 0.0], [99, 0.0]]]]}", "param_aug[1]"},
    };
    for (size_t k = 0; k < sizeof bad_paug / sizeof bad_paug[0]; k++) {
        mc_augment_params *ps = NULL;
        int n = -1;
        mc_err_clear(&e);
        int r = mc_augment_paug_parse(cfg, bad_paug[k].json, strlen(bad_paug[k].json), "x/0001.paug.json", &ps, &n, &e);
        CHECK(r < 0 && !ps && n == 0 && strstr(e.msg, bad_paug[k].why) && strstr(e.msg, "x/0001.paug.json"),
              "bad paug %s: r=%d '%s' (want '%s')", bad_paug[k].json, r, e.msg, bad_paug[k].why);
    }
    /* a crop box partly outside the image is what PIL's crop makes of it: zeros outside */
    const mc_image *im = get_image("synthetic_tiny_17x13_palette.png");
    mc_augment_params p = {.crop_i = -3, .crop_j = 10, .crop_h = 8, .crop_w = 10, .ra_applied = 1, .num_ops = 2};
    mc_augment_config c2 = *cfg;
    c2.interpolation = MC_RESAMPLE_BILINEAR;
    mc_image out;
    int r = mc_augment_apply_u8(&c2, &p, im, 10, 8, &out, &e); /* crop of the output size: a plain copy */
    CHECK(r == 0, "partly outside crop: %s", e.msg);
    int ok = 1;
    for (int y = 0; y < 8 && !r; y++)
        for (int x = 0; x < 10; x++) {
            int sy = y - 3, sx = x + 10;
            const uint8_t *o = out.rgb + ((size_t)y * 10 + x) * 3;
            if (sy < 0 || sx >= 17) ok &= !o[0] && !o[1] && !o[2];
            else ok &= !memcmp(o, im->rgb + ((size_t)sy * 17 + sx) * 3, 3);
        }
    CHECK(ok, "partly outside crop is not PIL's zero-padded crop");
    if (!r) mc_image_free(&out);
    CHECK(mc_augment_apply_u8(cfg, &p, im, 0, -1, &out, &e) == MC_E_ARG, "bad output size accepted");
    p.flip = 1;
    CHECK(mc_augment_apply_u8(cfg, &p, im, 0, 0, &out, &e) == MC_E_FORMAT && strstr(e.msg, "flip"),
          "flip without a flip transform accepted");
    p.flip = 0;
    p.crop_i = -5000, p.crop_h = 5000, p.crop_w = 5000;
    CHECK(mc_augment_apply_u8(cfg, &p, im, 0, 0, &out, &e) == MC_E_FORMAT && strstr(e.msg, "outside"),
          "huge zero-padded crop of a tiny image accepted");
    mc_augment_config c3 = *cfg;
    c3.magnitude = 31;
    CHECK(mc_augment_config_check(&c3, &e) == MC_E_ARG, "magnitude out of bins accepted");
    char small[8];
    mc_augment_params q = {.crop_h = 1, .crop_w = 1, .ra_applied = 1, .num_ops = 2};
    CHECK(mc_augment_params_to_json(cfg, &q, small, sizeof small, &e) == MC_E_ARG, "small buffer accepted");
}

/* Rotations the RandAugment bins never reach (0, 90, 180, 270 degrees) take PIL's transpose
 * fast paths; the general nearest affine with PIL's own matrix must give the same pixels, and
 * the transposes must be the counter-clockwise rotations by definition. */
static void check_rotate_paths(void) {
    mc_err e = {0};
    mc_image sq, a, b;
    mc_image_alloc(&sq, 37, 37, &e);
    for (int i = 0; i < 37 * 37 * 3; i++) sq.rgb[i] = (uint8_t)(i * 131 + 7);
    mc_image_alloc(&a, 37, 37, &e);
    mc_image_alloc(&b, 37, 37, &e);
    const double angles[] = {90, 180, 270, -90, 360, 0, -180};
    for (size_t k = 0; k < sizeof angles / sizeof angles[0]; k++) {
        double m[6];
        mc_pil_rotate(&sq, angles[k], &a, &e);
        mc_pil_rotate_matrix(angles[k], 37, 37, m);
        mc_pil_affine_nearest(&sq, m, &b, &e);
        CHECK(!memcmp(a.rgb, b.rgb, (size_t)37 * 37 * 3), "rotate %g: fast path differs from the affine path", angles[k]);
        double t = fmod(fmod(angles[k], 360) + 360, 360);
        int ok = 1;
        for (int r = 0; r < 37; r++)
            for (int c = 0; c < 37; c++) {
                int sr = r, sc = c; /* source of output (r, c) for a counter-clockwise rotation */
                if (t == 90) sr = c, sc = 36 - r;
                else if (t == 180) sr = 36 - r, sc = 36 - c;
                else if (t == 270) sr = 36 - c, sc = r;
                ok &= !memcmp(a.rgb + ((size_t)r * 37 + c) * 3, sq.rgb + ((size_t)sr * 37 + sc) * 3, 3);
            }
        CHECK(ok, "rotate %g is not the counter-clockwise rotation", angles[k]);
    }
    /* a stored shear so large that source coordinates pass INT_MAX (a fuzz find): every pixel
     * falls off the image, as in PIL, and nothing overflows (the sanitizer run checks) */
    const double shears[] = {3.57627869e8, -3.57627869e8, 1e9};
    for (size_t k = 0; k < sizeof shears / sizeof shears[0]; k++) {
        double m[6] = {1, shears[k], 0, 0, 1, 0};
        memset(b.rgb, 1, (size_t)37 * 37 * 3);
        CHECK(!mc_pil_affine_nearest(&sq, m, &b, &e), "shear %g: %s", shears[k], e.msg);
        int black = 1;
        for (int i = 0; i < 37 * 37 * 3; i++) black &= b.rgb[i] == 0;
        CHECK(black, "shear %g: a pixel came from on the image", shears[k]);
    }
    mc_image_free(&sq);
    mc_image_free(&a);
    mc_image_free(&b);
}

static int config_from(const char *json, mc_augment_config *cfg, mc_err *e) {
    mc_json *j = mc_json_parse(json, strlen(json), e);
    if (!j) mc_test_fatal("config test JSON: %s", e->msg);
    int r = mc_augment_config_from_json(j, cfg, e);
    mc_json_free(j);
    return r;
}

/* The reference's configuration schema (training/configs/datacompdr12m.json's values). */
static void check_config_json(void) {
    mc_err e = {0};
    mc_augment_config want, got;
    mc_augment_config_datacompdr(&want);
    const char *dr =
        "{\"num_samples\": 30, \"reinforce\": {\"image_augmentation\": {"
        "\"to_tensor\": {\"enable\": true}, \"to_rgb\": {\"enable\": true},"
        "\"random_resized_crop\": {\"size\": 224, \"interpolation\": \"bicubic\"},"
        "\"rand_augment\": {\"p\": 1.0, \"enable\": true},"
        "\"normalize\": {\"std\": [0.26862954, 0.26130258, 0.27577711], \"mean\": [0.48145466, 0.4578275, 0.40821073]}}}}";
    CHECK(config_from(dr, &got, &e) == 0 && !memcmp(&got, &want, sizeof got), "DataCompDR config: %s", e.msg);
    const char *other =
        "{\"random_resized_crop\": {\"size\": [256, 320], \"scale\": [0.5, 1.0], \"ratio\": [0.5, 2]},"
        "\"random_horizontal_flip\": {\"p\": 0.25}, \"rand_augment\": {\"enable\": false},"
        "\"normalize\": {\"enable\": 0, \"mean\": [0, 0, 0], \"std\": [1, 1, 1]}}";
    CHECK(config_from(other, &got, &e) == 0 && got.size_h == 256 && got.size_w == 320 && got.scale[0] == 0.5 &&
          got.ratio[1] == 2.0 && got.interpolation == MC_RESAMPLE_BILINEAR && got.hflip && got.hflip_p == 0.25 &&
          !got.rand_augment && !got.normalize, "other config: %s", e.msg);
    static const struct { const char *json, *why; int code; } bad[] = {
        {"{\"random_resized_crop\": {\"size\": 224}, \"random_erase\": {\"p\": 0.25}}", "random_erase", MC_E_UNSUPPORTED},
        {"{\"random_resized_crop\": {\"size\": 224}, \"mixup\": {\"alpha\": 1}}", "mixup", MC_E_UNSUPPORTED},
        {"{\"rand_augment\": {}}", "random_resized_crop is required", MC_E_UNSUPPORTED},
        {"{\"random_resized_crop\": {}}", "size is missing", MC_E_FORMAT},
        {"{\"random_resized_crop\": {\"size\": 22.5}}", "not an integer", MC_E_FORMAT},
        {"{\"random_resized_crop\": {\"size\": 224, \"interpolation\": \"lanczos\"}}", "interpolation", MC_E_UNSUPPORTED},
        {"{\"random_resized_crop\": {\"size\": 224, \"scale\": [1.0]}}", "pair", MC_E_FORMAT},
        {"{\"random_resized_crop\": {\"size\": 224, \"scale\": [1.0, 0.5]}}", "crop scale", MC_E_ARG},
        {"{\"random_resized_crop\": {\"size\": 224}, \"rand_augment\": {\"magnitude\": 40}}", "magnitude 40", MC_E_ARG},
        {"{\"random_resized_crop\": {\"size\": 224}, \"rand_augment\": {\"interpolation\": \"bilinear\"}}", "nearest", MC_E_UNSUPPORTED},
        {"{\"random_resized_crop\": {\"size\": 224}, \"normalize\": {\"mean\": [0, 0]}}", "mean and std", MC_E_FORMAT},
        {"{\"random_resized_crop\": {\"size\": 224}, \"normalize\": {\"mean\": [0, 0], \"std\": [1, 1, 1]}}", "3 numbers", MC_E_FORMAT},
        {"{\"random_resized_crop\": {\"size\": 224}, \"normalize\": {\"mean\": [0, 0, 0], \"std\": [1, 0, 1]}}", "std != 0", MC_E_ARG},
        {"{\"random_resized_crop\": 3}", "not an object", MC_E_FORMAT},
        {"[1, 2]", "no image_augmentation", MC_E_FORMAT},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        mc_err_clear(&e);
        int r = config_from(bad[k].json, &got, &e);
        CHECK(r == bad[k].code && strstr(e.msg, bad[k].why), "bad config %s: r=%d '%s' (want %d '%s')", bad[k].json, r, e.msg,
              bad[k].code, bad[k].why);
    }
}

static void check_pyrepr(void) {
    static const struct { double v; const char *s; } t[] = {
        {0.0, "0.0"}, {-0.0, "-0.0"}, {7.0, "7.0"}, {178.5, "178.5"}, {0.1, "0.1"},
        {-0.26999998092651367, "-0.26999998092651367"}, {30.45317268371582, "30.45317268371582"},
        {1.0 / 3.0, "0.3333333333333333"}, {1e-05, "1e-05"}, {0.0001, "0.0001"}, {1e16, "1e+16"},
        {1.5e16, "1.5e+16"}, {1e15, "1000000000000000.0"}, {123456789012345.6, "123456789012345.6"},
        {5e-324, "5e-324"}, {1.7976931348623157e308, "1.7976931348623157e+308"}, {-2.5e-7, "-2.5e-07"},
        {100.0, "100.0"}, {0.09000000357627869, "0.09000000357627869"},
    };
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
        char buf[MC_PYREPR_MAX];
        int n = mc_pyrepr_double(t[k].v, buf);
        CHECK(!strcmp(buf, t[k].s) && n == (int)strlen(t[k].s), "repr(%.17g) = %s, Python says %s", t[k].v, buf, t[k].s);
    }
    char buf[MC_PYREPR_MAX];
    mc_pyrepr_double(NAN, buf);
    CHECK(!strcmp(buf, "null"), "NaN written as %s", buf);
}

int main(void) {
    case_ctx *ctx = calloc(1, sizeof *ctx);
    mc_augment_config_datacompdr(&ctx->cfg);
    mc_test_load_golden("golden/dr_transforms/expected.safetensors", &ctx->golden, NULL);
    double t0 = mc_test_now();
    int n = for_lines(mc_test_path("golden/dr_transforms/cases.jsonl"), check_case, ctx);
    double t1 = mc_test_now();
    CHECK(n == 67 && ctx->cases == 67, "expected 67 golden cases, read %d, applied %d", n, ctx->cases);
    printf("%-4s dr_transforms: %d/%d cases bit-exact (float32 tensor), %d/%d uint8-exact; max |diff| %.3g (float), "
           "%d levels (uint8); %.1f ms per case\n", ctx->exact_f32 == n ? "ok" : "FAIL", ctx->exact_f32, n,
           ctx->exact_u8, n, ctx->max_f32_diff, ctx->max_u8_diff, 1e3 * (t1 - t0) / (n ? n : 1));
    int np = for_lines(mc_test_path("golden/dr_transforms/paug.jsonl"), check_paug, ctx);
    CHECK(np == 6, "paug.jsonl: %d lines", np);
    printf("ok   paug.json: %d samples parsed, re-written byte for byte, string form read\n", np);
    check_sensitivity(ctx);
    check_magnitudes();
    check_sampling(&ctx->cfg);
    check_flip(&ctx->cfg);
    check_bad_records(&ctx->cfg);
    check_pyrepr();
    check_config_json();
    check_rotate_paths();
    for (int k = 0; k < n_images; k++) mc_image_free(&images[k].im);
    mc_tensor_map_free(&ctx->golden);
    free(ctx);
    return mc_test_finish("test_augment");
}
