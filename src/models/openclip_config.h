/* openclip_config.h - open_clip model configurations (model_configs/NAME.json) as data.
 *
 * The schema is open_clip's: top level embed_dim, quick_gelu, custom_text, vision_cfg
 * (CLIPVisionCfg), text_cfg (CLIPTextCfg), optional preprocess_cfg; every field left out takes
 * the dataclass default (open_clip 7260a46, src/open_clip/model.py). Built-in names are the
 * configs the teachers use (ViT-L-14, ViT-L-14-quickgelu, ViT-B-16(-quickgelu),
 * ViT-B-32(-quickgelu)); any other configuration is read from its JSON file.
 *
 * Parsing is strict: a key open_clip does not know is an error, and so is a feature this
 * project does not implement (timm / Hugging Face towers, ModifiedResNet, layer scale,
 * 'parallel'/'cascade' attentional pooling, non-square images, tanh GELU): a silently
 * ignored option would give wrong embeddings. Keys that only matter for training (patch
 * dropout, timm_* of a non-timm tower, output_tokens) are accepted and ignored.
 *
 * CoCa (coca_model.py): vision_cfg.attentional_pool, text_cfg.embed_cls and multimodal_cfg
 * (MultimodalCfg). Of multimodal_cfg the decoder (_build_text_decoder_tower) reads only
 * context_length, width, heads, layers and ls_init_value: its MLP ratio is always 4 and its
 * vocabulary is text_cfg.vocab_size, whatever the other keys say (they are accepted and
 * ignored, as open_clip does). Built in: coca_ViT-B-32, coca_ViT-L-14.
 */
#ifndef MC_MODELS_OPENCLIP_CONFIG_H
#define MC_MODELS_OPENCLIP_CONFIG_H

#include <stddef.h>

#include "core/error.h"
#include "io/json.h"

typedef enum mc_oc_pool { MC_OC_POOL_TOK = 0, MC_OC_POOL_AVG, MC_OC_POOL_ARGMAX, MC_OC_POOL_FIRST, MC_OC_POOL_LAST,
                          MC_OC_POOL_NONE } mc_oc_pool;

typedef struct mc_oc_vision_cfg {
    int image_size, patch_size;     /* square images only */
    int layers, width, head_width;  /* heads = width / head_width */
    double mlp_ratio;               /* MLP width = int(width * mlp_ratio) */
    int no_ln_pre, final_ln_after_pool;
    mc_oc_pool pool_type;           /* TOK (class token) or AVG (mean of the patch tokens) */
    double ln_eps;                  /* norm_kwargs.eps, default 1e-5 */
    /* CoCa: AttentionalPooler(embed_dim, width, heads, queries) before ln_post */
    int attentional_pool, attn_pooler_queries, attn_pooler_heads;
} mc_oc_vision_cfg;

typedef struct mc_oc_text_cfg {
    int context_length, vocab_size, width, heads, layers;
    double mlp_ratio;
    int no_causal_mask, proj_bias, proj_none, pad_id;
    mc_oc_pool pool_type;           /* ARGMAX (EOT, the largest id), FIRST, LAST */
    double ln_eps;
    int embed_cls;                  /* CoCa: a learned CLS token appended, pooled ('last') */
} mc_oc_text_cfg;

/* CoCa's multimodal decoder (MultimodalTransformer) as _build_text_decoder_tower builds it. */
typedef struct mc_oc_mm_cfg {
    int context_length, width, heads, layers; /* MLP width is 4 * width */
} mc_oc_mm_cfg;

typedef struct mc_oc_cfg {
    char name[64];                  /* built-in name or the file's base name */
    int embed_dim;
    int quick_gelu;                 /* QuickGELU instead of nn.GELU in both towers */
    int custom_text;                /* CustomTextCLIP: the text tower lives under "text." */
    int has_logit_bias;             /* init_logit_bias given: a logit_bias parameter exists */
    mc_oc_vision_cfg vision;
    mc_oc_text_cfg text;
    /* eval preprocessing (preprocess_cfg, else open_clip's defaults): Resize(image_size,
     * interpolation) on the shorter side, CenterCrop, Normalize(mean, std) */
    float mean[3], std[3];
    int bicubic;                    /* 1 bicubic (default), 0 bilinear */
    int has_multimodal;             /* multimodal_cfg present (CoCa) */
    mc_oc_mm_cfg mm;                /* valid when has_multimodal */
    int pad_id;                     /* CoCa(pad_id=...): generation's pad token (default 0) */
} mc_oc_cfg;

/* Fills cfg from an open_clip config object (a model_configs/NAME.json document). `src` names
 * the source in messages. */
int mc_oc_cfg_from_json(const mc_json *root, const char *src, mc_oc_cfg *cfg, mc_err *e);
int mc_oc_cfg_parse(const char *text, size_t len, const char *src, mc_oc_cfg *cfg, mc_err *e);

/* A built-in configuration by open_clip model name; MC_E_ARG naming the known ones if unknown. */
int mc_oc_cfg_builtin(const char *name, mc_oc_cfg *cfg, mc_err *e);

/* A built-in name, or else the path of a JSON config file. */
int mc_oc_cfg_load(const char *name_or_path, mc_oc_cfg *cfg, mc_err *e);

/* 1 if `name` is one of the built-in configuration names. */
int mc_oc_cfg_is_builtin(const char *name);

/* Comma-separated built-in names, for messages and --help. */
const char *mc_oc_cfg_builtin_names(void);

#endif
