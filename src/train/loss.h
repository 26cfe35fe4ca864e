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
 * With no teacher (n_teachers = 0, w1 = 0) this is plain CLIP training.
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
} mc_drclip_input;

typedef struct mc_drclip_losses {
    double contrastive, distill, total;       /* weighted, summed over the sets */
    double clip[MC_DRCLIP_MAX_SETS];          /* unweighted CLIP loss per set */
    double distill_ce[MC_DRCLIP_MAX_SETS];    /* unweighted distillation cross-entropy per set */
    double distill_kl[MC_DRCLIP_MAX_SETS];    /* the same minus the teachers' entropy (the paper's KL) */
} mc_drclip_losses;

/* Floats of scratch a forward needs and keeps for the backward: 5 B x B matrices per set, a
 * work matrix and a row vector. The buffer must be 8-byte aligned (malloc'd). */
size_t mc_drclip_scratch_size(int B, int n_sets);

/* Checks cfg against in (teacher widths, weights, sizes); 0 or MC_E_ARG with the reason. */
int mc_drclip_check(const mc_drclip_config *cfg, const mc_drclip_input *in, mc_err *e);

/* Computes the losses and saves, per set s at scratch + 2B + s * 5 B^2: the cosine matrix
 * G = X Y^T, the student softmaxes of A (rows) and of A^T, and the teacher targets P_A, P_B
 * (each [B,B] row-major). Returns 0 or MC_E_ARG (mc_drclip_check). */
int mc_drclip_loss_forward(const mc_drclip_config *cfg, const mc_drclip_input *in, float *scratch,
                           mc_drclip_losses *out, mc_err *e);

/* Gradients of out->total (times `dloss`, normally 1): dX [B,E] (written), dY[s] [B,E]
 * (written; an entry may be NULL to skip it) and *d_scale (written) = dL/ds. Uses the
 * forward's scratch (its work matrix is overwritten; the saved matrices are kept). */
void mc_drclip_loss_backward(const mc_drclip_config *cfg, const mc_drclip_input *in, float *scratch,
                             float dloss, float *d_image, float *const *d_text, float *d_scale);

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
