/* Dataset reinforcement job (src/reinforce/job.h) on the fixture of tests/common/reinforce_fixture.h
 * (two small open_clip teachers of different input sizes, five shards with every bad case):
 *   - round trip: every output sample is read back with the project's readers, its stored paug
 *     reapplied to the input image with src/augment, each teacher's embedding recomputed one
 *     image / one text at a time and compared with the stored rows (cosine >= 0.9999, unit norm
 *     per teacher block), the captions (txt, syn.json) equal to the inputs; f32 npz and bf16 pth.gz;
 *   - the skip counts per reason and the synthetic-caption validation counts;
 *   - determinism: 1 thread vs 2 threads with another batch size give the same bytes; shard
 *     partitioning (2 processes) gives the same shards;
 *   - resume: finished shards are verified and skipped; a damaged output shard is redone to the
 *     same bytes and a stale temporary file removed;
 *   - syn.json bytes as Python's json.dumps writes them; torch's bicubic F.interpolate against
 *     its definition (Keys' kernel, a = -0.75, clamped taps) in double. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/files.h"
#include "common/reinforce_fixture.h"
#include "common/test_util.h"
#include "io/dr_sample.h"
#include "io/wds.h"
#include "reinforce/job.h"

#define NUM_AUG 2

static char dir[256];
static mc_teacher_ensemble ens;
static mc_tokenizer *tok;
static mc_syn_store syn;

static const char *path(const char *rel) {
    static char buf[8][600];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, rel);
    return buf[k];
}

static mc_reinforce_stats run(const char *out, int threads, int batch, int bf16, int keep, int idx, int nshards) {
    mc_reinforce_opts o;
    mc_reinforce_opts_init(&o);
    char spec[600];
    snprintf(spec, sizeof spec, "%s/in/{00000..00004}.tar", dir);
    o.input = spec;
    o.out_dir = path(out);
    o.num_aug = NUM_AUG;
    o.seed = 1234;
    o.bf16 = bf16;
    o.keep_images = keep;
    o.batch_images = batch;
    o.shard_index = idx;
    o.num_shards = nshards;
    o.aug.size_w = o.aug.size_h = 64; /* the larger teacher's */
    o.syn = &syn;
    mc_err e = {0};
    mc_reinforce_stats st;
    omp_set_num_threads(threads);
    if (mc_reinforce_check_out_dir(o.out_dir, &e)) mc_test_fatal("%s", e.msg);
    int r = mc_reinforce_run(&o, &ens, tok, &st, &e);
    CHECK(r == 0, "run %s: %d %s", out, r, e.msg);
    mc_reinforce_print_summary(stdout, &st);
    return st;
}

static int same_file(const char *a, const char *b) {
    size_t la, lb;
    unsigned char *x = mc_test_read(a, &la), *y = mc_test_read(b, &lb);
    int same = la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

static void compare_outputs(const char *a, const char *b, int from, int step, const char *what) {
    for (int k = from; k < MC_FIX_SHARDS; k += step) {
        char pa[64], pb[64];
        snprintf(pa, sizeof pa, "%s/%05d.tar", a, k);
        snprintf(pb, sizeof pb, "%s/%05d.tar", b, k);
        CHECK(same_file(path(pa), path(pb)), "%s: shard %05d differs", what, k);
    }
}

/* normalised features of one preprocessed image / one text through teacher t */
static void unit(float *v, int d) {
    double s = 0;
    for (int i = 0; i < d; i++) s += (double)v[i] * v[i];
    for (int i = 0; i < d; i++) v[i] = (float)(v[i] / sqrt(s));
}

static double block_norm(const float *v, int d) {
    double s = 0;
    for (int i = 0; i < d; i++) s += (double)v[i] * v[i];
    return sqrt(s);
}

/* Reads every output shard back and recomputes what it stores; returns the number of samples. */
static int roundtrip(const char *out, int bf16, int keep, double *worst_cos) {
    const mc_augment_config *cfg = NULL;
    mc_augment_config aug;
    mc_augment_config_datacompdr(&aug);
    aug.size_w = aug.size_h = 64;
    cfg = &aug;
    int samples = 0;
    mc_err e = {0};
    for (int k = 0; k < MC_FIX_SHARDS; k++) {
        char pi[64], po[64];
        snprintf(pi, sizeof pi, "in/%05d.tar", k);
        snprintf(po, sizeof po, "%s/%05d.tar", out, k);
        const char *in_path = path(pi), *out_path = path(po);
        mc_wds_reader ri, ro;
        if (mc_wds_open(&ri, &in_path, 1, NULL, &e) || mc_wds_open(&ro, &out_path, 1, NULL, &e)) mc_test_fatal("%s", e.msg);
        mc_wds_sample so, si;
        int q;
        while ((q = mc_wds_next(&ro, &so, &e)) != 0) {
            CHECK(q == 1, "%s: %s", out_path, e.msg);
            if (q < 0) break;
            /* the input sample of the same key (outputs keep the input order) */
            int found = 0;
            while (!found) {
                int qi = mc_wds_next(&ri, &si, &e);
                if (qi == 0) break;
                if (qi == 1 && !strcmp(si.key, so.key)) found = 1;
            }
            CHECK(found, "%s: sample %s not in the input", out_path, so.key);
            if (!found) break;
            samples++;
            const mc_wds_member *img_in = mc_dr_sample_image(&si), *img_out = mc_dr_sample_image(&so);
            if (keep)
                CHECK(img_out && img_out->size == img_in->size && !memcmp(img_out->data, img_in->data, img_in->size),
                      "%s: image kept as is", so.key);
            else
                CHECK(!img_out, "%s: no image member without keep_images", so.key);
            const char *pass[] = {"txt", "url.txt", "json"};
            for (int i = 0; i < 3; i++) {
                const mc_wds_member *a = mc_wds_sample_find(&si, pass[i]), *b = mc_wds_sample_find(&so, pass[i]);
                CHECK(a && b && a->size == b->size && !memcmp(a->data, b->data, a->size), "%s: %s passed through",
                      so.key, pass[i]);
            }
            CHECK(mc_wds_sample_find(&so, bf16 ? "pth.gz" : "npz") && !mc_wds_sample_find(&so, bf16 ? "npz" : "pth.gz"),
                  "%s: embeddings member", so.key);
            /* captions */
            char *const *caps;
            int nsyn = mc_syn_find(&syn, so.key, &caps);
            CHECK(nsyn == 2, "%s: %d synthetic captions in the store", so.key, nsyn);
            const mc_wds_member *sj = mc_wds_sample_find(&so, "syn.json"), *pj = mc_wds_sample_find(&so, "paug.json");
            mc_strlist got;
            mc_strlist_init(&got);
            if (!sj || mc_dr_parse_syn(sj->data, sj->size, "syn.json", NULL, &got, &e)) mc_test_fatal("%s: syn.json", so.key);
            CHECK(got.count == nsyn, "%s: syn.json count", so.key);
            for (int i = 0; i < got.count && i < nsyn; i++) CHECK(!strcmp(got.items[i], caps[i]), "%s: caption %d", so.key, i);
            mc_strlist_free(&got);
            /* augmentations and embeddings */
            mc_augment_params *params = NULL;
            int np = 0;
            if (!pj || mc_augment_paug_parse(cfg, (const char *)pj->data, pj->size, "paug.json", &params, &np, &e))
                mc_test_fatal("%s: paug.json: %s", so.key, e.msg);
            mc_dr_emb m;
            if (mc_dr_sample_emb(&so, &m, &e)) mc_test_fatal("%s: %s", so.key, e.msg);
            CHECK(np == NUM_AUG && m.n_image == NUM_AUG && m.dim == ens.dim && m.n_text == 1 + nsyn && m.n_syn == 0,
                  "%s: shapes %d %d %d %d", so.key, np, m.n_image, m.dim, m.n_text);
            mc_image img;
            if (mc_image_decode(img_in->data, img_in->size, so.key, &img, &e)) mc_test_fatal("%s", e.msg);
            /* the same parameters the job drew: the key's own stream */
            mc_rng rng;
            mc_rng_init(&rng, 1234, mc_key_hash(so.key));
            for (int a = 0; a < np && a < m.n_image; a++) {
                mc_augment_params p;
                if (mc_augment_sample(&rng, cfg, img.w, img.h, &p, &e)) mc_test_fatal("%s", e.msg);
                char j1[2048], j2[2048];
                mc_augment_params_to_json(cfg, &p, j1, sizeof j1, &e);
                mc_augment_params_to_json(cfg, &params[a], j2, sizeof j2, &e);
                CHECK(!strcmp(j1, j2), "%s: augmentation %d is the key's stream (%s vs %s)", so.key, a, j1, j2);
                mc_image au;
                if (mc_augment_apply_u8(cfg, &params[a], &img, 0, 0, &au, &e)) mc_test_fatal("%s", e.msg);
                for (int t = 0; t < ens.count; t++) {
                    mc_teacher *te = &ens.teachers[t];
                    int R = te->image_size, off = mc_teacher_ensemble_offset(&ens, t);
                    float *chw = malloc(sizeof(float) * 3 * R * R), *scr = malloc(sizeof(float) * 3 * 64 * 64);
                    float *f = malloc(sizeof(float) * (size_t)te->dim);
                    if (mc_teacher_preprocess_augmented(te, &au, chw, scr, &e) || mc_teacher_encode_images(te, chw, 1, f, &e))
                        mc_test_fatal("%s", e.msg);
                    unit(f, te->dim);
                    const float *row = m.image_emb + (size_t)a * m.dim + off;
                    double c = mc_test_cosine(f, row, te->dim), nrm = block_norm(row, te->dim);
                    if (c < *worst_cos) *worst_cos = c;
                    CHECK(c >= 0.9999, "%s: image %d teacher %d cosine %.6f", so.key, a, t, c);
                    CHECK(fabs(nrm - 1) < (bf16 ? 5e-3 : 1e-5), "%s: image block norm %.6f", so.key, nrm);
                    free(chw);
                    free(scr);
                    free(f);
                }
                mc_image_free(&au);
            }
            const mc_wds_member *tx = mc_wds_sample_find(&si, "txt");
            for (int i = 0; i < m.n_text && i <= nsyn; i++) {
                char caption[512];
                if (i == 0) snprintf(caption, sizeof caption, "%.*s", (int)tx->size, (const char *)tx->data);
                else snprintf(caption, sizeof caption, "%s", caps[i - 1]);
                for (int t = 0; t < ens.count; t++) {
                    mc_teacher *te = &ens.teachers[t];
                    int32_t ids[77];
                    float *f = malloc(sizeof(float) * (size_t)te->dim);
                    if (mc_tokenizer_encode_ctx(tok, caption, strlen(caption), ids, te->context, &e) < 0 ||
                        mc_teacher_encode_tokens(te, ids, 1, f, &e))
                        mc_test_fatal("%s", e.msg);
                    unit(f, te->dim);
                    const float *row = m.text_emb + (size_t)i * m.dim + mc_teacher_ensemble_offset(&ens, t);
                    double c = mc_test_cosine(f, row, te->dim);
                    if (c < *worst_cos) *worst_cos = c;
                    CHECK(c >= 0.9999, "%s: text %d teacher %d cosine %.6f", so.key, i, t, c);
                    free(f);
                }
            }
            mc_image_free(&img);
            mc_dr_emb_free(&m);
            free(params);
        }
        mc_wds_close(&ri);
        mc_wds_close(&ro);
    }
    return samples;
}

static void check_counts(const mc_reinforce_stats *st) {
    CHECK(st->samples_written == MC_FIX_GOOD, "written %lld", st->samples_written);
    CHECK(st->skipped[MC_RSKIP_READ] == MC_FIX_SKIP_READ, "read errors %lld", st->skipped[MC_RSKIP_READ]);
    CHECK(st->skipped[MC_RSKIP_NO_IMAGE] == MC_FIX_SKIP_NO_IMAGE, "no image %lld", st->skipped[MC_RSKIP_NO_IMAGE]);
    CHECK(st->skipped[MC_RSKIP_IMAGE] == MC_FIX_SKIP_IMAGE, "bad image %lld", st->skipped[MC_RSKIP_IMAGE]);
    CHECK(st->skipped[MC_RSKIP_CAPTION] == MC_FIX_SKIP_CAPTION, "bad caption %lld", st->skipped[MC_RSKIP_CAPTION]);
    CHECK(st->skipped[MC_RSKIP_SYN] == MC_FIX_SKIP_SYN, "syn %lld", st->skipped[MC_RSKIP_SYN]);
    CHECK(strstr(st->first[MC_RSKIP_IMAGE], "badimage") && strstr(st->first[MC_RSKIP_READ], "00004.tar"),
          "messages name the sample and the shard: %s | %s", st->first[MC_RSKIP_IMAGE], st->first[MC_RSKIP_READ]);
}

static void test_json_dumps(void) {
    char *caps[] = {"a caf\xc3\xa9 scene \"quoted\"", "emoji \xf0\x9f\x98\x80 and tab\t\\ \x01"};
    char *out;
    size_t len;
    mc_err e = {0};
    CHECK(mc_syn_json_write(caps, 2, &out, &len, &e) == 0, "%s", e.msg);
    /* json.dumps({"syn_text": [...]}) in Python 3 */
    const char *want = "{\"syn_text\": [\"a caf\\u00e9 scene \\\"quoted\\\"\", \"emoji \\ud83d\\ude00 and tab\\t\\\\ \\u0001\"]}";
    CHECK(!strcmp(out, want) && len == strlen(want), "syn.json bytes: %s", out);
    free(out);
    char *bad[] = {"\xc3"};
    CHECK(mc_syn_json_write(bad, 1, &out, &len, &e) == MC_E_ARG, "invalid UTF-8 refused");
}

/* Keys' cubic convolution kernel (a = -0.75, torch's) at distance s, in double */
static double keys(double s) {
    const double a = -0.75;
    s = fabs(s);
    if (s <= 1) return ((a + 2) * s - (a + 3)) * s * s + 1;
    if (s < 2) return ((a * s - 5 * a) * s + 8 * a) * s - 4 * a;
    return 0;
}

static void test_interpolate(void) {
    /* F.interpolate(bicubic, align_corners=False) by its definition: output (i, j) samples the
     * input at ((i + 0.5) h / oh - 0.5, ...) with the kernel over the 4 x 4 nearest taps,
     * indices clamped to the border. Down- and upsampling of a pseudo-random image. */
    int h = 12, w = 10;
    float x[2 * 12 * 10];
    for (int i = 0; i < 2 * h * w; i++) x[i] = (float)((i * 7919 % 101) / 50.0 - 1.0);
    int sizes[2][2] = {{7, 9}, {20, 24}};
    for (int s = 0; s < 2; s++) {
        int oh = sizes[s][0], ow = sizes[s][1];
        float *o = malloc(sizeof(float) * 2 * oh * ow);
        mc_interpolate_bicubic(x, 2, h, w, o, oh, ow);
        double worst = 0;
        for (int c = 0; c < 2; c++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++) {
                    double sy = (i + 0.5) * h / oh - 0.5, sx = (j + 0.5) * w / ow - 0.5, want = 0;
                    int y0 = (int)floor(sy), x0 = (int)floor(sx);
                    for (int yy = y0 - 1; yy <= y0 + 2; yy++)
                        for (int xx = x0 - 1; xx <= x0 + 2; xx++) {
                            int cy = yy < 0 ? 0 : yy >= h ? h - 1 : yy, cx = xx < 0 ? 0 : xx >= w ? w - 1 : xx;
                            want += keys(sy - yy) * keys(sx - xx) * x[(c * h + cy) * w + cx];
                        }
                    double d = fabs(o[(c * oh + i) * ow + j] - want);
                    if (d > worst) worst = d;
                }
        printf("interpolate %dx%d -> %dx%d: max error %.2e against the kernel definition\n", h, w, oh, ow, worst);
        CHECK(worst < 1e-5, "bicubic error %g", worst);
        free(o);
    }
    float same[2 * 12 * 10];
    mc_interpolate_bicubic(x, 2, h, w, same, h, w);
    CHECK(!memcmp(same, x, sizeof x), "same size is the identity");
}

/* Without a caption file the input's own syn.json is used: a valid one gives 1 + 2 text rows, a
 * malformed one and one with a lone surrogate escape are skipped as bad synthetic captions. */
static void test_input_syn(void) {
    char p[600];
    snprintf(p, sizeof p, "%s/in2", dir);
    if (mkdir(p, 0777)) mc_test_fatal("mkdir %s", p);
    snprintf(p, sizeof p, "%s/in2/00000.tar", dir);
    mc_tar_writer w;
    mc_err e = {0};
    if (mc_tar_writer_open(&w, p, &e)) mc_test_fatal("%s", e.msg);
    size_t len;
    unsigned char *png = mc_fix_png(48, 36, 5, &len);
    const char *syns[3] = {"{\"syn_text\": [\"one\", \"two\"]}", "{\"syn_text\": [1, 2]}", "{\"syn_text\": [\"\\ud800\"]}"};
    const char *keys[3] = {"good", "badlist", "surrogate"};
    for (int i = 0; i < 3; i++) {
        mc_wds_member m[3] = {{"png", png, len}, {"syn.json", (const unsigned char *)syns[i], strlen(syns[i])},
                              {"txt", (const unsigned char *)"a caption", 9}};
        if (mc_wds_write_sample(&w, keys[i], m, 3, &e)) mc_test_fatal("%s", e.msg);
    }
    free(png);
    if (mc_tar_writer_finish(&w, &e)) mc_test_fatal("%s", e.msg);
    mc_reinforce_opts o;
    mc_reinforce_opts_init(&o);
    o.input = p;
    o.out_dir = path("out_syn");
    o.num_aug = 1;
    o.aug.size_w = o.aug.size_h = 64;
    mc_reinforce_stats st;
    if (mc_reinforce_check_out_dir(o.out_dir, &e)) mc_test_fatal("%s", e.msg);
    CHECK(mc_reinforce_run(&o, &ens, tok, &st, &e) == 0, "%s", e.msg);
    CHECK(st.samples_written == 1 && st.skipped[MC_RSKIP_SYN] == 2, "input syn.json: %lld written, %lld skipped",
          st.samples_written, st.skipped[MC_RSKIP_SYN]);
    const char *out = path("out_syn/00000.tar");
    mc_wds_reader rd;
    mc_wds_sample s;
    mc_dr_emb m;
    if (mc_wds_open(&rd, &out, 1, NULL, &e) || mc_wds_next(&rd, &s, &e) != 1 || mc_dr_sample_emb(&s, &m, &e))
        mc_test_fatal("%s", e.msg);
    const mc_wds_member *sj = mc_wds_sample_find(&s, "syn.json");
    CHECK(!strcmp(s.key, "good") && m.n_text == 3 && sj && sj->size == strlen(syns[0]) && !memcmp(sj->data, syns[0], sj->size),
          "input syn.json carried: %s %d", s.key, m.n_text);
    mc_dr_emb_free(&m);
    mc_wds_close(&rd);
}

int main(void) {
    test_json_dumps();
    test_interpolate();
    snprintf(dir, sizeof dir, "%s", mc_test_tmpdir("mc_test_reinforce"));
    mc_fix_write(dir);
    mc_err e = {0};
    mc_teacher_ensemble_init(&ens);
    mc_syn_init(&syn);
    char spec_a[700], spec_b[700];
    snprintf(spec_a, sizeof spec_a, "%s:%s", path("teacher_a.safetensors"), path("teacher_a.json"));
    snprintf(spec_b, sizeof spec_b, "%s:%s", path("teacher_b.safetensors"), path("teacher_b.json"));
    if (mc_teacher_ensemble_add_spec(&ens, spec_a, &e) || mc_teacher_ensemble_add_spec(&ens, spec_b, &e))
        mc_test_fatal("%s", e.msg);
    if (!(tok = mc_tokenizer_load(mc_test_path("vocab/bpe_simple_vocab_16e6.txt.gz"), &e))) mc_test_fatal("%s", e.msg);
    if (mc_syn_load(&syn, path("syn.jsonl"), &e)) mc_test_fatal("%s", e.msg);
    CHECK(syn.bad_lines == MC_FIX_SYN_BAD_LINES && syn.unknown_keys == MC_FIX_SYN_UNKNOWN_KEYS && syn.duplicates == 0,
          "syn store: %lld bad, %lld unknown, %lld dup", syn.bad_lines, syn.unknown_keys, syn.duplicates);

    double t0 = mc_test_now();
    mc_reinforce_stats a = run("out_a", 1, 32, 0, 0, 0, 1);
    double ta = mc_test_now() - t0;
    check_counts(&a);
    CHECK(a.shards_done == MC_FIX_SHARDS && a.shards_failed == 0, "shards %d", a.shards_done);
    double worst = 1;
    int n = roundtrip("out_a", 0, 0, &worst);
    CHECK(n == MC_FIX_GOOD, "round trip read %d samples", n);
    printf("round trip f32: %d samples, worst cosine %.7f (%.1f s for the run)\n", n, worst, ta);

    /* determinism: threads and batch size */
    mc_reinforce_stats b = run("out_b", 2, 5, 0, 0, 0, 1);
    check_counts(&b);
    compare_outputs("out_a", "out_b", 0, 1, "2 threads, batch 5");
    /* partitioning */
    mc_reinforce_stats c0 = run("out_c", 2, 32, 0, 0, 0, 2), c1 = run("out_c", 2, 32, 0, 0, 1, 2);
    CHECK(c0.shards_assigned == 3 && c1.shards_assigned == 2, "partition %d %d", c0.shards_assigned, c1.shards_assigned);
    CHECK(c0.samples_written + c1.samples_written == MC_FIX_GOOD, "partition samples");
    compare_outputs("out_a", "out_c", 0, 1, "2 processes");

    /* resume: everything verified; then one damaged shard redone to the same bytes */
    mc_reinforce_stats r1 = run("out_a", 2, 32, 0, 0, 0, 1);
    CHECK(r1.shards_resumed == MC_FIX_SHARDS && r1.shards_done == 0 && r1.samples_resumed == MC_FIX_GOOD,
          "resume: %d verified, %d redone", r1.shards_resumed, r1.shards_done);
    const char *p2 = path("out_a/00002.tar");
    CHECK(truncate(p2, 10240) == 0, "truncate");
    long long cnt;
    CHECK(mc_reinforce_verify_shard(p2, NUM_AUG, ens.dim, &cnt, &e) == 0, "a cut shard is not complete");
    mc_test_write(path("out_a"), "00002.tar.tmp.Ab12Cd", "partial", 7);
    mc_reinforce_stats r2 = run("out_a", 2, 32, 0, 0, 0, 1);
    CHECK(r2.shards_resumed == MC_FIX_SHARDS - 1 && r2.shards_done == 1, "resume after damage: %d, %d", r2.shards_resumed,
          r2.shards_done);
    compare_outputs("out_a", "out_b", 0, 1, "redone shard");
    CHECK(access(path("out_a/00002.tar.tmp.Ab12Cd"), F_OK) != 0, "stale temporary file removed");
    CHECK(mc_reinforce_verify_shard(path("out_a/00001.tar"), NUM_AUG + 1, ens.dim, &cnt, &e) == 0,
          "another augmentation count is not complete");

    /* bf16 storage, images kept */
    mc_reinforce_stats d = run("out_d", 2, 32, 1, 1, 0, 1);
    check_counts(&d);
    worst = 1;
    n = roundtrip("out_d", 1, 1, &worst);
    CHECK(n == MC_FIX_GOOD, "round trip bf16 read %d samples", n);
    printf("round trip bf16 + images: %d samples, worst cosine %.7f\n", n, worst);
    printf("bytes per sample: f32 %.0f, bf16 + images %.0f\n", (double)a.bytes_written / a.samples_written,
           (double)d.bytes_written / d.samples_written);

    test_input_syn();

    /* an output directory that cannot exist */
    CHECK(mc_reinforce_check_out_dir(path("syn.jsonl/sub"), &e) == MC_E_IO && strstr(e.msg, "syn.jsonl/sub"),
          "unwritable output directory: %s", e.msg);

    mc_syn_free(&syn);
    mc_tokenizer_free(tok);
    mc_teacher_ensemble_free(&ens);
    printf("%d checks, %d failures\n", mc_test_checks, mc_test_failures);
    return mc_test_failures ? 1 : 0;
}
