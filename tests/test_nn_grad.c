/* Training layers (src/nn/layers.h) against central finite differences.
 *
 * For each layer, L = sum_i r_i y_i with fixed random r (so dL/dy = r) is evaluated by the
 * float forward code with the loss summed in double; each checked element of an input or
 * parameter is moved by +-h and (L+ - L-) / 2h is compared with the analytic gradient that
 * the backward computes from dy = r.
 *
 * Tolerance: with h = 1e-2 and O(1) values, the central-difference truncation error is
 * h^2 |f'''| / 6 ~ 2e-5 relative, and the float rounding of the forward (about 6e-8 * sqrt(n)
 * * |y| for n <= 1e3 outputs, i.e. ~2e-6 absolute in L) becomes ~2e-4 after dividing by 2h.
 * So the error per tensor, max |fd - analytic| / max |analytic|, must be below 1e-3 (a
 * wrong gradient gives O(1)); measured values are printed (measured: 1e-6 .. 6e-5).
 * Kinks (ReLU at 0) are avoided by keeping those inputs away from 0 by more than h.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/test_util.h"
#include "models/text_repmixer.h"
#include "nn/layers.h"

#define H_FD 1e-2f
#define TOL 1e-3

static uint64_t rng_state = 0x1234567887654321ull;
static float frand(void) {
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / 16777216.0) * 2.0 - 1.0);
}
static float *rand_buf(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = frand();
    return p;
}
static float *zbuf(size_t n) { return calloc(n ? n : 1, sizeof(float)); }
static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

typedef double (*loss_fn)(void *ctx);

/* Compares grad[n] with finite differences of f w.r.t. param[n] (at most ~60 elements, spread
 * evenly). Returns the error. */
static double check_fd(const char *what, loss_fn f, void *ctx, float *param, const float *grad, size_t n) {
    size_t step = n > 60 ? n / 60 : 1;
    double gmax = 0, err = 0;
    for (size_t i = 0; i < n; i += step) gmax = fmax(gmax, fabs(grad[i]));
    for (size_t i = 0; i < n; i += step) {
        float v = param[i];
        param[i] = v + H_FD;
        double lp = f(ctx);
        param[i] = v - H_FD;
        double lm = f(ctx);
        param[i] = v;
        double fd = (lp - lm) / (2.0 * H_FD);
        err = fmax(err, fabs(fd - grad[i]));
    }
    double rel = err / (gmax > 1e-6 ? gmax : 1e-6);
    CHECK(rel < TOL && gmax > 0, "%s: fd rel err %.3g (max |grad| %.3g)", what, rel, gmax);
    printf("  %-44s rel err %.2e\n", what, rel);
    return rel;
}

/* ---------------------------------------------------------------- convolution */

typedef struct conv_ctx {
    mc_conv2d_shape s;
    int B, H, W;
    float *x, *w, *b, *y, *r;
    size_t ny;
} conv_ctx;

static double conv_loss(void *p) {
    conv_ctx *c = p;
    mc_conv2d_forward(c->y, c->x, c->w, c->b, &c->s, c->B, c->H, c->W);
    return dot(c->y, c->r, c->ny);
}

static void test_conv(int B, int cin, int cout, int groups, int k, int stride, int pad, int H, int W) {
    conv_ctx c = {{cin, cout, k, k, stride, pad, pad, groups}, B, H, W, 0, 0, 0, 0, 0, 0};
    int Ho = mc_conv_out(H, k, stride, pad), Wo = mc_conv_out(W, k, stride, pad);
    size_t nx = (size_t)B * cin * H * W, nw = (size_t)cout * (cin / groups) * k * k;
    c.ny = (size_t)B * cout * Ho * Wo;
    c.x = rand_buf(nx), c.w = rand_buf(nw), c.b = rand_buf(cout), c.y = zbuf(c.ny), c.r = rand_buf(c.ny);
    float *dx = zbuf(nx), *dw = zbuf(nw), *db = zbuf(cout), *dx2 = rand_buf(nx), *dx0 = malloc(nx * sizeof(float));
    float *scratch = zbuf(mc_conv2d_backward_scratch(&c.s, H, W));
    memcpy(dx0, dx2, nx * sizeof(float));
    mc_conv2d_backward(dx, dw, db, c.r, c.x, c.w, &c.s, B, H, W, 0, scratch);
    char name[128];
    snprintf(name, sizeof name, "conv %d->%d g%d k%d s%d p%d %dx%d dx", cin, cout, groups, k, stride, pad, H, W);
    check_fd(name, conv_loss, &c, c.x, dx, nx);
    name[strlen(name) - 2] = 0;
    strcat(name, "dw");
    check_fd(name, conv_loss, &c, c.w, dw, nw);
    name[strlen(name) - 2] = 0;
    strcat(name, "db");
    check_fd(name, conv_loss, &c, c.b, db, cout);
    /* second call: parameter gradients accumulate, acc_dx adds to what is there */
    float *dw1 = malloc(nw * sizeof(float));
    memcpy(dw1, dw, nw * sizeof(float));
    mc_conv2d_backward(dx2, dw, NULL, c.r, c.x, c.w, &c.s, B, H, W, 1, scratch);
    double e1 = 0, e2 = 0;
    for (size_t i = 0; i < nw; i++) e1 = fmax(e1, fabs(dw[i] - 2 * dw1[i]));
    for (size_t i = 0; i < nx; i++) e2 = fmax(e2, fabs(dx2[i] - (dx0[i] + dx[i])));
    CHECK(e1 < 1e-5 && e2 < 1e-5, "conv accumulate: dw %g dx %g", e1, e2);
    free(c.x); free(c.w); free(c.b); free(c.y); free(c.r);
    free(dx); free(dw); free(db); free(dx2); free(dx0); free(dw1); free(scratch);
}

/* ---------------------------------------------------------------- token depthwise conv */

typedef struct dwt_ctx {
    int N, T, C, K;
    float *x, *w, *b, *y, *r;
} dwt_ctx;

static double dwt_loss(void *p) {
    dwt_ctx *c = p;
    mc_dwconv_tokens_forward(c->y, c->x, c->w, c->b, c->N, c->T, c->C, c->K);
    return dot(c->y, c->r, (size_t)c->N * c->T * c->C);
}

static void test_dwconv_tokens(int N, int T, int C, int K) {
    dwt_ctx c = {N, T, C, K, 0, 0, 0, 0, 0};
    size_t n = (size_t)N * T * C;
    c.x = rand_buf(n), c.w = rand_buf((size_t)K * C), c.b = rand_buf(C), c.y = zbuf(n), c.r = rand_buf(n);
    float *dx = zbuf(n), *dw = zbuf((size_t)K * C), *db = zbuf(C);
    mc_dwconv_tokens_backward(dx, dw, db, c.r, c.x, c.w, N, T, C, K);
    check_fd("token dwconv 1xK dx", dwt_loss, &c, c.x, dx, n);
    check_fd("token dwconv 1xK dw", dwt_loss, &c, c.w, dw, (size_t)K * C);
    check_fd("token dwconv 1xK db", dwt_loss, &c, c.b, db, C);
    free(c.x); free(c.w); free(c.b); free(c.y); free(c.r); free(dx); free(dw); free(db);
}

/* ---------------------------------------------------------------- normalisation */

typedef struct bn_ctx {
    int outer, C, inner, train;
    float *x, *w, *b, *rm, *rv, *y, *r, *mean, *rstd;
} bn_ctx;

static double bn_loss(void *p) {
    bn_ctx *c = p;
    size_t n = (size_t)c->outer * c->C * c->inner;
    if (c->train)
        mc_batchnorm_train_forward(c->y, c->mean, c->rstd, c->x, c->w, c->b, NULL, NULL, NULL, 0.1f, 1e-5f, c->outer,
                                   c->C, c->inner);
    else
        mc_batchnorm_eval_forward(c->y, c->x, c->w, c->b, c->rm, c->rv, 1e-5f, c->outer, c->C, c->inner);
    return dot(c->y, c->r, n);
}

static void test_batchnorm(int outer, int C, int inner, int train) {
    bn_ctx c = {outer, C, inner, train, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    size_t n = (size_t)outer * C * inner;
    c.x = rand_buf(n), c.w = rand_buf(C), c.b = rand_buf(C), c.rm = rand_buf(C), c.rv = rand_buf(C);
    for (int i = 0; i < C; i++) c.rv[i] = 0.5f + fabsf(c.rv[i]);
    for (size_t i = 0; i < n; i++) c.x[i] = 0.7f * c.x[i] + 0.3f; /* a non-zero mean */
    c.y = zbuf(n), c.r = rand_buf(n), c.mean = zbuf(C), c.rstd = zbuf(C);
    float *dx = zbuf(n), *dw = zbuf(C), *db = zbuf(C);
    bn_loss(&c);
    if (train) mc_batchnorm_train_backward(dx, dw, db, c.r, c.x, c.mean, c.rstd, c.w, outer, C, inner, 0);
    else mc_batchnorm_eval_backward(dx, dw, db, c.r, c.x, c.w, c.rm, c.rv, 1e-5f, outer, C, inner, 0);
    char name[96];
    snprintf(name, sizeof name, "batchnorm %s [%d,%d,%d] dx", train ? "train" : "eval", outer, C, inner);
    check_fd(name, bn_loss, &c, c.x, dx, n);
    name[strlen(name) - 2] = 0;
    strcat(name, "dw");
    check_fd(name, bn_loss, &c, c.w, dw, C);
    name[strlen(name) - 2] = 0;
    strcat(name, "db");
    check_fd(name, bn_loss, &c, c.b, db, C);
    free(c.x); free(c.w); free(c.b); free(c.rm); free(c.rv); free(c.y); free(c.r); free(c.mean); free(c.rstd);
    free(dx); free(dw); free(db);
}

/* Running statistics and the normalised output against a hand computation in double:
 * mean, biased variance normalise; running_var takes the unbiased variance; momentum 0.1;
 * num_batches_tracked counts forwards. Also eval mode uses the running statistics. */
static void test_batchnorm_running_stats(void) {
    enum { B = 3, C = 2, HW = 5 };
    float x[B * C * HW], y[B * C * HW], w[C] = {1.5f, -0.5f}, b[C] = {0.25f, 2.f};
    float rm[C] = {0.2f, -1.f}, rv[C] = {2.f, 0.5f}, mean[C], rstd[C];
    int64_t nbt = 7;
    for (int i = 0; i < B * C * HW; i++) x[i] = (float)((i * 37) % 11) * 0.3f - 1.f;
    mc_batchnorm_train_forward(y, mean, rstd, x, w, b, rm, rv, &nbt, 0.1f, 1e-5f, B, C, HW);
    CHECK(nbt == 8, "num_batches_tracked %lld, expected 8", (long long)nbt);
    double max_err = 0;
    for (int c = 0; c < C; c++) {
        double s = 0, q = 0;
        for (int bb = 0; bb < B; bb++)
            for (int i = 0; i < HW; i++) s += x[(bb * C + c) * HW + i];
        double m = s / (B * HW);
        for (int bb = 0; bb < B; bb++)
            for (int i = 0; i < HW; i++) q += pow(x[(bb * C + c) * HW + i] - m, 2);
        double var_b = q / (B * HW), var_u = q / (B * HW - 1);
        double rm_ref = 0.9 * (c ? -1.0 : 0.2) + 0.1 * m, rv_ref = 0.9 * (c ? 0.5 : 2.0) + 0.1 * var_u;
        max_err = fmax(max_err, fabs(rm[c] - rm_ref));
        max_err = fmax(max_err, fabs(rv[c] - rv_ref));
        for (int bb = 0; bb < B; bb++)
            for (int i = 0; i < HW; i++) {
                int j = (bb * C + c) * HW + i;
                double yr = (x[j] - m) / sqrt(var_b + 1e-5) * w[c] + b[c];
                max_err = fmax(max_err, fabs(y[j] - yr));
            }
    }
    CHECK(max_err < 2e-6, "batchnorm train running stats / output vs hand computation: err %g", max_err);
    /* eval mode with the updated statistics */
    float ye[B * C * HW];
    mc_batchnorm_eval_forward(ye, x, w, b, rm, rv, 1e-5f, B, C, HW);
    double e2 = 0;
    for (int j = 0; j < B * C * HW; j++) {
        int c = j / HW % C;
        e2 = fmax(e2, fabs(ye[j] - ((x[j] - rm[c]) / sqrt(rv[c] + 1e-5) * w[c] + b[c])));
    }
    CHECK(e2 < 2e-6, "batchnorm eval vs hand computation: err %g", e2);
    printf("  batchnorm running stats vs hand computation: err %.2e, eval %.2e\n", max_err, e2);
}

typedef struct ln_ctx {
    int N, C;
    float *x, *w, *b, *y, *r, *mean, *rstd;
} ln_ctx;

static double ln_loss(void *p) {
    ln_ctx *c = p;
    mc_layernorm_train_forward(c->y, c->mean, c->rstd, c->x, c->w, c->b, c->N, c->C, 1e-5f);
    return dot(c->y, c->r, (size_t)c->N * c->C);
}

static void test_layernorm(int N, int C) {
    ln_ctx c = {N, C, 0, 0, 0, 0, 0, 0, 0};
    size_t n = (size_t)N * C;
    c.x = rand_buf(n), c.w = rand_buf(C), c.b = rand_buf(C), c.y = zbuf(n), c.r = rand_buf(n);
    c.mean = zbuf(N), c.rstd = zbuf(N);
    float *dx = zbuf(n), *dw = zbuf(C), *db = zbuf(C), *yi = zbuf(n);
    ln_loss(&c);
    mc_layernorm_forward(yi, c.x, c.w, c.b, N, C, 1e-5f);
    CHECK(!memcmp(yi, c.y, n * sizeof(float)), "layernorm train forward differs from the inference forward");
    mc_layernorm_backward(dx, dw, db, c.r, c.x, c.mean, c.rstd, c.w, N, C, 0);
    check_fd("layernorm dx", ln_loss, &c, c.x, dx, n);
    check_fd("layernorm dw", ln_loss, &c, c.w, dw, C);
    check_fd("layernorm db", ln_loss, &c, c.b, db, C);
    free(c.x); free(c.w); free(c.b); free(c.y); free(c.r); free(c.mean); free(c.rstd);
    free(dx); free(dw); free(db); free(yi);
}

/* ---------------------------------------------------------------- linear maps */

typedef struct lin_ctx {
    int N, in, out, proj;
    float *x, *W, *b, *y, *r;
} lin_ctx;

static double lin_loss(void *p) {
    lin_ctx *c = p;
    if (c->proj) mc_matmul_forward(c->y, c->x, c->W, c->N, c->in, c->out);
    else mc_linear_forward(c->y, c->x, c->W, c->b, c->N, c->in, c->out);
    return dot(c->y, c->r, (size_t)c->N * c->out);
}

static void test_linear(int N, int in, int out, int proj) {
    lin_ctx c = {N, in, out, proj, 0, 0, 0, 0, 0};
    c.x = rand_buf((size_t)N * in), c.W = rand_buf((size_t)in * out), c.b = rand_buf(out);
    c.y = zbuf((size_t)N * out), c.r = rand_buf((size_t)N * out);
    float *dx = zbuf((size_t)N * in), *dW = zbuf((size_t)in * out), *db = zbuf(out);
    if (proj) mc_matmul_backward(dx, dW, c.r, c.x, c.W, N, in, out, 0);
    else mc_linear_backward(dx, dW, db, c.r, c.x, c.W, N, in, out, 0);
    check_fd(proj ? "projection x @ P dx" : "linear dx", lin_loss, &c, c.x, dx, (size_t)N * in);
    check_fd(proj ? "projection x @ P dP" : "linear dW", lin_loss, &c, c.W, dW, (size_t)in * out);
    if (!proj) check_fd("linear db", lin_loss, &c, c.b, db, out);
    free(c.x); free(c.W); free(c.b); free(c.y); free(c.r); free(dx); free(dW); free(db);
}

/* ---------------------------------------------------------------- elementwise */

enum { EW_GELU, EW_RELU, EW_SIGMOID, EW_SOFTMAX, EW_MEAN };
typedef struct ew_ctx {
    int kind, rows, cols;
    float *x, *y, *r;
} ew_ctx;

static double ew_loss(void *p) {
    ew_ctx *c = p;
    size_t n = (size_t)c->rows * c->cols;
    switch (c->kind) {
    case EW_GELU: mc_gelu_forward(c->y, c->x, n); break;
    case EW_RELU: mc_relu_forward(c->y, c->x, n); break;
    case EW_SIGMOID: mc_sigmoid_forward(c->y, c->x, n); break;
    case EW_SOFTMAX: memcpy(c->y, c->x, n * sizeof(float)); mc_softmax_rows(c->y, c->rows, c->cols); break;
    case EW_MEAN: mc_mean_hw_forward(c->y, c->x, 1, c->rows, c->cols); return dot(c->y, c->r, c->rows);
    }
    return dot(c->y, c->r, n);
}

static void test_elementwise(int kind, const char *name, int rows, int cols) {
    ew_ctx c = {kind, rows, cols, 0, 0, 0};
    size_t n = (size_t)rows * cols;
    c.x = rand_buf(n), c.y = zbuf(n), c.r = rand_buf(n);
    for (size_t i = 0; i < n; i++) {
        c.x[i] *= 3.f;
        if (kind == EW_RELU && fabsf(c.x[i]) < 0.05f) c.x[i] = 0.1f; /* away from the kink */
    }
    float *dx = zbuf(n);
    ew_loss(&c);
    switch (kind) {
    case EW_GELU: mc_gelu_backward(dx, c.r, c.x, n, 0); break;
    case EW_RELU: mc_relu_backward(dx, c.r, c.x, n, 0); break;
    case EW_SIGMOID: mc_sigmoid_backward(dx, c.r, c.y, n, 0); break;
    case EW_SOFTMAX: mc_softmax_backward(dx, c.r, c.y, rows, cols); break;
    case EW_MEAN: mc_mean_hw_backward(dx, c.r, 1, rows, cols, 0); break;
    }
    check_fd(name, ew_loss, &c, c.x, dx, n);
    free(c.x); free(c.y); free(c.r); free(dx);
}

/* y = base + ls * f  and  y = x * g (squeeze-excite gate) */
typedef struct ls_ctx {
    int B, C, HW;
    float *base, *f, *ls, *g, *y, *r;
} ls_ctx;

static double ls_loss(void *p) {
    ls_ctx *c = p;
    size_t n = (size_t)c->B * c->C * c->HW;
    memcpy(c->y, c->base, n * sizeof(float));
    mc_add_scaled_channels(c->y, c->f, c->ls, c->B, c->C, c->HW);
    double l = dot(c->y, c->r, n);
    memcpy(c->y, c->f, n * sizeof(float));
    mc_scale_channels(c->y, c->g, c->B, c->C, c->HW);
    return l + dot(c->y, c->r, n);
}

static void test_layer_scale_and_gate(int B, int C, int HW) {
    size_t n = (size_t)B * C * HW;
    ls_ctx c = {B, C, HW, rand_buf(n), rand_buf(n), rand_buf(C), rand_buf((size_t)B * C), zbuf(n), rand_buf(n)};
    float *df = zbuf(n), *df2 = zbuf(n), *dls = zbuf(C), *dg = zbuf((size_t)B * C);
    mc_layer_scale_backward(df, dls, c.r, c.f, c.ls, B, C, HW);
    mc_scale_channels_backward(df2, dg, c.r, c.f, c.g, B, C, HW);
    for (size_t i = 0; i < n; i++) df[i] += df2[i]; /* f feeds both terms of the loss */
    check_fd("layer scale + gate df", ls_loss, &c, c.f, df, n);
    check_fd("layer scale dls", ls_loss, &c, c.ls, dls, C);
    check_fd("channel gate dg", ls_loss, &c, c.g, dg, (size_t)B * C);
    free(c.base); free(c.f); free(c.ls); free(c.g); free(c.y); free(c.r); free(df); free(df2); free(dls); free(dg);
}

/* ---------------------------------------------------------------- attention */

typedef struct att_ctx {
    int N, T, H, D, causal;
    float *qkv, *out, *p, *r;
} att_ctx;

static double att_loss(void *p) {
    att_ctx *c = p;
    mc_attention_train_forward(c->out, c->p, c->qkv, c->N, c->T, c->H, c->D, 1.f / sqrtf((float)c->D), c->causal);
    return dot(c->out, c->r, (size_t)c->N * c->T * c->H * c->D);
}

static void test_attention(int N, int T, int H, int D, int causal) {
    int C = H * D;
    size_t nq = (size_t)N * T * 3 * C, no = (size_t)N * T * C;
    att_ctx c = {N, T, H, D, causal, rand_buf(nq), zbuf(no), zbuf((size_t)N * H * T * T), rand_buf(no)};
    for (size_t i = 0; i < nq; i++) c.qkv[i] *= 2.f; /* peaked enough to exercise the softmax */
    float *dq = zbuf(nq), *scratch = zbuf(mc_attention_backward_scratch(N, T, H)), *ref = zbuf(no);
    att_loss(&c);
    /* the forward equals the inference kernel */
    mc_attention_forward(ref, c.qkv, N, T, H, D, 1.f / sqrtf((float)D), causal);
    double e = 0;
    for (size_t i = 0; i < no; i++) e = fmax(e, fabs(ref[i] - c.out[i]));
    CHECK(e < 1e-5, "attention train forward vs inference: %g", e);
    mc_attention_backward(dq, c.r, c.qkv, c.p, N, T, H, D, 1.f / sqrtf((float)D), causal, scratch);
    char name[96];
    snprintf(name, sizeof name, "attention N%d T%d H%d D%d %s dqkv", N, T, H, D, causal ? "causal" : "full");
    check_fd(name, att_loss, &c, c.qkv, dq, nq);
    free(c.qkv); free(c.out); free(c.p); free(c.r); free(dq); free(scratch); free(ref);
}

/* Attention-probability dropout (the reference MHA's attn_dropout): the mask is drawn once by
 * the kernel (seeded), then held fixed; the loss for the finite differences is a double-precision
 * reference of o = (softmax(s q k^T) * mask) v, written here independently of the kernel. */
typedef struct attd_ctx {
    int N, T, H, D, causal;
    float *qkv, *mask, *r;
} attd_ctx;

static double attd_loss_ref(void *p) {
    attd_ctx *c = p;
    int C = c->H * c->D, T = c->T;
    size_t ld = 3 * (size_t)C;
    double loss = 0, scale = 1.0 / sqrt((double)c->D), *pr = malloc(sizeof(double) * T);
    for (int n = 0; n < c->N; n++)
        for (int h = 0; h < c->H; h++)
            for (int t = 0; t < T; t++) {
                const float *q = c->qkv + ((size_t)n * T + t) * ld + (size_t)h * c->D;
                int nj = c->causal ? t + 1 : T;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < nj; j++) {
                    const float *k = c->qkv + ((size_t)n * T + j) * ld + C + (size_t)h * c->D;
                    double sc = 0;
                    for (int d = 0; d < c->D; d++) sc += (double)q[d] * k[d];
                    pr[j] = sc * scale;
                    mx = fmax(mx, pr[j]);
                }
                for (int j = 0; j < nj; j++) sum += pr[j] = exp(pr[j] - mx);
                const float *m = c->mask + (((size_t)n * c->H + h) * T + t) * T;
                for (int d = 0; d < c->D; d++) {
                    double o = 0;
                    for (int j = 0; j < nj; j++)
                        o += pr[j] / sum * m[j] * c->qkv[((size_t)n * T + j) * ld + 2 * C + (size_t)h * c->D + d];
                    loss += o * c->r[((size_t)n * T + t) * C + (size_t)h * c->D + d];
                }
            }
    free(pr);
    return loss;
}

static void test_attention_dropout(int N, int T, int H, int D, int causal, float p) {
    int C = H * D;
    size_t nq = (size_t)N * T * 3 * C, no = (size_t)N * T * C, np = (size_t)N * H * T * T;
    attd_ctx c = {N, T, H, D, causal, rand_buf(nq), zbuf(np), rand_buf(no)};
    for (size_t i = 0; i < nq; i++) c.qkv[i] *= 2.f;
    float *out = zbuf(no), *P = zbuf(np), *dq = zbuf(nq), *scratch = zbuf(mc_attention_backward_scratch(N, T, H));
    mc_rng rng = mc_rng_seed(99);
    float scale = 1.f / sqrtf((float)D);
    mc_attention_dropout_train_forward(out, P, c.mask, c.qkv, N, T, H, D, scale, causal, p, &rng);
    size_t zeros = 0, bad = 0;
    for (size_t i = 0; i < np; i++) {
        zeros += c.mask[i] == 0.f;
        bad += c.mask[i] != 0.f && c.mask[i] != 1.f / (1.f - p);
    }
    CHECK(!bad && zeros > 0 && zeros < np, "attention dropout mask: %zu zeros of %zu, %zu bad values", zeros, np, bad);
    /* the forward against the double reference (loss = out . r) */
    double lk = dot(out, c.r, no), lr = attd_loss_ref(&c);
    CHECK(fabs(lk - lr) < 1e-4 * (1 + fabs(lr)), "attention dropout forward %g vs double reference %g", lk, lr);
    mc_attention_dropout_backward(dq, c.r, c.qkv, P, c.mask, N, T, H, D, scale, causal, scratch);
    char name[96];
    snprintf(name, sizeof name, "attention dropout %.2f N%d T%d H%d %s dqkv", (double)p, N, T, H, causal ? "causal" : "full");
    check_fd(name, attd_loss_ref, &c, c.qkv, dq, nq);
    free(c.qkv); free(c.mask); free(c.r); free(out); free(P); free(dq); free(scratch);
}

/* ---------------------------------------------------------------- text embedding, pooling */

typedef struct emb_ctx {
    int N, T, C, V;
    int32_t *tok, *idx;
    float *te, *pe, *x, *pool, *r;
} emb_ctx;

static double emb_loss(void *p) {
    emb_ctx *c = p;
    mc_embedding_forward(c->x, c->tok, c->te, c->pe, c->N, c->T, c->C);
    mc_eot_pool_forward(c->pool, c->idx, c->x, c->tok, c->N, c->T, c->C);
    return dot(c->x, c->r, (size_t)c->N * c->T * c->C) + dot(c->pool, c->r, (size_t)c->N * c->C);
}

static void test_embedding(void) {
    enum { N = 3, T = 5, C = 4, V = 6 };
    int32_t tok[N * T] = {1, 5, 2, 0, 0, 3, 3, 4, 5, 5, 2, 2, 2, 2, 2}, idx[N];
    emb_ctx c = {N, T, C, V, tok, idx, rand_buf(V * C), rand_buf(T * C), zbuf(N * T * C), zbuf(N * C), rand_buf(N * T * C)};
    float *dx = zbuf(N * T * C), *dtok = zbuf(V * C), *dpos = zbuf(T * C);
    emb_loss(&c);
    CHECK(idx[0] == 1 && idx[1] == 3 && idx[2] == 0, "EOT index (first argmax): %d %d %d", idx[0], idx[1], idx[2]);
    mc_eot_pool_backward(dx, c.r, idx, N, T, C);
    for (int i = 0; i < N * T * C; i++) dx[i] += c.r[i];
    mc_embedding_backward(dtok, dpos, dx, tok, N, T, C);
    check_fd("token embedding + EOT pool dtok", emb_loss, &c, c.te, dtok, V * C);
    check_fd("positional embedding dpos", emb_loss, &c, c.pe, dpos, T * C);
    free(c.te); free(c.pe); free(c.x); free(c.pool); free(c.r); free(dx); free(dtok); free(dpos);
}

/* ---------------------------------------------------------------- dropout, drop path */

static void test_regularisers(void) {
    enum { N = 4000, B = 400 };
    float *x = rand_buf(N), *y = zbuf(N), *m = zbuf(N), *y2 = zbuf(N), *m2 = zbuf(N), *dx = zbuf(N);
    mc_rng r = mc_rng_seed(42), r2 = mc_rng_seed(42);
    mc_dropout_forward(y, m, x, N, 0.f, &r);
    CHECK(!memcmp(x, y, N * sizeof(float)), "dropout p = 0 is not the identity");
    mc_dropout_forward(y, m, x, N, 0.25f, &r);
    mc_dropout_forward(y2, m2, x, N, 0.25f, &r2); /* p = 0 above drew nothing: same stream */
    CHECK(!memcmp(y, y2, N * sizeof(float)), "dropout is not reproducible from its seed");
    int zeros = 0, bad = 0;
    for (int i = 0; i < N; i++) {
        if (m[i] == 0.f) zeros++;
        else if (m[i] != 1.f / 0.75f) bad++;
        if (y[i] != x[i] * m[i]) bad++;
    }
    /* binomial(4000, 0.25): mean 1000, sd 27 */
    CHECK(!bad && zeros > 850 && zeros < 1150, "dropout mask: %d zeros of %d, %d bad", zeros, N, bad);
    mc_dropout_backward(dx, x, m, N);
    bad = 0;
    for (int i = 0; i < N; i++) bad += dx[i] != x[i] * m[i];
    CHECK(!bad, "dropout backward: %d wrong", bad);
    float keep[B];
    mc_drop_path_forward(y, keep, x, B, N / B, 0.5f, &r);
    int dropped = 0;
    bad = 0;
    for (int b = 0; b < B; b++) {
        dropped += keep[b] == 0.f;
        bad += keep[b] != 0.f && keep[b] != 2.f;
        for (int i = 0; i < N / B; i++) bad += y[b * (N / B) + i] != x[b * (N / B) + i] * keep[b];
    }
    CHECK(!bad && dropped > 150 && dropped < 250, "drop path: %d of %d dropped, %d bad", dropped, B, bad);
    mc_drop_path_backward(dx, x, keep, B, N / B);
    bad = 0;
    for (int i = 0; i < N; i++) bad += dx[i] != y[i];
    CHECK(!bad, "drop path backward: %d wrong", bad);
    free(x); free(y); free(m); free(y2); free(m2); free(dx);
}

int main(void) {
    /* convolutions: dense, strided, odd sizes, grouped, depthwise with multiplier, 1x1 */
    test_conv(2, 3, 4, 1, 3, 1, 1, 5, 6);
    test_conv(2, 3, 5, 1, 3, 2, 1, 7, 5);
    test_conv(1, 4, 6, 2, 3, 2, 1, 6, 7);
    test_conv(2, 4, 8, 4, 7, 2, 3, 9, 8);
    test_conv(2, 3, 9, 3, 5, 1, 2, 6, 11); /* depthwise multiplier 3, 5x5: padded-plane weight gradient */
    test_conv(1, 2, 4, 2, 3, 2, 1, 10, 9); /* multiplier 2, 3x3 (the patch embedding's small-kernel branch): direct loops */
    test_conv(1, 2, 4, 2, 7, 2, 3, 2, 1100); /* multiplier 2, 7x7 stride 2 on a wide plane */
    test_conv(2, 5, 5, 5, 3, 1, 1, 5, 4);
    /* stride-1 depthwise (the padded-plane path): 7x7 / 5x5 / unpadded 3x3, rows wider than a
     * vector with a partial last one */
    test_conv(2, 3, 3, 3, 7, 1, 3, 9, 19);
    test_conv(3, 2, 2, 2, 5, 1, 2, 11, 10);
    test_conv(2, 3, 3, 3, 3, 1, 0, 6, 12);
    test_conv(2, 3, 3, 3, 7, 2, 3, 12, 21); /* strided: phase-split x */
    test_conv(2, 4, 4, 4, 3, 2, 1, 7, 7);
    test_conv(2, 6, 4, 1, 1, 1, 0, 3, 5);
    test_conv(2, 4, 4, 4, 1, 2, 0, 5, 5);
    test_conv(1, 6, 6, 2, 1, 2, 0, 5, 4);
    test_dwconv_tokens(2, 7, 5, 3);
    test_batchnorm(3, 4, 5, 1);
    test_batchnorm(7, 5, 1, 1);
    test_batchnorm(9, 40, 1, 1); /* token-major [outer, C]: channels in blocks of columns */
    test_batchnorm(6, 37, 1, 0);
    test_batchnorm(2, 3, 6, 0);
    test_batchnorm_running_stats();
    test_layernorm(5, 7);
    test_layernorm(6, 70); /* dw, db: two blocks of channel columns */
    test_linear(5, 6, 7, 0);
    test_linear(4, 5, 3, 1);
    test_elementwise(EW_GELU, "gelu (exact)", 3, 40);
    test_elementwise(EW_RELU, "relu", 3, 40);
    test_elementwise(EW_SIGMOID, "sigmoid", 3, 40);
    test_elementwise(EW_SOFTMAX, "softmax rows", 4, 7);
    test_elementwise(EW_MEAN, "mean over HW", 4, 9);
    test_layer_scale_and_gate(2, 3, 5);
    test_layer_scale_and_gate(7, 70, 1); /* token-major: blocks of channel columns, rows */
    test_attention(2, 5, 2, 3, 0);
    test_attention(2, 5, 2, 3, 1);
    test_attention(1, 7, 3, 4, 1);
    test_attention(2, 9, 2, 8, 1); /* keys four at a time with a tail, both passes */
    test_attention(1, 8, 2, 5, 0);
    test_attention_dropout(2, 5, 2, 3, 0, 0.3f);
    test_attention_dropout(2, 6, 2, 4, 1, 0.5f);
    test_attention_dropout(1, 9, 2, 6, 0, 0.3f);
    test_embedding();
    test_regularisers();
    return mc_test_finish("nn_grad");
}
