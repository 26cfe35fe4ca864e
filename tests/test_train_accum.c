/* Gradient accumulation as open_clip's --accum-freq (src/train/step.h): K = 2 micro-batches of
 * b = 4 give the gradients of ONE unaccumulated step over the whole batch of 8 whose BatchNorm
 * statistics are taken per slice of 4 (--bn-groups 2, what the micro-batches see): every tower
 * parameter's gradient equal within float rounding, logit_scale's K times the whole batch's (it
 * takes part in each of open_clip's K loss computations), the same loss; the BatchNorm counters
 * count 2K forwards (open_clip's no-grad pass runs in train mode too). DR data (real +
 * synthetic captions, two teachers) on the tiny MCi + MCt configuration; then the gradients
 * differ from the old per-micro-batch average, so the test can fail. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/test_util.h"
#include "models/clip.h"
#include "models/config.h"
#include "train/init.h"
#include "train/step.h"

enum { K = 2, b = 4, B = K * b, NS = 2, DT = 16 };

static uint64_t rng = 12345;
static double unif(void) { /* [0, 1) */
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng >> 11) * 0x1.0p-53;
}

static void unit_rows(float *x, int n, int d) {
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < d; k++) s += (double)x[i * d + k] * x[i * d + k];
        for (int k = 0; k < d; k++) x[i * d + k] /= (float)sqrt(s);
    }
}

static int make_trainer(mc_clip *c, mc_trainer *t, const mc_clip_config *cfg, int batch, int accum, int groups) {
    mc_err e = {0};
    if (mc_clip_init_config(c, cfg, NULL, 1, 1, 0, &e)) mc_test_fatal("declare: %s", e.msg);
    mc_train_init_params(&c->store, 9);
    mc_train_config tc = {.loss = mc_drclip_config_default(0.7f), .adamw = mc_adamw_config_default(0), .grad_clip = 1.0f,
                          .accum = accum, .bn_groups = groups};
    tc.loss.n_teachers = 2;
    tc.loss.teacher_dims[0] = tc.loss.teacher_dims[1] = DT / 2;
    tc.loss.teacher_scale[0] = tc.loss.teacher_scale[1] = 100;
    if (mc_trainer_init(t, c, &tc, batch, NS, NULL, &e)) mc_test_fatal("trainer: %s", e.msg);
    return 0;
}

int main(void) {
    mc_clip_config cfg;
    mc_err e = {0};
    if (mc_clip_config_load(MC_TEST_DATA_DIR "/configs/tiny_mci.json", &cfg, &e)) mc_test_fatal("tiny_mci: %s", e.msg);
    const int R = cfg.image_size, T = cfg.text.context_length;
    const size_t img = (size_t)3 * R * R;
    /* the whole batch: images [B,3,R,R], tokens [NS*B,T] and teacher rows, set-major */
    float *images = malloc(sizeof(float) * B * img), *u = malloc(sizeof(float) * B * DT), *v = malloc(sizeof(float) * NS * B * DT);
    int32_t *tokens = calloc((size_t)NS * B * T, sizeof *tokens);
    for (size_t i = 0; i < B * img; i++) images[i] = (float)(2 * unif() - 1);
    for (int r = 0; r < NS * B; r++) {
        int len = 3 + (int)(unif() * (T - 4));
        tokens[r * T] = 49406;
        for (int k = 1; k < len; k++) tokens[r * T + k] = 300 + (int)(unif() * 40000);
        tokens[r * T + len] = 49407;
    }
    for (int i = 0; i < B * DT; i++) u[i] = (float)(2 * unif() - 1);
    for (int i = 0; i < NS * B * DT; i++) v[i] = (float)(2 * unif() - 1);
    for (int k = 0; k < 2; k++) { /* each teacher's slice unit-norm, as stored embeddings are */
        for (int i = 0; i < B; i++) unit_rows(u + i * DT + k * DT / 2, 1, DT / 2);
        for (int i = 0; i < NS * B; i++) unit_rows(v + i * DT + k * DT / 2, 1, DT / 2);
    }
    mc_train_batch whole = {images, tokens, u, v};
    /* the two micro-batches: rows j*b.. of every array (texts and teacher texts per set) */
    int32_t *mtok[K];
    float *mv[K];
    mc_train_batch mb[K];
    for (int j = 0; j < K; j++) {
        mtok[j] = malloc(sizeof(int32_t) * NS * b * T);
        mv[j] = malloc(sizeof(float) * NS * b * DT);
        for (int s = 0; s < NS; s++) {
            memcpy(mtok[j] + s * b * T, tokens + (s * B + j * b) * T, sizeof(int32_t) * b * T);
            memcpy(mv[j] + s * b * DT, v + (s * B + j * b) * DT, sizeof(float) * b * DT);
        }
        mb[j] = (mc_train_batch){images + j * b * img, mtok[j], u + j * b * DT, mv[j]};
    }

    mc_clip ca, cb;
    mc_trainer ta, tb;
    make_trainer(&ca, &ta, &cfg, b, K, 1);
    make_trainer(&cb, &tb, &cfg, B, 1, K);
    mc_drclip_losses la, lb;
    CHECK(mc_trainer_gradients(&ta, mb, &la, &e) == 0, "accumulated: %s", e.msg);
    CHECK(mc_trainer_gradients(&tb, &whole, &lb, &e) == 0, "whole batch: %s", e.msg);
    printf("loss: accumulated %.9g (contrastive %.9g, distill %.9g), whole batch %.9g\n", la.total, la.contrastive,
           la.distill, lb.total);
    CHECK(fabs(la.total - lb.total) <= 1e-6 * fabs(lb.total) && fabs(la.distill - lb.distill) <= 1e-6 * fabs(lb.distill),
          "losses: %.9g vs %.9g", la.total, lb.total);
    const mc_param_store *sa = &ca.store, *sb = &cb.store;
    double worst = 0;
    int n = 0, bad = 0;
    for (int i = 0; i < sa->count; i++) {
        const mc_param *p = &sa->params[i];
        if (p->flags & MC_PARAM_BUFFER) continue;
        const float *ga = sa->grad + p->offset, *gb = sb->grad + p->offset;
        if (!strcmp(p->name, "logit_scale")) {
            printf("logit_scale gradient: accumulated %.9g, whole batch %.9g (x %d)\n", ga[0], gb[0], K);
            CHECK(fabs(ga[0] - K * gb[0]) <= 1e-5 * fabs(K * gb[0]) + 1e-9, "logit_scale: %g vs %d x %g", ga[0], K, gb[0]);
            continue;
        }
        double md = 0, mg = 0;
        for (size_t k = 0; k < p->numel; k++) md = fmax(md, fabs(ga[k] - gb[k])), mg = fmax(mg, fabs(gb[k]));
        double rel = mg > 0 ? md / mg : md;
        worst = fmax(worst, rel);
        n++;
        if (rel > 1e-4) {
            if (bad++ < 8) printf("  %s: max |diff| %.3g of max |g| %.3g\n", p->name, md, mg);
        }
    }
    printf("%d parameter gradients: worst max|diff| / max|g| %.2e\n", n, worst);
    CHECK(bad == 0 && n > 100, "%d of %d gradients differ", bad, n);
    int64_t ctr = -1;
    for (int i = 0; i < sa->count; i++)
        if (sa->params[i].flags & MC_PARAM_COUNTER) ctr = sa->counters[sa->params[i].offset];
    CHECK(ctr == 2 * K, "num_batches_tracked %lld after one accumulated step (want %d)", (long long)ctr, 2 * K);

    /* the per-micro-batch average (the former semantics) is not the same gradient */
    mc_grad_zero(&ca.store);
    for (int j = 0; j < K; j++) CHECK(mc_trainer_forward_backward(&ta, &mb[j], 0.5f, NULL, &e) == 0, "%s", e.msg);
    double far = 0;
    for (size_t k = 0; k < sa->total; k++) far = fmax(far, fabs(sa->grad[k] - sb->grad[k]));
    printf("averaged per-micro-batch losses instead: max |diff| %.3g\n", far);
    CHECK(far > 1e-4, "the averaged micro-batch gradient should differ (%g)", far);

    mc_trainer_free(&ta), mc_trainer_free(&tb);
    mc_clip_free(&ca), mc_clip_free(&cb);
    for (int j = 0; j < K; j++) free(mtok[j]), free(mv[j]);
    free(images), free(u), free(v), free(tokens);
    return mc_test_finish("train_accum");
}
