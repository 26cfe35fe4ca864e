/* The reinforcement test fixture; see reinforce_fixture.h. */
#include "common/reinforce_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/files.h"
#include "common/test_util.h"
#include "common/weight_rule.h"
#include "image/encode_png.h"
#include "io/safetensors.h"
#include "io/wds.h"
#include "models/openclip.h"

static const char cfg_a[] =
    "{\"embed_dim\": 96, \"vision_cfg\": {\"image_size\": 64, \"layers\": 2, \"width\": 64, \"head_width\": 32, "
    "\"patch_size\": 16}, \"text_cfg\": {\"context_length\": 77, \"vocab_size\": 49408, \"width\": 64, "
    "\"heads\": 4, \"layers\": 2}}";
static const char cfg_b[] =
    "{\"embed_dim\": 64, \"quick_gelu\": true, \"vision_cfg\": {\"image_size\": 32, \"layers\": 1, \"width\": 48, "
    "\"head_width\": 16, \"patch_size\": 8}, \"text_cfg\": {\"context_length\": 77, \"vocab_size\": 49408, "
    "\"width\": 32, \"heads\": 2, \"layers\": 1}, \"preprocess_cfg\": {\"mean\": [0.5, 0.4, 0.3], "
    "\"std\": [0.2, 0.25, 0.3]}}";

static void write_teacher(const char *dir, const char *name, const char *cfg_json) {
    char jp[512], wp[512];
    snprintf(jp, sizeof jp, "%s/%s.json", dir, name);
    snprintf(wp, sizeof wp, "%s/%s.safetensors", dir, name);
    FILE *f = fopen(jp, "w");
    if (!f || fputs(cfg_json, f) < 0 || fclose(f)) mc_test_fatal("cannot write %s", jp);
    mc_oc_cfg cfg;
    mc_openclip m;
    mc_err e = {0};
    if (mc_oc_cfg_load(jp, &cfg, &e) || mc_openclip_init_declared(&m, &cfg, &e)) mc_test_fatal("%s", e.msg);
    for (int i = 0; i < m.weights.count; i++) {
        mc_named_tensor *t = &m.weights.items[i];
        float *v = (float *)t->t.data;
        int ln = strstr(t->name, "ln_") && strstr(t->name, ".weight");
        uint64_t h = mc_fnv1a64(t->name) ^ mc_fnv1a64(name);
        for (int64_t j = 0; j < mc_tensor_numel(&t->t); j++)
            v[j] = ln ? mc_weight_rule_value(h, (uint64_t)j, 0.5, 1.5) : mc_weight_rule_value(h, (uint64_t)j, -0.2, 0.2);
    }
    if (mc_safetensors_save(wp, &m.weights, &e)) mc_test_fatal("%s", e.msg);
    mc_openclip_free(&m);
}

unsigned char *mc_fix_png(int w, int h, uint32_t seed, size_t *len) {
    unsigned char *rgb = malloc((size_t)w * h * 3);
    if (!rgb) mc_test_fatal("out of memory");
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                uint64_t r = mc_splitmix64(seed * 7919u + (uint64_t)(y * w + x) * 3 + (uint64_t)c);
                int smooth = (x * (3 + c) + y * (5 - c) + (int)(seed * 37)) & 255;
                rgb[((size_t)y * w + x) * 3 + c] = (unsigned char)((smooth * 3 + (int)(r & 63)) / 4 & 255);
            }
    unsigned char *png;
    mc_err e = {0};
    if (mc_png_encode(rgb, w, h, 3, &png, len, &e)) mc_test_fatal("%s", e.msg);
    free(rgb);
    return png;
}

/* one sample: image (png bytes or raw bytes as ext), caption, url */
static void put_sample(mc_tar_writer *w, const char *key, const char *img_ext, const void *img, size_t img_len,
                       const char *txt, size_t txt_len) {
    mc_wds_member m[4];
    int n = 0;
    char url[128];
    snprintf(url, sizeof url, "https://example.com/%s.png", key);
    if (img) m[n++] = (mc_wds_member){img_ext, img, img_len};
    if (txt) m[n++] = (mc_wds_member){"txt", (const unsigned char *)txt, txt_len};
    m[n++] = (mc_wds_member){"url.txt", (const unsigned char *)url, strlen(url)};
    char js[160];
    snprintf(js, sizeof js, "{\"uid\": \"%s\", \"sha256\": null}", key);
    m[n++] = (mc_wds_member){"json", (const unsigned char *)js, strlen(js)};
    mc_err e = {0};
    if (mc_wds_write_sample(w, key, m, n, &e)) mc_test_fatal("%s", e.msg);
}

static void good_sample(mc_tar_writer *w, const char *key, uint32_t seed) {
    size_t len;
    int W = 40 + (int)(seed * 13 % 50), H = 30 + (int)(seed * 29 % 45);
    unsigned char *png = mc_fix_png(W, H, seed, &len);
    char cap[128];
    snprintf(cap, sizeof cap, "a photo number %u of a test pattern", seed);
    put_sample(w, key, "png", png, len, cap, strlen(cap));
    free(png);
}

static void open_shard(mc_tar_writer *w, const char *dir, int k) {
    char p[600];
    snprintf(p, sizeof p, "%s/in/%05d.tar", dir, k);
    mc_err e = {0};
    if (mc_tar_writer_open(w, p, &e)) mc_test_fatal("%s", e.msg);
}

static void close_shard(mc_tar_writer *w) {
    mc_err e = {0};
    if (mc_tar_writer_finish(w, &e)) mc_test_fatal("%s", e.msg);
}

void mc_fix_write(const char *dir) {
    write_teacher(dir, "teacher_a", cfg_a);
    write_teacher(dir, "teacher_b", cfg_b);
    char p[600];
    snprintf(p, sizeof p, "%s/in", dir);
    if (mkdir(p, 0777)) mc_test_fatal("cannot create %s", p);
    mc_tar_writer w;
    char key[64];
    uint32_t seed = 1;
    for (int k = 0; k < 3; k++) {
        open_shard(&w, dir, k);
        for (int i = 0; i < 3; i++) {
            snprintf(key, sizeof key, "s%05d_%d", k, i);
            good_sample(&w, key, seed++);
        }
        close_shard(&w);
    }
    open_shard(&w, dir, 3);
    good_sample(&w, "s00003_0", seed++);
    size_t len;
    unsigned char *png = mc_fix_png(50, 40, 99, &len);
#define LIT(s) s, sizeof s - 1
    put_sample(&w, "noimage", NULL, NULL, 0, LIT("a caption without an image"));
    put_sample(&w, "badimage", "jpg", LIT("\xff\xd8\xff\xe0 not really a jpeg"), LIT("an undecodable image"));
    put_sample(&w, "badtext", "png", png, len, LIT("bad \xff\xfe caption"));
    put_sample(&w, "nosyn", "png", png, len, LIT("a sample without synthetic captions"));
    put_sample(&w, "badsyn", "png", png, len, LIT("a sample with malformed synthetic captions"));
#undef LIT
    free(png);
    close_shard(&w);
    /* 00004: two good samples, then one whose image is cut short by the end of the file */
    open_shard(&w, dir, 4);
    good_sample(&w, "s00004_0", seed++);
    good_sample(&w, "s00004_1", seed++);
    uint64_t cut = w.offset;
    good_sample(&w, "s00004_2", seed++);
    close_shard(&w);
    snprintf(p, sizeof p, "%s/in/00004.tar", dir);
    /* cut after s00004_2's json header and data, its png header and 100 bytes of the png */
    if (truncate(p, (off_t)(cut + 3 * 512 + 100))) mc_test_fatal("cannot truncate %s", p);
    /* synthetic captions */
    snprintf(p, sizeof p, "%s/syn.jsonl", dir);
    FILE *f = fopen(p, "w");
    if (!f) mc_test_fatal("cannot write %s", p);
    const char *keys[] = {"s00000_0", "s00000_1", "s00000_2", "s00001_0", "s00001_1", "s00001_2", "s00002_0",
                          "s00002_1", "s00002_2", "s00003_0", "s00004_0", "s00004_1", "s00004_2", "noimage",
                          "badimage", "badtext"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        if (i == 3) fprintf(f, "\n"); /* blank lines are ignored */
        if (i == 5)
            fprintf(f, "{\"key\": \"%s\", \"syn_text\": [\"a caf\\u00e9 scene \\\"quoted\\\"\", \"emoji \xf0\x9f\x98\x80 "
                       "and tab\\t\"], \"extra\": 1}\n", keys[i]);
        else
            fprintf(f, "{\"key\": \"%s\", \"syn_text\": [\"synthetic caption one of %s\", \"a second synthetic "
                       "caption\"]}\n", keys[i], keys[i]);
    }
    fprintf(f, "{\"key\": \"badsyn\", \"syn_text\": \"not a list\"}\n");
    fprintf(f, "{\"key\": \"\xff\", \"syn_text\": [\"x\"]}\n");
    if (fclose(f)) mc_test_fatal("cannot write %s", p);
}
