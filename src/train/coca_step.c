/* One CoCa training step (see coca_step.h). */
#include "train/coca_step.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/loss.h"

int mc_coca_trainer_init(mc_coca_trainer *t, mc_coca_trainable *model, const mc_coca_train_config *cfg, int B,
                         mc_err *e) {
    memset(t, 0, sizeof *t);
    if (B < 2) return mc_fail(e, MC_E_ARG, "CoCa training: batch size %d (the contrastive loss needs at least 2)", B);
    t->model = model;
    t->cfg = *cfg;
    t->B = B;
    mc_coca *m = &model->m;
    int r = mc_coca_train_sizes(m, B, &t->tape_floats, &t->work_floats, e);
    if (!r) r = mc_coca_train_state_init(&t->st, m, e);
    if (!r) r = mc_param_store_alloc_grad(&model->store, e);
    if (!r) r = mc_param_store_alloc_adam(&model->store, e);
    if (r) {
        mc_coca_trainer_free(t);
        return r;
    }
    size_t E = (size_t)m->embed_dim;
    t->tape.cap = t->tape_floats;
    t->work.cap = t->work_floats;
    t->tape.base = malloc(sizeof(float) * (t->tape_floats ? t->tape_floats : 1));
    t->work.base = malloc(sizeof(float) * (t->work_floats ? t->work_floats : 1));
    t->scratch = malloc(sizeof(float) * mc_coca_loss_scratch(m, B));
    t->dimg = malloc(sizeof(float) * (size_t)B * E);
    t->dtxt = malloc(sizeof(float) * (size_t)B * E);
    if (!t->tape.base || !t->work.base || !t->scratch || !t->dimg || !t->dtxt) {
        size_t mb = (t->tape_floats + t->work_floats) * sizeof(float) >> 20;
        mc_coca_trainer_free(t);
        return mc_fail(e, MC_E_NOMEM, "CoCa training: out of memory for batch %d (%zu MiB of activations)", B, mb);
    }
    t->gm = (mc_grad_map){model->store.data, model->store.grad, model->store.total};
    t->ctx = (mc_train_ctx){.tape = &t->tape, .work = &t->work, .grads = &t->gm, .train = 1, .bn_momentum = 0.1f};
    mc_adamw_init(&t->opt, &cfg->adamw);
    return 0;
}

void mc_coca_trainer_free(mc_coca_trainer *t) {
    mc_coca_train_state_free(&t->st);
    free(t->tape.base);
    free(t->work.base);
    free(t->scratch);
    free(t->dimg);
    free(t->dtxt);
    memset(t, 0, sizeof *t);
}

int mc_coca_trainer_forward_backward(mc_coca_trainer *t, const float *images, const int32_t *tokens, float dloss,
                                     mc_coca_losses *out, mc_err *e) {
    mc_coca *m = &t->model->m;
    mc_tape_reset(&t->tape);
    mc_tape_reset(&t->work);
    int r = mc_coca_train_forward(&t->ctx, m, &t->st, images, tokens, t->B, e);
    if (r) return r;
    float dt = 0.f, *ls = t->model->logit_scale;
    r = mc_coca_loss_grad(m, &t->st, *ls, t->cfg.clip_weight, t->cfg.caption_weight, dloss, t->scratch, out,
                          t->st.logits, t->dimg, t->dtxt, &dt, e);
    if (r) return r;
    float *gls = mc_grad_of(&t->gm, ls);
    if (gls) *gls += dt;
    return mc_coca_train_backward(&t->ctx, m, &t->st, t->dimg, t->dtxt, t->st.logits, e);
}

int mc_coca_trainer_step(mc_coca_trainer *t, const float *images, const int32_t *tokens, float lr,
                         mc_coca_step_stats *out, mc_err *e) {
    mc_param_store *s = &t->model->store;
    mc_coca_step_stats st;
    memset(&st, 0, sizeof st);
    st.lr = lr;
    st.scale = expf(*t->model->logit_scale);
    mc_grad_zero(s);
    int r = mc_coca_trainer_forward_backward(t, images, tokens, 1.f, &st.loss, e);
    if (r) return r;
    if (!isfinite(st.loss.total))
        return mc_fail(e, MC_E_ARG, "CoCa training: the loss is not finite (%g): lower --lr?", st.loss.total);
    st.grad_norm = t->cfg.grad_clip > 0 ? mc_clip_grad_norm(s, t->cfg.grad_clip) : mc_grad_global_norm(s);
    if ((r = mc_adamw_step(&t->opt, s, lr, e))) return r;
    mc_logit_scale_clamp(t->model->logit_scale);
    t->model->m.clip.logit_scale_raw = *t->model->logit_scale;
    if (out) *out = st;
    return 0;
}
