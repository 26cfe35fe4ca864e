/* BatchNorm (training and eval mode) and LayerNorm forward/backward, see layers.h.
 *
 * BatchNorm works on x[outer, C, inner]: channel c's values are x[o*C*inner + c*inner + i].
 * Per-channel reductions: float (vectorised) within each contiguous run of `inner` values,
 * double across runs (a channel has up to a few 1e5 values), parallel over channels. With xh = (x - mean) * rstd, n = outer * inner:
 *   y  = w xh + b
 *   dw += sum dy xh,  db += sum dy
 *   dx = w rstd (dy - sum(dy)/n - xh sum(dy xh)/n)          (training: mean, var depend on x)
 *   dx = w rstd dy                                           (eval: running statistics)
 */
#include <math.h>
#include <string.h>

#include "nn/layers.h"

#define AT(o, c, i) ((size_t)(o) * C * inner + (size_t)(c) * inner + (size_t)(i))

void mc_batchnorm_train_forward(float *y, float *save_mean, float *save_rstd, const float *x, const float *w,
                                const float *b, float *running_mean, float *running_var, int64_t *counter,
                                float momentum, float eps, int outer, int C, int inner) {
    double n = (double)outer * inner;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double sum = 0, sq = 0;
        for (int o = 0; o < outer; o++) {
            const float *xr = x + AT(o, c, 0);
            float a = 0;
#pragma omp simd reduction(+ : a)
            for (int i = 0; i < inner; i++) a += xr[i];
            sum += a;
        }
        double mean = sum / n;
        float mf = (float)mean;
        for (int o = 0; o < outer; o++) {
            const float *xr = x + AT(o, c, 0);
            float a = 0;
#pragma omp simd reduction(+ : a)
            for (int i = 0; i < inner; i++) a += (xr[i] - mf) * (xr[i] - mf);
            sq += a;
        }
        double var = sq / n;
        float m = (float)mean, r = (float)(1.0 / sqrt(var + eps));
        float sc = w ? w[c] * r : r, sh = b ? b[c] : 0.f;
        for (int o = 0; o < outer; o++) {
            const float *xr = x + AT(o, c, 0);
            float *yr = y + AT(o, c, 0);
#pragma omp simd
            for (int i = 0; i < inner; i++) yr[i] = (xr[i] - m) * sc + sh;
        }
        save_mean[c] = m;
        save_rstd[c] = r;
        if (running_mean) running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * mean);
        if (running_var) {
            double unbiased = n > 1 ? sq / (n - 1) : var; /* PyTorch warns and divides by n-1 = 0 */
            running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * unbiased);
        }
    }
    if (counter) *counter += 1;
}

/* dx = a dy + k1 + k2 xh per channel (a = w rstd; k1, k2 from the training-mode sums) */
static void bn_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *mean,
                        const float *rstd, const float *var, float eps, const float *w, int outer, int C, int inner,
                        int train, int acc_dx) {
    double n = (double)outer * inner;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float m = mean[c], r = rstd ? rstd[c] : (float)(1.0 / sqrt((double)var[c] + eps));
        double sdy = 0, sdyx = 0;
        for (int o = 0; o < outer; o++) {
            const float *g = dy + AT(o, c, 0), *xr = x + AT(o, c, 0);
            float a = 0, ax = 0;
#pragma omp simd reduction(+ : a, ax)
            for (int i = 0; i < inner; i++) {
                a += g[i];
                ax += g[i] * ((xr[i] - m) * r);
            }
            sdy += a;
            sdyx += ax;
        }
        if (dw) dw[c] += (float)sdyx;
        if (db) db[c] += (float)sdy;
        if (!dx) continue;
        float wc = w ? w[c] : 1.f, a = wc * r;
        float k1 = train ? (float)(-a * sdy / n) : 0.f, k2 = train ? (float)(-a * sdyx / n) : 0.f;
        for (int o = 0; o < outer; o++) {
            const float *g = dy + AT(o, c, 0), *xr = x + AT(o, c, 0);
            float *d = dx + AT(o, c, 0);
            if (acc_dx)
#pragma omp simd
                for (int i = 0; i < inner; i++) d[i] += a * g[i] + k1 + k2 * ((xr[i] - m) * r);
            else
#pragma omp simd
                for (int i = 0; i < inner; i++) d[i] = a * g[i] + k1 + k2 * ((xr[i] - m) * r);
        }
    }
}

void mc_batchnorm_train_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                                 const float *save_mean, const float *save_rstd, const float *w, int outer, int C,
                                 int inner, int acc_dx) {
    bn_backward(dx, dw, db, dy, x, save_mean, save_rstd, NULL, 0.f, w, outer, C, inner, 1, acc_dx);
}

void mc_batchnorm_eval_forward(float *y, const float *x, const float *w, const float *b, const float *running_mean,
                               const float *running_var, float eps, int outer, int C, int inner) {
    /* the inference kernels' arithmetic (mc_batchnorm_eval_coeffs: x * scale + shift) */
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float sc, sh, one = 1.f, zero = 0.f;
        mc_batchnorm_eval_coeffs(&sc, &sh, w ? w + c : &one, b ? b + c : &zero, running_mean + c, running_var + c,
                                 eps, 1);
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++) y[AT(o, c, i)] = x[AT(o, c, i)] * sc + sh;
    }
}

void mc_batchnorm_eval_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                                const float *running_mean, const float *running_var, float eps, int outer, int C,
                                int inner, int acc_dx) {
    bn_backward(dx, dw, db, dy, x, running_mean, NULL, running_var, eps, w, outer, C, inner, 0, acc_dx);
}

/* ---------------------------------------------------------------- LayerNorm */

void mc_layernorm_train_forward(float *y, float *save_mean, float *save_rstd, const float *x, const float *w,
                                const float *b, int N, int C, float eps) {
    /* the inference kernel computes y; the statistics it used (the same double arithmetic,
     * rounded the same way) are saved for backward */
    mc_layernorm_forward(y, x, w, b, N, C, eps);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *v = x + (size_t)n * C;
        double mean = 0, var = 0;
        for (int c = 0; c < C; c++) mean += v[c];
        mean /= C;
        for (int c = 0; c < C; c++) var += (v[c] - mean) * (v[c] - mean);
        save_mean[n] = (float)mean;
        save_rstd[n] = (float)(1.0 / sqrt(var / C + eps));
    }
}

void mc_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *save_mean,
                           const float *save_rstd, const float *w, int N, int C, int acc_dx) {
    /* dx = rstd (g - mean(g) - xh mean(g xh)), g = dy * w: parallel over rows */
    if (dx)
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++) {
            const float *v = x + (size_t)n * C, *g = dy + (size_t)n * C;
            float *d = dx + (size_t)n * C, m = save_mean[n], r = save_rstd[n];
            double s1 = 0, s2 = 0;
            for (int c = 0; c < C; c++) {
                double gw = (double)g[c] * w[c];
                s1 += gw;
                s2 += gw * ((v[c] - m) * r);
            }
            float k1 = (float)(s1 / C), k2 = (float)(s2 / C);
            for (int c = 0; c < C; c++) {
                float val = r * (g[c] * w[c] - k1 - ((v[c] - m) * r) * k2);
                d[c] = acc_dx ? d[c] + val : val;
            }
        }
    /* dw, db: column sums, parallel over channels */
    if (dw || db)
#pragma omp parallel for schedule(static)
        for (int c = 0; c < C; c++) {
            double sw = 0, sb = 0;
            for (int n = 0; n < N; n++) {
                float g = dy[(size_t)n * C + c];
                sw += (double)g * ((x[(size_t)n * C + c] - save_mean[n]) * save_rstd[n]);
                sb += g;
            }
            if (dw) dw[c] += (float)sw;
            if (db) db[c] += (float)sb;
        }
}
