/* Zero-shot classification through the public API, against the reference:
 *  - with the template "{}" and the 4 golden texts as labels, probabilities must equal
 *    softmax(output.logits_per_image) of the golden data (the reference's own logits);
 *  - with several templates, each classifier row must be the renormalized mean of the
 *    normalized template embeddings (CLIP's protocol), checked against separately encoded texts;
 *  - bad arguments (empty label list, template without {}) fail with a reason. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/test_util.h"
#include "common/weight_rule.h"
#include <omp.h>

#include "api/context.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "mobileclip.h"

static mobileclip_ctx *load_test_model(const char *arch, const char *tmpdir, char *path, size_t n) {
    snprintf(path, n, "%s/%s.safetensors", tmpdir, arch);
    mc_weights_save_test_model(arch, path);
    mc_err e = {0};
    mobileclip_params p = mobileclip_default_params();
    /* s0 takes the vocabulary as a path, the others as bytes in memory */
    char *vocab = NULL;
    size_t vocab_len = 0;
    if (strcmp(arch, "s0") == 0) {
        p.vocab_path = mc_test_path("vocab/bpe_simple_vocab_16e6.txt.gz");
    } else {
        if (mc_read_file(mc_test_path("vocab/bpe_simple_vocab_16e6.txt.gz"), 1 << 24, &vocab, &vocab_len, &e))
            mc_test_fatal("%s", e.msg);
        p.vocab_data = vocab;
        p.vocab_size = vocab_len;
    }
    char err[512];
    mobileclip_ctx *ctx = mobileclip_init_from_file(path, &p, err, sizeof err);
    free(vocab);
    if (!ctx) mc_test_fatal("%s", err);
    return ctx;
}

static void check_arch(const char *arch, const char *tmpdir) {
    char rel[64], ckpt[512];
    snprintf(rel, sizeof rel, "golden/%s.golden.safetensors", arch);
    mc_tensor_map g;
    mc_json *hdr;
    mc_test_load_golden(rel, &g, &hdr);
    mc_err e = {0};
    const mc_json *ts = mc_json_get(mc_json_get(hdr, "__metadata__"), "texts");
    mc_json *texts = ts ? mc_json_parse(ts->str, ts->len, &e) : NULL;
    if (!texts || texts->count != 4) mc_test_fatal("%s: texts metadata", rel);
    mobileclip_ctx *ctx = load_test_model(arch, tmpdir, ckpt, sizeof ckpt);
    CHECK(strcmp(mobileclip_arch_name(mobileclip_get_arch(ctx)), arch) == 0, "%s: recognised as %s", arch,
          mobileclip_arch_name(mobileclip_get_arch(ctx)));

    /* 1. classification probabilities == softmax of the reference logits */
    const char *labels[4], *tmpl[1] = {"{}"};
    for (int i = 0; i < 4; i++) labels[i] = texts->items[i].str;
    mobileclip_classifier *clf = mobileclip_classifier_build(ctx, labels, 4, tmpl, 1);
    CHECK(clf != NULL, "%s: classifier: %s", arch, mobileclip_last_error(ctx));
    const mc_tensor *img = mc_test_tensor(&g, "input.image"), *logits = mc_test_tensor(&g, "output.logits_per_image");
    int64_t n = mc_tensor_numel(img);
    float *x = malloc(sizeof(float) * (size_t)n), emb[2 * 512], probs[8], ref[8];
    mc_tensor_to_f32(img, x);
    CHECK(mobileclip_encode_images(ctx, x, 2, emb, 1) == 0, "%s: encode: %s", arch, mobileclip_last_error(ctx));
    CHECK(clf && mobileclip_classify(ctx, clf, emb, 2, probs) == 0, "%s: classify", arch);
    mc_tensor_to_f32(logits, ref);
    for (int i = 0; i < 2; i++) {
        float m = -INFINITY, s = 0;
        for (int j = 0; j < 4; j++) m = fmaxf(m, ref[i * 4 + j]);
        for (int j = 0; j < 4; j++) s += ref[i * 4 + j] = expf(ref[i * 4 + j] - m);
        for (int j = 0; j < 4; j++) ref[i * 4 + j] /= s;
    }
    double worst = 0;
    for (int k = 0; k < 8; k++) worst = fmax(worst, fabs(probs[k] - ref[k]));
    printf("%-4s %s zero-shot probabilities vs softmax(reference logits): max abs diff %.2e\n",
           worst < 1e-5 ? "ok" : "FAIL", arch, worst);
    CHECK(worst < 1e-5, "%s: probabilities differ by %g", arch, worst);
    CHECK(fabsf(mobileclip_logit_scale(ctx) - 14.2857141f) < 1e-4f, "%s: logit scale %f", arch, mobileclip_logit_scale(ctx));
    mobileclip_classifier_free(clf);

    /* 2. template ensembling: classifier row = normalize(mean(normalize(embed(template(label))))) */
    const char *tmpl2[3] = {"a photo of a {}.", "a drawing of the {}", "{} {}!"};
    const char *lab2[2] = {"cat", "space suit"};
    clf = mobileclip_classifier_build(ctx, lab2, 2, tmpl2, 3);
    CHECK(clf != NULL, "%s: classifier 2", arch);
    const char *prompts[3] = {"a photo of a space suit.", "a drawing of the space suit", "space suit space suit!"};
    float pe[3 * 512], row[512] = {0}, p2[2 * 2];
    CHECK(mobileclip_encode_texts(ctx, prompts, 3, pe, 1) == 0, "%s: encode prompts", arch);
    for (int t = 0; t < 3; t++)
        for (int d = 0; d < 512; d++) row[d] += pe[t * 512 + d];
    double nr = 0;
    for (int d = 0; d < 512; d++) nr += (double)row[d] * row[d];
    /* probabilities from the manual row must match the classifier's for label 1 logits */
    CHECK(clf && mobileclip_classify(ctx, clf, emb, 2, p2) == 0, "%s: classify 2", arch);
    float cat_pe[512];
    const char *catp[3] = {"a photo of a cat.", "a drawing of the cat", "cat cat!"};
    float ce[3 * 512], crow[512] = {0};
    CHECK(mobileclip_encode_texts(ctx, catp, 3, ce, 1) == 0, "%s: encode cat prompts", arch);
    for (int t = 0; t < 3; t++)
        for (int d = 0; d < 512; d++) crow[d] += ce[t * 512 + d];
    double nc = 0;
    for (int d = 0; d < 512; d++) nc += (double)crow[d] * crow[d];
    for (int d = 0; d < 512; d++) cat_pe[d] = crow[d] / (float)sqrt(nc);
    for (int i = 0; i < 2 && clf; i++) {
        double l0 = 0, l1 = 0, ni = 0;
        for (int d = 0; d < 512; d++) ni += (double)emb[i * 512 + d] * emb[i * 512 + d];
        for (int d = 0; d < 512; d++) {
            l0 += emb[i * 512 + d] * cat_pe[d];
            l1 += emb[i * 512 + d] * row[d] / sqrt(nr);
        }
        double s = mobileclip_logit_scale(ctx) / sqrt(ni), e0 = exp(s * l0), e1 = exp(s * l1);
        CHECK(fabs(p2[i * 2] - e0 / (e0 + e1)) < 1e-5, "%s: ensemble probability %f vs %f", arch, p2[i * 2], e0 / (e0 + e1));
    }
    mobileclip_classifier_free(clf);

    /* 3. bad arguments */
    CHECK(mobileclip_classifier_build(ctx, lab2, 0, tmpl2, 3) == NULL && strstr(mobileclip_last_error(ctx), "empty"),
          "%s: empty labels", arch);
    const char *bad_tmpl[1] = {"no placeholder"};
    CHECK(mobileclip_classifier_build(ctx, lab2, 2, bad_tmpl, 1) == NULL && strstr(mobileclip_last_error(ctx), "{}"),
          "%s: template without {}", arch);
    int32_t ids[77];
    CHECK(mobileclip_tokenize(ctx, "\xff\xfe", ids) < 0, "%s: invalid UTF-8 accepted", arch);

    free(x);
    mobileclip_free(ctx);
    remove(ckpt);
    mc_json_free(texts);
    mc_json_free(hdr);
    mc_tensor_map_free(&g);
}

/* Checkpoints whose shapes differ from the model's configuration are refused at load (MC_E_MODEL), and a
 * context never changes the caller's OpenMP thread count. */
static void check_guards(const char *tmpdir) {
    static const struct { const char *name; int64_t shape[4]; int ndim; const char *needle; } cases[] = {
        {"text_encoder.projection_layer", {512, 1024}, 2, "has shape [512, 1024], expected [512, 512]"},
        {"image_encoder.model.head.proj", {1024, 1024}, 2, "has shape [1024, 1024], expected [1024, 512]"},
        {"text_encoder.positional_embedding.pos_embed.pos_embed", {1, 1, 100, 512}, 4,
         "has shape [1, 1, 100, 512], expected [1, 1, 77, 512]"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        mc_tensor_map w;
        mc_tensor_map_init(&w);
        mc_err e = {0};
        if (mc_weights_from_tsv(mc_test_path("golden/s0.params.tsv"), &w, NULL, &e)) mc_test_fatal("%s", e.msg);
        mc_named_tensor *t = mc_test_entry(&w, cases[k].name);
        int64_t n = 1;
        for (int d = 0; d < cases[k].ndim; d++) n *= cases[k].shape[d];
        t->t.ndim = cases[k].ndim;
        for (int d = cases[k].ndim - 1, st = 1; d >= 0; d--) {
            t->t.shape[d] = cases[k].shape[d];
            t->t.stride[d] = st;
            st *= (int)cases[k].shape[d];
        }
        t->t.data = mc_tensor_map_own(&w, calloc((size_t)n, sizeof(float)));
        char path[512], err[512];
        snprintf(path, sizeof path, "%s/bad.safetensors", tmpdir);
        if (mc_safetensors_save(path, &w, &e)) mc_test_fatal("%s", e.msg);
        mc_tensor_map_free(&w);
        mobileclip_ctx *ctx = mobileclip_init_from_file(path, NULL, err, sizeof err);
        CHECK(!ctx && strstr(err, cases[k].needle), "%s of shape %lld...: loaded or wrong reason: %s", cases[k].name,
              (long long)cases[k].shape[0], ctx ? "(loaded)" : err);
        printf("ok   %s resized: %s\n", cases[k].name, err);
        mobileclip_free(ctx);
        remove(path);
    }

    omp_set_num_threads(3);
    mobileclip_params p = mobileclip_default_params();
    p.n_threads = 1;
    char err[512], path[512];
    mobileclip_ctx *ctx = mobileclip_init_from_file(mc_test_path("golden/nonexistent.pt"), &p, err, sizeof err);
    CHECK(!ctx && omp_get_max_threads() == 3, "failed init changed the OpenMP thread count to %d", omp_get_max_threads());
    ctx = load_test_model("s0", tmpdir, path, sizeof path);
    ctx->n_threads = 1; /* as if created with params.n_threads = 1 */
    float img[3 * 256 * 256] = {0}, emb[512];
    CHECK(mobileclip_encode_images(ctx, img, 1, emb, 1) == 0, "encode");
    CHECK(omp_get_max_threads() == 3, "encode changed the OpenMP thread count to %d", omp_get_max_threads());
    p.n_threads = -1;
    mobileclip_free(ctx);
    ctx = mobileclip_init_from_file(path, &p, err, sizeof err);
    CHECK(!ctx && strstr(err, "n_threads"), "negative n_threads accepted");
    mobileclip_free(ctx);
    remove(path);
}

int main(void) {
    char tmpdir[] = "/tmp/mc_classify_XXXXXX";
    if (!mkdtemp(tmpdir)) mc_test_fatal("mkdtemp failed");
    check_guards(tmpdir);
    check_arch("s0", tmpdir);
    check_arch("b", tmpdir);
    rmdir(tmpdir);
    return mc_test_finish("classify");
}
