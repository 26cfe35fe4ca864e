/* ViT-B/16 image tower of mobileclip_b against the golden reference: both images in one batch,
 * training form and reparameterized form, every trace tensor of image 0; binding errors and
 * bad input sizes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/test_util.h"
#include "common/weight_rule.h"
#include "models/vit.h"

#define REL_TOL 1e-4
#define COS_MIN 0.99999

static void expect_init_error(mc_tensor_map *w, const char *what, const char *name) {
    mc_vit *v = NULL;
    mc_err e = {0};
    int r = mc_vit_init(&v, w, &e);
    CHECK(r == MC_E_MODEL && v == NULL, "%s: init returned %d", what, r);
    CHECK(strstr(e.msg, name) != NULL, "%s: message does not name %s: %s", what, name, e.msg);
    printf("     %s -> %s\n", what, e.msg);
    mc_vit_free(v);
}

static void check_errors(mc_tensor_map *w) {
    const char *names[] = {"image_encoder.model.transformer.7.pre_norm_ffn.4.bias",
                           "image_encoder.model.patch_emb.1.block.norm.running_mean", "image_encoder.model.cls_token",
                           "image_encoder.model.classifier.proj"};
    mc_tensor_map empty;
    mc_tensor_map_init(&empty);
    CHECK(!mc_vit_detect(&empty), "detect on an empty map");
    mc_tensor_map_free(&empty);
    for (int i = 0; i < 4; i++) {
        mc_named_tensor *t = mc_test_entry(w, names[i]);
        t->name[0] = 'X';
        expect_init_error(w, "missing tensor", names[i]);
        t->name[0] = 'i';
    }
    const char *shaped[] = {"image_encoder.model.post_transformer_norm.weight",
                            "image_encoder.model.transformer.11.pre_norm_mha.1.out_proj.weight",
                            "image_encoder.model.patch_emb.2.block.conv.bias"};
    for (int i = 0; i < 3; i++) {
        mc_named_tensor *t = mc_test_entry(w, shaped[i]);
        t->t.shape[0]--;
        expect_init_error(w, "mis-shaped tensor", shaped[i]);
        t->t.shape[0]++;
    }
    mc_err e = {0};
    mc_tensor extra = mc_test_entry(w, "image_encoder.model.post_transformer_norm.bias")->t;
    if (mc_tensor_map_add(w, "image_encoder.model.transformer.3.layer_scale", &extra, &e)) mc_test_fatal("%s", e.msg);
    expect_init_error(w, "unexpected tensor", "image_encoder.model.transformer.3.layer_scale");
    mc_test_entry(w, "image_encoder.model.transformer.3.layer_scale")->name[0] = 'X';
}

int main(void) {
    mc_tensor_map w, g;
    mc_err e = {0};
    double t0 = mc_test_now();
    mc_tensor_map_init(&w);
    if (mc_weights_from_tsv_prefix(mc_test_path("golden/b.params.tsv"), "image_encoder.", &w, NULL, &e))
        mc_test_fatal("%s", e.msg);
    mc_test_load_golden("golden/b.golden.safetensors", &g, NULL);
    double t1 = mc_test_now();

    CHECK(mc_vit_detect(&w), "detect");
    mc_vit *v = NULL;
    if (mc_vit_init(&v, &w, &e)) mc_test_fatal("init: %s", e.msg);
    CHECK(v->width == 768 && v->depth == 12 && v->heads == 12 && v->stem_dim == 192 && v->n_pos == 196 &&
              v->k[0] * v->k[1] * v->k[2] == 16 && v->proj_dim == 512,
          "geometry");

    const mc_tensor *img = mc_test_tensor(&g, "input.image");
    int B = (int)img->shape[0], R = (int)img->shape[2];
    float *images = malloc(sizeof(float) * mc_tensor_numel(img));
    mc_tensor_to_f32(img, images);
    float *embed = malloc(sizeof(float) * B * 512);

    mc_test_trace ctx = {.golden = &g, .label = "b", .prefix = "trace.image.", .row = 0, .rel_tol = REL_TOL};
    mc_trace tr = {mc_test_on_trace, &ctx};
    double t2 = mc_test_now();
    int r = mc_vit_forward(v, images, B, R, 0, embed, &tr, &e);
    double t3 = mc_test_now();
    CHECK(r == 0, "forward: %s", e.msg);
    mc_test_compare_rows("b output.image_embed", embed, mc_test_tensor(&g, "output.image_embed"), REL_TOL, COS_MIN);
    int n_golden = 0;
    for (int i = 0; i < g.count; i++) n_golden += strncmp(g.items[i].name, "trace.image.", 12) == 0;
    CHECK(ctx.seen == n_golden && n_golden == 17, "%d of %d trace tensors compared", ctx.seen, n_golden);

    CHECK(mc_vit_forward(v, images, B, R, 1, embed, NULL, &e) == MC_E_ARG, "reparameterized forward before reparameterize");
    CHECK(mc_vit_reparameterize(v, &e) == 0, "reparameterize: %s", e.msg);
    double t4 = mc_test_now();
    r = mc_vit_forward(v, images, B, R, 1, embed, NULL, &e);
    double t5 = mc_test_now();
    CHECK(r == 0, "reparameterized forward: %s", e.msg);
    mc_test_compare_rows("b output.image_embed_reparam", embed, mc_test_tensor(&g, "output.image_embed_reparam"), REL_TOL, COS_MIN);
    printf("b image: weights %.2fs, forward B=%d R=%d train %.3fs, reparameterized %.3fs\n", t1 - t0, B, R, t3 - t2, t5 - t4);

    /* an input smaller than one patch is refused */
    r = mc_vit_forward(v, images, 1, 8, 0, embed, NULL, &e);
    CHECK(r == MC_E_ARG, "R=8 accepted (%d)", r);
    printf("     R=8 -> %s\n", e.msg);
    /* another resolution resamples the 196 positions along the sequence (R=240: 15x15 = 225
     * patches); its output must stay finite and close in direction to the 224 one */
    float *img240 = calloc((size_t)3 * 240 * 240, sizeof(float));
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 240; y++)
            for (int x = 0; x < 240; x++)
                img240[((size_t)c * 240 + y) * 240 + x] = images[((size_t)c * R + y * R / 240) * R + x * R / 240];
    float e240[512];
    r = mc_vit_forward(v, img240, 1, 240, 1, e240, NULL, &e);
    CHECK(r == 0, "R=240: %s", e.msg);
    double cs = mc_test_cosine(e240, embed, 512);
    int finite = 1;
    for (int i = 0; i < 512; i++) finite &= isfinite(e240[i]);
    CHECK(finite && cs > 0.5, "R=240 embedding: finite %d, cosine with R=224 %.4f", finite, cs);
    printf("     R=240 (225 patches) cosine with R=224: %.4f\n", cs);
    free(img240);

    mc_vit_free(v);
    check_errors(&w);
    free(images);
    free(embed);
    mc_tensor_map_free(&w);
    mc_tensor_map_free(&g);
    return mc_test_finish("vit");
}
