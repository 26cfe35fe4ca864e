/* openclip.h - open_clip's `CLIP` with a ViT image tower and its text transformer, built from an
 * open_clip model config (openclip_config.h) and bound by open_clip's state-dict names.
 *
 * Image tower (`VisionTransformer`, prefix "visual."), images [B, 3, R, R] normalised:
 *   conv1 (kernel = stride = patch, no bias) [C,3,p,p] -> tokens [B, g*g, C] (row-major patches)
 *   -> prepend class_embedding [C] -> + positional_embedding [1 + g*g, C] -> ln_pre
 *   -> L resblocks (transformer.resblocks.N., non-causal) -> ln_post -> token 0 (pool "tok") or
 *   the mean of the patch tokens ("avg") -> @ proj [C, embed_dim].
 * Text tower (prefix "" for CLIP, "text." for CustomTextCLIP), tokens [N, context]:
 *   token_embedding [vocab, W] + positional_embedding [context, W] -> L resblocks with the causal
 *   mask -> ln_final -> the token at argmax(ids) (EOT, the largest id; first of equal maxima)
 *   -> @ text_projection [W, embed_dim] (or nn.Linear when proj_bias).
 * Resblock (models/transformer.h, open_clip names): pre-norm MHA + MLP with QuickGELU when
 * quick_gelu, else exact GELU; heads = width / head_width (vision), text_cfg.heads (text).
 * Features are returned unnormalised (encode_image / encode_text with normalize=False).
 *
 * Weights are borrowed from the tensor map the model owns (a mapped checkpoint: .pt or
 * safetensors through io/checkpoint.h). Binding names the first missing, mis-shaped or
 * unexpected tensor. The towers are separate pieces so that other open_clip models (CoCa)
 * can reuse them.
 */
#ifndef MC_MODELS_OPENCLIP_H
#define MC_MODELS_OPENCLIP_H

#include <stdint.h>

#include "core/tensor.h"
#include "image/image.h"
#include "models/openclip_config.h"
#include "models/trace.h"
#include "models/transformer.h"

typedef struct mc_oc_vision {
    mc_oc_vision_cfg cfg;
    int width, heads, layers, patch, grid, n_tok, out_dim; /* n_tok = 1 + grid^2 */
    const float *conv1;            /* [C, 3, p, p] */
    const float *cls, *pos;        /* [C], [n_tok, C] */
    const float *ln_pre_w, *ln_pre_b, *ln_post_w, *ln_post_b; /* [C] (ln_pre NULL when no_ln_pre) */
    const float *proj;             /* [C, out_dim] */
    mc_transformer_layer *blocks;  /* [layers] */
} mc_oc_vision;

typedef struct mc_oc_text {
    mc_oc_text_cfg cfg;
    int vocab, context, width, heads, layers, out_dim, causal;
    const float *tok_emb, *pos_emb; /* [vocab, W], [context, W] */
    const float *ln_w, *ln_b;       /* ln_final [W] */
    const float *proj, *proj_b;     /* [W, D] (x @ P), or nn.Linear weight [D, W] + bias [D]; NULL: none */
    mc_transformer_layer *blocks;
} mc_oc_text;

/* Parameter binding: `declare` creates every tensor (zero-filled, right shape) that the map
 * lacks before binding it, so a configuration can be instantiated without a checkpoint (random
 * weights for benchmarks, the name/shape list for writers). */
typedef struct mc_oc_binder {
    mc_tensor_map *w;
    int declare;
} mc_oc_binder;

/* prefix: "visual." for CLIP and CoCa. out_dim: the projection width (embed_dim). */
int mc_oc_vision_bind(mc_oc_vision *v, mc_oc_binder *b, const char *prefix, const mc_oc_vision_cfg *cfg, int out_dim,
                      mc_activation act, mc_err *e);
/* images [B, 3, R, R] (R = image_size, normalised) -> x [B, n_tok, C]: the transformer output
 * before ln_post (what CoCa's attentional pooler reads). Trace: embed, ln_pre, resblockNN. */
int mc_oc_vision_tokens(const mc_oc_vision *v, const float *images, int B, float *x, const mc_trace *trace,
                        mc_err *e);
/* images -> out [B, out_dim]. Trace also: pooled [B, C] (after ln_post), features. */
int mc_oc_vision_forward(const mc_oc_vision *v, const float *images, int B, float *out, const mc_trace *trace,
                         mc_err *e);
void mc_oc_vision_release(mc_oc_vision *v);

/* prefix "" (CLIP) or "text." (custom_text). */
int mc_oc_text_bind(mc_oc_text *t, mc_oc_binder *b, const char *prefix, const mc_oc_text_cfg *cfg, int out_dim,
                    mc_activation act, mc_err *e);
/* tokens [N, context] -> x [N, context, W]: the transformer output before ln_final (CoCa feeds
 * these to its decoder). Trace: embed, resblockNN. */
int mc_oc_text_tokens(const mc_oc_text *t, const int32_t *tokens, int N, float *x, const mc_trace *trace, mc_err *e);
/* tokens -> out [N, out_dim]. Trace also: ln_final [N, context, W], pooled [N, W], features. */
int mc_oc_text_forward(const mc_oc_text *t, const int32_t *tokens, int N, float *out, const mc_trace *trace,
                       mc_err *e);
void mc_oc_text_release(mc_oc_text *t);

typedef struct mc_openclip {
    mc_oc_cfg cfg;
    mc_tensor_map weights;         /* owned */
    mc_oc_vision *visual;          /* NULL unless loaded */
    mc_oc_text *text;
    float logit_scale_raw;
    float logit_bias;              /* 0 unless the config has init_logit_bias */
} mc_openclip;

/* Takes ownership of *weights (moved into m, left empty). Binds the requested towers
 * (both: every tensor of the checkpoint must be bound, besides the integer entries
 * input_resolution / context_length / vocab_size of OpenAI state dicts). */
int mc_openclip_init(mc_openclip *m, mc_tensor_map *weights, const mc_oc_cfg *cfg, int load_image, int load_text,
                     mc_err *e);
/* Reads `path` (.pt or safetensors) and inits with both towers. */
int mc_openclip_load(mc_openclip *m, const char *path, const mc_oc_cfg *cfg, mc_err *e);
/* A model with every parameter declared zero (fill m->weights, then use it): see mc_oc_binder. */
int mc_openclip_init_declared(mc_openclip *m, const mc_oc_cfg *cfg, mc_err *e);
void mc_openclip_free(mc_openclip *m);

/* images [B, 3, R, R] (mc_openclip_preprocess output) -> out [B, embed_dim], not normalised. */
int mc_openclip_encode_image(const mc_openclip *m, const float *images, int B, float *out, const mc_trace *trace,
                             mc_err *e);
/* tokens [N, context] -> out [N, embed_dim], not normalised. */
int mc_openclip_encode_text(const mc_openclip *m, const int32_t *tokens, int N, float *out, const mc_trace *trace,
                            mc_err *e);

/* The eval transform of the config: Resize(R, bicubic|bilinear) on the shorter side, CenterCrop(R),
 * ToTensor, Normalize(mean, std) -> chw [3, R, R]. An R x R input is only normalised. */
int mc_openclip_preprocess(const mc_oc_cfg *cfg, const mc_image *im, float *chw, mc_err *e);

#endif
