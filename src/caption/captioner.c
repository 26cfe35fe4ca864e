/* Images to captions (preprocess, CoCa generation, decode); see captioner.h. */
#include "caption/captioner.h"

#include <stdlib.h>
#include <string.h>

#include "caption/caption_text.h"
#include "io/wds.h"

int mc_captioner_load(mc_captioner *c, const char *checkpoint, const char *arch, const char *vocab, mc_err *e) {
    memset(c, 0, sizeof *c);
    mc_oc_cfg cfg;
    int r = mc_oc_cfg_load(arch, &cfg, e);
    if (r) return r;
    if ((r = mc_coca_load(&c->model, checkpoint, &cfg, e))) return r;
    c->tok = vocab ? mc_tokenizer_load(vocab, e) : mc_tokenizer_load_builtin(e);
    if (!c->tok) {
        mc_coca_free(&c->model);
        return e && e->code ? e->code : MC_E_IO;
    }
    mc_caption_params_default(&c->params, &c->model);
    if (c->model.dec.vocab < 49408 && c->model.dec.vocab >= 2)
        c->params.sot = c->model.dec.vocab - 2, c->params.eot = c->model.dec.vocab - 1;
    c->num = 1;
    return 0;
}

void mc_captioner_free(mc_captioner *c) {
    if (!c) return;
    mc_coca_free(&c->model);
    mc_tokenizer_free(c->tok);
    memset(c, 0, sizeof *c);
}

int mc_captioner_run(mc_captioner *c, const mc_image *images, int B, uint64_t first_index, char **captions, mc_err *e) {
    const mc_coca *m = &c->model;
    int R = m->clip.cfg.vision.image_size, T = m->n_img_tok, D = m->embed_dim, S = c->params.seq_len, N = c->num;
    if (B < 1 || N < 1) return mc_fail(e, MC_E_ARG, "caption: %d images, %d captions each", B, N);
    float *px = malloc(sizeof(float) * (size_t)B * 3 * R * R);
    float *tok = malloc(sizeof(float) * (size_t)B * T * D);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)B * (S > 0 ? S : 1));
    uint64_t *stream = malloc(sizeof(uint64_t) * (size_t)B);
    int r = 0;
    if (!px || !tok || !ids || !stream) r = mc_fail(e, MC_E_NOMEM, "caption: out of memory for %d images", B);
    for (int b = 0; !r && b < B; b++) r = mc_openclip_preprocess(&m->clip.cfg, &images[b], px + (size_t)b * 3 * R * R, e);
    if (!r) r = mc_coca_encode_image(m, px, B, NULL, tok, e);
    memset(captions, 0, sizeof(char *) * (size_t)B * N);
    for (int k = 0; !r && k < N; k++) {
        for (int b = 0; b < B; b++) stream[b] = (first_index + (uint64_t)b) * (uint64_t)N + (uint64_t)k;
        if ((r = mc_coca_generate(m, tok, B, &c->params, stream, ids, e))) break;
        for (int b = 0; !r && b < B; b++)
            r = mc_caption_text(c->tok, ids + (size_t)b * S, S, &captions[(size_t)b * N + k], e);
    }
    if (r)
        for (int i = 0; i < B * N; i++) free(captions[i]), captions[i] = NULL;
    free(px), free(tok), free(ids), free(stream);
    return r;
}

/* One batch of decoded images: captions, then emit per sample; frees images and keys. */
static int shard_batch(mc_captioner *c, mc_image *ims, char **keys, int n, uint64_t *done, const mc_caption_sink *sink,
                       mc_err *e) {
    if (!n) return 0;
    char **caps = calloc((size_t)n * c->num, sizeof *caps);
    int r = caps ? mc_captioner_run(c, ims, n, *done, caps, e) : mc_fail(e, MC_E_NOMEM, "caption: out of memory");
    for (int i = 0; i < n; i++) {
        if (!r) r = sink->emit(sink->user, keys[i], caps + (size_t)i * c->num, c->num, e);
        for (int k = 0; caps && k < c->num; k++) free(caps[(size_t)i * c->num + k]);
        mc_image_free(&ims[i]);
        free(keys[i]);
    }
    free(caps);
    *done += (uint64_t)n;
    if (!r && sink->progress) sink->progress(sink->user, (long long)*done);
    return r;
}

int mc_captioner_run_shards(mc_captioner *c, const char *const *paths, int n, int batch, const mc_caption_sink *sink,
                            mc_err *e) {
    static const char *const exts[] = {"jpg", "jpeg", "png", "webp"};
    if (batch < 1) return mc_fail(e, MC_E_ARG, "caption: batch %d", batch);
    mc_image *ims = calloc((size_t)batch, sizeof *ims);
    char **keys = calloc((size_t)batch, sizeof *keys);
    mc_wds_reader rd;
    int r = !ims || !keys ? mc_fail(e, MC_E_NOMEM, "caption: out of memory") : mc_wds_open(&rd, paths, n, NULL, e);
    if (r) {
        free(ims), free(keys);
        return r;
    }
    uint64_t done = 0;
    int m = 0;
    for (;;) {
        mc_wds_sample s;
        mc_err se = {0};
        int k = mc_wds_next(&rd, &s, &se);
        if (k == 0) break;
        const mc_wds_member *img = NULL;
        for (size_t x = 0; k > 0 && !img && x < sizeof exts / sizeof *exts; x++) img = mc_wds_sample_find(&s, exts[x]);
        if (k > 0 && !img) k = mc_fail(&se, MC_E_FORMAT, "%s: sample '%s' has no image", s.shard, s.key);
        if (k > 0 && !(k = mc_image_decode(img->data, img->size, s.key, &ims[m], &se))) {
            if (!(keys[m] = strdup(s.key))) {
                mc_image_free(&ims[m]);
                r = mc_fail(e, MC_E_NOMEM, "caption: out of memory");
                break;
            }
            if (++m == batch) {
                r = shard_batch(c, ims, keys, m, &done, sink, e); /* frees the batch, even on failure */
                m = 0;
                if (r) break;
            }
        } else if (sink->skip) {
            sink->skip(sink->user, se.msg);
        }
    }
    if (!r) r = shard_batch(c, ims, keys, m, &done, sink, e);
    else
        for (int i = 0; i < m; i++) mc_image_free(&ims[i]), free(keys[i]);
    mc_wds_close(&rd);
    free(ims), free(keys);
    return r;
}
