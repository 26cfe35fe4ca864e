/* transformer.h - the pre-norm transformer encoder layer shared by the ViT image tower and
 * the text towers (MobileCLIP's `TransformerEncoder` with `MultiHeadAttention`).
 *
 *   x = x + out_proj(attention(qkv_proj(ln1(x))))      qkv_proj packs [q | k | v] rows
 *   x = x + fc2(gelu(fc1(ln2(x))))                      exact (erf) GELU, LayerNorm eps 1e-5
 *
 * Tensor names under a layer prefix P (e.g. "text_encoder.transformer.3."):
 *   P pre_norm_mha.0.{weight,bias}          ln1 [C]
 *   P pre_norm_mha.1.qkv_proj.{weight,bias} [3C, C], [3C]
 *   P pre_norm_mha.1.out_proj.{weight,bias} [C, C], [C]
 *   P pre_norm_ffn.0.{weight,bias}          ln2 [C]
 *   P pre_norm_ffn.1.{weight,bias}          fc1 [F, C], [F]
 *   P pre_norm_ffn.4.{weight,bias}          fc2 [C, F], [C]
 * Weights are borrowed from the tensor map (which must outlive the layer).
 */
#ifndef MC_MODELS_TRANSFORMER_H
#define MC_MODELS_TRANSFORMER_H

#include <stddef.h>

#include "core/tensor.h"

typedef struct mc_transformer_layer {
    int dim, ffn_dim, heads;       /* C, F, H (head_dim = C / H) */
    float ln_eps;
    const float *ln1_w, *ln1_b;    /* [C] */
    const float *qkv_w, *qkv_b;    /* [3C, C], [3C] */
    const float *out_w, *out_b;    /* [C, C], [C] */
    const float *ln2_w, *ln2_b;    /* [C] */
    const float *fc1_w, *fc1_b;    /* [F, C], [F] */
    const float *fc2_w, *fc2_b;    /* [C, F], [C] */
} mc_transformer_layer;

/* Binds the layer named `prefix` (ending in '.') of width `dim` with `heads` heads; the FFN
 * width comes from the fc1 weight. Errors name the missing or mis-shaped tensor. */
int mc_transformer_layer_bind(mc_transformer_layer *l, mc_tensor_map *w, const char *prefix, int dim, int heads,
                              mc_err *e);

/* Floats of scratch that mc_transformer_layer_forward needs for N sequences of T tokens. */
size_t mc_transformer_layer_scratch(const mc_transformer_layer *l, int N, int T);

/* x[N, T, C] is updated in place. causal: token t attends to tokens <= t only.
 * Returns 0, or MC_E_NOMEM (attention's small per-thread buffers). */
int mc_transformer_layer_forward(const mc_transformer_layer *l, float *x, int N, int T, int causal, float *scratch);

/* The same layer when only one position per sequence is read afterwards (the last text layer
 * before pooling): attention over all positions (keys and values of every token), then the
 * output projection and the FFN for row rows[n] of each sequence only:
 * out[n] = layer(x)[n, rows[n]], out [N, C]. x is not changed. Same scratch size. */
int mc_transformer_layer_forward_rows(const mc_transformer_layer *l, const float *x, int N, int T, int causal,
                                      const int *rows, float *out, float *scratch);

#endif
