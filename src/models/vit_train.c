/* ViT image tower in training mode (see vit_train.h); same discipline as mci_train.c. */
#include "models/vit_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "nn/layers.h"

#define TAKE(c, n) mc_tape_take((c)->tape, (size_t)(n))
#define WORK(c, n) mc_tape_take((c)->work, (size_t)(n))
#define FLIVE(c) mc_tape_live((c)->tape)
#define BLIVE(c) mc_tape_live((c)->work)
#define G(c, p) mc_grad_of((c)->grads, (p))

static mc_conv2d_shape stem_shape(const mc_vit *m, int i) {
    int k = m->k[i], pad = (k - 1) / 2; /* the reference's default padding */
    return (mc_conv2d_shape){i ? m->stem_dim : 3, i == 2 ? m->width : m->stem_dim, k, k, k, pad, pad, 1};
}

static mc_bn_params stem_bn(const mc_vit *m, int i) {
    return (mc_bn_params){m->bn[i][0], m->bn[i][1], m->bn[i][2], m->bn[i][3], 1e-5f};
}

/* Resampling of the stored positions to P tokens (vit.c's rule): row i = l0 pos[i0] + l1 pos[i1]. */
static void pos_taps(int i, int n_pos, int P, int *i0, int *i1, float *l0, float *l1) {
    double scale = (double)n_pos / P, s = (i + 0.5) * scale - 0.5;
    if (s < 0) s = 0;
    *i0 = (int)s;
    if (*i0 > n_pos - 1) *i0 = n_pos - 1;
    *i1 = *i0 + 1 < n_pos ? *i0 + 1 : n_pos - 1;
    *l1 = (float)(s - *i0);
    *l0 = 1.f - *l1;
    if (P == n_pos) *i0 = *i1 = i, *l0 = 1.f, *l1 = 0.f;
}

/* The token map's layout changes, as tasks on the library's pool (core/parallel.h): task
 * bp = b * P + p writes token 1 + p of image b (forward); task bc = b * C + ch writes plane
 * ch of image b (backward). */
typedef struct tokens_job {
    const mc_vit *m;
    float *out;
    const float *in;
    int P, T, C;
} tokens_job;

/* x0[b, 1 + p, :] = patch[b, :, p] + the (interpolated) position embedding of p */
static void patch_tokens(void *arg, int q0, int q1) {
    const tokens_job *j = arg;
    const mc_vit *m = j->m;
    int P = j->P, T = j->T, C = j->C;
    for (int q = q0; q < q1; q++) {
        int b = q / P, p = q % P, i0, i1;
        float l0, l1;
        pos_taps(p, m->n_pos, P, &i0, &i1, &l0, &l1);
        float *xt = j->out + ((size_t)b * T + 1 + p) * C;
        const float *src = j->in + (size_t)b * C * P + p, *p0 = m->pos + (size_t)i0 * C, *p1 = m->pos + (size_t)i1 * C;
        for (int ch = 0; ch < C; ch++) xt[ch] = src[(size_t)ch * P] + (P == m->n_pos ? p0[ch] : l0 * p0[ch] + l1 * p1[ch]);
    }
}

/* db[b, ch, p] = da[b, 1 + p, ch] */
static void patch_planes(void *arg, int q0, int q1) {
    const tokens_job *j = arg;
    int P = j->P, T = j->T, C = j->C;
    for (int q = q0; q < q1; q++) {
        int b = q / C, ch = q % C;
        for (int p = 0; p < P; p++) j->out[(size_t)q * P + p] = j->in[((size_t)b * T + 1 + p) * C + ch];
    }
}

int mc_vit_train_state_init(mc_vit_train_state *st, const mc_vit *m, mc_err *e) {
    memset(st, 0, sizeof *st);
    st->layers = calloc((size_t)m->depth, sizeof *st->layers);
    return st->layers ? 0 : mc_fail(e, MC_E_NOMEM, "out of memory for the ViT training state");
}

void mc_vit_train_state_free(mc_vit_train_state *st) {
    free(st->layers);
    st->layers = NULL;
}

int mc_vit_train_forward(mc_train_ctx *c, const mc_vit *m, mc_vit_train_state *st, const float *images, int B, int R,
                         mc_err *e) {
    int S = m->stem_dim, C = m->width;
    mc_conv2d_shape cs[3] = {stem_shape(m, 0), stem_shape(m, 1), stem_shape(m, 2)};
    st->B = B, st->R = R, st->h[0] = R, st->images = images;
    for (int i = 0; i < 3; i++) {
        int h = st->h[i];
        st->h[i + 1] = h + 2 * cs[i].pad_h >= cs[i].kh ? mc_conv_out(h, cs[i].kh, cs[i].stride, cs[i].pad_h) : 0;
    }
    if (B < 1 || st->h[3] < 1 || R > 16384) return mc_fail(e, MC_E_ARG, "ViT: bad training input size B=%d R=%d", B, R);
    int P = st->P = st->h[3] * st->h[3], T = st->T = P + 1;
    size_t n1 = (size_t)B * S * st->h[1] * st->h[1], n2 = (size_t)B * S * st->h[2] * st->h[2];
    float **cv[2] = {&st->c1, &st->c2}, **nv[2] = {&st->n1, &st->n2}, **gv[2] = {&st->g1, &st->g2};
    const float *in = images;
    for (int i = 0; i < 2; i++) {
        size_t n = i ? n2 : n1;
        *cv[i] = TAKE(c, n);
        *nv[i] = TAKE(c, n);
        *gv[i] = TAKE(c, n);
        mc_bn_params bn = stem_bn(m, i);
        if (FLIVE(c)) mc_conv2d_forward(*cv[i], in, m->stem_w[i], NULL, &cs[i], B, st->h[i], st->h[i]);
        mc_train_bn_forward(c, &st->bn[i], *nv[i], *cv[i], &bn, B, S, st->h[i + 1] * st->h[i + 1]);
        if (FLIVE(c)) mc_gelu_forward(*gv[i], *nv[i], n);
        in = *gv[i];
    }
    st->patch = TAKE(c, (size_t)B * C * P);
    st->x0 = TAKE(c, (size_t)B * T * C);
    if (FLIVE(c)) {
        mc_conv2d_forward(st->patch, st->g2, m->stem_w[2], m->stem_b2, &cs[2], B, st->h[2], st->h[2]);
        tokens_job j = {m, st->x0, st->patch, P, T, C};
        mc_parallel_for(B * P, mc_parallel_grain(B * P, 4), patch_tokens, &j);
        for (int b = 0; b < B; b++) memcpy(st->x0 + (size_t)b * T * C, m->cls, sizeof(float) * C);
    }
    const float *x = st->x0;
    for (int i = 0; i < m->depth; i++) {
        /* layer i's stochastic depth: the reference's round(linspace(0, rate, depth)[i], 3), half to even */
        mc_train_ctx lc = *c;
        lc.rate.drop_path = m->depth > 1 ? (float)(nearbyint(1000.0 * c->rate.drop_path * i / (m->depth - 1)) / 1000.0) : 0.f;
        x = mc_transformer_train_forward(&lc, &m->layers[i], &st->layers[i], x, B, T, 0);
    }
    st->xl = x;
    st->xf = TAKE(c, (size_t)B * T * C);
    st->ln_mean = TAKE(c, (size_t)B * T);
    st->ln_rstd = TAKE(c, (size_t)B * T);
    st->pooled = TAKE(c, (size_t)B * C);
    st->embed = TAKE(c, (size_t)B * m->proj_dim);
    if (FLIVE(c)) {
        mc_layernorm_train_forward(st->xf, st->ln_mean, st->ln_rstd, x, m->post_ln_w, m->post_ln_b, B * T, C, 1e-5f);
        for (int b = 0; b < B; b++) memcpy(st->pooled + (size_t)b * C, st->xf + (size_t)b * T * C, sizeof(float) * C);
        mc_matmul_forward(st->embed, st->pooled, m->proj, B, C, m->proj_dim);
    }
    if (c->tape->base && (c->tape->overflow || c->work->overflow))
        return mc_fail(e, MC_E_NOMEM, "ViT: training activation arena too small (%zu + %zu floats needed)",
                       c->tape->peak, c->work->peak);
    return 0;
}

int mc_vit_train_backward(mc_train_ctx *c, const mc_vit *m, mc_vit_train_state *st, const float *dembed, mc_err *e) {
    int B = st->B, S = m->stem_dim, C = m->width, P = st->P, T = st->T;
    mc_conv2d_shape cs[3] = {stem_shape(m, 0), stem_shape(m, 1), stem_shape(m, 2)};
    size_t n = (size_t)B * T * C, n1 = (size_t)B * S * st->h[1] * st->h[1], n2 = (size_t)B * S * st->h[2] * st->h[2];
    size_t mk = mc_tape_mark(c->work), big = n1 > n ? n1 : n;
    float *da = WORK(c, big), *db = WORK(c, big), *dp = WORK(c, (size_t)B * C), *t;
    if (BLIVE(c)) {
        mc_matmul_backward(dp, G(c, m->proj), dembed, st->pooled, m->proj, B, C, m->proj_dim, 0);
        memset(db, 0, n * sizeof(float));
        for (int b = 0; b < B; b++) memcpy(db + (size_t)b * T * C, dp + (size_t)b * C, sizeof(float) * C);
        mc_layernorm_backward(da, G(c, m->post_ln_w), G(c, m->post_ln_b), db, st->xl, st->ln_mean, st->ln_rstd,
                              m->post_ln_w, B * T, C, 0);
    }
    for (int i = m->depth - 1; i >= 0; i--) {
        mc_transformer_train_backward(c, &m->layers[i], &st->layers[i], db, da, B, T, 0);
        t = da, da = db, db = t;
    }
    /* da: d tokens. cls, positions, and the patch map [B,C,P] into db */
    float *dcls = G(c, m->cls), *dpos = G(c, m->pos);
    if (BLIVE(c)) {
        for (int b = 0; b < B && dcls; b++)
            for (int ch = 0; ch < C; ch++) dcls[ch] += da[(size_t)b * T * C + ch];
        for (int p = 0; p < P && dpos; p++) {
            int i0, i1;
            float l0, l1;
            pos_taps(p, m->n_pos, P, &i0, &i1, &l0, &l1);
            for (int b = 0; b < B; b++) {
                const float *g = da + ((size_t)b * T + 1 + p) * C;
                for (int ch = 0; ch < C; ch++) {
                    dpos[(size_t)i0 * C + ch] += l0 * g[ch];
                    if (l1 != 0.f) dpos[(size_t)i1 * C + ch] += l1 * g[ch];
                }
            }
        }
        tokens_job j = {m, db, da, P, T, C};
        mc_parallel_for(B * C, mc_parallel_grain(B * C, 4), patch_planes, &j);
    }
    /* stem, in reverse: conv3 (bias) <- GELU <- BN <- conv2 <- GELU <- BN <- conv1 */
    size_t mk2 = mc_tape_mark(c->work);
    float *scr = WORK(c, mc_conv2d_backward_scratch(&cs[2], st->h[2], st->h[2]));
    if (BLIVE(c))
        mc_conv2d_backward(da, G(c, m->stem_w[2]), G(c, m->stem_b2), db, st->g2, m->stem_w[2], &cs[2], B, st->h[2],
                           st->h[2], 0, scr);
    mc_tape_release(c->work, mk2);
    const float *cin[2] = {st->images, st->g1}, *cv[2] = {st->c1, st->c2}, *nv[2] = {st->n1, st->n2};
    for (int i = 1; i >= 0; i--) {
        size_t ni = i ? n2 : n1;
        int hw = st->h[i + 1] * st->h[i + 1];
        mc_bn_params bn = stem_bn(m, i);
        if (BLIVE(c)) mc_gelu_backward(da, da, nv[i], ni, 0);
        mc_train_bn_backward(c, &st->bn[i], db, da, cv[i], &bn, B, S, hw, 0);
        mk2 = mc_tape_mark(c->work);
        scr = WORK(c, mc_conv2d_backward_scratch(&cs[i], st->h[i], st->h[i]));
        if (BLIVE(c))
            mc_conv2d_backward(i ? da : NULL, G(c, m->stem_w[i]), NULL, db, cin[i], m->stem_w[i], &cs[i], B, st->h[i],
                               st->h[i], 0, scr);
        mc_tape_release(c->work, mk2);
    }
    mc_tape_release(c->work, mk);
    if (c->work->base && c->work->overflow)
        return mc_fail(e, MC_E_NOMEM, "ViT: backward work arena too small (%zu floats needed)", c->work->peak);
    return 0;
}

int mc_vit_train_sizes(const mc_vit *m, int B, int R, const mc_dropout_rates *rates, size_t *tape_floats,
                       size_t *work_floats, mc_err *e) {
    mc_tape tape = {0}, work = {0};
    mc_train_ctx c = mc_train_measure_ctx(&tape, &work, rates);
    mc_vit_train_state st;
    int r = mc_vit_train_state_init(&st, m, e);
    if (r) return r;
    if (!(r = mc_vit_train_forward(&c, m, &st, NULL, B, R, e))) r = mc_vit_train_backward(&c, m, &st, NULL, e);
    mc_vit_train_state_free(&st);
    *tape_floats = tape.peak;
    *work_floats = work.peak;
    return r;
}
