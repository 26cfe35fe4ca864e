/* The whole-model training step (src/train/step.h, what `mobileclip train` runs) against the
 * golden MobileCLIP-S0 steps (shared/golden/train, README): the model built by
 * mc_clip_init_config from the weight rule, one mc_trainer over the 4 images and the
 * [4 real; 4 synthetic] captions with the stored teacher rows, lambda = 1, lr 1e-3 constant,
 * wd 0.2, betas (0.9, 0.95), eps 1e-8, clip 1.0:
 *   step 1: every loss part abs <= 1e-5, gradient norm before clipping rel <= 5e-3;
 *   step 2 (after clipping, AdamW, clamp, running-stat updates): loss abs <= 2e-3, norm rel <= 5e-3;
 *   num_batches_tracked counts the forwards. (MC_TEST_SHORT, the sanitizer pass: step 1 only.)
 * (Per-parameter gradient and parameter parity is test_train_s0's, on the layer API.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/test_util.h"
#include "common/weight_rule.h"
#include "models/clip.h"
#include "models/config.h"
#include "train/step.h"

static float *f32_of(const mc_tensor_map *G, const char *name) {
    const mc_tensor *t = mc_test_tensor(G, name);
    float *p = malloc(sizeof(float) * (size_t)mc_tensor_numel(t));
    for (int64_t i = 0; i < mc_tensor_numel(t); i++) p[i] = (float)mc_tensor_get_f64(t, i);
    return p;
}

int main(void) {
    mc_err e = {0};
    mc_tensor_map G, w;
    mc_json *hdr = NULL;
    mc_test_load_golden("golden/train/s0_step.safetensors", &G, &hdr);
    mc_json_free(hdr);
    mc_tensor_map_init(&w);
    if (mc_weights_from_tsv(mc_test_path("golden/train/s0.params.tsv"), &w, NULL, &e)) mc_test_fatal("%s", e.msg);
    mc_clip_config cfg;
    mc_clip clip;
    if (mc_clip_config_builtin(0, &cfg, &e) || mc_clip_init_config(&clip, &cfg, &w, 1, 1, 0, &e)) mc_test_fatal("%s", e.msg);
    mc_tensor_map_free(&w);

    mc_train_config tc = {.loss = mc_drclip_config_default(1.0f), .adamw = mc_adamw_config_default(0),
                          .grad_clip = 1.0f, .accum = 1, .bn_groups = 1};
    tc.adamw.beta2 = 0.95f;
    mc_trainer t;
    if (mc_trainer_init(&t, &clip, &tc, 4, 2, NULL, &e)) mc_test_fatal("%s", e.msg);
    printf("  activations: %.0f MB tape + %.0f MB work for batch 4\n", t.tape_floats * 4e-6, t.work_floats * 4e-6);

    float *images = f32_of(&G, "input.images"), *U = f32_of(&G, "input.teacher_image_emb");
    float *V0 = f32_of(&G, "input.teacher_text_emb"), *V1 = f32_of(&G, "input.teacher_syn_text_emb");
    float *V = malloc(sizeof(float) * 8 * 1536);
    memcpy(V, V0, sizeof(float) * 4 * 1536);
    memcpy(V + 4 * 1536, V1, sizeof(float) * 4 * 1536);
    const mc_tensor *rt = mc_test_tensor(&G, "input.text_tokens"), *st = mc_test_tensor(&G, "input.syn_text_tokens");
    int32_t tok[8 * 77];
    for (int i = 0; i < 4 * 77; i++) {
        tok[i] = (int32_t)mc_tensor_get_f64(rt, i);
        tok[4 * 77 + i] = (int32_t)mc_tensor_get_f64(st, i);
    }
    mc_train_batch mb = {images, tok, U, V};
    const mc_tensor *lt = mc_test_tensor(&G, "loss.lam1.steps_total"), *ld = mc_test_tensor(&G, "loss.lam1.steps_distill"),
                    *gn = mc_test_tensor(&G, "loss.lam1.steps_grad_norm");
    int steps = getenv("MC_TEST_SHORT") ? 1 : 2; /* the sanitizer pass: one step */
    for (int step = 0; step < steps; step++) {
        mc_step_stats ss;
        double t0 = mc_test_now();
        if (mc_trainer_step(&t, &mb, 1e-3f, &ss, &e)) mc_test_fatal("%s", e.msg);
        double rl = mc_tensor_get_f64(lt, step), rd = mc_tensor_get_f64(ld, step), rn = mc_tensor_get_f64(gn, step);
        double tol = step ? 2e-3 : 1e-5;
        printf("  step %d (%.1f s): loss %.7f (reference %.7f), distill %.7f (%.7f), grad norm %.5f (%.5f)\n", step + 1,
               mc_test_now() - t0, ss.loss.total, rl, ss.loss.distill, rd, ss.grad_norm, rn);
        CHECK(fabs(ss.loss.total - rl) <= tol && fabs(ss.loss.distill - rd) <= tol && fabs(ss.loss.contrastive) <= tol,
              "step %d losses %.7f / %.7f vs %.7f / %.7f", step + 1, ss.loss.total, ss.loss.distill, rl, rd);
        CHECK(fabs(ss.grad_norm - rn) <= 5e-3 * rn, "step %d gradient norm %.5f vs %.5f", step + 1, ss.grad_norm, rn);
        if (step == 0) {
            static const double unweighted[4] = {1.3924503, 1.3638563, 1.3957087, 1.3631138}; /* README table */
            double got[4] = {ss.loss.clip[0], ss.loss.clip[1], ss.loss.distill_ce[0], ss.loss.distill_ce[1]};
            for (int k = 0; k < 4; k++) CHECK(fabs(got[k] - unweighted[k]) <= 1e-5, "loss part %d: %.7f vs %.7f", k, got[k], unweighted[k]);
        }
    }
    int counted = 1;
    for (int i = 0; i < clip.store.ncounters; i++) counted &= clip.store.counters[i] == steps;
    CHECK(clip.store.ncounters > 100 && counted, "num_batches_tracked counts the forwards (%d counters)", clip.store.ncounters);
    CHECK(t.opt.step == steps, "AdamW step %lld", (long long)t.opt.step);
    mc_trainer_free(&t);
    mc_clip_free(&clip);
    free(images);
    free(U);
    free(V0);
    free(V1);
    free(V);
    mc_tensor_map_free(&G);
    return mc_test_finish("train_step");
}
