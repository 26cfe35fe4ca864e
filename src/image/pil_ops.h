/* pil_ops.h - PIL 9.4's geometric, enhance and point operations on 8-bit RGB, byte for byte.
 *
 * What torchvision 0.14's functional API does on PIL images (and so what the reference
 * RandAugment does): Image.transform(AFFINE, NEAREST), Image.rotate, Image.transpose,
 * ImageEnhance.{Brightness,Color,Contrast,Sharpness}, ImageOps.{autocontrast, equalize,
 * posterize, solarize}. The arithmetic follows Pillow's C code (libImaging/Geometry.c,
 * Blend.c, Filter.c, Convert.c) operation by operation; this file and its callers are built
 * with -ffp-contract=off so no compiler fuses a multiply-add PIL does not.
 *
 * `in` and `out` are distinct images; unless stated otherwise out must already be allocated
 * with in's size. Pixels outside the source in geometric ops are 0 (torchvision's fill=None).
 */
#ifndef MC_IMAGE_PIL_OPS_H
#define MC_IMAGE_PIL_OPS_H

#include <stdint.h>

#include "image/image.h"

/* Image.transform(size, AFFINE, a, NEAREST) with out->w x out->h = size: output pixel (x, y)
 * reads input (a0 (x+.5) + a1 (y+.5) + a2, a3 (x+.5) + a4 (y+.5) + a5). PIL's three code
 * paths are kept: a1 == a3 == 0 (ImagingScaleAffine, double accumulation), 16.16 fixed point
 * when the corners fit, else the double path. Fails only for out of memory. */
int mc_pil_affine_nearest(const mc_image *in, const double a[6], mc_image *out, mc_err *e);

/* Image.transpose: FLIP_LEFT_RIGHT, ROTATE_90 (counter-clockwise), ROTATE_180, ROTATE_270.
 * For the two quarter turns out must be in->h x in->w. */
enum { MC_PIL_FLIP_LEFT_RIGHT, MC_PIL_ROTATE_90, MC_PIL_ROTATE_180, MC_PIL_ROTATE_270 };
void mc_pil_transpose(const mc_image *in, int op, mc_image *out);

/* Image.rotate(angle, NEAREST, expand=False, center=None, fillcolor=0): counter-clockwise
 * degrees about (w/2, h/2), PIL's fast paths for 0/90/180/270 included. */
int mc_pil_rotate(const mc_image *in, double angle, mc_image *out, mc_err *e);
/* The inverse matrix Image.rotate uses for a w x h image (rounded to 15 decimals like PIL). */
void mc_pil_rotate_matrix(double angle, int w, int h, double a[6]);

/* Image.blend(deg, img, alpha) over n bytes: alpha is a C float like PIL's argument;
 * deg + alpha (img - deg) in float32, truncated for 0 <= alpha <= 1, clamped otherwise. */
void mc_pil_blend(const uint8_t *deg, const uint8_t *img, size_t n, float alpha, uint8_t *out);

/* Pillow's RGB -> L: (19595 R + 38470 G + 7471 B + 0x8000) >> 16. */
static inline uint8_t mc_pil_luma(const uint8_t *p) {
    return (uint8_t)(((uint32_t)p[0] * 19595u + (uint32_t)p[1] * 38470u + (uint32_t)p[2] * 7471u + 0x8000u) >> 16);
}

/* image.filter(ImageFilter.SMOOTH): 3x3 (1 1 1 / 1 5 1 / 1 1 1) / 13 in float32, border
 * pixels copied; an image narrower or shorter than 3 is copied unchanged (PIL's rule). */
void mc_pil_smooth(const mc_image *in, mc_image *out);

/* ImageEnhance.<kind>(in).enhance(factor): blend of the kind's degenerate image and in,
 * with alpha = (float)factor. out may not alias in. */
typedef enum mc_pil_enhance_kind {
    MC_PIL_BRIGHTNESS, MC_PIL_COLOR, MC_PIL_CONTRAST, MC_PIL_SHARPNESS
} mc_pil_enhance_kind;
void mc_pil_enhance(const mc_image *in, mc_pil_enhance_kind kind, double factor, mc_image *out);

/* ImageOps point operations, in place: lut[c][v] replaces channel c value v. */
void mc_pil_apply_lut(mc_image *im, const uint8_t lut[3][256]);
void mc_pil_histogram(const mc_image *im, uint32_t hist[3][256]);
void mc_pil_autocontrast(mc_image *im);          /* cutoff 0, per channel */
void mc_pil_equalize(mc_image *im);              /* per channel */
void mc_pil_posterize(mc_image *im, int bits);   /* keep the high `bits` bits (0..8) */
void mc_pil_solarize(mc_image *im, double threshold); /* v < threshold ? v : 255 - v */

#endif
