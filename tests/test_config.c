/* Model configurations (src/models/config.h) and the declare mode of the binders:
 *  - the reference's mobileclip_{s0,s1,s2,b}.json (tests/data/configs) parse into exactly the
 *    built-in configurations, and every configuration survives write -> parse;
 *  - declaring a built-in configuration (no checkpoint) gives exactly the tensors, shapes and
 *    dtypes of the reference's state dict (golden/<A>.params.tsv), and S0's no-weight-decay set
 *    equals golden/train/inputs.json's list;
 *  - a small custom configuration (tiny_mci.json: a 3-stage MCi with RepCPE + attention, a
 *    1-layer MCt text tower, 16-token context, 64-d embedding) declares, fills by the weight
 *    rule, runs in training and reparameterized form with agreeing outputs, and loads through the public
 *    API with --config semantics (embedding width, context length, checkpoint round trip);
 *  - bad configurations fail with messages naming the key and the problem. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/test_util.h"
#include "common/weight_rule.h"
#include "mobileclip.h"
#include "models/clip.h"
#include "models/config.h"

static const char *data_path(const char *rel) {
    static char buf[4][1024];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, sizeof buf[0], "%s/configs/%s", MC_TEST_DATA_DIR, rel);
    return b;
}

static void test_builtins(void) {
    static const char *files[4] = {"mobileclip_s0.json", "mobileclip_s1.json", "mobileclip_s2.json", "mobileclip_b.json"};
    for (int a = 0; a < 4; a++) {
        mc_clip_config ref, parsed, again;
        mc_err e = {0};
        if (mc_clip_config_builtin(a, &ref, &e)) mc_test_fatal("%s", e.msg);
        int r = mc_clip_config_load(data_path(files[a]), &parsed, &e);
        CHECK(r == 0, "%s: %s", files[a], e.msg);
        int same = !r && mc_clip_config_equal(&ref, &parsed);
        printf("%-4s %s parses into the built-in %s\n", same ? "ok" : "FAIL", files[a], ref.name);
        CHECK(same, "%s differs from the built-in configuration", files[a]);
        CHECK(!strcmp(parsed.name, ref.name), "name %s", parsed.name);
        /* write -> parse */
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        CHECK(mc_clip_config_write(&ref, f) == 0, "write");
        fclose(f);
        CHECK(mc_clip_config_parse(buf, len, "written.json", &again, &e) == 0 && mc_clip_config_equal(&ref, &again),
              "%s: written configuration does not parse back: %s", ref.name, e.msg);
        free(buf);
    }
    mc_clip_config x;
    mc_err e = {0};
    CHECK(mc_clip_config_builtin(4, &x, &e) == MC_E_ARG, "no fifth built-in");
}

/* Declaring a built-in configuration reproduces the reference state dict's layout. */
static void test_declare(const char *arch, int a) {
    mc_clip_config cfg;
    mc_err e = {0};
    if (mc_clip_config_builtin(a, &cfg, &e)) mc_test_fatal("%s", e.msg);
    mc_clip c;
    if (mc_clip_init_config(&c, &cfg, NULL, 1, 1, 0, &e)) mc_test_fatal("%s declare: %s", arch, e.msg);
    char rel[64];
    snprintf(rel, sizeof rel, "golden/%s.params.tsv", arch);
    FILE *f = fopen(mc_test_path(rel), "r");
    if (!f) mc_test_fatal("missing %s", rel);
    char line[1024];
    int n = 0, bad = 0;
    if (!fgets(line, sizeof line, f)) mc_test_fatal("%s: empty", rel);
    while (fgets(line, sizeof line, f)) {
        char *rest = line, *name = strsep(&rest, "\t"), *dtype = strsep(&rest, "\t"), *shape = strsep(&rest, "\t");
        if (!name || !dtype || !shape) continue;
        n++;
        const mc_param *p = mc_param_store_find(&c.store, name);
        int ok = p != NULL;
        if (ok && !strcmp(dtype, "i64")) ok = (p->flags & MC_PARAM_COUNTER) && p->ndim == 0;
        else if (ok) {
            int64_t dims[8];
            int nd = 0;
            if (*shape) /* empty: a scalar */
                for (char *s2 = NULL, *d = strtok_r(shape, ",", &s2); d && nd < 8; d = strtok_r(NULL, ",", &s2))
                    dims[nd++] = atoll(d);
            ok = !(p->flags & MC_PARAM_COUNTER) && p->ndim == nd;
            for (int i = 0; ok && i < nd; i++) ok = p->shape[i] == dims[i];
        }
        if (!ok && bad++ < 5) printf("     %s: '%s' is %s\n", arch, name, p ? "declared with another shape" : "not declared");
    }
    fclose(f);
    printf("%-4s %s declared from its configuration: %d entries, reference state dict %d tensors, %d differ\n",
           !bad && n == c.store.count ? "ok" : "FAIL", arch, c.store.count, n, bad);
    CHECK(!bad && n == c.store.count, "%s: declared layout differs from the reference", arch);

    if (a == 0) { /* the optimizer's no-decay set, built from the configuration */
        mc_json *in = mc_test_load_json("golden/train/inputs.json");
        const mc_json *list = mc_json_get(in, "no_weight_decay_params");
        int ours = 0, match = 0;
        for (int i = 0; i < c.store.count; i++) {
            const mc_param *p = &c.store.params[i];
            if ((p->flags & MC_PARAM_BUFFER) || !(p->flags & MC_PARAM_NO_DECAY)) continue;
            ours++;
            for (int k = 0; k < list->count; k++) match += !strcmp(list->items[k].str, p->name);
        }
        printf("%-4s s0 no-weight-decay set from the configuration: %d, reference %d, in common %d\n",
               ours == list->count && match == ours ? "ok" : "FAIL", ours, list->count, match);
        CHECK(ours == list->count && match == ours, "no-decay set differs");
        mc_json_free(in);
    }
    mc_clip_free(&c);
}

static double max_rel(const float *a, const float *b, size_t n) {
    double m = 0, d = 0;
    for (size_t i = 0; i < n; i++) {
        m = fmax(m, fabs(b[i]));
        d = fmax(d, fabs((double)a[i] - b[i]));
        if (!isfinite(a[i]) || !isfinite(b[i])) d = INFINITY;
    }
    return d / (m > 0 ? m : 1);
}

static void test_tiny(void) {
    mc_clip_config cfg;
    mc_err e = {0};
    if (mc_clip_config_load(data_path("tiny_mci.json"), &cfg, &e)) mc_test_fatal("%s", e.msg);
    CHECK(!strcmp(cfg.name, "tiny_mci") && cfg.embed_dim == 64 && cfg.text.context_length == 16 &&
              cfg.mci.nstages == 3 && cfg.mci.attention[2] && cfg.mci.repcpe[2] && cfg.mci.mlp_ratios[2] == 2.5,
          "tiny configuration fields");
    mc_clip c;
    if (mc_clip_init_config(&c, &cfg, NULL, 1, 1, 0, &e)) mc_test_fatal("tiny declare: %s", e.msg);
    CHECK(c.arch == MC_ARCH_AUTO && c.cfg == NULL, "a custom configuration is no official variant");
    /* layout as FastViT builds it: stage 0, PatchEmbed, stage 1, PatchEmbed(+SE), RepCPE, attention stage */
    static const struct { const char *name; int ndim; int64_t shape[4]; } want[] = {
        {"image_encoder.model.network.0.0.convffn.fc1.weight", 4, {32, 16, 1, 1}},
        {"image_encoder.model.network.1.proj.0.lkb_origin.conv.weight", 4, {32, 1, 7, 7}},
        {"image_encoder.model.network.2.0.convffn.fc1.weight", 4, {96, 32, 1, 1}},
        {"image_encoder.model.network.3.proj.0.se.fc1.weight", 4, {16, 64, 1, 1}},
        {"image_encoder.model.network.4.pe.weight", 4, {64, 1, 7, 7}},
        {"image_encoder.model.network.5.1.token_mixer.qkv.weight", 2, {192, 64}},
        {"image_encoder.model.network.5.1.convffn.fc2.weight", 4, {64, 160, 1, 1}},
        {"image_encoder.model.conv_exp.se.reduce.weight", 4, {8, 128, 1, 1}},
        {"image_encoder.model.head.proj", 2, {128, 64}},
        {"text_encoder.positional_embedding.pos_embed.pos_embed", 4, {1, 1, 16, 64}},
        {"text_encoder.transformer.1.pre_norm_ffn.1.weight", 2, {128, 64}},
        {"text_encoder.transformer.2.token_mixer.mixer.rbr_conv.0.conv.weight", 4, {64, 1, 1, 11}},
        {"text_encoder.projection_layer", 2, {64, 64}},
        {"image_encoder.model.network.2.0.token_mixer.mixer.rbr_skip.num_batches_tracked", 0, {0}},
    };
    int bad = 0;
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
        const mc_param *p = mc_param_store_find(&c.store, want[k].name);
        int ok = p && p->ndim == want[k].ndim;
        for (int d = 0; ok && d < p->ndim; d++) ok = p->shape[d] == want[k].shape[d];
        if (!ok) printf("     %s: %s\n", want[k].name, p ? "other shape" : "not declared");
        bad += !ok;
    }
    CHECK(!bad, "%d tiny tensors not as FastViT declares them", bad);
    CHECK(!mc_param_store_find(&c.store, "image_encoder.model.network.6.0.layer_scale_1"), "no element after the last stage");
    printf("%-4s tiny: %d tensors declared, %zu floats\n", bad ? "FAIL" : "ok", c.store.count, c.store.total);

    /* weights by the rule, plan, both forms */
    mc_weight_rule_fill_store(&c.store);
    if (mc_clip_plan_build(&c, &e)) mc_test_fatal("plan: %s", e.msg);
    enum { B = 2, R = 64, T = 16, E = 64 };
    static float img[B * 3 * R * R], out[2][B * E], txt[2][B * E];
    for (int b = 0; b < B; b++) /* smooth, different per image (noise would average out in the stem) */
        for (int ch = 0; ch < 3; ch++)
            for (int y = 0; y < R; y++)
                for (int x = 0; x < R; x++)
                    img[((b * 3 + ch) * R + y) * R + x] = 0.5f + 0.5f * sinf(0.11f * (b + 1) * x + 0.07f * (2 - b) * y + ch);
    int32_t tok[B * T] = {49406, 320, 1125, 539, 320, 2368, 49407, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                          49406, 1929, 530, 1487, 1613, 269, 9937, 3306, 49407};
    for (int f = 0; f < 2; f++) {
        c.reparameterized = f;
        if (mc_clip_encode_image(&c, img, B, out[f], NULL, &e) || mc_clip_encode_text(&c, tok, B, txt[f], NULL, &e))
            mc_test_fatal("tiny forward: %s", e.msg);
    }
    double di = max_rel(out[1], out[0], B * E), dt = max_rel(txt[1], txt[0], B * E);
    printf("%-4s tiny reparameterized vs training form: image %.2e, text %.2e\n", di <= 1e-4 && dt <= 1e-4 ? "ok" : "FAIL", di, dt);
    CHECK(di <= 1e-4 && dt <= 1e-4, "tiny forms disagree");
    printf("     image rows differ by %.3e, text rows by %.3e (relative)\n", max_rel(out[0], out[0] + E, E),
           max_rel(txt[0], txt[0] + E, E));
    CHECK(max_rel(out[0], out[0] + E, E) > 1e-3, "the two images embed differently");

    /* checkpoint round trip through the public API with the configuration */
    char ckpt[] = "/tmp/mc_tiny_XXXXXX";
    int fd = mkstemp(ckpt);
    if (fd < 0) mc_test_fatal("mkstemp");
    close(fd);
    CHECK(mc_param_store_save(&c.store, ckpt, &e) == 0, "save: %s", e.msg);
    mobileclip_params p = mobileclip_default_params();
    p.config_path = data_path("tiny_mci.json");
    p.vocab_path = mc_test_path("vocab/bpe_simple_vocab_16e6.txt.gz");
    char err[512];
    mobileclip_ctx *ctx = mobileclip_init_from_file(ckpt, &p, err, sizeof err);
    CHECK(ctx != NULL, "API load with config: %s", err);
    if (ctx) {
        CHECK(mobileclip_embed_dim(ctx) == E && mobileclip_context_length(ctx) == T && mobileclip_image_size(ctx) == R &&
                  mobileclip_get_arch(ctx) == MOBILECLIP_ARCH_AUTO,
              "API follows the configuration: dim %d, context %d", mobileclip_embed_dim(ctx),
              mobileclip_context_length(ctx));
        float api[B * E], apit[B * E];
        CHECK(mobileclip_encode_images(ctx, img, B, api, 0) == 0, "%s", mobileclip_last_error(ctx));
        CHECK(mobileclip_encode_tokens(ctx, tok, B, apit, 0) == 0, "%s", mobileclip_last_error(ctx));
        double d1 = max_rel(api, out[1], B * E), d2 = max_rel(apit, txt[1], B * E);
        printf("%-4s API (checkpoint written from the store + --config) vs direct: image %.2e, text %.2e\n",
               d1 == 0 && d2 == 0 ? "ok" : "FAIL", d1, d2);
        CHECK(d1 == 0 && d2 == 0, "API embeddings differ");
        int32_t ids[T + 4];
        ids[T] = 12345;
        CHECK(mobileclip_tokenize(ctx, "a photo of a cat", ids) == 0 && ids[0] == 49406 && ids[T] == 12345,
              "tokenize writes context_length ids");
        mobileclip_free(ctx);
    }
    /* the same checkpoint as an official variant is refused, naming a tensor */
    ctx = mobileclip_init_from_file(ckpt, NULL, err, sizeof err);
    CHECK(!ctx && strstr(err, "image_encoder"), "tiny checkpoint without --config: %s", err);
    printf("     without --config: %s\n", err);
    mobileclip_free(ctx);
    unlink(ckpt);
    mc_clip_free(&c);
}

static void test_bad_configs(void) {
    static const char *base =
        "{\"embed_dim\": 64, \"image_cfg\": {\"image_size\": 64, \"model_name\": \"mci\", \"layers\": [1, 1],"
        " \"embed_dims\": [32, 64], \"mlp_ratios\": [3, 3], \"downsamples\": [true, true],"
        " \"token_mixers\": [\"repmixer\", \"attention\"], \"pos_embs\": [null, \"repcpe\"]},"
        " \"text_cfg\": {\"context_length\": 16, \"vocab_size\": 1000, \"dim\": 64, \"ffn_multiplier_per_layer\": 4.0,"
        " \"n_heads_per_layer\": 2, \"n_transformer_layers\": 2, \"norm_layer\": \"layer_norm_fp32\","
        " \"causal_masking\": false, \"model_name\": \"base\"}}";
    mc_clip_config c;
    mc_err e = {0};
    CHECK(mc_clip_config_parse(base, strlen(base), "base.json", &c, &e) == 0, "the base case parses: %s", e.msg);
    /* each case replaces one substring of the base */
    static const struct { const char *from, *to, *needle; } cases[] = {
        {"\"embed_dim\": 64", "\"embed_dim\": -1", "'embed_dim'"},
        {"\"embed_dim\": 64", "\"embedding_dim\": 64", "'embedding_dim': unknown key"},
        {"\"layers\": [1, 1]", "\"layers\": [1, 1, 1]", "'image_cfg.embed_dims': 2 entries, but 'layers' has 3"},
        {"\"layers\": [1, 1]", "\"layers\": 2", "'image_cfg.layers'"},
        {"\"embed_dims\": [32, 64]", "\"embed_dims\": [32, 48]", "'image_cfg.embed_dims[1]'"},
        {"\"embed_dims\": [32, 64]", "\"embed_dims\": [16, 48]", "'image_cfg.embed_dims[1]': 48 channels are not a multiple of the attention head width 32"},
        {"\"mlp_ratios\": [3, 3]", "\"mlp_ratios\": [3, 0]", "'image_cfg.mlp_ratios[1]'"},
        {"\"attention\"]", "\"transformer\"]", "'image_cfg.token_mixers[1]': \"transformer\""},
        {"\"repcpe\"]", "\"cpe\"]", "'image_cfg.pos_embs[1]'"},
        {"\"downsamples\": [true, true]", "\"downsamples\": [1, true]", "'image_cfg.downsamples[0]': expected true or false"},
        {"\"model_name\": \"mci\"", "\"model_name\": \"mci7\"", "'image_cfg.model_name': \"mci7\""},
        {"\"model_name\": \"mci\", \"layers\"", "\"model_name\": \"mci0\", \"layers\"", "'image_cfg.layers': unknown key"},
        {"\"image_size\": 64", "\"image_size\": \"64\"", "'image_cfg.image_size': expected an integer"},
        {"\"n_heads_per_layer\": 2", "\"n_heads_per_layer\": 3", "'text_cfg.n_heads_per_layer': 3 heads do not divide"},
        {"\"n_heads_per_layer\": 2", "\"n_heads_per_layer\": [2]", "'text_cfg.n_heads_per_layer': 1 entries for 2"},
        {"\"model_name\": \"base\"", "\"model_name\": \"big\"", "'text_cfg.model_name'"},
        {"\"norm_layer\": \"layer_norm_fp32\"", "\"norm_layer\": \"rms_norm\"", "'text_cfg.norm_layer'"},
        {"\"context_length\": 16", "\"context_length\": 0", "'text_cfg.context_length': 0 is outside"},
        {"\"causal_masking\": false,", "", "'text_cfg.causal_masking': expected true or false, got nothing"},
        {"\"vocab_size\": 1000", "\"vocab_size\": 1000, \"no_pos_embedding\": true", "'text_cfg.no_pos_embedding'"},
        {"\"text_cfg\"", "\"txt_cfg\"", "'txt_cfg': unknown key"},
        {"\"repmixer\", \"attention\"]", "\"repmixer\", \"attention\"], \"drop_path_rate\": 1.0",
         "'image_cfg.drop_path_rate': expected a rate in [0, 1)"},
        {"\"repmixer\", \"attention\"]", "\"repmixer\", \"attention\"], \"dropout\": 0.1", "'image_cfg.dropout': unknown key"},
        {"\"model_name\": \"base\"", "\"model_name\": \"base\", \"embed_dropout\": -0.1", "'text_cfg.embed_dropout'"},
        {"\"model_name\": \"base\"", "\"model_name\": \"base\", \"attn_dropout\": \"0.1\"", "'text_cfg.attn_dropout'"},
        {"\"model_name\": \"base\"", "\"model_name\": \"base\", \"dropout\": 0.1, \"stochastic_dropout\": 0.1",
         "'text_cfg.dropout' and 'text_cfg.stochastic_dropout': mutually exclusive"},
        {"\"model_name\": \"base\"", "\"model_name\": \"base\", \"drop_path_rate\": 0.1", "'text_cfg.drop_path_rate': unknown key"},
        {"}}", "}", "base.json"}, /* truncated JSON: the parser's message, prefixed by the file */
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char buf[2048];
        const char *at = strstr(base, cases[k].from);
        if (!at) mc_test_fatal("case %zu: '%s' not in the base", k, cases[k].from);
        snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - base), base, cases[k].to, at + strlen(cases[k].from));
        int r = mc_clip_config_parse(buf, strlen(buf), "base.json", &c, &e);
        int ok = r < 0 && strstr(e.msg, cases[k].needle) && strstr(e.msg, "base.json");
        printf("%-4s %s\n", ok ? "ok" : "FAIL", e.msg);
        CHECK(ok, "case %zu: returned %d, message '%s' lacks '%s'", k, r, e.msg, cases[k].needle);
    }
    /* the dropout keys: parsed per tower, written back (only when on), not part of model equality */
    {
        static const char *drop =
            "{\"embed_dim\": 512, \"image_cfg\": {\"image_size\": 256, \"model_name\": \"mci0\", \"drop_rate\": 0.125,"
            " \"drop_path_rate\": 0.25}, \"text_cfg\": {\"context_length\": 77, \"vocab_size\": 49408, \"dim\": 512,"
            " \"ffn_multiplier_per_layer\": 4.0, \"n_heads_per_layer\": 8, \"n_transformer_layers\": 4,"
            " \"norm_layer\": \"layer_norm_fp32\", \"causal_masking\": false, \"model_name\": \"mct\","
            " \"embed_dropout\": 0.05, \"dropout\": 0.1, \"attn_dropout\": 0.2, \"ffn_dropout\": 0.3}}";
        mc_clip_config d, back, s0;
        CHECK(mc_clip_config_parse(drop, strlen(drop), "drop.json", &d, &e) == 0, "dropout keys: %s", e.msg);
        CHECK(d.image_drop.drop == 0.125f && d.image_drop.drop_path == 0.25f && d.text_drop.embed == 0.05f &&
                  d.text_drop.drop == 0.1f && d.text_drop.attn == 0.2f && d.text_drop.ffn == 0.3f &&
                  d.text_drop.drop_path == 0 && d.image_drop.attn == 0,
              "dropout rates read per tower");
        mc_clip_config_builtin(0, &s0, &e);
        CHECK(mc_clip_config_equal(&d, &s0), "rates are not part of the model: equal to s0");
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        CHECK(f && mc_clip_config_write(&d, f) == 0 && fclose(f) == 0, "write");
        CHECK(mc_clip_config_parse(buf, len, "back.json", &back, &e) == 0 &&
                  !memcmp(&back.image_drop, &d.image_drop, sizeof d.image_drop) &&
                  !memcmp(&back.text_drop, &d.text_drop, sizeof d.text_drop),
              "rates round-trip through the writer: %s", e.msg);
        free(buf);
        buf = NULL;
        f = open_memstream(&buf, &len);
        CHECK(f && mc_clip_config_write(&s0, f) == 0 && fclose(f) == 0 && !strstr(buf, "drop"),
              "no rate keys written when off");
        free(buf);
        static const char *vit =
            "{\"embed_dim\": 512, \"image_cfg\": {\"image_size\": 224, \"model_name\": \"vit_b16\", \"dropout\": 0.1,"
            " \"attn_dropout\": 0.05, \"ffn_dropout\": 0.2}, \"text_cfg\": {\"context_length\": 77, \"vocab_size\": 49408,"
            " \"dim\": 512, \"ffn_multiplier_per_layer\": 4.0, \"n_heads_per_layer\": 8, \"n_transformer_layers\": 12,"
            " \"norm_layer\": \"layer_norm_fp32\", \"causal_masking\": true, \"model_name\": \"base\","
            " \"stochastic_dropout\": 0.1}}";
        CHECK(mc_clip_config_parse(vit, strlen(vit), "vit.json", &d, &e) == 0 && d.image_drop.drop == 0.1f &&
                  d.image_drop.attn == 0.05f && d.image_drop.ffn == 0.2f && d.text_drop.drop_path == 0.1f,
              "ViT and text transformer rates: %s", e.msg);
        printf("ok   dropout keys: parsed per tower, written back only when on, not compared\n");
    }
    CHECK(mc_clip_config_load("/nonexistent/c.json", &c, &e) < 0 && strstr(e.msg, "/nonexistent/c.json"),
          "missing file: %s", e.msg);
}

int main(void) {
    test_builtins();
    test_bad_configs();
    test_tiny();
    test_declare("s0", 0);
    test_declare("s1", 1);
    test_declare("s2", 2);
    test_declare("b", 3);
    return mc_test_finish("test_config");
}
