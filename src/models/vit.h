/* vit.h - MobileCLIP's ViT image tower (`VisionTransformer`, vit_b16 for mobileclip_b).
 *
 *   stem:  conv k0/k0 pad (k0-1)/2, no bias -> BN -> GELU -> conv k1/k1 -> BN -> GELU
 *          -> conv k2/k2 with bias              (4/4, 2/2, 2/2 for vit_b16: 16 px patches)
 *   tokens [B, 1 + P, C]: cls token at index 0 (no positional embedding), then the P patch
 *          tokens (row-major) + pos_embed (linearly resampled along the sequence when P differs
 *          from the stored count, as the reference's F.interpolate does)
 *   L pre-norm transformer layers (non-causal), post_transformer_norm,
 *   embed = x[:, 0] @ classifier.proj  ([C, 512] stored x @ P).
 *
 * Width, depth, stem width, kernel sizes and the position count come from the tensor shapes;
 * heads = width / 64 (12 for ViT-B; the checkpoint does not record it).
 * Reparameterization folds the two stem BatchNorms into their convolutions (the reference's
 * reparameterize_model leaves this model unchanged; both forms compute the same function).
 * Weights are borrowed from the tensor map, which must outlive the model.
 */
#ifndef MC_MODELS_VIT_H
#define MC_MODELS_VIT_H

#include "core/tensor.h"
#include "models/trace.h"
#include "models/transformer.h"

/* Hyper-parameters (the reference's vit_b16: width 768, 12 layers of 12 heads, FFN 4x, conv
 * stem 4/2/2 of max(32, width/4) channels, (224/16)^2 stored positions). */
typedef struct mc_vit_config {
    int width, depth, heads, ffn_dim, stem_dim, n_pos;
    int k[3];
} mc_vit_config;

/* The reference's vit_b16. */
mc_vit_config mc_vit_config_b16(void);

typedef struct mc_vit {
    int width, depth, heads, stem_dim, proj_dim, n_pos;
    int k[3];                      /* stem kernel sizes = strides; patch = k0 * k1 * k2 */
    const float *stem_w[3];        /* [S,3,k0,k0], [S,S,k1,k1], [C,S,k2,k2] */
    const float *stem_b2;          /* [C] bias of the last stem conv */
    const float *bn[2][4];         /* stem BNs: weight, bias, running_mean, running_var [S] */
    const float *cls;              /* [C] */
    const float *pos;              /* [n_pos, C] */
    const float *post_ln_w, *post_ln_b;
    const float *proj;             /* [C, proj_dim] */
    mc_transformer_layer *layers;
    /* owned: BN scale/shift [2][2][S]; reparameterized stem kernels and biases once reparameterized */
    float *bn_coef;
    float *rep_w[2], *rep_b[2];
    int reparameterized;
} mc_vit;

/* 1 if w holds a MobileCLIP ViT image tower ("image_encoder.model.patch_emb..." tensors). */
int mc_vit_detect(const mc_tensor_map *w);

/* Binds "image_encoder.model.*"; fails naming the first missing, mis-shaped or unexpected
 * "image_encoder." tensor. */
int mc_vit_init(mc_vit **out, mc_tensor_map *w, mc_err *e);
/* Binds by a configuration (shapes from cfg, projection width proj_dim), not from the tensors. */
int mc_vit_init_config(mc_vit **out, mc_tensor_map *w, const mc_vit_config *cfg, int proj_dim, mc_err *e);
int mc_vit_reparameterize(mc_vit *m, mc_err *e);

/* images [B, 3, R, R] (values in [0, 1], no normalisation) -> embed [B, proj_dim].
 * Trace names (whole batch): patch_emb [B,C,h,w], transformer_input [B,1+P,C],
 * transformer.<i>, post_transformer_norm, cls_pooled [B,C], embed [B,proj_dim]. */
int mc_vit_forward(mc_vit *m, const float *images, int B, int R, int reparameterized, float *embed, const mc_trace *trace,
                   mc_err *e);

void mc_vit_free(mc_vit *m);

#endif
