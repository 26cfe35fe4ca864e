/* The experiment's configurations and random baseline (src/experiment/configs.c, random_init.c):
 * 1. Every built-in configuration parses into the same model as its file data/configs/NAME.json,
 *    students at 32 px with a 24-token context and teachers larger in every tower; the captioner
 *    (an open_clip CoCa configuration) parses as open_clip's schema.
 * 2. The random initialisation (the trainer's, train/init.h, whose rules test_train_init.c
 *    checks) is a function of the seed only, and the checkpoint it writes loads strictly through
 *    the public API with the configuration and gives finite, distinct unit embeddings.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mobileclip.h"
#include "common/files.h"
#include "common/test_util.h"
#include "experiment/configs.h"
#include "experiment/random_init.h"
#include "models/clip.h"
#include "models/openclip_config.h"

#define CONFIGS MC_TEST_DATA_DIR "/../../data/configs/"

static void check_configs(void) {
    printf("built-in configurations\n");
    CHECK(mc_builtin_configs_count == 5, "%d built-in configurations", mc_builtin_configs_count);
    int captioners = 0;
    for (int i = 0; i < mc_builtin_configs_count; i++) {
        const mc_builtin_config *b = &mc_builtin_configs[i];
        char path[512];
        snprintf(path, sizeof path, CONFIGS "%s.json", b->name);
        mc_clip_config a, f;
        mc_err e = {0};
        if (mc_builtin_config_is_captioner(b)) { /* an open_clip CoCa configuration, as `caption --arch` reads it */
            mc_oc_cfg oa, of;
            CHECK(mc_oc_cfg_parse((const char *)b->json, *b->size, b->name, &oa, &e) == 0, "%s: %s", b->name, e.msg);
            CHECK(mc_oc_cfg_load(path, &of, &e) == 0, "%s: %s", path, e.msg);
            CHECK(oa.has_multimodal && of.has_multimodal, "%s: a CoCa configuration", b->name);
            CHECK(mc_builtin_config_find(b->name) == b, "find %s", b->name);
            captioners++;
            continue;
        }
        CHECK(mc_builtin_config_parse(b, &a, &e) == 0, "%s: %s", b->name, e.msg);
        CHECK(mc_clip_config_load(path, &f, &e) == 0, "%s: %s", path, e.msg);
        CHECK(mc_clip_config_equal(&a, &f), "%s: built in = file", b->name);
        CHECK(mc_builtin_config_find(b->name) == b, "find %s", b->name);
        if (!strncmp(b->name, "fmnist_student", 14))
            CHECK(a.image_size == 32 && a.text.context_length == 24 && a.embed_dim == 64, "%s: small", b->name);
        else /* teachers: the student's input size (augmentations are reapplied at it), wider */
            CHECK(a.image_size == 32 && a.embed_dim == 128 && a.mci.nstages >= 3, "%s: teacher size", b->name);
    }
    CHECK(captioners == 1 && mc_builtin_config_find("fmnist_captioner"), "one captioner: fmnist_captioner");
    CHECK(mc_builtin_config_find("nope") == NULL, "unknown name");
}

static void check_init(const char *tmp) {
    printf("random initialisation\n");
    const mc_builtin_config *b = mc_builtin_config_find("fmnist_student_mct");
    mc_clip_config cfg;
    mc_err e = {0};
    CHECK(b && mc_builtin_config_parse(b, &cfg, &e) == 0, "parse: %s", e.msg);
    mc_clip c1, c2, c3;
    CHECK(mc_clip_init_config(&c1, &cfg, NULL, 1, 1, 0, &e) == 0 && mc_clip_init_config(&c2, &cfg, NULL, 1, 1, 0, &e) == 0 &&
              mc_clip_init_config(&c3, &cfg, NULL, 1, 1, 0, &e) == 0,
          "declare: %s", e.msg);
    mc_experiment_random_init(&c1.store, 11);
    mc_experiment_random_init(&c2.store, 11);
    mc_experiment_random_init(&c3.store, 12);
    CHECK(!memcmp(c1.store.data, c2.store.data, sizeof(float) * c1.store.total), "same seed, same values");
    size_t differ = 0;
    for (size_t k = 0; k < c1.store.total; k++) differ += c1.store.data[k] != c3.store.data[k];
    CHECK(differ > c1.store.total / 2, "another seed: %zu of %zu values differ", differ, c1.store.total);
    /* the rules themselves (the trainer's initialisation) are checked by test_train_init.c */
    mc_clip_free(&c1), mc_clip_free(&c2), mc_clip_free(&c3);

    /* the checkpoint loads strictly with the configuration and embeds */
    char ckpt[512], cfgp[512];
    snprintf(ckpt, sizeof ckpt, "%s/student.pt", tmp);
    snprintf(cfgp, sizeof cfgp, "%s/student.json", tmp);
    CHECK(mc_experiment_write_random_checkpoint(&cfg, 5, ckpt, &e) == 0, "write: %s", e.msg);
    CHECK(mc_builtin_config_save(b, cfgp, &e) == 0, "save config: %s", e.msg);
    size_t n1, n2;
    unsigned char *saved = mc_test_read(cfgp, &n1);
    CHECK(n1 == *b->size && !memcmp(saved, b->json, n1), "saved configuration = built-in bytes");
    free(saved);
    mobileclip_params prm = mobileclip_default_params();
    prm.config_path = cfgp;
    prm.n_threads = 1;
    char err[512];
    mobileclip_ctx *ctx = mobileclip_init_from_file(ckpt, &prm, err, sizeof err);
    CHECK(ctx != NULL, "load: %s", err);
    if (!ctx) return;
    CHECK(mobileclip_image_size(ctx) == 32 && mobileclip_embed_dim(ctx) == 64 && mobileclip_context_length(ctx) == 24,
          "sizes from the configuration");
    float img[2 * 3 * 32 * 32], out[4 * 64];
    for (int k = 0; k < 2 * 3 * 32 * 32; k++) img[k] = (float)((k * 7919) % 1000) / 1000.0f; /* the two images differ */
    const char *texts[2] = {"a black cotton tee", "ankle boots, free shipping"};
    CHECK(mobileclip_encode_images(ctx, img, 2, out, 1) == 0 && mobileclip_encode_texts(ctx, texts, 2, out + 128, 1) == 0,
          "encode: %s", mobileclip_last_error(ctx));
    int finite = 1;
    double norm[4] = {0}, diff_i = 0, diff_t = 0;
    for (int r = 0; r < 4; r++)
        for (int k = 0; k < 64; k++) finite &= isfinite(out[r * 64 + k]), norm[r] += out[r * 64 + k] * out[r * 64 + k];
    for (int k = 0; k < 64; k++) diff_i += fabs(out[k] - out[64 + k]), diff_t += fabs(out[128 + k] - out[192 + k]);
    CHECK(finite && fabs(norm[0] - 1) < 1e-4 && fabs(norm[3] - 1) < 1e-4, "finite unit embeddings");
    CHECK(diff_i > 1e-3 && diff_t > 1e-3, "distinct inputs, distinct embeddings (%g, %g)", diff_i, diff_t);
    mobileclip_free(ctx);
    unsigned char *ck = mc_test_read(ckpt, &n2);
    free(ck);
    CHECK(n2 > 4 * 5000000, "checkpoint holds the float32 weights (%zu bytes)", n2);
}

int main(void) {
    const char *tmp = mc_test_tmpdir("mc_test_experiment");
    check_configs();
    check_init(tmp);
    return mc_test_finish("test_experiment");
}
