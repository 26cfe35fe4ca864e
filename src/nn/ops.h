/* ops.h - forward kernels of the layers MobileCLIP is made of.
 *
 * Layout conventions (as PyTorch, so traces compare layer by layer):
 *   images / feature maps: NCHW float32, contiguous;  token sequences: [N, T, C] contiguous.
 * Every op writes to a caller-provided output (which may alias the input only where the
 * comment says "in place ok"). Backward passes join as *_backward with the same shapes
 * when training arrives. Threading: OpenMP inside, no global state.
 */
#ifndef MC_NN_OPS_H
#define MC_NN_OPS_H

#include <stddef.h>
#include <stdint.h>

/* Convolution geometry. Weight [cout, cin/groups, kh, kw]; bias [cout] or NULL. */
typedef struct mc_conv2d_shape {
    int cin, cout, kh, kw, stride, pad_h, pad_w, groups;
} mc_conv2d_shape;

static inline int mc_conv_out(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

/* out[B,cout,Ho,Wo] = conv(in[B,cin,H,W]). Uses a direct kernel for depthwise-style
 * grouped convolutions and im2col + GEMM otherwise. */
void mc_conv2d_forward(float *out, const float *in, const float *weight, const float *bias,
                       const mc_conv2d_shape *s, int B, int H, int W);

/* What follows a convolution, fused into its GEMM's tiles where it has one:
 * gelu: out = GELU(out); res: res[B,cout,Ho,Wo] += res_scale[c] * out (a layer-scaled
 * residual; out is written too). The results are those of mc_gelu_forward and
 * mc_add_scaled_channels run after the convolution. */
typedef struct mc_conv_epilogue {
    int gelu;
    float *res;
    const float *res_scale; /* [cout] */
} mc_conv_epilogue;
void mc_conv2d_forward_ep(float *out, const float *in, const float *weight, const float *bias,
                          const mc_conv2d_shape *s, int B, int H, int W, const mc_conv_epilogue *ep);

/* y[B,C,HW] = x * scale[c] + shift[c]   (in place ok). BatchNorm in eval mode reduces to this. */
void mc_channel_affine_forward(float *y, const float *x, const float *scale, const float *shift,
                               int B, int C, int HW);
/* y[B,C,HW] += x * scale[c] + shift[c]   (a BatchNorm branch added to a sum) */
void mc_channel_affine_add(float *y, const float *x, const float *scale, const float *shift, int B, int C, int HW);
/* y[B,C,HW] *= g[B,C]   (squeeze-excite gates) */
void mc_scale_channels(float *y, const float *g, int B, int C, int HW);
/* scale = w / sqrt(var + eps), shift = b - mean * scale. Arrays [C]. */
void mc_batchnorm_eval_coeffs(float *scale, float *shift, const float *w, const float *b,
                              const float *mean, const float *var, float eps, int C);

/* y[N,C] = layernorm over C of x[N,C] with weight/bias [C] (in place ok). float32 math. */
void mc_layernorm_forward(float *y, const float *x, const float *w, const float *b, int N, int C, float eps);

/* out[N,out] = in[N,in] @ W^T + b, W [out,in] as nn.Linear stores it; b may be NULL. */
void mc_linear_forward(float *out, const float *in, const float *W, const float *b, int N, int in_f, int out_f);
/* out[N,out] += in[N,in] @ W^T + b: residual branches accumulate straight into the stream. */
void mc_linear_accumulate(float *out, const float *in, const float *W, const float *b, int N, int in_f, int out_f);
/* out[N,out] = GELU(in[N,in] @ W^T + b), the GELU run on each finished GEMM tile. */
void mc_linear_gelu_forward(float *out, const float *in, const float *W, const float *b, int N, int in_f, int out_f);
/* out[N,out] = in[N,in] @ P with P [in,out] (projection matrices stored `x @ P`). */
void mc_matmul_forward(float *out, const float *in, const float *P, int N, int in_f, int out_f);

/* Elementwise (in place ok). GELU is the exact erf form. */
void mc_gelu_forward(float *y, const float *x, size_t n);
/* QuickGELU (OpenAI CLIP / open_clip quick_gelu): x * sigmoid(1.702 x). */
void mc_quickgelu_forward(float *y, const float *x, size_t n);
void mc_relu_forward(float *y, const float *x, size_t n);
void mc_sigmoid_forward(float *y, const float *x, size_t n);
/* y += x;  y -= x;  y = -x (on the library's threads) */
void mc_add_forward(float *y, const float *x, size_t n);
void mc_sub_forward(float *y, const float *x, size_t n);
void mc_neg_forward(float *y, const float *x, size_t n);
/* y[B,C,HW] += scale[c] * x[B,C,HW]   (layer scales) */
void mc_add_scaled_channels(float *y, const float *x, const float *scale, int B, int C, int HW);

/* Softmax over the last dimension of x[rows, cols], in place. */
void mc_softmax_rows(float *x, int rows, int cols);

/* Multi-head scaled dot-product attention.
 * qkv [N, T, 3*H*D] packed as [q | k | v], heads contiguous inside each (h*D + d);
 * out [N, T, H*D]. q is multiplied by `scale` before q k^T; softmax in float32;
 * causal: position t attends to positions <= t only.
 * Returns 0, or MC_E_NOMEM when its per-thread buffers (3*T*D + T floats) cannot be allocated. */
int mc_attention_forward(float *out, const float *qkv, int N, int T, int H, int D, float scale, int causal);

/* Attention with separate query and key/value sequences, for cross-attention, attentional
 * pooling and KV-cached decoding. Sequence n's queries are rows q + n*q_batch + i*q_ld
 * (i < Tq), its keys/values rows k|v + m*kv_batch + j*kv_ld (j < Tk) with m = kv_index[n]
 * (kv_index NULL: m = n; kv_batch 0: one sequence shared by all), head h at columns h*D.
 * Key j is visible to query i when j <= i + causal_off (INT_MAX: all keys) and, if mask is
 * given, mask[(n*Tq + i)*Tk + j] != 0 (an additive -inf mask as a byte mask). A row that
 * sees no key yields zeros. out [N, Tq, H*D] contiguous. Returns 0 or MC_E_NOMEM. */
typedef struct mc_attention_args {
    const float *q, *k, *v;
    size_t q_ld, kv_ld, q_batch, kv_batch;
    const int *kv_index;
    int Tq, Tk, H, D;
    float scale;
    int causal_off;
    const uint8_t *mask;
} mc_attention_args;
int mc_attention_general(float *out, const mc_attention_args *a, int N);

/* out[B,C] = mean over HW of x[B,C,HW] */
void mc_mean_hw_forward(float *out, const float *x, int B, int C, int HW);

/* Layout changes: [B,C,HW] <-> [B,HW,C]. */
void mc_transpose_chw_to_hwc(float *out, const float *x, int B, int C, int HW);
void mc_transpose_hwc_to_chw(float *out, const float *x, int B, int C, int HW);

/* v /= ||v||_2 for each of the n rows of length d (rows of zeros stay zero). */
void mc_l2_normalize_rows(float *v, int n, int d);

#endif
