/* The low-precision plan of a model (nn/lowp.h): which GEMM weights the folded forward uses,
 * found by running it once in recording mode, then packed to bf16 or int8. */
#include <stdlib.h>
#include <string.h>

#include "models/clip.h"
#include "models/text_encoder.h"

/* What stays f32 in the text transformer (nn/lowp.h says why), measured one weight at a time on
 * the golden captions: the q|k|v projections of every layer (their rounding feeds the softmax),
 * and the attention output projection of the first layer: with int8 it alone cost s1's captions
 * 3.7e-3 of the 4.6e-3 of cosine lost (0.9954 -> 0.9985 kept f32; every later layer's costs
 * < 1e-4), for 1/48 of the tower's GEMM work. (The image towers' attention loses nothing
 * measurable: golden image cosines 0.99999 bf16, 0.9998 int8.) */
static void keep_text_f32(mc_clip *c) {
    mc_lowp_plan *p = &c->lowp;
    int first = 1;
    if (c->text)
        for (int i = 0; i < c->text->n_blocks; i++)
            if (!c->text->blocks[i].is_repmixer) {
                const mc_transformer_layer *l = &c->text->blocks[i].tf;
                size_t C = (size_t)c->text->dim;
                mc_lowp_plan_keep_f32(p, l->qkv_w, 3 * C * C);
                if (first) mc_lowp_plan_keep_f32(p, l->out_w, C * C);
                first = 0;
            }
}

int mc_clip_set_precision(mc_clip *c, mc_precision p, mc_err *e) {
    if ((unsigned)p >= MC_PREC_COUNT) return mc_fail(e, MC_E_ARG, "unknown precision %d", (int)p);
    if (p != MC_PREC_F32 && !(c->reparam && c->planned))
        return mc_fail(e, MC_E_UNSUPPORTED, "precision %s needs the reparameterized inference form "
                                            "(not --training-form)", mc_precision_name(p));
    c->precision = p;
    return mc_clip_lowp_build(c, e);
}

int mc_clip_lowp_build(mc_clip *c, mc_err *e) {
    mc_lowp_plan_free(&c->lowp);
    mc_lowp_plan_init(&c->lowp, c->precision);
    if (c->precision == MC_PREC_F32) return 0;
    int R = c->config.image_size, E = c->config.embed_dim, T = c->config.text.context_length;
    int V = c->config.text.vocab_size;
    float *img = c->mci || c->vit ? calloc((size_t)3 * R * R + (size_t)E, sizeof(float)) : NULL;
    float *out = c->text ? calloc((size_t)E, sizeof(float)) : NULL;
    int32_t *tok = c->text ? calloc((size_t)T, sizeof(int32_t)) : NULL;
    int r = 0;
    if (((c->mci || c->vit) && !img) || (c->text && (!out || !tok))) r = mc_fail(e, MC_E_NOMEM, "out of memory");
    c->lowp.recording = 1;
    /* a blank image and the benchmark's caption shape: start, 18 words, end, padding; the end
     * token is the largest id (EOT pooling takes the argmax) */
    if (!r && img) r = mc_clip_encode_image(c, img, 1, img + (size_t)3 * R * R, NULL, e);
    if (!r && tok && T >= 2 && V >= 4) {
        int n = T < 20 ? T : 20;
        tok[0] = V - 2;
        for (int i = 1; i < n - 1; i++) tok[i] = 1 + i % (V - 3);
        tok[n - 1] = V - 1;
        r = mc_clip_encode_text(c, tok, 1, out, NULL, e);
    }
    c->lowp.recording = 0;
    free(img);
    free(out);
    free(tok);
    if (!r) keep_text_f32(c);
    if (!r) r = mc_lowp_plan_pack(&c->lowp, e);
    if (r) mc_lowp_plan_free(&c->lowp);
    return r;
}
