/* 2-D convolution, NCHW float32.
 *
 * Two paths: (1) "depthwise-like" grouped convolutions (cin/groups == 1, any channel
 * multiplier), done per plane from a padded scratch with register accumulation (see
 * conv_depthwise); (2) everything else as per-group im2col + GEMM
 * ([cout/g, cin/g*kh*kw] x [cin/g*kh*kw, Ho*Wo]), with the 1x1 stride-1 case skipping im2col.
 */
#include <stdlib.h>
#include <string.h>

#include "nn/gemm.h"
#include "nn/kernel_attr.h"
#include "nn/ops.h"

/* Depthwise-like convolutions. Each input plane is first copied into a zero-padded
 * scratch split into `stride` column phases (phase p holds padded columns p, p+s, p+2s, ...),
 * so output column ox and tap kx read phase kx % s at offset ox + kx / s: every tap is a
 * contiguous, bounds-free load whatever the stride. Eight output columns accumulate in a
 * vector register over all kh*kw taps (bias first, then taps in (ky, kx) order).
 * Padding stays zero between planes, so only the interior is rewritten per plane. */
typedef float dw_v8 __attribute__((vector_size(32), aligned(4), may_alias));
#define DW_V 8

typedef struct dw_geom {
    int kh, kw, st, Ho, Wo;
    int rows, row_stride;  /* rows per phase plane, floats per phase row */
    size_t phase_stride;   /* floats per phase plane */
    const size_t *koff;    /* [kw]: scratch offset of tap kx, (kx % st) * phase_stride + kx / st */
} dw_geom;

MC_HOT_KERNEL static void dw_plane(float *y, const float *ph, const float *w, float b0, const dw_geom *g) {
    for (int oy = 0; oy < g->Ho; oy++) {
        float *yr = y + (size_t)oy * g->Wo;
        for (int ox0 = 0; ox0 < g->Wo; ox0 += DW_V) {
            dw_v8 acc = (dw_v8){0} + b0;
            for (int ky = 0; ky < g->kh; ky++) {
                size_t r = (size_t)(oy * g->st + ky) * g->row_stride + ox0;
                const float *wr = w + ky * g->kw;
                const float *pr = ph + r;
                for (int kx = 0; kx < g->kw; kx++) acc += wr[kx] * *(const dw_v8 *)(pr + g->koff[kx]);
            }
            int n = g->Wo - ox0 < DW_V ? g->Wo - ox0 : DW_V;
            if (n == DW_V) *(dw_v8 *)(yr + ox0) = acc;
            else memcpy(yr + ox0, &acc, (size_t)n * sizeof(float));
        }
    }
}

/* Fallback without scratch memory: bounds test per tap. */
static void dw_plane_direct(float *y, const float *x, const float *w, float b0, const mc_conv2d_shape *s, int H,
                            int W, int Ho, int Wo) {
    for (int oy = 0; oy < Ho; oy++)
        for (int ox = 0; ox < Wo; ox++) {
            float acc = b0;
            for (int ky = 0; ky < s->kh; ky++) {
                int iy = oy * s->stride - s->pad_h + ky;
                if (iy < 0 || iy >= H) continue;
                for (int kx = 0; kx < s->kw; kx++) {
                    int ix = ox * s->stride - s->pad_w + kx;
                    if (ix >= 0 && ix < W) acc += x[(size_t)iy * W + ix] * w[ky * s->kw + kx];
                }
            }
            y[(size_t)oy * Wo + ox] = acc;
        }
}

static void conv_depthwise(float *out, const float *in, const float *weight, const float *bias,
                           const mc_conv2d_shape *s, int B, int H, int W, int Ho, int Wo) {
    if (Ho <= 0 || Wo <= 0) return;
    int mult = s->cout / s->groups; /* outputs per input channel */
    int st = s->stride, ph = s->pad_h, pw = s->pad_w;
    dw_geom g = {s->kh, s->kw, st, Ho, Wo, 0, 0, 0, NULL};
    /* rows/columns of the padded plane that any output reads, plus a zero tail so the last
     * vector of a row may read past Wo */
    g.rows = (Ho - 1) * st + s->kh;
    int cols = (Wo - 1) * st + s->kw;
    g.row_stride = (cols + st - 1) / st + DW_V;
    g.phase_stride = (size_t)g.rows * g.row_stride;
    size_t scratch = g.phase_stride * st;
    /* interior: padded rows [ph, ph+H) and columns [pw, pw+W), clipped to what is read */
    int r1 = ph + H < g.rows ? ph + H : g.rows, c1 = pw + W < cols ? pw + W : cols;
    size_t *koff = malloc((size_t)s->kw * sizeof *koff);
    if (koff)
        for (int kx = 0; kx < s->kw; kx++) koff[kx] = (size_t)(kx % st) * g.phase_stride + (size_t)(kx / st);
    g.koff = koff;
#pragma omp parallel
    {
        float *buf = koff ? calloc(scratch, sizeof(float)) : NULL;
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++)
            for (int ci = 0; ci < s->cin; ci++) {
                const float *x = in + ((size_t)b * s->cin + ci) * H * W;
                if (!buf) {
                    for (int m = 0; m < mult; m++) {
                        int co = ci * mult + m;
                        dw_plane_direct(out + ((size_t)b * s->cout + co) * Ho * Wo, x, weight + (size_t)co * s->kh * s->kw,
                                        bias ? bias[co] : 0.f, s, H, W, Ho, Wo);
                    }
                    continue;
                }
                for (int r = ph; r < r1; r++) {
                    const float *xr = x + (size_t)(r - ph) * W;
                    if (st == 1) {
                        if (c1 > pw) memcpy(buf + (size_t)r * g.row_stride + pw, xr, (size_t)(c1 - pw) * sizeof(float));
                        continue;
                    }
                    for (int p = 0; p < st; p++) { /* padded columns c = p, p+st, ... inside [pw, c1) */
                        int c = pw + ((p - pw) % st + st) % st;
                        float *d = buf + (size_t)p * g.phase_stride + (size_t)r * g.row_stride;
                        for (; c < c1; c += st) d[c / st] = xr[c - pw];
                    }
                }
                for (int m = 0; m < mult; m++) {
                    int co = ci * mult + m;
                    dw_plane(out + ((size_t)b * s->cout + co) * Ho * Wo, buf, weight + (size_t)co * s->kh * s->kw,
                             bias ? bias[co] : 0.f, &g);
                }
            }
        free(buf);
    }
    free(koff);
}

/* col[(ci*kh+ky)*kw+kx, oy*Wo+ox] for the channels of one group. */
static void im2col(float *col, const float *x, int cin_g, int H, int W, const mc_conv2d_shape *s, int Ho, int Wo) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < cin_g * s->kh * s->kw; r++) {
        int ci = r / (s->kh * s->kw), ky = r / s->kw % s->kh, kx = r % s->kw;
        const float *xc = x + (size_t)ci * H * W;
        float *c = col + (size_t)r * Ho * Wo;
        for (int oy = 0; oy < Ho; oy++) {
            int iy = oy * s->stride - s->pad_h + ky;
            for (int ox = 0; ox < Wo; ox++) {
                int ix = ox * s->stride - s->pad_w + kx;
                c[oy * Wo + ox] = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? xc[(size_t)iy * W + ix] : 0.f;
            }
        }
    }
}

/* Plain loops, used only when the im2col buffer cannot be allocated: slower, never fails. */
static void conv_direct(float *out, const float *in, const float *weight, const float *bias,
                        const mc_conv2d_shape *s, int B, int H, int W, int Ho, int Wo) {
    int cin_g = s->cin / s->groups, cout_g = s->cout / s->groups;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int co = 0; co < s->cout; co++) {
            const float *x = in + ((size_t)b * s->cin + (size_t)(co / cout_g) * cin_g) * H * W;
            const float *w = weight + (size_t)co * cin_g * s->kh * s->kw;
            float *y = out + ((size_t)b * s->cout + co) * Ho * Wo;
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++) {
                    float acc = bias ? bias[co] : 0.f;
                    for (int ci = 0; ci < cin_g; ci++)
                        for (int ky = 0; ky < s->kh; ky++) {
                            int iy = oy * s->stride - s->pad_h + ky;
                            if (iy < 0 || iy >= H) continue;
                            for (int kx = 0; kx < s->kw; kx++) {
                                int ix = ox * s->stride - s->pad_w + kx;
                                if (ix >= 0 && ix < W)
                                    acc += x[((size_t)ci * H + iy) * W + ix] * w[(ci * s->kh + ky) * s->kw + kx];
                            }
                        }
                    y[(size_t)oy * Wo + ox] = acc;
                }
        }
}

void mc_conv2d_forward(float *out, const float *in, const float *weight, const float *bias,
                       const mc_conv2d_shape *s, int B, int H, int W) {
    int Ho = mc_conv_out(H, s->kh, s->stride, s->pad_h), Wo = mc_conv_out(W, s->kw, s->stride, s->pad_w);
    int cin_g = s->cin / s->groups, cout_g = s->cout / s->groups;
    if (cin_g == 1 && s->groups > 1) {
        conv_depthwise(out, in, weight, bias, s, B, H, W, Ho, Wo);
        return;
    }
    int kdim = cin_g * s->kh * s->kw, P = Ho * Wo;
    int direct = s->kh == 1 && s->kw == 1 && s->stride == 1 && s->pad_h == 0 && s->pad_w == 0;
    float *col = direct ? NULL : malloc((size_t)kdim * P * sizeof(float));
    if (!direct && !col) {
        conv_direct(out, in, weight, bias, s, B, H, W, Ho, Wo);
        return;
    }
    for (int b = 0; b < B; b++)
        for (int g = 0; g < s->groups; g++) {
            const float *x = in + ((size_t)b * s->cin + (size_t)g * cin_g) * H * W;
            float *y = out + ((size_t)b * s->cout + (size_t)g * cout_g) * P;
            const float *src = x;
            if (!direct) {
                im2col(col, x, cin_g, H, W, s, Ho, Wo);
                src = col;
            }
            if (bias) /* start from the bias and accumulate (beta = 1): one pass fewer */
                for (int co = 0; co < cout_g; co++) {
                    float bv = bias[g * cout_g + co];
                    float *yr = y + (size_t)co * P;
                    for (int p = 0; p < P; p++) yr[p] = bv;
                }
            mc_sgemm(0, 0, cout_g, P, kdim, 1.f, weight + (size_t)g * cout_g * kdim, kdim, src, P, bias ? 1.f : 0.f, y, P);
        }
    free(col);
}
