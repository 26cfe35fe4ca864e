/* coca_train.h - training of open_clip's CoCa (coca_model.py at 7260a46): the model in a
 * parameter store, its training forward and backward, and CoCaLoss.
 *
 * mc_coca_trainable: every CoCa parameter in one mc_param_store under open_clip's state-dict
 * names (the order the binders declare them); the mc_coca's pointers point into the store, so
 * the optimizer updates what the forward reads. Fresh models follow open_clip's constructors
 * (mc_coca_init_fresh).
 *
 * Forward for B image-caption pairs, tokens [B, L] (L = text context), as CoCa.forward:
 *   image:  conv1 (patch p, no bias) -> [cls | patches] + pos -> ln_pre -> resblocks (full)
 *           -> AttentionalPooler: ln_k(x) keys/values, ln_q(query) [Q, D] queries -> out_proj
 *           -> ln_post [B, Q, D]; pooled = row 0 ("tok") or the mean of rows 1.. ("avg");
 *           image features = pooled @ proj [B, E]; image tokens = rows 1..Q-1 [B, Q-1, D]
 *   text:   [tok_emb[tokens] | cls_emb] + pos [B, L+1, W] -> resblocks (causal + CLS mask:
 *           the CLS row sees key 0 and key j >= 1 when tokens[j-1] != pad) ->
 *           text features = ln_final(x[:, L]) @ text_projection [B, E]
 *   decoder: x = text outputs x[:, :L-1] (no ln_final) -> per layer: causal self-attention
 *           block, cross-attention block (q = ln_1(x), k = v = ln_1_kv(image tokens)) ->
 *           ln_final -> @ text_projection [W, V]: logits (position p predicts token p+1), kept
 *           only for the n_rows positions whose label is not padding (the loss ignores the rest)
 * CoCaLoss (loss.py, world size 1): clip_weight * ClipLoss(normalised features, exp(logit_scale))
 * + caption_weight * CrossEntropy(logits, tokens[:, 1:], ignore_index = 0, the mean over the
 * labels that are not padding). Conventions as text_train.h (ctx->tape / ctx->work / ctx->grads).
 * GELU only (QuickGELU configurations are refused for training).
 */
#ifndef MC_MODELS_COCA_TRAIN_H
#define MC_MODELS_COCA_TRAIN_H

#include <stdint.h>

#include "models/coca.h"
#include "models/param_store.h"
#include "models/text_train.h"

typedef struct mc_coca_trainable {
    mc_param_store store;
    mc_coca m;
    float *logit_scale; /* the store's logit_scale (m.clip.logit_scale_raw is only its load-time copy) */
} mc_coca_trainable;

/* Declares every parameter of cfg in t->store and binds t->m to it; weights (NULL: keep the
 * zeros, then call mc_coca_init_fresh) are copied in strictly (missing, mis-shaped and
 * unexpected tensors are errors) and freed. */
int mc_coca_trainable_init(mc_coca_trainable *t, const mc_oc_cfg *cfg, mc_tensor_map *weights, mc_err *e);
void mc_coca_trainable_free(mc_coca_trainable *t);

/* open_clip's fresh CoCa, seeded (core/rng.h: one stream per tensor, Box-Muller normals):
 *   visual: conv1 U(+-1/sqrt(3 p^2)) (nn.Conv2d default), class/positional embedding and proj
 *     N(0, width^-0.5), pooler query N(0, 1), attention in_proj xavier_uniform ([3D, in]:
 *     U(+-sqrt(6 / (3D + in)))), out_proj
 *     U(+-1/sqrt(D)), attention biases 0; MLP linears U(+-1/sqrt(fan_in)) weights and biases
 *     (the ViT's init_parameters is empty: PyTorch defaults);
 *   text: token embedding N(0, 0.02), positional N(0, 0.01), cls_emb N(0, 0.01), in_proj
 *     N(0, W^-0.5), out_proj and c_proj N(0, W^-0.5 (2 layers)^-0.5), c_fc N(0, (2W)^-0.5),
 *     text_projection N(0, W^-0.5) (TextTransformer.init_parameters; biases keep the defaults);
 *   decoder: PyTorch defaults as the ViT (MultimodalTransformer.init_parameters is never
 *     called); its text_projection (torch.empty there) N(0, W^-0.5);
 *   LayerNorms 1, 0; logit_scale ln(1/0.07). */
void mc_coca_init_fresh(mc_coca_trainable *t, uint64_t seed);

typedef struct mc_coca_cross_save {
    const float *x;                  /* [N,T,W] block input */
    const float *img;                /* [N,Ti,W] image tokens */
    float *h1, *mean1, *rstd1;       /* ln_1(x) */
    float *hk, *meank, *rstdk;       /* ln_1_kv(image tokens) [N*Ti, W] */
    float *q, *k, *v;                /* [N*T, W], [N*Ti, W], [N*Ti, W] */
    float *p;                        /* [N,H,T,Ti] */
    float *o, *x1;                   /* attention output, x + out_proj(o) */
    float *h2, *mean2, *rstd2, *f;   /* ln_2(x1), fc1 output */
    float *out;
} mc_coca_cross_save;

typedef struct mc_coca_train_state {
    int B, L, Td;                    /* pairs, text context, decoder positions (L - 1) */
    const int32_t *tokens;
    const float *images;
    /* image tower */
    float *patch, *emb;              /* conv1 output [B,C,g,g]; tokens + pos [B,T,C] */
    float *pre, *pre_mean, *pre_rstd;/* ln_pre (NULL without) */
    mc_transformer_save *vl;         /* [vision layers] */
    const float *xv;                 /* last resblock output [B,T,C] */
    float *xk, *k_mean, *k_rstd;     /* ln_k [B*T,C] */
    float *qn, *q_mean, *q_rstd, *q; /* ln_q(query), its projection [Q,D] */
    float *k, *v, *pp, *po, *pout;   /* [B*T,D] x2, [B,Hp,Q,T], attention [B*Q,D], out_proj */
    float *post, *post_mean, *post_rstd; /* ln_post [B*Q,D] */
    float *pooled, *img_feat, *img_tok;  /* [B,D], [B,E], [B,Q-1,D] */
    /* text tower */
    uint8_t *mask;                   /* [B,S,S] S = L + 1 */
    float *tx0;                      /* [B,S,W] */
    mc_transformer_save *tl;
    const float *xt;
    float *cls, *cls_mean, *cls_rstd, *txt_feat; /* ln_final of row L [B,W], features [B,E] */
    /* decoder */
    float *dx0;                      /* [B,Td,W] */
    mc_transformer_save *ds;
    mc_coca_cross_save *cs;
    const float *xd;
    float *dln, *dln_mean, *dln_rstd;   /* final LayerNorm [B*Td,W] */
    int n_rows;                      /* decoder positions whose label (tokens[:, p+1]) is not padding */
    int32_t *rows;                   /* [n_rows] their indices b * Td + p */
    float *dlc, *logits;             /* those rows of dln [n_rows,W]; their logits [n_rows,V] */
} mc_coca_train_state;

int mc_coca_train_state_init(mc_coca_train_state *st, const mc_coca *m, mc_err *e);
void mc_coca_train_state_free(mc_coca_train_state *st);
/* Activation (tape) and backward-temporary (work) floats for B pairs. */
int mc_coca_train_sizes(const mc_coca *m, int B, size_t *tape_floats, size_t *work_floats, mc_err *e);
/* images [B,3,R,R], tokens [B,L] (both kept until backward) -> st->img_feat, st->txt_feat, st->logits. */
int mc_coca_train_forward(mc_train_ctx *ctx, const mc_coca *m, mc_coca_train_state *st, const float *images,
                          const int32_t *tokens, int B, mc_err *e);
/* Gradients of the unnormalised features d img_feat, d txt_feat [B,E] and of the logits
 * [n_rows, V] -> parameter gradients (+=). Any of the three may be NULL (zero). */
int mc_coca_train_backward(mc_train_ctx *ctx, const mc_coca *m, mc_coca_train_state *st, const float *dimg,
                           const float *dtxt, const float *dlogits, mc_err *e);

typedef struct mc_coca_losses {
    double clip, caption;            /* weighted, as CoCaLoss returns them */
    double total;                    /* their sum (what open_clip's train.py backpropagates) */
} mc_coca_losses;

/* Floats of loss scratch for B pairs (features, their gradients, the clip loss's matrices). */
size_t mc_coca_loss_scratch(const mc_coca *m, int B);
/* CoCaLoss of st (after the forward) with logit scale parameter t: the losses, and with dlogits
 * != NULL the gradients of dloss * total: dlogits [n_rows,V] written (the logits' buffer may be
 * passed: it is overwritten), dimg/dtxt [B,E] written, *dt the logit scale's. */
int mc_coca_loss_grad(const mc_coca *m, const mc_coca_train_state *st, float t, double clip_weight,
                      double caption_weight, float dloss, float *scratch, mc_coca_losses *out, float *dlogits,
                      float *dimg, float *dtxt, float *dt, mc_err *e);

#endif
