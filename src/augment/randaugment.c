/* randaugment.c - torchvision's RandAugment op table, magnitude bins and _apply_op on a PIL
 * RGB image (torchvision 0.14 / PIL 9.4), plus the configuration and parameter checks.
 * Built with -ffp-contract=off: the matrices must be the doubles Python computes. */
#include <math.h>
#include <string.h>

#include "augment/augment_internal.h"
#include "image/pil_ops.h"

static const struct {
    const char *name;
    int is_signed;
} op_table[MC_AUG_NUM_OPS] = {
    {"Identity", 0},   {"ShearX", 1},     {"ShearY", 1},       {"TranslateX", 1}, {"TranslateY", 1},
    {"Rotate", 1},     {"Brightness", 1}, {"Color", 1},        {"Contrast", 1},   {"Sharpness", 1},
    {"Posterize", 0},  {"Solarize", 0},   {"AutoContrast", 0}, {"Equalize", 0},
};

const char *mc_augment_op_name(int op) { return op >= 0 && op < MC_AUG_NUM_OPS ? op_table[op].name : NULL; }
int mc_augment_op_signed(int op) { return op >= 0 && op < MC_AUG_NUM_OPS && op_table[op].is_signed; }

/* torch.linspace(start, end, steps)[k] in float32 (the CPU kernel's scalar formula: the first
 * half counts up from start, the second half down from end). */
static float linspace_f32(float start, float end, int steps, int k) {
    if (steps == 1) return start;
    float step = (end - start) / (float)(steps - 1);
    return k < steps / 2 ? start + step * (float)k : end - step * (float)(steps - k - 1);
}

double mc_augment_magnitude(int op, int bin, int num_bins, int img_w, int img_h) {
    switch (op) {
    case MC_AUG_SHEAR_X: case MC_AUG_SHEAR_Y: return linspace_f32(0.0f, 0.3f, num_bins, bin);
    /* 150 / 331 * size is a Python double, narrowed to float32 by linspace. */
    case MC_AUG_TRANSLATE_X: return linspace_f32(0.0f, (float)(150.0 / 331.0 * img_w), num_bins, bin);
    case MC_AUG_TRANSLATE_Y: return linspace_f32(0.0f, (float)(150.0 / 331.0 * img_h), num_bins, bin);
    case MC_AUG_ROTATE: return linspace_f32(0.0f, 30.0f, num_bins, bin);
    case MC_AUG_BRIGHTNESS: case MC_AUG_COLOR: case MC_AUG_CONTRAST: case MC_AUG_SHARPNESS:
        return linspace_f32(0.0f, 0.9f, num_bins, bin);
    case MC_AUG_POSTERIZE: {
        /* 8 - (arange(n) / ((n - 1) / 4)).round().int(): float32 quotient, half to even. */
        float q = (float)bin / (float)((num_bins - 1) / 4.0);
        return 8.0 - (double)(int)nearbyintf(q);
    }
    case MC_AUG_SOLARIZE: return linspace_f32(255.0f, 0.0f, num_bins, bin);
    default: return 0.0;
    }
}

void mc_augment_config_datacompdr(mc_augment_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->size_w = cfg->size_h = 224;
    cfg->scale[0] = 0.08, cfg->scale[1] = 1.0;
    cfg->ratio[0] = 3.0 / 4.0, cfg->ratio[1] = 4.0 / 3.0;
    cfg->interpolation = MC_RESAMPLE_BICUBIC;
    cfg->hflip = 0, cfg->hflip_p = 0.5;
    cfg->rand_augment = 1, cfg->ra_p = 1.0;
    cfg->num_ops = 2, cfg->magnitude = 9, cfg->num_magnitude_bins = 31;
    cfg->normalize = 1;
    const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f}, std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    memcpy(cfg->mean, mean, sizeof mean);
    memcpy(cfg->std, std, sizeof std);
}

int mc_augment_config_check(const mc_augment_config *cfg, mc_err *e) {
    if (!cfg) return mc_fail(e, MC_E_ARG, "augment: no configuration");
    if (cfg->size_w < 1 || cfg->size_h < 1 || cfg->size_w > MC_AUGMENT_MAX_OUT || cfg->size_h > MC_AUGMENT_MAX_OUT)
        return mc_fail(e, MC_E_ARG, "augment: output size %dx%d out of range (1..%d)", cfg->size_w, cfg->size_h,
                       MC_AUGMENT_MAX_OUT);
    if (!(cfg->scale[0] > 0 && cfg->scale[0] <= cfg->scale[1] && cfg->scale[1] <= 1e6))
        return mc_fail(e, MC_E_ARG, "augment: crop scale (%g, %g) must satisfy 0 < min <= max", cfg->scale[0], cfg->scale[1]);
    if (!(cfg->ratio[0] > 0 && cfg->ratio[0] <= cfg->ratio[1] && cfg->ratio[1] < 1e6))
        return mc_fail(e, MC_E_ARG, "augment: crop ratio (%g, %g) must satisfy 0 < min <= max", cfg->ratio[0], cfg->ratio[1]);
    if (cfg->interpolation != MC_RESAMPLE_BILINEAR && cfg->interpolation != MC_RESAMPLE_BICUBIC)
        return mc_fail(e, MC_E_ARG, "augment: unknown crop interpolation %d", (int)cfg->interpolation);
    if (!(cfg->hflip_p >= 0 && cfg->hflip_p <= 1) || !(cfg->ra_p >= 0 && cfg->ra_p <= 1))
        return mc_fail(e, MC_E_ARG, "augment: probabilities must lie in [0, 1]");
    if (cfg->rand_augment) {
        if (cfg->num_ops < 0 || cfg->num_ops > MC_AUGMENT_MAX_OPS)
            return mc_fail(e, MC_E_ARG, "augment: RandAugment num_ops %d out of range (0..%d)", cfg->num_ops, MC_AUGMENT_MAX_OPS);
        if (cfg->num_magnitude_bins < 2 || cfg->num_magnitude_bins > 1000 || cfg->magnitude < 0 ||
            cfg->magnitude >= cfg->num_magnitude_bins)
            return mc_fail(e, MC_E_ARG, "augment: RandAugment magnitude %d of %d bins out of range", cfg->magnitude,
                           cfg->num_magnitude_bins);
    }
    if (cfg->normalize)
        for (int c = 0; c < 3; c++)
            if (!isfinite(cfg->mean[c]) || !isfinite(cfg->std[c]) || cfg->std[c] == 0.0f)
                return mc_fail(e, MC_E_ARG, "augment: normalize mean/std must be finite with std != 0");
    return 0;
}

int mc_augment_ra_op_check(const mc_augment_ra_op *o, mc_err *e) {
    if (o->op < 0 || o->op >= MC_AUG_NUM_OPS)
        return mc_fail(e, MC_E_FORMAT, "RandAugment op index %d out of range (0..%d)", o->op, MC_AUG_NUM_OPS - 1);
    double m = o->magnitude;
    const char *name = op_table[o->op].name;
    if (!isfinite(m)) return mc_fail(e, MC_E_FORMAT, "%s magnitude is not finite", name);
    switch (o->op) {
    case MC_AUG_TRANSLATE_X: case MC_AUG_TRANSLATE_Y:
        if (fabs(m) >= 16777216.0) return mc_fail(e, MC_E_FORMAT, "%s magnitude %g out of range", name, m);
        break;
    case MC_AUG_SHEAR_X: case MC_AUG_SHEAR_Y: case MC_AUG_ROTATE:
        if (fabs(m) > 1e9) return mc_fail(e, MC_E_FORMAT, "%s magnitude %g out of range", name, m);
        break;
    case MC_AUG_BRIGHTNESS: case MC_AUG_COLOR: case MC_AUG_CONTRAST: case MC_AUG_SHARPNESS:
        /* torchvision refuses a negative enhance factor. */
        if (1.0 + m < 0) return mc_fail(e, MC_E_FORMAT, "%s magnitude %g gives a negative factor", name, m);
        /* PIL blends with a float factor: one that overflows float makes inf * 0 = NaN pixels. */
        if (!isfinite((float)(1.0 + m))) return mc_fail(e, MC_E_FORMAT, "%s magnitude %g out of range", name, m);
        break;
    case MC_AUG_POSTERIZE:
        if (!(m >= 0 && m < 9)) return mc_fail(e, MC_E_FORMAT, "Posterize magnitude %g: bits must be 0..8", m);
        break;
    default: break;
    }
    return 0;
}

/* torchvision's _get_inverse_affine_matrix(center, angle=0, translate, scale=1, shear) in the
 * same double operations and order as the Python. */
static void inverse_affine(double cx, double cy, double tx, double ty, double shear_x_deg, double shear_y_deg,
                           double m[6]) {
    const double deg_to_rad = 3.14159265358979323846 / 180.0;
    double rot = 0.0 * deg_to_rad, sx = shear_x_deg * deg_to_rad, sy = shear_y_deg * deg_to_rad;
    double a = cos(rot - sy) / cos(sy);
    double b = -cos(rot - sy) * tan(sx) / cos(sy) - sin(rot);
    double c = sin(rot - sy) / cos(sy);
    double d = -sin(rot - sy) * tan(sx) / cos(sy) + cos(rot);
    m[0] = d / 1.0, m[1] = -b / 1.0, m[2] = 0.0 / 1.0;
    m[3] = -c / 1.0, m[4] = a / 1.0, m[5] = 0.0 / 1.0;
    double t0 = m[0] * (-cx - tx), t1 = m[1] * (-cy - ty);
    m[2] += t0 + t1;
    double t3 = m[3] * (-cx - tx), t4 = m[4] * (-cy - ty);
    m[5] += t3 + t4;
    m[2] += cx;
    m[5] += cy;
}

void mc_augment_op_matrix(int op, double magnitude, int w, int h, double m[6]) {
    const double rad_to_deg = 180.0 / 3.14159265358979323846; /* CPython's math.degrees */
    switch (op) {
    case MC_AUG_SHEAR_X: inverse_affine(0, 0, 0, 0, atan(magnitude) * rad_to_deg, 0.0, m); break;
    case MC_AUG_SHEAR_Y: inverse_affine(0, 0, 0, 0, 0.0, atan(magnitude) * rad_to_deg, m); break;
    /* int(magnitude) truncates toward zero; the centre (w/2, h/2) cancels out. */
    case MC_AUG_TRANSLATE_X: inverse_affine(w * 0.5, h * 0.5, (double)(int64_t)magnitude, 0.0, 0.0, 0.0, m); break;
    case MC_AUG_TRANSLATE_Y: inverse_affine(w * 0.5, h * 0.5, 0.0, (double)(int64_t)magnitude, 0.0, 0.0, m); break;
    case MC_AUG_ROTATE: mc_pil_rotate_matrix(magnitude, w, h, m); break;
    default: m[0] = 1, m[1] = 0, m[2] = 0, m[3] = 0, m[4] = 1, m[5] = 0; break;
    }
}

int mc_augment_op_apply(int op, double magnitude, const mc_image *src, mc_image *dst, mc_err *e) {
    size_t n = (size_t)src->w * src->h * 3;
    switch (op) {
    case MC_AUG_SHEAR_X: case MC_AUG_SHEAR_Y: case MC_AUG_TRANSLATE_X: case MC_AUG_TRANSLATE_Y: {
        double m[6];
        mc_augment_op_matrix(op, magnitude, src->w, src->h, m);
        return mc_pil_affine_nearest(src, m, dst, e);
    }
    case MC_AUG_ROTATE: return mc_pil_rotate(src, magnitude, dst, e);
    case MC_AUG_BRIGHTNESS: mc_pil_enhance(src, MC_PIL_BRIGHTNESS, 1.0 + magnitude, dst); return 0;
    case MC_AUG_COLOR: mc_pil_enhance(src, MC_PIL_COLOR, 1.0 + magnitude, dst); return 0;
    case MC_AUG_CONTRAST: mc_pil_enhance(src, MC_PIL_CONTRAST, 1.0 + magnitude, dst); return 0;
    case MC_AUG_SHARPNESS: mc_pil_enhance(src, MC_PIL_SHARPNESS, 1.0 + magnitude, dst); return 0;
    default: break;
    }
    memcpy(dst->rgb, src->rgb, n);
    switch (op) {
    case MC_AUG_POSTERIZE: mc_pil_posterize(dst, (int)magnitude); break;
    case MC_AUG_SOLARIZE: mc_pil_solarize(dst, magnitude); break;
    case MC_AUG_AUTOCONTRAST: mc_pil_autocontrast(dst); break;
    case MC_AUG_EQUALIZE: mc_pil_equalize(dst); break;
    default: break; /* Identity */
    }
    return 0;
}
