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
 * CoCa's contrastive half (coca_model.py) is the same towers with two options:
 *   vision attentional_pool: after the resblocks, AttentionalPooler: ln_k(x) [B, T, C] as keys
 *   and values, ln_q(query) [Q, D] as queries (D = embed_dim, attn_pooler_heads heads) -> [B, Q, D]
 *   -> ln_post (over D) -> pooled = output 0 ("tok") or the mean of 1.. ("avg") -> @ proj [D, D];
 *   outputs 1..Q-1 are the image tokens the caption decoder reads.
 *   text embed_cls: cls_emb [W] appended after the L tokens (positions 0..L), the causal mask plus
 *   a padding mask on the CLS row (cls_mask below); pooled = ln_final(x[:, L]) @ text_projection;
 *   the token outputs x[:, :L] stay without ln_final.
 * A CoCa checkpoint loads as a CLIP model (text_decoder.* is then ignored).
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
    const float *proj;             /* [P, out_dim]; P = pool_dim */
    mc_transformer_layer *blocks;  /* [layers] */
    /* CoCa's AttentionalPooler (vision_cfg.attentional_pool), else NULL: */
    int pool_dim;                  /* width ln_post / proj act on: out_dim with the pooler, else C */
    int n_out_tok;                 /* image tokens for the decoder: queries - 1 (0 without the pooler) */
    const float *pool_query;       /* [Q, D] */
    const float *pool_q_w, *pool_k_w, *pool_v_w; /* [D, D], [D, C], [D, C] */
    const float *pool_in_b;        /* [3D] q | k | v */
    const float *pool_out_w, *pool_out_b; /* [D, D], [D] */
    const float *ln_q_w, *ln_q_b, *ln_k_w, *ln_k_b; /* [D], [C] */
} mc_oc_vision;

typedef struct mc_oc_text {
    mc_oc_text_cfg cfg;
    int vocab, context, width, heads, layers, out_dim, causal;
    int n_pos;                      /* context (+ 1 with CoCa's CLS token) */
    const float *tok_emb, *pos_emb; /* [vocab, W], [n_pos, W] */
    const float *cls_emb;           /* [W] with text_cfg.embed_cls, else NULL */
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

/* Binds prefix+name (declaring it first in declare mode) with the given shape (ndim of d0..d3). */
int mc_oc_param(mc_oc_binder *b, const char *prefix, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2,
                int64_t d3, const float **out, mc_err *e);
/* n open_clip resblocks "<prefix><i>." of width C (MLP int(C * mlp_ratio)); *out is malloc'd.
 * A tensor under "<prefix><n>." (more layers than the config) is an error. */
int mc_oc_bind_blocks(mc_oc_binder *b, const char *prefix, int n, int C, int H, double mlp_ratio, double eps,
                      mc_activation act, mc_transformer_layer **out, mc_err *e);

/* prefix: "visual." for CLIP and CoCa. out_dim: the projection width (embed_dim). */
int mc_oc_vision_bind(mc_oc_vision *v, mc_oc_binder *b, const char *prefix, const mc_oc_vision_cfg *cfg, int out_dim,
                      mc_activation act, mc_err *e);
/* images [B, 3, R, R] (R = image_size, normalised) -> x [B, n_tok, C]: the transformer output
 * before ln_post (what CoCa's attentional pooler reads). Trace: embed, ln_pre, resblockNN. */
int mc_oc_vision_tokens(const mc_oc_vision *v, const float *images, int B, float *x, const mc_trace *trace,
                        mc_err *e);
/* images -> out [B, out_dim] and, with the attentional pooler, tokens [B, n_out_tok, out_dim]
 * (NULL: not wanted). Trace also: attn_pool [B, Q, D] (after ln_post), pooled [B, P], features. */
int mc_oc_vision_encode(const mc_oc_vision *v, const float *images, int B, float *out, float *tokens,
                        const mc_trace *trace, mc_err *e);
/* images -> out [B, out_dim]. Trace also: pooled [B, C] (after ln_post), features. */
int mc_oc_vision_forward(const mc_oc_vision *v, const float *images, int B, float *out, const mc_trace *trace,
                         mc_err *e);
void mc_oc_vision_release(mc_oc_vision *v);

/* prefix "" (CLIP) or "text." (custom_text). */
int mc_oc_text_bind(mc_oc_text *t, mc_oc_binder *b, const char *prefix, const mc_oc_text_cfg *cfg, int out_dim,
                    mc_activation act, mc_err *e);
/* tokens [N, context] -> x [N, n_pos, W]: the transformer output before ln_final (CoCa feeds
 * the first context rows to its decoder; row context is the CLS token). Trace: embed, resblockNN. */
int mc_oc_text_tokens(const mc_oc_text *t, const int32_t *tokens, int N, float *x, const mc_trace *trace, mc_err *e);
/* The same for L <= context tokens per sequence (x [N, L (+1), W]). */
int mc_oc_text_tokens_len(const mc_oc_text *t, const int32_t *tokens, int N, int L, float *x, const mc_trace *trace,
                          mc_err *e);
/* CoCa's build_cls_mask on top of the causal mask as a byte mask [N, S, S], S = L + 1 (1: key
 * visible): token rows see tokens <= themselves; the CLS row sees key 0 and key j >= 1 when
 * tokens[j-1] != pad_id (F.pad shifts the padding mask one column right). */
void mc_oc_text_cls_mask(const mc_oc_text *t, const int32_t *tokens, int N, int L, uint8_t *mask);
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
/* For models/coca: both towers from *weights (moved in; NULL: every parameter declared), with
 * no check for tensors left over (the caller binds the rest, then checks). */
int mc_openclip_init_towers(mc_openclip *m, mc_tensor_map *weights, const mc_oc_cfg *cfg, mc_err *e);
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
