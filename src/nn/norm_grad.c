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

#include "core/parallel.h"
#include "nn/layers.h"

#define AT(o, c, i) ((size_t)(o) * C * inner + (size_t)(c) * inner + (size_t)(i))

/* Arguments of the per-channel (BatchNorm) and per-row (LayerNorm) loops, which run on the
 * library's pool (core/parallel.h); each channel or row is computed whole by one thread, so
 * the results do not depend on the thread count. */
typedef struct norm_job {
    float *y, *dx, *dw, *db, *save_mean, *save_rstd, *running_mean, *running_var;
    const float *x, *dy, *w, *b, *mean, *rstd, *var;
    float momentum, eps;
    int outer, C, inner, N, train, acc_dx, cols;
} norm_job;

#define GRAIN(n) mc_parallel_grain((n), 4)

static void bn_train_forward_channels(void *arg, int c0, int c1) {
    const norm_job *j = arg;
    const float *x = j->x, *w = j->w, *b = j->b;
    float *y = j->y, *save_mean = j->save_mean, *save_rstd = j->save_rstd;
    float *running_mean = j->running_mean, *running_var = j->running_var, momentum = j->momentum, eps = j->eps;
    int outer = j->outer, C = j->C, inner = j->inner;
    double n = (double)outer * inner;
    for (int c = c0; c < c1; c++) {
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
}

/* inner == 1 (x [outer, C] token-major: the text tower's RepMixer BatchNorms): channel c is a
 * column, and the per-channel loop above read one float per cache line, 2 KB apart (a
 * [4928, 512] forward took 23 ms against 1 ms for the same values channel-major). Tasks take
 * blocks of bn_cols() channels and walk the rows, every load part of a contiguous run. The sums
 * are the same as the per-channel loop's in the same order (with inner 1 each value is its
 * own float run, added in double), so the results are bit-identical to it. */
enum { BN_COLS = 256 };

/* channels per task of the inner == 1 loops: an equal share per thread (the rows' contiguous
 * runs are longest: 2 threads on [4928, 512], blocks of 256 against 64: 4.1 / 4.7 ms forward /
 * backward against 4.8 / 6.4), a multiple of 16 (a cache line), at most BN_COLS. Each channel's
 * sums do not depend on the blocks, so neither do the results. */
static int bn_cols(int C) {
    int t = mc_threads_get(), per = (C + t - 1) / t;
    per = (per + 15) / 16 * 16;
    return per < BN_COLS ? per : BN_COLS;
}

static void bn_train_forward_cols(void *arg, int b0, int b1) {
    const norm_job *j = arg;
    const float *x = j->x;
    int outer = j->outer, C = j->C;
    double n = (double)outer;
    for (int blk = b0; blk < b1; blk++) {
        int c0 = blk * j->cols, nc = C - c0 < j->cols ? C - c0 : j->cols;
        double sum[BN_COLS] = {0}, sq[BN_COLS] = {0};
        float m[BN_COLS], sc[BN_COLS], sh[BN_COLS];
        for (int o = 0; o < outer; o++)
            for (int c = 0; c < nc; c++) sum[c] += x[(size_t)o * C + c0 + c];
        for (int c = 0; c < nc; c++) m[c] = (float)(sum[c] / n);
        for (int o = 0; o < outer; o++)
            for (int c = 0; c < nc; c++) {
                float d = x[(size_t)o * C + c0 + c] - m[c], d2 = d * d;
                sq[c] += d2;
            }
        for (int c = 0; c < nc; c++) {
            int ch = c0 + c;
            double mean = sum[c] / n, var = sq[c] / n;
            float r = (float)(1.0 / sqrt(var + j->eps));
            sc[c] = j->w ? j->w[ch] * r : r;
            sh[c] = j->b ? j->b[ch] : 0.f;
            j->save_mean[ch] = m[c];
            j->save_rstd[ch] = r;
            if (j->running_mean)
                j->running_mean[ch] = (float)((1.0 - j->momentum) * j->running_mean[ch] + j->momentum * mean);
            if (j->running_var) {
                double unbiased = n > 1 ? sq[c] / (n - 1) : var;
                j->running_var[ch] = (float)((1.0 - j->momentum) * j->running_var[ch] + j->momentum * unbiased);
            }
        }
        for (int o = 0; o < outer; o++) {
            const float *xr = x + (size_t)o * C + c0;
            float *yr = j->y + (size_t)o * C + c0;
            for (int c = 0; c < nc; c++) yr[c] = (xr[c] - m[c]) * sc[c] + sh[c];
        }
    }
}

void mc_batchnorm_train_forward(float *y, float *save_mean, float *save_rstd, const float *x, const float *w,
                                const float *b, float *running_mean, float *running_var, int64_t *counter,
                                float momentum, float eps, int outer, int C, int inner) {
    norm_job j = {.y = y, .save_mean = save_mean, .save_rstd = save_rstd, .running_mean = running_mean,
                  .running_var = running_var, .x = x, .w = w, .b = b, .momentum = momentum, .eps = eps,
                  .outer = outer, .C = C, .inner = inner};
    if (inner == 1) {
        j.cols = bn_cols(C);
        mc_parallel_for((C + j.cols - 1) / j.cols, 1, bn_train_forward_cols, &j);
    } else {
        mc_parallel_for(C, GRAIN(C), bn_train_forward_channels, &j);
    }
    if (counter) *counter += 1;
}

/* dx = a dy + k1 + k2 xh per channel (a = w rstd; k1, k2 from the training-mode sums) */
static void bn_backward_channels(void *arg, int c0, int c1) {
    const norm_job *j = arg;
    const float *dy = j->dy, *x = j->x, *mean = j->mean, *rstd = j->rstd, *var = j->var, *w = j->w;
    float *dx = j->dx, *dw = j->dw, *db = j->db, eps = j->eps;
    int outer = j->outer, C = j->C, inner = j->inner, train = j->train, acc_dx = j->acc_dx;
    double n = (double)outer * inner;
    for (int c = c0; c < c1; c++) {
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

/* bn_backward_channels for inner == 1, by blocks of bn_cols() columns (see
 * bn_train_forward_cols; bit-identical to it as well) */
static void bn_backward_cols(void *arg, int b0, int b1) {
    const norm_job *j = arg;
    const float *dy = j->dy, *x = j->x;
    int outer = j->outer, C = j->C;
    double n = (double)outer;
    for (int blk = b0; blk < b1; blk++) {
        int c0 = blk * j->cols, nc = C - c0 < j->cols ? C - c0 : j->cols;
        double sdy[BN_COLS] = {0}, sdyx[BN_COLS] = {0};
        float m[BN_COLS], r[BN_COLS], a[BN_COLS], k1[BN_COLS], k2[BN_COLS];
        for (int c = 0; c < nc; c++) {
            int ch = c0 + c;
            m[c] = j->mean[ch];
            r[c] = j->rstd ? j->rstd[ch] : (float)(1.0 / sqrt((double)j->var[ch] + j->eps));
        }
        for (int o = 0; o < outer; o++) {
            const float *g = dy + (size_t)o * C + c0, *xr = x + (size_t)o * C + c0;
            for (int c = 0; c < nc; c++) {
                float gx = g[c] * ((xr[c] - m[c]) * r[c]);
                sdy[c] += g[c];
                sdyx[c] += gx;
            }
        }
        for (int c = 0; c < nc; c++) {
            int ch = c0 + c;
            if (j->dw) j->dw[ch] += (float)sdyx[c];
            if (j->db) j->db[ch] += (float)sdy[c];
            a[c] = (j->w ? j->w[ch] : 1.f) * r[c];
            k1[c] = j->train ? (float)(-a[c] * sdy[c] / n) : 0.f;
            k2[c] = j->train ? (float)(-a[c] * sdyx[c] / n) : 0.f;
        }
        if (!j->dx) continue;
        for (int o = 0; o < outer; o++) {
            const float *g = dy + (size_t)o * C + c0, *xr = x + (size_t)o * C + c0;
            float *d = j->dx + (size_t)o * C + c0;
            for (int c = 0; c < nc; c++) {
                float v = a[c] * g[c] + k1[c] + k2[c] * ((xr[c] - m[c]) * r[c]);
                d[c] = j->acc_dx ? d[c] + v : v;
            }
        }
    }
}

static void bn_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *mean,
                        const float *rstd, const float *var, float eps, const float *w, int outer, int C, int inner,
                        int train, int acc_dx) {
    norm_job j = {.dx = dx, .dw = dw, .db = db, .dy = dy, .x = x, .mean = mean, .rstd = rstd, .var = var, .eps = eps,
                  .w = w, .outer = outer, .C = C, .inner = inner, .train = train, .acc_dx = acc_dx};
    if (inner == 1) {
        j.cols = bn_cols(C);
        mc_parallel_for((C + j.cols - 1) / j.cols, 1, bn_backward_cols, &j);
    } else {
        mc_parallel_for(C, GRAIN(C), bn_backward_channels, &j);
    }
}

void mc_batchnorm_train_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                                 const float *save_mean, const float *save_rstd, const float *w, int outer, int C,
                                 int inner, int acc_dx) {
    bn_backward(dx, dw, db, dy, x, save_mean, save_rstd, NULL, 0.f, w, outer, C, inner, 1, acc_dx);
}

static void bn_eval_forward_channels(void *arg, int c0, int c1) {
    const norm_job *j = arg;
    int outer = j->outer, C = j->C, inner = j->inner;
    for (int c = c0; c < c1; c++) {
        float sc, sh, one = 1.f, zero = 0.f;
        mc_batchnorm_eval_coeffs(&sc, &sh, j->w ? j->w + c : &one, j->b ? j->b + c : &zero, j->mean + c, j->var + c,
                                 j->eps, 1);
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++) j->y[AT(o, c, i)] = j->x[AT(o, c, i)] * sc + sh;
    }
}

void mc_batchnorm_eval_forward(float *y, const float *x, const float *w, const float *b, const float *running_mean,
                               const float *running_var, float eps, int outer, int C, int inner) {
    /* the inference kernels' arithmetic (mc_batchnorm_eval_coeffs: x * scale + shift) */
    norm_job j = {.y = y, .x = x, .w = w, .b = b, .mean = running_mean, .var = running_var, .eps = eps,
                  .outer = outer, .C = C, .inner = inner};
    mc_parallel_for(C, GRAIN(C), bn_eval_forward_channels, &j);
}

void mc_batchnorm_eval_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                                const float *running_mean, const float *running_var, float eps, int outer, int C,
                                int inner, int acc_dx) {
    bn_backward(dx, dw, db, dy, x, running_mean, NULL, running_var, eps, w, outer, C, inner, 0, acc_dx);
}

/* ---------------------------------------------------------------- LayerNorm */

static void ln_stats_rows(void *arg, int n0, int n1) {
    const norm_job *j = arg;
    int C = j->C;
    for (int n = n0; n < n1; n++) {
        const float *v = j->x + (size_t)n * C;
        double mean = 0, var = 0;
        for (int c = 0; c < C; c++) mean += v[c];
        mean /= C;
        for (int c = 0; c < C; c++) var += (v[c] - mean) * (v[c] - mean);
        j->save_mean[n] = (float)mean;
        j->save_rstd[n] = (float)(1.0 / sqrt(var / C + j->eps));
    }
}

void mc_layernorm_train_forward(float *y, float *save_mean, float *save_rstd, const float *x, const float *w,
                                const float *b, int N, int C, float eps) {
    /* the inference kernel computes y; the statistics it used (the same double arithmetic,
     * rounded the same way) are saved for backward */
    mc_layernorm_forward(y, x, w, b, N, C, eps);
    norm_job j = {.save_mean = save_mean, .save_rstd = save_rstd, .x = x, .eps = eps, .C = C};
    mc_parallel_for(N, GRAIN(N), ln_stats_rows, &j);
}

/* dx = rstd (g - mean(g) - xh mean(g xh)), g = dy * w, per row */
static void ln_dx_rows(void *arg, int n0, int n1) {
    const norm_job *j = arg;
    int C = j->C;
    const float *w = j->w;
    for (int n = n0; n < n1; n++) {
        const float *v = j->x + (size_t)n * C, *g = j->dy + (size_t)n * C;
        float *d = j->dx + (size_t)n * C, m = j->mean[n], r = j->rstd[n];
        double s1 = 0, s2 = 0;
        for (int c = 0; c < C; c++) {
            double gw = (double)g[c] * w[c];
            s1 += gw;
            s2 += gw * ((v[c] - m) * r);
        }
        float k1 = (float)(s1 / C), k2 = (float)(s2 / C);
        for (int c = 0; c < C; c++) {
            float val = r * (g[c] * w[c] - k1 - ((v[c] - m) * r) * k2);
            d[c] = j->acc_dx ? d[c] + val : val;
        }
    }
}

/* dw, db: column sums over the rows, per channel */
/* dw, db [C] of LayerNorm: column sums over the rows, by tasks of LN_COLS channels walking
 * the rows (per channel, the loop read one float per cache line); per channel the same
 * double sums in row order, so the split does not change a bit */
enum { LN_COLS = 64 };
static void ln_dw_blocks(void *arg, int b0, int b1) {
    const norm_job *j = arg;
    int C = j->C, N = j->N;
    for (int blk = b0; blk < b1; blk++) {
        int c0 = blk * LN_COLS, nc = C - c0 < LN_COLS ? C - c0 : LN_COLS;
        double sw[LN_COLS] = {0}, sb[LN_COLS] = {0};
        for (int n = 0; n < N; n++) {
            const float *g = j->dy + (size_t)n * C + c0, *xr = j->x + (size_t)n * C + c0;
            float m = j->mean[n], r = j->rstd[n];
            for (int c = 0; c < nc; c++) {
                sw[c] += (double)g[c] * ((xr[c] - m) * r);
                sb[c] += g[c];
            }
        }
        for (int c = 0; c < nc; c++) {
            if (j->dw) j->dw[c0 + c] += (float)sw[c];
            if (j->db) j->db[c0 + c] += (float)sb[c];
        }
    }
}

void mc_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *save_mean,
                           const float *save_rstd, const float *w, int N, int C, int acc_dx) {
    norm_job j = {.dx = dx, .dw = dw, .db = db, .dy = dy, .x = x, .mean = save_mean, .rstd = save_rstd, .w = w,
                  .N = N, .C = C, .acc_dx = acc_dx};
    if (dx) mc_parallel_for(N, GRAIN(N), ln_dx_rows, &j);
    if (dw || db) mc_parallel_for((C + LN_COLS - 1) / LN_COLS, 1, ln_dw_blocks, &j);
}
