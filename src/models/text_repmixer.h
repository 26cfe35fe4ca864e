/* text_repmixer.h - MobileCLIP's Text-RepMixer block (the first and last layers of the MCt
 * text encoder), computed in token layout [N, T, C] (the reference permutes to [N, C, 1, T]
 * and convolves 1xK over the sequence; the same arithmetic without the permutes).
 *
 * Training form, per channel c (BN = eval BatchNorm, dw = depthwise 1xK conv over tokens,
 * zero padded by K/2 on each side):
 *   mixer(x) = BN_ms(x) + BN_mc(dw(x, W_m))        MobileOneBlock: skip + conv branch, no act
 *   norm(x)  = BN_n(x)                             MobileOneBlock with only the skip BN
 *   x = x + ls_tm * (mixer(x) - norm(x))
 *   x = x + ls * fc2(gelu(fc1(BN_f(dw(x, W_f)))))  ConvFFN, fc1/fc2 are 1x1 convs = Linear
 * Reparameterized form: the token mixer folds into one depthwise conv with bias,
 *   W = id + ls_tm * (W_mixer - W_norm), b = ls_tm * (b_mixer - b_norm);
 * the ConvFFN's conv+BN also folds into a depthwise conv with bias.
 *
 * Names under a block prefix P: P token_mixer.layer_scale [C,1,1], P token_mixer.norm.rbr_skip.*,
 * P token_mixer.mixer.rbr_skip.*, P token_mixer.mixer.rbr_conv.0.{conv.weight [C,1,1,K], bn.*},
 * P convffn.conv.{conv.weight [C,1,1,K], bn.*}, P convffn.fc1.{weight [F,C,1,1], bias},
 * P convffn.fc2.{weight [C,F,1,1], bias}, P layer_scale [C,1,1].
 */
#ifndef MC_MODELS_TEXT_REPMIXER_H
#define MC_MODELS_TEXT_REPMIXER_H

#include <stddef.h>

#include "core/tensor.h"

typedef struct mc_text_repmixer {
    int dim, kernel, hidden;          /* C, K, F */
    /* borrowed from the tensor map */
    const float *tm_ls, *ls;          /* [C] token-mixer and block layer scales */
    const float *fc1_w, *fc1_b;       /* [F, C], [F] */
    const float *fc2_w, *fc2_b;       /* [C, F], [C] */
    /* owned, one allocation (`buf`):
     * training form: mixer conv and ConvFFN conv kernels transposed to [K, C], and per channel
     * scale/shift of the four BatchNorms (ms = mixer skip, mc = mixer conv, n = norm, f = ffn);
     * reparameterized form (valid once `reparameterized`): reparameterized kernels [K, C] + biases [C]. */
    float *buf;
    float *wm_t, *wf_t;               /* [K, C] */
    float *ms_s, *ms_t, *mc_s, *mc_t, *n_s, *n_t, *f_s, *f_t;  /* [C] */
    float *rm_w, *rm_b, *rf_w, *rf_b; /* [K, C], [C], [K, C], [C] */
    int reparameterized;
    /* borrowed raw tensors kept for reparameterization */
    const float *wm, *wf;             /* [C, 1, 1, K] */
    const float *bn[4][4];            /* ms, mc, n, f: weight, bias, running_mean, running_var */
} mc_text_repmixer;

/* Binds the block at `prefix` (ending in '.') of width `dim`; the kernel size and FFN width
 * come from the tensors. Errors name the missing or mis-shaped tensor. */
int mc_text_repmixer_bind(mc_text_repmixer *b, mc_tensor_map *w, const char *prefix, int dim, mc_err *e);
/* The same with the kernel size and FFN width given (a configuration; <= 0: read them). */
int mc_text_repmixer_bind_dims(mc_text_repmixer *b, mc_tensor_map *w, const char *prefix, int dim, int kernel,
                               int hidden, mc_err *e);
/* Recomputes the training form's caches and the reparameterized kernels from the current parameter
 * values (any number of times). Returns 0 or MC_E_NOMEM. */
int mc_text_repmixer_reparameterize(mc_text_repmixer *b);
void mc_text_repmixer_free(mc_text_repmixer *b);

size_t mc_text_repmixer_scratch(const mc_text_repmixer *b, int N, int T);
/* x[N, T, C] in place; reparameterized selects the reparameterized form (requires reparameterize first). */
void mc_text_repmixer_forward(const mc_text_repmixer *b, float *x, int N, int T, int reparameterized, float *scratch);
/* The same block when only row rows[n] of each sequence is read afterwards (the last text
 * layer before pooling): the token mixer and the FFN's depthwise conv over every position,
 * the 1x1 convs for the pooled rows only: out[n] = block(x)[n, rows[n]], out [N, C].
 * x is overwritten (with the token mixer's output). Same scratch size. */
void mc_text_repmixer_forward_rows(const mc_text_repmixer *b, float *x, int N, int T, int reparameterized, const int *rows,
                                   float *out, float *scratch);

/* out[N, T, C] = bias[c] + sum_k w_t[k, c] * x[n, t + k - K/2, c] (zero padding); bias may be NULL.
 * Must not alias. */
void mc_dwconv_tokens_forward(float *out, const float *x, const float *w_t, const float *bias, int N, int T, int C,
                              int K);

#endif
