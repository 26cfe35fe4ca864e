/* step.h - one training step of a whole MobileCLIP model (open_clip train.py's order with
 * the DR loss of train/loss.h):
 *
 *   zero_grad
 *   per micro-batch (accum of them):
 *     texts = [real; synthetic] tokens [n_sets*b, T] and ONE forward of each tower in train
 *     mode per BatchNorm group (images [b,3,R,R] -> X, texts -> Y), L2-normalised,
 *     s = min(exp(t), 100); with world > 1 the features are all-gathered (--local-loss
 *     --gather-with-grad: this rank's rows against every rank's, labels offset rank*b);
 *     loss (train/loss.h) and backward through normalisation, gather (reduce over ranks)
 *     and towers, gradients ACCUMULATED into the store's grad arena (accum > 1: below);
 *   with world > 1 one all-reduce of the whole grad arena, divided by world (DDP's average);
 *   clip_grad_norm_ (grad_clip > 0), AdamW with the schedule's lr, logit_scale.clamp_(0, ln 100).
 *
 * BatchNorm groups: DDP keeps BatchNorm batch statistics per rank; bn_groups = G > 1 runs the
 * towers on G equal slices of the batch (each normalised with its own statistics) and the
 * loss over the whole batch, which is what G ranks compute together. The running statistics
 * are updated from group 0 only: DDP's broadcast_buffers makes every rank's copy rank 0's, the
 * one rank 0 saves (in an MPI run each rank updates its own; rank 0's is saved).
 * Gradient accumulation (accum = K > 1) is open_clip train.py's --accum-freq: the features of
 * the K micro-batches are first computed without a backward (train mode: BatchNorm batch
 * statistics, running statistics updated), then per micro-batch j its forward again, the loss
 * over all K micro-batches (K b rows; j's from this forward, the others cached; teacher rows
 * side by side) and the backward through j. The towers' gradients are then those of the whole
 * batch's loss (micro-batch BatchNorm statistics, as --bn-groups K of one K b batch), and, as in
 * open_clip, logit_scale gets that loss's gradient once per micro-batch (K times); the step's
 * reported loss is the whole batch's.
 * BatchNorm num_batches_tracked counters count training forwards (one per micro-batch, two
 * with accum > 1).
 * Dropout / stochastic depth: each tower runs with its rates from clip->config (image_drop,
 * text_drop; 0 = off, the default); the masks of optimizer step s on rank r come from a generator
 * seeded with (cfg.seed, s, r) at the start of the step (s = the AdamW step count, which --resume
 * restores), drawn in a fixed order (groups, then micro-batches; serially), so a resumed run and
 * any thread count give the same masks. With accum > 1 the two forwards of a micro-batch draw
 * different masks, as open_clip's no-grad feature pass and its recomputation do.
 * Memory: activations of one micro-batch in one tape sized by the towers' measure passes
 * (with the configured rates: mask room only when a rate is > 0) before the first step
 * (mc_trainer_init); nothing is allocated in mc_trainer_step.
 */
#ifndef MC_TRAIN_STEP_H
#define MC_TRAIN_STEP_H

#include <stdint.h>

#include "models/clip.h"
#include "models/mci_train.h"
#include "models/text_train.h"
#include "models/vit_train.h"
#include "train/loss.h"
#include "train/optim.h"

/* Collective operations of a data-parallel run (train/comm_mpi.c provides MPI's). */
typedef struct mc_comm {
    int rank, world;
    /* all[r * n + i] = rank r's local[i] for every rank r */
    int (*allgather)(void *user, const float *local, float *all, size_t n);
    /* buf[i] = sum over ranks of buf[i], in place (doubles: the loss values) */
    int (*allreduce)(void *user, float *buf, size_t n);
    int (*allreduce_double)(void *user, double *buf, size_t n);
    void *user;
} mc_comm;

typedef struct mc_train_config {
    mc_drclip_config loss;
    mc_adamw_config adamw;
    float grad_clip;          /* max global norm; <= 0: no clipping */
    int accum;                /* micro-batches per optimizer step (>= 1) */
    int bn_groups;            /* BatchNorm groups per micro-batch (>= 1, divides the batch) */
    uint64_t seed;            /* dropout masks (the model configuration's rates, off by default): step s
                               * of rank r draws from its own generator (seed, s, r) */
} mc_train_config;

/* One micro-batch, as train/loader.h's mc_batch delivers it. */
typedef struct mc_train_batch {
    const float *images;         /* [b,3,R,R] */
    const int32_t *tokens;       /* [n_sets*b, T]: real rows, then synthetic rows */
    const float *teacher_image;  /* [b,Dt] or NULL (no teacher) */
    const float *teacher_text;   /* [n_sets*b, Dt] or NULL */
} mc_train_batch;

typedef struct mc_step_stats {
    mc_drclip_losses loss;    /* of the whole batch (all micro-batches; the mean over ranks) */
    double grad_norm;         /* before clipping */
    float lr, scale;          /* learning rate used; s before the update */
} mc_step_stats;

#define MC_TRAIN_MAX_GROUPS 16

typedef struct mc_trainer {
    mc_clip *clip;
    mc_train_config cfg;
    const mc_comm *comm;      /* NULL: one process */
    int b, n_sets, E, T, R, Dt, G, gb; /* local batch, caption sets, widths, group size */
    mc_tape tape, work;
    mc_grad_map gm;
    mc_train_ctx ctx;
    mc_rng rng;               /* this step's dropout masks (seeded per step: cfg.seed, step, rank) */
    mc_mci_train_state mst[MC_TRAIN_MAX_GROUPS];
    mc_vit_train_state vst[MC_TRAIN_MAX_GROUPS];
    mc_text_train_state tst[MC_TRAIN_MAX_GROUPS];
    int n_states;
    /* features and their gradients */
    float *x, *xn, *dx;                     /* [b,E] images: normalised, norms [b], gradient */
    float *y, *yn, *dy;                     /* [n_sets*b,E] texts in set-major order, norms, gradient */
    float *x_all, *y_all, *dx_all, *dy_all; /* gathered [N,E], [n_sets*N,E] (world > 1) */
    float *u_all, *v_all;                   /* gathered teacher rows [N,Dt], [n_sets*N,Dt] */
    int32_t *gtok;                          /* [G][n_sets*gb, T] each group's texts */
    float *dembed;                          /* [n_sets*gb, E] */
    float *xa, *ya, *ua, *va, *dxa, *dya;   /* accum > 1: all micro-batches' features, teachers, gradients */
    float *scratch;                         /* loss */
    size_t scratch_floats;
    mc_adamw opt;
    size_t tape_floats, work_floats;        /* activation memory per micro-batch */
} mc_trainer;

/* Sizes everything for local batch b with n_sets caption sets (2 for DR data, 1 plain) and
 * allocates the store's grad and AdamW arenas. The clip must hold both towers in training
 * form (mc_clip_init* with reparam = 0). comm may be NULL. */
int mc_trainer_init(mc_trainer *t, mc_clip *clip, const mc_train_config *cfg, int b, int n_sets, const mc_comm *comm,
                    mc_err *e);
void mc_trainer_free(mc_trainer *t);

/* One optimizer step over cfg.accum micro-batches mb[0..accum) with learning rate lr. */
int mc_trainer_step(mc_trainer *t, const mc_train_batch *mb, float lr, mc_step_stats *out, mc_err *e);

/* The pieces, for tests: the step's gradients (zeroed, then every micro-batch; no update),
 * one micro-batch forward+backward (gradients += dloss * grad), the update (all-reduce, clip,
 * AdamW, clamp). */
int mc_trainer_gradients(mc_trainer *t, const mc_train_batch *mb, mc_drclip_losses *out, mc_err *e);
int mc_trainer_forward_backward(mc_trainer *t, const mc_train_batch *mb, float dloss, mc_drclip_losses *out,
                                mc_err *e);
int mc_trainer_update(mc_trainer *t, float lr, double *grad_norm, mc_err *e);

#endif
