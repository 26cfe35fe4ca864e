/* Teacher ensemble: three teachers (open_clip ViT-B-16 with QuickGELU from a .pt; a small
 * open_clip model of a JSON config, 64 px, its own mean/std, from safetensors; MobileCLIP s0 from
 * a .pt) embed two photos and three texts. Every block of a row must be the normalised features
 * of its teacher (the goldens shared/golden/teacher_vit and shared/golden/s0; for the small model
 * the model run directly), in teacher order, unit norm. The augmented-image path (a 224 x 224
 * crop) must give the same ViT-B-16 block. Bad teachers fail with clear errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/test_util.h"
#include "common/weight_rule.h"
#include "image/preprocess.h"
#include "io/safetensors.h"
#include "io/torch_writer.h"
#include "reinforce/teacher.h"

static char tmpdir[] = "/tmp/mc_test_teacher_XXXXXX";

static const char *tmp(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* A small open_clip model: GELU, 64 px input (patch 16: 17 tokens), width 64, 2 layers, its own
 * normalisation. Weights by the weight rule over the declared parameters. */
static const char small_cfg[] =
    "{\"embed_dim\": 96, \"vision_cfg\": {\"image_size\": 64, \"layers\": 2, \"width\": 64, \"head_width\": 32, "
    "\"patch_size\": 16}, \"text_cfg\": {\"context_length\": 77, \"vocab_size\": 49408, \"width\": 64, "
    "\"heads\": 4, \"layers\": 2}, \"preprocess_cfg\": {\"mean\": [0.5, 0.4, 0.3], \"std\": [0.2, 0.25, 0.3]}}";

static void write_small(const char *json_path, const char *out) {
    FILE *f = fopen(json_path, "w");
    if (!f || fputs(small_cfg, f) < 0 || fclose(f)) mc_test_fatal("cannot write %s", json_path);
    mc_oc_cfg cfg;
    mc_openclip m;
    mc_err e = {0};
    if (mc_oc_cfg_load(json_path, &cfg, &e) || mc_openclip_init_declared(&m, &cfg, &e)) mc_test_fatal("%s", e.msg);
    for (int i = 0; i < m.weights.count; i++) {
        mc_named_tensor *t = &m.weights.items[i];
        float *v = (float *)t->t.data;
        int ln = strstr(t->name, "ln_") && strstr(t->name, ".weight");
        uint64_t h = mc_fnv1a64(t->name);
        for (int64_t j = 0; j < mc_tensor_numel(&t->t); j++)
            v[j] = ln ? mc_weight_rule_value(h, (uint64_t)j, 0.5, 1.5) : mc_weight_rule_value(h, (uint64_t)j, -0.2, 0.2);
    }
    if (mc_safetensors_save(out, &m.weights, &e)) mc_test_fatal("%s", e.msg);
    mc_openclip_free(&m);
}

static void write_weights(const char *tsv, const char *out, int safetensors) {
    mc_tensor_map w;
    mc_err e = {0};
    mc_tensor_map_init(&w);
    if (mc_weights_from_tsv(mc_test_path(tsv), &w, NULL, &e)) mc_test_fatal("%s", e.msg);
    int r = safetensors ? mc_safetensors_save(out, &w, &e) : mc_torch_save(out, &w, &e);
    if (r) mc_test_fatal("%s", e.msg);
    mc_tensor_map_free(&w);
}

/* normalised rows of a golden [rows, d] tensor */
static float *normalised(const mc_tensor *t) {
    int64_t n = mc_tensor_numel(t);
    float *v = malloc(sizeof(float) * (size_t)n);
    mc_tensor_to_f32(t, v);
    int64_t d = t->shape[1];
    for (int64_t r = 0; r < t->shape[0]; r++) {
        double s = 0;
        for (int64_t j = 0; j < d; j++) s += (double)v[r * d + j] * v[r * d + j];
        for (int64_t j = 0; j < d; j++) v[r * d + j] = (float)(v[r * d + j] / sqrt(s));
    }
    return v;
}

/* block [off, off + d) of row `row` of out (stride ld) against ref row rrow: max abs diff */
static double block_diff(const float *out, int ld, int row, int off, const float *ref, int rrow, int d) {
    double m = 0;
    for (int j = 0; j < d; j++) m = fmax(m, fabs((double)out[(size_t)row * ld + off + j] - ref[(size_t)rrow * d + j]));
    return m;
}

static double block_norm(const float *out, int ld, int row, int off, int d) {
    double s = 0;
    for (int j = 0; j < d; j++) s += (double)out[(size_t)row * ld + off + j] * out[(size_t)row * ld + off + j];
    return sqrt(s);
}

int main(void) {
    if (!mkdtemp(tmpdir)) mc_test_fatal("mkdtemp");
    mc_err e = {0};
    write_weights("golden/teacher_vit/vit_b16.params.tsv", tmp("vitb16.pt"), 0);
    write_small(tmp("small.json"), tmp("small.safetensors"));
    write_weights("golden/s0.params.tsv", tmp("s0.pt"), 0);

    mc_teacher_ensemble ens;
    mc_teacher_ensemble_init(&ens);
    char spec[3][600];
    snprintf(spec[0], sizeof spec[0], "%s:ViT-B-16-quickgelu", tmp("vitb16.pt"));
    snprintf(spec[1], sizeof spec[1], "%s:%s", tmp("small.safetensors"), tmp("small.json"));
    snprintf(spec[2], sizeof spec[2], "%s:s0", tmp("s0.pt"));
    double t0 = mc_test_now();
    for (int i = 0; i < 3; i++)
        if (mc_teacher_ensemble_add_spec(&ens, spec[i], &e)) mc_test_fatal("teacher %d: %s", i, e.msg);
    printf("     3 teachers loaded in %.2fs\n", mc_test_now() - t0);
    enum { D = 512 + 96 + 512 };
    const int dims[3] = {512, 96, 512};
    CHECK(ens.count == 3 && ens.dim == D && mc_teacher_ensemble_offset(&ens, 1) == 512 &&
              mc_teacher_ensemble_offset(&ens, 2) == 608,
          "ensemble geometry");
    CHECK(ens.teachers[0].kind == MC_TEACHER_OPENCLIP && ens.teachers[1].image_size == 64 &&
              ens.teachers[2].kind == MC_TEACHER_MOBILECLIP && ens.teachers[2].image_size == 256,
          "teacher kinds");

    mc_tensor_map gv, gs;
    mc_test_load_golden("golden/teacher_vit/vit_b16.golden.safetensors", &gv, NULL);
    mc_test_load_golden("golden/s0.golden.safetensors", &gs, NULL);
    /* references: the normalised golden features of each teacher */
    float *ref_img[3] = {normalised(mc_test_tensor(&gv, "quickgelu.image_features")), NULL,
                         normalised(mc_test_tensor(&gs, "output.image_embed_reparam"))};
    float *ref_txt[3] = {normalised(mc_test_tensor(&gv, "quickgelu.text_features")), NULL, NULL};

    /* images: astronaut, chelsea (teacher_vit order; s0's golden has chelsea first) */
    mc_image im[2] = {{0}};
    const char *files[2] = {"images/astronaut.png", "images/chelsea.png"};
    for (int i = 0; i < 2; i++)
        if (mc_image_load(mc_test_path(files[i]), &im[i], &e)) mc_test_fatal("%s", e.msg);
    /* the small model run directly: its own preprocessing (bicubic to 64, its mean/std) */
    mc_tokenizer *tok = mc_tokenizer_load(mc_test_path("vocab/bpe_simple_vocab_16e6.txt.gz"), &e);
    if (!tok) mc_test_fatal("%s", e.msg);
    const char *texts[3] = {"a photo of an astronaut", "a tabby cat with green eyes",
                            "Espresso in a red cup, on a wooden table (top view)!"};
    int32_t ids[3 * 77];
    for (int i = 0; i < 3; i++) mc_tokenizer_encode(tok, texts[i], strlen(texts[i]), ids + i * 77, &e);
    {
        mc_oc_cfg cfg;
        mc_openclip m;
        if (mc_oc_cfg_load(tmp("small.json"), &cfg, &e) || mc_openclip_load(&m, tmp("small.safetensors"), &cfg, &e))
            mc_test_fatal("%s", e.msg);
        CHECK(m.cfg.mean[1] == 0.4f && m.cfg.std[2] == 0.3f && m.text->out_dim == 96, "small config");
        float chw[2 * 3 * 64 * 64];
        for (int i = 0; i < 2; i++) CHECK(mc_openclip_preprocess(&cfg, &im[i], chw + i * 3 * 64 * 64, &e) == 0, "%s", e.msg);
        ref_img[1] = malloc(sizeof(float) * 2 * 96);
        ref_txt[1] = malloc(sizeof(float) * 3 * 96);
        CHECK(mc_openclip_encode_image(&m, chw, 2, ref_img[1], NULL, &e) == 0, "%s", e.msg);
        CHECK(mc_openclip_encode_text(&m, ids, 3, ref_txt[1], NULL, &e) == 0, "%s", e.msg);
        mc_tensor ti = {.ndim = 2, .shape = {2, 96}, .stride = {96, 1}, .data = ref_img[1]};
        mc_tensor tt = {.ndim = 2, .shape = {3, 96}, .stride = {96, 1}, .data = ref_txt[1]};
        float *a = normalised(&ti), *b = normalised(&tt);
        free(ref_img[1]);
        free(ref_txt[1]);
        ref_img[1] = a;
        ref_txt[1] = b;
        mc_openclip_free(&m);
    }
    float *out = malloc(sizeof(float) * 2 * D), *out_aug = malloc(sizeof(float) * 2 * D);
    t0 = mc_test_now();
    CHECK(mc_teacher_ensemble_embed_images(&ens, im, 2, out, &e) == 0, "embed images: %s", e.msg);
    printf("     2 images x 3 teachers in %.2fs\n", mc_test_now() - t0);
    const int s0_row[2] = {1, 0};
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 3; k++) {
            int off = mc_teacher_ensemble_offset(&ens, k);
            double d = block_diff(out, D, i, off, ref_img[k], k == 2 ? s0_row[i] : i, dims[k]);
            double nrm = block_norm(out, D, i, off, dims[k]);
            int ok = d < 2e-5 && fabs(nrm - 1) < 1e-5;
            printf("%-4s image %d teacher %d block [%4d,%4d): max abs diff %.2e from the reference, norm %.7f\n",
                   ok ? "ok" : "FAIL", i, k, off, off + dims[k], d, nrm);
            CHECK(ok, "image %d teacher %d: diff %.3e norm %.7f", i, k, d, nrm);
        }
    /* the DR path: an augmented 224 x 224 crop goes through ToTensor + Normalize only (open_clip
     * teachers), so the crop of the eval transform gives the same blocks */
    mc_image crop[2] = {{0}};
    for (int i = 0; i < 2; i++)
        CHECK(mc_image_eval_crop_u8(&im[i], 224, MC_RESAMPLE_BICUBIC, &crop[i], &e) == 0, "%s", e.msg);
    CHECK(mc_teacher_ensemble_embed_images(&ens, crop, 2, out_aug, &e) == 0, "embed crops: %s", e.msg);
    int same = 1;
    for (int i = 0; i < 2; i++) same &= memcmp(out + i * D, out_aug + i * D, sizeof(float) * 512) == 0;
    CHECK(same, "224 x 224 crops give other open_clip blocks than the photos");
    printf("%-4s augmented 224x224 crops: ViT-B-16 blocks identical to the photos'\n", same ? "ok" : "FAIL");

    /* texts */
    float *tout = malloc(sizeof(float) * 3 * D);
    CHECK(mc_teacher_ensemble_embed_texts(&ens, tok, texts, 3, tout, &e) == 0, "embed texts: %s", e.msg);
    /* the MobileCLIP block: the teacher's own text embedding, normalised in double */
    float *s0t = malloc(sizeof(float) * 3 * 512);
    CHECK(mc_teacher_encode_tokens(&ens.teachers[2], ids, 3, s0t, &e) == 0, "%s", e.msg);
    for (int i = 0; i < 3; i++) {
        double s = 0;
        for (int j = 0; j < 512; j++) s += (double)s0t[i * 512 + j] * s0t[i * 512 + j];
        for (int j = 0; j < 512; j++) s0t[i * 512 + j] = (float)(s0t[i * 512 + j] / sqrt(s));
    }
    ref_txt[2] = s0t;
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 3; k++) {
            int off = mc_teacher_ensemble_offset(&ens, k);
            double d = block_diff(tout, D, i, off, ref_txt[k], i, dims[k]);
            double nrm = block_norm(tout, D, i, off, dims[k]);
            int ok = d < 2e-5 && fabs(nrm - 1) < 1e-5;
            printf("%-4s text %d teacher %d: max abs diff %.2e, norm %.7f\n", ok ? "ok" : "FAIL", i, k, d, nrm);
            CHECK(ok, "text %d teacher %d: diff %.3e norm %.7f", i, k, d, nrm);
        }
    const char *bad_text[1] = {"\xff\xfe not utf-8"};
    CHECK(mc_teacher_ensemble_embed_texts(&ens, tok, bad_text, 1, tout, &e) < 0 && strstr(e.msg, "text 0"),
          "invalid UTF-8: %s", e.msg);
    printf("     invalid UTF-8 -> %s\n", e.msg);

    /* bad teachers */
    static const struct {
        const char *spec, *needle;
    } bad[] = {
        {"no-colon", "FILE:ARCH"},
        {"/nonexistent/teacher.pt:ViT-L-14", "/nonexistent/teacher.pt"},
        {"X:ViT-X-99", "unknown architecture 'ViT-X-99'"},
    };
    mc_teacher_ensemble one;
    mc_teacher_ensemble_init(&one);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        mc_err_clear(&e);
        CHECK(mc_teacher_ensemble_add_spec(&one, bad[i].spec, &e) < 0 && strstr(e.msg, bad[i].needle), "'%s': %s",
              bad[i].spec, e.msg);
        printf("     %-34s -> %s\n", bad[i].spec, e.msg);
    }
    char s[3][600];
    snprintf(s[0], sizeof s[0], "%s:ViT-L-14", tmp("s0.pt"));          /* MobileCLIP given as open_clip */
    snprintf(s[1], sizeof s[1], "%s:ViT-L-14", tmp("vitb16.pt"));      /* wrong size */
    snprintf(s[2], sizeof s[2], "%s:s0", tmp("small.safetensors"));    /* open_clip given as MobileCLIP */
    const char *needles[3] = {"MobileCLIP checkpoint", "visual.class_embedding", "image_encoder"};
    for (int i = 0; i < 3; i++) {
        mc_err_clear(&e);
        CHECK(mc_teacher_ensemble_add_spec(&one, s[i], &e) == MC_E_MODEL && strstr(e.msg, needles[i]), "'%s': %s",
              s[i], e.msg);
        printf("     %-34s -> %s\n", strrchr(s[i], '/') + 1, e.msg);
    }
    CHECK(one.count == 0 && one.dim == 0, "failed adds left teachers behind");
    CHECK(mc_teacher_ensemble_embed_images(&one, im, 2, out, &e) == MC_E_ARG, "empty ensemble");
    mc_teacher_ensemble_free(&one);

    for (int i = 0; i < 2; i++) {
        mc_image_free(&im[i]);
        mc_image_free(&crop[i]);
    }
    for (int k = 0; k < 3; k++) free(ref_img[k]);
    for (int k = 0; k < 3; k++) free(ref_txt[k]);
    free(out);
    free(out_aug);
    free(tout);
    mc_tokenizer_free(tok);
    mc_tensor_map_free(&gv);
    mc_tensor_map_free(&gs);
    mc_teacher_ensemble_free(&ens);
    const char *files_tmp[4] = {"vitb16.pt", "small.safetensors", "small.json", "s0.pt"};
    for (int i = 0; i < 4; i++) unlink(tmp(files_tmp[i]));
    rmdir(tmpdir);
    return mc_test_finish("teacher");
}
