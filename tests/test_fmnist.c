/* The Fashion-MNIST experiment's data (src/experiment/fmnist*.c):
 *
 * 1. Class-synonym matching on hand-written captions (longest synonym wins, whole words,
 *    plurals, punctuation, case), including synthetic-caption-like sentences.
 * 2. The caption process over the first 30000 training images: the matcher recovers exactly
 *    the classes the generator chose to name, for every caption; the fractions naming the
 *    right item / a wrong one / none / both lie within 4.5 binomial standard deviations of the
 *    documented rates; phrasing varies (distinct captions, synonyms per class); the same
 *    (seed, index) gives the same caption, another seed or the test split another one.
 * 3. The shard converter on a subset, twice: byte-identical shard files, nothing left behind
 *    but the shards; read back with the WebDataset reader: keys, class numbers, PNG pixels
 *    (decoded as the reference's convert('RGB') would: grey replicated) and captions are the
 *    IDX file's and the caption process's; the held-out slice is the last training images;
 *    another seed changes only the captions. PNG encoder round trip (grey and RGB).
 * 4. Caption quality over shards: lines of txt, syn.json in DataCompDR's form, lists and
 *    strings, counted by hand-worked kinds; malformed members name the shard and key.
 * 5. Bad input: a missing data folder names the file.
 * Needs Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/files.h"
#include "common/test_util.h"
#include "experiment/fmnist.h"
#include "image/encode_png.h"
#include "image/image.h"
#include "io/idx.h"
#include "io/wds.h"

#define FMNIST "/usr/share/datasets/fashion-mnist"

static uint32_t M(const char *s) { return mc_fmnist_caption_classes(s, strlen(s)); }

static void check_matching(void) {
    printf("synonym matching\n");
    CHECK(M("Men's Black Cotton T-Shirt free shipping") == 1u << 0, "t-shirt is a tee, not a shirt");
    CHECK(M("oxford shirt") == 1u << 6 && M("SHIRTS!") == 1u << 6, "shirt");
    CHECK(M("grey sweatshirt") == 1u << 2, "sweatshirt is a pullover");
    CHECK(M("a laptop case") == 0, "no item inside a word");
    CHECK(M("ankle boots, leather") == 1u << 9 && M("bootie") == 1u << 9, "boots");
    CHECK(M("tee and jeans") == ((1u << 0) | (1u << 1)), "two items");
    CHECK(M("tee, shirt") == ((1u << 0) | (1u << 6)) && M("tee shirt") == 1u << 0, "punctuation separates items");
    CHECK(M("a woman wearing a long dress") == 1u << 3 && M("dresses") == 1u << 3, "dress, plural es");
    CHECK(M("a pair of running shoes on a white background") == 1u << 7, "running shoes");
    CHECK(M("a black leather handbag") == 1u << 8 && M("clutches") == 1u << 8, "bags");
    CHECK(M("trench-coat") == 1u << 4 && M("tank top") == 1u << 0, "multi-word synonyms with hyphens");
    CHECK(M("view larger") == 0 && M("") == 0 && M("   ...   ") == 0, "nothing named");
    CHECK(M("T-shirt/top") == 1u << 0 && M("Ankle boot") == 1u << 9 && M("Sandal") == 1u << 5 && M("Trouser") == 1u << 1 &&
              M("Pullover") == 1u << 2 && M("Coat") == 1u << 4 && M("Sneaker") == 1u << 7 && M("Bag") == 1u << 8 &&
              M("Dress") == 1u << 3 && M("Shirt") == 1u << 6,
          "the class names themselves");
    CHECK(mc_caption_kind_of(1u << 3, 3) == MC_CAPTION_RIGHT && mc_caption_kind_of(1u << 2, 3) == MC_CAPTION_WRONG &&
              mc_caption_kind_of(0, 3) == MC_CAPTION_NONE && mc_caption_kind_of((1u << 3) | 1u, 3) == MC_CAPTION_MIXED,
          "kinds");
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void check_process(const mc_idx *im, const mc_idx *lb) {
    printf("caption process\n");
    enum { N = 30000 };
    char **caps = malloc(sizeof(char *) * N);
    mc_caption_quality q = {0};
    int mismatch = 0, used[MC_FMNIST_CLASSES][64] = {{0}};
    long long len_sum = 0;
    for (int i = 0; i < N; i++) {
        char c[MC_FMNIST_CAPTION_MAX], c2[MC_FMNIST_CAPTION_MAX];
        uint32_t named;
        const uint8_t *px = im->data + (size_t)i * 784;
        int label = lb->data[i];
        mc_fmnist_caption(7, MC_FMNIST_TRAIN, (uint64_t)i, label, px, c, &named);
        uint32_t got = M(c);
        if (got != named && mismatch++ < 5) printf("  '%s': generator named %#x, matcher %#x\n", c, named, got);
        mc_caption_quality_add(&q, c, strlen(c), label);
        len_sum += (long long)strlen(c);
        caps[i] = strdup(c);
        mc_fmnist_caption(7, MC_FMNIST_TRAIN, (uint64_t)i, label, px, c2, NULL);
        CHECK(!strcmp(c, c2), "same seed, same caption (%d)", i);
        /* which synonyms of the true class appear (as whole words, hyphens as spaces) */
        if (named == 1u << label) {
            char low[MC_FMNIST_CAPTION_MAX + 2];
            size_t k = 0;
            low[k++] = ' ';
            for (const char *p = c; *p; p++) {
                char ch = *p >= 'A' && *p <= 'Z' ? (char)(*p + 32) : *p;
                low[k++] = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ? ch : ' ';
            }
            low[k++] = ' ', low[k] = 0;
            for (int j = 0; j < 64 && mc_fmnist_synonym(label, j); j++) {
                char w[64];
                snprintf(w, sizeof w, " %s", mc_fmnist_synonym(label, j));
                if (strstr(low, w)) used[label][j]++;
            }
        }
    }
    CHECK(mismatch == 0, "the matcher recovers the generator's named classes (%d mismatches)", mismatch);
    const double rate[4] = {1 - MC_FMNIST_P_WRONG - MC_FMNIST_P_NONE - MC_FMNIST_P_MIXED, MC_FMNIST_P_WRONG,
                            MC_FMNIST_P_NONE, MC_FMNIST_P_MIXED};
    for (int k = 0; k < 4; k++) {
        double f = (double)q.kind[k] / (double)q.n, sd = sqrt(rate[k] * (1 - rate[k]) / (double)q.n);
        printf("  %-5s %.4f (documented %.2f)\n", mc_caption_kind_names[k], f, rate[k]);
        CHECK(fabs(f - rate[k]) < 4.5 * sd, "%s fraction %.4f vs %.2f", mc_caption_kind_names[k], f, rate[k]);
    }
    CHECK(fabs(mc_caption_quality_right(&q) - (double)q.kind[0] / N) < 1e-12, "right fraction");
    qsort(caps, N, sizeof *caps, cmp_str);
    int distinct = 1;
    for (int i = 1; i < N; i++) distinct += strcmp(caps[i], caps[i - 1]) != 0;
    printf("  %d distinct captions of %d, mean length %.1f bytes\n", distinct, N, (double)len_sum / N);
    CHECK(distinct > N / 2, "varied phrasing: %d distinct captions", distinct);
    for (int c = 0; c < MC_FMNIST_CLASSES; c++) {
        int syn = 0, total = 0;
        for (int k = 0; k < 64 && mc_fmnist_synonym(c, k); k++) syn += used[c][k] > 0, total++;
        CHECK(syn == total, "class %d: %d of its %d synonyms used", c, syn, total);
    }
    for (int i = 0; i < N; i++) free(caps[i]);
    free(caps);
    /* seeds and splits are separate streams */
    int same_seed = 0, same_split = 0;
    for (int i = 0; i < 1000; i++) {
        char a[MC_FMNIST_CAPTION_MAX], b[MC_FMNIST_CAPTION_MAX], t[MC_FMNIST_CAPTION_MAX];
        const uint8_t *px = im->data + (size_t)i * 784;
        mc_fmnist_caption(7, MC_FMNIST_TRAIN, (uint64_t)i, lb->data[i], px, a, NULL);
        mc_fmnist_caption(8, MC_FMNIST_TRAIN, (uint64_t)i, lb->data[i], px, b, NULL);
        mc_fmnist_caption(7, MC_FMNIST_TEST, (uint64_t)i, lb->data[i], px, t, NULL);
        same_seed += !strcmp(a, b), same_split += !strcmp(a, t);
    }
    CHECK(same_seed < 100 && same_split < 100, "other seed / split: %d / %d of 1000 equal", same_seed, same_split);
}

static void check_png(void) {
    printf("PNG encoder\n");
    uint8_t px[7 * 5 * 3];
    for (int i = 0; i < (int)sizeof px; i++) px[i] = (uint8_t)(i * 37 + 11);
    for (int ch = 1; ch <= 3; ch += 2) {
        unsigned char *png;
        size_t n;
        mc_err e = {0};
        mc_image im = {0};
        CHECK(mc_png_encode(px, 7, 5, ch, &png, &n, &e) == 0, "encode: %s", e.msg);
        CHECK(mc_image_decode(png, n, "mem.png", &im, &e) == 0 && im.w == 7 && im.h == 5, "decode: %s", e.msg);
        int bad = 0;
        for (int i = 0; im.rgb && i < 35; i++)
            for (int k = 0; k < 3; k++) bad += im.rgb[i * 3 + k] != px[ch == 1 ? i : i * 3 + k];
        CHECK(bad == 0, "%d-channel round trip: %d wrong bytes", ch, bad);
        mc_image_free(&im);
        free(png);
    }
    unsigned char *png;
    size_t n;
    mc_err e = {0};
    CHECK(mc_png_encode(px, 0, 5, 1, &png, &n, &e) == MC_E_ARG, "zero width refused");
}

/* The files of dir, sorted, as one string "a b c". */
static void list_dir(const char *dir, char *out, size_t cap) {
    DIR *d = opendir(dir);
    char *names[64];
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) && n < 64)
        if (de->d_name[0] != '.') names[n++] = strdup(de->d_name);
    if (d) closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? " " : "", names[i]);
        free(names[i]);
    }
}

static void read_back(const char *spec, const mc_idx *im, const mc_idx *lb, int first, int n, mc_fmnist_split split,
                      uint64_t seed) {
    mc_wds_reader r;
    mc_err e = {0};
    CHECK(mc_wds_open_spec(&r, spec, NULL, &e) == 0, "open %s: %s", spec, e.msg);
    mc_wds_sample s;
    int count = 0, bad = 0, got;
    while ((got = mc_wds_next(&r, &s, &e)) == 1) {
        int k = first + count++;
        char key[16], cap[MC_FMNIST_CAPTION_MAX];
        snprintf(key, sizeof key, "%05d", k);
        const mc_wds_member *c = mc_wds_sample_find(&s, "cls"), *p = mc_wds_sample_find(&s, "png"),
                            *t = mc_wds_sample_find(&s, "txt");
        if (s.count != 3 || !c || !p || !t || strcmp(s.key, key)) {
            bad++;
            continue;
        }
        mc_fmnist_caption(seed, split, (uint64_t)k, lb->data[k], im->data + (size_t)k * 784, cap, NULL);
        bad += atoi((const char *)c->data) != lb->data[k] || t->size != strlen(cap) || memcmp(t->data, cap, t->size);
        mc_image img = {0};
        if (mc_image_decode(p->data, p->size, key, &img, &e) || img.w != 28 || img.h != 28) bad++;
        else
            for (int i = 0; i < 784; i++)
                for (int ch = 0; ch < 3; ch++) bad += img.rgb[i * 3 + ch] != im->data[(size_t)k * 784 + i];
        mc_image_free(&img);
    }
    CHECK(got == 0, "%s: reads to the end (%s)", spec, e.msg);
    CHECK(count == n && bad == 0, "%s: %d samples (expected %d), %d wrong values", spec, count, n, bad);
    mc_wds_close(&r);
}

static void check_shards(const char *tmp, const mc_idx *im, const mc_idx *lb, const mc_idx *tim, const mc_idx *tlb) {
    printf("shards\n");
    char a[512], b[512], c[512];
    snprintf(a, sizeof a, "%s/a", tmp), snprintf(b, sizeof b, "%s/b", tmp), snprintf(c, sizeof c, "%s/c", tmp);
    mc_fmnist_shards_opts o = {.data_dir = FMNIST, .out_dir = a, .seed = 3, .per_shard = 128, .heldout = 5000, .limit = 300};
    mc_fmnist_shards_stats st, st2, st3;
    mc_err e = {0};
    CHECK(mc_fmnist_write_shards(&o, &st, &e) == 0, "convert: %s", e.msg);
    o.out_dir = b;
    CHECK(mc_fmnist_write_shards(&o, &st2, &e) == 0, "convert again: %s", e.msg);
    o.out_dir = c, o.seed = 4;
    CHECK(mc_fmnist_write_shards(&o, &st3, &e) == 0, "convert, seed 4: %s", e.msg);
    char la[1024], lb_[1024];
    list_dir(a, la, sizeof la), list_dir(b, lb_, sizeof lb_);
    CHECK(!strcmp(la, "heldout-00000.tar heldout-00001.tar heldout-00002.tar test-00000.tar test-00001.tar "
                      "test-00002.tar train-00000.tar train-00001.tar train-00002.tar"),
          "the shards and nothing else: %s", la);
    CHECK(!strcmp(la, lb_), "same files");
    CHECK(st.train.samples == 300 && st.train.shards == 3 && st.heldout.samples == 300 && st.test.samples == 300,
          "counts %d/%d/%d", st.train.samples, st.heldout.samples, st.test.samples);
    int identical = 1, captions_differ = 0;
    const char *names[] = {"train-00000.tar", "train-00002.tar", "heldout-00001.tar", "test-00002.tar"};
    for (int i = 0; i < 4; i++) {
        char pa[600], pb[600], pc[600];
        snprintf(pa, sizeof pa, "%s/%s", a, names[i]), snprintf(pb, sizeof pb, "%s/%s", b, names[i]);
        snprintf(pc, sizeof pc, "%s/%s", c, names[i]);
        size_t na, nb, nc;
        unsigned char *da = mc_test_read(pa, &na), *db = mc_test_read(pb, &nb), *dc = mc_test_read(pc, &nc);
        identical &= na == nb && !memcmp(da, db, na);
        captions_differ += na != nc || memcmp(da, dc, na);
        free(da), free(db), free(dc);
    }
    CHECK(identical, "same seed: byte-identical shards");
    CHECK(captions_differ == 4, "another seed: other shards (%d of 4 differ)", captions_differ);
    CHECK(st.train.quality.n == 300 && st.train.quality.kind[0] + st.train.quality.kind[1] + st.train.quality.kind[2] +
                                               st.train.quality.kind[3] == 300,
          "quality counted over the written captions");
    char spec[700];
    snprintf(spec, sizeof spec, "%s/train-{00000..00002}.tar", a);
    read_back(spec, im, lb, 0, 300, MC_FMNIST_TRAIN, 3);
    snprintf(spec, sizeof spec, "%s/heldout-{00000..00002}.tar", a);
    read_back(spec, im, lb, 55000, 300, MC_FMNIST_TRAIN, 3);
    snprintf(spec, sizeof spec, "%s/test-{00000..00002}.tar", a);
    read_back(spec, tim, tlb, 0, 300, MC_FMNIST_TEST, 3);
    snprintf(spec, sizeof spec, "%s/train-{00000..00002}.tar", c);
    read_back(spec, im, lb, 0, 300, MC_FMNIST_TRAIN, 4);

    /* the manifest: reused only for the same options and unchanged shards */
    o.out_dir = a, o.seed = 3;
    mc_fmnist_shards_stats back;
    CHECK(mc_fmnist_write_manifest(&o, &st, &e) == 0, "manifest: %s", e.msg);
    CHECK(mc_fmnist_read_manifest(&o, &back, &e) == 1 && !memcmp(&back, &st, sizeof st), "manifest read back: %s", e.msg);
    o.seed = 4;
    CHECK(mc_fmnist_read_manifest(&o, &back, &e) == 0, "another seed: not reused");
    o.seed = 3, o.per_shard = 100;
    CHECK(mc_fmnist_read_manifest(&o, &back, &e) == 0, "another shard size: not reused");
    o.per_shard = 128;
    char victim[600];
    snprintf(victim, sizeof victim, "%s/test-00001.tar", a);
    FILE *vf = fopen(victim, "ab");
    fputc(0, vf), fclose(vf);
    CHECK(mc_fmnist_read_manifest(&o, &back, &e) == 0, "a changed shard: not reused");
    mc_test_write(a, "manifest.json", "{\"version\": ", 12);
    CHECK(mc_fmnist_read_manifest(&o, &back, &e) == MC_E_FORMAT && strstr(e.msg, "manifest.json"), "corrupt manifest: '%s'",
          e.msg);

    /* bad input */
    mc_fmnist_shards_opts bad = {.data_dir = "/nonexistent", .out_dir = a, .seed = 1};
    int rc = mc_fmnist_write_shards(&bad, &st, &e);
    CHECK(rc < 0 && strstr(e.msg, "/nonexistent/train-images-idx3-ubyte.gz"), "missing data: '%s'", e.msg);
    bad.data_dir = FMNIST, bad.heldout = 60000;
    CHECK(mc_fmnist_write_shards(&bad, &st, &e) == MC_E_ARG, "held-out slice as large as the set refused");
}

static void write_member_shard(const char *path, const char *ext, const char *const *payloads, const int *labels, int n) {
    mc_tar_writer w;
    mc_err e = {0};
    CHECK(mc_tar_writer_open(&w, path, &e) == 0, "open %s: %s", path, e.msg);
    for (int i = 0; i < n; i++) {
        char key[16], cls[8];
        snprintf(key, sizeof key, "s%03d", i), snprintf(cls, sizeof cls, "%d", labels[i]);
        mc_wds_member m[2] = {{"cls", (const unsigned char *)cls, strlen(cls)},
                              {ext, (const unsigned char *)payloads[i], strlen(payloads[i])}};
        CHECK(mc_wds_write_sample(&w, key, m, 2, &e) == 0, "write: %s", e.msg);
    }
    CHECK(mc_tar_writer_finish(&w, &e) == 0, "finish: %s", e.msg);
}

static void check_quality_shards(const char *tmp) {
    printf("caption quality over shards\n");
    char path[512];
    mc_caption_quality q;
    mc_err e = {0};
    snprintf(path, sizeof path, "%s/syn.tar", tmp);
    const char *syn[] = {"{\"syn_text\": [\"a white tee\", \"a pair of jeans\", \"a photo of a tee and jeans\"]}",
                         "[\"ankle boots\", \"a leather bag\"]", "\"a photograph\"", "{\"syn_text\": \"a dress\"}"};
    const int labels[] = {0, 9, 3, 3};
    write_member_shard(path, "syn.json", syn, labels, 4);
    CHECK(mc_caption_quality_shards(path, "syn.json", &q, &e) == 0, "syn.json: %s", e.msg);
    CHECK(q.n == 7 && q.kind[MC_CAPTION_RIGHT] == 3 && q.kind[MC_CAPTION_WRONG] == 2 && q.kind[MC_CAPTION_NONE] == 1 &&
              q.kind[MC_CAPTION_MIXED] == 1,
          "syn.json counts: n %lld right %lld wrong %lld none %lld mixed %lld", q.n, q.kind[0], q.kind[1], q.kind[2], q.kind[3]);
    snprintf(path, sizeof path, "%s/txt.tar", tmp);
    const char *txt[] = {"a sneaker\nrunning shoes\n\nsandals\n", "coat"};
    const int tl[] = {7, 4};
    write_member_shard(path, "txt", txt, tl, 2);
    CHECK(mc_caption_quality_shards(path, "txt", &q, &e) == 0 && q.n == 4 && q.kind[0] == 3 && q.kind[1] == 1,
          "txt lines: n %lld right %lld wrong %lld", q.n, q.kind[0], q.kind[1]);
    CHECK(mc_caption_quality_shards(path, "syn.json", &q, &e) == MC_E_FORMAT && strstr(e.msg, "s000") &&
              strstr(e.msg, "no .syn.json"),
          "missing member: '%s'", e.msg);
    snprintf(path, sizeof path, "%s/bad.tar", tmp);
    const char *bad[] = {"{\"syn_text\": [1, 2]}"};
    write_member_shard(path, "syn.json", bad, labels, 1);
    CHECK(mc_caption_quality_shards(path, "syn.json", &q, &e) == MC_E_FORMAT && strstr(e.msg, "bad.tar") &&
              strstr(e.msg, "s000"),
          "not captions: '%s'", e.msg);
    const char *broken[] = {"{\"syn_text\": ["};
    write_member_shard(path, "syn.json", broken, labels, 1);
    CHECK(mc_caption_quality_shards(path, "syn.json", &q, &e) == MC_E_FORMAT && strstr(e.msg, "bad.tar"),
          "broken JSON: '%s'", e.msg);
    const int badlabel[] = {10};
    write_member_shard(path, "txt", txt, badlabel, 1);
    CHECK(mc_caption_quality_shards(path, "txt", &q, &e) == MC_E_FORMAT && strstr(e.msg, "class number"),
          "class out of range: '%s'", e.msg);
}

int main(void) {
    const char *tmp = mc_test_tmpdir("mc_test_fmnist");
    mc_idx im = {0}, lb = {0}, tim = {0}, tlb = {0};
    mc_err e = {0};
    if (mc_idx_load_labelled(FMNIST "/train-images-idx3-ubyte.gz", FMNIST "/train-labels-idx1-ubyte.gz", 10, &im, &lb, &e) ||
        mc_idx_load_labelled(FMNIST "/t10k-images-idx3-ubyte.gz", FMNIST "/t10k-labels-idx1-ubyte.gz", 10, &tim, &tlb, &e))
        mc_test_fatal("Fashion-MNIST missing (install the Debian package dataset-fashion-mnist): %s", e.msg);
    check_matching();
    check_process(&im, &lb);
    check_png();
    check_shards(tmp, &im, &lb, &tim, &tlb);
    check_quality_shards(tmp);
    mc_idx_free(&im), mc_idx_free(&lb), mc_idx_free(&tim), mc_idx_free(&tlb);
    return mc_test_finish("test_fmnist");
}
