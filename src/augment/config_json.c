/* config_json.c - the augmentation configuration from the reference's JSON schema
 * (training/configs/datacompdr*.json: "reinforce" -> "image_augmentation"), read like the
 * reference's compose_from_config: a transform is in the pipeline when its key is present and
 * its "enable" is not false; keys the reference does not know (e.g. "to_rgb") are ignored;
 * known transforms this port does not implement are refused by name. */
#include <math.h>
#include <string.h>

#include "augment/augment_internal.h"

/* Python truthiness of config[t].pop("enable", True). */
static int enabled(const mc_json *t) {
    if (!t) return 0;
    const mc_json *en = mc_json_get(t, "enable");
    if (!en) return 1;
    switch (en->type) {
    case MC_JSON_BOOL: return en->boolean;
    case MC_JSON_NUMBER: return en->number != 0;
    case MC_JSON_STRING: return en->len != 0;
    case MC_JSON_NULL: return 0;
    default: return en->count != 0;
    }
}

static int get_number(const mc_json *t, const char *tr, const char *key, double *out, mc_err *e) {
    const mc_json *v = mc_json_get(t, key);
    if (!v) return 0; /* keep the default */
    if (v->type != MC_JSON_NUMBER) return mc_fail(e, MC_E_FORMAT, "augmentation config: %s.%s is not a number", tr, key);
    *out = v->number;
    return 0;
}

static int get_int_field(const mc_json *t, const char *tr, const char *key, int *out, mc_err *e) {
    double d = *out;
    int r = get_number(t, tr, key, &d, e);
    if (r) return r;
    if (d != floor(d) || fabs(d) > 1e9) return mc_fail(e, MC_E_FORMAT, "augmentation config: %s.%s is not an integer", tr, key);
    *out = (int)d;
    return 0;
}

static int get_pair(const mc_json *t, const char *tr, const char *key, double out[2], mc_err *e) {
    const mc_json *v = mc_json_get(t, key);
    if (!v) return 0;
    if (v->type != MC_JSON_ARRAY || v->count != 2 || v->items[0].type != MC_JSON_NUMBER || v->items[1].type != MC_JSON_NUMBER)
        return mc_fail(e, MC_E_FORMAT, "augmentation config: %s.%s is not a pair of numbers", tr, key);
    out[0] = v->items[0].number, out[1] = v->items[1].number;
    return 0;
}

static int get_triple(const mc_json *t, const char *key, float out[3], mc_err *e) {
    const mc_json *v = mc_json_get(t, key);
    if (!v) return 0;
    if (v->type != MC_JSON_ARRAY || v->count != 3)
        return mc_fail(e, MC_E_FORMAT, "augmentation config: normalize.%s is not a list of 3 numbers", key);
    for (int c = 0; c < 3; c++) {
        if (v->items[c].type != MC_JSON_NUMBER)
            return mc_fail(e, MC_E_FORMAT, "augmentation config: normalize.%s is not a list of 3 numbers", key);
        out[c] = (float)v->items[c].number; /* torch.tensor(list) is float32 */
    }
    return 0;
}

int mc_augment_config_from_json(const mc_json *node, mc_augment_config *cfg, mc_err *e) {
    mc_augment_config_datacompdr(cfg);
    /* the whole reference config, or just its image_augmentation object */
    const mc_json *re = mc_json_get(node, "reinforce");
    if (re) node = mc_json_get(re, "image_augmentation");
    if (!node || node->type != MC_JSON_OBJECT)
        return mc_fail(e, MC_E_FORMAT, "augmentation config: no image_augmentation object");
    static const char *unsupported[] = {"uint8", "resize", "center_crop", "random_crop", "random_erase", "mixup", "cutmix"};
    for (size_t k = 0; k < sizeof unsupported / sizeof unsupported[0]; k++)
        if (enabled(mc_json_get(node, unsupported[k])))
            return mc_fail(e, MC_E_UNSUPPORTED, "augmentation config: transform \"%s\" is not supported (only "
                           "random_resized_crop, random_horizontal_flip, rand_augment, to_tensor, normalize)", unsupported[k]);
    for (int k = 0; k < node->count; k++)
        if (node->items[k].type != MC_JSON_OBJECT)
            return mc_fail(e, MC_E_FORMAT, "augmentation config: \"%s\" is not an object", node->keys[k]);
    int r;
    const mc_json *rrc = mc_json_get(node, "random_resized_crop");
    if (!enabled(rrc)) return mc_fail(e, MC_E_UNSUPPORTED, "augmentation config: random_resized_crop is required");
    const mc_json *size = mc_json_get(rrc, "size");
    if (!size) return mc_fail(e, MC_E_FORMAT, "augmentation config: random_resized_crop.size is missing");
    if (size->type == MC_JSON_NUMBER || (size->type == MC_JSON_ARRAY && size->count == 1)) {
        const mc_json *v = size->type == MC_JSON_NUMBER ? size : &size->items[0];
        if (v->type != MC_JSON_NUMBER || v->number != floor(v->number) || !(fabs(v->number) <= MC_AUGMENT_MAX_OUT))
            return mc_fail(e, MC_E_FORMAT, "augmentation config: random_resized_crop.size is not an integer");
        cfg->size_w = cfg->size_h = (int)v->number;
    } else if (size->type == MC_JSON_ARRAY && size->count == 2) { /* (h, w) */
        double hw[2];
        if ((r = get_pair(rrc, "random_resized_crop", "size", hw, e))) return r;
        if (hw[0] != floor(hw[0]) || hw[1] != floor(hw[1]) || !(fabs(hw[0]) <= MC_AUGMENT_MAX_OUT) || !(fabs(hw[1]) <= MC_AUGMENT_MAX_OUT))
            return mc_fail(e, MC_E_FORMAT, "augmentation config: random_resized_crop.size is not [h, w] integers");
        cfg->size_h = (int)hw[0], cfg->size_w = (int)hw[1];
    } else {
        return mc_fail(e, MC_E_FORMAT, "augmentation config: random_resized_crop.size is not an integer or [h, w]");
    }
    if ((r = get_pair(rrc, "random_resized_crop", "scale", cfg->scale, e))) return r;
    if ((r = get_pair(rrc, "random_resized_crop", "ratio", cfg->ratio, e))) return r;
    const mc_json *interp = mc_json_get(rrc, "interpolation");
    cfg->interpolation = MC_RESAMPLE_BILINEAR; /* torchvision's default */
    if (interp) {
        if (interp->type == MC_JSON_STRING && !strcmp(interp->str, "bicubic")) cfg->interpolation = MC_RESAMPLE_BICUBIC;
        else if (interp->type == MC_JSON_STRING && !strcmp(interp->str, "bilinear")) cfg->interpolation = MC_RESAMPLE_BILINEAR;
        else return mc_fail(e, MC_E_UNSUPPORTED, "augmentation config: random_resized_crop.interpolation must be "
                            "\"bicubic\" or \"bilinear\"");
    }
    const mc_json *flip = mc_json_get(node, "random_horizontal_flip");
    cfg->hflip = enabled(flip);
    if (cfg->hflip && (r = get_number(flip, "random_horizontal_flip", "p", &cfg->hflip_p, e))) return r;
    const mc_json *ra = mc_json_get(node, "rand_augment");
    cfg->rand_augment = enabled(ra);
    if (cfg->rand_augment) {
        if ((r = get_number(ra, "rand_augment", "p", &cfg->ra_p, e)) || (r = get_int_field(ra, "rand_augment", "num_ops", &cfg->num_ops, e)) ||
            (r = get_int_field(ra, "rand_augment", "magnitude", &cfg->magnitude, e)) ||
            (r = get_int_field(ra, "rand_augment", "num_magnitude_bins", &cfg->num_magnitude_bins, e)))
            return r;
        const mc_json *ri = mc_json_get(ra, "interpolation"), *fill = mc_json_get(ra, "fill");
        if (ri && !(ri->type == MC_JSON_STRING && !strcmp(ri->str, "nearest")))
            return mc_fail(e, MC_E_UNSUPPORTED, "augmentation config: rand_augment.interpolation must be \"nearest\"");
        if (fill && !(fill->type == MC_JSON_NULL || (fill->type == MC_JSON_NUMBER && fill->number == 0)))
            return mc_fail(e, MC_E_UNSUPPORTED, "augmentation config: rand_augment.fill must be null or 0");
    }
    const mc_json *norm = mc_json_get(node, "normalize");
    cfg->normalize = enabled(norm);
    if (cfg->normalize) {
        if (!mc_json_get(norm, "mean") || !mc_json_get(norm, "std"))
            return mc_fail(e, MC_E_FORMAT, "augmentation config: normalize needs mean and std");
        if ((r = get_triple(norm, "mean", cfg->mean, e)) || (r = get_triple(norm, "std", cfg->std, e))) return r;
    }
    return mc_augment_config_check(cfg, e);
}
