/* init.h - the initialisation of a model trained from scratch (`train` without --init).
 *
 * The reference's own rules, by tensor name (official state-dict names) and shape:
 *
 * Image tower, MCi (mobileclip/models/mci.py, FastViT):
 *   nn.Linear (attention token mixers' qkv, proj)        trunc_normal(std 0.02), bias 0
 *                                                         (FastViT.cls_init_weights)
 *   ConvFFN convolutions (convffn.conv.conv, fc1, fc2)     trunc_normal(std 0.02), bias 0
 *                                                         (ConvFFN._init_weights)
 *   layer_scale, layer_scale_1/2                           1e-5 (layer_scale_init_value)
 *   head.proj [in, E] (GlobalPool2D)                       N(0, in^-1/2)
 *   every other convolution (MobileOne branches, stem, large-kernel, SE, RepCPE)
 *                                                         PyTorch's default: weight and bias
 *                                                         U(+-1/sqrt(fan_in)) (kaiming_uniform a=sqrt 5)
 * Image tower, ViT-B/16 (mobileclip/models/vit.py):
 *   cls_token trunc_normal(0.02); pos_embed trunc_normal(width^-1/2) (LearnablePositionalEmbedding);
 *   classifier.proj [in, E] N(0, in^-1/2); convolutions and linears PyTorch's default (open_clip's
 *   VisionTransformer.init_parameters is empty too).
 * Text tower (MCt / Base; open_clip 7260a46 TextTransformer.init_parameters, which trains them):
 *   embedding_layer N(0, 0.02); positional embedding N(0, 0.01)  (the reference computes an
 *                                                         embedding scale but does not apply it)
 *   qkv_proj.weight N(0, w^-1/2), out_proj.weight N(0, w^-1/2 (2 L)^-1/2), their biases 0
 *                                                         (nn.MultiheadAttention's)
 *   FFN first linear N(0, (2 w)^-1/2), second N(0, w^-1/2 (2 L)^-1/2), biases PyTorch's default
 *   projection_layer [w, E] N(0, w^-1/2) (text_projection; the reference module leaves it empty)
 *   (w: the width, L: the attention layers); MCt's RepMixer blocks as MCi's (ConvFFN
 *   trunc_normal 0.02, layer scale 1e-5, other convolutions default).
 * Everywhere: BatchNorm / LayerNorm gains 1 and biases 0, running means 0, running variances 1,
 * num_batches_tracked 0; logit_scale ln(1 / 0.07) (CLIP).
 *
 * trunc_normal is timm's / PyTorch's: N(0, std) redrawn outside [-2, 2]. Each tensor draws from
 * its own stream (mc_augment_rng(seed, tensor number)); normals by Box-Muller (glibc log, cos),
 * so the values depend on the seed only, not on threads. The numbers are not torch's (its
 * generator is not reproduced); the distributions are.
 */
#ifndef MC_TRAIN_INIT_H
#define MC_TRAIN_INIT_H

#include <stdint.h>

#include "models/param_store.h"

void mc_train_init_params(mc_param_store *s, uint64_t seed);

#endif
