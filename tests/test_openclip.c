/* open_clip CLIP ViT-B-16 (the teachers' code path) against shared/golden/teacher_vit: the
 * configuration and parameter names, the bicubic eval preprocessing of the two photos, every
 * trace tensor of image 0 and text 0 and all features, with QuickGELU and with GELU; the config
 * options beyond the teachers'; bad checkpoints and configurations. (Loading the same model from
 * a torch.save file, and a small one from safetensors, is in test_teacher.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/test_util.h"
#include "common/weight_rule.h"
#include "image/image.h"
#include "io/mapped_file.h"
#include "models/openclip.h"
#include "nn/ops.h"
#include "text/tokenizer.h"

#define GOLDEN "golden/teacher_vit/vit_b16.golden.safetensors"
#define PARAMS "golden/teacher_vit/vit_b16.params.tsv"

/* README tolerances: traces rel-L2 <= 1e-4 and max abs <= 1e-3; features rel-L2 <= 1e-4,
 * max abs <= 1e-4, cosine >= 0.99999. */
#define TRACE_REL 1e-4
#define TRACE_ABS 1e-3
#define FEAT_REL 1e-4
#define FEAT_ABS 1e-4
#define COS_MIN 0.99999

typedef struct errs {
    double rel_l2, max_abs;
} errs;

static errs compare(const float *got, const mc_tensor *ref) {
    int64_t n = mc_tensor_numel(ref);
    double d2 = 0, r2 = 0, ma = 0;
    for (int64_t i = 0; i < n; i++) {
        double r = mc_tensor_get_f64(ref, i), d = (double)got[i] - r;
        d2 += d * d;
        r2 += r * r;
        if (!(fabs(d) <= ma)) ma = isnan(d) ? INFINITY : fabs(d);
    }
    return (errs){sqrt(d2 / (r2 > 0 ? r2 : 1)), ma};
}

static void check_tensor(const char *what, const float *got, const mc_tensor *ref, double rel, double abs_tol) {
    errs x = compare(got, ref);
    int ok = x.rel_l2 <= rel && x.max_abs <= abs_tol;
    printf("%-4s %-40s rel-L2 %.2e  max abs %.2e\n", ok ? "ok" : "FAIL", what, x.rel_l2, x.max_abs);
    CHECK(ok, "%s: rel-L2 %.3e (tol %.0e), max abs %.3e (tol %.0e)", what, x.rel_l2, rel, x.max_abs, abs_tol);
}

static void check_features(const char *what, const float *got, const mc_tensor *ref) {
    check_tensor(what, got, ref, FEAT_REL, FEAT_ABS);
    int64_t rows = ref->shape[0], d = ref->shape[1];
    float *r = malloc(sizeof(float) * (size_t)(rows * d));
    mc_tensor_to_f32(ref, r);
    for (int64_t i = 0; i < rows; i++) {
        double cs = mc_test_cosine(got + i * d, r + i * d, d);
        CHECK(cs >= COS_MIN, "%s row %lld: cosine %.9f", what, (long long)i, cs);
    }
    free(r);
}

/* Trace callback: row 0 of each traced tensor against "<prefix><name>" ([T, C] or [B, C]). */
typedef struct trace_ctx {
    const mc_tensor_map *g;
    const char *prefix; /* "quickgelu.image0." */
    const char *batch_prefix; /* "quickgelu.image." for the pooled [B, C] tensors */
    const char *skip;         /* a traced name the golden lacks (the text tower's "embed") */
    int seen;
} trace_ctx;

static void on_trace(void *user, const char *name, const float *data, int ndim, const int64_t *shape) {
    trace_ctx *c = user;
    char key[128];
    if (strcmp(name, "features") == 0) return; /* compared by the caller, whole batch */
    if (c->skip && strcmp(name, c->skip) == 0) return; /* not in the golden */
    int whole = strcmp(name, "pooled") == 0;
    snprintf(key, sizeof key, "%s%s", whole ? c->batch_prefix : c->prefix, name);
    const mc_tensor *ref = mc_tensor_map_find(c->g, key);
    CHECK(ref != NULL, "traced '%s' has no golden tensor %s", name, key);
    if (!ref) return;
    int64_t n = 1;
    for (int i = whole ? 0 : 1; i < ndim; i++) n *= shape[i];
    CHECK(n == mc_tensor_numel(ref), "%s: %lld values traced, golden has %lld", key, (long long)n,
          (long long)mc_tensor_numel(ref));
    if (n != mc_tensor_numel(ref)) return;
    if (whole) check_tensor(key, data, ref, FEAT_REL, FEAT_ABS);
    else check_tensor(key, data, ref, TRACE_REL, TRACE_ABS);
    c->seen++;
}

static void load_weights(mc_tensor_map *w) {
    mc_err e = {0};
    mc_tensor_map_init(w);
    if (mc_weights_from_tsv(mc_test_path(PARAMS), w, NULL, &e)) mc_test_fatal("%s", e.msg);
}

/* A map of views of w's tensors (no buffers, nothing marked used): mc_openclip_init takes its
 * map, so each model gets one of these and the weights are generated once. `extra` (if not
 * NULL) adds a copy of ln_final.bias under that name. */
static void views(const mc_tensor_map *w, const char *extra, mc_tensor_map *out) {
    mc_err e = {0};
    mc_tensor_map_init(out);
    out->source = strdup(w->source ? w->source : "checkpoint");
    for (int i = 0; i < w->count; i++)
        if (mc_tensor_map_add(out, w->items[i].name, &w->items[i].t, &e)) mc_test_fatal("%s", e.msg);
    if (extra && mc_tensor_map_add(out, extra, &mc_test_tensor(w, "ln_final.bias")[0], &e)) mc_test_fatal("%s", e.msg);
}

static mc_oc_cfg builtin(const char *name) {
    mc_oc_cfg c;
    mc_err e = {0};
    if (mc_oc_cfg_builtin(name, &c, &e)) mc_test_fatal("%s", e.msg);
    return c;
}

/* ---- configuration ---- */

static void check_configs(void) {
    mc_oc_cfg l = builtin("ViT-L-14"), lq = builtin("ViT-L-14-quickgelu"), b32 = builtin("ViT-B-32");
    CHECK(l.embed_dim == 768 && l.vision.layers == 24 && l.vision.width == 1024 && l.vision.patch_size == 14 &&
              l.vision.image_size == 224 && l.vision.head_width == 64 && l.vision.mlp_ratio == 4.0 &&
              l.text.width == 768 && l.text.heads == 12 && l.text.layers == 12 && l.text.context_length == 77 &&
              l.text.vocab_size == 49408 && !l.quick_gelu && lq.quick_gelu && l.bicubic &&
              l.mean[0] == 0.48145466f && l.std[2] == 0.27577711f,
          "ViT-L-14 configuration");
    CHECK(b32.vision.patch_size == 32 && b32.embed_dim == 512, "ViT-B-32 configuration");

    /* the golden's own copy of open_clip's ViT-B-16.json parses to the built-in */
    char *text = NULL;
    size_t len = 0;
    mc_err e = {0};
    if (mc_read_file(mc_test_path("golden/teacher_vit/info.json"), 1 << 20, &text, &len, &e)) mc_test_fatal("%s", e.msg);
    mc_json *info = mc_json_parse(text, len, &e);
    if (!info) mc_test_fatal("info.json: %s", e.msg);
    const char *names[2] = {"ViT-B-16", "ViT-L-14"};
    for (int i = 0; i < 2; i++) {
        mc_oc_cfg a, b = builtin(names[i]);
        CHECK(mc_oc_cfg_from_json(mc_json_get(info, names[i]), names[i], &a, &e) == 0, "%s", e.msg);
        snprintf(a.name, sizeof a.name, "%s", names[i]);
        CHECK(memcmp(&a, &b, sizeof a) == 0, "info.json %s differs from the built-in configuration", names[i]);
    }
    mc_json_free(info);
    free(text);

    /* strictness */
    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"{\"embed_dim\": 512, \"vision_cfg\": {\"widht\": 768}, \"text_cfg\": {}}", "'widht'"},
        {"{\"embed_dim\": 512, \"vision_cfg\": {\"timm_model_name\": \"vit\"}, \"text_cfg\": {}}", "timm"},
        {"{\"embed_dim\": 512, \"vision_cfg\": {\"layers\": [3, 4, 6, 3]}, \"text_cfg\": {}}", "ModifiedResNet"},
        {"{\"embed_dim\": 512, \"vision_cfg\": {\"image_size\": [224, 160]}, \"text_cfg\": {}}", "square"},
        {"{\"embed_dim\": 512, \"vision_cfg\": {}, \"text_cfg\": {\"hf_model_name\": \"roberta-base\"}}", "Hugging"},
        {"{\"embed_dim\": 512, \"vision_cfg\": {}, \"text_cfg\": {\"heads\": 7}}", "heads"},
        {"{\"embed_dim\": 512, \"vision_cfg\": {\"act_kwargs\": {\"approximate\": \"tanh\"}}, \"text_cfg\": {}}",
         "act_kwargs"},
        {"{\"embed_dim\": 51.5, \"vision_cfg\": {}, \"text_cfg\": {}}", "embed_dim"},
        {"{\"vision_cfg\": {}, \"text_cfg\": {}}", "needs embed_dim"},
        {"{\"embed_dim\": 512, \"vision_cfg\": {}, \"text_cfg\": {}, \"quick_gelu\": 1}", "quick_gelu"},
        {"{\"embed_dim\": 512, \"vision_cfg\": {}, \"text_cfg\": {}, \"preprocess_cfg\": {\"resize_mode\": "
         "\"squash\"}}",
         "shortest"},
        {"{\"embed_dim\": 512, \"vision_cfg\": {}", "cfg.json"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        mc_oc_cfg c;
        mc_err_clear(&e);
        int r = mc_oc_cfg_parse(bad[i].json, strlen(bad[i].json), "cfg.json", &c, &e);
        CHECK(r < 0 && strstr(e.msg, bad[i].msg) && strstr(e.msg, "cfg.json"), "bad config %zu: %d '%s'", i, r, e.msg);
        printf("     bad config -> %s\n", e.msg);
    }
    /* defaults and the extra features that are implemented */
    const char *ok = "{\"embed_dim\": 256, \"quick_gelu\": true, \"custom_text\": true, \"vision_cfg\": {\"width\": "
                     "128, \"head_width\": 32, \"patch_size\": 8, \"image_size\": 64, \"pool_type\": \"avg\", "
                     "\"norm_kwargs\": {\"eps\": 1e-6}, \"patch_dropout\": 0.5}, \"text_cfg\": {\"proj_bias\": true, "
                     "\"pool_type\": \"last\", \"no_causal_mask\": true}, \"preprocess_cfg\": {\"mean\": [0.5, 0.5, "
                     "0.5], \"std\": [0.5, 0.5, 0.5], \"interpolation\": \"bilinear\"}}";
    mc_oc_cfg c;
    CHECK(mc_oc_cfg_parse(ok, strlen(ok), "ok.json", &c, &e) == 0, "%s", e.msg);
    CHECK(c.vision.width == 128 && c.vision.layers == 12 && c.vision.pool_type == MC_OC_POOL_AVG &&
              c.vision.ln_eps == 1e-6 && c.text.proj_bias && c.text.pool_type == MC_OC_POOL_LAST &&
              c.text.no_causal_mask && c.custom_text && c.quick_gelu && !c.bicubic && c.mean[1] == 0.5f &&
              c.text.width == 512,
          "parsed fields");
    mc_err_clear(&e);
    CHECK(mc_oc_cfg_load("ViT-H-99", &c, &e) == MC_E_ARG && strstr(e.msg, "ViT-L-14"), "unknown name: %s", e.msg);
    mc_err_clear(&e);
    CHECK(mc_oc_cfg_load("/nonexistent/model.json", &c, &e) < 0 && strstr(e.msg, "/nonexistent/model.json"),
          "missing config file: %s", e.msg);
    printf("     missing config -> %s\n", e.msg);
}

/* The names and shapes the binder declares are exactly open_clip's state dict. */
static void check_declared(const mc_tensor_map *W) {
    mc_openclip m;
    mc_err e = {0};
    mc_oc_cfg cfg = builtin("ViT-B-16");
    CHECK(mc_openclip_init_declared(&m, &cfg, &e) == 0, "declare: %s", e.msg);
    const mc_tensor_map w = *W;
    int match = m.weights.count == w.count;
    for (int i = 0; i < w.count && match; i++) {
        const mc_tensor *d = mc_tensor_map_find(&m.weights, w.items[i].name);
        match = d && d->ndim == w.items[i].t.ndim &&
                memcmp(d->shape, w.items[i].t.shape, sizeof(int64_t) * (size_t)d->ndim) == 0;
        if (!match) printf("     declared tensor differs: %s\n", w.items[i].name);
    }
    printf("%-4s declared ViT-B-16 parameters: %d, open_clip state dict: %d\n", match ? "ok" : "FAIL",
           m.weights.count, w.count);
    CHECK(match, "declared names/shapes differ from open_clip's state dict");
    mc_openclip_free(&m);
}

/* ---- golden ---- */

static void run_golden(const mc_tensor_map *W, const mc_tensor_map *g, mc_tokenizer *tok) {
    mc_err e = {0};
    /* preprocessing: the two photos through the bicubic eval transform, exactly */
    const mc_tensor *img = mc_test_tensor(g, "input.images");
    int B = (int)img->shape[0], R = (int)img->shape[2];
    float *images = malloc(sizeof(float) * (size_t)mc_tensor_numel(img));
    mc_oc_cfg cfg = builtin("ViT-B-16-quickgelu");
    const char *files[2] = {"images/astronaut.png", "images/chelsea.png"};
    for (int i = 0; i < B; i++) {
        mc_image im = {0};
        if (mc_image_load(mc_test_path(files[i]), &im, &e)) mc_test_fatal("%s", e.msg);
        CHECK(mc_openclip_preprocess(&cfg, &im, images + (size_t)i * 3 * R * R, &e) == 0, "%s", e.msg);
        mc_image_free(&im);
    }
    float *ref = malloc(sizeof(float) * (size_t)mc_tensor_numel(img));
    mc_tensor_to_f32(img, ref);
    double maxd = 0;
    for (int64_t i = 0; i < mc_tensor_numel(img); i++) maxd = fmax(maxd, fabs((double)images[i] - ref[i]));
    printf("%-4s input.images (bicubic eval transform of %s, %s): max abs diff %.3g\n", maxd == 0 ? "ok" : "FAIL",
           files[0], files[1], maxd);
    CHECK(maxd == 0, "preprocessed images differ from the golden by %.3g", maxd);
    free(ref);

    /* tokens */
    const mc_tensor *tt = mc_test_tensor(g, "input.text_tokens");
    int N = (int)tt->shape[0], T = (int)tt->shape[1];
    int32_t *tokens = malloc(sizeof(int32_t) * (size_t)N * T);
    const char *texts[3] = {"a photo of an astronaut", "a tabby cat with green eyes",
                            "Espresso in a red cup, on a wooden table (top view)!"};
    int same = N == 3;
    for (int i = 0; i < N && same; i++) {
        CHECK(mc_tokenizer_encode(tok, texts[i], strlen(texts[i]), tokens + (size_t)i * T, &e) > 0, "%s", e.msg);
        for (int t = 0; t < T; t++) same &= tokens[(size_t)i * T + t] == (int32_t)mc_tensor_get_f64(tt, i * T + t);
    }
    CHECK(same, "our tokenizer differs from input.text_tokens");

    float *feat = malloc(sizeof(float) * 512 * 3);
    const char *acts[2] = {"quickgelu", "gelu"};
    for (int a = 0; a < 2; a++) {
        mc_tensor_map w;
        views(W, NULL, &w);
        cfg = builtin(a == 0 ? "ViT-B-16-quickgelu" : "ViT-B-16");
        mc_openclip m;
        if (mc_openclip_init(&m, &w, &cfg, 1, 1, &e)) mc_test_fatal("init %s: %s", cfg.name, e.msg);
        CHECK(m.visual->heads == 12 && m.visual->n_tok == 197 && m.text->heads == 8 &&
                  m.visual->blocks[0].ffn_dim == 3072 && m.visual->blocks[0].act == (a == 0 ? MC_ACT_QUICKGELU : MC_ACT_GELU),
              "geometry");
        CHECK(fabsf(m.logit_scale_raw - 2.6592600f) < 1e-6f, "logit_scale %g", m.logit_scale_raw);
        char p0[64], pb[64], key[96];
        snprintf(p0, sizeof p0, "%s.image0.", acts[a]);
        snprintf(pb, sizeof pb, "%s.image.", acts[a]);
        trace_ctx tc = {g, p0, pb, NULL, 0};
        mc_trace tr = {on_trace, &tc};
        double t0 = mc_test_now();
        CHECK(mc_openclip_encode_image(&m, images, B, feat, a == 0 ? &tr : NULL, &e) == 0, "%s", e.msg);
        double t1 = mc_test_now();
        snprintf(key, sizeof key, "%s.image_features", acts[a]);
        check_features(key, feat, mc_test_tensor(g, key));
        if (a == 0) CHECK(tc.seen == 15, "%d image trace tensors compared, want 15", tc.seen);

        snprintf(p0, sizeof p0, "%s.text0.", acts[a]);
        snprintf(pb, sizeof pb, "%s.text.", acts[a]);
        tc = (trace_ctx){g, p0, pb, "embed", 0};
        double t2 = mc_test_now();
        CHECK(mc_openclip_encode_text(&m, tokens, N, feat, a == 0 ? &tr : NULL, &e) == 0, "%s", e.msg);
        double t3 = mc_test_now();
        snprintf(key, sizeof key, "%s.text_features", acts[a]);
        check_features(key, feat, mc_test_tensor(g, key));
        if (a == 0) CHECK(tc.seen == 14, "%d text trace tensors compared, want 14", tc.seen);
        printf("     %s: %d images %.2fs, %d texts %.2fs\n", cfg.name, B, t1 - t0, N, t3 - t2);

        /* an id outside the vocabulary is refused */
        int32_t badtok[77] = {49406, 50000, 49407};
        CHECK(mc_openclip_encode_text(&m, badtok, 1, feat, NULL, &e) == MC_E_ARG && strstr(e.msg, "50000"),
              "token id 50000: %s", e.msg);
        mc_openclip_free(&m);
    }

    free(feat);
    free(tokens);
    free(images);
}

/* ---- bad checkpoints ---- */

static void expect_init_error(const mc_tensor_map *w, const char *extra, const char *cfg_name, const char *what,
                              const char *needle) {
    mc_oc_cfg cfg = builtin(cfg_name);
    mc_openclip m;
    mc_err e = {0};
    mc_tensor_map view;
    views(w, extra, &view);
    int r = mc_openclip_init(&m, &view, &cfg, 1, 1, &e);
    CHECK(r == MC_E_MODEL && strstr(e.msg, needle) != NULL, "%s: returned %d, message '%s' lacks '%s'", what, r, e.msg,
          needle);
    printf("     %-28s -> %s\n", what, e.msg);
    if (r == 0) mc_openclip_free(&m);
    mc_tensor_map_free(&view);
}

static void check_bad_checkpoints(mc_tensor_map *w) {
    mc_named_tensor *t = mc_test_entry(w, "visual.transformer.resblocks.7.mlp.c_fc.bias");
    t->name[0] = 'X';
    expect_init_error(w, NULL, "ViT-B-16", "missing tensor", "'visual.transformer.resblocks.7.mlp.c_fc.bias'");
    t->name[0] = 'v';
    t = mc_test_entry(w, "ln_final.weight");
    t->t.shape[0]--;
    expect_init_error(w, NULL, "ViT-B-16", "mis-shaped tensor", "ln_final.weight");
    t->t.shape[0]++;
    /* ViT-B-16 weights given as ViT-L-14 or ViT-B-32: the first tensor whose shape differs */
    expect_init_error(w, NULL, "ViT-L-14", "ViT-B-16 as ViT-L-14", "visual.class_embedding");
    expect_init_error(w, NULL, "ViT-B-32", "ViT-B-16 as ViT-B-32", "visual.positional_embedding");
    expect_init_error(w, "text_projection_bias", "ViT-B-16", "unexpected tensor", "'text_projection_bias'");
    expect_init_error(w, "visual.head.weight", "ViT-B-16", "unexpected visual tensor", "'visual.head.weight'");
    expect_init_error(w, "visual.transformer.resblocks.12.ln_1.weight", "ViT-B-16", "an extra layer", "12 layers");

    /* a MobileCLIP checkpoint (a tensor of mobileclip_b's) given as an open_clip model */
    mc_tensor_map b;
    mc_err e = {0};
    mc_tensor_map_init(&b);
    if (mc_weights_from_tsv_prefix(mc_test_path("golden/b.params.tsv"), "image_encoder.model.cls_token", &b, NULL, &e))
        mc_test_fatal("%s", e.msg);
    CHECK(b.count == 1, "b.params.tsv: %d cls tensors", b.count);
    mc_oc_cfg cfg = builtin("ViT-L-14");
    mc_openclip m;
    int r = mc_openclip_init(&m, &b, &cfg, 1, 1, &e);
    CHECK(r == MC_E_MODEL && strstr(e.msg, "MobileCLIP"), "MobileCLIP as ViT-L-14: %d %s", r, e.msg);
    printf("     %-28s -> %s\n", "MobileCLIP as ViT-L-14", e.msg);
    mc_tensor_map_free(&b);
}

/* The config options beyond the teachers' (custom_text names, avg pooling with ln_post after
 * it, no ln_pre, a Linear text projection, "last" pooling, no causal mask, eps): names from
 * the declared model, and the pooled features against the pooling done here by hand on the
 * towers' token outputs. */
static void check_variants(void) {
    const char *json = "{\"embed_dim\": 48, \"custom_text\": true, \"vision_cfg\": {\"image_size\": 32, \"layers\": 2, "
                       "\"width\": 64, \"head_width\": 32, \"patch_size\": 16, \"pool_type\": \"avg\", "
                       "\"final_ln_after_pool\": true, \"no_ln_pre\": true, \"norm_kwargs\": {\"eps\": 1e-6}}, "
                       "\"text_cfg\": {\"context_length\": 12, \"vocab_size\": 500, \"width\": 32, \"heads\": 2, "
                       "\"layers\": 1, \"proj_bias\": true, \"pool_type\": \"last\", \"no_causal_mask\": true}}";
    mc_oc_cfg cfg;
    mc_openclip m;
    mc_err e = {0};
    if (mc_oc_cfg_parse(json, strlen(json), "variant.json", &cfg, &e) || mc_openclip_init_declared(&m, &cfg, &e))
        mc_test_fatal("%s", e.msg);
    const char *names[] = {"text.token_embedding.weight", "text.transformer.resblocks.0.attn.in_proj_weight",
                           "text.text_projection.weight", "text.text_projection.bias", "text.ln_final.bias",
                           "visual.ln_post.weight", "logit_scale"};
    int found = 1;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) found &= mc_tensor_map_find(&m.weights, names[i]) != NULL;
    CHECK(found && !mc_tensor_map_find(&m.weights, "visual.ln_pre.weight") &&
              !mc_tensor_map_find(&m.weights, "token_embedding.weight"),
          "variant parameter names");
    for (int i = 0; i < m.weights.count; i++) {
        float *v = (float *)m.weights.items[i].t.data;
        uint64_t h = mc_fnv1a64(m.weights.items[i].name);
        for (int64_t j = 0; j < mc_tensor_numel(&m.weights.items[i].t); j++) v[j] = mc_weight_rule_value(h, j, -0.3, 0.7);
    }
    /* image: features = proj(ln_post(mean of the patch tokens)) */
    float img[2 * 3 * 32 * 32], tokx[2 * 5 * 64], feat[2 * 48], pooled[64];
    for (int i = 0; i < 2 * 3 * 32 * 32; i++) img[i] = (float)((i * 37) % 101) / 50.f - 1.f;
    CHECK(mc_openclip_encode_image(&m, img, 2, feat, NULL, &e) == 0, "%s", e.msg);
    CHECK(mc_oc_vision_tokens(m.visual, img, 2, tokx, NULL, &e) == 0, "%s", e.msg);
    const mc_oc_vision *v = m.visual;
    double worst = 0;
    for (int b = 0; b < 2; b++) {
        for (int c = 0; c < 64; c++) {
            double s = 0;
            for (int t = 1; t < 5; t++) s += tokx[(b * 5 + t) * 64 + c];
            pooled[c] = (float)(s / 4);
        }
        double mu = 0, var = 0;
        for (int c = 0; c < 64; c++) mu += pooled[c] / 64.0;
        for (int c = 0; c < 64; c++) var += (pooled[c] - mu) * (pooled[c] - mu) / 64.0;
        for (int d = 0; d < 48; d++) {
            double y = 0;
            for (int c = 0; c < 64; c++)
                y += ((pooled[c] - mu) / sqrt(var + 1e-6) * v->ln_post_w[c] + v->ln_post_b[c]) * v->proj[c * 48 + d];
            worst = fmax(worst, fabs(y - feat[b * 48 + d]) / fmax(1.0, fabs(y)));
        }
    }
    printf("%-4s avg pooling, ln_post after it, eps 1e-6: max rel err %.2e\n", worst < 1e-5 ? "ok" : "FAIL", worst);
    CHECK(worst < 1e-5, "avg-pooled features differ by %.3e", worst);
    /* text: features = Linear(x[:, -1]) after ln_final */
    int32_t tok[2 * 12] = {1, 7, 499, 3, 0, 0, 0, 0, 0, 0, 0, 0, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 2};
    float tx[2 * 12 * 32];
    CHECK(mc_openclip_encode_text(&m, tok, 2, feat, NULL, &e) == 0, "%s", e.msg);
    CHECK(mc_oc_text_tokens(m.text, tok, 2, tx, NULL, &e) == 0, "%s", e.msg);
    worst = 0;
    for (int n = 0; n < 2; n++) {
        const float *xl = tx + (n * 12 + 11) * 32; /* last position, then ln_final (eps 1e-5) */
        double mu = 0, var = 0, ln[32];
        for (int c = 0; c < 32; c++) mu += xl[c] / 32.0;
        for (int c = 0; c < 32; c++) var += (xl[c] - mu) * (xl[c] - mu) / 32.0;
        for (int c = 0; c < 32; c++) ln[c] = (xl[c] - mu) / sqrt(var + 1e-5) * m.text->ln_w[c] + m.text->ln_b[c];
        for (int d = 0; d < 48; d++) {
            double y = m.text->proj_b[d];
            for (int c = 0; c < 32; c++) y += (double)m.text->proj[d * 32 + c] * ln[c];
            worst = fmax(worst, fabs(y - feat[n * 48 + d]) / fmax(1.0, fabs(y)));
        }
    }
    printf("%-4s text pool 'last', ln_final, Linear projection: max rel err %.2e\n", worst < 1e-5 ? "ok" : "FAIL",
           worst);
    CHECK(worst < 1e-5, "last-pooled text features differ by %.3e", worst);
    /* no causal mask: changing the last token changes the first position's output */
    float tx2[2 * 12 * 32];
    tok[11] = 42;
    CHECK(mc_oc_text_tokens(m.text, tok, 2, tx2, NULL, &e) == 0, "%s", e.msg);
    CHECK(memcmp(tx, tx2, sizeof(float) * 32) != 0, "without the causal mask position 0 must see position 11");
    mc_openclip_free(&m);
}

static void check_quickgelu(void) {
    float x[1000], y[1000];
    for (int i = 0; i < 1000; i++) x[i] = -30.f + 0.06f * (float)i;
    mc_quickgelu_forward(y, x, 1000);
    double worst = 0;
    for (int i = 0; i < 1000; i++) {
        double ref = (double)x[i] / (1.0 + exp(-1.702 * (double)x[i]));
        worst = fmax(worst, fabs(y[i] - ref) / fmax(1.0, fabs(ref)));
    }
    printf("%-4s quickgelu kernel vs double: max err %.2e\n", worst < 1e-6 ? "ok" : "FAIL", worst);
    CHECK(worst < 1e-6, "quickgelu error %.3e", worst);
}

int main(void) {
    check_quickgelu();
    check_configs();
    mc_tensor_map W;
    load_weights(&W);
    check_declared(&W);
    check_variants();
    mc_tensor_map g;
    mc_test_load_golden(GOLDEN, &g, NULL);
    mc_err e = {0};
    mc_tokenizer *tok = mc_tokenizer_load(mc_test_path("vocab/bpe_simple_vocab_16e6.txt.gz"), &e);
    if (!tok) mc_test_fatal("%s", e.msg);
    run_golden(&W, &g, tok);
    check_bad_checkpoints(&W);
    mc_tensor_map_free(&W);
    mc_tokenizer_free(tok);
    mc_tensor_map_free(&g);
    return mc_test_finish("openclip");
}
