/* Backward of the elementwise and per-channel layers, see layers.h. */
#include <math.h>
#include <string.h>

#include "core/parallel.h"
#include "nn/isa.h"
#include "nn/layers.h"

#define PUT(dst, i, v) ((dst)[i] = acc_dx ? (dst)[i] + (v) : (v))

/* Arguments of the loops below, which run on the library's pool (core/parallel.h); each item's
 * result depends only on its own inputs, so the split over threads changes nothing. */
typedef struct act_job {
    float *dx, *dg;
    const float *dy, *x, *g;
    int B, C, HW, cols, acc_dx;
    float inv;
} act_job;

/* a span of elements per hand-off: below this an elementwise loop is not worth waking a thread */
#define ELEM_BLOCK 16384

/* the instruction set's kernel (gelu.inc): every element, a span's tail too, goes through its
 * vector path, so where the pool cuts the spans changes no result */
static void gelu_span(void *arg, size_t b, size_t e) {
    const act_job *j = arg;
    mc_kernels_get()->gelu_grad(j->dx + b, j->dy + b, j->x + b, e - b, j->acc_dx);
}

/* dx (=, or += with acc_dx) from dy and x (or y) elementwise, by `span` over the pool */
static void elementwise_backward(mc_span_fn span, float *dx, const float *dy, const float *x, size_t n, int acc_dx) {
    act_job j = {.dx = dx, .dy = dy, .x = x, .acc_dx = acc_dx};
    mc_parallel_span(n, ELEM_BLOCK, span, &j);
}

void mc_gelu_backward(float *dx, const float *dy, const float *x, size_t n, int acc_dx) {
    elementwise_backward(gelu_span, dx, dy, x, n, acc_dx);
}

static void relu_span(void *arg, size_t b, size_t e) {
    const act_job *j = arg;
    float *dx = j->dx;
    int acc_dx = j->acc_dx;
    for (size_t i = b; i < e; i++) PUT(dx, i, j->x[i] > 0.f ? j->dy[i] : 0.f);
}

void mc_relu_backward(float *dx, const float *dy, const float *x, size_t n, int acc_dx) {
    elementwise_backward(relu_span, dx, dy, x, n, acc_dx);
}

static void sigmoid_span(void *arg, size_t b, size_t e) {
    const act_job *j = arg;
    float *dx = j->dx;
    const float *y = j->x;
    int acc_dx = j->acc_dx;
    for (size_t i = b; i < e; i++) PUT(dx, i, j->dy[i] * y[i] * (1.f - y[i]));
}

void mc_sigmoid_backward(float *dx, const float *dy, const float *y, size_t n, int acc_dx) {
    elementwise_backward(sigmoid_span, dx, dy, y, n, acc_dx);
}

static void softmax_rows(void *arg, int r0, int r1) {
    const act_job *j = arg;
    int cols = j->cols;
    for (int r = r0; r < r1; r++) {
        const float *g = j->dy + (size_t)r * cols, *p = j->x + (size_t)r * cols;
        float *d = j->dx + (size_t)r * cols;
        double dot = 0;
        for (int c = 0; c < cols; c++) dot += (double)g[c] * p[c];
        for (int c = 0; c < cols; c++) d[c] = p[c] * (g[c] - (float)dot);
    }
}

void mc_softmax_backward(float *dx, const float *dy, const float *y, int rows, int cols) {
    act_job j = {.dx = dx, .dy = dy, .x = y, .cols = cols};
    mc_parallel_for(rows, mc_parallel_grain(rows, 4), softmax_rows, &j);
}

/* dls[c] += sum over b, i of dy f */
static void layer_scale_dls(void *arg, int c0, int c1) {
    const act_job *j = arg;
    int B = j->B, C = j->C, HW = j->HW;
    for (int c = c0; c < c1; c++) {
        double acc = 0;
        for (int b = 0; b < B; b++) {
            const float *g = j->dy + ((size_t)b * C + c) * HW, *v = j->x + ((size_t)b * C + c) * HW;
            float a = 0;
#pragma omp simd reduction(+ : a)
            for (int i = 0; i < HW; i++) a += g[i] * v[i];
            acc += a;
        }
        j->dg[c] += (float)acc;
    }
}

/* df[b, c] = ls[c] dy[b, c] over planes bc = b * C + c */
static void layer_scale_df(void *arg, int p0, int p1) {
    const act_job *j = arg;
    for (int p = p0; p < p1; p++) {
        size_t o = (size_t)p * j->HW;
        float l = j->g[p % j->C];
        for (int i = 0; i < j->HW; i++) j->dx[o + i] = l * j->dy[o + i];
    }
}

/* HW == 1 (token-major [B, C]): channel c is a column, which the per-channel loop read one
 * float per cache line; blocks of LS_COLS channels walk the rows instead, each channel's sum in
 * the same order (every term its own float run, added in double): bit-identical */
enum { LS_COLS = 64 };
static void layer_scale_dls_cols(void *arg, int b0, int b1) {
    const act_job *j = arg;
    int B = j->B, C = j->C;
    for (int blk = b0; blk < b1; blk++) {
        int c0 = blk * LS_COLS, nc = C - c0 < LS_COLS ? C - c0 : LS_COLS;
        double acc[LS_COLS] = {0};
        for (int b = 0; b < B; b++) {
            const float *g = j->dy + (size_t)b * C + c0, *v = j->x + (size_t)b * C + c0;
            for (int c = 0; c < nc; c++) {
                float t = g[c] * v[c];
                acc[c] += t;
            }
        }
        for (int c = 0; c < nc; c++) j->dg[c0 + c] += (float)acc[c];
    }
}

/* df = ls dy by rows of C (HW == 1) */
static void layer_scale_df_rows(void *arg, int r0, int r1) {
    const act_job *j = arg;
    int C = j->C;
    for (int r = r0; r < r1; r++)
        for (int c = 0; c < C; c++) j->dx[(size_t)r * C + c] = j->g[c] * j->dy[(size_t)r * C + c];
}

void mc_layer_scale_backward(float *df, float *dls, const float *dy, const float *f, const float *ls, int B, int C,
                             int HW) {
    act_job j = {.dx = df, .dg = dls, .dy = dy, .x = f, .g = ls, .B = B, .C = C, .HW = HW};
    if (HW == 1) {
        if (dls) mc_parallel_for((C + LS_COLS - 1) / LS_COLS, 1, layer_scale_dls_cols, &j);
        if (df) mc_parallel_for(B, mc_parallel_grain(B, 4), layer_scale_df_rows, &j);
        return;
    }
    if (dls) mc_parallel_for(C, mc_parallel_grain(C, 4), layer_scale_dls, &j);
    if (df) mc_parallel_for(B * C, mc_parallel_grain(B * C, 4), layer_scale_df, &j);
}

static void scale_channels_planes(void *arg, int p0, int p1) {
    const act_job *j = arg;
    for (int p = p0; p < p1; p++) {
        size_t o = (size_t)p * j->HW;
        float gate = j->g[p], a = 0;
        for (int i = 0; i < j->HW; i++) a += j->dy[o + i] * j->x[o + i];
        if (j->dg) j->dg[p] = a;
        if (j->dx)
            for (int i = 0; i < j->HW; i++) j->dx[o + i] = j->dy[o + i] * gate;
    }
}

void mc_scale_channels_backward(float *dx, float *dg, const float *dy, const float *x, const float *g, int B, int C,
                                int HW) {
    act_job j = {.dx = dx, .dg = dg, .dy = dy, .x = x, .g = g, .B = B, .C = C, .HW = HW};
    mc_parallel_for(B * C, mc_parallel_grain(B * C, 4), scale_channels_planes, &j);
}

static void mean_hw_planes(void *arg, int p0, int p1) {
    const act_job *j = arg;
    float *dx = j->dx;
    int acc_dx = j->acc_dx;
    for (int p = p0; p < p1; p++) {
        float v = j->dy[p] * j->inv;
        for (int i = 0; i < j->HW; i++) PUT(dx, (size_t)p * j->HW + i, v);
    }
}

void mc_mean_hw_backward(float *dx, const float *dy, int B, int C, int HW, int acc_dx) {
    act_job j = {.dx = dx, .dy = dy, .HW = HW, .acc_dx = acc_dx, .inv = 1.f / (float)HW};
    mc_parallel_for(B * C, mc_parallel_grain(B * C, 4), mean_hw_planes, &j);
}
