/* text_train.h - training-mode forward and backward of the MobileCLIP text towers (MCt:
 * Text-RepMixer blocks with BatchNorm around the transformer layers; Base: transformer
 * layers only; causal or not), on the existing mc_text_encoder structs.
 *
 *   x = tok_emb[tokens] + pos_emb;  x = block_i(x);  x = LN(x);
 *   embed[n] = x[n, argmax(tokens[n])] @ projection
 *
 * Conventions as mci_train.h: parameters read through the model's pointers, gradients
 * accumulated through ctx->grads, BatchNorm batch statistics over the N*T positions of the
 * batch (padding included, as the reference) with running-stat updates when ctx->train,
 * every saved tensor in ctx->tape, backward temporaries in ctx->work. The Text-RepMixer's
 * convolution kernels are re-read from the parameters ([C,1,1,K]) at every forward (the
 * transposed copies the inference form keeps would go stale after an optimizer step).
 * With ctx->train == 0 the forward equals mc_text_encoder_forward (training form).
 */
#ifndef MC_MODELS_TEXT_TRAIN_H
#define MC_MODELS_TEXT_TRAIN_H

#include <stdint.h>

#include "models/text_encoder.h"
#include "models/train_tape.h"

typedef struct mc_text_repmixer_save {
    const float *x;          /* [N,T,C] */
    float *wm_t, *wf_t;      /* kernels as [K,C] */
    float *a;                /* mixer depthwise conv of x */
    mc_bn_save bn[4];        /* mixer skip, mixer conv, norm, ffn */
    float *t;                /* mixer(x) - norm(x) */
    float *x1;               /* x + ls_tm * t */
    float *d, *e;            /* ffn depthwise conv of x1, its BN */
    float *h, *f;            /* fc1 output (GELU recomputed by backward), fc2 output */
    float *out;
} mc_text_repmixer_save;

typedef struct mc_transformer_save {
    const float *x;          /* [N,T,C] */
    float *h1, *mean1, *rstd1; /* ln1 output [N*T,C], statistics [N*T] */
    float *qkv, *p, *o;      /* [N,T,3C], [N,H,T,T], [N,T,C] */
    float *x1;               /* x + out_proj(o) */
    float *h2, *mean2, *rstd2;
    float *f;                /* fc1 output [N*T,F] (GELU recomputed by backward) */
    float *out;
    /* with dropout / stochastic depth (NULL when off): masks of out_proj's output [N*T,C], of
     * the GELU output [N*T,F] and of fc2's output [N*T,C], of the attention probabilities
     * [N,H,T,T]; per-sample factors [N] of the two branches (0 or 1/(1-p)) */
    float *m_o, *m_g, *m_f, *m_p, *keep1, *keep2;
    int masked;              /* any of them on (set while measuring too) */
} mc_transformer_save;

typedef struct mc_text_train_state {
    int N;
    int n_blocks;
    mc_text_repmixer_save *rm;   /* [n_blocks] (used where the block is a RepMixer) */
    mc_transformer_save *tf;     /* [n_blocks] */
    const int32_t *tokens;       /* [N,T] (caller's, must stay valid until backward) */
    float *x0;                   /* embedding output (after embed_dropout) */
    float *m_e;                  /* embed_dropout mask [N*T,C], NULL when off */
    const float *xl;             /* last block output */
    float *xf, *ln_mean, *ln_rstd; /* final LayerNorm output and statistics */
    int32_t *eot;                /* [N] pooled positions */
    float *pooled;               /* [N,C] */
    float *embed;                /* [N,P] (not normalised) */
} mc_text_train_state;

int mc_text_train_state_init(mc_text_train_state *st, const mc_text_encoder *m, mc_err *e);
void mc_text_train_state_free(mc_text_train_state *st);
/* rates: the tower's dropout (NULL: none; masks need room only when a rate is > 0). */
int mc_text_train_sizes(const mc_text_encoder *m, int N, const mc_dropout_rates *rates, size_t *tape_floats,
                        size_t *work_floats, mc_err *e);

/* tokens [N, context] -> st->embed [N, P]. ctx->rate: the tower's rates (embed, and drop, ffn, attn
 * and drop_path for every transformer layer). */
int mc_text_train_forward(mc_train_ctx *ctx, const mc_text_encoder *m, mc_text_train_state *st,
                          const int32_t *tokens, int N, mc_err *e);
/* dembed [N,P] -> parameter gradients (+=), including the token-embedding rows used. */
int mc_text_train_backward(mc_train_ctx *ctx, const mc_text_encoder *m, mc_text_train_state *st, const float *dembed,
                           mc_err *e);

/* Blocks, exposed for the block-level tests: x, out [N,T,C]; dx written. */
float *mc_text_repmixer_train_forward(mc_train_ctx *ctx, const mc_text_repmixer *b, mc_text_repmixer_save *s,
                                      const float *x, int N, int T);
void mc_text_repmixer_train_backward(mc_train_ctx *ctx, const mc_text_repmixer *b, const mc_text_repmixer_save *s,
                                     float *dx, const float *dy, int N, int T);
/* ctx->rate.drop, .ffn, .attn and .drop_path (this layer's own rate) apply; masks and factors
 * drawn from ctx->rng in the forward are reused by the backward. Attention dropout is applied on
 * the unmasked path (mask == NULL) only: the masked one serves CoCa, whose open_clip
 * configuration has no such rate (its trainer leaves ctx->rate at 0). */
float *mc_transformer_train_forward(mc_train_ctx *ctx, const mc_transformer_layer *l, mc_transformer_save *s,
                                    const float *x, int N, int T, int causal);
void mc_transformer_train_backward(mc_train_ctx *ctx, const mc_transformer_layer *l, const mc_transformer_save *s,
                                   float *dx, const float *dy, int N, int T, int causal);
/* The same with a byte mask [N,T,T] on top of `causal` (1: key visible; mc_attention_general's
 * rule; NULL: none), e.g. CoCa's CLS row. The mask must stay valid until backward. */
float *mc_transformer_train_forward_masked(mc_train_ctx *ctx, const mc_transformer_layer *l, mc_transformer_save *s,
                                           const float *x, int N, int T, int causal, const uint8_t *mask);
void mc_transformer_train_backward_masked(mc_train_ctx *ctx, const mc_transformer_layer *l,
                                          const mc_transformer_save *s, float *dx, const float *dy, int N, int T,
                                          int causal, const uint8_t *mask);

#endif
