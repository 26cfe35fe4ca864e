/* pil_ops.c - PIL 9.4's nearest affine, rotate, transpose, blend, SMOOTH, ImageEnhance and
 * ImageOps point operations on RGB; see pil_ops.h. Built with -ffp-contract=off. */
#include "image/pil_ops.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void put_px(uint8_t *dst, const uint8_t *src) {
    dst[0] = src[0];
    dst[1] = src[1];
    dst[2] = src[2];
}

/* Geometry.c's COORD and FLOOR macros, saturated: PIL's own (int) cast of a coordinate past
 * INT_MAX is undefined (x86 gives INT_MIN, off the image either way); here such a coordinate,
 * reached by a huge stored shear, is INT_MAX or -1, equally off the image. */
static inline int pil_coord(double v) { return !(v >= 0.0) ? -1 : v >= (double)INT_MAX ? INT_MAX : (int)v; }
static inline int pil_floor(double v) {
    if (!(v > (double)INT_MIN)) return INT_MIN;
    return v >= (double)INT_MAX ? INT_MAX : v < 0.0 ? (int)floor(v) : (int)v;
}

/* ImagingScaleAffine: a1 == a3 == 0. Columns are tabulated once; x and y positions are
 * accumulated in double exactly as PIL does (x0 + k * a0 is not the same number). */
static int affine_scale(const mc_image *in, const double a[6], mc_image *out, mc_err *e) {
    int W = out->w, H = out->h;
    int *xintab = calloc((size_t)W, sizeof *xintab);
    if (!xintab) return mc_fail(e, MC_E_NOMEM, "affine: out of memory");
    double xo = a[2] + a[0] * 0.5, yo = a[5] + a[4] * 0.5;
    int xmin = W, xmax = 0;
    for (int x = 0; x < W; x++) {
        int xin = pil_coord(xo);
        if (xin >= 0 && xin < in->w) {
            xmax = x + 1;
            if (x < xmin) xmin = x;
            xintab[x] = xin;
        }
        xo += a[0];
    }
    for (int y = 0; y < H; y++) {
        int yi = pil_coord(yo);
        uint8_t *o = out->rgb + (size_t)y * W * 3;
        memset(o, 0, (size_t)W * 3);
        if (yi >= 0 && yi < in->h) {
            const uint8_t *row = in->rgb + (size_t)yi * in->w * 3;
            for (int x = xmin; x < xmax; x++) put_px(o + 3 * x, row + 3 * (size_t)xintab[x]);
        }
        yo += a[4];
    }
    free(xintab);
    return 0;
}

static int check_fixed(const double a[6], int x, int y) {
    return fabs(x * a[0] + y * a[1] + a[2]) < 32768.0 && fabs(x * a[3] + y * a[4] + a[5]) < 32768.0;
}

int mc_pil_affine_nearest(const mc_image *in, const double a[6], mc_image *out, mc_err *e) {
    if (a[1] == 0 && a[3] == 0) return affine_scale(in, a, out, e);
    int W = out->w, H = out->h;
    if (check_fixed(a, 0, 0) && check_fixed(a, W, H) && check_fixed(a, 0, H) && check_fixed(a, W, 0)) {
        /* affine_fixed: 16.16 fixed point, the pixel-centre offsets folded into a2/a5. */
        int a0 = pil_floor(a[0] * 65536.0 + 0.5), a1 = pil_floor(a[1] * 65536.0 + 0.5);
        int a3 = pil_floor(a[3] * 65536.0 + 0.5), a4 = pil_floor(a[4] * 65536.0 + 0.5);
        int a2 = pil_floor((a[2] + a[0] * 0.5 + a[1] * 0.5) * 65536.0 + 0.5);
        int a5 = pil_floor((a[5] + a[3] * 0.5 + a[4] * 0.5) * 65536.0 + 0.5);
        for (int y = 0; y < H; y++) {
            uint8_t *o = out->rgb + (size_t)y * W * 3;
            memset(o, 0, (size_t)W * 3);
            int xx = a2, yy = a5;
            for (int x = 0; x < W; x++, o += 3) {
                int xin = xx >> 16; /* arithmetic shift, as PIL relies on */
                if (xin >= 0 && xin < in->w) {
                    int yin = yy >> 16;
                    if (yin >= 0 && yin < in->h) put_px(o, in->rgb + ((size_t)yin * in->w + xin) * 3);
                }
                xx += a0;
                yy += a3;
            }
            a2 += a1;
            a5 += a4;
        }
        return 0;
    }
    /* Far-away coordinates: the double path (PIL's "FIXME" branch). */
    double xo = a[2] + a[1] * 0.5 + a[0] * 0.5, yo = a[5] + a[4] * 0.5 + a[3] * 0.5;
    for (int y = 0; y < H; y++) {
        uint8_t *o = out->rgb + (size_t)y * W * 3;
        memset(o, 0, (size_t)W * 3);
        double xx = xo, yy = yo;
        for (int x = 0; x < W; x++, o += 3) {
            int xin = pil_coord(xx);
            if (xin >= 0 && xin < in->w) {
                int yin = pil_coord(yy);
                if (yin >= 0 && yin < in->h) put_px(o, in->rgb + ((size_t)yin * in->w + xin) * 3);
            }
            xx += a[0];
            yy += a[3];
        }
        xo += a[1];
        yo += a[4];
    }
    return 0;
}

void mc_pil_transpose(const mc_image *in, int op, mc_image *out) {
    int W = in->w, H = in->h;
    for (int y = 0; y < H; y++) {
        const uint8_t *row = in->rgb + (size_t)y * W * 3;
        for (int x = 0; x < W; x++) {
            size_t oy, ox, ow;
            switch (op) {
            case MC_PIL_FLIP_LEFT_RIGHT: oy = (size_t)y, ox = (size_t)(W - 1 - x), ow = (size_t)W; break;
            case MC_PIL_ROTATE_90: oy = (size_t)(W - 1 - x), ox = (size_t)y, ow = (size_t)H; break;
            case MC_PIL_ROTATE_270: oy = (size_t)x, ox = (size_t)(H - 1 - y), ow = (size_t)H; break;
            default: oy = (size_t)(H - 1 - y), ox = (size_t)(W - 1 - x), ow = (size_t)W; break;
            }
            put_px(out->rgb + (oy * ow + ox) * 3, row + 3 * (size_t)x);
        }
    }
}

/* Python's float `%` (result has the divisor's sign). */
static double py_fmod(double v, double w) {
    double m = fmod(v, w);
    if (m != 0.0) {
        if ((w < 0) != (m < 0)) m += w;
    } else {
        m = copysign(0.0, w);
    }
    return m;
}

/* Python's round(v, 15): correctly rounded to 15 decimals, read back (glibc's printf rounds
 * the exact binary value, as CPython's dtoa does). */
static double py_round15(double v) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.15f", v);
    return strtod(buf, NULL);
}

void mc_pil_rotate_matrix(double angle, int w, int h, double a[6]) {
    const double deg_to_rad = 3.14159265358979323846 / 180.0; /* CPython's math.radians */
    double t = -(py_fmod(angle, 360.0) * deg_to_rad);
    double cx = w / 2.0, cy = h / 2.0;
    a[0] = py_round15(cos(t));
    a[1] = py_round15(sin(t));
    a[2] = 0.0;
    a[3] = py_round15(-sin(t));
    a[4] = py_round15(cos(t));
    a[5] = 0.0;
    double c = a[0] * -cx + a[1] * -cy + a[2];
    double f = a[3] * -cx + a[4] * -cy + a[5];
    a[2] = c + cx;
    a[5] = f + cy;
}

int mc_pil_rotate(const mc_image *in, double angle, mc_image *out, mc_err *e) {
    double r = py_fmod(angle, 360.0);
    size_t n = (size_t)in->w * in->h * 3;
    if (r == 0.0) { memcpy(out->rgb, in->rgb, n); return 0; }
    if (r == 180.0) { mc_pil_transpose(in, MC_PIL_ROTATE_180, out); return 0; }
    if ((r == 90.0 || r == 270.0) && in->w == in->h) {
        mc_pil_transpose(in, r == 90.0 ? MC_PIL_ROTATE_90 : MC_PIL_ROTATE_270, out);
        return 0;
    }
    double a[6];
    mc_pil_rotate_matrix(angle, in->w, in->h, a);
    return mc_pil_affine_nearest(in, a, out, e);
}

void mc_pil_blend(const uint8_t *deg, const uint8_t *img, size_t n, float alpha, uint8_t *out) {
    if (alpha == 0.0f) { if (out != deg) memcpy(out, deg, n); return; }
    if (alpha == 1.0f) { if (out != img) memcpy(out, img, n); return; }
    if (alpha >= 0 && alpha <= 1.0) {
        for (size_t i = 0; i < n; i++) {
            float t = (float)deg[i] + alpha * (float)((int)img[i] - (int)deg[i]);
            out[i] = (uint8_t)t;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            float t = (float)deg[i] + alpha * (float)((int)img[i] - (int)deg[i]);
            out[i] = !(t > 0.0f) ? 0 : t >= 255.0f ? 255 : (uint8_t)t; /* NaN gives 0 */
        }
    }
}

void mc_pil_smooth(const mc_image *in, mc_image *out) {
    int W = in->w, H = in->h;
    size_t stride = (size_t)W * 3;
    memcpy(out->rgb, in->rgb, stride * H);
    if (W < 3 || H < 3) return;
    /* _filter divides the float kernel by the float divisor; ImagingFilter3x3 starts each sum
     * at offset + 0.5 and adds the rows y+1, y, y-1, each as (p[x-1] k0 + p[x] k1) + p[x+1] k2. */
    const float k1 = 1.0f / 13.0f, k5 = 5.0f / 13.0f;
    const float kr[3][3] = {{k1, k1, k1}, {k1, k5, k1}, {k1, k1, k1}};
    for (int y = 1; y < H - 1; y++) {
        const uint8_t *rows[3] = {in->rgb + (size_t)(y + 1) * stride, in->rgb + (size_t)y * stride,
                                  in->rgb + (size_t)(y - 1) * stride};
        uint8_t *o = out->rgb + (size_t)y * stride;
        for (int x = 1; x < W - 1; x++) {
            for (int c = 0; c < 3; c++) {
                size_t i = (size_t)x * 3 + (size_t)c;
                float ss = 0.5f;
                for (int r = 0; r < 3; r++) {
                    const uint8_t *p = rows[r];
                    float t = (float)p[i - 3] * kr[r][0];
                    t = t + (float)p[i] * kr[r][1];
                    t = t + (float)p[i + 3] * kr[r][2];
                    ss += t;
                }
                o[i] = ss <= 0.0f ? 0 : ss >= 255.0f ? 255 : (uint8_t)ss;
            }
        }
    }
}

void mc_pil_enhance(const mc_image *in, mc_pil_enhance_kind kind, double factor, mc_image *out) {
    size_t npx = (size_t)in->w * in->h, n = npx * 3;
    float alpha = (float)factor;
    /* The degenerate image is built in `out`; blend reads it byte by byte before writing the
     * same byte, so it can be blended in place. */
    uint8_t *deg = out->rgb;
    switch (kind) {
    case MC_PIL_BRIGHTNESS: memset(deg, 0, n); break;
    case MC_PIL_COLOR:
        for (size_t i = 0; i < npx; i++) {
            uint8_t l = mc_pil_luma(in->rgb + 3 * i);
            deg[3 * i] = deg[3 * i + 1] = deg[3 * i + 2] = l;
        }
        break;
    case MC_PIL_CONTRAST: {
        /* ImageStat mean of L: sum(v * hist[v]) / count in double, then int(mean + 0.5). */
        uint64_t hist[256] = {0};
        for (size_t i = 0; i < npx; i++) hist[mc_pil_luma(in->rgb + 3 * i)]++;
        double sum = 0.0;
        for (int v = 0; v < 256; v++) sum += (double)v * (double)hist[v];
        int mean = (int)(sum / (double)npx + 0.5);
        memset(deg, mean, n);
        break;
    }
    case MC_PIL_SHARPNESS: mc_pil_smooth(in, out); break;
    }
    mc_pil_blend(deg, in->rgb, n, alpha, out->rgb);
}

void mc_pil_apply_lut(mc_image *im, const uint8_t lut[3][256]) {
    size_t npx = (size_t)im->w * im->h;
    uint8_t *p = im->rgb;
    for (size_t i = 0; i < npx; i++, p += 3) {
        p[0] = lut[0][p[0]];
        p[1] = lut[1][p[1]];
        p[2] = lut[2][p[2]];
    }
}

void mc_pil_histogram(const mc_image *im, uint32_t hist[3][256]) {
    memset(hist, 0, 3 * 256 * sizeof(uint32_t));
    size_t npx = (size_t)im->w * im->h;
    const uint8_t *p = im->rgb;
    for (size_t i = 0; i < npx; i++, p += 3) {
        hist[0][p[0]]++;
        hist[1][p[1]]++;
        hist[2][p[2]]++;
    }
}

/* ImageOps' histogram-driven ops: a table per channel from that channel's histogram. Each
 * table starts as the identity, which is what PIL uses when it "doesn't bother". */
static void lut_from_histogram(mc_image *im, void (*make)(const uint32_t hist[256], uint8_t lut[256])) {
    uint32_t hist[3][256];
    uint8_t lut[3][256];
    mc_pil_histogram(im, hist);
    for (int c = 0; c < 3; c++) {
        for (int v = 0; v < 256; v++) lut[c][v] = (uint8_t)v;
        make(hist[c], lut[c]);
    }
    mc_pil_apply_lut(im, lut);
}

/* autocontrast(cutoff=0): stretch [first, last non-empty bin] to [0, 255]; Python's
 * int(v * scale + offset), scale and offset in double. */
static void autocontrast_lut(const uint32_t hist[256], uint8_t lut[256]) {
    int lo = 0, hi = 255;
    while (lo < 255 && !hist[lo]) lo++;
    while (hi > 0 && !hist[hi]) hi--;
    if (hi <= lo) return;
    double scale = 255.0 / (hi - lo), offset = (double)-lo * scale;
    for (int v = 0; v < 256; v++) {
        double t = (double)v * scale;
        int q = (int)(t + offset);
        lut[v] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
    }
}

/* equalize: step = (sum of non-empty bins - the last one) // 255; identity for a single
 * non-empty bin or step 0; else lut[v] = n // step with n = step // 2 + sum(hist[< v]). */
static void equalize_lut(const uint32_t hist[256], uint8_t lut[256]) {
    uint64_t total = 0, last = 0;
    int nonzero = 0;
    for (int v = 0; v < 256; v++)
        if (hist[v]) { total += hist[v]; last = hist[v]; nonzero++; }
    uint64_t step = nonzero > 1 ? (total - last) / 255 : 0;
    if (!step) return;
    uint64_t n = step / 2;
    for (int v = 0; v < 256; v++) {
        uint64_t q = n / step;
        lut[v] = (uint8_t)(q > 255 ? 255 : q); /* PIL's point() clips the table */
        n += hist[v];
    }
}

void mc_pil_autocontrast(mc_image *im) { lut_from_histogram(im, autocontrast_lut); }
void mc_pil_equalize(mc_image *im) { lut_from_histogram(im, equalize_lut); }

void mc_pil_posterize(mc_image *im, int bits) {
    uint8_t lut[3][256];
    unsigned mask = bits >= 8 ? 0xffu : bits <= 0 ? 0u : ~((1u << (8 - bits)) - 1u);
    for (int v = 0; v < 256; v++) lut[0][v] = lut[1][v] = lut[2][v] = (uint8_t)((unsigned)v & mask);
    mc_pil_apply_lut(im, lut);
}

void mc_pil_solarize(mc_image *im, double threshold) {
    uint8_t lut[3][256];
    for (int v = 0; v < 256; v++) lut[0][v] = lut[1][v] = lut[2][v] = (uint8_t)(v < threshold ? v : 255 - v);
    mc_pil_apply_lut(im, lut);
}
