/* CoCa captioner (open_clip 7260a46 coca_model.py) against tests/data/coca (written by
 * tools/reference/gen_coca_ref.py; weights by the weight rule from params.tsv): image features
 * and the decoder's image tokens, text features with the CLS token and its padding mask,
 * teacher-forced logits through the KV-cached decoder, the CoCa loss, and every greedy and
 * grouped beam-search token sequence exactly; the contrastive half loaded as a CLIP model;
 * seeded sampling independent of threads and batching; bad checkpoints and configurations. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caption/generate.h"
#include "common/test_util.h"
#include "common/weight_rule.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "models/coca.h"

#define REL 1e-4
#define VOCAB 64
#define SOT 62
#define EOT 63

static const char *data(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/coca/%s", MC_TEST_DATA_DIR, name);
    return buf[k];
}

static void load_weights(mc_tensor_map *w) {
    mc_err e = {0};
    mc_tensor_map_init(w);
    if (mc_weights_from_tsv(data("params.tsv"), w, NULL, &e)) mc_test_fatal("weights: %s", e.msg);
}

static float *f32_of(const mc_tensor *t) {
    float *v = malloc(sizeof(float) * (size_t)mc_tensor_numel(t));
    mc_tensor_to_f32(t, v);
    return v;
}

static double num(const mc_json *o, const char *key, double dflt) {
    const mc_json *v = mc_json_get(o, key);
    return v && v->type == MC_JSON_NUMBER ? v->number : dflt;
}

/* Every gen.<name> sequence; the generate() keyword arguments are the golden's metadata
 * ("cases"), absent ones take generate()'s defaults. */
static void check_generation(const mc_coca *m, const float *img_tok, const mc_tensor_map *g, const mc_json *header) {
    const mc_json *meta = mc_json_get(header, "__metadata__"), *cs = meta ? mc_json_get(meta, "cases") : NULL;
    mc_err e = {0};
    mc_json *cases = cs && cs->type == MC_JSON_STRING ? mc_json_parse(cs->str, strlen(cs->str), &e) : NULL;
    if (!cases || cases->type != MC_JSON_OBJECT) mc_test_fatal("golden metadata: no generation cases");
    CHECK(cases->count >= 14, "only %d generation cases", cases->count);
    for (int c = 0; c < cases->count; c++) {
        const mc_json *k = &cases->items[c];
        const mc_json *type = mc_json_get(k, "generation_type");
        mc_caption_params p;
        mc_caption_params_default(&p, m);
        p.method = type && !strcmp(type->str, "beam_search") ? MC_CAPTION_BEAM : MC_CAPTION_TOP_K;
        p.top_k = (int)num(k, "top_k", 1);
        p.seq_len = (int)num(k, "seq_len", 30);
        p.min_seq_len = (int)num(k, "min_seq_len", 5);
        p.repetition_penalty = (float)num(k, "repetition_penalty", 1);
        p.num_beams = (int)num(k, "num_beams", 6);
        p.num_beam_groups = (int)num(k, "num_beam_groups", 3);
        p.sot = SOT;
        p.eot = (int)num(k, "eos_token_id", EOT);
        char name[96];
        snprintf(name, sizeof name, "gen.%s", cases->keys[c]);
        const mc_tensor *ref = mc_test_tensor(g, name);
        int B = (int)ref->shape[0], L = (int)ref->shape[1];
        int32_t *out = malloc(sizeof(int32_t) * (size_t)B * p.seq_len);
        int r = mc_coca_generate(m, img_tok, B, &p, NULL, out, &e);
        CHECK(r == 0, "%s: %s", name, e.msg);
        int bad = 0;
        for (int b = 0; !r && b < B; b++)
            for (int i = 0; i < p.seq_len; i++) {
                /* torch's rows are cut to the batch's longest without fixed_output_length: the rest is pad */
                int want = i < L ? (int)mc_tensor_get_f64(ref, (int64_t)b * L + i) : p.pad;
                if (out[(size_t)b * p.seq_len + i] != want && !bad++)
                    fprintf(stderr, "%s image %d position %d: %d, expected %d\n", name, b, i,
                            (int)out[(size_t)b * p.seq_len + i], want);
            }
        printf("%-4s %-22s %d x %d tokens\n", bad ? "FAIL" : "ok", name, B, L);
        CHECK(!r && !bad, "%s: %d token(s) differ", name, bad);
        free(out);
    }
    mc_json_free(cases);
}

/* Same seed, same captions: 1 or 2 threads, all images in one batch or one at a time. */
static void check_seeded(const mc_coca *m, const float *img_tok, int B) {
    mc_caption_params p;
    mc_caption_params_default(&p, m);
    p.method = MC_CAPTION_TOP_P;
    p.top_p = 0.9f;
    p.sot = SOT;
    p.eot = EOT;
    p.seed = 1234;
    int S = p.seq_len, T = m->n_img_tok, D = m->embed_dim;
    int32_t *a = malloc(sizeof(int32_t) * (size_t)B * S * 3);
    int32_t *b = a + (size_t)B * S, *c = b + (size_t)B * S;
    mc_err e = {0};
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    int r = mc_coca_generate(m, img_tok, B, &p, NULL, a, &e);
    omp_set_num_threads(2);
    r |= mc_coca_generate(m, img_tok, B, &p, NULL, b, &e);
    for (int i = 0; i < B; i++) {
        uint64_t stream = (uint64_t)i;
        r |= mc_coca_generate(m, img_tok + (size_t)i * T * D, 1, &p, &stream, c + (size_t)i * S, &e);
    }
    omp_set_num_threads(saved);
    CHECK(r == 0, "seeded top_p: %s", e.msg);
    CHECK(!memcmp(a, b, sizeof(int32_t) * (size_t)B * S), "top_p with seed 1234 differs between 1 and 2 threads");
    CHECK(!memcmp(a, c, sizeof(int32_t) * (size_t)B * S), "top_p with seed 1234 differs between batch and single");
    p.seed = 1235;
    r = mc_coca_generate(m, img_tok, B, &p, NULL, b, &e);
    CHECK(r == 0 && memcmp(a, b, sizeof(int32_t) * (size_t)B * S), "top_p: seeds 1234 and 1235 give the same captions");
    for (int i = 0; i < B; i++) CHECK(a[(size_t)i * S] == SOT, "top_p row %d does not start with sot", i);
    printf("ok   seeded top_p: same tokens for 1/2 threads and batch/single, other seed differs\n");
    free(a);
}

/* The built-in full-size configurations bind exactly open_clip's state dict: every name and shape
 * of CoCa(**model_configs/NAME.json).state_dict() (NAME.names.tsv), nothing else. */
static void check_full_names(const char *name) {
    mc_err e = {0};
    mc_oc_cfg cfg;
    mc_coca m;
    if (mc_oc_cfg_builtin(name, &cfg, &e) || mc_coca_init_declared(&m, &cfg, &e)) {
        CHECK(0, "%s: %s", name, e.msg);
        return;
    }
    char file[64];
    snprintf(file, sizeof file, "%s.names.tsv", name);
    FILE *f = fopen(data(file), "r");
    if (!f) mc_test_fatal("%s: cannot open", data(file));
    char line[512];
    int n = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = 0;
        n++;
        const mc_tensor *t = mc_tensor_map_find(&m.clip.weights, line);
        char shape[128] = "", *p = shape;
        for (int d = 0; t && d < t->ndim; d++) p += snprintf(p, sizeof shape - (size_t)(p - shape), d ? ",%lld" : "%lld",
                                                         (long long)t->shape[d]);
        tab[strcspn(tab + 1, "\n") + 1] = 0;
        if (!t || strcmp(shape, tab + 1)) {
            if (!bad++) fprintf(stderr, "%s: '%s' [%s]: %s [%s]\n", name, line, tab + 1, t ? "declared as" : "missing", shape);
        }
    }
    fclose(f);
    printf("%-4s %s: %d open_clip tensors, %d declared\n", bad || n != m.clip.weights.count ? "FAIL" : "ok", name, n,
           m.clip.weights.count);
    CHECK(!bad && n == m.clip.weights.count, "%s: %d of %d names/shapes differ, %d declared", name, bad, n,
          m.clip.weights.count);
    mc_coca_free(&m);
}

static void check_bad(const mc_oc_cfg *cfg) {
    mc_err e = {0};
    mc_coca m;
    mc_tensor_map w;

    /* a mis-shaped tensor is named with both shapes */
    load_weights(&w);
    mc_named_tensor *t = mc_test_entry(&w, "text_decoder.cross_attn.1.ln_1_kv.weight");
    t->t.shape[0] = 32;
    int r = mc_coca_init(&m, &w, cfg, &e);
    CHECK(r != 0 && strstr(e.msg, "text_decoder.cross_attn.1.ln_1_kv.weight"), "wrong shape: '%s'", e.msg);
    printf("ok   wrong shape: %s\n", e.msg);

    /* the contrastive half alone (a CLIP checkpoint) is not a captioner */
    load_weights(&w);
    for (int i = 0; i < w.count; i++)
        if (!strncmp(w.items[i].name, "text_decoder.", 13)) w.items[i].name[0] = 'X';
    e = (mc_err){0};
    r = mc_coca_init(&m, &w, cfg, &e);
    CHECK(r != 0 && strstr(e.msg, "CLIP checkpoint"), "CLIP as captioner: '%s'", e.msg);
    printf("ok   CLIP as captioner: %s\n", e.msg);

    /* a CLIP configuration is not a CoCa one */
    mc_oc_cfg clip;
    CHECK(mc_oc_cfg_builtin("ViT-B-32", &clip, &e) == 0, "ViT-B-32: %s", e.msg);
    load_weights(&w);
    e = (mc_err){0};
    r = mc_coca_init(&m, &w, &clip, &e);
    CHECK(r != 0 && strstr(e.msg, "not a CoCa configuration"), "CLIP config: '%s'", e.msg);

    /* an extra decoder layer */
    load_weights(&w);
    mc_tensor extra = *mc_test_tensor(&w, "text_decoder.resblocks.0.ln_1.weight");
    mc_tensor_map_add(&w, "text_decoder.resblocks.2.ln_1.weight", &extra, &e);
    e = (mc_err){0};
    r = mc_coca_init(&m, &w, cfg, &e);
    CHECK(r != 0 && strstr(e.msg, "text_decoder.resblocks.2."), "extra layer: '%s'", e.msg);

    /* the built-in configurations parse and are CoCa */
    const char *names[] = {"coca_ViT-B-32", "coca_ViT-L-14"};
    for (int i = 0; i < 2; i++) {
        mc_oc_cfg c;
        r = mc_oc_cfg_builtin(names[i], &c, &e);
        CHECK(r == 0 && c.has_multimodal && c.vision.attentional_pool && c.text.embed_cls && c.mm.width == c.embed_dim &&
                  c.text.context_length == 76 && c.mm.layers == 12,
              "%s: %s", names[i], e.msg);
    }
    /* a multimodal width other than embed_dim cannot cross-attend */
    const char *bad = "{\"embed_dim\": 64, \"vision_cfg\": {\"attentional_pool\": true}, \"text_cfg\": {\"embed_cls\": true},"
                      " \"multimodal_cfg\": {\"width\": 32, \"heads\": 4}}";
    mc_oc_cfg c;
    r = mc_oc_cfg_parse(bad, strlen(bad), "bad.json", &c, &e);
    CHECK(r != 0 && strstr(e.msg, "multimodal_cfg"), "mm width: '%s'", e.msg);
}

int main(void) {
    mc_err e = {0};
    mc_oc_cfg cfg;
    if (mc_oc_cfg_load(data("config.json"), &cfg, &e)) mc_test_fatal("config: %s", e.msg);
    mc_tensor_map g;
    mc_json *header = NULL;
    mc_tensor_map_init(&g);
    if (mc_safetensors_load(data("golden.safetensors"), &g, &header, &e)) mc_test_fatal("golden data: %s", e.msg);

    mc_tensor_map w;
    load_weights(&w);
    mc_coca m;
    if (mc_coca_init(&m, &w, &cfg, &e)) mc_test_fatal("init: %s", e.msg);
    CHECK(m.n_img_tok == 8 && m.dec.vocab == VOCAB, "image tokens %d, vocab %d", m.n_img_tok, m.dec.vocab);

    const mc_tensor *ti = mc_test_tensor(&g, "input.images"), *tt = mc_test_tensor(&g, "input.text");
    int B = (int)ti->shape[0], N = (int)tt->shape[0], L = (int)tt->shape[1], D = m.embed_dim, T = m.n_img_tok;
    float *images = f32_of(ti);
    int32_t *text = malloc(sizeof(int32_t) * (size_t)N * L);
    for (int i = 0; i < N * L; i++) text[i] = (int32_t)mc_tensor_get_f64(tt, i);

    /* contrastive half and the decoder's image tokens */
    float *fi = malloc(sizeof(float) * (size_t)B * D), *tok = malloc(sizeof(float) * (size_t)B * T * D);
    float *ft = malloc(sizeof(float) * (size_t)N * D);
    CHECK(mc_coca_encode_image(&m, images, B, fi, tok, &e) == 0, "encode_image: %s", e.msg);
    CHECK(mc_coca_encode_text(&m, text, N, ft, &e) == 0, "encode_text: %s", e.msg);
    mc_test_compare("image_features", fi, mc_test_tensor(&g, "image_features"), REL);
    mc_test_compare("image_tokens", tok, mc_test_tensor(&g, "image_tokens"), REL);
    mc_test_compare("text_features", ft, mc_test_tensor(&g, "text_features"), REL);

    /* teacher forcing: text[:, :-1] of pair n over image n */
    int idx[2] = {0, 1}, V = m.dec.vocab;
    int32_t *prefix = malloc(sizeof(int32_t) * (size_t)N * (L - 1));
    for (int n = 0; n < N; n++) memcpy(prefix + (size_t)n * (L - 1), text + (size_t)n * L, sizeof(int32_t) * (L - 1));
    float *logits = malloc(sizeof(float) * (size_t)N * (L - 1) * V);
    CHECK(mc_coca_logits(&m, tok, B, idx, prefix, N, L - 1, logits, &e) == 0, "logits: %s", e.msg);
    mc_test_compare("logits (KV-cached, teacher-forced)", logits, mc_test_tensor(&g, "logits"), REL);

    double clip_l = 0, cap_l = 0;
    CHECK(mc_coca_loss(&m, images, text, N, 1.0, 2.0, &clip_l, &cap_l, &e) == 0, "loss: %s", e.msg);
    double rc = mc_tensor_get_f64(mc_test_tensor(&g, "loss.clip"), 0),
           rp = mc_tensor_get_f64(mc_test_tensor(&g, "loss.caption"), 0);
    printf("%-4s loss clip %.7f (ref %.7f) caption %.7f (ref %.7f)\n",
           fabs(clip_l - rc) <= REL * fabs(rc) && fabs(cap_l - rp) <= REL * fabs(rp) ? "ok" : "FAIL", clip_l, rc, cap_l,
           rp);
    CHECK(fabs(clip_l - rc) <= REL * fabs(rc), "clip loss %.8f vs %.8f", clip_l, rc);
    CHECK(fabs(cap_l - rp) <= REL * fabs(rp), "caption loss %.8f vs %.8f", cap_l, rp);

    check_generation(&m, tok, &g, header);
    check_seeded(&m, tok, B);

    /* the contrastive half as a CLIP model (teachers): same features, the decoder ignored */
    mc_openclip clip;
    load_weights(&w);
    CHECK(mc_openclip_init(&clip, &w, &cfg, 1, 1, &e) == 0, "CoCa as CLIP: %s", e.msg);
    float *fc = malloc(sizeof(float) * (size_t)B * D);
    CHECK(mc_openclip_encode_image(&clip, images, B, fc, NULL, &e) == 0, "CLIP encode_image: %s", e.msg);
    mc_test_compare("image_features (as CLIP)", fc, mc_test_tensor(&g, "image_features"), REL);
    CHECK(mc_openclip_encode_text(&clip, text, N, fc, NULL, &e) == 0, "CLIP encode_text: %s", e.msg);
    mc_test_compare("text_features (as CLIP)", fc, mc_test_tensor(&g, "text_features"), REL);
    mc_openclip_free(&clip);

    check_bad(&cfg);
    check_full_names("coca_ViT-B-32");
    check_full_names("coca_ViT-L-14");

    free(images), free(text), free(fi), free(tok), free(ft), free(prefix), free(logits), free(fc);
    mc_coca_free(&m);
    mc_tensor_map_free(&g);
    mc_json_free(header);
    return mc_test_finish("coca");
}
