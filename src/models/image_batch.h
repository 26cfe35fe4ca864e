/* image_batch.h - a batch of images through an image tower one image per task (the worker
 * pool), each image getting exactly its batch-1 result; the caller's low-precision scope
 * (nn/lowp.h) is opened in every task. Shared by the MCi and ViT towers. */
#ifndef MC_MODELS_IMAGE_BATCH_H
#define MC_MODELS_IMAGE_BATCH_H

#include "core/error.h"

/* forward(model, one image [3, R, R], R, reparameterized, embed [dim], e) */
typedef int (*mc_image_forward_fn)(void *model, const float *image, int R, int reparameterized, float *embed,
                                   mc_err *e);

/* images [B, 3, R, R] -> embed [B, dim]; 0 or the first task's error. */
int mc_image_batch_forward(mc_image_forward_fn forward, void *model, const float *images, int B, int R,
                           int reparameterized, float *embed, int dim, mc_err *e);

#endif
