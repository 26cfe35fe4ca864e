/* augment.h - the reference's reproducible image augmentations (apple/ml-mobileclip
 * training/dr/transforms.py with torchvision 0.14 on PIL 9.4), byte for byte.
 *
 * Pipeline, in the reference's fixed order (TRANSFORMATION_TO_NAME, not config order):
 *   RandomResizedCrop -> [RandomHorizontalFlip] -> RandAugment -> ToTensor -> [Normalize]
 * on an RGB uint8 image (the decoder's output: PIL .convert("RGB")).
 *   - RandomResizedCrop: crop rows i..i+h-1, cols j..j+w-1 (pixels outside the image are 0,
 *     like PIL's crop; such a box may cover at most max(image area, 2^24) pixels), then PIL resize to the output size (bicubic in DataCompDR; a crop
 *     already of the output size is copied). The output size is the config's, or any size
 *     the caller asks for at reapply time (the reference's `size=` argument).
 *   - RandomHorizontalFlip: not in the DataCompDR configs; flag stored as true/false.
 *   - RandAugment(num_ops=2, magnitude=9, num_magnitude_bins=31, NEAREST, fill 0): each of
 *     the stored (op, magnitude) pairs in order, torchvision's _apply_op on the PIL image
 *     (image/pil_ops.h). The stored magnitude is used as is, also at another output size.
 *   - ToTensor: (float)v / 255.0f, CHW. Normalize: ((x - mean) / std) in float32.
 *
 * Stored (compressed) form, exactly the reference's Compose.compress + json.dumps:
 *   [[i, j, h, w], <flip: true|false, only if the config has it>, [[op, mag], ...] | null]
 * with op the index in the table below and mag the float32 table value as a double in
 * Python's repr. A DataCompDR sample's paug.json is {"param_aug": [<compressed>, ...]}; the
 * Hugging Face copy stores the list as a JSON string, also accepted.
 *
 * Sampling: mc_augment_sample draws new parameters with torchvision's algorithms
 * (RandomResizedCrop.get_params with its 10 tries and fallback, RandAugment's uniform op
 * choice, bin value and random sign) from mc_rng, the project's documented generator
 * (core/rng.h) that is not torch's: same seed and stream give the same parameters on every
 * machine and whatever the thread count.
 */
#ifndef MC_AUGMENT_AUGMENT_H
#define MC_AUGMENT_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/rng.h"
#include "image/image.h"
#include "image/resample.h"
#include "io/json.h"

/* RandAugment ops; the value is the index stored in the compressed parameters. */
typedef enum mc_augment_op {
    MC_AUG_IDENTITY, MC_AUG_SHEAR_X, MC_AUG_SHEAR_Y, MC_AUG_TRANSLATE_X, MC_AUG_TRANSLATE_Y,
    MC_AUG_ROTATE, MC_AUG_BRIGHTNESS, MC_AUG_COLOR, MC_AUG_CONTRAST, MC_AUG_SHARPNESS,
    MC_AUG_POSTERIZE, MC_AUG_SOLARIZE, MC_AUG_AUTOCONTRAST, MC_AUG_EQUALIZE,
    MC_AUG_NUM_OPS
} mc_augment_op;

#define MC_AUGMENT_MAX_OPS 16 /* RandAugment num_ops limit */

/* Reference op name ("ShearX", ...) or NULL for an index out of range. */
const char *mc_augment_op_name(int op);
/* 1 if the op's magnitude is negated with probability 1/2 when sampling. */
int mc_augment_op_signed(int op);

typedef struct mc_augment_config {
    int size_w, size_h;              /* RandomResizedCrop output (224 x 224) */
    double scale[2], ratio[2];       /* (0.08, 1.0), (3/4, 4/3) */
    mc_resample_filter interpolation; /* BICUBIC */
    int hflip;                       /* RandomHorizontalFlip in the pipeline (0) */
    double hflip_p;                  /* 0.5 */
    int rand_augment;                /* RandAugment in the pipeline (1) */
    double ra_p;                     /* probability of applying RandAugment (1.0) */
    int num_ops, magnitude, num_magnitude_bins; /* 2, 9, 31 */
    int normalize;                   /* Normalize in the pipeline (1) */
    float mean[3], std[3];           /* OpenAI CLIP mean/std */
} mc_augment_config;

/* The DataCompDR-12M/1B image augmentation (training/configs/datacompdr12m.json). */
void mc_augment_config_datacompdr(mc_augment_config *cfg);
/* The reference's JSON schema: a whole config (training/configs/datacompdr12m.json, read at
 * "reinforce" -> "image_augmentation") or the image_augmentation object itself. Defaults are
 * torchvision's (e.g. bilinear crops when "interpolation" is absent); a transform is present
 * unless "enable": false; unknown keys are ignored like the reference does; resize,
 * center_crop, random_crop, random_erase, mixup, cutmix and uint8 are refused (MC_E_UNSUPPORTED). */
int mc_augment_config_from_json(const mc_json *node, mc_augment_config *cfg, mc_err *e);
/* Checks sizes, ranges and probabilities; MC_E_ARG with the reason. */
int mc_augment_config_check(const mc_augment_config *cfg, mc_err *e);

typedef struct mc_augment_ra_op {
    int op;           /* mc_augment_op */
    double magnitude; /* as stored (float32 table value widened to double, maybe negated) */
} mc_augment_ra_op;

/* One augmentation: the random parameters of every transform in the config's pipeline. */
typedef struct mc_augment_params {
    int crop_i, crop_j, crop_h, crop_w; /* top, left, height, width in source pixels */
    int flip;                           /* hflip configs only: 1 = flipped */
    int ra_applied;                     /* 0: RandAugment skipped (stored as null) */
    int num_ops;                        /* == cfg->num_ops when applied */
    mc_augment_ra_op ops[MC_AUGMENT_MAX_OPS];
} mc_augment_params;

/* Rejects parameters the reference could not reapply: crop h or w < 1 or absurd, op index out
 * of range, non-finite magnitude, an enhance factor 1 + m < 0, Posterize bits outside 0..8,
 * a translation beyond +-2^24 pixels, num_ops different from the config's. */
int mc_augment_params_check(const mc_augment_config *cfg, const mc_augment_params *p, mc_err *e);

/* ---- sampling ---- */

/* Sampling draws from the project's one generator, mc_rng (core/rng.h: xoshiro256** seeded
 * from (seed, stream)). mc_augment_rng* are its former names, kept as aliases so that code
 * written against them (src/train) still builds; new code uses mc_rng*. */
typedef mc_rng mc_augment_rng;
#define mc_augment_rng_seed mc_rng_init
#define mc_augment_rng_next mc_rng_next
#define mc_augment_rng_uniform mc_rng_double
#define mc_augment_rng_below mc_rng_below

/* The RandAugment magnitude table entry (float32, widened) for op at `bin` of `num_bins` on
 * an image of img_w x img_h (only the translations depend on it); 0.0 for unsigned no-magnitude ops. */
double mc_augment_magnitude(int op, int bin, int num_bins, int img_w, int img_h);

/* New random parameters for a source image of img_w x img_h pixels. */
int mc_augment_sample(mc_rng *rng, const mc_augment_config *cfg, int img_w, int img_h,
                      mc_augment_params *p, mc_err *e);

/* ---- reapplying ---- */

/* The augmented uint8 image (before ToTensor), out_w x out_h (0, 0: the config's size).
 * Allocates out. */
int mc_augment_apply_u8(const mc_augment_config *cfg, const mc_augment_params *p, const mc_image *in,
                        int out_w, int out_h, mc_image *out, mc_err *e);

/* The whole pipeline: chw receives [3, out_h, out_w] floats, ToTensor then, if cfg->normalize,
 * Normalize with cfg->mean/std. */
int mc_augment_apply(const mc_augment_config *cfg, const mc_augment_params *p, const mc_image *in, int out_w,
                     int out_h, float *chw, mc_err *e);

/* Normalize in place: chw[c][i] = (chw[c][i] - mean[c]) / std[c] in float32 (torchvision's
 * sub_ then div_); hw = h * w. ToTensor itself is mc_image_to_tensor (image/preprocess.h). */
void mc_augment_normalize(float *chw, size_t hw, const float mean[3], const float std[3]);

/* ---- stored form (compress / decompress) ---- */

/* Writes json.dumps(Compose.compress(params)) into buf (NUL-terminated). Returns the length,
 * or MC_E_ARG if cap is too small or the parameters are invalid. */
int mc_augment_params_to_json(const mc_augment_config *cfg, const mc_augment_params *p, char *buf, size_t cap,
                              mc_err *e);
/* Reads one compressed record (Compose.decompress) from a parsed JSON value / from text, and
 * checks it with mc_augment_params_check. Errors say which field is wrong. */
int mc_augment_params_from_node(const mc_augment_config *cfg, const mc_json *node, mc_augment_params *p,
                                mc_err *e);
int mc_augment_params_from_json(const mc_augment_config *cfg, const char *text, size_t len,
                                mc_augment_params *p, mc_err *e);

/* paug.json: {"param_aug": [...]} with the list itself or its JSON text as the value.
 * On success *out is a malloc'd array of *n records (free() it); `name` is used in errors. */
int mc_augment_paug_parse(const mc_augment_config *cfg, const char *text, size_t len, const char *name,
                          mc_augment_params **out, int *n, mc_err *e);
/* Writes {"param_aug": [c_0, ..., c_{n-1}]} (json.dumps' bytes) into a malloc'd string. */
int mc_augment_paug_write(const mc_augment_config *cfg, const mc_augment_params *p, int n, char **out,
                          size_t *len, mc_err *e);

#endif
