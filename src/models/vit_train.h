/* vit_train.h - training-mode forward and backward of the ViT image tower (mobileclip_b),
 * on the existing mc_vit struct; conventions as mci_train.h (gradients through ctx->grads,
 * stem BatchNorms with batch statistics and running-stat updates when ctx->train, saved
 * tensors in ctx->tape, temporaries in ctx->work).
 *
 *   stem: conv -> BN -> GELU -> conv -> BN -> GELU -> conv + bias        [B,C,h,h]
 *   tokens [B,1+P,C] = [cls | patches + pos]  (pos linearly resampled when P != n_pos)
 *   L transformer layers (non-causal), post LayerNorm, x[:,0] @ proj
 */
#ifndef MC_MODELS_VIT_TRAIN_H
#define MC_MODELS_VIT_TRAIN_H

#include "models/text_train.h"
#include "models/vit.h"

typedef struct mc_vit_train_state {
    int B, R, h[4], P, T;
    const float *images;
    float *c1, *c2;               /* stem convs 1, 2 before BN [B,S,h1,h1], [B,S,h2,h2] */
    mc_bn_save bn[2];
    float *n1, *n2;               /* BN outputs (GELU inputs) */
    float *g1, *g2;               /* GELU outputs (inputs of convs 2, 3) */
    float *patch;                 /* [B,C,h3,h3] */
    float *x0;                    /* tokens [B,T,C] */
    mc_transformer_save *layers;  /* [depth] */
    const float *xl;              /* last layer output */
    float *xf, *ln_mean, *ln_rstd;
    float *pooled;                /* [B,C] */
    float *embed;                 /* [B,proj_dim] */
} mc_vit_train_state;

int mc_vit_train_state_init(mc_vit_train_state *st, const mc_vit *m, mc_err *e);
void mc_vit_train_state_free(mc_vit_train_state *st);
int mc_vit_train_sizes(const mc_vit *m, int B, int R, const mc_dropout_rates *rates, size_t *tape_floats,
                       size_t *work_floats, mc_err *e);
int mc_vit_train_forward(mc_train_ctx *ctx, const mc_vit *m, mc_vit_train_state *st, const float *images, int B, int R,
                         mc_err *e);
/* dembed [B,proj_dim] -> parameter gradients (+=). */
int mc_vit_train_backward(mc_train_ctx *ctx, const mc_vit *m, mc_vit_train_state *st, const float *dembed, mc_err *e);

#endif
