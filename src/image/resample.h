/* resample.h - PIL 9.4's Image.resize (ImagingResample) for 8-bit RGB, byte for byte.
 *
 * Separable filtering, horizontal pass first. Per axis (in -> out samples, scale = in / out,
 * fs = max(scale, 1), support = filter_support * fs): output o covers input samples
 * [xmin, xmax) with center = (o + 0.5) * scale, xmin = max((int)(center - support + 0.5), 0),
 * xmax = min((int)(center + support + 0.5), in); weights filter((xmin + k - center + 0.5) / fs)
 * divided by their left-to-right double sum, rounded half away from zero to 22-bit fixed point.
 * Each pass accumulates in int32 from 1 << 21, shifts right 22 and clamps to uint8; the uint8
 * intermediate between the passes is part of the result (PIL keeps it too). A pass whose size
 * does not change is skipped, as in PIL. The filters are PIL's: BILINEAR (triangle, support 1)
 * and BICUBIC (Keys, a = -0.5, support 2); both antialias when downscaling.
 */
#ifndef MC_IMAGE_RESAMPLE_H
#define MC_IMAGE_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "image/image.h"

typedef enum mc_resample_filter { MC_RESAMPLE_BILINEAR, MC_RESAMPLE_BICUBIC } mc_resample_filter;

/* A read-only window of RGB pixels: h rows of w pixels, row starts `stride` bytes apart. */
typedef struct mc_image_view {
    const uint8_t *rgb;
    int w, h;
    size_t stride;
} mc_image_view;

static inline mc_image_view mc_image_view_of(const mc_image *im) {
    mc_image_view v = {im->rgb, im->w, im->h, (size_t)im->w * 3};
    return v;
}

/* Writes the window [x0, x0 + cw) x [y0, y0 + ch) of PIL's resize of `src` to out_w x out_h
 * into dst (ch rows of cw * 3 bytes). Every output pixel depends only on its own coefficients,
 * so a window gives the same bytes as resizing everything and cropping. */
int mc_image_resample_window(const mc_image_view *src, int out_w, int out_h, mc_resample_filter filter,
                             int x0, int y0, int cw, int ch, uint8_t *dst, mc_err *e);

/* PIL 9.4 Image.resize((out_w, out_h), filter) of an RGB image; allocates out. */
int mc_image_resample(const mc_image *in, int out_w, int out_h, mc_resample_filter filter, mc_image *out,
                      mc_err *e);

#endif
