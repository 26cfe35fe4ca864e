/* apply.c - reapplying stored augmentation parameters (Compose.reapply): crop + resize,
 * optional flip, the RandAugment ops, ToTensor and Normalize. See augment.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "augment/augment_internal.h"
#include "image/pil_ops.h"
#include "image/preprocess.h"

int mc_augment_params_check(const mc_augment_config *cfg, const mc_augment_params *p, mc_err *e) {
    if (!p) return mc_fail(e, MC_E_ARG, "augment: no parameters");
    if (p->crop_h < 1 || p->crop_w < 1 || p->crop_h > MC_IMAGE_MAX_SIDE || p->crop_w > MC_IMAGE_MAX_SIDE)
        return mc_fail(e, MC_E_FORMAT, "crop size %dx%d (w x h) out of range (1..%d)", p->crop_w, p->crop_h,
                       MC_IMAGE_MAX_SIDE);
    if (p->crop_i < -MC_IMAGE_MAX_SIDE || p->crop_i > MC_IMAGE_MAX_SIDE || p->crop_j < -MC_IMAGE_MAX_SIDE ||
        p->crop_j > MC_IMAGE_MAX_SIDE)
        return mc_fail(e, MC_E_FORMAT, "crop offset (%d, %d) out of range", p->crop_i, p->crop_j);
    if ((int64_t)p->crop_h * p->crop_w > MC_IMAGE_MAX_PIXELS)
        return mc_fail(e, MC_E_FORMAT, "crop %dx%d too large", p->crop_w, p->crop_h);
    if (p->flip != 0 && p->flip != 1) return mc_fail(e, MC_E_FORMAT, "flip flag %d is not 0 or 1", p->flip);
    if (p->flip && !cfg->hflip) return mc_fail(e, MC_E_FORMAT, "flip set but no random_horizontal_flip in the pipeline");
    if (p->ra_applied) {
        if (!cfg->rand_augment) return mc_fail(e, MC_E_FORMAT, "RandAugment parameters but no RandAugment in the pipeline");
        if (p->num_ops != cfg->num_ops)
            return mc_fail(e, MC_E_FORMAT, "RandAugment has %d ops, the pipeline applies %d", p->num_ops, cfg->num_ops);
        for (int k = 0; k < p->num_ops; k++) {
            int r = mc_augment_ra_op_check(&p->ops[k], e);
            if (r) return mc_err_prefix(e, "RandAugment op %d", k);
        }
    }
    return 0;
}

/* RandomResizedCrop: PIL crop (box (j, i, j + w, i + h); outside the image reads 0) then
 * resize to out_w x out_h. A box inside the image is resampled in place through a view. */
static int crop_resize(const mc_augment_config *cfg, const mc_augment_params *p, const mc_image *in, mc_image *out,
                       mc_err *e) {
    int i = p->crop_i, j = p->crop_j, h = p->crop_h, w = p->crop_w;
    mc_image pad = {0};
    mc_image_view v;
    if (i >= 0 && j >= 0 && i + h <= in->h && j + w <= in->w) {
        v.rgb = in->rgb + ((size_t)i * in->w + (size_t)j) * 3;
        v.w = w, v.h = h, v.stride = (size_t)in->w * 3;
    } else {
        /* PIL pads with zeros; the padded copy is bounded so that a corrupt record cannot make
         * a small image allocate gigabytes. */
        int64_t limit = (int64_t)in->w * in->h > MC_AUGMENT_MAX_PAD_PIXELS ? (int64_t)in->w * in->h
                                                                            : MC_AUGMENT_MAX_PAD_PIXELS;
        if ((int64_t)w * h > limit)
            return mc_fail(e, MC_E_FORMAT, "crop box (%d, %d, %d, %d) extends outside the %dx%d image and is larger "
                           "than %lld pixels", i, j, h, w, in->w, in->h, (long long)limit);
        int r = mc_image_alloc(&pad, w, h, e);
        if (r) return r;
        memset(pad.rgb, 0, (size_t)w * h * 3);
        int y0 = i < 0 ? -i : 0, y1 = in->h - i < h ? in->h - i : h;
        int x0 = j < 0 ? -j : 0, x1 = in->w - j < w ? in->w - j : w;
        for (int y = y0; y < y1 && x1 > x0; y++)
            memcpy(pad.rgb + ((size_t)y * w + x0) * 3, in->rgb + ((size_t)(y + i) * in->w + (size_t)(x0 + j)) * 3,
                   (size_t)(x1 - x0) * 3);
        v = mc_image_view_of(&pad);
    }
    int r = mc_image_resample_window(&v, out->w, out->h, cfg->interpolation, 0, 0, out->w, out->h, out->rgb, e);
    mc_image_free(&pad);
    return r;
}

int mc_augment_apply_u8(const mc_augment_config *cfg, const mc_augment_params *p, const mc_image *in,
                        int out_w, int out_h, mc_image *out, mc_err *e) {
    memset(out, 0, sizeof *out);
    int r = mc_augment_config_check(cfg, e);
    if (r) return r;
    if (!in || !in->rgb || in->w < 1 || in->h < 1) return mc_fail(e, MC_E_ARG, "augment: empty input image");
    if ((r = mc_augment_params_check(cfg, p, e))) return r;
    if (out_w == 0 && out_h == 0) out_w = cfg->size_w, out_h = cfg->size_h;
    if (out_w < 1 || out_h < 1 || out_w > MC_AUGMENT_MAX_OUT || out_h > MC_AUGMENT_MAX_OUT)
        return mc_fail(e, MC_E_ARG, "augment: output size %dx%d out of range (1..%d)", out_w, out_h, MC_AUGMENT_MAX_OUT);
    mc_image a, b = {0};
    if ((r = mc_image_alloc(&a, out_w, out_h, e))) return r;
    if ((r = crop_resize(cfg, p, in, &a, e))) goto fail;
    int need_tmp = (cfg->hflip && p->flip) || (p->ra_applied && p->num_ops > 0);
    if (need_tmp && (r = mc_image_alloc(&b, out_w, out_h, e))) goto fail;
    if (cfg->hflip && p->flip) {
        mc_pil_transpose(&a, MC_PIL_FLIP_LEFT_RIGHT, &b);
        mc_image t = a; a = b; b = t;
    }
    if (p->ra_applied)
        for (int k = 0; k < p->num_ops; k++) {
            if ((r = mc_augment_op_apply(p->ops[k].op, p->ops[k].magnitude, &a, &b, e))) goto fail;
            mc_image t = a; a = b; b = t;
        }
    mc_image_free(&b);
    *out = a;
    return 0;
fail:
    mc_image_free(&a);
    mc_image_free(&b);
    return r;
}

void mc_augment_normalize(float *chw, size_t hw, const float mean[3], const float std[3]) {
    /* torchvision Normalize: sub_(mean) then div_(std), float32 */
    for (int c = 0; c < 3; c++) {
        float *x = chw + (size_t)c * hw;
        for (size_t i = 0; i < hw; i++) {
            float d = x[i] - mean[c];
            x[i] = d / std[c];
        }
    }
}

int mc_augment_apply(const mc_augment_config *cfg, const mc_augment_params *p, const mc_image *in, int out_w,
                     int out_h, float *chw, mc_err *e) {
    mc_image u8;
    int r = mc_augment_apply_u8(cfg, p, in, out_w, out_h, &u8, e);
    if (r) return r;
    mc_image_to_tensor(&u8, chw);
    if (cfg->normalize) mc_augment_normalize(chw, (size_t)u8.w * u8.h, cfg->mean, cfg->std);
    mc_image_free(&u8);
    return 0;
}
