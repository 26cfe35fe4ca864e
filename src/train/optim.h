/* optim.h - the reference optimisation recipe over a parameter store (models/param_store.h).
 *
 * AdamW as torch 1.13's _single_tensor_adamw (what open_clip main.py builds), per element of
 * every trainable entry (not MC_PARAM_BUFFER), t = step count from 1:
 *   p *= 1 - lr * wd_group;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * Weight-decay groups from the entry flags: wd_group = 0 for MC_PARAM_NO_DECAY (open_clip's
 * exclusion of gains, biases and the logit scale), weight_decay otherwise.
 *
 * Around the step, in open_clip train.py's order: mc_grad_zero before the backward (backward
 * passes accumulate, so gradient accumulation over micro-batches is: zero once, run the
 * micro-batch backwards, then clip and step), mc_clip_grad_norm, mc_adamw_step with the
 * schedule's lr (mc_cosine_lr), mc_logit_scale_clamp.
 */
#ifndef MC_TRAIN_OPTIM_H
#define MC_TRAIN_OPTIM_H

#include <stdint.h>

#include "core/error.h"
#include "models/param_store.h"

typedef struct mc_adamw_config {
    float beta1, beta2, eps;
    float weight_decay;       /* for the decayed group */
} mc_adamw_config;

/* open_clip's defaults: betas (0.9, 0.999), eps 1e-8, wd 0.2 (ViT models: beta2 0.98, eps 1e-6,
 * vit != 0). MobileCLIP's recipe then overrides beta2 = 0.95 (--beta2). */
mc_adamw_config mc_adamw_config_default(int vit);

typedef struct mc_adamw {
    mc_adamw_config cfg;
    int64_t step;             /* optimizer steps taken (torch's state['step']) */
} mc_adamw;

void mc_adamw_init(mc_adamw *o, const mc_adamw_config *cfg);

/* One step with learning rate lr over every trainable entry of s. Needs s->grad, s->m and
 * s->v (mc_param_store_alloc_grad / _alloc_adam); MC_E_ARG otherwise. */
int mc_adamw_step(mc_adamw *o, mc_param_store *s, float lr, mc_err *e);

/* The optimizer state as a torch.save state dict (so a run resumes bit-exactly): "step" (int64
 * scalar), then for every trainable entry P of s "exp_avg.P" and "exp_avg_sq.P" (float32, P's
 * shape) and the hyper-parameters "beta1", "beta2", "eps", "weight_decay" (float32 scalars).
 * Written atomically (mc_torch_save). mc_adamw_load reads it back strictly (a missing or
 * mis-shaped moment, an unknown tensor or other hyper-parameters are errors naming them) into
 * o and s->m, s->v (allocated if needed; undefined after a failure). */
int mc_adamw_save(const mc_adamw *o, const mc_param_store *s, const char *path, mc_err *e);
int mc_adamw_load(mc_adamw *o, mc_param_store *s, const char *path, mc_err *e);

/* Zeroes the gradient arena; scales it (e.g. 1/k after k accumulated micro-batch means). */
void mc_grad_zero(mc_param_store *s);
void mc_grad_scale(mc_param_store *s, float factor);

/* || (||g_p||_2 for every trainable p) ||_2, accumulated in double. */
double mc_grad_global_norm(const mc_param_store *s);
/* torch.nn.utils.clip_grad_norm_(params, max_norm) (eps 1e-6): n = mc_grad_global_norm, every
 * gradient multiplied by min(max_norm / (n + 1e-6), 1). Returns n (before clipping). */
double mc_clip_grad_norm(mc_param_store *s, float max_norm);

/* open_clip cosine_lr: base_lr (step + 1) / warmup for step < warmup, then
 * 0.5 (1 + cos(pi (step - warmup) / (steps - warmup))) base_lr. step counts optimizer steps from 0. */
double mc_cosine_lr(double base_lr, int64_t warmup, int64_t steps, int64_t step);

/* logit_scale.clamp_(0, ln 100) after each step. */
void mc_logit_scale_clamp(float *t);

#endif
