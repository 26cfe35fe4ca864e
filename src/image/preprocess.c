/* preprocess.c - the reference's Resize (PIL bilinear, image/resample.c), the torchvision
 * center crop and ToTensor. See preprocess.h for the exact rules. */
#include "image/preprocess.h"

#include "image/resample.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

int mc_image_resize(const mc_image *in, int out_w, int out_h, mc_image *out, mc_err *e) {
    int r = check_input(in, e);
    if (r) return r;
    return mc_image_resample(in, out_w, out_h, MC_RESAMPLE_BILINEAR, out, e);
}

int mc_image_resize_shorter(const mc_image *in, int R, mc_image *out, mc_err *e) {
    int r = check_input(in, e), rw, rh;
    if (r) return r;
    if ((r = mc_image_shorter_size(in->w, in->h, R, &rw, &rh, e))) return r;
    return mc_image_resize(in, rw, rh, out, e);
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
    mc_image_view v = mc_image_view_of(in);
    if ((r = mc_image_resample_window(&v, rw, rh, filter, left, top, R, R, out->rgb, e))) mc_image_free(out);
    return r;
}

int mc_image_preprocess_u8(const mc_image *in, int R, mc_image *out, mc_err *e) {
    return mc_image_eval_crop_u8(in, R, MC_RESAMPLE_BILINEAR, out, e);
}

int mc_image_preprocess(const mc_image *in, int R, float *out_chw, mc_err *e) {
    mc_image crop;
    int r = mc_image_preprocess_u8(in, R, &crop, e);
    if (r) return r;
    mc_image_to_tensor(&crop, out_chw);
    mc_image_free(&crop);
    return 0;
}
