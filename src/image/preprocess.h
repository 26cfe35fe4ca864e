/* preprocess.h - the reference image preprocessing, byte for byte.
 *
 * MobileCLIP's reference (torchvision 0.14 on PIL 9.4) does Resize(R, BILINEAR) ->
 * CenterCrop(R) -> ToTensor() on the RGB image; open_clip's eval transform (the teachers')
 * does the same with BICUBIC and then Normalize(OpenAI mean, std):
 *   - Resize: shorter side -> R, longer -> int(R * long / short), then PIL's
 *     Image.resize(size, filter) = ImagingResample: the filter (bilinear: triangle, support 1;
 *     bicubic: Keys' cubic with a = -0.5, support 2) is widened by the downscale factor
 *     (antialiasing), coefficients per output pixel normalised in double and rounded to
 *     22-bit fixed point, a horizontal pass then a vertical pass on uint8 (the intermediate
 *     rows are clamped to 0..255, which matters for bicubic's overshoot), each accumulated in
 *     int32 from 1 << 21, shifted right 22 bits and clamped.
 *     A pass whose size does not change is skipped (PIL does too; it would be the identity).
 *   - CenterCrop: offsets round((size - R) / 2) with round-half-to-even.
 *   - ToTensor: (float)v / 255.0f, CHW. MobileCLIP applies no mean/std normalisation;
 *     Normalize computes (x - mean[c]) / std[c] in float32, as torch's sub_ then div_.
 * Every output pixel of the resample depends only on its own coefficients, so computing just
 * the cropped window (mc_image_preprocess does) gives the same bytes as resizing everything.
 */
#ifndef MC_IMAGE_PREPROCESS_H
#define MC_IMAGE_PREPROCESS_H

#include "image/image.h"

/* torchvision Resize(R) output size for a w x h image: the shorter side becomes R, the longer
 * int(R * long / short). Fails (MC_E_ARG) for R < 1 or when the longer side would not fit
 * MC_IMAGE_MAX_SIDE. */
int mc_image_shorter_size(int w, int h, int R, int *out_w, int *out_h, mc_err *e);

/* PIL's resampling filters (Image.BILINEAR, Image.BICUBIC). */
typedef enum mc_resample_filter { MC_FILTER_BILINEAR = 0, MC_FILTER_BICUBIC = 1 } mc_resample_filter;

/* PIL 9.4 Image.resize((out_w, out_h), filter) of an RGB image. */
int mc_image_resize_filter(const mc_image *in, int out_w, int out_h, mc_resample_filter filter, mc_image *out,
                           mc_err *e);
/* The same with Image.BILINEAR. */
int mc_image_resize(const mc_image *in, int out_w, int out_h, mc_image *out, mc_err *e);

/* Resize(R): mc_image_shorter_size then mc_image_resize(_filter). */
int mc_image_resize_shorter_filter(const mc_image *in, int R, mc_resample_filter filter, mc_image *out, mc_err *e);
int mc_image_resize_shorter(const mc_image *in, int R, mc_image *out, mc_err *e);

/* torchvision CenterCrop offsets of a crop_w x crop_h window in a w x h image:
 * round-half-even((w - crop_w) / 2). When the crop is larger than the image, torchvision
 * zero-pads first ((crop - size) // 2 before): the offset is then minus that padding. */
void mc_image_center_offsets(int w, int h, int crop_w, int crop_h, int *left, int *top);

/* CenterCrop((crop_h, crop_w)); pixels outside the image (crop larger than it) are 0. */
int mc_image_center_crop(const mc_image *in, int crop_w, int crop_h, mc_image *out, mc_err *e);

/* ToTensor: chw[c][y][x] = (float)rgb[y][x][c] / 255.0f, chw has 3 * h * w floats. */
void mc_image_to_tensor(const mc_image *im, float *chw);

/* Normalize: chw[c][i] = (chw[c][i] - mean[c]) / std[c] for the 3 planes of hw floats. */
void mc_image_normalize(float *chw, size_t hw, const float mean[3], const float std[3]);

/* Resize(R, filter) + CenterCrop(R) as uint8: out becomes an R x R image (only the cropped
 * window of the resize is computed). */
int mc_image_eval_crop_u8(const mc_image *in, int R, mc_resample_filter filter, mc_image *out, mc_err *e);
/* The same with BILINEAR (MobileCLIP's preprocessing). */
int mc_image_preprocess_u8(const mc_image *in, int R, mc_image *out, mc_err *e);

/* The whole MobileCLIP preprocessing: out_chw receives [3, R, R] floats in [0, 1]. */
int mc_image_preprocess(const mc_image *in, int R, float *out_chw, mc_err *e);

#endif
