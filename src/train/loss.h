/* loss.h - the multi-modal reinforced training loss of MobileCLIP (paper Eq. 2, 3), as the
 * reference DRClipLoss computes it (apple/ml-mobileclip training/open_clip_v2.patch on
 * open_clip 7260a46, world size 1), forward and backward, plus the L2 normalisation and the
 * logit scale s = min(exp(t), 100) that sit between the towers and the loss.
 *
 * One caption set ("batch"): student image features X [B,E], text features Y [B,E] (both
 * L2-normalised), teacher image / text embeddings U, V [B,Dt] (K teachers side by side,
 * Dt = sum of their widths; used as stored, no renormalisation), s = the student scale:
 *   A = s * X Y^T  (per image over texts),  A^T = s * Y X^T  (per text over images)
 *   CLIP    = (CE(A, I) + CE(A^T, I)) / 2              CE = mean over rows of -log_softmax[diag]
 *   P_A     = (1/K) sum_k softmax_row(c_k U_k V_k^T)  (average after softmax), or
 *             softmax_row(c_0 U V^T)                   (without: the teachers' logits summed)
 *   P_B     = the same with U and V exchanged
 *   Distill = (mean_i -sum_j P_A log_softmax(A) + mean_i -sum_j P_B log_softmax(A^T)) / 2
 *   L       = w0 * CLIP + w1 * Distill,   (w0, w1) = (1 - lambda, lambda)
 * DR training has two caption sets sharing X and U (real and synthetic captions):
 *   contrastive = w0 (CLIP_real + CLIP_syn), distill = w1 (D_real + D_syn), total = their sum.
 * With no teacher (n_teachers = 0, w1 = 0) this is plain CLIP training. Data parallel runs
 * (--local-loss --gather-with-grad) give each rank's rows against the gathered rows of all
 * ranks (mc_drclip_input.N, offset, *_all) and get the gradients of the gathered copies too.
 *
 * Gradients: backward WRITES dX (summed over the caption sets, since X is shared), dY of
 * each set, and d s; chain d s to the parameter t with mc_logit_scale_backward and dX, dY
 * to the unnormalised features with mc_l2_normalize_backward. Sums are accumulated in double;
 * the saved matrices are float.
 */
#ifndef MC_TRAIN_LOSS_H
#define MC_TRAIN_LOSS_H

#include <stddef.h>

#include "core/error.h"

#define MC_DRCLIP_MAX_TEACHERS 8
#define MC_DRCLIP_MAX_SETS 2

typedef struct mc_drclip_config {
    float weights[2];            /* (w0, w1): contrastive and distillation weights (--distill-loss-weights) */
    int n_teachers;              /* K; 0 = no teacher (requires weights[1] == 0) */
    int teacher_dims[MC_DRCLIP_MAX_TEACHERS];     /* widths of the K slices (--distill-teacher-dimension) */
    float teacher_scale[MC_DRCLIP_MAX_TEACHERS];  /* fixed logit scale per teacher (--distill-logit-scale);
                                                     without average_after_softmax only [0] is used */
    int average_after_softmax;   /* --distill-average-after-softmax */
} mc_drclip_config;

/* The reference recipe: lambda, two 768-d teachers at scale 100, average after softmax.
 * lambda = 0 gives w1 = 0 but keeps the teachers (their loss is computed, weighted 0). */
mc_drclip_config mc_drclip_config_default(float lambda);

/* One forward's inputs. Rows of every matrix are samples; X, Y normalised. */
typedef struct mc_drclip_input {
    int B, E, Dt;                /* batch, student width, teacher width (sum of teacher_dims) */
    const float *image;          /* X [B,E] */
    const float *teacher_image;  /* U [B,Dt] (NULL without teachers) */
    int n_sets;                  /* 1 (one caption set) or 2 (real + synthetic) */
    const float *text[MC_DRCLIP_MAX_SETS];          /* Y [B,E] per set */
    const float *teacher_text[MC_DRCLIP_MAX_SETS];  /* V [B,Dt] per set (NULL without teachers) */
    float scale;                 /* s = min(exp(t), 100) */
    /* Data parallel (open_clip --local-loss --gather-with-grad): the gathered rows of every rank,
     * N in all, this rank's at rows offset .. offset+B-1. Then A = s X Y_all^T and
     * A' = s Y X_all^T are [B,N] with labels offset + i, the teacher targets use U vs V_all and
     * V vs U_all, and the loss is this rank's mean (DDP's gradient average gives the global
     * loss's gradient). N = 0: one process, the local arrays are all rows. */
    int N, offset;
    const float *image_all, *teacher_image_all;                                   /* [N,E], [N,Dt] */
    const float *text_all[MC_DRCLIP_MAX_SETS], *teacher_text_all[MC_DRCLIP_MAX_SETS];
} mc_drclip_input;

typedef struct mc_drclip_losses {
    double contrastive, distill, total;       /* weighted, summed over the sets */
    double clip[MC_DRCLIP_MAX_SETS];          /* unweighted CLIP loss per set */
    double distill_ce[MC_DRCLIP_MAX_SETS];    /* unweighted distillation cross-entropy per set */
    double distill_kl[MC_DRCLIP_MAX_SETS];    /* the same minus the teachers' entropy (the paper's KL) */
} mc_drclip_losses;

/* Gradients (all WRITTEN). In one process the *_all entries are unused (the gradient of every
 * row is in the local arrays); with N > 0 the local arrays hold the gradient through this
 * rank's rows and the *_all arrays [N,E] the gradient through the gathered copies, which the
 * gather's backward sums over ranks into each owner's rows (reduce-scatter). */
typedef struct mc_drclip_grads {
    float *image;                             /* dX [B,E] */
    float *text[MC_DRCLIP_MAX_SETS];          /* dY [B,E] per set (NULL: skipped) */
    float *image_all;                         /* [N,E] */
    float *text_all[MC_DRCLIP_MAX_SETS];      /* [N,E] per set (NULL: skipped) */
    float scale;                              /* dL/ds */
} mc_drclip_grads;

/* Floats of scratch a forward needs and keeps for the backward: 6 B x N matrices per set, a
 * work matrix and a row vector. The buffer must be 8-byte aligned (malloc'd). */
size_t mc_drclip_scratch_size(const mc_drclip_input *in);

/* Checks cfg against in (teacher widths, weights, sizes); 0 or MC_E_ARG with the reason. */
int mc_drclip_check(const mc_drclip_config *cfg, const mc_drclip_input *in, mc_err *e);

/* Computes the losses and saves, per set s at scratch + 2N + s * 6 B N (N = B in one process):
 * per direction (image->text, then text->image) the cosine matrix (X Y_all^T, Y X_all^T), the
 * student softmax rows and the teacher targets, each [B,N] row-major, in the order G_A, S_A,
 * P_A, G_B, S_B, P_B. Returns 0 or MC_E_ARG (mc_drclip_check). */
int mc_drclip_loss_forward(const mc_drclip_config *cfg, const mc_drclip_input *in, float *scratch,
                           mc_drclip_losses *out, mc_err *e);

/* Gradients of out->total times `dloss` (normally 1) into g. Uses the forward's scratch (its
 * work matrix is overwritten; the saved matrices are kept). */
void mc_drclip_loss_backward(const mc_drclip_config *cfg, const mc_drclip_input *in, float *scratch, float dloss,
                             mc_drclip_grads *g);

/* s = min(exp(t), 100) (clamp(exp(t), 0, 100) as the reference) and its backward:
 * dL/dt = dL/ds * exp(t) where exp(t) <= 100 (torch's clamp passes the gradient at the bound), else 0. */
float mc_logit_scale_forward(float t);
float mc_logit_scale_backward(float t, float d_scale);

/* F.normalize(x, dim=-1): y = x / max(||x||, 1e-12) per row of x [N,D]; norms[N] saved. */
void mc_l2_normalize_forward(float *y, float *norms, const float *x, int N, int D);
/* dx = (dy - y (y . dy)) / ||x|| per row (dy / 1e-12 where the norm was clamped). dx WRITTEN;
 * may alias dy. */
void mc_l2_normalize_backward(float *dx, const float *dy, const float *y, const float *norms, int N, int D);

#endif
