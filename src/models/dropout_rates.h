/* dropout_rates.h - the training-only regularisation of one tower, as configuration data.
 *
 * All rates are probabilities in [0, 1); 0 (the default of every MobileCLIP recipe) is off, and
 * then nothing is drawn and no mask is kept. Which layer each rate reaches follows the reference:
 *   MCi (FastViT, mobileclip/models/mci.py): `drop` = drop_rate, the ConvFFN's nn.Dropout after
 *     the GELU and after fc2 of every RepMixer / attention block; `drop_path` = drop_path_rate,
 *     block j of n gets drop_path * j / (n - 1) on its residual branches (timm DropPath).
 *   Transformer layers (mobileclip/modules/common/transformer.py TransformerEncoder, in the text
 *     tower and the ViT): `drop` = dropout (after out_proj and after fc2), `ffn` = ffn_dropout
 *     (after the GELU), `attn` = attn_dropout (on the attention probabilities), `drop_path` =
 *     stochastic_dropout (both residual branches per sample; the ViT spreads it as
 *     round(linspace(0, rate, depth)[i], 3), the text tower applies it to every layer).
 *   Text tower: `embed` = embed_dropout (after the token + position embedding).
 * Masks are drawn from the step's mc_rng (a function of seed, step and rank: train/step.h).
 */
#ifndef MC_MODELS_DROPOUT_RATES_H
#define MC_MODELS_DROPOUT_RATES_H

typedef struct mc_dropout_rates {
    float drop, drop_path, attn, ffn, embed;
} mc_dropout_rates;

/* 1 when any rate is > 0. */
static inline int mc_dropout_rates_any(const mc_dropout_rates *r) {
    return r->drop > 0 || r->drop_path > 0 || r->attn > 0 || r->ffn > 0 || r->embed > 0;
}

#endif
