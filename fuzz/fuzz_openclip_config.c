/* fuzz_openclip_config.c - libFuzzer target for the open_clip model config reader
 * (mc_oc_cfg_parse): JSON, then the strict schema checks. A refused input must say why;
 * an accepted one must describe a buildable model (positive sizes, heads dividing widths).
 *
 * Run: build-fuzz/fuzz_openclip_config fuzz/seeds/openclip_config -max_total_time=60
 */
#include <stdint.h>
#include <stdlib.h>

#include "models/openclip_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mc_oc_cfg cfg;
    mc_err e = {0};
    int r = mc_oc_cfg_parse((const char *)data, size, "fuzz.json", &cfg, &e);
    if (r) {
        if (!e.msg[0] || r > 0) abort();
        return 0;
    }
    const mc_oc_vision_cfg *v = &cfg.vision;
    const mc_oc_text_cfg *t = &cfg.text;
    if (cfg.embed_dim < 1 || v->width < 1 || v->head_width < 1 || v->width % v->head_width || v->layers < 1 ||
        v->patch_size < 1 || v->image_size < v->patch_size || !(v->mlp_ratio > 0) || t->width < 1 || t->heads < 1 ||
        t->width % t->heads || t->layers < 1 || t->context_length < 1 || t->vocab_size < 1 || !(cfg.std[0] > 0))
        abort();
    /* CoCa: a decoder that can cross-attend the pooled image tokens */
    if (cfg.has_multimodal && (cfg.mm.width != cfg.embed_dim || cfg.mm.heads < 1 || cfg.mm.width % cfg.mm.heads ||
                               cfg.mm.layers < 1 || cfg.mm.context_length < 1))
        abort();
    if (v->attentional_pool && (v->attn_pooler_heads < 1 || cfg.embed_dim % v->attn_pooler_heads ||
                                v->attn_pooler_queries < 1))
        abort();
    return 0;
}
