/* plan_tensors.h - the stable names and shapes of the inference plan's tensors.
 *
 * The reparameterized forward (mc_clip_encode_* with c->reparameterized) reads a fixed set of
 * float arrays: the derived ones of mc_clip_plan_build (rep_w / rep_b, folded depthwise kernels,
 * transposed Text-RepMixer kernels) and the parameters it uses as they are (Linear and 1x1
 * weights, LayerNorms, embeddings, projections, layer scales). mc_clip_plan_walk visits exactly
 * those, in a fixed order, each with a structural name and its shape:
 *
 *   logit_scale                                  []
 *   image.stem.<i>.rep_w | rep_b | se.{w1,b1,w2,b2}
 *   image.net.<k>.blocks.<i>.{rep_w,rep_b,ls, ffn.{rep_dw_w,rep_dw_b,fc1_w,fc1_b,fc2_w,fc2_b}}
 *   image.net.<k>.blocks.<i>.{norm.{weight,bias,mean,var},qkv_w,proj_w,proj_b,ls1,ls2,ffn.*}
 *   image.net.<k>.{rep_lk_w,rep_lk_b,se.*,pw.*} (PatchEmbed), image.net.<k>.{rep_w,b} (RepCPE)
 *   image.conv_exp.*, image.head_proj             (MCi towers)
 *   image.stem.<i>.{rep_w,rep_b}, image.stem.2.{w,b}, image.{cls,pos,post_ln_w,post_ln_b,proj},
 *   image.layers.<i>.{ln1_w,...,fc2_b}            (ViT)
 *   text.{tok_emb,pos_emb}, text.blocks.<i>.{rm_w,rm_b,rf_w,rf_b,fc1_w,...,ls} (Text-RepMixer)
 *   text.blocks.<i>.{ln1_w,...,fc2_b} (transformer), text.{ln_w,ln_b,proj}
 *
 * The one mechanism the converted-model writer and loader share (models/clip_convert.c): the
 * writer saves what each slot points at under its name, the loader points each slot into the
 * mapped file, so the two cannot drift apart. Only loaded towers are visited.
 */
#ifndef MC_MODELS_PLAN_TENSORS_H
#define MC_MODELS_PLAN_TENSORS_H

#include <stdint.h>

#include "models/clip.h"

#define MC_PLAN_NAME_MAX 72 /* bytes with the terminating NUL (the model file's name field) */
#define MC_PLAN_MAX_DIMS 4

/* slot: the address of the model's pointer field (a `float *` or `const float *`; read and
 * write it with memcpy of sizeof(float *)). Return nonzero to stop the walk (it is returned). */
typedef int (*mc_plan_visit_fn)(void *user, const char *name, void *slot, int ndim, const int64_t *shape);

/* Visits every plan tensor of the loaded towers in the fixed order. 0, or the first nonzero
 * value a visit returned. */
int mc_clip_plan_walk(mc_clip *c, mc_plan_visit_fn fn, void *user);

/* Bytes of the f32 plan tensors of the loaded towers (the packed copies are c->lowp.bytes). */
size_t mc_clip_plan_bytes(mc_clip *c);

/* Marks every tower's plan as built (after its slots were pointed at plan tensors). */
void mc_clip_plan_mark_built(mc_clip *c);

/* Sets every plan slot to NULL (a mapped model's slots point into its file: nothing to free). */
void mc_clip_plan_detach(mc_clip *c);

#endif
