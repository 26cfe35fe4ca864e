/* preprocess.c - PIL 9.4's antialiased resample (ImagingResample semantics) with its bilinear
 * and bicubic filters, the torchvision center crop, ToTensor and Normalize. See preprocess.h
 * for the exact rules. */
#include "image/preprocess.h"

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

/* PIL's filters (Resample.c): support radius and weight function, in double. */
static double rs_triangle(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Keys' cubic with a = -0.5, written as PIL writes it (the same operations, so the same
 * doubles). */
static double rs_bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

typedef struct rs_filter {
    double support;
    double (*fn)(double);
} rs_filter;

static const rs_filter *rs_filter_get(mc_resample_filter f) {
    static const rs_filter filters[] = {[MC_FILTER_BILINEAR] = {1.0, rs_triangle},
                                        [MC_FILTER_BICUBIC] = {2.0, rs_bicubic}};
    return (f == MC_FILTER_BILINEAR || f == MC_FILTER_BICUBIC) ? &filters[f] : NULL;
}

/* Outputs [o0, o0 + n) of an in_size -> out_size resample over the box [0, in_size).
 * Same arithmetic as PIL's precompute_coeffs + normalize_coeffs_8bpc, in double: the scale
 * is (float box width) / out_size, the filter is widened by max(scale, 1), each output's
 * weights are divided by their sum and rounded half away from zero to 22 bits (bicubic
 * weights can be negative: rounded away from zero on that side too). */
static int rs_axis_init(rs_axis *a, const rs_filter *f, int in_size, int out_size, int o0, int n, mc_err *e) {
    memset(a, 0, sizeof *a);
    double scale = (double)(float)in_size / out_size; /* PIL's box is float[4] */
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = f->support * filterscale;
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
            w[x] = f->fn(((double)(x + xmin) - center + 0.5) * ss);
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

/* PIL's clip8: the accumulator may be negative with bicubic's negative lobes (arithmetic
 * shift, then clamp). */
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

/* Writes the window [x0, x0 + cw) x [y0, y0 + ch) of PIL's resize of `in` to out_w x out_h
 * into dst (ch rows of cw * 3 bytes). Like PIL, an axis whose size is unchanged is not
 * resampled, and the horizontal pass only covers the input rows the vertical pass reads. */
static int rs_window(const mc_image *in, mc_resample_filter filter, int out_w, int out_h, int x0, int y0, int cw,
                     int ch, uint8_t *dst, mc_err *e) {
    const rs_filter *f = rs_filter_get(filter);
    if (!f) return mc_fail(e, MC_E_ARG, "resize: unknown filter %d", (int)filter);
    if (out_w < 1 || out_h < 1 || x0 < 0 || y0 < 0 || cw < 1 || ch < 1 || x0 > out_w - cw ||
        y0 > out_h - ch)
        return mc_fail(e, MC_E_ARG, "resize: bad window %dx%d+%d+%d of %dx%d", cw, ch, x0, y0, out_w, out_h);
    int need_h = out_w != in->w, need_v = out_h != in->h;
    size_t in_stride = (size_t)in->w * 3, nb = (size_t)cw * 3;
    rs_axis ax = {0}, ay = {0};
    uint8_t *tmp = NULL;
    int r = 0;

    int ry0 = y0, ry1 = y0 + ch; /* input rows [ry0, ry1) feed the vertical pass */
    if (need_v) {
        if ((r = rs_axis_init(&ay, f, in->h, out_h, y0, ch, e))) goto done;
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
        if ((r = rs_axis_init(&ax, f, in->w, out_w, x0, cw, e))) goto done;
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

static int check_input(const mc_image *in, mc_err *e) {
    if (!in || !in->rgb || in->w < 1 || in->h < 1)
        return mc_fail(e, MC_E_ARG, "preprocess: empty input image");
    return 0;
}

int mc_image_shorter_size(int w, int h, int R, int *out_w, int *out_h, mc_err *e) {
    if (w < 1 || h < 1 || R < 1) return mc_fail(e, MC_E_ARG, "resize: bad size %dx%d to %d", w, h, R);
    int sh = w <= h ? w : h, lo = w <= h ? h : w;
    /* Python: int(R * long / short); R * long is exact in double, the quotient correctly
     * rounded like Python's true division, then truncated. */
    double nl = (double)((int64_t)R * lo) / (double)sh;
    if (!(nl < (double)MC_IMAGE_MAX_SIDE + 1.0))
        return mc_fail(e, MC_E_ARG, "aspect ratio too extreme: %dx%d resized to shorter side %d would be %.0f "
                       "pixels long (limit %d)", w, h, R, floor(nl), MC_IMAGE_MAX_SIDE);
    int L = (int)nl;
    *out_w = w <= h ? R : L;
    *out_h = w <= h ? L : R;
    return 0;
}

int mc_image_resize_filter(const mc_image *in, int out_w, int out_h, mc_resample_filter filter, mc_image *out,
                           mc_err *e) {
    int r = check_input(in, e);
    if (r) return r;
    if ((r = mc_image_alloc(out, out_w, out_h, e))) return r;
    if ((r = rs_window(in, filter, out_w, out_h, 0, 0, out_w, out_h, out->rgb, e))) mc_image_free(out);
    return r;
}

int mc_image_resize(const mc_image *in, int out_w, int out_h, mc_image *out, mc_err *e) {
    return mc_image_resize_filter(in, out_w, out_h, MC_FILTER_BILINEAR, out, e);
}

int mc_image_resize_shorter_filter(const mc_image *in, int R, mc_resample_filter filter, mc_image *out, mc_err *e) {
    int r = check_input(in, e), rw, rh;
    if (r) return r;
    if ((r = mc_image_shorter_size(in->w, in->h, R, &rw, &rh, e))) return r;
    return mc_image_resize_filter(in, rw, rh, filter, out, e);
}

int mc_image_resize_shorter(const mc_image *in, int R, mc_image *out, mc_err *e) {
    return mc_image_resize_shorter_filter(in, R, MC_FILTER_BILINEAR, out, e);
}

/* Python's round(d / 2) for d >= 0: halves go to the even neighbour. */
static int half_even_half(int d) {
    int q = d / 2;
    return (d % 2 == 0 || q % 2 == 0) ? q : q + 1;
}

void mc_image_center_offsets(int w, int h, int crop_w, int crop_h, int *left, int *top) {
    *left = crop_w > w ? -((crop_w - w) / 2) : half_even_half(w - crop_w);
    *top = crop_h > h ? -((crop_h - h) / 2) : half_even_half(h - crop_h);
}

int mc_image_center_crop(const mc_image *in, int crop_w, int crop_h, mc_image *out, mc_err *e) {
    int r = check_input(in, e), left, top;
    if (r) return r;
    if ((r = mc_image_alloc(out, crop_w, crop_h, e))) return r;
    mc_image_center_offsets(in->w, in->h, crop_w, crop_h, &left, &top);
    for (int y = 0; y < crop_h; y++) {
        uint8_t *d = out->rgb + (size_t)y * (size_t)crop_w * 3;
        int sy = y + top;
        memset(d, 0, (size_t)crop_w * 3);
        if (sy < 0 || sy >= in->h) continue;
        int x_lo = left < 0 ? -left : 0, x_hi = in->w - left < crop_w ? in->w - left : crop_w;
        if (x_hi > x_lo)
            memcpy(d + (size_t)x_lo * 3, in->rgb + ((size_t)sy * (size_t)in->w + (size_t)(x_lo + left)) * 3,
                   (size_t)(x_hi - x_lo) * 3);
    }
    return 0;
}

void mc_image_to_tensor(const mc_image *im, float *chw) {
    float lut[256];
    for (int v = 0; v < 256; v++) lut[v] = (float)v / 255.0f;
    size_t n = (size_t)im->w * (size_t)im->h;
    float *r = chw, *g = chw + n, *b = chw + 2 * n;
    const uint8_t *p = im->rgb;
    for (size_t i = 0; i < n; i++, p += 3) {
        r[i] = lut[p[0]];
        g[i] = lut[p[1]];
        b[i] = lut[p[2]];
    }
}

int mc_image_eval_crop_u8(const mc_image *in, int R, mc_resample_filter filter, mc_image *out, mc_err *e) {
    int r = check_input(in, e), rw, rh, left, top;
    if (r) return r;
    if ((r = mc_image_shorter_size(in->w, in->h, R, &rw, &rh, e))) return r;
    mc_image_center_offsets(rw, rh, R, R, &left, &top);
    if (left < 0 || top < 0) /* cannot happen: both resized sides are >= R */
        return mc_fail(e, MC_E_ARG, "preprocess: resized %dx%d smaller than %d", rw, rh, R);
    if ((r = mc_image_alloc(out, R, R, e))) return r;
    if ((r = rs_window(in, filter, rw, rh, left, top, R, R, out->rgb, e))) mc_image_free(out);
    return r;
}

int mc_image_preprocess_u8(const mc_image *in, int R, mc_image *out, mc_err *e) {
    return mc_image_eval_crop_u8(in, R, MC_FILTER_BILINEAR, out, e);
}

void mc_image_normalize(float *chw, size_t hw, const float mean[3], const float std[3]) {
    for (int c = 0; c < 3; c++) {
        float m = mean[c], s = std[c], *p = chw + (size_t)c * hw;
        for (size_t i = 0; i < hw; i++) p[i] = (p[i] - m) / s;
    }
}

int mc_image_preprocess(const mc_image *in, int R, float *out_chw, mc_err *e) {
    mc_image crop;
    int r = mc_image_preprocess_u8(in, R, &crop, e);
    if (r) return r;
    mc_image_to_tensor(&crop, out_chw);
    mc_image_free(&crop);
    return 0;
}
