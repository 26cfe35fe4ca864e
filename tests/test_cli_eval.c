/* `mobileclip eval` end to end on the s0 test model: zero-shot on a class-folder dataset and on
 * Fashion-MNIST, retrieval on a folder + captions.tsv, each against figures computed here from
 * the API's embeddings with a plain argmax / full ranking; the confusion-matrix PNG and the
 * line plot read back; bad inputs refused with their file named. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "mobileclip.h"
#include "common/test_util.h"
#include "image/image.h"
#include "image/preprocess.h"
#include "io/mapped_file.h"
#include "io/wds.h"
#include "tools/plot.h"

static char tmp[256], ckpt[512], cmd[8192];
static const char *cli;
static char vocab[512];

static mc_json *run_json(const char *args, int want_status, char **err_out) {
    return mc_test_cli_json(tmp, cli, args, want_status, err_out);
}

static double num(const mc_json *j, const char *key) {
    const mc_json *v = j ? mc_json_get(j, key) : NULL;
    return v && v->type == MC_JSON_NUMBER ? v->number : NAN;
}

static void copy_file(const char *src, const char *dst) {
    char *d;
    size_t n;
    mc_err e = {0};
    if (mc_read_file(src, (size_t)1 << 28, &d, &n, &e)) mc_test_fatal("%s", e.msg);
    FILE *f = fopen(dst, "wb");
    if (!f || fwrite(d, 1, n, f) != n || fclose(f)) mc_test_fatal("cannot write %s", dst);
    free(d);
}

/* Reference zero-shot figures from embeddings: argmax in double, ties to the lower class. */
static void check_zeroshot(const char *what, const mc_json *j, const float *img, const int *y, int n,
                           const mobileclip_classifier *clf, int C) {
    const float *w = mobileclip_classifier_weights(clf);
    int top1 = 0, top5 = 0, per_n[16] = {0}, per_hit[16] = {0}, conf[16][16] = {{0}};
    for (int i = 0; i < n; i++) {
        double s[16];
        int pred = 0, rank = 0;
        for (int c = 0; c < C; c++) {
            s[c] = 0;
            for (int d = 0; d < 512; d++) s[c] += (double)img[i * 512 + d] * w[c * 512 + d];
            if (s[c] > s[pred]) pred = c;
        }
        for (int c = 0; c < C; c++) rank += s[c] > s[y[i]] || (s[c] == s[y[i]] && c < y[i]);
        top1 += pred == y[i], top5 += rank < 5, per_n[y[i]]++, per_hit[y[i]] += pred == y[i], conf[y[i]][pred]++;
    }
    const mc_json *pc = j ? mc_json_get(j, "per_class") : NULL, *cm = j ? mc_json_get(j, "confusion") : NULL;
    int ok = j && num(j, "images") == n && fabs(num(j, "top1") - (double)top1 / n) < 1e-6 &&
             fabs(num(j, "top5") - (double)top5 / n) < 1e-6 && pc && pc->count == C && cm && cm->count == C;
    for (int c = 0; ok && c < C; c++) {
        double want = per_n[c] ? (double)per_hit[c] / per_n[c] : NAN, got = num(&pc->items[c], "top1");
        ok &= (isnan(want) ? isnan(got) : fabs(got - want) < 1e-6) && num(&pc->items[c], "images") == per_n[c];
        for (int k = 0; ok && k < C; k++) ok &= cm->items[c].count == C && cm->items[c].items[k].number == conf[c][k];
    }
    CHECK(ok, "%s: CLI figures differ from the reference (top-1 %g vs %g)", what, num(j, "top1"), (double)top1 / n);
    printf("%-4s eval zeroshot %-16s %d images: top-1 %.4f top-5 %.4f = reference\n", ok ? "ok" : "FAIL", what, n,
           (double)top1 / n, (double)top5 / n);
}

static void test_folder(mobileclip_ctx *ctx) {
    static const char *cls[3] = {"cat", "space", "things"};
    static const char *files[3][3] = {{"chelsea.png", "coffee.png", NULL},
                                      {"rocket.jpg", "hubble_deep_field.jpg", NULL},
                                      {"coins.png", "camera.png", "astronaut.png"}};
    char p[2048], rel[128];
    const char *paths[8];
    char store[8][1024];
    int y[8], n = 0;
    for (int c = 0; c < 3; c++) {
        snprintf(cmd, sizeof cmd, "mkdir -p '%s/ds/%s'", tmp, cls[c]);
        if (system(cmd)) mc_test_fatal("mkdir");
        for (int k = 0; k < 3 && files[c][k]; k++) {
            snprintf(rel, sizeof rel, "images/%s", files[c][k]);
            snprintf(store[n], sizeof store[n], "%s/ds/%s/%s", tmp, cls[c], files[c][k]);
            copy_file(mc_test_path(rel), store[n]);
            paths[n] = store[n];
            y[n++] = c;
        }
    }
    snprintf(p, sizeof p, "%s/ds/readme.txt", tmp); /* a file beside the class folders is ignored */
    FILE *f = fopen(p, "w");
    fputs("x\n", f);
    fclose(f);
    float img[8 * 512];
    if (mobileclip_encode_image_files(ctx, paths, n, img, 1)) mc_test_fatal("%s", mobileclip_last_error(ctx));
    const char *tmpl = "a photo of a {}.";
    mobileclip_classifier *clf = mobileclip_classifier_build(ctx, cls, 3, &tmpl, 1);
    if (!clf) mc_test_fatal("%s", mobileclip_last_error(ctx));
    snprintf(p, sizeof p, "eval zeroshot --json --checkpoint s0.pt --vocab '%s' --dataset ds --templates simple --confusion cm.png",
             vocab);
    mc_json *j = run_json(p, 0, NULL);
    check_zeroshot("class folders", j, img, y, n, clf, 3);
    const mc_json *pc = j ? mc_json_get(j, "per_class") : NULL;
    const mc_json *name = pc && pc->count == 3 ? mc_json_get(&pc->items[2], "name") : NULL;
    CHECK(name && !strcmp(name->str, "things"), "class names from the folder names");
    mc_json_free(j);
    mobileclip_classifier_free(clf);

    /* the PNG: the size of a 3-class chart and shaded cells */
    mc_image im = {0};
    mc_err e = {0};
    snprintf(p, sizeof p, "%s/cm.png", tmp);
    CHECK(mc_image_load(p, &im, &e) == 0, "confusion PNG: %s", e.msg);
    long shaded = 0; /* blue-tinted pixels: the cells of the non-zero counts */
    for (long k = 0; k < (long)im.w * im.h; k++) shaded += im.rgb[3 * k + 2] > im.rgb[3 * k] + 20;
    CHECK(im.w > 300 && im.h > 300 && shaded > 40 * 40 * 3, "confusion PNG %dx%d with %ld shaded pixels", im.w, im.h, shaded);
    mc_image_free(&im);

    /* --classes gives display names, which change the prompts */
    static const char *names[3] = {"tabby cat", "outer space", "household object"};
    snprintf(p, sizeof p, "%s/classes.txt", tmp);
    f = fopen(p, "w");
    fprintf(f, "%s\n%s\n%s\n", names[0], names[1], names[2]);
    fclose(f);
    if (!(clf = mobileclip_classifier_build(ctx, names, 3, &tmpl, 1))) mc_test_fatal("%s", mobileclip_last_error(ctx));
    snprintf(p, sizeof p, "eval zeroshot --json --checkpoint s0.pt --vocab '%s' --dataset ds --templates simple --classes classes.txt",
             vocab);
    j = run_json(p, 0, NULL);
    check_zeroshot("--classes", j, img, y, n, clf, 3);
    mc_json_free(j);
    mobileclip_classifier_free(clf);
}

static void test_fashion_mnist(mobileclip_ctx *ctx) {
    static const char *names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    const int n = 24, total = 10000, R = mobileclip_image_size(ctx);
    /* the IDX files read with gzread, independently of src/io/idx.c */
    gzFile gi = gzopen("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", "rb");
    gzFile gl = gzopen("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", "rb");
    if (!gi || !gl) mc_test_fatal("Fashion-MNIST missing: install the Debian package dataset-fashion-mnist");
    uint8_t *pix = malloc((size_t)16 + total * 784), lab[8 + 10000];
    if (gzread(gi, pix, 16 + total * 784) != 16 + total * 784 || gzread(gl, lab, sizeof lab) != (int)sizeof lab)
        mc_test_fatal("short Fashion-MNIST files");
    gzclose(gi), gzclose(gl);
    float *chw = malloc(sizeof(float) * 3 * R * R * n), img[24 * 512];
    int y[24];
    mc_err e = {0};
    for (int i = 0; i < n; i++) {
        int k = (int)((long long)i * total / n); /* the spread --limit documents */
        mc_image im = {0};
        mc_image_alloc(&im, 28, 28, &e);
        for (int p = 0; p < 784; p++) im.rgb[3 * p] = im.rgb[3 * p + 1] = im.rgb[3 * p + 2] = pix[16 + (size_t)k * 784 + p];
        if (mc_image_preprocess(&im, R, chw + (size_t)i * 3 * R * R, &e)) mc_test_fatal("%s", e.msg);
        mc_image_free(&im);
        y[i] = lab[8 + k];
    }
    if (mobileclip_encode_images(ctx, chw, n, img, 1)) mc_test_fatal("%s", mobileclip_last_error(ctx));
    const char *tmpl = "a photo of a {}.";
    mobileclip_classifier *clf = mobileclip_classifier_build(ctx, names, 10, &tmpl, 1);
    char p[2048];
    snprintf(p, sizeof p,
             "eval zeroshot --json --checkpoint s0.pt --vocab '%s' --fashion-mnist /usr/share/datasets/fashion-mnist "
             "--limit %d --templates simple --batch 5",
             vocab, n);
    mc_json *j = run_json(p, 0, NULL);
    check_zeroshot("Fashion-MNIST", j, img, y, n, clf, 10);
    mc_json_free(j);
    mobileclip_classifier_free(clf);
    free(pix), free(chw);
}

static void test_retrieval(mobileclip_ctx *ctx) {
    static const char *imgs[4] = {"chelsea.png", "rocket.jpg", "coins.png", "astronaut.png"};
    static const char *caps[7] = {"a cat", "a tabby cat on a red blanket", "a rocket launch", "old coins", "money",
                                  "a pile of coins on a table", "an astronaut"};
    static const int owner[7] = {0, 0, 1, 2, 2, 2, 3};
    char p[2048], rel[128];
    const char *paths[4];
    char store[4][1024];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/rt/img'", tmp);
    if (system(cmd)) mc_test_fatal("mkdir");
    for (int i = 0; i < 4; i++) {
        snprintf(rel, sizeof rel, "images/%s", imgs[i]);
        snprintf(store[i], sizeof store[i], "%s/rt/img/%s", tmp, imgs[i]);
        copy_file(mc_test_path(rel), store[i]);
        paths[i] = store[i];
    }
    snprintf(p, sizeof p, "%s/rt/captions.tsv", tmp);
    FILE *f = fopen(p, "w");
    fprintf(f, "# image\tcaption\n");
    for (int t = 0; t < 7; t++) fprintf(f, "img/%s\t%s\r\n", imgs[owner[t]], caps[t]);
    fclose(f);
    float ie[4 * 512], te[7 * 512];
    if (mobileclip_encode_image_files(ctx, paths, 4, ie, 1) || mobileclip_encode_texts(ctx, caps, 7, te, 1))
        mc_test_fatal("%s", mobileclip_last_error(ctx));
    double s[7][4];
    for (int t = 0; t < 7; t++)
        for (int i = 0; i < 4; i++) {
            s[t][i] = 0;
            for (int d = 0; d < 512; d++) s[t][i] += (double)te[t * 512 + d] * ie[i * 512 + d];
        }
    static const int K[3] = {1, 5, 10};
    double want[6] = {0};
    for (int i = 0; i < 4; i++) { /* best rank of any own caption among the 7 texts */
        int best = 99;
        for (int t = 0; t < 7; t++) {
            if (owner[t] != i) continue;
            int r = 0;
            for (int u = 0; u < 7; u++) r += s[u][i] > s[t][i] || (s[u][i] == s[t][i] && u < t);
            if (r < best) best = r;
        }
        for (int k = 0; k < 3; k++) want[k] += (best < K[k]) / 4.0;
    }
    for (int t = 0; t < 7; t++) {
        int r = 0, own = owner[t];
        for (int i = 0; i < 4; i++) r += s[t][i] > s[t][own] || (s[t][i] == s[t][own] && i < own);
        for (int k = 0; k < 3; k++) want[3 + k] += (r < K[k]) / 7.0;
    }
    /* the same samples as WebDataset shards (images 0-2 in one, 3 in another): captions in
     * "txt", one per line; the class number in "cls" for zero-shot */
    for (int sh = 0; sh < 2; sh++) {
        mc_tar_writer w;
        mc_err e = {0};
        snprintf(p, sizeof p, "%s/rt/shard-%d.tar", tmp, sh);
        if (mc_tar_writer_open(&w, p, &e)) mc_test_fatal("%s", e.msg);
        for (int i = sh ? 3 : 0; i < (sh ? 4 : 3); i++) {
            char key[16], txt[256] = "", cls[4];
            snprintf(key, sizeof key, "s%04d", i);
            for (int t = 0; t < 7; t++)
                if (owner[t] == i) strcat(strcat(txt, caps[t]), "\n");
            snprintf(cls, sizeof cls, "%d", i == 1 ? 1 : 0);
            char *img;
            size_t n;
            if (mc_read_file(paths[i], (size_t)1 << 26, &img, &n, &e)) mc_test_fatal("%s", e.msg);
            const char *ext = strstr(imgs[i], ".jpg") ? "jpg" : "png";
            mc_wds_member m[3] = {{ext, (const unsigned char *)img, n}, {"txt", (const unsigned char *)txt, strlen(txt)},
                                  {"cls", (const unsigned char *)cls, strlen(cls)}};
            if (mc_wds_write_sample(&w, key, m, 3, &e)) mc_test_fatal("%s", e.msg);
            free(img);
        }
        if (mc_tar_writer_finish(&w, &e)) mc_test_fatal("%s", e.msg);
    }
    static const char *keys[6] = {"i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10"};
    for (int src = 0; src < 2; src++) {
        snprintf(p, sizeof p, "eval retrieval --json --checkpoint s0.pt --vocab '%s' %s", vocab,
                 src ? "--shards 'rt/shard-{0..1}.tar'" : "--dataset rt");
        mc_json *j = run_json(p, 0, NULL);
        int ok = j && num(j, "images") == 4 && num(j, "texts") == 7;
        for (int k = 0; k < 6; k++) ok &= fabs(num(j, keys[k]) - want[k]) < 1e-6;
        CHECK(ok, "retrieval (%s) figures differ: i2t R@1 %g vs %g, t2i R@1 %g vs %g", src ? "shards" : "captions.tsv",
              num(j, "i2t_r1"), want[0], num(j, "t2i_r1"), want[3]);
        printf("%-4s eval retrieval (%s) 4 images, 7 captions: i2t R@1/5/10 %.3f %.3f %.3f t2i %.3f %.3f %.3f = reference\n",
               ok ? "ok" : "FAIL", src ? "shards" : "captions.tsv", want[0], want[1], want[2], want[3], want[4], want[5]);
        mc_json_free(j);
    }
    /* zero-shot over the shards' "cls": classes 0 = "cat" (all but the rocket), 1 = "rocket" */
    static const char *cls_names[2] = {"cat", "rocket"};
    int y[4] = {0, 1, 0, 0};
    snprintf(p, sizeof p, "%s/rt/classes.txt", tmp);
    FILE *cf = fopen(p, "w");
    fprintf(cf, "cat\nrocket\n");
    fclose(cf);
    const char *tmpl = "a photo of a {}.";
    mobileclip_classifier *clf = mobileclip_classifier_build(ctx, cls_names, 2, &tmpl, 1);
    if (!clf) mc_test_fatal("%s", mobileclip_last_error(ctx));
    snprintf(p, sizeof p,
             "eval zeroshot --json --checkpoint s0.pt --vocab '%s' --shards 'rt/shard-{0..1}.tar' --classes rt/classes.txt "
             "--templates simple",
             vocab);
    mc_json *j = run_json(p, 0, NULL);
    check_zeroshot("shards", j, ie, y, 4, clf, 2);
    mc_json_free(j);
    mobileclip_classifier_free(clf);
}

static void expect_error(const char *args, int status, const char *needle) {
    char *msg;
    char p[2048];
    snprintf(p, sizeof p, "%s --checkpoint s0.pt --vocab '%s'", args, vocab);
    mc_json_free(run_json(p, status, &msg));
    CHECK(strstr(msg, needle) != NULL, "%s: message '%s' lacks '%s'", args, msg, needle);
    printf("ok   refused (%d): %s", status, msg);
    free(msg);
}

static void test_bad_input(void) {
    char p[2048];
    snprintf(p, sizeof p, "%s/bad.tsv", tmp);
    FILE *f = fopen(p, "w");
    fprintf(f, "img/a.png\tfine\nno tab here\n");
    fclose(f);
    snprintf(p, sizeof p, "%s/two.txt", tmp);
    f = fopen(p, "w");
    fprintf(f, "one\ntwo\n");
    fclose(f);
    snprintf(p, sizeof p, "%s/labels.idx", tmp);
    f = fopen(p, "wb");
    fwrite("\0\0\x08\x01\0\0\0\x02\x01\x02", 1, 10, f);
    fclose(f);
    expect_error("eval zeroshot --dataset nowhere", 1, "nowhere");
    expect_error("eval zeroshot --dataset ds --classes two.txt", 1, "2 class names for 3 class folders");
    expect_error("eval zeroshot --idx-images labels.idx --idx-labels labels.idx --classes two.txt", 1,
                 "labels.idx: expected images [N, H, W]");
    expect_error("eval zeroshot --fashion-mnist /nonexistent", 1, "/nonexistent/t10k-images-idx3-ubyte.gz");
    expect_error("eval retrieval --captions bad.tsv", 1, "bad.tsv:2: expected IMAGE<TAB>CAPTION");
    expect_error("eval retrieval --dataset ds", 1, "ds/captions.tsv");
    expect_error("eval zeroshot --dataset ds --bogus", 2, "unknown option '--bogus'");
    expect_error("eval zeroshot", 2, "give one of --dataset");
    expect_error("eval frobnicate", 2, "zeroshot or retrieval");
}

static void test_line_plot(void) {
    double x[50], a[50], b[50];
    for (int i = 0; i < 50; i++) x[i] = 1000.0 * (i + 1), a[i] = 0.1 + 0.8 * (1 - exp(-i / 10.0)), b[i] = 0.1 + 0.5 * i / 49.0;
    b[10] = NAN; /* a gap */
    mc_plot_series s[2] = {{"reinforced", x, a, 50}, {"plain", x, b, 50}};
    char p[600];
    snprintf(p, sizeof p, "%s/lines.png", tmp);
    mc_err e = {0};
    CHECK(mc_plot_lines_png(p, s, 2, "zero-shot top-1", "seen samples", "accuracy", 1, &e) == 0, "line plot: %s", e.msg);
    mc_image im = {0};
    CHECK(mc_image_load(p, &im, &e) == 0, "line plot PNG: %s", e.msg);
    long blue = 0, orange = 0;
    for (long k = 0; k < (long)im.w * im.h; k++) {
        const uint8_t *c = im.rgb + 3 * k;
        blue += abs(c[0] - 31) < 12 && abs(c[1] - 120) < 12 && abs(c[2] - 181) < 12;
        orange += c[0] > 240 && abs(c[1] - 128) < 15 && c[2] < 30;
    }
    CHECK(im.w == 800 && im.h == 500 && blue > 300 && orange > 300, "line plot %dx%d: %ld / %ld series pixels", im.w, im.h,
          blue, orange);
    printf("ok   line plot %dx%d, %ld and %ld pixels of the two series\n", im.w, im.h, blue, orange);
    mc_image_free(&im);
    double nan1[1] = {NAN};
    mc_plot_series none = {"x", nan1, nan1, 1};
    CHECK(mc_plot_lines_png(p, &none, 1, NULL, NULL, NULL, 0, &e) == MC_E_ARG && strstr(e.msg, "no finite point"), "empty plot: %s", e.msg);
    CHECK(mc_plot_lines_png("/nonexistent-dir/x.png", s, 2, NULL, NULL, NULL, 0, &e) == MC_E_IO &&
              strstr(e.msg, "/nonexistent-dir/x.png"), "unwritable plot: %s", e.msg);
    mc_plot_release();
}

int main(void) {
    cli = getenv("MC_CLI");
    const char *bdir = getenv("MC_BUILD_DIR");
    if (!cli || !bdir) mc_test_fatal("MC_CLI / MC_BUILD_DIR not set (run through ctest)");
    snprintf(vocab, sizeof vocab, "%s", mc_test_path("vocab/bpe_simple_vocab_16e6.txt.gz"));
    snprintf(tmp, sizeof tmp, "/tmp/mc_test_cli_eval_%ld", (long)getpid());
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", tmp, tmp);
    if (system(cmd)) mc_test_fatal("cannot create %s", tmp);
    snprintf(ckpt, sizeof ckpt, "%s/s0.pt", tmp);
    snprintf(cmd, sizeof cmd, "'%s/make_test_checkpoint' s0 '%s'", bdir, ckpt);
    if (system(cmd)) mc_test_fatal("make_test_checkpoint failed");
    mobileclip_params prm = mobileclip_default_params();
    prm.vocab_path = vocab;
    char err[512];
    mobileclip_ctx *ctx = mobileclip_init_from_file(ckpt, &prm, err, sizeof err);
    if (!ctx) mc_test_fatal("%s", err);
    test_folder(ctx);
    test_fashion_mnist(ctx);
    test_retrieval(ctx);
    mobileclip_free(ctx);
    test_bad_input();
    test_line_plot();
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd)) fprintf(stderr, "warning: could not remove %s\n", tmp);
    return mc_test_finish("test_cli_eval");
}
