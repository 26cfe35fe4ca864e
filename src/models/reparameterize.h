/* reparameterize.h - structural reparameterization arithmetic shared by all models.
 *
 * Every training-time branch (conv+BN, 1x1 "scale" conv+BN, BN-only identity "skip")
 * is a linear map, so their sum folds into one convolution with bias:
 *   conv+BN:   W' = W * g/sqrt(v+eps) per output channel, b' = beta + (b - mean) * g/sqrt(v+eps)
 *   BN alone:  an identity kernel (1 at the centre tap of its own input channel) folded the same way
 *   smaller kernels are zero-padded to the largest kernel size, centred.
 */
#ifndef MC_MODELS_REPARAMETERIZE_H
#define MC_MODELS_REPARAMETERIZE_H

typedef struct mc_bn_params {
    const float *weight, *bias, *mean, *var; /* [C] each */
    float eps;
} mc_bn_params;

/* Accumulates into w_acc[cout, cin_g, kh, kw] and b_acc[cout] the folded branch
 * conv(w[cout, cin_g, sh, sw], bias or NULL) -> bn. (sh, sw) <= (kh, kw), centred. */
void mc_reparameterize_add_conv_bn(float *w_acc, float *b_acc, int cout, int cin_g, int kh, int kw,
                            const float *w, const float *bias, int sh, int sw, const mc_bn_params *bn);

/* Accumulates the folded BN-only identity branch (requires cin == cout) into
 * w_acc[cout, cin_g, kh, kw], b_acc[cout]; `groups` is the conv's group count. */
void mc_reparameterize_add_identity_bn(float *w_acc, float *b_acc, int cout, int cin_g, int kh, int kw,
                                const mc_bn_params *bn);

/* Adds a plain identity (no BN, e.g. the residual x in x + conv(x)) to a kernel. */
void mc_reparameterize_add_identity(float *w_acc, int cout, int cin_g, int kh, int kw, float scale);

#endif
