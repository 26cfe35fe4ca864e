/* layers.h - training layers: mc_<layer>_forward / mc_<layer>_backward pairs.
 *
 * Layouts as PyTorch: feature maps NCHW float32 contiguous, token sequences [N, T, C].
 * Conventions shared by every pair (docs/ARCHITECTURE.md, "Training layers"):
 *  - forward writes its output and saves what backward needs into caller-provided arrays
 *    (named `save_*` / documented per function); the inputs it reads must stay untouched
 *    until backward (the training forward never overwrites a tensor that backward needs);
 *  - backward ACCUMULATES (+=) into parameter gradients (dw, db, ...: shared and tied
 *    parameters work and zero_grad is one memset of the gradient arena) and WRITES the input
 *    gradient dx, except where a function takes `acc_dx`: then acc_dx = 1 adds into dx
 *    (residual streams, several consumers of one tensor);
 *  - a NULL parameter gradient pointer skips that gradient (frozen parameter, no bias);
 *  - no allocation inside: scratch is caller-provided and sized by the *_scratch() query;
 *  - OpenMP over batch / channels inside, no global state; results are deterministic for a
 *    given thread count.
 * Forwards that need nothing beyond their input reuse the inference kernels of nn/ops.h
 * (mc_conv2d_forward, mc_linear_forward, mc_matmul_forward, mc_gelu_forward, ...).
 * The residual add y = x + f(x) needs no layer: its backward passes dy to both (acc_dx).
 */
#ifndef MC_NN_LAYERS_H
#define MC_NN_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "nn/ops.h"

/* ---------------------------------------------------------------- convolution */

/* Backward of mc_conv2d_forward: x [B,cin,H,W], w [cout,cin/g,kh,kw], dy [B,cout,Ho,Wo].
 * dw [cout,cin/g,kh,kw] +=, db [cout] += (either may be NULL), dx [B,cin,H,W] written
 * (acc_dx = 0) or added to (acc_dx = 1); dx NULL skips it (first layer).
 * scratch: mc_conv2d_backward_scratch() floats. */
size_t mc_conv2d_backward_scratch(const mc_conv2d_shape *s, int H, int W);
void mc_conv2d_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                        const mc_conv2d_shape *s, int B, int H, int W, int acc_dx, float *scratch);

/* Depthwise 1 x K convolution over tokens, x [N,T,C], w_t [K,C] (kernel transposed from the
 * checkpoint's [C,1,1,K]), zero padding K/2 (MobileCLIP's Text-RepMixer convolutions):
 * forward is mc_dwconv_tokens_forward (models/text_repmixer.h). Backward:
 * dw_t [K,C] +=, db [C] += (NULL skips), dx [N,T,C] written. */
void mc_dwconv_tokens_backward(float *dx, float *dw_t, float *db, const float *dy, const float *x,
                               const float *w_t, int N, int T, int C, int K);

/* ---------------------------------------------------------------- normalisation */

/* BatchNorm over channel c of x[outer, C, inner] (NCHW: outer = B, inner = H*W; tokens
 * [N,T,C] normalised per C: outer = N*T, inner = 1).
 * Training mode (PyTorch BatchNorm2d.train()): batch mean and biased variance over
 * outer*inner values normalise; running_mean/var (may be NULL) become
 * (1-momentum) r + momentum * stat with the UNBIASED batch variance (n/(n-1)); *counter
 * (num_batches_tracked, may be NULL) += 1. save_mean, save_rstd [C] (1/sqrt(var_b + eps))
 * are kept for backward. w, b [C] (NULL = 1, 0). y may alias x only if backward gets x from
 * elsewhere (it needs the normalised input x). */
void mc_batchnorm_train_forward(float *y, float *save_mean, float *save_rstd, const float *x, const float *w,
                                const float *b, float *running_mean, float *running_var, int64_t *counter,
                                float momentum, float eps, int outer, int C, int inner);
/* dx written (acc_dx = 1: added); dw, db [C] += . x the forward input, mean/rstd as saved. */
void mc_batchnorm_train_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                                 const float *save_mean, const float *save_rstd, const float *w, int outer, int C,
                                 int inner, int acc_dx);
/* Eval mode (running statistics, no update): y = (x - rm) * rsqrt(rv + eps) * w + b. */
void mc_batchnorm_eval_forward(float *y, const float *x, const float *w, const float *b, const float *running_mean,
                               const float *running_var, float eps, int outer, int C, int inner);
/* dx written (acc_dx = 1: added); dw, db += . */
void mc_batchnorm_eval_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                                const float *running_mean, const float *running_var, float eps, int outer, int C,
                                int inner, int acc_dx);

/* LayerNorm over the last dimension of x[N, C] (mc_layernorm_forward's arithmetic, biased
 * variance; y must not alias x): save_mean, save_rstd [N]. Backward: dx written (acc_dx = 1: added), dw, db [C] +=. */
void mc_layernorm_train_forward(float *y, float *save_mean, float *save_rstd, const float *x, const float *w,
                                const float *b, int N, int C, float eps);
void mc_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *save_mean,
                           const float *save_rstd, const float *w, int N, int C, int acc_dx);

/* ---------------------------------------------------------------- linear maps */

/* Backward of mc_linear_forward (nn.Linear, W [out,in]): x [N,in], dy [N,out];
 * dW [out,in] +=, db [out] += (NULL skips), dx [N,in] written / added (acc_dx). dx NULL skips. */
void mc_linear_backward(float *dx, float *dW, float *db, const float *dy, const float *x, const float *W, int N,
                        int in_f, int out_f, int acc_dx);
/* Backward of mc_matmul_forward (y = x @ P, P [in,out]): dP += x^T dy, dx = dy P^T. */
void mc_matmul_backward(float *dx, float *dP, const float *dy, const float *x, const float *P, int N, int in_f,
                        int out_f, int acc_dx);

/* ---------------------------------------------------------------- elementwise */

/* dx = dy * f'(x) (acc_dx: +=). GELU exact (erf); ReLU's gradient at 0 is 0 as PyTorch;
 * sigmoid takes its output y. */
void mc_gelu_backward(float *dx, const float *dy, const float *x, size_t n, int acc_dx);
void mc_relu_backward(float *dx, const float *dy, const float *x, size_t n, int acc_dx);
void mc_sigmoid_backward(float *dx, const float *dy, const float *y, size_t n, int acc_dx);

/* Softmax over the last dimension (forward: mc_softmax_rows, in place): y [rows, cols]
 * the forward output; dx = y * (dy - sum(dy * y)). dx may alias dy. */
void mc_softmax_backward(float *dx, const float *dy, const float *y, int rows, int cols);

/* Layer scale in a residual branch, y[B,C,HW] += ls[c] * f[B,C,HW] (forward:
 * mc_add_scaled_channels): df = ls * dy written, dls [C] += sum dy * f. For token layout
 * [N,T,C] use B = N*T, C, HW = 1. */
void mc_layer_scale_backward(float *df, float *dls, const float *dy, const float *f, const float *ls, int B, int C,
                             int HW);

/* Squeeze-excite gating y[B,C,HW] = x * g[B,C] (forward: mc_scale_channels on a copy):
 * dx = dy * g written, dg [B,C] = sum_hw dy * x written. */
void mc_scale_channels_backward(float *dx, float *dg, const float *dy, const float *x, const float *g, int B, int C,
                                int HW);

/* Mean over HW (forward mc_mean_hw_forward): dx[b,c,:] = dy[b,c] / HW (acc_dx: +=). */
void mc_mean_hw_backward(float *dx, const float *dy, int B, int C, int HW, int acc_dx);

/* L2 normalisation of features (F.normalize) with its backward: mc_l2_normalize_forward /
 * _backward in train/loss.h, next to the loss that consumes it. */

/* ---------------------------------------------------------------- attention */

/* Multi-head scaled dot-product attention as mc_attention_forward (qkv [N,T,3*H*D] packed
 * [q|k|v], heads contiguous; out [N,T,H*D]; scores scaled by `scale`; causal: t sees <= t),
 * saving the probabilities save_p [N,H,T,T] (zeros above the diagonal when causal).
 * Backward: dqkv [N,T,3*H*D] written from dout [N,T,H*D]. scratch: T*T floats per (n, h),
 * mc_attention_backward_scratch(). */
void mc_attention_train_forward(float *out, float *save_p, const float *qkv, int N, int T, int H, int D, float scale,
                                int causal);
size_t mc_attention_backward_scratch(int N, int T, int H);
void mc_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *save_p, int N, int T, int H,
                           int D, float scale, int causal, float *scratch);
/* The same with dropout p in (0, 1) on the probabilities (the reference MHA's attn_dropout):
 * save_mask [N,H,T,T] drawn serially from rng (0 or 1/(1-p)), out = (P * mask) V with save_p
 * the undropped P; the backward takes both. */
void mc_attention_dropout_train_forward(float *out, float *save_p, float *save_mask, const float *qkv, int N, int T,
                                        int H, int D, float scale, int causal, float p, mc_rng *rng);
void mc_attention_dropout_backward(float *dqkv, const float *dout, const float *qkv, const float *save_p,
                                   const float *save_mask, int N, int T, int H, int D, float scale, int causal,
                                   float *scratch);

/* Training form of mc_attention_general (nn/ops.h: queries and keys/values in separate,
 * strided sequences, causal_off and the byte mask; kv_index must be NULL): save_p [N,H,Tq,Tk]
 * (0 where a key is hidden). Backward ACCUMULATES into dq, dk, dv, laid out as a->q, a->k, a->v
 * (same strides: a shared query block, q_batch 0, sums over the batch); scratch:
 * mc_attention_general_backward_scratch() floats. */
void mc_attention_general_train_forward(float *out, float *save_p, const mc_attention_args *a, int N);
size_t mc_attention_general_backward_scratch(const mc_attention_args *a);
void mc_attention_general_backward(float *dq, float *dk, float *dv, const float *dout, const mc_attention_args *a,
                                   const float *save_p, int N, float *scratch);

/* ---------------------------------------------------------------- text embedding and pooling */

/* x[n,t,:] = tok_emb[tokens[n,t]] + pos_emb[t]  (tok_emb [V,C], pos_emb [T,C]); ids are
 * trusted (checked by the caller). Backward: dtok [V,C] += (rows of the used ids), dpos
 * [T,C] += (sum over n); either may be NULL. */
void mc_embedding_forward(float *x, const int32_t *tokens, const float *tok_emb, const float *pos_emb, int N, int T,
                          int C);
void mc_embedding_backward(float *dtok, float *dpos, const float *dx, const int32_t *tokens, int N, int T, int C);

/* EOT pooling: out[n] = x[n, idx[n]] with idx[n] = first position of the largest id of
 * tokens[n] (argmax, as torch.argmax: first maximum); save_idx [N]. Backward: dx [N,T,C]
 * written (zeros except the pooled rows). */
void mc_eot_pool_forward(float *out, int32_t *save_idx, const float *x, const int32_t *tokens, int N, int T, int C);
void mc_eot_pool_backward(float *dx, const float *dout, const int32_t *save_idx, int N, int T, int C);

/* ---------------------------------------------------------------- regularisation */

/* Masks draw mc_rng_uniform from an explicit, seeded mc_rng (core/rng.h): no hidden global
 * state; the mask is drawn serially, so it depends on the seed only, not on the threads. */

/* Dropout (nn.Dropout in training): mask[i] = 0 or 1/(1-p) (inverted dropout);
 * y = x * mask. p = 0 (the default everywhere): y = x, mask all 1. p in [0, 1).
 * Backward: dx = dy * mask. y may alias x. */
void mc_dropout_forward(float *y, float *save_mask, const float *x, size_t n, float p, mc_rng *rng);
void mc_dropout_backward(float *dx, const float *dy, const float *save_mask, size_t n);
/* Stochastic depth (timm DropPath, scale_by_keep): per sample b of x[B, per] one keep
 * decision, save_keep[b] = 0 or 1/(1-p); y = x * keep. p = 0: identity. y may alias x.
 * Backward: dx = dy * keep. */
void mc_drop_path_forward(float *y, float *save_keep, const float *x, int B, size_t per, float p, mc_rng *rng);
void mc_drop_path_backward(float *dx, const float *dy, const float *save_keep, int B, size_t per);

#endif
