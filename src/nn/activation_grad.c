/* Backward of the elementwise and per-channel layers, see layers.h. */
#include <math.h>
#include <string.h>

#include "nn/layers.h"

#define PUT(dst, i, v) ((dst)[i] = acc_dx ? (dst)[i] + (v) : (v))

/* As for the GELU forward (elementwise.c): glibc >= 2.35 on x86-64 has libmvec vector
 * variants of erff and expf; declaring them `omp declare simd` vectorises the loop. */
#if defined(__x86_64__) && defined(__GLIBC__) && defined(__GLIBC_PREREQ) && defined(__GNUC__) && \
    !defined(__clang__) && defined(_OPENMP)
#if __GLIBC_PREREQ(2, 35)
#pragma omp declare simd notinbranch
float erff(float);
#pragma omp declare simd notinbranch
float expf(float);
#define GELU_GRAD_SIMD 1
#endif
#endif

/* d/dx [x Phi(x)] = Phi(x) + x phi(x) */
static inline float gelu_grad(float v) {
    return 0.5f * (1.f + erff(v * 0.70710678118654752f)) + v * 0.39894228040143268f * expf(-0.5f * v * v);
}

void mc_gelu_backward(float *dx, const float *dy, const float *x, size_t n, int acc_dx) {
    /* two loops rather than a branch inside, so both vectorise */
    if (acc_dx) {
#ifdef GELU_GRAD_SIMD
#pragma omp parallel for simd schedule(static)
#else
#pragma omp parallel for schedule(static)
#endif
        for (size_t i = 0; i < n; i++) dx[i] += dy[i] * gelu_grad(x[i]);
    } else {
#ifdef GELU_GRAD_SIMD
#pragma omp parallel for simd schedule(static)
#else
#pragma omp parallel for schedule(static)
#endif
        for (size_t i = 0; i < n; i++) dx[i] = dy[i] * gelu_grad(x[i]);
    }
}

void mc_relu_backward(float *dx, const float *dy, const float *x, size_t n, int acc_dx) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) PUT(dx, i, x[i] > 0.f ? dy[i] : 0.f);
}

void mc_sigmoid_backward(float *dx, const float *dy, const float *y, size_t n, int acc_dx) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) PUT(dx, i, dy[i] * y[i] * (1.f - y[i]));
}

void mc_softmax_backward(float *dx, const float *dy, const float *y, int rows, int cols) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *g = dy + (size_t)r * cols, *p = y + (size_t)r * cols;
        float *d = dx + (size_t)r * cols;
        double dot = 0;
        for (int j = 0; j < cols; j++) dot += (double)g[j] * p[j];
        for (int j = 0; j < cols; j++) d[j] = p[j] * (g[j] - (float)dot);
    }
}

void mc_layer_scale_backward(float *df, float *dls, const float *dy, const float *f, const float *ls, int B, int C,
                             int HW) {
    if (dls)
#pragma omp parallel for schedule(static)
        for (int c = 0; c < C; c++) {
            double acc = 0;
            for (int b = 0; b < B; b++) {
                const float *g = dy + ((size_t)b * C + c) * HW, *v = f + ((size_t)b * C + c) * HW;
                float a = 0;
                for (int i = 0; i < HW; i++) a += g[i] * v[i];
                acc += a;
            }
            dls[c] += (float)acc;
        }
    if (df)
#pragma omp parallel for collapse(2) schedule(static)
        for (int b = 0; b < B; b++)
            for (int c = 0; c < C; c++) {
                size_t o = ((size_t)b * C + c) * HW;
                for (int i = 0; i < HW; i++) df[o + i] = ls[c] * dy[o + i];
            }
}

void mc_scale_channels_backward(float *dx, float *dg, const float *dy, const float *x, const float *g, int B, int C,
                                int HW) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            size_t o = ((size_t)b * C + c) * HW;
            float gate = g[(size_t)b * C + c], a = 0;
            for (int i = 0; i < HW; i++) a += dy[o + i] * x[o + i];
            if (dg) dg[(size_t)b * C + c] = a;
            if (dx)
                for (int i = 0; i < HW; i++) dx[o + i] = dy[o + i] * gate;
        }
}

void mc_mean_hw_backward(float *dx, const float *dy, int B, int C, int HW, int acc_dx) {
    float inv = 1.f / (float)HW;
#pragma omp parallel for schedule(static)
    for (size_t bc = 0; bc < (size_t)B * C; bc++) {
        float v = dy[bc] * inv;
        for (int i = 0; i < HW; i++) PUT(dx, bc * HW + i, v);
    }
}
