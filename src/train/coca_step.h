/* coca_step.h - one training step of a CoCa captioner (open_clip train.py's order with
 * CoCaLoss, world size 1): zero_grad; forward (models/coca_train.h); CoCaLoss; backward;
 * clip_grad_norm_ (grad_clip > 0); AdamW with the schedule's lr; logit_scale.clamp_(0, ln 100).
 * Activations of one batch in one tape sized by a measuring pass (mc_coca_trainer_init);
 * nothing is allocated in mc_coca_trainer_step. */
#ifndef MC_TRAIN_COCA_STEP_H
#define MC_TRAIN_COCA_STEP_H

#include "models/coca_train.h"
#include "train/optim.h"

typedef struct mc_coca_train_config {
    mc_adamw_config adamw;
    float grad_clip;              /* max global norm; <= 0: none */
    double clip_weight;           /* --coca-contrastive-loss-weight (open_clip default 1) */
    double caption_weight;        /* --coca-caption-loss-weight (open_clip default 2) */
} mc_coca_train_config;

typedef struct mc_coca_step_stats {
    mc_coca_losses loss;
    double grad_norm;             /* before clipping */
    float lr, scale;              /* learning rate; exp(logit_scale) before the update */
} mc_coca_step_stats;

typedef struct mc_coca_trainer {
    mc_coca_trainable *model;
    mc_coca_train_config cfg;
    int B;
    mc_tape tape, work;
    mc_grad_map gm;
    mc_train_ctx ctx;
    mc_coca_train_state st;
    float *scratch, *dimg, *dtxt; /* loss scratch; feature gradients [B,E] */
    mc_adamw opt;
    size_t tape_floats, work_floats;
} mc_coca_trainer;

/* Sizes everything for batch B and allocates the store's gradient and AdamW arenas. */
int mc_coca_trainer_init(mc_coca_trainer *t, mc_coca_trainable *model, const mc_coca_train_config *cfg, int B,
                         mc_err *e);
void mc_coca_trainer_free(mc_coca_trainer *t);
/* Gradients of dloss * total into the store's grad arena (+=), losses in *out. */
int mc_coca_trainer_forward_backward(mc_coca_trainer *t, const float *images, const int32_t *tokens, float dloss,
                                     mc_coca_losses *out, mc_err *e);
/* One optimizer step on images [B,3,R,R], tokens [B,L] with learning rate lr. */
int mc_coca_trainer_step(mc_coca_trainer *t, const float *images, const int32_t *tokens, float lr,
                         mc_coca_step_stats *out, mc_err *e);

#endif
