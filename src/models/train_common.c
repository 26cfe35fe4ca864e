/* BatchNorm inside training forwards/backwards (train_tape.h): batch or running statistics,
 * the saves taken from the tape, gradients found through the gradient map. */
#include "models/train_tape.h"
#include "nn/layers.h"

void mc_train_bn_forward(mc_train_ctx *ctx, mc_bn_save *s, float *y, const float *x, const mc_bn_params *bn,
                         int outer, int C, int inner) {
    s->mean = s->rstd = NULL;
    if (ctx->train) {
        s->mean = mc_tape_take(ctx->tape, (size_t)C);
        s->rstd = mc_tape_take(ctx->tape, (size_t)C);
    }
    if (!mc_tape_live(ctx->tape)) return;
    if (ctx->train)
        /* the running buffers live in the (writable) parameter store */
        mc_batchnorm_train_forward(y, s->mean, s->rstd, x, bn->weight, bn->bias, (float *)bn->mean, (float *)bn->var,
                                   NULL, ctx->bn_momentum, bn->eps, outer, C, inner);
    else
        mc_batchnorm_eval_forward(y, x, bn->weight, bn->bias, bn->mean, bn->var, bn->eps, outer, C, inner);
}

void mc_train_bn_backward(mc_train_ctx *ctx, const mc_bn_save *s, float *dx, const float *dy, const float *x,
                          const mc_bn_params *bn, int outer, int C, int inner, int acc_dx) {
    if (!mc_tape_live(ctx->work)) return;
    float *dw = mc_grad_of(ctx->grads, bn->weight), *db = mc_grad_of(ctx->grads, bn->bias);
    if (ctx->train)
        mc_batchnorm_train_backward(dx, dw, db, dy, x, s->mean, s->rstd, bn->weight, outer, C, inner, acc_dx);
    else
        mc_batchnorm_eval_backward(dx, dw, db, dy, x, bn->weight, bn->mean, bn->var, bn->eps, outer, C, inner, acc_dx);
}
