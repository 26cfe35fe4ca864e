/* mci_train.h - training-mode forward and backward of the MCi image towers (training form:
 * MobileOne conv/scale/skip branches, RepMixer, ConvFFN, PatchEmbed, RepCPE, attention
 * blocks, conv_exp, mean pool, head projection), on the existing mc_mci structs.
 *
 * Parameters: the model's pointers (bound from a map whose views point into the parameter
 *   store) are read; their gradients are found through an mc_grad_map (train_tape.h) and
 *   accumulated (+=). BatchNorm in training mode (ctx->train) normalises with batch
 *   statistics and updates the running statistics in place (momentum ctx->bn_momentum, the
 *   unbiased batch variance; the running buffers must therefore point to writable memory,
 *   as the store's are). num_batches_tracked is not bound by the model: the caller counts
 *   training forwards (one per step, every BatchNorm alike). With ctx->train == 0 BatchNorm
 *   uses the running statistics, and the forward equals mc_mci_forward (training form).
 * Activations: every tensor the backward needs is carved from ctx->tape by the forward;
 *   the backward's temporaries from ctx->work (as a stack). mc_mci_train_sizes gives both
 *   sizes for a batch (a measure pass of the same code).
 */
#ifndef MC_MODELS_MCI_TRAIN_H
#define MC_MODELS_MCI_TRAIN_H

#include "models/mci.h"
#include "models/train_tape.h"

/* Saved state of one layer or block (pointers into ctx->tape; shapes in the comments). */
typedef struct mc_se_save {
    const float *x;     /* input [B,C,HW] */
    float *pooled;      /* [B,C] */
    float *h, *hr;      /* reduce output before / after ReLU [B,rd] */
    float *g;           /* sigmoid gate [B,C] */
    float *out;         /* x * g [B,C,HW] */
} mc_se_save;

typedef struct mc_mobileone_save {
    int B, H, W, Ho, Wo;
    const float *x;                  /* input [B,cin,H,W] */
    float *conv, *scale;             /* branch convolutions before BN [B,cout,Ho,Wo] */
    mc_bn_save bn_conv, bn_scale, bn_skip;
    float *sum;                      /* branch sum [B,cout,Ho,Wo] */
    mc_se_save se;
    float *pre;                      /* GELU input (sum or SE output) */
    float *out;                      /* block output */
} mc_mobileone_save;

typedef struct mc_convffn_save {
    const float *x;     /* [B,C,H,W] */
    float *dw;          /* depthwise conv before BN */
    mc_bn_save bn;
    float *a;           /* BN output (fc1 input) */
    float *h;           /* fc1 output [B,hidden,H,W] (its GELU is recomputed by backward) */
    float *out;         /* fc2 output [B,C,H,W] (after dropout) */
    float *m_g, *m_o;   /* drop_rate masks of the GELU output [B,hidden,H,W] and of fc2's output, NULL when off */
    int dropout;        /* they are on (set while measuring too) */
} mc_convffn_save;

typedef struct mc_repmixer_save {
    const float *x;
    mc_mobileone_save mixer;
    mc_bn_save norm;
    float *t;           /* mixer(x) - norm(x) */
    float *x1;          /* x + ls_mix * t */
    mc_convffn_save ffn;  /* ffn.out is kept multiplied by the drop-path factors */
    float *keep;        /* drop-path factors [B] (0 or 1/(1-p)), NULL when off */
    float *out;         /* x1 + ls * keep * ffn(x1) */
} mc_repmixer_save;

typedef struct mc_attention_save {
    const float *x;     /* [B,C,N] */
    mc_bn_save bn;
    float *tok;         /* bn(x) as tokens [B,N,C] */
    float *qkv;         /* [B,N,3C] */
    float *p;           /* attention probabilities [B,heads,N,N] */
    float *o;           /* attention output [B,N,C] */
    float *a;           /* projection back in [B,C,N] (times keep1) */
    float *x1;          /* x + ls1 * a */
    mc_convffn_save ffn;  /* ffn.out times keep2 */
    float *keep1, *keep2; /* drop-path factors [B] of the two branches, NULL when off */
    float *out;
} mc_attention_save;

typedef struct mc_patch_embed_save {
    const float *x;
    int H, W, Ho, Wo;
    float *lk, *sm;     /* 7x7/2 and 3x3/2 depthwise outputs before BN [B,cout,Ho,Wo] */
    mc_bn_save bn_lk, bn_sm;
    float *sum;
    mc_se_save se;
    float *pre, *g;     /* GELU input / output */
    mc_mobileone_save pw;
} mc_patch_embed_save;

/* Per-model training state: the saves of every block of one step (metadata; the tensors
 * are in the tape). */
typedef struct mc_mci_train_state {
    int B, R, Hf, Wf;                              /* batch, input size, final feature size */
    mc_mobileone_save stem[3];
    mc_repmixer_save *rep[MC_MCI_MAX_ELEMENTS];    /* [nblocks] per RepMixer stage */
    mc_attention_save *attn[MC_MCI_MAX_ELEMENTS];  /* [nblocks] per attention stage */
    mc_patch_embed_save pe[MC_MCI_MAX_ELEMENTS];
    const float *cpe_x[MC_MCI_MAX_ELEMENTS];       /* RepCPE inputs */
    int elem_hw[MC_MCI_MAX_ELEMENTS][2];           /* input H, W of each element */
    mc_mobileone_save conv_exp;
    float *pooled;                                 /* [B, 2*C3] */
    float *embed;                                  /* [B, E] (not normalised) */
    size_t max_act;                                /* largest activation (floats) */
} mc_mci_train_state;

int mc_mci_train_state_init(mc_mci_train_state *st, const mc_mci *m, mc_err *e);
void mc_mci_train_state_free(mc_mci_train_state *st);

/* Floats of ctx->tape and ctx->work one training step of batch B at R x R needs, with the
 * tower's dropout rates (NULL: none; the masks need room only when a rate is > 0). */
int mc_mci_train_sizes(const mc_mci *m, int B, int R, const mc_dropout_rates *rates, size_t *tape_floats,
                       size_t *work_floats, mc_err *e);

/* images [B,3,R,R] -> st->embed [B,E] (in the tape). Runs the training form from the
 * parameters (a reparameterized plan, if built, is not used and goes stale: rebuild it after optimizer
 * steps with mc_clip_plan_build). Fails (MC_E_NOMEM) when the tape is too small. */
int mc_mci_train_forward(mc_train_ctx *ctx, const mc_mci *m, mc_mci_train_state *st, const float *images, int B, int R,
                         mc_err *e);
/* dembed [B,E] -> parameter gradients (+=). No image gradient. */
int mc_mci_train_backward(mc_train_ctx *ctx, const mc_mci *m, mc_mci_train_state *st, const float *dembed, mc_err *e);

/* ---- blocks, exposed for the block-level tests ---- */
/* Each forward takes its output from ctx->tape and returns it (NULL in measure mode);
 * each backward writes dx [input shape] from dy [output shape]. The RepMixer and attention
 * blocks apply ctx->rate.drop_path as their own rate (the tower sets each block's) and
 * ctx->rate.drop in their ConvFFN. */
float *mc_mci_mobileone_train_forward(mc_train_ctx *ctx, const mc_mci_mobileone *blk, mc_mobileone_save *s,
                                      const float *x, int B, int H, int W);
void mc_mci_mobileone_train_backward(mc_train_ctx *ctx, const mc_mci_mobileone *blk, const mc_mobileone_save *s,
                                     float *dx, const float *dy);
float *mc_mci_repmixer_train_forward(mc_train_ctx *ctx, const mc_mci_repmixer_block *blk, mc_repmixer_save *s,
                                     const float *x, int B, int H, int W);
void mc_mci_repmixer_train_backward(mc_train_ctx *ctx, const mc_mci_repmixer_block *blk, const mc_repmixer_save *s,
                                    float *dx, const float *dy, int B, int H, int W);
float *mc_mci_attention_train_forward(mc_train_ctx *ctx, const mc_mci_attention_block *blk, mc_attention_save *s,
                                      const float *x, int B, int H, int W);
void mc_mci_attention_train_backward(mc_train_ctx *ctx, const mc_mci_attention_block *blk, const mc_attention_save *s,
                                     float *dx, const float *dy, int B, int H, int W);
float *mc_mci_patch_embed_train_forward(mc_train_ctx *ctx, const mc_mci_patch_embed *pe, mc_patch_embed_save *s,
                                        const float *x, int B, int H, int W);
void mc_mci_patch_embed_train_backward(mc_train_ctx *ctx, const mc_mci_patch_embed *pe, const mc_patch_embed_save *s,
                                       float *dx, const float *dy, int B);
float *mc_mci_repcpe_train_forward(mc_train_ctx *ctx, const mc_mci_repcpe *cpe, const float *x, int B, int H, int W);
void mc_mci_repcpe_train_backward(mc_train_ctx *ctx, const mc_mci_repcpe *cpe, const float *x, float *dx,
                                  const float *dy, int B, int H, int W);

#endif
