/* Convolution backward passes (NCHW float32), see layers.h.
 *
 * Two paths as the forward:
 *  - depthwise-like (cin/groups == 1): multiplier 1 (every depthwise layer of MCi) per
 *    channel from padded planes in per-thread scratch with register-blocked kernels
 *    (dw_channel); other multipliers direct loops, the weight gradient parallel over output channels and the input gradient
 *    parallel over input planes (each plane gathers from its `mult` output channels). No two
 *    threads write the same element, and each sum has one order whatever the thread count;
 *  - otherwise per image and group, with the packed GEMM:
 *      dW_g [cout_g, K]  += dY_g [cout_g, P] . col^T [P, K]        (K = cin_g*kh*kw, P = Ho*Wo)
 *      dcol [K, P]        = W_g^T [K, cout_g] . dY_g [cout_g, P],   then col2im into dx
 *    1x1 stride-1 unpadded convolutions use x and dx directly as col and dcol.
 */
#include <string.h>

#include "core/parallel.h"
#include "nn/dwgrad.h"
#include "nn/gemm.h"
#include "nn/isa.h"
#include "nn/layers.h"
#include "nn/ops.h"

static int is_pointwise(const mc_conv2d_shape *s) {
    return s->kh == 1 && s->kw == 1 && s->stride == 1 && s->pad_h == 0 && s->pad_w == 0;
}

size_t mc_conv2d_backward_scratch(const mc_conv2d_shape *s, int H, int W) {
    int cin_g = s->cin / s->groups;
    if (cin_g == 1 && s->groups > 1) return 0;
    size_t wt = (size_t)s->cout * cin_g * s->kh * s->kw; /* the weight transposed, once per call */
    if (is_pointwise(s)) return wt;
    size_t Ho = (size_t)mc_conv_out(H, s->kh, s->stride, s->pad_h), Wo = (size_t)mc_conv_out(W, s->kw, s->stride, s->pad_w);
    return wt + 2 * (size_t)cin_g * s->kh * s->kw * Ho * Wo; /* wt | col | dcol */
}

/* Valid output columns [*lo, *hi) for tap kx: 0 <= ox*st - pad + kx < W. */
static void tap_range(int *lo, int *hi, int kx, int st, int pad, int W, int Wo) {
    int a = pad - kx, l = a > 0 ? (a + st - 1) / st : 0;
    int b = W - 1 + pad - kx, h = b >= 0 ? b / st + 1 : 0;
    *lo = l;
    *hi = h < Wo ? h : Wo;
}

/* sum over the batch of output channel co's plane dy[b, co, :P]: float per plane, double across */
static float bias_grad(const float *dy, int co, int cout, int B, size_t P) {
    double acc = 0;
    for (int b = 0; b < B; b++) {
        const float *g = dy + ((size_t)b * cout + co) * P;
        float a = 0;
#pragma omp simd reduction(+ : a)
        for (size_t p = 0; p < P; p++) a += g[p];
        acc += a;
    }
    return (float)acc;
}

/* Weight (and bias) gradient of output channel co over the batch, any stride or multiplier:
 * direct loops, one pass over the planes per tap. */
static void dw_wgrad_direct(float *dw, float *db, const float *dy, const float *x, const mc_conv2d_shape *s, int co,
                            int B, int H, int W, int Ho, int Wo) {
    int ci = co / (s->cout / s->groups), st = s->stride, kh = s->kh, kw = s->kw;
    size_t HW = (size_t)H * W, P = (size_t)Ho * Wo;
    for (int ky = 0; ky < kh && dw; ky++)
        for (int kx = 0; kx < kw; kx++) {
            int lo, hi;
            tap_range(&lo, &hi, kx, st, s->pad_w, W, Wo);
            double acc = 0;
            for (int b = 0; b < B; b++) {
                const float *g = dy + ((size_t)b * s->cout + co) * P, *xp = x + ((size_t)b * s->cin + ci) * HW;
                for (int oy = 0; oy < Ho; oy++) {
                    int iy = oy * st - s->pad_h + ky;
                    if (iy < 0 || iy >= H) continue;
                    const float *gr = g + (size_t)oy * Wo, *xr = xp + (size_t)iy * W;
                    int o = kx - s->pad_w; /* x column of output column ox: ox*st + o >= 0 */
                    float a = 0;
#pragma omp simd reduction(+ : a)
                    for (int ox = lo; ox < hi; ox++) a += gr[ox] * xr[ox * st + o];
                    acc += a;
                }
            }
            dw[(size_t)co * kh * kw + ky * kw + kx] += (float)acc;
        }
    if (db) db[co] += bias_grad(dy, co, s->cout, B, P);
}

/* Input gradient of plane (b, ci), any stride or multiplier: scatter from its `mult` output
 * channels, tap by tap. */
static void dw_dx_direct(float *dx, const float *dy, const float *w, const mc_conv2d_shape *s, int b, int ci, int H,
                         int W, int Ho, int Wo, int acc_dx) {
    int mult = s->cout / s->groups, st = s->stride, kh = s->kh, kw = s->kw;
    size_t HW = (size_t)H * W, P = (size_t)Ho * Wo;
    float *d = dx + ((size_t)b * s->cin + ci) * HW;
    if (!acc_dx) memset(d, 0, HW * sizeof(float));
    for (int m = 0; m < mult; m++) {
        int co = ci * mult + m;
        const float *g = dy + ((size_t)b * s->cout + co) * P, *wk = w + (size_t)co * kh * kw;
        for (int ky = 0; ky < kh; ky++)
            for (int kx = 0; kx < kw; kx++) {
                int lo, hi;
                tap_range(&lo, &hi, kx, st, s->pad_w, W, Wo);
                float wv = wk[ky * kw + kx];
                for (int oy = 0; oy < Ho; oy++) {
                    int iy = oy * st - s->pad_h + ky;
                    if (iy < 0 || iy >= H) continue;
                    const float *gr = g + (size_t)oy * Wo;
                    float *dr = d + (size_t)iy * W;
                    int o = kx - s->pad_w;
#pragma omp simd
                    for (int ox = lo; ox < hi; ox++) dr[ox * st + o] += wv * gr[ox];
                }
            }
    }
}

/* Padded-plane geometry of the multiplier-1 path (see dw_channel). */
typedef struct dw_geom {
    int st, xrs, xr1, xc1;  /* x padded by (pad_h, pad_w) in st column phases of row stride xrs; interior rows
                               [pad_h, xr1), columns [pad_w, xc1) */
    size_t xps;             /* floats per phase */
    int grs, gph, gpw;      /* dy: stride 1, padded by (kh-1-pad_h, kw-1-pad_w), rows H + kh - 1 of stride grs;
                               strided, unpadded rows of stride grs */
    size_t xsz, gsz, n;     /* floats: x phases, dy plane, all (+ a dx plane when accumulating, + flipped taps) */
    size_t koff[DWG_MAX_KW]; /* x offset of tap kx: (kx % st) * xps + kx / st */
    size_t doff[DWG_MAX_KW]; /* padded dy offset of tap kx (stride 1): kx */
} dw_geom;
#define DW_TAIL 8 /* zero columns after each padded row: the widest vector of dw_plane / dw_grad */

static void dw_geom_init(dw_geom *gm, const mc_conv2d_shape *s, int H, int W, int Ho, int Wo, int acc_dx) {
    int st = s->stride, rows = (Ho - 1) * st + s->kh, cols = (Wo - 1) * st + s->kw;
    gm->st = st;
    gm->xrs = (cols + st - 1) / st + DW_TAIL;
    gm->xr1 = s->pad_h + H < rows ? s->pad_h + H : rows;
    gm->xc1 = s->pad_w + W < cols ? s->pad_w + W : cols;
    gm->xps = (size_t)rows * gm->xrs;
    gm->xsz = gm->xps * st + DW_TAIL;
    if (st == 1) {
        gm->gph = s->kh - 1 - s->pad_h;
        gm->gpw = s->kw - 1 - s->pad_w;
        gm->grs = W + s->kw - 1 + DW_TAIL;
        gm->gsz = (size_t)(H + s->kh - 1) * gm->grs + DW_TAIL;
    } else {
        gm->gph = gm->gpw = 0;
        gm->grs = Wo + DW_TAIL;
        gm->gsz = (size_t)Ho * gm->grs;
    }
    for (int kx = 0; kx < s->kw; kx++) {
        gm->koff[kx] = (size_t)(kx % st) * gm->xps + (size_t)(kx / st);
        gm->doff[kx] = (size_t)kx;
    }
    gm->n = gm->xsz + gm->gsz + (acc_dx && st == 1 ? (size_t)H * W : 0) + (size_t)s->kh * s->kw;
}

/* One output channel c over the batch, from the thread's padded planes (dx only with
 * multiplier 1):
 *  - dw = per tap the correlation of the padded x with dy (dw_grad.inc), register-blocked;
 *  - dx, stride 1: the depthwise convolution of dy, padded by (k-1-pad), with the flipped
 *    kernel, by the forward's register-blocked plane kernel (dw_plane.inc); other strides: the
 *    direct scatter.
 * Only the interiors are rewritten, so the zero padding written once per task stays. */
static void dw_channel(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                       const mc_conv2d_shape *s, int c, int B, int H, int W, int Ho, int Wo, int acc_dx,
                       const dw_geom *gm, float *buf, const mc_kernels *k, mc_dw_wgrad_fn wgrad) {
    int kh = s->kh, kw = s->kw, C = s->cout, st = gm->st, pw = s->pad_w;
    size_t HW = (size_t)H * W, P = (size_t)Ho * Wo;
    float *xp = buf, *gp = buf + gm->xsz, *tmp = gp + gm->gsz, *wf = tmp + (acc_dx && st == 1 ? HW : 0);
    double wacc[DWG_MAX_TAPS] = {0}, bsum = 0;
    for (int t = 0; t < kh * kw; t++) wf[t] = w[(size_t)c * kh * kw + kh * kw - 1 - t];
    const float *g0 = gp + (size_t)gm->gph * gm->grs + gm->gpw; /* dy inside its (padded) plane */
    for (int b = 0; b < B; b++) {
        const float *g = dy + ((size_t)b * C + c) * P;
        for (int oy = 0; oy < Ho; oy++)
            memcpy(gp + (size_t)(gm->gph + oy) * gm->grs + gm->gpw, g + (size_t)oy * Wo, (size_t)Wo * sizeof(float));
        if (dw) {
            const float *xc = x + ((size_t)b * s->cin + c / (C / s->cin)) * HW; /* input channel of c */
            for (int r = s->pad_h; r < gm->xr1; r++) {
                const float *xr = xc + (size_t)(r - s->pad_h) * W;
                if (st == 1) {
                    if (gm->xc1 > pw) memcpy(xp + (size_t)r * gm->xrs + pw, xr, (size_t)(gm->xc1 - pw) * sizeof(float));
                    continue;
                }
                for (int ph = 0; ph < st; ph++) { /* padded columns cc = ph, ph+st, ... inside [pw, xc1) */
                    float *d = xp + (size_t)ph * gm->xps + (size_t)r * gm->xrs;
                    for (int cc = pw + ((ph - pw) % st + st) % st; cc < gm->xc1; cc += st) d[cc / st] = xr[cc - pw];
                }
            }
            wgrad(wacc, xp, gm->xrs, gm->koff, st, g0, gm->grs, Ho, Wo, kh, kw);
        }
        if (db) {
            float a = 0;
            for (size_t p = 0; p < P; p++) a += g[p];
            bsum += a;
        }
        if (!dx) continue;
        if (st != 1) {
            dw_dx_direct(dx, dy, w, s, b, c, H, W, Ho, Wo, acc_dx);
            continue;
        }
        float *d = dx + ((size_t)b * C + c) * HW;
        k->dw_plane(acc_dx ? tmp : d, gp, wf, 0.f, kh, kw, 1, H, W, gm->grs, gm->doff);
        if (acc_dx)
            for (size_t i = 0; i < HW; i++) d[i] += tmp[i];
    }
    if (dw)
        for (int t = 0; t < kh * kw; t++) dw[(size_t)c * kh * kw + t] += (float)wacc[t];
    if (db) db[c] += (float)bsum;
}

/* One call's arguments, shared by its tasks on the library's pool (core/parallel.h): every
 * task writes only its own channels (or planes, or rows), so no two threads write the same
 * element and the results do not depend on the thread count. */
typedef struct conv_job {
    float *dx, *dw, *db, *col;
    const float *dy, *x, *w, *src;
    const mc_conv2d_shape *s;
    const dw_geom *gm;
    const mc_kernels *k;
    mc_dw_wgrad_fn wgrad;
    int B, H, W, Ho, Wo, cin_g, acc_dx;
    size_t P;
} conv_job;

#define GRAIN(n) mc_parallel_grain((n), 4)

/* multiplier 1, channels [c0, c1): padded planes in this thread's scratch, zeroed once per task */
static void dw_channels(void *arg, int c0, int c1) {
    const conv_job *j = arg;
    const mc_conv2d_shape *s = j->s;
    float *buf = mc_thread_scratch(MC_SCRATCH_DEPTHWISE, j->gm->n * sizeof(float));
    if (buf) memset(buf, 0, j->gm->n * sizeof(float));
    for (int c = c0; c < c1; c++) {
        if (buf) { /* else out of memory: the direct loops */
            dw_channel(j->dx, j->dw, j->db, j->dy, j->x, j->w, s, c, j->B, j->H, j->W, j->Ho, j->Wo, j->acc_dx, j->gm,
                       buf, j->k, j->wgrad);
            continue;
        }
        if (j->dw || j->db) dw_wgrad_direct(j->dw, j->db, j->dy, j->x, s, c, j->B, j->H, j->W, j->Ho, j->Wo);
        for (int b = 0; b < j->B && j->dx; b++) dw_dx_direct(j->dx, j->dy, j->w, s, b, c, j->H, j->W, j->Ho, j->Wo, j->acc_dx);
    }
}

static void dw_wgrad_channels(void *arg, int c0, int c1) {
    const conv_job *j = arg;
    for (int co = c0; co < c1; co++) dw_wgrad_direct(j->dw, j->db, j->dy, j->x, j->s, co, j->B, j->H, j->W, j->Ho, j->Wo);
}

/* planes bc = b * cin + ci of dx */
static void dw_dx_planes(void *arg, int p0, int p1) {
    const conv_job *j = arg;
    int cin = j->s->cin;
    for (int p = p0; p < p1; p++) dw_dx_direct(j->dx, j->dy, j->w, j->s, p / cin, p % cin, j->H, j->W, j->Ho, j->Wo, j->acc_dx);
}

static void depthwise_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                               const mc_conv2d_shape *s, int B, int H, int W, int Ho, int Wo, int acc_dx) {
    int mult = s->cout / s->groups;
    conv_job j = {.dx = dx, .dw = dw, .db = db, .dy = dy, .x = x, .w = w, .s = s, .B = B, .H = H, .W = W, .Ho = Ho,
                  .Wo = Wo, .acc_dx = acc_dx};
    int taps = s->kh * s->kw;
    int planes = s->kw <= DWG_MAX_KW && taps <= DWG_MAX_TAPS && s->pad_h < s->kh && s->pad_w < s->kw;
    /* multiplier > 1 (MCi's patch embeddings, C -> 2C) takes the padded planes for its weight
     * gradient only with a large kernel (7x7 stride 2, 2 Zen 3 threads: 2x faster than the
     * direct loops; 3x3: 2x slower, the copies dominate); its dx, where `mult` output channels
     * meet in one input plane, stays the direct scatter */
    if (planes && (mult == 1 || taps >= 25)) {
        dw_geom gm;
        dw_geom_init(&gm, s, H, W, Ho, Wo, acc_dx);
        int dwv;
        j.gm = &gm;
        j.k = mc_kernels_get();
        j.wgrad = mc_dw_wgrad_get(&dwv);
        if (mult == 1) {
            mc_parallel_for(s->cout, GRAIN(s->cout), dw_channels, &j);
            return;
        }
        conv_job jw = j;
        jw.dx = NULL;
        if (dw || db) mc_parallel_for(s->cout, GRAIN(s->cout), dw_channels, &jw);
        if (dx) mc_parallel_for(B * s->cin, GRAIN(B * s->cin), dw_dx_planes, &j);
        return;
    }
    if (dw || db) mc_parallel_for(s->cout, GRAIN(s->cout), dw_wgrad_channels, &j);
    if (dx) mc_parallel_for(B * s->cin, GRAIN(B * s->cin), dw_dx_planes, &j);
}

/* col[(ci*kh+ky)*kw+kx, oy*Wo+ox] = x[ci, iy, ix] (0 outside) for one group's channels. */
static void gather_rows(void *arg, int r0, int r1) {
    const conv_job *j = arg;
    const mc_conv2d_shape *s = j->s;
    int kk = s->kh * s->kw, H = j->H, W = j->W, Ho = j->Ho, Wo = j->Wo;
    for (int r = r0; r < r1; r++) {
        int ci = r / kk, ky = r % kk / s->kw, kx = r % s->kw, lo, hi;
        tap_range(&lo, &hi, kx, s->stride, s->pad_w, W, Wo);
        float *c = j->col + (size_t)r * Ho * Wo;
        memset(c, 0, (size_t)Ho * Wo * sizeof(float));
        for (int oy = 0; oy < Ho; oy++) {
            int iy = oy * s->stride - s->pad_h + ky;
            if (iy < 0 || iy >= H) continue;
            const float *xr = j->x + ((size_t)ci * H + iy) * W;
            for (int ox = lo; ox < hi; ox++) c[(size_t)oy * Wo + ox] = xr[ox * s->stride + kx - s->pad_w];
        }
    }
}

static void gather_cols(float *col, const float *x, int cin_g, int H, int W, const mc_conv2d_shape *s, int Ho,
                        int Wo) {
    int rows = cin_g * s->kh * s->kw;
    conv_job j = {.col = col, .x = x, .s = s, .H = H, .W = W, .Ho = Ho, .Wo = Wo};
    mc_parallel_for(rows, GRAIN(rows), gather_rows, &j);
}

/* dx[ci] += sum over taps of dcol rows of channel ci (the adjoint of gather_cols); parallel
 * over input channels, each owning its plane. */
static void scatter_channels(void *arg, int c0, int c1) {
    const conv_job *j = arg;
    const mc_conv2d_shape *s = j->s;
    int kk = s->kh * s->kw, H = j->H, W = j->W, Ho = j->Ho, Wo = j->Wo;
    for (int ci = c0; ci < c1; ci++)
        for (int t = 0; t < kk; t++) {
            int ky = t / s->kw, kx = t % s->kw, lo, hi;
            tap_range(&lo, &hi, kx, s->stride, s->pad_w, W, Wo);
            const float *c = j->src + ((size_t)ci * kk + t) * Ho * Wo;
            for (int oy = 0; oy < Ho; oy++) {
                int iy = oy * s->stride - s->pad_h + ky;
                if (iy < 0 || iy >= H) continue;
                float *dr = j->dx + ((size_t)ci * H + iy) * W;
                for (int ox = lo; ox < hi; ox++) dr[ox * s->stride + kx - s->pad_w] += c[(size_t)oy * Wo + ox];
            }
        }
}

static void scatter_cols(float *dx, const float *dcol, int cin_g, int H, int W, const mc_conv2d_shape *s, int Ho,
                         int Wo) {
    conv_job j = {.dx = dx, .src = dcol, .s = s, .H = H, .W = W, .Ho = Ho, .Wo = Wo};
    mc_parallel_for(cin_g, GRAIN(cin_g), scatter_channels, &j);
}

static void bias_grad_channels(void *arg, int c0, int c1) {
    const conv_job *j = arg;
    for (int co = c0; co < c1; co++) j->db[co] += bias_grad(j->dy, co, j->s->cout, j->B, j->P);
}

void mc_conv2d_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                        const mc_conv2d_shape *s, int B, int H, int W, int acc_dx, float *scratch) {
    int Ho = mc_conv_out(H, s->kh, s->stride, s->pad_h), Wo = mc_conv_out(W, s->kw, s->stride, s->pad_w);
    int cin_g = s->cin / s->groups, cout_g = s->cout / s->groups;
    if (Ho <= 0 || Wo <= 0) return;
    if (cin_g == 1 && s->groups > 1) {
        depthwise_backward(dx, dw, db, dy, x, w, s, B, H, W, Ho, Wo, acc_dx);
        return;
    }
    int K = cin_g * s->kh * s->kw, P = Ho * Wo, pw = is_pointwise(s);
    size_t HW = (size_t)H * W;
    float *wt = scratch, *col = scratch + (size_t)s->cout * K, *dcol = pw ? NULL : col + (size_t)K * P;
    /* wt [groups][K][cout_g], each group's weight [cout_g][K] transposed once for all the batch's
     * dx products (handing mc_sgemm W with trans_a copied it once per image) */
    if (dx) mc_transpose_chw_to_hwc(wt, w, s->groups, cout_g, K);
    if (db) {
        conv_job j = {.db = db, .dy = dy, .s = s, .B = B, .P = (size_t)P};
        mc_parallel_for(s->cout, GRAIN(s->cout), bias_grad_channels, &j);
    }
    for (int b = 0; b < B; b++)
        for (int g = 0; g < s->groups; g++) {
            const float *xg = x + ((size_t)b * s->cin + (size_t)g * cin_g) * HW;
            const float *dyg = dy + ((size_t)b * s->cout + (size_t)g * cout_g) * P;
            const float *wtg = wt + (size_t)g * cout_g * K; /* [K][cout_g] */
            float *dxg = dx ? dx + ((size_t)b * s->cin + (size_t)g * cin_g) * HW : NULL;
            const float *src = xg;
            if (!pw && dw) {
                gather_cols(col, xg, cin_g, H, W, s, Ho, Wo);
                src = col;
            }
            if (dw) mc_sgemm(0, 1, cout_g, K, P, 1.f, dyg, P, src, P, 1.f, dw + (size_t)g * cout_g * K, K);
            if (!dxg) continue;
            if (pw) {
                mc_sgemm(0, 0, K, P, cout_g, 1.f, wtg, cout_g, dyg, P, acc_dx ? 1.f : 0.f, dxg, P);
            } else {
                mc_sgemm(0, 0, K, P, cout_g, 1.f, wtg, cout_g, dyg, P, 0.f, dcol, P);
                if (!acc_dx) memset(dxg, 0, (size_t)cin_g * HW * sizeof(float));
                scatter_cols(dxg, dcol, cin_g, H, W, s, Ho, Wo);
            }
        }
}

/* mc_dwconv_tokens_backward's arguments (dw_t, w_t: [K, C]) */
typedef struct tokens_job {
    float *dx, *dw_t, *db;
    const float *dy, *x, *w_t;
    int N, T, C, K;
} tokens_job;

/* weight and bias gradients: tasks over blocks of TB channels (each owns its columns of dw_t),
 * summed row by row with contiguous loads; per element the order is that of the plain
 * per-channel loop (float over t per sequence, double over sequences) */
enum { TB = 64 };

static void tokens_wgrad_blocks(void *arg, int b0, int b1) {
    const tokens_job *j = arg;
    const float *dy = j->dy, *x = j->x;
    float *dw_t = j->dw_t, *db = j->db;
    int N = j->N, T = j->T, C = j->C, K = j->K, pad = K / 2;
    for (int blk = b0; blk < b1; blk++) {
        int c0 = blk * TB, nc = C - c0 < TB ? C - c0 : TB;
        double acc[TB];
        float a[TB];
        for (int k = 0; k < K && dw_t; k++) {
            for (int c = 0; c < nc; c++) acc[c] = 0;
            for (int n = 0; n < N; n++) {
                const float *g = dy + (size_t)n * T * C + c0, *xs = x + (size_t)n * T * C + c0;
                for (int c = 0; c < nc; c++) a[c] = 0;
                for (int t = 0; t < T; t++) {
                    int src = t + k - pad;
                    if (src < 0 || src >= T) continue;
                    const float *gr = g + (size_t)t * C, *xr = xs + (size_t)src * C;
                    for (int c = 0; c < nc; c++) a[c] += gr[c] * xr[c];
                }
                for (int c = 0; c < nc; c++) acc[c] += a[c];
            }
            for (int c = 0; c < nc; c++) dw_t[(size_t)k * C + c0 + c] += (float)acc[c];
        }
        if (db) {
            for (int c = 0; c < nc; c++) acc[c] = 0;
            for (size_t i = 0; i < (size_t)N * T; i++)
                for (int c = 0; c < nc; c++) acc[c] += dy[i * C + c0 + c];
            for (int c = 0; c < nc; c++) db[c0 + c] += (float)acc[c];
        }
    }
}

/* dx[n, s, c] = sum_k w_t[k, c] * dy[n, s - k + pad, c], rows ns = n * T + s */
static void tokens_dx_rows(void *arg, int r0, int r1) {
    const tokens_job *j = arg;
    int T = j->T, C = j->C, K = j->K, pad = K / 2;
    for (int r = r0; r < r1; r++) {
        int n = r / T, s = r % T;
        float *d = j->dx + (size_t)r * C;
        memset(d, 0, (size_t)C * sizeof(float));
        for (int k = 0; k < K; k++) {
            int t = s - k + pad;
            if (t < 0 || t >= T) continue;
            const float *g = j->dy + ((size_t)n * T + t) * C, *wk = j->w_t + (size_t)k * C;
#pragma omp simd
            for (int c = 0; c < C; c++) d[c] += wk[c] * g[c];
        }
    }
}

void mc_dwconv_tokens_backward(float *dx, float *dw_t, float *db, const float *dy, const float *x,
                               const float *w_t, int N, int T, int C, int K) {
    tokens_job j = {dx, dw_t, db, dy, x, w_t, N, T, C, K};
    int nb = (C + TB - 1) / TB;
    if (dw_t || db) mc_parallel_for(nb, 1, tokens_wgrad_blocks, &j);
    mc_parallel_for(N * T, GRAIN(N * T), tokens_dx_rows, &j);
}
