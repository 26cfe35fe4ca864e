/* Evaluation: the IDX reader on Debian's Fashion-MNIST files (checked against zlib's own
 * gzread and the dataset's published class balance) and on malformed files; zero-shot and
 * retrieval metrics of the API against an independent ranking (full sorts in double). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "mobileclip.h"
#include "common/test_util.h"
#include "io/idx.h"
#include "io/mapped_file.h"

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static double urand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) * 0x1p-53;
}

/* Whole decompressed file through zlib's gz* interface (independent of the reader). */
static uint8_t *gz_slurp(const char *path, size_t *len) {
    gzFile f = gzopen(path, "rb");
    if (!f) mc_test_fatal("%s missing: install the Debian package dataset-fashion-mnist", path);
    size_t cap = 1 << 20, n = 0;
    uint8_t *b = malloc(cap);
    int got;
    while ((got = gzread(f, b + n, (unsigned)(cap - n))) > 0) {
        n += (size_t)got;
        if (n == cap) b = realloc(b, cap *= 2);
    }
    gzclose(f);
    *len = n;
    return b;
}

static void test_fashion_mnist(void) {
    static const struct { const char *split; long n; } splits[] = {{"t10k", 10000}, {"train", 60000}};
    for (int s = 0; s < 2; s++) {
        char ip[256], lp[256];
        snprintf(ip, sizeof ip, FMNIST_DIR "/%s-images-idx3-ubyte.gz", splits[s].split);
        snprintf(lp, sizeof lp, FMNIST_DIR "/%s-labels-idx1-ubyte.gz", splits[s].split);
        size_t il, ll;
        uint8_t *iraw = gz_slurp(ip, &il), *lraw = gz_slurp(lp, &ll);
        mc_idx im, lab;
        mc_err e = {0};
        int r = mc_idx_load_labelled(ip, lp, 10, &im, &lab, &e);
        CHECK(r == 0, "load %s: %s", splits[s].split, e.msg);
        if (r) continue;
        CHECK(im.ndim == 3 && im.dims[0] == splits[s].n && im.dims[1] == 28 && im.dims[2] == 28, "%s image dims", splits[s].split);
        CHECK(lab.ndim == 1 && lab.dims[0] == splits[s].n, "%s label dims", splits[s].split);
        CHECK(il == 16 + im.size && !memcmp(iraw + 16, im.data, im.size), "%s pixels equal gzread's", splits[s].split);
        CHECK(ll == 8 + lab.size && !memcmp(lraw + 8, lab.data, lab.size), "%s labels equal gzread's", splits[s].split);
        long count[10] = {0};
        for (size_t i = 0; i < lab.size; i++) count[lab.data[i]]++;
        int balanced = 1;
        for (int c = 0; c < 10; c++) balanced &= count[c] == splits[s].n / 10;
        CHECK(balanced, "%s: %ld images per class", splits[s].split, splits[s].n / 10);
        if (s == 0) CHECK(lab.data[0] == 9 && lab.data[1] == 2, "first test labels are ankle boot, pullover");
        printf("ok   Fashion-MNIST %s: %lld images 28x28, balanced classes\n", splits[s].split, (long long)im.dims[0]);
        mc_idx_free(&im), mc_idx_free(&lab);
        free(iraw), free(lraw);
    }
}

static void write_file(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

static void write_gz(const char *path, const void *b, size_t n) {
    gzFile f = gzopen(path, "wb");
    gzwrite(f, b, (unsigned)n);
    gzclose(f);
}

/* expect_ok, or a failure whose message contains `needle` */
static void expect_idx(const char *what, const void *b, size_t n, const char *needle) {
    mc_idx x;
    mc_err e = {0};
    int r = mc_idx_parse(b, n, "t.idx", MC_IDX_MAX_BYTES, &x, &e);
    if (!needle) CHECK(r == 0, "%s: %s", what, e.msg);
    else CHECK(r < 0 && strstr(e.msg, needle) && strstr(e.msg, "t.idx"), "%s: got '%s' (want '%s')", what, r ? e.msg : "accepted", needle);
    if (!r) mc_idx_free(&x);
}

static void test_bad_idx(void) {
    uint8_t good[4 + 8 + 6] = {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6};
    uint8_t b[64];
    expect_idx("plain 2x3", good, sizeof good, NULL);
    memcpy(b, good, sizeof good), b[0] = 1;
    expect_idx("bad magic", b, sizeof good, "bad magic");
    memcpy(b, good, sizeof good), b[2] = 0x0d;
    expect_idx("float type", b, sizeof good, "element type 0x0d");
    memcpy(b, good, sizeof good), b[3] = 0;
    expect_idx("0 dims", b, sizeof good, "0 dimensions");
    memcpy(b, good, sizeof good), b[3] = 5;
    expect_idx("5 dims", b, sizeof good, "5 dimensions");
    memcpy(b, good, sizeof good), b[11] = 0;
    expect_idx("zero dim", b, sizeof good, "is zero");
    expect_idx("truncated data", good, sizeof good - 1, "truncated");
    expect_idx("truncated header", good, 6, "truncated IDX header");
    memcpy(b, good, sizeof good), b[sizeof good] = 7;
    expect_idx("extra data", b, sizeof good + 1, "extra");
    uint8_t huge[16] = {0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2};
    expect_idx("absurd dims", huge, sizeof huge, "more than");
    /* the same through gzip */
    const char *gp = "/tmp/mc_test_eval_idx.gz";
    size_t n;
    char *gz;
    mc_err e = {0};
    write_gz(gp, good, sizeof good);
    mc_read_file(gp, 1 << 20, &gz, &n, &e);
    expect_idx("gzip 2x3", gz, n, NULL);
    expect_idx("gzip truncated", gz, n - 9, "gzip");
    gz[n - 6] ^= 1; /* CRC-32 of the trailer */
    expect_idx("gzip bad crc", gz, n, "gzip");
    free(gz);
    memcpy(b, good, sizeof good), b[sizeof good] = 7;
    write_gz(gp, b, sizeof good + 1);
    mc_read_file(gp, 1 << 20, &gz, &n, &e);
    expect_idx("gzip extra data", gz, n, "extra");
    free(gz);
    write_gz(gp, good, sizeof good - 2);
    mc_read_file(gp, 1 << 20, &gz, &n, &e);
    expect_idx("gzip short data", gz, n, "truncated");
    free(gz);
    /* labelled pair consistency */
    uint8_t lab[8 + 3] = {0, 0, 8, 1, 0, 0, 0, 3, 0, 1, 2};
    uint8_t img[4 + 12 + 12] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2};
    const char *ip = "/tmp/mc_test_eval_img.idx", *lp = "/tmp/mc_test_eval_lab.idx";
    write_file(ip, img, sizeof img);
    write_file(lp, lab, sizeof lab);
    mc_idx a, c;
    CHECK(mc_idx_load_labelled(ip, lp, 3, &a, &c, &e) == 0, "labelled pair: %s", e.msg);
    if (!e.code) mc_idx_free(&a), mc_idx_free(&c);
    CHECK(mc_idx_load_labelled(ip, lp, 2, &a, &c, &e) < 0 && strstr(e.msg, "not below the 2 classes"), "label range: %s", e.msg);
    lab[7] = 2;
    write_file(lp, lab, sizeof lab - 1);
    CHECK(mc_idx_load_labelled(ip, lp, 3, &a, &c, &e) < 0 && strstr(e.msg, "3 images but"), "count mismatch: %s", e.msg);
    CHECK(mc_idx_load("/nonexistent.idx", &a, &e) < 0 && strstr(e.msg, "/nonexistent.idx"), "missing file: %s", e.msg);
    unlink(gp), unlink(ip), unlink(lp);
}

static double dot(const float *a, const float *b, int dim) {
    double s = 0;
    for (int d = 0; d < dim; d++) s += (double)a[d] * b[d];
    return s;
}

/* rank of `own` among s[0..n) by full sort (desc, ties by index) */
static int ref_rank(const double *s, int n, int own) {
    int *o = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) o[i] = i;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && (s[o[j]] > s[o[j - 1]] || (s[o[j]] == s[o[j - 1]] && o[j] < o[j - 1])); j--) {
            int t = o[j]; o[j] = o[j - 1]; o[j - 1] = t;
        }
    int r = 0;
    while (o[r] != own) r++;
    free(o);
    return r;
}

static void test_zeroshot_metrics(void) {
    const int n = 300, C = 12, dim = 16;
    float *x = malloc(sizeof(float) * n * dim), *w = malloc(sizeof(float) * C * dim);
    int *y = malloc(sizeof(int) * n);
    for (int i = 0; i < C * dim; i++) w[i] = (float)(urand() - 0.5);
    for (int i = 0; i < n; i++) {
        y[i] = (int)(urand() * C);
        for (int d = 0; d < dim; d++) x[i * dim + d] = 0.6f * w[y[i] * dim + d] + (float)(urand() - 0.5);
    }
    /* an exact tie: image 0 equal to class 3 and class 7 weights -> the lower class wins */
    memcpy(w + 7 * dim, w + 3 * dim, sizeof(float) * dim);
    memcpy(x, w + 3 * dim, sizeof(float) * dim);
    y[0] = 7;
    double per[12];
    int64_t conf[144];
    mobileclip_zeroshot_result res = {.per_class = per, .confusion = conf};
    CHECK(mobileclip_eval_zeroshot(x, n, y, w, C, dim, &res) == 0, "eval_zeroshot");
    int top1 = 0, top5 = 0, pn[12] = {0}, ph[12] = {0};
    int64_t rc[144] = {0};
    double s[12];
    for (int i = 0; i < n; i++) {
        for (int c = 0; c < C; c++) s[c] = dot(x + i * dim, w + c * dim, dim);
        int r = ref_rank(s, C, y[i]), pred = 0;
        for (int c = 1; c < C; c++)
            if (s[c] > s[pred]) pred = c;
        top1 += r == 0, top5 += r < 5, pn[y[i]]++, ph[y[i]] += r == 0, rc[y[i] * C + pred]++;
    }
    CHECK(res.n_images == n && res.top1 == (double)top1 / n && res.top5 == (double)top5 / n, "top-1 %.4f/%.4f top-5 %.4f/%.4f",
          res.top1, (double)top1 / n, res.top5, (double)top5 / n);
    int ok = !memcmp(rc, conf, sizeof rc);
    for (int c = 0; c < C; c++) ok &= pn[c] ? per[c] == (double)ph[c] / pn[c] : isnan(per[c]);
    CHECK(ok, "per-class accuracy and confusion matrix");
    CHECK(conf[7 * C + 3] >= 1, "tie goes to the lower class");
    printf("ok   zero-shot metrics: top-1 %.4f top-5 %.4f over %d images (reference agrees)\n", res.top1, res.top5, n);
    int bad[1] = {C};
    CHECK(mobileclip_eval_zeroshot(x, 1, bad, w, C, dim, &res) == MOBILECLIP_E_ARG, "label out of range refused");
    free(x), free(w), free(y);
}

static void test_retrieval_metrics(void) {
    const int ni = 120, nt = 400, dim = 24;
    float *img = malloc(sizeof(float) * ni * dim), *txt = malloc(sizeof(float) * nt * dim);
    int *ti = malloc(sizeof(int) * nt);
    for (int i = 0; i < ni * dim; i++) img[i] = (float)(urand() - 0.5);
    for (int t = 0; t < nt; t++) {
        ti[t] = t < ni - 5 ? t : (int)(urand() * (ni - 5)); /* the last 5 images have no caption */
        for (int d = 0; d < dim; d++) txt[t * dim + d] = 0.35f * img[ti[t] * dim + d] + (float)(urand() - 0.5);
    }
    mobileclip_retrieval_result res;
    CHECK(mobileclip_eval_retrieval(img, ni, txt, nt, ti, dim, &res) == 0, "eval_retrieval");
    static const int K[3] = {1, 5, 10};
    int i2t[3] = {0}, t2i[3] = {0}, with = 0;
    double *s = malloc(sizeof(double) * nt);
    for (int i = 0; i < ni; i++) {
        int best = nt, has = 0;
        for (int t = 0; t < nt; t++) s[t] = dot(img + i * dim, txt + t * dim, dim);
        for (int t = 0; t < nt; t++)
            if (ti[t] == i) {
                has = 1;
                int r = ref_rank(s, nt, t);
                if (r < best) best = r;
            }
        with += has;
        for (int k = 0; k < 3 && has; k++) i2t[k] += best < K[k];
    }
    for (int t = 0; t < nt; t++) {
        for (int i = 0; i < ni; i++) s[i] = dot(txt + t * dim, img + i * dim, dim);
        int r = ref_rank(s, ni, ti[t]);
        for (int k = 0; k < 3; k++) t2i[k] += r < K[k];
    }
    double got[6] = {res.i2t_r1, res.i2t_r5, res.i2t_r10, res.t2i_r1, res.t2i_r5, res.t2i_r10};
    double want[6] = {(double)i2t[0] / with, (double)i2t[1] / with, (double)i2t[2] / with,
                      (double)t2i[0] / nt,   (double)t2i[1] / nt,   (double)t2i[2] / nt};
    int ok = res.n_images == with && res.n_texts == nt;
    for (int k = 0; k < 6; k++) ok &= got[k] == want[k];
    CHECK(ok, "retrieval recalls %.4f %.4f %.4f / %.4f %.4f %.4f vs reference %.4f %.4f %.4f / %.4f %.4f %.4f", got[0], got[1],
          got[2], got[3], got[4], got[5], want[0], want[1], want[2], want[3], want[4], want[5]);
    CHECK(want[0] > 0.05 && want[0] < 0.95 && want[3] > 0.05 && want[3] < 0.95, "test data is neither trivial nor hopeless");
    printf("ok   retrieval: i2t R@1/5/10 %.3f %.3f %.3f, t2i %.3f %.3f %.3f (%d images with captions; reference agrees)\n",
           got[0], got[1], got[2], got[3], got[4], got[5], with);
    ti[0] = ni;
    CHECK(mobileclip_eval_retrieval(img, ni, txt, nt, ti, dim, &res) == MOBILECLIP_E_ARG, "caption of a missing image refused");
    free(img), free(txt), free(ti), free(s);
}

int main(void) {
    test_fashion_mnist();
    test_bad_idx();
    test_zeroshot_metrics();
    test_retrieval_metrics();
    return mc_test_finish("test_eval");
}
