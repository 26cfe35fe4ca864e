#include "models/clip.h"

#include <math.h>
#include <string.h>

#include "models/mci.h"
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
                           "give --arch to see which tensor is missing", src);
    return MC_ARCH_AUTO;
}

/* Binds the requested towers from the store's views. */
static int bind_towers(mc_clip *c, mc_tensor_map *w, int load_image, int load_text, mc_err *e) {
    const char *src = w->source ? w->source : "checkpoint";
    int r;
    c->logit_scale = mc_param_store_data(&c->store, "logit_scale");
    const mc_param *ls = mc_param_store_find(&c->store, "logit_scale");
    if (!c->logit_scale || ls->numel != 1) return mc_fail(e, MC_E_MODEL, "%s: missing tensor 'logit_scale'", src);
    if (!isfinite(*c->logit_scale)) return mc_fail(e, MC_E_MODEL, "%s: logit_scale is not a finite number", src);
    mc_tensor_map_mark_used(w, "logit_scale");
    if (load_image) {
        if (c->cfg->mci_variant >= 0) r = mc_mci_init(&c->mci, w, c->cfg->mci_variant, e);
        else r = mc_vit_init(&c->vit, w, e);
        if (r) return r;
        int dim = c->mci ? c->mci->embed_dim : c->vit->proj_dim;
        if (dim != MC_CLIP_EMBED_DIM)
            return mc_fail(e, MC_E_MODEL, "%s: the image projection gives %d-d embeddings, expected %d", src, dim,
                           MC_CLIP_EMBED_DIM);
        const char *extra = mc_tensor_map_first_unused(w, "image_encoder.");
        if (extra) return mc_fail(e, MC_E_MODEL, "%s: unexpected tensor '%s' for %s", src, extra, c->cfg->model_name);
    }
    if (load_text) {
        if ((r = mc_text_encoder_init(&c->text, w, c->cfg->text_causal, e))) return r;
        if (c->text->proj_dim != MC_CLIP_EMBED_DIM)
            return mc_fail(e, MC_E_MODEL, "%s: the text projection gives %d-d embeddings, expected %d", src,
                           c->text->proj_dim, MC_CLIP_EMBED_DIM);
        if (c->text->context != MC_CLIP_CONTEXT)
            return mc_fail(e, MC_E_MODEL, "%s: the text encoder has %d positions, expected %d", src, c->text->context,
                           MC_CLIP_CONTEXT);
        const char *extra = mc_tensor_map_first_unused(w, "text_encoder.");
        if (extra) return mc_fail(e, MC_E_MODEL, "%s: unexpected tensor '%s' for %s", src, extra, c->cfg->model_name);
    }
    if (load_image && load_text) {
        const char *extra = mc_tensor_map_first_unused(w, "");
        if (extra) return mc_fail(e, MC_E_MODEL, "%s: unexpected tensor '%s' for %s", src, extra, c->cfg->model_name);
    }
    return 0;
}

int mc_clip_init(mc_clip *c, mc_tensor_map *weights, mc_arch arch, int load_image, int load_text, int reparam,
                 mc_err *e) {
    memset(c, 0, sizeof *c);
    c->reparam = reparam;
    int r = 0;
    if (arch == MC_ARCH_AUTO && (arch = mc_arch_detect(weights, e)) == MC_ARCH_AUTO) {
        mc_tensor_map_free(weights);
        return e->code;
    }
    c->arch = arch;
    c->cfg = mc_arch_get(arch);
    if (!c->cfg) {
        mc_tensor_map_free(weights);
        return mc_fail(e, MC_E_ARG, "unknown architecture %d", (int)arch);
    }
    /* only the towers asked for are copied (an image-only load does not hold the text tower) */
    const char *image_only[] = {"logit_scale", "image_encoder.", NULL}, *text_only[] = {"logit_scale", "text_encoder.", NULL};
    const char *const *keep = load_image && load_text ? NULL : load_image ? image_only : text_only;
    mc_param_store_init(&c->store);
    r = mc_param_store_from_map(&c->store, weights, keep, e);
    mc_tensor_map_free(weights);
    if (r) return r;
    mc_tensor_map views;
    if ((r = mc_param_store_as_map(&c->store, &views, e))) return r;
    r = bind_towers(c, &views, load_image, load_text, e);
    mc_tensor_map_free(&views);
    if (!r && reparam) r = mc_clip_plan_build(c, e);
    return r;
}

int mc_clip_plan_build(mc_clip *c, mc_err *e) {
    int r = 0;
    if (c->mci) r = mc_mci_reparameterize(c->mci, e);
    if (!r && c->vit) r = mc_vit_reparameterize(c->vit, e);
    if (!r && c->text) r = mc_text_encoder_reparameterize(c->text, e);
    c->planned = !r;
    return r;
}

void mc_clip_free(mc_clip *c) {
    if (!c) return;
    if (c->mci) mc_mci_free(c->mci);
    if (c->vit) mc_vit_free(c->vit);
    if (c->text) mc_text_encoder_free(c->text);
    mc_param_store_free(&c->store);
    memset(c, 0, sizeof *c);
}

int mc_clip_encode_image(mc_clip *c, const float *images, int B, float *out, const mc_trace *trace, mc_err *e) {
    int R = c->cfg->image_size;
    if (c->mci) return mc_mci_forward(c->mci, images, B, R, c->reparam, out, trace, e);
    if (c->vit) return mc_vit_forward(c->vit, images, B, R, c->reparam, out, trace, e);
    return mc_fail(e, MC_E_UNSUPPORTED, "the image tower was not loaded");
}

int mc_clip_encode_text(mc_clip *c, const int32_t *tokens, int N, float *out, const mc_trace *trace, mc_err *e) {
    if (!c->text) return mc_fail(e, MC_E_UNSUPPORTED, "the text tower was not loaded");
    return mc_text_encoder_forward(c->text, tokens, N, c->reparam, out, trace, e);
}

float mc_clip_logit_scale(const mc_clip *c) {
    float s = expf(*c->logit_scale);
    return s > 100.f ? 100.f : s;
}
