/* MCi training-mode forward/backward (src/models/mci_train.c) on MobileCLIP-S0's image tower
 * (weight rule of shared/golden/s0.params.tsv, parameters in one arena as the store lays them):
 *  1. eval mode (running statistics): the training forward equals the existing inference
 *     forward (training form) and the golden embedding;
 *  2. train mode, golden first step (shared/golden/train): the image features of the
 *     reference's train-mode forward and every image-tower BatchNorm running statistic after it;
 *  3. train mode: every block kind's backward (input gradient and every parameter, sampled)
 *     against central finite differences of the float forward, on small inputs; and the
 *     whole tower's backward on a few parameters at R = 64.
 * Finite-difference tolerance (see tests/test_nn_grad.c for the error budget): a block sums
 * up to ~1e4 outputs through BatchNorm/GELU/attention, so the float forward's rounding gives
 * ~1e-5 absolute in L, i.e. ~5e-4 after dividing by 2h = 2e-2, against gradients of O(1);
 * the per-tensor error max |fd - analytic| / max |analytic| must stay below 1e-2. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fd_check.h"
#include "common/param_arena.h"
#include "common/test_util.h"
#include "common/weight_rule.h"
#include "models/mci_train.h"
#include "nn/layers.h"
#include "train/loss.h"

#define H_FD 1e-2f
#define TOL 1e-2
/* Gradients far below the loss's rounding noise (e.g. a depthwise 1x1 conv before a
 * training-mode BatchNorm, whose output is invariant to that weight's scale: the true
 * gradient is ~eps-sized) are compared absolutely: error <= TOL * GRAD_FLOOR = 1e-3. */
#define GRAD_FLOOR 0.1
/* The whole tower (R = 64, ~40 blocks) is a wiring check: a missing or misrouted gradient
 * path is an O(1) error; worst measured at h = 3e-3: 6e-3 (MCi0/1/2). */
#define TOWER_TOL 3e-2
#define TOWER_H 3e-3f
/* ... and its loss carries ~1e-5 of rounding noise, ~2e-3 after dividing by 2h: gradients
 * below 0.3 are compared absolutely (error <= TOWER_TOL * 0.3 = 9e-3) */
#define TOWER_FLOOR 0.3
#define PREFIX "image_encoder.model."

static mc_tensor_map WM;
static mc_grad_map GM;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float *rand_buf(size_t n) { return mc_fd_rand(&rng_state, n); }

/* ---------------------------------------------------------------- one block */

enum { K_MOBILEONE, K_REPMIXER, K_ATTENTION, K_PATCH_EMBED, K_REPCPE };

typedef struct blk_case {
    int kind;
    const void *blk;
    const char *prefix; /* parameters checked: every float tensor under it except running stats */
    int B, C, H, W;     /* input */
    float *x, *r;
    size_t nout;
    mc_tape tape, work;
    mc_train_ctx c;
    mc_rng rng;         /* re-seeded before every forward: the same drop-path draws each time */
    mc_mobileone_save s_mo;
    mc_repmixer_save s_rep;
    mc_attention_save s_att;
    mc_patch_embed_save s_pe;
} blk_case;

static const float *blk_forward(blk_case *k) {
    mc_tape_reset(&k->tape);
    mc_tape_reset(&k->work);
    k->rng = mc_rng_seed(1234);
    switch (k->kind) {
    case K_MOBILEONE: return mc_mci_mobileone_train_forward(&k->c, k->blk, &k->s_mo, k->x, k->B, k->H, k->W);
    case K_REPMIXER: return mc_mci_repmixer_train_forward(&k->c, k->blk, &k->s_rep, k->x, k->B, k->H, k->W);
    case K_ATTENTION: return mc_mci_attention_train_forward(&k->c, k->blk, &k->s_att, k->x, k->B, k->H, k->W);
    case K_PATCH_EMBED: return mc_mci_patch_embed_train_forward(&k->c, k->blk, &k->s_pe, k->x, k->B, k->H, k->W);
    default: return mc_mci_repcpe_train_forward(&k->c, k->blk, k->x, k->B, k->H, k->W);
    }
}

static void blk_backward(blk_case *k, float *dx, const float *dy) {
    switch (k->kind) {
    case K_MOBILEONE: mc_mci_mobileone_train_backward(&k->c, k->blk, &k->s_mo, dx, dy); break;
    case K_REPMIXER: mc_mci_repmixer_train_backward(&k->c, k->blk, &k->s_rep, dx, dy, k->B, k->H, k->W); break;
    case K_ATTENTION: mc_mci_attention_train_backward(&k->c, k->blk, &k->s_att, dx, dy, k->B, k->H, k->W); break;
    case K_PATCH_EMBED: mc_mci_patch_embed_train_backward(&k->c, k->blk, &k->s_pe, dx, dy, k->B); break;
    default: mc_mci_repcpe_train_backward(&k->c, k->blk, k->x, dx, dy, k->B, k->H, k->W); break;
    }
}

static uint64_t se_sig(const mc_se_save *se, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; se->h && i < n; i++) h = (h ^ (se->h[i] > 0.f)) * 1099511628211ull;
    return h;
}

static uint64_t blk_sig(void *p) {
    blk_case *k = p;
    if (k->kind == K_MOBILEONE && ((const mc_mci_mobileone *)k->blk)->has_se)
        return se_sig(&k->s_mo.se, (size_t)k->B * ((const mc_mci_mobileone *)k->blk)->se.rd);
    if (k->kind == K_PATCH_EMBED && ((const mc_mci_patch_embed *)k->blk)->has_se)
        return se_sig(&k->s_pe.se, (size_t)k->B * ((const mc_mci_patch_embed *)k->blk)->se.rd);
    return 0;
}

static double blk_loss(void *p) {
    blk_case *k = p;
    return mc_fd_dot(blk_forward(k), k->r, k->nout);
}


static void test_block_dp(const char *label, int kind, const void *blk, const char *prefix, int B, int C, int H, int W,
                          int Cout, int Ho, int Wo, float drop_path, float drop) {
    blk_case k = {.kind = kind, .blk = blk, .prefix = prefix, .B = B, .C = C, .H = H, .W = W};
    size_t nx = (size_t)B * C * H * W;
    k.nout = (size_t)B * Cout * Ho * Wo;
    k.x = rand_buf(nx);
    k.r = rand_buf(k.nout);
    k.c = (mc_train_ctx){.tape = &k.tape, .work = &k.work, .grads = &GM, .train = 1, .bn_momentum = 0.1f,
                         .rate = {.drop = drop, .drop_path = drop_path}, .rng = &k.rng};
    /* measure, then allocate exactly that */
    blk_forward(&k);
    blk_backward(&k, NULL, NULL);
    k.tape.base = malloc(k.tape.peak * sizeof(float));
    k.work.base = malloc(k.work.peak * sizeof(float));
    k.tape.cap = k.tape.peak, k.work.cap = k.work.peak;
    float *dx = calloc(nx, sizeof(float));
    memset(GM.grad, 0, GM.n * sizeof(float));
    blk_forward(&k);
    blk_backward(&k, dx, k.r);
    CHECK(!k.tape.overflow && !k.work.overflow, "%s: arenas overflowed after measuring", label);
    if (drop_path > 0.f && kind == K_REPMIXER) {
        /* a dropped sample's output is x1 (the FFN branch removed), a kept one x1 + 2 ls f */
        int dropped = 0, kept = 0;
        double err = 0;
        size_t per = (size_t)C * H * W;
        for (int b = 0; b < B; b++) {
            float kb = k.s_rep.keep[b];
            dropped += kb == 0.f, kept += kb == 2.f;
            for (size_t i = 0; i < per; i++) {
                size_t j = b * per + i;
                err = fmax(err, fabs(k.s_rep.out[j] - k.s_rep.x1[j] - ((const mc_mci_repmixer_block *)blk)->ls[i / (H * W)] *
                                                                         k.s_rep.ffn.out[j]));
                if (kb == 0.f) err = fmax(err, fabs(k.s_rep.out[j] - k.s_rep.x1[j]));
            }
        }
        CHECK(dropped > 0 && kept > 0 && dropped + kept == B && err < 1e-6, "%s: drop path %d dropped, %d kept, err %g",
              label, dropped, kept, err);
    }
    mc_fd_opts fo = {H_FD, TOL, GRAD_FLOOR, blk_sig};
    double worst = mc_fd_error(&fo, &k, blk_loss, k.x, dx, nx, 24);
    CHECK(worst < TOL, "%s: input gradient fd rel err %.3g", label, worst);
    mc_fd_check_params(&fo, &k, blk_loss, &WM, &GM, prefix, 6, label, worst);
    free(k.x); free(k.r); free(k.tape.base); free(k.work.base); free(dx);
}

static void test_block(const char *label, int kind, const void *blk, const char *prefix, int B, int C, int H, int W,
                       int Cout, int Ho, int Wo) {
    test_block_dp(label, kind, blk, prefix, B, C, H, W, Cout, Ho, Wo, 0.f, 0.f);
}

/* ---------------------------------------------------------------- whole tower */

typedef struct tower_case {
    const mc_mci *m;
    mc_mci_train_state st;
    mc_tape tape, work;
    mc_train_ctx c;
    const float *images;
    int B, R;
    float *r;
} tower_case;

static double tower_loss(void *p) {
    tower_case *t = p;
    mc_err e = {0};
    mc_tape_reset(&t->tape);
    mc_tape_reset(&t->work);
    if (mc_mci_train_forward(&t->c, t->m, &t->st, t->images, t->B, t->R, &e)) mc_test_fatal("%s", e.msg);
    return mc_fd_dot(t->st.embed, t->r, (size_t)t->B * t->m->embed_dim);
}

/* sign pattern of every squeeze-excite ReLU input of the last tower forward */
static uint64_t tower_sig(void *p) {
    tower_case *t = p;
    const mc_mci *m = t->m;
    uint64_t h = se_sig(&t->st.conv_exp.se, (size_t)t->B * m->conv_exp.se.rd);
    for (int k = 0; k < m->nelements; k++)
        if (m->net[k].kind == MC_MCI_PATCH_EMBED && m->net[k].pe.has_se)
            h = h * 31 + se_sig(&t->st.pe[k].se, (size_t)t->B * m->net[k].pe.se.rd);
    return h;
}

static void tower_alloc(tower_case *t, const mc_mci *m, int B, int R, int train) {
    mc_err e = {0};
    size_t nt, nw;
    if (mc_mci_train_sizes(m, B, R, NULL, &nt, &nw, &e)) mc_test_fatal("%s", e.msg);
    t->m = m, t->B = B, t->R = R;
    t->tape = (mc_tape){malloc(nt * sizeof(float)), nt, 0, 0, 0};
    t->work = (mc_tape){malloc(nw * sizeof(float)), nw, 0, 0, 0};
    if (!t->tape.base || !t->work.base) mc_test_fatal("out of memory for %zu + %zu floats", nt, nw);
    t->c = (mc_train_ctx){.tape = &t->tape, .work = &t->work, .grads = &GM, .train = train, .bn_momentum = 0.1f};
    if (mc_mci_train_state_init(&t->st, m, &e)) mc_test_fatal("%s", e.msg);
    printf("  B=%d R=%d: activation arena %.1f MB, backward work %.1f MB\n", B, R, nt * 4e-6, nw * 4e-6);
}

static void tower_free(tower_case *t) {
    free(t->tape.base);
    free(t->work.base);
    mc_mci_train_state_free(&t->st);
}

/* 1. eval mode = inference training form = golden */
static void test_eval_parity(const mc_mci *m) {
    mc_tensor_map g;
    mc_json *hdr = NULL;
    mc_test_load_golden("golden/s0.golden.safetensors", &g, &hdr);
    mc_json_free(hdr);
    const mc_tensor *in = mc_test_tensor(&g, "input.image");
    int B = (int)in->shape[0], R = (int)in->shape[3];
    float *images = malloc(sizeof(float) * (size_t)mc_tensor_numel(in)), *ref = malloc(sizeof(float) * B * 512);
    mc_tensor_to_f32(in, images);
    tower_case t;
    tower_alloc(&t, m, B, R, 0);
    mc_err e = {0};
    double t0 = mc_test_now();
    CHECK(mc_mci_train_forward(&t.c, m, &t.st, images, B, R, &e) == 0, "eval forward: %s", e.msg);
    double t1 = mc_test_now();
    CHECK(mc_mci_forward((mc_mci *)m, images, B, R, 0, ref, NULL, &e) == 0, "inference forward: %s", e.msg);
    double d = mc_fd_rel_l2(t.st.embed, ref, (size_t)B * 512);
    printf("  eval-mode training forward vs inference forward: rel-L2 %.2e (%.2f s)\n", d, t1 - t0);
    CHECK(d < 1e-6, "eval-mode training forward differs from the inference forward: %g", d);
    mc_test_compare_rows("s0 eval-mode training forward vs golden output.image_embed", t.st.embed,
                         mc_test_tensor(&g, "output.image_embed"), 1e-4, 0.99999);
    tower_free(&t);
    free(images);
    free(ref);
    mc_tensor_map_free(&g);
}

/* 2. golden train-mode forward: features and BatchNorm running statistics after one step */
static void test_golden_train_forward(const mc_mci *m) {
    mc_tensor_map g;
    mc_json *hdr = NULL;
    mc_test_load_golden("golden/train/s0_step.safetensors", &g, &hdr);
    mc_json_free(hdr);
    const mc_tensor *in = mc_test_tensor(&g, "input.images");
    int B = (int)in->shape[0], R = (int)in->shape[3];
    float *images = malloc(sizeof(float) * (size_t)mc_tensor_numel(in)), *feat = malloc(sizeof(float) * B * 512);
    mc_tensor_to_f32(in, images);
    /* keep the initial running statistics to restore them afterwards */
    float *saved = malloc(GM.n * sizeof(float));
    memcpy(saved, GM.data, GM.n * sizeof(float));
    tower_case t;
    tower_alloc(&t, m, B, R, 1);
    mc_err e = {0};
    double t0 = mc_test_now();
    CHECK(mc_mci_train_forward(&t.c, m, &t.st, images, B, R, &e) == 0, "train forward: %s", e.msg);
    double t1 = mc_test_now();
    printf("  S0 image tower B=%d R=%d train-mode forward %.2f s\n", B, R, t1 - t0);
    float *norm = malloc(B * sizeof(float));
    mc_l2_normalize_forward(feat, norm, t.st.embed, B, 512);
    mc_test_compare_rows("s0 train-mode image features vs golden fwd.image_features", feat,
                         mc_test_tensor(&g, "fwd.image_features"), 1e-4, 0.99999);
    /* every image-tower running statistic after one forward */
    double worst;
    char wname[200];
    int nbuf = mc_fd_running_stats(&WM, &g, "image_encoder.", &worst, wname, sizeof wname);
    printf("  %d image-tower BatchNorm running statistics after 1 step: worst rel-L2 %.2e (%s)\n", nbuf, worst, wname);
    CHECK(nbuf > 100 && worst < 1e-4, "running statistics: %d compared, worst rel-L2 %g (%s)", nbuf, worst, wname);
    memcpy((float *)GM.data, saved, GM.n * sizeof(float));
    tower_free(&t);
    free(images); free(feat); free(saved); free(norm);
    mc_tensor_map_free(&g);
}

/* 4. MCi1 / MCi2 (same block kinds, deeper / wider): eval-mode parity with the inference
 * forward and a train-mode step at R = 64 against finite differences on a few parameters. */
static void test_variant(int variant) {
    enum { B = 2, R = 64 };
    char rel[64];
    const char *archs = getenv("MC_TEST_ARCHS"); /* CI's sanitizer pass runs s0 only */
    snprintf(rel, sizeof rel, "s%d", variant);
    if (archs && *archs && !strstr(archs, rel)) return;
    mc_err e = {0};
    snprintf(rel, sizeof rel, "golden/s%d.params.tsv", variant);
    mc_tensor_map_init(&WM);
    if (mc_weights_from_tsv_prefix(mc_test_path(rel), "image_encoder.", &WM, NULL, &e)) mc_test_fatal("%s", e.msg);
    mc_test_param_arena(&WM, &GM);
    mc_mci *m = NULL;
    if (mc_mci_init(&m, &WM, variant, &e)) mc_test_fatal("%s", e.msg);
    float *images = rand_buf((size_t)B * 3 * R * R), *ref = malloc(sizeof(float) * B * m->embed_dim);
    for (int i = 0; i < B * 3 * R * R; i++) images[i] = 0.5f + 0.5f * images[i];
    tower_case t;
    tower_alloc(&t, m, B, R, 0);
    CHECK(mc_mci_train_forward(&t.c, m, &t.st, images, B, R, &e) == 0, "eval forward: %s", e.msg);
    CHECK(mc_mci_forward(m, images, B, R, 0, ref, NULL, &e) == 0, "inference forward: %s", e.msg);
    double d = mc_fd_rel_l2(t.st.embed, ref, (size_t)B * m->embed_dim);
    CHECK(d < 1e-6, "mci%d eval-mode training forward vs inference: %g", variant, d);
    t.c.train = 1;
    t.images = images;
    t.r = rand_buf((size_t)B * m->embed_dim);
    memset(GM.grad, 0, GM.n * sizeof(float));
    tower_loss(&t);
    CHECK(mc_mci_train_backward(&t.c, m, &t.st, t.r, &e) == 0, "backward: %s", e.msg);
    mc_fd_opts fo = {TOWER_H, TOWER_TOL, TOWER_FLOOR, tower_sig};
    static const char *names[] = {PREFIX "patch_embed.0.rbr_conv.0.conv.weight", PREFIX "network.2.3.layer_scale",
                                         PREFIX "network.7.2.token_mixer.proj.weight", PREFIX "head.proj"};
    char label[32];
    snprintf(label, sizeof label, "mci%d tower", variant);
    double worst = mc_fd_check_names(&fo, &t, tower_loss, mc_fd_find_map, &WM, &GM, names, sizeof names / sizeof *names, 2, label);
    printf("  mci%d B=%d R=%d: eval-mode vs inference rel-L2 %.2e; train-mode tower fd worst %.2e\n", variant, B, R, d,
           worst);
    tower_free(&t);
    free(images);
    free(ref);
    free(t.r);
    mc_mci_free(m);
    mc_tensor_map_free(&WM);
}

/* 5. errors: a tape smaller than the measured size, a reparameterized model, an absurd input size */
static void test_errors(mc_mci *m) {
    enum { B = 1, R = 64 };
    mc_err e = {0};
    size_t nt, nw;
    if (mc_mci_train_sizes(m, B, R, NULL, &nt, &nw, &e)) mc_test_fatal("%s", e.msg);
    mc_tape tape = {malloc(nt / 2 * sizeof(float)), nt / 2, 0, 0, 0}, work = {malloc(nw * sizeof(float)), nw, 0, 0, 0};
    mc_train_ctx c = {.tape = &tape, .work = &work, .grads = &GM, .train = 0, .bn_momentum = 0.1f};
    mc_mci_train_state st;
    if (mc_mci_train_state_init(&st, m, &e)) mc_test_fatal("%s", e.msg);
    float *images = calloc((size_t)B * 3 * R * R, sizeof(float));
    int r = mc_mci_train_forward(&c, m, &st, images, B, R, &e);
    CHECK(r == MC_E_NOMEM && strstr(e.msg, "too small"), "half-size tape: %d '%s'", r, e.msg);
    mc_tape_reset(&tape);
    r = mc_mci_train_forward(&c, m, &st, images, B, 8, &e);
    CHECK(r == MC_E_ARG, "R = 8: %d '%s'", r, e.msg);
    printf("  errors: '%s'\n", e.msg);
    mc_mci_train_state_free(&st);
    free(tape.base);
    free(work.base);
    free(images);
}

/* 3b. whole-tower backward at R = 64 against finite differences on a few parameters */
static void test_tower_fd(const mc_mci *m) {
    enum { B = 2, R = 64 };
    tower_case t;
    tower_alloc(&t, m, B, R, 1);
    float *images = rand_buf((size_t)B * 3 * R * R);
    for (int i = 0; i < B * 3 * R * R; i++) images[i] = 0.5f + 0.5f * images[i];
    t.images = images;
    t.r = rand_buf((size_t)B * m->embed_dim);
    mc_err e = {0};
    /* through ~40 nonlinear blocks the O(h^2) truncation term is ~1e-2 relative at h = 1e-2
     * on the stem weights (measured: 4.291 vs 4.349 at 1e-2, 4.3490 vs 4.3487 at 1e-3) and the
     * rounding noise ~2e-2 at h = 1e-3: the towers use h = 3e-3 (TOWER_H) */
    mc_fd_opts fo = {TOWER_H, TOWER_TOL, TOWER_FLOOR, tower_sig};
    memset(GM.grad, 0, GM.n * sizeof(float));
    tower_loss(&t);
    CHECK(mc_mci_train_backward(&t.c, m, &t.st, t.r, &e) == 0, "backward: %s", e.msg);
    static const char *names[] = {
        PREFIX "patch_embed.0.rbr_conv.0.conv.weight", PREFIX "patch_embed.1.rbr_scale.bn.weight",
        PREFIX "network.0.1.token_mixer.mixer.rbr_conv.0.conv.weight", PREFIX "network.3.proj.0.se.fc1.weight",
        PREFIX "network.4.9.convffn.fc2.bias", PREFIX "network.6.pe.weight",
        PREFIX "network.7.0.token_mixer.qkv.weight", PREFIX "network.7.1.layer_scale_1", PREFIX "conv_exp.se.reduce.weight",
        PREFIX "head.proj"};
    double worst = mc_fd_check_names(&fo, &t, tower_loss, mc_fd_find_map, &WM, &GM, names, sizeof names / sizeof *names, 2, "tower");
    printf("  whole tower B=%d R=%d, %zu parameters x 2 elements: worst fd rel err %.2e\n", B, R,
           sizeof names / sizeof *names, worst);
    tower_free(&t);
    free(images);
    free(t.r);
}

int main(void) {
    mc_err e = {0};
    mc_tensor_map_init(&WM);
    if (mc_weights_from_tsv_prefix(mc_test_path("golden/s0.params.tsv"), "image_encoder.", &WM, NULL, &e))
        mc_test_fatal("%s", e.msg);
    mc_test_param_arena(&WM, &GM);
    mc_mci *m = NULL;
    if (mc_mci_init(&m, &WM, 0, &e)) mc_test_fatal("%s", e.msg);

    test_eval_parity(m);
    test_golden_train_forward(m);

    const mc_mci_element *net = m->net;
    test_block("stem 0 (3x3/2 dense, scale branch)", K_MOBILEONE, &m->stem[0], PREFIX "patch_embed.0", 2, 3, 7, 8,
               64, 4, 4);
    test_block("stem 1 (3x3/2 depthwise)", K_MOBILEONE, &m->stem[1], PREFIX "patch_embed.1", 2, 64, 5, 6, 64, 3, 3);
    test_block("stem 2 (1x1, skip branch)", K_MOBILEONE, &m->stem[2], PREFIX "patch_embed.2", 2, 64, 3, 3, 64, 3, 3);
    test_block("RepMixer block network.0.0", K_REPMIXER, &net[0].rep[0], PREFIX "network.0.0", 2, 64, 5, 3, 64, 5, 3);
    test_block("PatchEmbed network.1 (no SE)", K_PATCH_EMBED, &net[1].pe, PREFIX "network.1", 2, 64, 6, 5, 128, 3, 3);
    test_block("PatchEmbed network.3 (SE)", K_PATCH_EMBED, &net[3].pe, PREFIX "network.3", 2, 128, 4, 4, 256, 2, 2);
    test_block("RepCPE network.6", K_REPCPE, &net[6].cpe, PREFIX "network.6", 2, 512, 3, 2, 512, 3, 2);
    test_block("attention block network.7.0", K_ATTENTION, &net[7].attn[0], PREFIX "network.7.0", 2, 512, 2, 3, 512,
               2, 3);
    /* stochastic depth at rate 0.5 (seed 1234: 4 samples, some dropped, some kept) */
    test_block_dp("RepMixer network.0.1, drop path 0.5", K_REPMIXER, &net[0].rep[1], PREFIX "network.0.1", 4, 64, 3, 3,
                  64, 3, 3, 0.5f, 0.f);
    test_block_dp("attention network.7.1, drop path 0.5", K_ATTENTION, &net[7].attn[1], PREFIX "network.7.1", 4, 512, 2,
                  2, 512, 2, 2, 0.5f, 0.f);
    /* FastViT drop_rate 0.2 in the ConvFFN (after the GELU and after fc2) with drop path 0.5:
     * finite differences through the masked network (fixed seed) */
    test_block_dp("RepMixer network.0.1, drop 0.2 + drop path 0.5", K_REPMIXER, &net[0].rep[1], PREFIX "network.0.1", 4,
                  64, 3, 3, 64, 3, 3, 0.5f, 0.2f);
    test_block_dp("attention network.7.1, drop 0.2", K_ATTENTION, &net[7].attn[1], PREFIX "network.7.1", 2, 512, 2, 2,
                  512, 2, 2, 0.f, 0.2f);
    test_block("conv_exp (depthwise x2, SE, GELU)", K_MOBILEONE, &m->conv_exp, PREFIX "conv_exp", 2, 512, 2, 2, 1024,
               2, 2);
    test_tower_fd(m);
    test_errors(m);

    mc_mci_free(m);
    mc_tensor_map_free(&WM);
    test_variant(1);
    test_variant(2);
    return mc_test_finish("train_mci");
}
