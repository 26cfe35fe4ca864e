/* text_encoder.h - MobileCLIP text towers (`TextTransformer`), both variants:
 *   Base (S1, S2, B): L pre-norm transformer layers;
 *   MCt  (S0):        Text-RepMixer, L transformer layers, Text-RepMixer.
 * The variant and L are recognised from the tensor names under "text_encoder.transformer.<i>.".
 *
 *   x = embedding_layer[tokens] + positional_embedding        (unscaled)      [N, T, C]
 *   x = transformer[i](x) for every element                    causal mask only if asked
 *   x = final_layer_norm(x)
 *   embed[n] = x[n, argmax(tokens[n])] @ projection_layer       [C, P] stored x @ P
 *
 * Attention: no padding mask; every position attends to all T positions (or t' <= t when
 * causal), padding included, exactly as the reference. Heads = C / 64 (8 for the 512-wide
 * MobileCLIP text towers; the checkpoint does not record it).
 * Weights are borrowed from the tensor map, which must outlive the encoder.
 */
#ifndef MC_MODELS_TEXT_ENCODER_H
#define MC_MODELS_TEXT_ENCODER_H

#include <stdint.h>

#include "core/tensor.h"
#include "models/text_repmixer.h"
#include "models/trace.h"
#include "models/transformer.h"

typedef enum mc_text_variant { MC_TEXT_BASE = 0, MC_TEXT_MCT = 1 } mc_text_variant;

#define MC_TEXT_MAX_LAYERS 256

/* Hyper-parameters (the reference's text_cfg, see models/config.h). */
typedef struct mc_text_config {
    int mct;                     /* model_name "mct": Text-RepMixer, n_layers transformer layers, Text-RepMixer */
    int context_length, vocab_size, dim, n_layers;
    int heads[MC_TEXT_MAX_LAYERS];      /* per transformer layer */
    int ffn_dims[MC_TEXT_MAX_LAYERS];   /* per transformer layer: ceil(dim * mult / 16) * 16 */
    double ffn_multipliers[MC_TEXT_MAX_LAYERS]; /* ffn_multiplier_per_layer (0 when inferred from weights) */
    int causal;                  /* causal_masking */
    int repmixer_kernel, repmixer_hidden; /* MCt blocks (the reference's defaults: 11, 4 dim) */
} mc_text_config;

typedef struct mc_text_block {
    int is_repmixer;
    mc_transformer_layer tf;     /* when !is_repmixer */
    mc_text_repmixer rm;         /* when is_repmixer */
} mc_text_block;

typedef struct mc_text_encoder {
    mc_text_variant variant;
    int vocab, context, dim, proj_dim, heads, causal;
    int n_blocks;                /* elements of text_encoder.transformer (MCt: L + 2) */
    mc_text_block *blocks;
    const float *tok_emb;        /* [vocab, C] */
    const float *pos_emb;        /* [context, C] */
    const float *ln_w, *ln_b;    /* final_layer_norm [C] */
    const float *proj;           /* [C, P] */
    int reparameterized;
} mc_text_encoder;

/* Binds "text_encoder.*" of w. causal: 1 for mobileclip_b's text tower (config
 * `causal_masking`), 0 for S0/S1/S2. Fails naming the first missing, mis-shaped or
 * unexpected "text_encoder." tensor. */
int mc_text_encoder_init(mc_text_encoder **out, mc_tensor_map *w, int causal, mc_err *e);
/* Binds by a configuration (shapes from cfg, projection width proj_dim), not from the tensors. */
int mc_text_encoder_init_config(mc_text_encoder **out, mc_tensor_map *w, const mc_text_config *cfg, int proj_dim,
                                mc_err *e);

/* Reparameterizes the Text-RepMixer blocks (no-op for Base). The training form stays usable. */
int mc_text_encoder_reparameterize(mc_text_encoder *m, mc_err *e);

/* tokens [N, context] (ids in [0, vocab)) -> embed [N, P], not normalised.
 * reparameterized: run the reparameterized form (after mc_text_encoder_reparameterize).
 * Trace names (tensors hold the whole batch): token_embedding [N,T,C], transformer.<i>,
 * final_layer_norm, eot_pooled [N,C], embed [N,P]. */
int mc_text_encoder_forward(mc_text_encoder *m, const int32_t *tokens, int N, int reparameterized, float *embed,
                            const mc_trace *trace, mc_err *e);

void mc_text_encoder_free(mc_text_encoder *m);

#endif
