#include "models/clip.h"

#include <math.h>
#include <string.h>

#include "models/config.h"
#include "models/mci.h"
#include "models/plan_tensors.h"
#include "models/text_encoder.h"
#include "models/vit.h"

static const mc_arch_config arch_configs[MC_ARCH_COUNT] = {
    [MC_ARCH_S0] = {"s0", "mobileclip_s0", 256, 0, 0, 1},
    [MC_ARCH_S1] = {"s1", "mobileclip_s1", 256, 1, 0, 0},
    [MC_ARCH_S2] = {"s2", "mobileclip_s2", 256, 2, 0, 0},
    [MC_ARCH_B] = {"b", "mobileclip_b", 224, -1, 1, 0},
};

const mc_arch_config *mc_arch_get(mc_arch a) {
    return (a >= 0 && a < MC_ARCH_COUNT) ? &arch_configs[a] : NULL;
}

mc_arch mc_arch_detect(const mc_tensor_map *w, mc_err *e) {
    const char *src = w->source ? w->source : "checkpoint";
    if (mc_vit_detect(w)) return MC_ARCH_B;
    int v = mc_mci_variant_from_weights(w);
    if (v == 0 || v == 1) {
        /* MCi0 and MCi1 differ in depth; S0 pairs MCi0 with the MCt text encoder. */
        return v == 0 ? MC_ARCH_S0 : MC_ARCH_S1;
    }
    if (v == 2) return MC_ARCH_S2;
    mc_fail(e, MC_E_MODEL, "%s: not a MobileCLIP checkpoint (no recognisable image_encoder.* tensors); "
                           "give --arch (or --config for a custom model) to see which tensor is missing", src);
    return MC_ARCH_AUTO;
}

static void free_towers(mc_clip *c) {
    if (c->mci) mc_mci_free(c->mci);
    if (c->vit) mc_vit_free(c->vit);
    if (c->text) mc_text_encoder_free(c->text);
    c->mci = NULL;
    c->vit = NULL;
    c->text = NULL;
}

/* Binds the requested towers of c->config from w (the store's views, or a declaring map). */
static int bind_towers(mc_clip *c, mc_tensor_map *w, int load_image, int load_text, mc_err *e) {
    const mc_clip_config *k = &c->config;
    const float *ls;
    int r = mc_tensor_map_f32(w, "logit_scale", 0, NULL, &ls, e);
    if (r) return r;
    c->logit_scale = (float *)ls; /* the store is writable; the map's views are const */
    if (load_image) {
        r = k->image == MC_IMAGE_MCI ? mc_mci_init_config(&c->mci, w, &k->mci, k->embed_dim, e)
                                     : mc_vit_init_config(&c->vit, w, &k->vit, k->embed_dim, e);
        if (r) return r;
    }
    if (load_text && (r = mc_text_encoder_init_config(&c->text, w, &k->text, k->embed_dim, e))) return r;
    return 0;
}

/* c->config, c->arch (the official variant the configuration equals) and c->cfg */
static void set_config(mc_clip *c, const mc_clip_config *cfg) {
    c->config = *cfg;
    c->arch = MC_ARCH_AUTO;
    for (int a = 0; a < MC_ARCH_COUNT; a++) {
        mc_clip_config b;
        if (!mc_clip_config_builtin(a, &b, NULL) && mc_clip_config_equal(&b, cfg)) c->arch = (mc_arch)a;
    }
    c->cfg = mc_arch_get(c->arch);
}

int mc_clip_init_structure(mc_clip *c, const mc_clip_config *cfg, mc_tensor_map *decl, int load_image, int load_text,
                           mc_err *e) {
    memset(c, 0, sizeof *c);
    set_config(c, cfg);
    mc_param_store_init(&c->store);
    int r = bind_towers(c, decl, load_image, load_text, e);
    if (r) free_towers(c);
    return r;
}

int mc_clip_init_config(mc_clip *c, const mc_clip_config *cfg, mc_tensor_map *weights, int load_image, int load_text,
                        int reparameterized, mc_err *e) {
    memset(c, 0, sizeof *c);
    set_config(c, cfg);
    c->reparameterized = reparameterized;
    /* declare: the binders list the configuration's tensors (names, shapes) into D */
    mc_tensor_map d;
    mc_tensor_map_init(&d);
    d.declare = 1;
    const char *src = weights && weights->source ? weights->source : cfg->name;
    int r = (d.source = strdup(src)) ? 0 : mc_fail(e, MC_E_NOMEM, "out of memory");
    if (!r) r = bind_towers(c, &d, load_image, load_text, e);
    free_towers(c);
    mc_param_store_init(&c->store);
    if (!r) r = mc_param_store_from_map(&c->store, &d, NULL, e);
    mc_tensor_map_free(&d);
    /* load: strictly (missing, mis-shaped, unexpected tensors of the loaded towers are errors);
     * an image-only or text-only load ignores the other tower's tensors */
    const char *image_only[] = {"logit_scale", "image_encoder.", NULL}, *text_only[] = {"logit_scale", "text_encoder.", NULL};
    const char *const *keep = load_image && load_text ? NULL : load_image ? image_only : text_only;
    if (!r && weights) r = mc_param_store_load_map(&c->store, weights, keep, e);
    if (weights) mc_tensor_map_free(weights); /* the file mapping is released here */
    if (r) return r;
    /* bind: every model pointer into the store */
    mc_tensor_map views;
    if ((r = mc_param_store_as_map(&c->store, &views, e))) return r;
    r = bind_towers(c, &views, load_image, load_text, e);
    mc_tensor_map_free(&views);
    if (r) return r;
    if (!isfinite(*c->logit_scale)) return mc_fail(e, MC_E_MODEL, "%s: logit_scale is not a finite number", src);
    return reparameterized ? mc_clip_plan_build(c, e) : 0;
}

int mc_clip_init(mc_clip *c, mc_tensor_map *weights, mc_arch arch, int load_image, int load_text, int reparameterized,
                 mc_err *e) {
    memset(c, 0, sizeof *c);
    if (arch == MC_ARCH_AUTO && (arch = mc_arch_detect(weights, e)) == MC_ARCH_AUTO) {
        mc_tensor_map_free(weights);
        return e->code;
    }
    mc_clip_config cfg;
    if (mc_clip_config_builtin((int)arch, &cfg, e)) {
        mc_tensor_map_free(weights);
        return e->code;
    }
    return mc_clip_init_config(c, &cfg, weights, load_image, load_text, reparameterized, e);
}

int mc_clip_plan_build(mc_clip *c, mc_err *e) {
    int r = 0;
    if (c->mapping)
        return mc_fail(e, MC_E_UNSUPPORTED, "%s: a converted model holds its inference plan only; rebuilding it needs "
                                            "the checkpoint it was made from", mc_clip_mapping_path(c));
    if (c->mci) r = mc_mci_reparameterize(c->mci, e);
    if (!r && c->vit) r = mc_vit_reparameterize(c->vit, e);
    if (!r && c->text) r = mc_text_encoder_reparameterize(c->text, e);
    c->planned = !r;
    if (!r && c->precision != MC_PREC_F32) r = mc_clip_lowp_build(c, e);
    return r;
}

void mc_clip_free(mc_clip *c) {
    if (!c) return;
    if (c->mapping) mc_clip_plan_detach(c); /* the plan's pointers are the file's: nothing to free */
    free_towers(c);
    mc_clip_mapping_free(c);
    mc_param_store_free(&c->store);
    mc_lowp_plan_free(&c->lowp);
    memset(c, 0, sizeof *c);
}

int mc_clip_encode_image(mc_clip *c, const float *images, int B, float *out, const mc_trace *trace, mc_err *e) {
    int R = c->config.image_size;
    if (!c->mci && !c->vit) return mc_fail(e, MC_E_UNSUPPORTED, "the image tower was not loaded");
    mc_lowp_plan *prev = mc_lowp_scope_begin(c->precision != MC_PREC_F32 ? &c->lowp : NULL);
    int r = c->mci ? mc_mci_forward(c->mci, images, B, R, c->reparameterized, out, trace, e)
                   : mc_vit_forward(c->vit, images, B, R, c->reparameterized, out, trace, e);
    mc_lowp_scope_end(prev);
    return r;
}

int mc_clip_encode_text(mc_clip *c, const int32_t *tokens, int N, float *out, const mc_trace *trace, mc_err *e) {
    if (!c->text) return mc_fail(e, MC_E_UNSUPPORTED, "the text tower was not loaded");
    mc_lowp_plan *prev = mc_lowp_scope_begin(c->precision != MC_PREC_F32 ? &c->lowp : NULL);
    int r = mc_text_encoder_forward(c->text, tokens, N, c->reparameterized, out, trace, e);
    mc_lowp_scope_end(prev);
    return r;
}

float mc_clip_logit_scale(const mc_clip *c) {
    float s = expf(*c->logit_scale);
    return s > 100.f ? 100.f : s;
}
