/* 2-D convolution, NCHW float32.
 *
 * Two paths: (1) "depthwise-like" grouped convolutions (cin/groups == 1, any channel
 * multiplier), which are memory bound and done directly per output plane; (2) everything
 * else as per-group im2col + GEMM ([cout/g, cin/g*kh*kw] x [cin/g*kh*kw, Ho*Wo]), with the
 * 1x1 stride-1 case skipping im2col.
 */
#include <stdlib.h>
#include <string.h>

#include "nn/gemm.h"
#include "nn/ops.h"

/* One output plane at a time, one output row at a time: the row starts at the bias and
 * each tap (ky, kx) adds w * (shifted input row) over the output columns whose input
 * column is inside the image, so the inner loop has no bounds test and vectorises
 * (contiguous for stride 1). Per output pixel the taps are summed in (ky, kx) order. */
static void conv_depthwise(float *out, const float *in, const float *weight, const float *bias,
                           const mc_conv2d_shape *s, int B, int H, int W, int Ho, int Wo) {
    int mult = s->cout / s->groups; /* outputs per input channel */
    int st = s->stride, kh = s->kh, kw = s->kw, ph = s->pad_h, pw = s->pad_w;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int co = 0; co < s->cout; co++) {
            const float *x = in + ((size_t)b * s->cin + co / mult) * H * W;
            const float *w = weight + (size_t)co * kh * kw;
            float *y = out + ((size_t)b * s->cout + co) * Ho * Wo;
            float b0 = bias ? bias[co] : 0.f;
            for (int oy = 0; oy < Ho; oy++) {
                float *yr = y + (size_t)oy * Wo;
                for (int ox = 0; ox < Wo; ox++) yr[ox] = b0;
                for (int ky = 0; ky < kh; ky++) {
                    int iy = oy * st - ph + ky;
                    if (iy < 0 || iy >= H) continue;
                    const float *xr = x + (size_t)iy * W;
                    for (int kx = 0; kx < kw; kx++) {
                        /* ox range with 0 <= ox*st - pw + kx <= W-1 */
                        int d = pw - kx, lo = d <= 0 ? 0 : (d + st - 1) / st;
                        int e = W - 1 + pw - kx, hi = e < 0 ? -1 : e / st;
                        if (hi > Wo - 1) hi = Wo - 1;
                        float wv = w[ky * kw + kx];
                        if (hi < lo) continue;
                        const float *restrict xs = xr + (lo * st - d); /* input of output column lo */
                        float *restrict ys = yr + lo;
                        int n = hi - lo + 1;
                        if (st == 1)
                            for (int j = 0; j < n; j++) ys[j] += wv * xs[j];
                        else
                            for (int j = 0; j < n; j++) ys[j] += wv * xs[j * st];
                    }
                }
            }
        }
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
    for (int b = 0; b < B; b++)
        for (int g = 0; g < s->groups; g++) {
            const float *x = in + ((size_t)b * s->cin + (size_t)g * cin_g) * H * W;
            float *y = out + ((size_t)b * s->cout + (size_t)g * cout_g) * P;
            const float *src = x;
            if (!direct) {
                im2col(col, x, cin_g, H, W, s, Ho, Wo);
                src = col;
            }
            mc_sgemm(0, 0, cout_g, P, kdim, 1.f, weight + (size_t)g * cout_g * kdim, kdim, src, P, 0.f, y, P);
            if (bias)
                for (int co = 0; co < cout_g; co++) {
                    float bv = bias[g * cout_g + co];
                    float *yr = y + (size_t)co * P;
                    for (int p = 0; p < P; p++) yr[p] += bv;
                }
        }
    free(col);
}
