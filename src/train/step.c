/* step.c - see step.h. */
#include "train/step.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


static int fail_comm(mc_err *e, const char *what) { return mc_fail(e, MC_E_IO, "data parallel: %s failed", what); }

static int image_sizes(const mc_clip *c, int b, size_t *tape, size_t *work, mc_err *e) {
    const mc_dropout_rates *r = &c->config.image_drop;
    return c->mci ? mc_mci_train_sizes(c->mci, b, c->config.image_size, r, tape, work, e)
                  : mc_vit_train_sizes(c->vit, b, c->config.image_size, r, tape, work, e);
}

/* The dropout masks of optimizer step `step` on this rank: a generator of its own (seed, step,
 * rank), so a resumed run draws what the uninterrupted one drew, whatever the thread count. */
static void seed_step(mc_trainer *t, uint64_t step) {
    uint64_t rank = t->comm ? (uint64_t)t->comm->rank : 0;
    mc_rng_init(&t->rng, t->cfg.seed ^ 0x64726f706f7574ull /* "dropout" */, (step << 20) | rank);
}

/* Feature rows and their gradients for `rows` samples: images x, dx [rows,E], texts y, dy
 * [ns*rows,E], teacher rows u [rows,Dt], v [ns*rows,Dt] (Dt > 0). 1 when all were allocated. */
static int alloc_rows(float **x, float **dx, float **y, float **dy, float **u, float **v, size_t rows, size_t ns,
                      size_t E, int Dt) {
    *x = malloc(sizeof(float) * rows * E);
    *dx = malloc(sizeof(float) * rows * E);
    *y = malloc(sizeof(float) * ns * rows * E);
    *dy = malloc(sizeof(float) * ns * rows * E);
    if (Dt) {
        *u = malloc(sizeof(float) * rows * Dt);
        *v = malloc(sizeof(float) * ns * rows * Dt);
    }
    return *x && *dx && *y && *dy && (!Dt || (*u && *v));
}

int mc_trainer_init(mc_trainer *t, mc_clip *clip, const mc_train_config *cfg, int b, int n_sets, const mc_comm *comm,
                    mc_err *e) {
    memset(t, 0, sizeof *t);
    if (!clip->text || !(clip->mci || clip->vit) || clip->reparam)
        return mc_fail(e, MC_E_ARG, "training needs both towers in training form (not reparameterized)");
    int G = cfg->bn_groups < 1 ? 1 : cfg->bn_groups;
    if (b < 2 || n_sets < 1 || n_sets > MC_DRCLIP_MAX_SETS || cfg->accum < 1 || G > MC_TRAIN_MAX_GROUPS || b % G)
        return mc_fail(e, MC_E_ARG, "training: batch %d, %d caption sets, %d BatchNorm groups: invalid", b, n_sets, G);
    if (cfg->loss.n_teachers == 0 && cfg->loss.weights[1] != 0)
        return mc_fail(e, MC_E_ARG, "training: a distillation weight needs teacher embeddings");
    t->clip = clip;
    t->cfg = *cfg;
    t->cfg.bn_groups = G;
    t->comm = comm && comm->world > 1 ? comm : NULL;
    t->b = b;
    t->n_sets = n_sets;
    t->G = G;
    t->gb = b / G;
    t->E = clip->config.embed_dim;
    t->T = clip->config.text.context_length;
    t->R = clip->config.image_size;
    for (int k = 0; k < cfg->loss.n_teachers; k++) t->Dt += cfg->loss.teacher_dims[k];
    mc_param_store *s = &clip->store;
    int rc = mc_param_store_alloc_grad(s, e);
    if (!rc) rc = mc_param_store_alloc_adam(s, e);
    if (rc) return rc;
    mc_adamw_init(&t->opt, &cfg->adamw);
    t->gm = (mc_grad_map){s->data, s->grad, s->total};
    /* activation memory: G groups of both towers kept for the backward */
    size_t it, iw, tt, tw;
    if ((rc = image_sizes(clip, t->gb, &it, &iw, e))) return rc;
    if ((rc = mc_text_train_sizes(clip->text, n_sets * t->gb, &clip->config.text_drop, &tt, &tw, e))) return rc;
    /* each take is 16-float aligned; a margin of 16 floats per group covers the tower boundary */
    t->tape_floats = (size_t)G * (it + tt + 32);
    t->work_floats = iw > tw ? iw : tw;
    t->tape.cap = t->tape_floats;
    t->work.cap = t->work_floats;
    t->tape.base = malloc(sizeof(float) * (t->tape_floats ? t->tape_floats : 1));
    t->work.base = malloc(sizeof(float) * (t->work_floats ? t->work_floats : 1));
    t->ctx = (mc_train_ctx){.tape = &t->tape, .work = &t->work, .grads = &t->gm, .train = 1, .bn_momentum = 0.1f,
                            .rng = &t->rng};
    seed_step(t, 0);
    for (int g = 0; g < G && !rc; g++) {
        rc = clip->mci ? mc_mci_train_state_init(&t->mst[g], clip->mci, e) : mc_vit_train_state_init(&t->vst[g], clip->vit, e);
        if (!rc) rc = mc_text_train_state_init(&t->tst[g], clip->text, e);
        if (!rc) t->n_states = g + 1;
    }
    if (rc) {
        mc_trainer_free(t);
        return rc;
    }
    /* the loss sees Bl = accum * b local rows (open_clip's --accum-freq: all micro-batches) */
    int K = cfg->accum, Bl = K * b, W = t->comm ? t->comm->world : 1, N = Bl * W;
    size_t E = (size_t)t->E, ns = (size_t)n_sets;
    t->x = malloc(sizeof(float) * b * E);
    t->xn = malloc(sizeof(float) * b);
    t->dx = malloc(sizeof(float) * b * E);
    t->y = malloc(sizeof(float) * ns * b * E);
    t->yn = malloc(sizeof(float) * ns * b);
    t->dy = malloc(sizeof(float) * ns * b * E);
    t->gtok = malloc(sizeof(int32_t) * ns * b * t->T); /* G groups: the text backward reads its forward's tokens */
    t->dembed = malloc(sizeof(float) * ns * t->gb * E);
    int ok = t->tape.base && t->work.base && t->x && t->xn && t->dx && t->y && t->yn && t->dy && t->gtok && t->dembed;
    if (K > 1) ok = ok && alloc_rows(&t->xa, &t->dxa, &t->ya, &t->dya, &t->ua, &t->va, (size_t)Bl, ns, E, t->Dt);
    if (t->comm) ok = ok && alloc_rows(&t->x_all, &t->dx_all, &t->y_all, &t->dy_all, &t->u_all, &t->v_all, (size_t)N, ns, E, t->Dt);
    mc_drclip_input in = {.B = Bl, .E = t->E, .Dt = t->Dt, .n_sets = n_sets, .N = t->comm ? N : 0};
    t->scratch_floats = mc_drclip_scratch_size(&in);
    t->scratch = malloc(sizeof(float) * t->scratch_floats);
    if (!ok || !t->scratch) {
        mc_trainer_free(t);
        return mc_fail(e, MC_E_NOMEM, "training: out of memory (activations %zu MiB for a batch of %d)",
                       (t->tape_floats + t->work_floats) * sizeof(float) >> 20, b);
    }
    return 0;
}

void mc_trainer_free(mc_trainer *t) {
    for (int g = 0; g < t->n_states; g++) {
        if (t->clip->mci) mc_mci_train_state_free(&t->mst[g]);
        else mc_vit_train_state_free(&t->vst[g]);
        mc_text_train_state_free(&t->tst[g]);
    }
    free(t->tape.base);
    free(t->work.base);
    void *bufs[] = {t->x, t->xn, t->dx, t->y, t->yn, t->dy, t->x_all, t->y_all, t->dx_all, t->dy_all,
                    t->u_all, t->v_all, t->gtok, t->dembed, t->scratch, t->xa, t->ya, t->ua, t->va, t->dxa, t->dya};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    memset(t, 0, sizeof *t);
}

/* Forward of both towers for group g; normalised features into x / y (set-major rows). */
static int forward_group(mc_trainer *t, const mc_train_batch *mb, int g, mc_err *e) {
    mc_clip *c = t->clip;
    int gb = t->gb, ns = t->n_sets, T = t->T;
    size_t E = (size_t)t->E, img = (size_t)3 * t->R * t->R;
    const float *images = mb->images + (size_t)g * gb * img;
    const float *emb;
    int rc;
    /* DDP (broadcast_buffers) keeps rank 0's running statistics: only group 0 updates them
     * (momentum 0 leaves r exactly as it was: r = 1.0 r + 0.0 stat) */
    t->ctx.bn_momentum = g == 0 ? 0.1f : 0.0f;
    t->ctx.rate = c->config.image_drop; /* each tower its own rates */
    if (c->mci) {
        rc = mc_mci_train_forward(&t->ctx, c->mci, &t->mst[g], images, gb, t->R, e);
        emb = t->mst[g].embed;
    } else {
        rc = mc_vit_train_forward(&t->ctx, c->vit, &t->vst[g], images, gb, t->R, e);
        emb = t->vst[g].embed;
    }
    if (rc) return rc;
    mc_l2_normalize_forward(t->x + g * gb * E, t->xn + g * gb, emb, gb, t->E);
    /* the group's texts as one batch: its real rows, then its synthetic rows */
    int32_t *gtok = t->gtok + (size_t)g * ns * gb * T;
    for (int s = 0; s < ns; s++)
        memcpy(gtok + (size_t)s * gb * T, mb->tokens + ((size_t)s * t->b + (size_t)g * gb) * T,
               sizeof(int32_t) * gb * T);
    t->ctx.rate = c->config.text_drop;
    if ((rc = mc_text_train_forward(&t->ctx, c->text, &t->tst[g], gtok, ns * gb, e))) return rc;
    for (int s = 0; s < ns; s++) {
        size_t row = (size_t)s * t->b + (size_t)g * gb;
        mc_l2_normalize_forward(t->y + row * E, t->yn + row, t->tst[g].embed + (size_t)s * gb * E, gb, t->E);
    }
    return 0;
}

static int backward_group(mc_trainer *t, int g, mc_err *e) {
    mc_clip *c = t->clip;
    int gb = t->gb, ns = t->n_sets;
    size_t E = (size_t)t->E;
    for (int s = 0; s < ns; s++) {
        size_t row = (size_t)s * t->b + (size_t)g * gb;
        mc_l2_normalize_backward(t->dembed + (size_t)s * gb * E, t->dy + row * E, t->y + row * E, t->yn + row, gb, t->E);
    }
    int rc = mc_text_train_backward(&t->ctx, c->text, &t->tst[g], t->dembed, e);
    if (rc) return rc;
    mc_l2_normalize_backward(t->dembed, t->dx + g * gb * E, t->x + g * gb * E, t->xn + g * gb, gb, t->E);
    return c->mci ? mc_mci_train_backward(&t->ctx, c->mci, &t->mst[g], t->dembed, e)
                  : mc_vit_train_backward(&t->ctx, c->vit, &t->vst[g], t->dembed, e);
}

/* all[r] blocks of a set-major local array [ns][b][w] gathered as [ns][N][w] */
static int gather_sets(const mc_comm *cm, const float *local, float *all, int ns, int b, int w) {
    size_t blk = (size_t)b * w, N = (size_t)b * cm->world;
    for (int s = 0; s < ns; s++)
        if (cm->allgather(cm->user, local + s * blk, all + s * N * w, blk)) return -1;
    return 0;
}

/* The training forward of every BatchNorm group of micro-batch mb: normalised features in
 * t->x, t->y; activations on the tape for backward_group. */
static int forward_towers(mc_trainer *t, const mc_train_batch *mb, mc_err *e) {
    mc_clip *c = t->clip;
    mc_tape_reset(&t->tape);
    mc_tape_reset(&t->work);
    int rc = 0;
    for (int g = 0; g < t->G && !rc; g++) rc = forward_group(t, mb, g, e);
    if (!rc && t->tape.overflow) rc = mc_fail(e, MC_E_NOMEM, "training: activation tape too small (internal)");
    if (rc) return rc;
    /* one training forward of every BatchNorm: PyTorch counts it in num_batches_tracked */
    for (int i = 0; i < c->store.ncounters; i++) c->store.counters[i]++;
    return 0;
}

/* The loss over the Bl local rows the features X [Bl,E], Y [ns][Bl][E] and teachers U [Bl,Dt],
 * V [ns][Bl][Dt] hold (Bl = b, or accum * b with the micro-batches side by side), gathered over
 * ranks in a data-parallel run, and its backward: dX, dY (same layouts) WRITTEN, then the rows
 * [r0, r0 + b) (the micro-batch on the tape) copied to t->dx, t->dy; the logit scale's gradient
 * is ADDED to the store. */
static int loss_backward(mc_trainer *t, int Bl, const float *X, const float *Y, const float *U, const float *V, float *dX,
                         float *dY, int r0, float dloss, mc_drclip_losses *out, mc_err *e) {
    mc_clip *c = t->clip;
    size_t E = (size_t)t->E;
    int b = t->b, ns = t->n_sets, Dt = t->Dt, rc;
    const mc_comm *cm = t->comm;
    float tlog = *c->logit_scale;
    mc_drclip_input in = {.B = Bl, .E = t->E, .Dt = Dt, .image = X, .teacher_image = Dt ? U : NULL, .n_sets = ns,
                          .scale = mc_logit_scale_forward(tlog)};
    for (int s = 0; s < ns; s++) {
        in.text[s] = Y + (size_t)s * Bl * E;
        in.teacher_text[s] = Dt ? V + (size_t)s * Bl * Dt : NULL;
    }
    if (cm) {
        int N = Bl * cm->world;
        in.N = N;
        in.offset = cm->rank * Bl;
        if (gather_sets(cm, X, t->x_all, 1, Bl, t->E) || gather_sets(cm, Y, t->y_all, ns, Bl, t->E) ||
            (Dt && (gather_sets(cm, U, t->u_all, 1, Bl, Dt) || gather_sets(cm, V, t->v_all, ns, Bl, Dt))))
            return fail_comm(e, "all-gather of the features");
        in.image_all = t->x_all;
        in.teacher_image_all = Dt ? t->u_all : NULL;
        for (int s = 0; s < ns; s++) {
            in.text_all[s] = t->y_all + (size_t)s * N * E;
            in.teacher_text_all[s] = Dt ? t->v_all + (size_t)s * N * Dt : NULL;
        }
    }
    mc_drclip_losses L;
    if ((rc = mc_drclip_loss_forward(&t->cfg.loss, &in, t->scratch, &L, e))) return rc;
    mc_drclip_grads gr = {.image = dX};
    for (int s = 0; s < ns; s++) gr.text[s] = dY + (size_t)s * Bl * E;
    if (cm) {
        int N = Bl * cm->world;
        gr.image_all = t->dx_all;
        for (int s = 0; s < ns; s++) gr.text_all[s] = t->dy_all + (size_t)s * N * E;
    }
    mc_drclip_loss_backward(&t->cfg.loss, &in, t->scratch, dloss, &gr);
    if (cm) {
        /* the gather's backward: every rank's gradient of the gathered copies, summed, this rank's rows */
        int N = Bl * cm->world;
        if (cm->allreduce(cm->user, t->dx_all, (size_t)N * E) ||
            cm->allreduce(cm->user, t->dy_all, (size_t)ns * N * E))
            return fail_comm(e, "all-reduce of the feature gradients");
        size_t off = (size_t)cm->rank * Bl * E;
        for (size_t i = 0; i < (size_t)Bl * E; i++) dX[i] += t->dx_all[off + i];
        for (int s = 0; s < ns; s++)
            for (size_t i = 0; i < (size_t)Bl * E; i++) dY[(size_t)s * Bl * E + i] += t->dy_all[(size_t)s * N * E + off + i];
    }
    if (dX != t->dx) {
        memcpy(t->dx, dX + (size_t)r0 * E, sizeof(float) * b * E);
        for (int s = 0; s < ns; s++)
            memcpy(t->dy + (size_t)s * b * E, dY + ((size_t)s * Bl + r0) * E, sizeof(float) * b * E);
    }
    float *gt = mc_param_grad(&c->store, c->logit_scale);
    *gt += mc_logit_scale_backward(tlog, gr.scale);
    if (cm) { /* report the loss of the whole batch: the mean of the ranks' local losses */
        double v[2 + 3 * MC_DRCLIP_MAX_SETS] = {L.contrastive, L.distill};
        for (int s = 0; s < MC_DRCLIP_MAX_SETS; s++) {
            v[2 + 3 * s] = L.clip[s];
            v[3 + 3 * s] = L.distill_ce[s];
            v[4 + 3 * s] = L.distill_kl[s];
        }
        if (cm->allreduce_double(cm->user, v, sizeof v / sizeof v[0])) return fail_comm(e, "all-reduce of the losses");
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) v[i] /= cm->world;
        L.contrastive = v[0];
        L.distill = v[1];
        for (int s = 0; s < MC_DRCLIP_MAX_SETS; s++) {
            L.clip[s] = v[2 + 3 * s];
            L.distill_ce[s] = v[3 + 3 * s];
            L.distill_kl[s] = v[4 + 3 * s];
        }
        L.total = L.contrastive + L.distill;
    }
    if (out) *out = L;
    return 0;
}

static int backward_towers(mc_trainer *t, mc_err *e) {
    int rc = 0;
    for (int g = t->G - 1; g >= 0 && !rc; g--) rc = backward_group(t, g, e);
    return rc;
}

int mc_trainer_forward_backward(mc_trainer *t, const mc_train_batch *mb, float dloss, mc_drclip_losses *out,
                                mc_err *e) {
    int rc = forward_towers(t, mb, e);
    if (!rc) rc = loss_backward(t, t->b, t->x, t->y, mb->teacher_image, mb->teacher_text, t->dx, t->dy, 0, dloss, out, e);
    return rc ? rc : backward_towers(t, e);
}

/* Micro-batch j's features (t->x, t->y) and teacher rows into the accumulation arrays. */
static void cache_rows(mc_trainer *t, const mc_train_batch *mb, int j) {
    size_t E = (size_t)t->E, b = (size_t)t->b, Bl = (size_t)t->cfg.accum * b, Dt = (size_t)t->Dt, r0 = (size_t)j * b;
    memcpy(t->xa + r0 * E, t->x, sizeof(float) * b * E);
    if (Dt) memcpy(t->ua + r0 * Dt, mb->teacher_image, sizeof(float) * b * Dt);
    for (int s = 0; s < t->n_sets; s++) {
        memcpy(t->ya + (s * Bl + r0) * E, t->y + s * b * E, sizeof(float) * b * E);
        if (Dt) memcpy(t->va + (s * Bl + r0) * Dt, mb->teacher_text + s * b * Dt, sizeof(float) * b * Dt);
    }
}

/* open_clip train.py with --accum-freq K: the features of all K micro-batches are computed
 * first (no gradient, train mode), then per micro-batch j: its forward again, the loss over all
 * K micro-batches with j's rows from this forward, and the backward through j. */
static int accum_forward_backward(mc_trainer *t, const mc_train_batch *mb, mc_drclip_losses *out, mc_err *e) {
    int K = t->cfg.accum, Bl = K * t->b, rc = 0;
    for (int j = 0; j < K && !rc; j++)
        if (!(rc = forward_towers(t, &mb[j], e))) cache_rows(t, &mb[j], j);
    for (int j = 0; j < K && !rc; j++) {
        if ((rc = forward_towers(t, &mb[j], e))) break;
        cache_rows(t, &mb[j], j);
        rc = loss_backward(t, Bl, t->xa, t->ya, t->ua, t->va, t->dxa, t->dya, j * t->b, 1.0f, out, e);
        if (!rc) rc = backward_towers(t, e);
    }
    return rc;
}

int mc_trainer_update(mc_trainer *t, float lr, double *grad_norm, mc_err *e) {
    mc_param_store *s = &t->clip->store;
    if (t->comm) { /* DDP: gradients averaged over ranks */
        if (t->comm->allreduce(t->comm->user, s->grad, s->total)) return fail_comm(e, "all-reduce of the gradients");
        mc_grad_scale(s, 1.0f / (float)t->comm->world);
    }
    double n = t->cfg.grad_clip > 0 ? mc_clip_grad_norm(s, t->cfg.grad_clip) : mc_grad_global_norm(s);
    if (grad_norm) *grad_norm = n;
    int rc = mc_adamw_step(&t->opt, s, lr, e);
    if (rc) return rc;
    mc_logit_scale_clamp(t->clip->logit_scale);
    return 0;
}

int mc_trainer_gradients(mc_trainer *t, const mc_train_batch *mb, mc_drclip_losses *out, mc_err *e) {
    mc_grad_zero(&t->clip->store);
    seed_step(t, (uint64_t)t->opt.step); /* the optimizer's step count: restored by --resume */
    return t->cfg.accum > 1 ? accum_forward_backward(t, mb, out, e) /* each j's loss is the whole batch's */
                            : mc_trainer_forward_backward(t, mb, 1.0f, out, e);
}

int mc_trainer_step(mc_trainer *t, const mc_train_batch *mb, float lr, mc_step_stats *out, mc_err *e) {
    mc_step_stats st;
    memset(&st, 0, sizeof st);
    st.lr = lr;
    st.scale = mc_clip_logit_scale(t->clip);
    int rc = mc_trainer_gradients(t, mb, &st.loss, e);
    if (!rc) rc = mc_trainer_update(t, lr, &st.grad_norm, e);
    if (!rc && out) *out = st;
    return rc;
}
