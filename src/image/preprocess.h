/* preprocess.h - the reference image preprocessing, byte for byte.
 *
 * MobileCLIP's reference (torchvision 0.14 on PIL 9.4) does Resize(R, BILINEAR) ->
 * CenterCrop(R) -> ToTensor() on the RGB image; open_clip's eval transform (the teachers') is
 * the same with BICUBIC (image/resample.h has both filters), then Normalize:
 *   - Resize: shorter side -> R, longer -> int(R * long / short), then PIL's
 *     Image.resize(size, BILINEAR) = ImagingResample: a triangle filter whose support grows
 *     with the downscale factor (antialiasing), coefficients per output pixel normalised in
 *     double and rounded to 22-bit fixed point, a horizontal pass then a vertical pass on
 *     uint8, each accumulated in int32 from 1 << 21, shifted right 22 bits and clamped.
 *     A pass whose size does not change is skipped (PIL does too; it would be the identity).
 *   - CenterCrop: offsets round((size - R) / 2) with round-half-to-even.
 *   - ToTensor: (float)v / 255.0f, CHW. No mean/std normalisation.
 * Every output pixel of the resample depends only on its own coefficients, so computing just
 * the cropped window (mc_image_preprocess does) gives the same bytes as resizing everything.
 */
#ifndef MC_IMAGE_PREPROCESS_H
#define MC_IMAGE_PREPROCESS_H

#include "image/image.h"
#include "image/resample.h"

/* torchvision Resize(R) output size for a w x h image: the shorter side becomes R, the longer
 * int(R * long / short). Fails (MC_E_ARG) for R < 1 or when the longer side would not fit
 * MC_IMAGE_MAX_SIDE. */
int mc_image_shorter_size(int w, int h, int R, int *out_w, int *out_h, mc_err *e);

/* PIL 9.4 Image.resize((out_w, out_h), Image.BILINEAR) of an RGB image. */
int mc_image_resize(const mc_image *in, int out_w, int out_h, mc_image *out, mc_err *e);

/* Resize(R): mc_image_shorter_size then mc_image_resize. */
int mc_image_resize_shorter(const mc_image *in, int R, mc_image *out, mc_err *e);

/* torchvision CenterCrop offsets of a crop_w x crop_h window in a w x h image:
 * round-half-even((w - crop_w) / 2). When the crop is larger than the image, torchvision
 * zero-pads first ((crop - size) // 2 before): the offset is then minus that padding. */
void mc_image_center_offsets(int w, int h, int crop_w, int crop_h, int *left, int *top);

/* CenterCrop((crop_h, crop_w)); pixels outside the image (crop larger than it) are 0. */
int mc_image_center_crop(const mc_image *in, int crop_w, int crop_h, mc_image *out, mc_err *e);

/* ToTensor: chw[c][y][x] = (float)rgb[y][x][c] / 255.0f, chw has 3 * h * w floats. */
void mc_image_to_tensor(const mc_image *im, float *chw);

/* Resize(R, filter) + CenterCrop(R) as uint8: out becomes an R x R image (only the cropped
 * window of the resize is computed). An R x R input comes back unchanged. */
int mc_image_eval_crop_u8(const mc_image *in, int R, mc_resample_filter filter, mc_image *out, mc_err *e);
/* The same with BILINEAR (MobileCLIP's preprocessing). */
int mc_image_preprocess_u8(const mc_image *in, int R, mc_image *out, mc_err *e);

/* The whole reference preprocessing: out_chw receives [3, R, R] floats in [0, 1]. */
int mc_image_preprocess(const mc_image *in, int R, float *out_chw, mc_err *e);

#endif
