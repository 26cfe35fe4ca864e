/* coca.h - open_clip's CoCa (coca_model.py, open_clip 7260a46): the contrastive towers of
 * models/openclip.h (ViT with the attentional pooler, text transformer with the CLS token)
 * plus the multimodal text decoder, bound by open_clip's state-dict names.
 *
 * Decoder (MultimodalTransformer, prefix "text_decoder."), for L text positions:
 *   x = the text tower's token outputs [N, L, W] (no ln_final; W = text width = multimodal width)
 *   for i < layers:  x = resblocks.i(x, causal)                       self-attention block
 *                    x = cross_attn.i(x, k = v = image tokens)         ln_1 (x), ln_1_kv (tokens)
 *   logits = ln_final(x) @ text_projection [W, vocab]                  -> [N, L, vocab]
 * Image tokens: attentional pooler outputs 1..Q-1 after ln_post [B, Q-1, D], D = embed_dim = W.
 * Every block is open_clip's ResidualAttentionBlock with MLP 4W and the model's activation.
 *
 * Decoding runs both causal stacks (text tower and decoder self-attention) one position at a
 * time with key/value caches (mc_coca_state); the cross-attention keys/values of each image are
 * computed once. Position p's logits equal those of the full forward over tokens[0..p]
 * (CoCa's CLS token comes after the tokens, so the causal rows never see it).
 */
#ifndef MC_MODELS_COCA_H
#define MC_MODELS_COCA_H

#include <stdint.h>

#include "models/openclip.h"

typedef struct mc_coca_decoder {
    int width, heads, layers, context, vocab;
    mc_transformer_layer *self_blocks;  /* [layers] text_decoder.resblocks.i. */
    mc_transformer_layer *cross_blocks; /* [layers] text_decoder.cross_attn.i. (with ln_1_kv) */
    const float *ln_w, *ln_b;           /* ln_final [W] */
    const float *proj;                  /* text_projection [W, vocab] */
} mc_coca_decoder;

typedef struct mc_coca {
    mc_openclip clip;  /* the contrastive half; owns the weights */
    mc_coca_decoder dec;
    int n_img_tok;     /* Q - 1 image tokens per image */
    int embed_dim;
} mc_coca;

/* Takes ownership of *weights. The config must be a CoCa one (multimodal_cfg, attentional_pool,
 * embed_cls); every tensor must be bound (names the first unexpected one). */
int mc_coca_init(mc_coca *m, mc_tensor_map *weights, const mc_oc_cfg *cfg, mc_err *e);
/* Reads `path` (.pt or safetensors); a CLIP checkpoint is refused as such. */
int mc_coca_load(mc_coca *m, const char *path, const mc_oc_cfg *cfg, mc_err *e);
/* Every parameter declared zero (fill m->clip.weights afterwards: benchmarks, writers). */
int mc_coca_init_declared(mc_coca *m, const mc_oc_cfg *cfg, mc_err *e);
void mc_coca_free(mc_coca *m);

/* images [B, 3, R, R] (mc_openclip_preprocess) -> features [B, embed_dim] (unnormalised; NULL: not
 * wanted) and the decoder's image tokens [B, n_img_tok, embed_dim]. */
int mc_coca_encode_image(const mc_coca *m, const float *images, int B, float *features, float *img_tok, mc_err *e);
/* tokens [N, context] -> features [N, embed_dim] (unnormalised). */
int mc_coca_encode_text(const mc_coca *m, const int32_t *tokens, int N, float *features, mc_err *e);

/* Decoding state of R sequences over images img_tok [n_img, n_img_tok, D]: row r reads image
 * img_index[r]. Holds at most max_len positions. */
typedef struct mc_coca_state {
    const mc_coca *m;
    int R, max_len, pos, n_img;
    int *img_index;              /* [R] */
    float *text_k, *text_v;      /* [text layers][R][max_len][W] */
    float *dec_k, *dec_v;        /* [decoder layers][R][max_len][W] */
    float *cross_kv;             /* [decoder layers][n_img][n_img_tok][2W] */
    float *x, *scratch, *tmp;    /* [R, W], layer scratch, reorder buffer */
} mc_coca_state;

int mc_coca_state_init(mc_coca_state *s, const mc_coca *m, const float *img_tok, int n_img, const int *img_index,
                       int R, int max_len, mc_err *e);
/* Feeds token tok[r] at position s->pos to every row and writes the next-token logits
 * [R, vocab]; then pos++. */
int mc_coca_state_step(mc_coca_state *s, const int32_t *tok, float *logits, mc_err *e);
/* Row r continues from row src[r]'s history (beam search): caches and image are copied. */
int mc_coca_state_reorder(mc_coca_state *s, const int *src, mc_err *e);
/* Keeps only rows rows[0..n) (strictly ascending), renumbered 0..n-1, so finished sequences
 * cost nothing in later steps (sampling); s->R becomes n. */
int mc_coca_state_keep(mc_coca_state *s, const int *rows, int n, mc_err *e);
void mc_coca_state_free(mc_coca_state *s);

/* Teacher-forced logits: tokens [N, L] over image img_index[n] of img_tok -> logits [N, L, vocab]
 * (position p predicts token p + 1), as CoCa.forward(image, text, output_labels=False). */
int mc_coca_logits(const mc_coca *m, const float *img_tok, int n_img, const int *img_index, const int32_t *tokens,
                   int N, int L, float *logits, mc_err *e);

/* open_clip's CoCaLoss (world size 1) on N image-text pairs, tokens [N, context]: the clip loss
 * (symmetric cross-entropy of exp(logit_scale) * cosine similarities, pair i matching i) and the
 * caption loss (teacher-forced cross-entropy of tokens[:, 1:] from tokens[:, :-1], the pad id
 * ignored), each times its weight (open_clip's training defaults: clip 1, caption 2). */
int mc_coca_loss(const mc_coca *m, const float *images, const int32_t *tokens, int N, double clip_weight,
                 double caption_weight, double *clip_loss, double *caption_loss, mc_err *e);

#endif
