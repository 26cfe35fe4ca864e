/* The training towers on a small custom configuration (tests/data/configs/tiny_mci.json: a
 * 3-stage MCi with mlp ratio 2.5, SE downsamplers, RepCPE + attention; a 1-layer MCt text tower
 * with 2 heads of 32 and a 16-token context; 64-d embedding), declared by the binders into the
 * parameter store (mc_clip_init_config without a checkpoint) and filled by the weight rule:
 *  - eval mode: the training forwards equal the inference forwards (training form);
 *  - train mode: both towers' backward against finite differences on sampled elements of
 *    parameters of every block kind (tolerances: tests/common/fd_check.h, test_train_mci.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fd_check.h"
#include "common/test_util.h"
#include "common/weight_rule.h"
#include "models/clip.h"
#include "models/config.h"
#include "models/mci_train.h"
#include "models/text_train.h"

#define TOWER_TOL 3e-2
#define TOWER_FLOOR 0.3
#define TOWER_H 3e-3f
enum { B = 2, R = 64, E = 64 };

static mc_clip C;
static mc_grad_map GM;
static mc_tape tape, work;
static mc_train_ctx ctx;
static mc_mci_train_state ist;
static mc_text_train_state tst;
static float images[B * 3 * R * R], rimg[B * E], rtxt[B * E];
static int32_t tokens[B * 16] = {49406, 320, 1125, 539, 320, 2368, 49407, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                 49406, 1929, 530, 1487, 1613, 269, 9937, 3306, 49407};

static double image_loss(void *p) {
    (void)p;
    mc_err e = {0};
    mc_tape_reset(&tape);
    mc_tape_reset(&work);
    if (mc_mci_train_forward(&ctx, C.mci, &ist, images, B, R, &e)) mc_test_fatal("%s", e.msg);
    return mc_fd_dot(ist.embed, rimg, B * E);
}
static double text_loss(void *p) {
    (void)p;
    mc_err e = {0};
    mc_tape_reset(&tape);
    mc_tape_reset(&work);
    if (mc_text_train_forward(&ctx, C.text, &tst, tokens, B, &e)) mc_test_fatal("%s", e.msg);
    return mc_fd_dot(tst.embed, rtxt, B * E);
}

int main(void) {
    mc_err e = {0};
    mc_clip_config cfg;
    char path[1024];
    snprintf(path, sizeof path, "%s/configs/tiny_mci.json", MC_TEST_DATA_DIR);
    if (mc_clip_config_load(path, &cfg, &e)) mc_test_fatal("%s", e.msg);
    if (mc_clip_init_config(&C, &cfg, NULL, 1, 1, 0, &e)) mc_test_fatal("tiny declare: %s", e.msg);
    mc_weight_rule_fill_store(&C.store);
    if (mc_clip_plan_build(&C, &e) || mc_param_store_alloc_grad(&C.store, &e)) mc_test_fatal("%s", e.msg);
    GM = (mc_grad_map){C.store.data, C.store.grad, C.store.total};
    CHECK(C.text->context == 16 && C.mci->embed_dim == E, "tiny shapes");

    size_t it = 0, iw = 0, tt = 0, tw = 0;
    if (mc_mci_train_sizes(C.mci, B, R, NULL, &it, &iw, &e) || mc_text_train_sizes(C.text, B, NULL, &tt, &tw, &e))
        mc_test_fatal("%s", e.msg);
    size_t nt = it > tt ? it : tt, nw = iw > tw ? iw : tw;
    tape = (mc_tape){malloc(nt * sizeof(float)), nt, 0, 0, 0};
    work = (mc_tape){malloc(nw * sizeof(float)), nw, 0, 0, 0};
    if (!tape.base || !work.base) mc_test_fatal("out of memory");
    if (mc_mci_train_state_init(&ist, C.mci, &e) || mc_text_train_state_init(&tst, C.text, &e)) mc_test_fatal("%s", e.msg);
    for (int b = 0; b < B; b++)
        for (int ch = 0; ch < 3; ch++)
            for (int y = 0; y < R; y++)
                for (int x = 0; x < R; x++)
                    images[((b * 3 + ch) * R + y) * R + x] = 0.5f + 0.5f * sinf(0.11f * (b + 1) * x + 0.07f * (2 - b) * y + ch);
    uint64_t seed = 77;
    float *r1 = mc_fd_rand(&seed, B * E), *r2 = mc_fd_rand(&seed, B * E);
    memcpy(rimg, r1, sizeof rimg);
    memcpy(rtxt, r2, sizeof rtxt);
    free(r1);
    free(r2);

    /* eval mode = inference training form */
    ctx = (mc_train_ctx){.tape = &tape, .work = &work, .grads = &GM, .train = 0, .bn_momentum = 0.1f};
    float ref[B * E];
    image_loss(NULL);
    CHECK(mc_mci_forward(C.mci, images, B, R, 0, ref, NULL, &e) == 0, "%s", e.msg);
    double di = mc_fd_rel_l2(ist.embed, ref, B * E);
    text_loss(NULL);
    CHECK(mc_text_encoder_forward(C.text, tokens, B, 0, ref, NULL, &e) == 0, "%s", e.msg);
    double dt = mc_fd_rel_l2(tst.embed, ref, B * E);
    printf("  tiny eval-mode training forward vs inference: image rel-L2 %.2e, text %.2e\n", di, dt);
    CHECK(di < 1e-5 && dt < 1e-5, "tiny eval-mode training forwards differ: %g %g", di, dt);

    /* train mode: backward of both towers against finite differences */
    ctx.train = 1;
    memset(C.store.grad, 0, C.store.total * sizeof(float));
    image_loss(NULL);
    CHECK(mc_mci_train_backward(&ctx, C.mci, &ist, rimg, &e) == 0, "%s", e.msg);
    double worst = 0;
    mc_fd_opts fo = {TOWER_H, TOWER_TOL, TOWER_FLOOR, NULL};
    static const char *inames[] = {"image_encoder.model.patch_embed.0.rbr_conv.0.conv.weight",
                                          "image_encoder.model.network.0.0.token_mixer.mixer.rbr_conv.0.conv.weight",
                                          "image_encoder.model.network.2.0.convffn.fc1.weight",
                                          "image_encoder.model.network.3.proj.0.se.fc1.weight",
                                          "image_encoder.model.network.4.pe.weight",
                                          "image_encoder.model.network.5.1.token_mixer.qkv.weight",
                                          "image_encoder.model.network.5.0.norm.weight",
                                          "image_encoder.model.conv_exp.se.reduce.weight",
                                          "image_encoder.model.head.proj"};
    worst = mc_fd_check_names(&fo, NULL, image_loss, mc_fd_find_store, &C.store, &GM, inames, sizeof inames / sizeof *inames, 3,
                                "tiny image tower");
    memset(C.store.grad, 0, C.store.total * sizeof(float));
    text_loss(NULL);
    CHECK(mc_text_train_backward(&ctx, C.text, &tst, rtxt, &e) == 0, "%s", e.msg);
    size_t width = (size_t)mc_param_store_find(&C.store, "text_encoder.embedding_layer.weight")->shape[1];
    static const char *tnames[] = {"text_encoder.positional_embedding.pos_embed.pos_embed",
                                   "text_encoder.transformer.0.token_mixer.mixer.rbr_conv.0.conv.weight",
                                   "text_encoder.transformer.1.pre_norm_mha.1.qkv_proj.weight",
                                   "text_encoder.transformer.2.convffn.fc2.weight",
                                   "text_encoder.final_layer_norm.weight", "text_encoder.projection_layer"};
    worst = fmax(worst, mc_fd_check_names(&fo, NULL, text_loss, mc_fd_find_store, &C.store, &GM, tnames,
                                          sizeof tnames / sizeof *tnames, 3, "tiny text tower"));
    worst = fmax(worst, mc_fd_check_slice(&fo, NULL, text_loss, mc_fd_find_store, &C.store, &GM, "text_encoder.embedding_layer.weight",
                                          320 * width, width, 3, "tiny text tower")); /* a token used twice */
    printf("  tiny train-mode towers: %zu parameters x 3 elements, worst fd rel err %.2e\n",
           sizeof inames / sizeof *inames + sizeof tnames / sizeof *tnames + 1, worst);

    mc_mci_train_state_free(&ist);
    mc_text_train_state_free(&tst);
    free(tape.base);
    free(work.base);
    mc_clip_free(&C);
    return mc_test_finish("train_tiny");
}
