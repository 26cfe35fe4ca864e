/* transformer.h - the pre-norm transformer encoder layer shared by the ViT image towers and
 * the text towers: MobileCLIP's `TransformerEncoder` with `MultiHeadAttention`, and
 * open_clip's `ResidualAttentionBlock` (nn.MultiheadAttention, no layer scale).
 *
 *   x = x + out_proj(attention(qkv_proj(ln1(x))))      qkv_proj packs [q | k | v] rows
 *   x = x + fc2(act(fc1(ln2(x))))                       act: exact (erf) GELU or QuickGELU,
 *                                                       LayerNorm eps 1e-5
 *
 * MobileCLIP tensor names under a layer prefix P (e.g. "text_encoder.transformer.3."):
 *   P pre_norm_mha.0.{weight,bias}          ln1 [C]
 *   P pre_norm_mha.1.qkv_proj.{weight,bias} [3C, C], [3C]
 *   P pre_norm_mha.1.out_proj.{weight,bias} [C, C], [C]
 *   P pre_norm_ffn.0.{weight,bias}          ln2 [C]
 *   P pre_norm_ffn.1.{weight,bias}          fc1 [F, C], [F]
 *   P pre_norm_ffn.4.{weight,bias}          fc2 [C, F], [C]
 * open_clip's (P e.g. "visual.transformer.resblocks.3."): ln_1, attn.in_proj_weight/bias,
 * attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj (mc_transformer_names_openclip).
 * Weights are borrowed from the tensor map (which must outlive the layer).
 */
#ifndef MC_MODELS_TRANSFORMER_H
#define MC_MODELS_TRANSFORMER_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"
#include "models/trace.h"

typedef enum mc_activation { MC_ACT_GELU = 0, MC_ACT_QUICKGELU = 1 } mc_activation;

/* Names of a layer's twelve tensors relative to its prefix, in the order ln1 weight, bias;
 * qkv weight, bias; out weight, bias; ln2 weight, bias; fc1 weight, bias; fc2 weight, bias. */
typedef struct mc_transformer_names {
    const char *name[12];
} mc_transformer_names;

extern const mc_transformer_names mc_transformer_names_mobileclip, mc_transformer_names_openclip;

typedef struct mc_transformer_layer {
    int dim, ffn_dim, heads;       /* C, F, H (head_dim = C / H) */
    mc_activation act;
    float ln_eps;
    const float *ln1_w, *ln1_b;    /* [C] */
    const float *qkv_w, *qkv_b;    /* [3C, C], [3C] */
    const float *out_w, *out_b;    /* [C, C], [C] */
    const float *ln2_w, *ln2_b;    /* [C] */
    const float *fc1_w, *fc1_b;    /* [F, C], [F] */
    const float *fc2_w, *fc2_b;    /* [C, F], [C] */
    const float *ln1kv_w, *ln1kv_b; /* cross-attention blocks only (open_clip ln_1_kv) [C], else NULL */
} mc_transformer_layer;

/* Binds the MobileCLIP layer named `prefix` (ending in '.') of width `dim` with `heads` heads
 * (GELU); the FFN width comes from the fc1 weight. Errors name the missing or mis-shaped tensor. */
int mc_transformer_layer_bind(mc_transformer_layer *l, mc_tensor_map *w, const char *prefix, int dim, int heads,
                              mc_err *e);
/* The same with the FFN width given (a configuration; ffn_dim <= 0: read it from fc1). */
int mc_transformer_layer_bind_dims(mc_transformer_layer *l, mc_tensor_map *w, const char *prefix, int dim, int heads,
                                   int ffn_dim, mc_err *e);

/* The same with the given names, FFN width (ffn_dim <= 0: read from the fc1 weight) and
 * activation. */
int mc_transformer_layer_bind_as(mc_transformer_layer *l, mc_tensor_map *w, const char *prefix,
                                 const mc_transformer_names *names, int dim, int heads, int ffn_dim,
                                 mc_activation act, mc_err *e);

/* Shapes of the twelve tensors (order of mc_transformer_names) of a layer of width C and FFN
 * width F: ndim[i] entries of shape[i]. The binder checks these; parameter declaration
 * (creating a model without a checkpoint) uses them too. */
void mc_transformer_layer_shapes(int C, int F, int ndim[12], int64_t shape[12][2]);

/* Floats of scratch that mc_transformer_layer_forward needs for N sequences of T tokens. */
size_t mc_transformer_layer_scratch(const mc_transformer_layer *l, int N, int T);

/* x[N, T, C] is updated in place. causal: token t attends to tokens <= t only.
 * Returns 0, or MC_E_NOMEM (attention's small per-thread buffers). */
int mc_transformer_layer_forward(const mc_transformer_layer *l, float *x, int N, int T, int causal, float *scratch);

/* The same with a byte mask [N, T, T] (1: key visible), applied on top of `causal`. */
int mc_transformer_layer_forward_masked(const mc_transformer_layer *l, float *x, int N, int T, int causal,
                                        const uint8_t *mask, float *scratch);

/* One KV-cached decoding step of a causal layer for R sequences at position `pos`:
 * x [R, C] holds each sequence's token at `pos` (updated in place); kc, vc [R, Tmax, C] hold
 * the keys/values of positions < pos and receive those of `pos`. Scratch:
 * mc_transformer_layer_scratch(l, R, 1). Same result as the full causal forward's row pos. */
int mc_transformer_layer_step(const mc_transformer_layer *l, float *x, int R, int pos, float *kc, float *vc, int Tmax,
                              float *scratch);

/* Cross-attention block (open_clip ResidualAttentionBlock(is_cross_attention=True)):
 *   x = x + out_proj(attn(q = ln_1(x), k = v = ln_1_kv(ctx)));  x = x + mlp(ln_2(x))
 * mc_transformer_cross_kv computes the keys|values of M context rows once: kv [M, 2C]
 * (scratch [M, C]). cross_forward: x [N, T, C] in place against context sequence
 * kv_index[n] (NULL: n) of Tk rows; scratch mc_transformer_layer_scratch(l, N, T). */
void mc_transformer_cross_kv(const mc_transformer_layer *l, const float *ctx, int M, float *kv, float *scratch);
int mc_transformer_cross_forward(const mc_transformer_layer *l, float *x, int N, int T, const float *kv, int Tk,
                                 const int *kv_index, float *scratch);

/* The same layer when only one position per sequence is read afterwards (the last text layer
 * before pooling): attention over all positions (keys and values of every token), then the
 * output projection and the FFN for row rows[n] of each sequence only:
 * out[n] = layer(x)[n, rows[n]], out [N, C]. x is not changed. Same scratch size. */
int mc_transformer_layer_forward_rows(const mc_transformer_layer *l, const float *x, int N, int T, int causal,
                                      const int *rows, float *out, float *scratch);

/* The largest scratch any of layers[0..n) needs. */
size_t mc_transformer_stack_scratch(const mc_transformer_layer *layers, int n, int N, int T);

/* Runs layers[0..n) over x[N, T, C] in place; after layer i the trace (if any) receives x
 * under the name printf(trace_fmt, i) (e.g. "transformer.%d"). Returns 0 or MC_E_NOMEM. */
int mc_transformer_stack_forward(const mc_transformer_layer *layers, int n, float *x, int N, int T, int causal,
                                 float *scratch, const mc_trace *trace, const char *trace_fmt);

/* mc_transformer_stack_forward with a byte mask [N, T, T] (NULL: none). */
int mc_transformer_stack_forward_masked(const mc_transformer_layer *layers, int n, float *x, int N, int T, int causal,
                                        const uint8_t *mask, float *scratch, const mc_trace *trace,
                                        const char *trace_fmt);

#endif
