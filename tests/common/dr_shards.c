/* dr_shards.c - see dr_shards.h. */
#include "common/dr_shards.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment/augment.h"
#include "common/files.h"
#include "common/test_util.h"
#include "image/image.h"
#include "io/dr_sample.h"
#include "io/tar.h"
#include "io/wds.h"

#ifndef MC_TEST_DATA_DIR
#define MC_TEST_DATA_DIR "tests/data"
#endif

static const char *const images[] = {"camera.eval64.png", "coins.eval50.png", "logo.resize31x29.png",
                                     "rocket.resize150x33.png", "synthetic_gradient_1024x768.eval48.png",
                                     "hubble_deep_field.eval80.png"};

int mc_test_dr_is_bad(int k, int bad_every) { return bad_every > 0 && k % bad_every == bad_every - 1; }

/* a row: tag, then seeded values, each half normalised */
static void teacher_row(float *row, int half, float tag, mc_rng *rng) {
    for (int h = 0; h < 2; h++) {
        float *r = row + h * half;
        for (int i = 0; i < half; i++) r[i] = i == 0 ? tag : (float)(mc_rng_double(rng) - 0.5);
        /* the tag kept exact, the rest scaled to a unit-norm half */
        double rest = 0;
        for (int i = 1; i < half; i++) rest += (double)r[i] * r[i];
        double want = 1.0 - (double)tag * tag;
        for (int i = 1; i < half; i++) r[i] = (float)(r[i] * sqrt(want / rest));
    }
}

void mc_test_write_dr_shards(const char *dir, int n_shards, int per_shard, int half, int aug_size, int bad_every) {
    mc_err e = {0};
    mc_augment_config acfg;
    mc_augment_config_datacompdr(&acfg);
    acfg.size_w = acfg.size_h = aug_size;
    int D = 2 * half;
    for (int s = 0; s < n_shards; s++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%02d.tar", dir, s);
        mc_tar_writer w;
        if (mc_tar_writer_open(&w, path, &e)) mc_test_fatal("%s", e.msg);
        for (int k = 0; k < per_shard; k++) {
            int bad = mc_test_dr_is_bad(k, bad_every) ? 1 + (k / (bad_every ? bad_every : 1)) % 3 : 0;
            char ipath[512], key[32], txt[128], syn[1024];
            snprintf(ipath, sizeof ipath, "%s/bicubic/%s", MC_TEST_DATA_DIR, images[(k + s) % 6]);
            size_t ilen;
            unsigned char *img = mc_test_read(ipath, &ilen);
            mc_image im;
            if (mc_image_decode(img, ilen, ipath, &im, &e)) mc_test_fatal("%s", e.msg);
            if (bad == 1) memset(img + 8, 0x5a, ilen - 8 > 64 ? 64 : ilen - 8); /* header kept, IHDR broken */
            snprintf(key, sizeof key, "s%02d_%04d", s, k);
            snprintf(txt, sizeof txt, "a photo number %d of shard %d", k, s);
            int at = snprintf(syn, sizeof syn, "{\"syn_text\": [");
            for (int j = 0; j < MC_TEST_DR_N_SYN; j++)
                at += snprintf(syn + at, sizeof syn - at, "%s\"synthetic caption %d of sample %d %d\"", j ? ", " : "", j, s, k);
            snprintf(syn + at, sizeof syn - at, "]}");
            mc_rng rng;
            mc_rng_init(&rng, 1234, (uint64_t)(s * 100000 + k));
            mc_augment_params p[MC_TEST_DR_N_AUG];
            for (int a = 0; a < MC_TEST_DR_N_AUG; a++)
                if (mc_augment_sample(&rng, &acfg, im.w, im.h, &p[a], &e)) mc_test_fatal("%s", e.msg);
            mc_image_free(&im);
            char *paug;
            size_t plen;
            if (mc_augment_paug_write(&acfg, p, MC_TEST_DR_N_AUG, &paug, &plen, &e)) mc_test_fatal("%s", e.msg);
            int Dw = bad == 3 ? D + 2 : D;
            mc_dr_emb emb = {.dim = Dw, .n_image = MC_TEST_DR_N_AUG, .n_text = 1 + MC_TEST_DR_N_SYN};
            emb.image_emb = calloc((size_t)emb.n_image * Dw, sizeof(float));
            emb.text_emb = calloc((size_t)emb.n_text * Dw, sizeof(float));
            for (int a = 0; a < MC_TEST_DR_N_AUG; a++) teacher_row(emb.image_emb + (size_t)a * Dw, Dw / 2, 0.01f * (a + 1), &rng);
            teacher_row(emb.text_emb, Dw / 2, 0.5f, &rng);
            for (int j = 0; j < MC_TEST_DR_N_SYN; j++)
                teacher_row(emb.text_emb + (size_t)(1 + j) * Dw, Dw / 2, 0.01f * (j + 1) + 0.2f, &rng);
            unsigned char *npz;
            size_t nlen;
            if (mc_dr_encode_npz(&emb, &npz, &nlen, &e)) mc_test_fatal("%s", e.msg);
            mc_wds_member m[5] = {{"png", img, ilen}, {"txt", (unsigned char *)txt, strlen(txt)},
                                  {"paug.json", (unsigned char *)paug, plen}, {"npz", npz, nlen},
                                  {"syn.json", (unsigned char *)syn, strlen(syn)}};
            if (mc_wds_write_sample(&w, key, m, bad == 2 ? 4 : 5, &e)) mc_test_fatal("%s", e.msg);
            free(img);
            free(paug);
            free(npz);
            mc_dr_emb_free(&emb);
        }
        if (mc_tar_writer_finish(&w, &e)) mc_test_fatal("%s", e.msg);
    }
}
