/* 2-D convolution, NCHW float32.
 *
 * Two paths: (1) "depthwise-like" grouped convolutions (cin/groups == 1, any channel
 * multiplier), done per plane from a padded scratch with register accumulation (see
 * conv_depthwise); (2) everything else as per-group im2col + GEMM
 * ([cout/g, cin/g*kh*kw] x [cin/g*kh*kw, Ho*Wo]), with the 1x1 stride-1 case skipping im2col.
 */
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "nn/gemm.h"
#include "nn/isa.h"
#include "nn/ops.h"

/* Depthwise-like convolutions. Each input plane is first copied into a zero-padded
 * scratch split into `stride` column phases (phase p holds padded columns p, p+s, p+2s, ...),
 * so output column ox and tap kx read phase kx % s at offset ox + kx / s: every tap is a
 * contiguous, bounds-free load whatever the stride. The plane itself is computed by the
 * kernel of the instruction set in use (dw_plane.inc), up to 8 output columns per register.
 * Padding stays zero between planes, so only the interior is rewritten per plane. */
#define DW_V 8 /* zero tail per scratch row: the widest dw_plane vector */

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

typedef struct dw_job {
    float *out;
    const float *in, *weight, *bias;
    const mc_conv2d_shape *s;
    int H, W, Ho, Wo, mult, rows, cols, row_stride, r1, c1;
    size_t phase_stride, scratch;
    const size_t *koff; /* [kw]: scratch offset of tap kx, (kx % st) * phase_stride + kx / st */
    const mc_kernels *k;
} dw_job;

/* Planes [p0, p1) of the flattened (batch, input channel) index. */
static void dw_task(void *arg, int p0, int p1) {
    const dw_job *j = arg;
    const mc_conv2d_shape *s = j->s;
    int st = s->stride, ph = s->pad_h, pw = s->pad_w, H = j->H, W = j->W;
    /* one per thread, reused across calls (a calloc per task cost page faults each call);
     * zeroed once per task, not per plane */
    float *buf = j->koff ? mc_thread_scratch(MC_SCRATCH_DEPTHWISE, j->scratch * sizeof(float)) : NULL;
    if (buf) memset(buf, 0, j->scratch * sizeof(float));
    for (int pl = p0; pl < p1; pl++) {
        int b = pl / s->cin, ci = pl % s->cin;
        const float *x = j->in + ((size_t)b * s->cin + ci) * H * W;
        for (int m = 0; m < j->mult; m++) {
            int co = ci * j->mult + m;
            float *y = j->out + ((size_t)b * s->cout + co) * j->Ho * j->Wo;
            const float *w = j->weight + (size_t)co * s->kh * s->kw;
            float b0 = j->bias ? j->bias[co] : 0.f;
            if (!buf) {
                dw_plane_direct(y, x, w, b0, s, H, W, j->Ho, j->Wo);
                continue;
            }
            if (m == 0)
                for (int r = ph; r < j->r1; r++) {
                    const float *xr = x + (size_t)(r - ph) * W;
                    if (st == 1) {
                        if (j->c1 > pw) memcpy(buf + (size_t)r * j->row_stride + pw, xr, (size_t)(j->c1 - pw) * sizeof(float));
                        continue;
                    }
                    for (int p = 0; p < st; p++) { /* padded columns c = p, p+st, ... inside [pw, c1) */
                        int c = pw + ((p - pw) % st + st) % st, n = c < j->c1 ? (j->c1 - c + st - 1) / st : 0;
                        float *d = buf + (size_t)p * j->phase_stride + (size_t)r * j->row_stride + c / st;
                        const float *sx = xr + (c - pw);
                        /* phase column i is input column c - pw + i*st (a constant stride 2 lets
                         * the compiler vectorise the de-interleave; a division per element did
                         * not: 3.5% of an S0 image) */
                        if (st == 2)
                            for (int i = 0; i < n; i++) d[i] = sx[2 * i];
                        else
                            for (int i = 0; i < n; i++) d[i] = sx[(size_t)i * st];
                    }
                }
            j->k->dw_plane(y, buf, w, b0, s->kh, s->kw, st, j->Ho, j->Wo, j->row_stride, j->koff);
        }
    }
}

static void conv_depthwise(float *out, const float *in, const float *weight, const float *bias,
                           const mc_conv2d_shape *s, int B, int H, int W, int Ho, int Wo) {
    if (Ho <= 0 || Wo <= 0) return;
    int st = s->stride;
    dw_job j = {out, in, weight, bias, s, H, W, Ho, Wo, s->cout / s->groups, 0, 0, 0, 0, 0, 0, 0, NULL,
                mc_kernels_get()};
    /* rows/columns of the padded plane that any output reads, plus a zero tail so the last
     * vector of a row may read past Wo */
    j.rows = (Ho - 1) * st + s->kh;
    j.cols = (Wo - 1) * st + s->kw;
    j.row_stride = (j.cols + st - 1) / st + DW_V;
    j.phase_stride = (size_t)j.rows * j.row_stride;
    j.scratch = j.phase_stride * st;
    /* interior: padded rows [ph, ph+H) and columns [pw, pw+W), clipped to what is read */
    j.r1 = s->pad_h + H < j.rows ? s->pad_h + H : j.rows;
    j.c1 = s->pad_w + W < j.cols ? s->pad_w + W : j.cols;
    size_t *koff = malloc((size_t)s->kw * sizeof *koff);
    if (koff)
        for (int kx = 0; kx < s->kw; kx++) koff[kx] = (size_t)(kx % st) * j.phase_stride + (size_t)(kx / st);
    j.koff = koff;
    int planes = B * s->cin;
    mc_macs_add((uint64_t)B * s->cout * Ho * Wo * s->kh * s->kw);
    mc_parallel_for(planes, mc_parallel_grain(planes, 4), dw_task, &j);
    free(koff);
}

typedef struct conv_job {
    float *out; /* col for im2col */
    const float *in, *weight, *bias;
    const mc_conv2d_shape *s;
    int H, W, Ho, Wo, cin_g, B;
} conv_job;

/* col[(ci*kh+ky)*kw+kx, oy*Wo+ox] for the channels of one group: rows [r0, r1). */
static void im2col_rows(void *arg, int r0, int r1) {
    const conv_job *j = arg;
    const mc_conv2d_shape *s = j->s;
    int H = j->H, W = j->W, Ho = j->Ho, Wo = j->Wo;
    for (int r = r0; r < r1; r++) {
        int ci = r / (s->kh * s->kw), ky = r / s->kw % s->kh, kx = r % s->kw;
        const float *xc = j->in + (size_t)ci * H * W;
        float *c = j->out + (size_t)r * Ho * Wo;
        for (int oy = 0; oy < Ho; oy++) {
            int iy = oy * s->stride - s->pad_h + ky;
            for (int ox = 0; ox < Wo; ox++) {
                int ix = ox * s->stride - s->pad_w + kx;
                c[oy * Wo + ox] = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? xc[(size_t)iy * W + ix] : 0.f;
            }
        }
    }
}

/* Plain loops, used only when the im2col buffer cannot be allocated: slower, never fails.
 * Output planes [p0, p1) of the flattened (batch, output channel) index. */
static void conv_direct_planes(void *arg, int p0, int p1) {
    const conv_job *j = arg;
    const mc_conv2d_shape *s = j->s;
    int H = j->H, W = j->W, Ho = j->Ho, Wo = j->Wo, cin_g = j->cin_g, cout_g = s->cout / s->groups;
    for (int pl = p0; pl < p1; pl++) {
        int b = pl / s->cout, co = pl % s->cout;
        const float *x = j->in + ((size_t)b * s->cin + (size_t)(co / cout_g) * cin_g) * H * W;
        const float *w = j->weight + (size_t)co * cin_g * s->kh * s->kw;
        float *y = j->out + ((size_t)b * s->cout + co) * Ho * Wo;
        for (int oy = 0; oy < Ho; oy++)
            for (int ox = 0; ox < Wo; ox++) {
                float acc = j->bias ? j->bias[co] : 0.f;
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

/* The epilogue as separate passes (paths without a GEMM) */
static void epilogue_pass(float *out, const mc_conv_epilogue *ep, int B, int C, int P) {
    if (!ep) return;
    if (ep->gelu) mc_gelu_forward(out, out, (size_t)B * C * P);
    if (ep->res) mc_add_scaled_channels(ep->res, out, ep->res_scale, B, C, P);
}

void mc_conv2d_forward(float *out, const float *in, const float *weight, const float *bias,
                       const mc_conv2d_shape *s, int B, int H, int W) {
    mc_conv2d_forward_ep(out, in, weight, bias, s, B, H, W, NULL);
}

void mc_conv2d_forward_ep(float *out, const float *in, const float *weight, const float *bias,
                          const mc_conv2d_shape *s, int B, int H, int W, const mc_conv_epilogue *ep) {
    int Ho = mc_conv_out(H, s->kh, s->stride, s->pad_h), Wo = mc_conv_out(W, s->kw, s->stride, s->pad_w);
    int cin_g = s->cin / s->groups, cout_g = s->cout / s->groups;
    int kdim = cin_g * s->kh * s->kw, P = Ho * Wo;
    if (cin_g == 1 && s->groups > 1) {
        conv_depthwise(out, in, weight, bias, s, B, H, W, Ho, Wo);
        epilogue_pass(out, ep, B, s->cout, P);
        return;
    }
    int direct = s->kh == 1 && s->kw == 1 && s->stride == 1 && s->pad_h == 0 && s->pad_w == 0;
    float *col = direct ? NULL : malloc((size_t)kdim * P * sizeof(float));
    if (!direct && !col) {
        conv_job j = {out, in, weight, bias, s, H, W, Ho, Wo, cin_g, B};
        mc_parallel_for(B * s->cout, mc_parallel_grain(B * s->cout, 2), conv_direct_planes, &j);
        epilogue_pass(out, ep, B, s->cout, P);
        return;
    }
    for (int b = 0; b < B; b++)
        for (int g = 0; g < s->groups; g++) {
            const float *x = in + ((size_t)b * s->cin + (size_t)g * cin_g) * H * W;
            float *y = out + ((size_t)b * s->cout + (size_t)g * cout_g) * P;
            const float *src = x;
            if (!direct) {
                conv_job j = {col, x, weight, bias, s, H, W, Ho, Wo, cin_g, B};
                mc_parallel_for(kdim, mc_parallel_grain(kdim, 2), im2col_rows, &j);
                src = col;
            }
            /* the bias is added to the first pass of the tiles, the epilogue to the last (fused) */
            mc_gemm_epilogue ge = {0};
            if (ep) {
                size_t at = ((size_t)b * s->cout + (size_t)g * cout_g) * P;
                ge = (mc_gemm_epilogue){ep->gelu, ep->res ? ep->res + at : NULL,
                                        ep->res ? ep->res_scale + g * cout_g : NULL, P};
            }
            mc_sgemm_ep(0, 0, cout_g, P, kdim, weight + (size_t)g * cout_g * kdim, kdim, src, P, 0.f, y, P,
                        bias ? bias + g * cout_g : NULL, NULL, &ge);
        }
    free(col);
}
