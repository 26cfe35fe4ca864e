/* config.h - model configurations as data, in the schema of the reference's JSON configs
 * (apple/ml-mobileclip mobileclip/configs/mobileclip_{s0,s1,s2,b}.json):
 *
 *   { "embed_dim": 512,
 *     "image_cfg": { "image_size": 256, "model_name": "mci0" },
 *     "text_cfg":  { "context_length": 77, "vocab_size": 49408, "dim": 512,
 *                    "ffn_multiplier_per_layer": 4.0, "n_heads_per_layer": 8,
 *                    "n_transformer_layers": 4, "norm_layer": "layer_norm_fp32",
 *                    "causal_masking": false, "model_name": "mct" } }
 *
 * image_cfg.model_name: "mci0" | "mci1" | "mci2" | "vit_b16" (the reference's registered
 * towers), or "mci" for a custom MCi tower given by the keyword arguments of the reference's
 * FastViT constructor (mobileclip/models/mci.py), one entry per stage:
 *   "layers": [2, 2], "embed_dims": [32, 64], "mlp_ratios": [3, 3],
 *   "downsamples": [true, true], "se_downsamples": [false, true],
 *   "token_mixers": ["repmixer", "attention"], "pos_embs": [null, "repcpe"],
 *   "repmixer_kernel_size": 3
 * (FastViT(**those, num_classes=...) with MCi's projection head builds the same network; its
 * other arguments keep their defaults: 7x7/2 downsampling, cls_ratio 2, attention heads of 32,
 * RepCPE 7x7). text_cfg: ffn_multiplier_per_layer and n_heads_per_layer may be one number or
 * one per layer (FFN width = ceil(dim * mult / 16) * 16, as TextTransformer); "mct" adds the
 * two Text-RepMixer blocks (kernel 11, hidden 4 dim) around the transformer layers.
 * Optional reference keys accepted with their defaults only: text_cfg.no_scale_embedding,
 * no_pos_embedding (false). Unknown keys are errors.
 * Dropout and stochastic depth (training only, rates in [0, 1), default 0; models/dropout_rates.h
 * says which layer each reaches), under the reference's names: image_cfg.drop_rate and
 * drop_path_rate for MCi towers (FastViT's keyword arguments), image_cfg.dropout, attn_dropout,
 * ffn_dropout and stochastic_dropout for vit_b16 (the reference ViT's configuration keys), and
 * text_cfg.embed_dropout (read by the reference's TextTransformer), dropout, attn_dropout,
 * ffn_dropout, stochastic_dropout (its TransformerEncoder's arguments; dropout and
 * stochastic_dropout are mutually exclusive there, and here). The official CLIP(cfg) accepts every
 * one of them, but of these it applies only text_cfg.embed_dropout: its MCi calls
 * create_model(model_name) without FastViT's rates, vit_b16 builds its own configuration, and its
 * TextTransformer builds TransformerEncoders with their defaults. The other keys are therefore
 * this project's, named after the reference argument they feed (a FastViT / ViT /
 * TransformerEncoder built with them has exactly these rates: tools/reference/
 * check_dropout_config_torch.py).
 *
 * Errors name the source, the key (dotted path) and the problem.
 */
#ifndef MC_MODELS_CONFIG_H
#define MC_MODELS_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "core/error.h"
#include "models/dropout_rates.h"
#include "models/mci.h"
#include "models/text_encoder.h"
#include "models/vit.h"

typedef enum mc_image_tower { MC_IMAGE_MCI = 0, MC_IMAGE_VIT = 1 } mc_image_tower;

typedef struct mc_clip_config {
    char name[64];               /* "mobileclip_s0", or the configuration file's name */
    int embed_dim;
    int image_size;
    mc_image_tower image;
    char image_model[16];        /* image_cfg.model_name */
    mc_mci_config mci;           /* when image == MC_IMAGE_MCI */
    mc_vit_config vit;           /* when image == MC_IMAGE_VIT */
    mc_text_config text;
    mc_dropout_rates image_drop, text_drop; /* training only; not part of the model (not compared) */
} mc_clip_config;

/* Built-in configuration of an official variant (0..3 = s0, s1, s2, b); MC_E_ARG otherwise. */
int mc_clip_config_builtin(int arch, mc_clip_config *out, mc_err *e);
/* Parses a configuration from JSON text; `source` names it in messages and becomes out->name
 * (its file name without folders and extension). */
int mc_clip_config_parse(const char *json, size_t len, const char *source, mc_clip_config *out, mc_err *e);
/* Reads and parses a JSON file (at most 1 MiB). */
int mc_clip_config_load(const char *path, mc_clip_config *out, mc_err *e);
/* 1 if a and b describe the same model (names ignored). */
int mc_clip_config_equal(const mc_clip_config *a, const mc_clip_config *b);
/* Writes c as JSON in the reference schema (custom MCi towers as "mci" + FastViT kwargs). */
int mc_clip_config_write(const mc_clip_config *c, FILE *f);

#endif
