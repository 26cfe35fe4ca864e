/* ViT-B/16 image tower (mobileclip_b) in training mode (src/models/vit_train.c), weight rule of
 * shared/golden/b.params.tsv, parameters in one arena as the store lays them:
 *  1. eval mode: the training forward equals the inference forward (training form), at 64 px
 *     (16 patches: the positional table is resampled, so its backward is exercised too);
 *  2. train mode (stem BatchNorms with batch statistics) at 32 px: the whole tower's backward
 *     on a few elements of the stem, positions, cls token, a layer, the final norm and the
 *     projection against finite differences (tolerances: tests/common/fd_check.h; the
 *     transformer layer itself is checked element-wise in test_train_text.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fd_check.h"
#include "common/param_arena.h"
#include "common/test_util.h"
#include "common/weight_rule.h"
#include "models/vit_train.h"

#define PREFIX "image_encoder.model."
#define TOWER_TOL 3e-2
#define TOWER_H 1e-2f /* measured: h = 3e-3 gives 1.5e-2 (rounding noise), 1e-2 well below */
#define TOWER_FLOOR 0.3 /* gradients below it compared absolutely (rounding noise, see test_train_mci.c) */

static mc_tensor_map WM;
static mc_grad_map GM;

static uint64_t rng_state = 0x5851f42d4c957f2dull;
static float *rand_images(size_t n) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
        p[i] = (float)((rng_state >> 40) * (1.0 / 16777216.0));
    }
    return p;
}

typedef struct tower_case {
    const mc_vit *m;
    mc_vit_train_state st;
    mc_tape tape, work;
    mc_train_ctx c;
    const float *images;
    int B, R;
    float *r;
} tower_case;

static void tower_alloc(tower_case *t, const mc_vit *m, int B, int R, int train) {
    mc_err e = {0};
    size_t nt, nw;
    if (mc_vit_train_sizes(m, B, R, NULL, &nt, &nw, &e)) mc_test_fatal("%s", e.msg);
    t->m = m, t->B = B, t->R = R;
    t->tape = (mc_tape){malloc(nt * sizeof(float)), nt, 0, 0, 0};
    t->work = (mc_tape){malloc(nw * sizeof(float)), nw, 0, 0, 0};
    if (!t->tape.base || !t->work.base) mc_test_fatal("out of memory");
    t->c = (mc_train_ctx){.tape = &t->tape, .work = &t->work, .grads = &GM, .train = train, .bn_momentum = 0.1f};
    if (mc_vit_train_state_init(&t->st, m, &e)) mc_test_fatal("%s", e.msg);
}
static void tower_free(tower_case *t) {
    free(t->tape.base);
    free(t->work.base);
    mc_vit_train_state_free(&t->st);
}
static double tower_loss(void *p) {
    tower_case *t = p;
    mc_err e = {0};
    mc_tape_reset(&t->tape);
    mc_tape_reset(&t->work);
    if (mc_vit_train_forward(&t->c, t->m, &t->st, t->images, t->B, t->R, &e)) mc_test_fatal("%s", e.msg);
    return mc_fd_dot(t->st.embed, t->r, (size_t)t->B * t->m->proj_dim);
}

int main(void) {
    const char *archs = getenv("MC_TEST_ARCHS"); /* CI's sanitizer pass runs s0 only */
    if (archs && *archs && !strstr(archs, "b")) {
        printf("  skipped: MC_TEST_ARCHS=%s has no b\n", archs);
        return mc_test_finish("train_vit");
    }
    mc_err e = {0};
    mc_tensor_map_init(&WM);
    if (mc_weights_from_tsv_prefix(mc_test_path("golden/b.params.tsv"), "image_encoder.", &WM, NULL, &e))
        mc_test_fatal("%s", e.msg);
    mc_test_param_arena(&WM, &GM);
    mc_vit *m = NULL;
    if (mc_vit_init(&m, &WM, &e)) mc_test_fatal("%s", e.msg);

    /* 1. eval parity at 64 px */
    {
        enum { B = 1, R = 64 };
        float *images = rand_images((size_t)B * 3 * R * R), *ref = malloc(sizeof(float) * B * m->proj_dim);
        tower_case t;
        tower_alloc(&t, m, B, R, 0);
        CHECK(mc_vit_train_forward(&t.c, m, &t.st, images, B, R, &e) == 0, "eval forward: %s", e.msg);
        CHECK(mc_vit_forward(m, images, B, R, 0, ref, NULL, &e) == 0, "inference forward: %s", e.msg);
        double d = 0, q = 0;
        for (int i = 0; i < B * m->proj_dim; i++) d += pow(t.st.embed[i] - ref[i], 2), q += (double)ref[i] * ref[i];
        d = sqrt(d / q);
        printf("  ViT eval-mode training forward vs inference forward (R=%d, %d patches): rel-L2 %.2e\n", R,
               t.st.P, d);
        CHECK(d < 1e-5, "ViT eval-mode training forward differs from the inference forward: %g", d);
        tower_free(&t);
        free(images);
        free(ref);
    }
    /* 2. train-mode tower backward at 32 px */
    {
        enum { B = 1, R = 32 };
        tower_case t;
        tower_alloc(&t, m, B, R, 1);
        float *images = rand_images((size_t)B * 3 * R * R);
        t.images = images;
        t.r = rand_images((size_t)B * m->proj_dim);
        for (int i = 0; i < B * m->proj_dim; i++) t.r[i] = 2.f * t.r[i] - 1.f;
        memset(GM.grad, 0, GM.n * sizeof(float));
        tower_loss(&t);
        CHECK(mc_vit_train_backward(&t.c, m, &t.st, t.r, &e) == 0, "backward: %s", e.msg);
        mc_fd_opts fo = {TOWER_H, TOWER_TOL, TOWER_FLOOR, NULL};
        static const char *names[] = {PREFIX "patch_emb.0.block.conv.weight", PREFIX "patch_emb.1.block.norm.weight",
                                      PREFIX "patch_emb.2.block.conv.bias", PREFIX "cls_token",
                                      PREFIX "transformer.3.pre_norm_ffn.1.weight", PREFIX "post_transformer_norm.bias",
                                      PREFIX "classifier.proj"};
        double worst = mc_fd_check_names(&fo, &t, tower_loss, mc_fd_find_map, &WM, &GM, names, sizeof names / sizeof *names, 2,
                                         "ViT tower");
        /* 2x2 patches read rows 24, 73, 122, 171 of the 196 positions: row 73 */
        size_t width = (size_t)m->width;
        worst = fmax(worst, mc_fd_check_slice(&fo, &t, tower_loss, mc_fd_find_map, &WM, &GM, PREFIX "pos_embed.pos_embed.pos_embed",
                                              73 * width, width, 2, "ViT tower"));
        printf("  ViT train-mode tower B=%d R=%d, %zu parameters: worst fd rel err %.2e\n", B, R,
               sizeof names / sizeof *names + 1, worst);
        tower_free(&t);
        free(images);
        free(t.r);
    }
    mc_vit_free(m);
    mc_tensor_map_free(&WM);
    return mc_test_finish("train_vit");
}
