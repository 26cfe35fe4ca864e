/* image_batch.c - see image_batch.h. */
#include "models/image_batch.h"

#include "core/parallel.h"
#include "nn/lowp.h"

typedef struct image_batch {
    mc_image_forward_fn forward;
    void *model;
    const float *images;
    int R, reparameterized, dim;
    float *embed;
    mc_lowp_plan *lowp; /* the caller's low-precision scope */
} image_batch;

static int image_item(void *arg, int i, mc_err *e) {
    const image_batch *j = arg;
    mc_lowp_plan *prev = mc_lowp_scope_begin(j->lowp);
    int r = j->forward(j->model, j->images + (size_t)i * 3 * j->R * j->R, j->R, j->reparameterized,
                       j->embed + (size_t)i * j->dim, e);
    mc_lowp_scope_end(prev);
    return r;
}

int mc_image_batch_forward(mc_image_forward_fn forward, void *model, const float *images, int B, int R,
                           int reparameterized, float *embed, int dim, mc_err *e) {
    image_batch j = {forward, model, images, R, reparameterized, dim, embed, mc_lowp_scope_current()};
    return mc_parallel_items(B, image_item, &j, e);
}
