/* resample.c - PIL 9.4's ImagingResample (8-bit, bilinear and bicubic); see resample.h. */
#include "image/resample.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RS_BITS 22                    /* PIL's PRECISION_BITS = 32 - 8 - 2 */
#define RS_HALF (1 << (RS_BITS - 1))  /* rounding term every accumulator starts from */

/* Fixed-point coefficients of a run of outputs along one axis.
 * Output i (of the run) = sum_{t < count[i]} in[first[i] + t] * k[i * ksize + t]. */
typedef struct rs_axis {
    int ksize;
    int *first, *count; /* [n] */
    int32_t *k;         /* [n][ksize] */
} rs_axis;

static void rs_axis_free(rs_axis *a) {
    free(a->first);
    free(a->count);
    free(a->k);
    memset(a, 0, sizeof *a);
}

static double rs_triangle(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Keys' cubic convolution kernel with a = -0.5, evaluated as PIL writes it (no FMA: this file
 * is compiled with -ffp-contract=off). */
static double rs_bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* Outputs [o0, o0 + n) of an in_size -> out_size resample over the box [0, in_size).
 * Same arithmetic as PIL's precompute_coeffs + normalize_coeffs_8bpc, in double: the scale
 * is (float box width) / out_size, the filter is widened by max(scale, 1), each output's
 * weights are divided by their sum and rounded half away from zero to 22 bits. */
static int rs_axis_init(rs_axis *a, int in_size, int out_size, mc_resample_filter filter, int o0, int n,
                        mc_err *e) {
    memset(a, 0, sizeof *a);
    double (*fn)(double) = filter == MC_RESAMPLE_BICUBIC ? rs_bicubic : rs_triangle;
    double fsupport = filter == MC_RESAMPLE_BICUBIC ? 2.0 : 1.0;
    double scale = (double)(float)in_size / out_size; /* PIL's box is float[4] */
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = fsupport * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    if (n < 1 || (size_t)n > SIZE_MAX / sizeof(int32_t) / (size_t)ksize)
        return mc_fail(e, MC_E_ARG, "resize: coefficient table too large (%d x %d)", n, ksize);
    a->ksize = ksize;
    a->first = malloc((size_t)n * sizeof *a->first);
    a->count = malloc((size_t)n * sizeof *a->count);
    a->k = calloc((size_t)n * (size_t)ksize, sizeof *a->k);
    double *w = malloc((size_t)ksize * sizeof *w);
    if (!a->first || !a->count || !a->k || !w) {
        free(w);
        rs_axis_free(a);
        return mc_fail(e, MC_E_NOMEM, "resize: out of memory for coefficients");
    }
    double ss = 1.0 / filterscale;
    for (int i = 0; i < n; i++) {
        int xx = o0 + i;
        double center = (xx + 0.5) * scale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        if (xmax < 0) xmax = 0;
        if (xmax > ksize) xmax = ksize; /* cannot happen: support*2+1 <= ksize */
        double ww = 0.0;
        for (int x = 0; x < xmax; x++) {
            w[x] = fn(((double)(x + xmin) - center + 0.5) * ss);
            ww += w[x];
        }
        int32_t *k = a->k + (size_t)i * (size_t)ksize;
        for (int x = 0; x < xmax; x++) {
            double v = ww != 0.0 ? w[x] / ww : w[x];
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << RS_BITS)) : (int32_t)(0.5 + v * (1 << RS_BITS));
        }
        a->first[i] = xmin;
        a->count[i] = xmax;
    }
    free(w);
    return 0;
}

static inline uint8_t rs_clip(int32_t acc) {
    int32_t v = acc >> RS_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Horizontal pass over one RGB row: n outputs. */
static void rs_row_h(const uint8_t *src, const rs_axis *a, int n, uint8_t *dst) {
    for (int i = 0; i < n; i++) {
        const int32_t *k = a->k + (size_t)i * (size_t)a->ksize;
        const uint8_t *p = src + (size_t)a->first[i] * 3;
        int c = a->count[i];
        int32_t s0 = RS_HALF, s1 = RS_HALF, s2 = RS_HALF;
        for (int t = 0; t < c; t++, p += 3) {
            s0 += p[0] * k[t];
            s1 += p[1] * k[t];
            s2 += p[2] * k[t];
        }
        dst[3 * i] = rs_clip(s0);
        dst[3 * i + 1] = rs_clip(s1);
        dst[3 * i + 2] = rs_clip(s2);
    }
}

/* Vertical pass for one output row of nb bytes: taps over rows src + t * stride. Integer
 * sums are exact, so accumulating a block of columns tap by tap gives PIL's bytes although
 * PIL loops pixel by pixel. Fixed-size blocks let GCC -O2 vectorise (a plain loop over nb it
 * would not); the accumulators stay in registers. */
static void rs_row_v(const uint8_t *src, size_t stride, const int32_t *k, int c, int nb,
                     uint8_t *restrict dst) {
    enum { B = 32 };
    int i = 0;
    for (; i + B <= nb; i += B) {
        int32_t a[B];
        for (int j = 0; j < B; j++) a[j] = RS_HALF;
        for (int t = 0; t < c; t++) {
            const uint8_t *restrict row = src + (size_t)t * stride + i;
            int32_t kt = k[t];
            for (int j = 0; j < B; j++) a[j] += row[j] * kt;
        }
        for (int j = 0; j < B; j++) dst[i + j] = rs_clip(a[j]);
    }
    for (; i < nb; i++) {
        int32_t a = RS_HALF;
        for (int t = 0; t < c; t++) a += src[(size_t)t * stride + i] * k[t];
        dst[i] = rs_clip(a);
    }
}

/* Like PIL, an axis whose size is unchanged is not resampled, and the horizontal pass only
 * covers the input rows the vertical pass reads. */
int mc_image_resample_window(const mc_image_view *in, int out_w, int out_h, mc_resample_filter filter,
                             int x0, int y0, int cw, int ch, uint8_t *dst, mc_err *e) {
    if (out_w < 1 || out_h < 1 || x0 < 0 || y0 < 0 || cw < 1 || ch < 1 || x0 > out_w - cw ||
        y0 > out_h - ch)
        return mc_fail(e, MC_E_ARG, "resize: bad window %dx%d+%d+%d of %dx%d", cw, ch, x0, y0, out_w, out_h);
    int need_h = out_w != in->w, need_v = out_h != in->h;
    size_t in_stride = in->stride, nb = (size_t)cw * 3;
    rs_axis ax = {0}, ay = {0};
    uint8_t *tmp = NULL;
    int r = 0;

    int ry0 = y0, ry1 = y0 + ch; /* input rows [ry0, ry1) feed the vertical pass */
    if (need_v) {
        if ((r = rs_axis_init(&ay, in->h, out_h, filter, y0, ch, e))) goto done;
        ry0 = INT_MAX, ry1 = 0;
        for (int j = 0; j < ch; j++) {
            if (ay.first[j] < ry0) ry0 = ay.first[j];
            if (ay.first[j] + ay.count[j] > ry1) ry1 = ay.first[j] + ay.count[j];
        }
        if (ry1 <= ry0) ry1 = ry0 + 1; /* degenerate; keeps the pointers valid */
    }
    const uint8_t *src; /* row y of the vertical pass input = input row ry0 + y */
    size_t stride;
    if (need_h) {
        if ((r = rs_axis_init(&ax, in->w, out_w, filter, x0, cw, e))) goto done;
        tmp = malloc((size_t)(ry1 - ry0) * nb);
        if (!tmp) {
            r = mc_fail(e, MC_E_NOMEM, "resize: out of memory");
            goto done;
        }
        for (int y = ry0; y < ry1; y++) rs_row_h(in->rgb + (size_t)y * in_stride, &ax, cw, tmp + (size_t)(y - ry0) * nb);
        src = tmp;
        stride = nb;
    } else {
        src = in->rgb + (size_t)ry0 * in_stride + (size_t)x0 * 3;
        stride = in_stride;
    }
    if (need_v) {
        for (int j = 0; j < ch; j++)
            rs_row_v(src + (size_t)(ay.first[j] - ry0) * stride, stride, ay.k + (size_t)j * (size_t)ay.ksize,
                     ay.count[j], (int)nb, dst + (size_t)j * nb);
    } else {
        for (int j = 0; j < ch; j++) memcpy(dst + (size_t)j * nb, src + (size_t)j * stride, nb);
    }
done:
    rs_axis_free(&ax);
    rs_axis_free(&ay);
    free(tmp);
    return r;
}

int mc_image_resample(const mc_image *in, int out_w, int out_h, mc_resample_filter filter, mc_image *out,
                      mc_err *e) {
    if (!in || !in->rgb || in->w < 1 || in->h < 1) return mc_fail(e, MC_E_ARG, "resize: empty input image");
    int r = mc_image_alloc(out, out_w, out_h, e);
    if (r) return r;
    mc_image_view v = mc_image_view_of(in);
    if ((r = mc_image_resample_window(&v, out_w, out_h, filter, 0, 0, out_w, out_h, out->rgb, e))) mc_image_free(out);
    return r;
}
