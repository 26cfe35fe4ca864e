/* Text towers against the golden reference: MCt (s0) and Base (s1, s2 non-causal; b causal),
 * training form and reparameterized form, all four texts in one batch, every trace tensor of
 * text 1; plus binding errors (missing, mis-shaped, unexpected tensors) and bad token ids. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/test_util.h"
#include "common/weight_rule.h"
#include "models/text_encoder.h"

#define REL_TOL 1e-4
#define COS_MIN 0.99999

/* Compares each traced batch tensor's row `row` with golden "<prefix><name>". */

static int count_prefix(const mc_tensor_map *m, const char *prefix) {
    int n = 0;
    for (int i = 0; i < m->count; i++) n += strncmp(m->items[i].name, prefix, strlen(prefix)) == 0;
    return n;
}

static int32_t *golden_tokens(const mc_tensor_map *g, int *N, int *T) {
    const mc_tensor *t = mc_test_tensor(g, "input.tokens");
    if (t->ndim != 2) mc_test_fatal("input.tokens is not 2-D");
    *N = (int)t->shape[0];
    *T = (int)t->shape[1];
    int32_t *tok = malloc(sizeof(int32_t) * (*N) * (*T));
    for (int64_t i = 0; i < (int64_t)(*N) * (*T); i++) tok[i] = (int32_t)mc_tensor_get_f64(t, i);
    return tok;
}

static void check_arch(const char *arch, int causal, int expect_variant, int expect_blocks) {
    char rel[64];
    mc_tensor_map w, g;
    mc_err e = {0};
    double t0 = mc_test_now();
    mc_tensor_map_init(&w);
    snprintf(rel, sizeof rel, "golden/%s.params.tsv", arch);
    if (mc_weights_from_tsv_prefix(mc_test_path(rel), "text_encoder.", &w, NULL, &e)) mc_test_fatal("%s", e.msg);
    snprintf(rel, sizeof rel, "golden/%s.golden.safetensors", arch);
    mc_test_load_golden(rel, &g, NULL);
    double t1 = mc_test_now();

    mc_text_encoder *te = NULL;
    int r = mc_text_encoder_init(&te, &w, causal, &e);
    CHECK(r == 0, "%s: init failed: %s", arch, e.msg);
    if (r) goto out;
    CHECK((int)te->variant == expect_variant, "%s: variant %d", arch, te->variant);
    CHECK(te->n_blocks == expect_blocks, "%s: %d blocks", arch, te->n_blocks);
    CHECK(te->heads == 8 && te->dim == 512 && te->context == 77 && te->proj_dim == 512, "%s: geometry", arch);

    int N, T;
    int32_t *tok = golden_tokens(&g, &N, &T);
    CHECK(T == te->context, "%s: token length %d", arch, T);
    float *embed = malloc(sizeof(float) * N * te->proj_dim);
    mc_test_trace ctx = {.golden = &g, .label = arch, .prefix = "trace.text.", .row = 1, .rel_tol = REL_TOL};
    mc_trace tr = {mc_test_on_trace, &ctx};
    char what[64];

    double t2 = mc_test_now();
    r = mc_text_encoder_forward(te, tok, N, 0, embed, &tr, &e);
    double t3 = mc_test_now();
    CHECK(r == 0, "%s: forward failed: %s", arch, e.msg);
    snprintf(what, sizeof what, "%s output.text_embed", arch);
    mc_test_compare_rows(what, embed, mc_test_tensor(&g, "output.text_embed"), REL_TOL, COS_MIN);
    int n_golden = count_prefix(&g, "trace.text.");
    CHECK(ctx.seen == n_golden && n_golden == expect_blocks + 4, "%s: %d of %d trace tensors compared", arch, ctx.seen,
          n_golden);

    /* the reparameterized form is refused until mc_text_encoder_reparameterize, then matches the _reparam golden */
    r = mc_text_encoder_forward(te, tok, N, 1, embed, NULL, &e);
    CHECK(r == MC_E_ARG, "%s: reparameterized forward before reparameterize returned %d", arch, r);
    CHECK(mc_text_encoder_reparameterize(te, &e) == 0, "%s: reparameterize: %s", arch, e.msg);
    double t4 = mc_test_now();
    r = mc_text_encoder_forward(te, tok, N, 1, embed, NULL, &e);
    double t5 = mc_test_now();
    CHECK(r == 0, "%s: reparameterized forward failed: %s", arch, e.msg);
    snprintf(what, sizeof what, "%s output.text_embed_reparam", arch);
    mc_test_compare_rows(what, embed, mc_test_tensor(&g, "output.text_embed_reparam"), REL_TOL, COS_MIN);
    printf("%s text: weights %.2fs, forward N=%d train %.3fs, reparameterized %.3fs\n", arch, t1 - t0, N, t3 - t2, t5 - t4);

    /* token ids outside the vocabulary are refused */
    int32_t saved = tok[5];
    tok[5] = te->vocab;
    r = mc_text_encoder_forward(te, tok, N, 0, embed, NULL, &e);
    CHECK(r == MC_E_ARG && strstr(e.msg, "49408"), "%s: out-of-range token: %d %s", arch, r, e.msg);
    tok[5] = -1;
    CHECK(mc_text_encoder_forward(te, tok, N, 0, embed, NULL, &e) == MC_E_ARG, "%s: negative token", arch);
    tok[5] = saved;
    free(embed);
    free(tok);
out:
    mc_text_encoder_free(te);
    mc_tensor_map_free(&w);
    mc_tensor_map_free(&g);
}

/* init must fail with MC_E_MODEL and a message naming `name` */
static void expect_init_error(mc_tensor_map *w, const char *what, const char *name) {
    mc_text_encoder *te = NULL;
    mc_err e = {0};
    int r = mc_text_encoder_init(&te, w, 0, &e);
    CHECK(r == MC_E_MODEL && te == NULL, "%s: init returned %d", what, r);
    CHECK(strstr(e.msg, name) != NULL, "%s: message does not name %s: %s", what, name, e.msg);
    printf("     %s -> %s\n", what, e.msg);
    mc_text_encoder_free(te);
}

static void check_errors(void) {
    mc_tensor_map w;
    mc_err e = {0};
    mc_tensor_map_init(&w);
    if (mc_weights_from_tsv_prefix(mc_test_path("golden/s0.params.tsv"), "text_encoder.", &w, NULL, &e))
        mc_test_fatal("%s", e.msg);

    /* missing: hide a tensor by renaming it out of the text_encoder. namespace */
    const char *names[] = {"text_encoder.transformer.2.pre_norm_mha.1.out_proj.bias",
                           "text_encoder.transformer.5.convffn.conv.bn.running_var",
                           "text_encoder.final_layer_norm.weight", "text_encoder.projection_layer"};
    for (int i = 0; i < 4; i++) {
        mc_named_tensor *t = mc_test_entry(&w, names[i]);
        t->name[0] = 'X';
        expect_init_error(&w, "missing tensor", names[i]);
        t->name[0] = 't';
    }
    /* mis-shaped */
    const char *shaped[] = {"text_encoder.transformer.3.pre_norm_mha.1.qkv_proj.weight",
                            "text_encoder.transformer.0.token_mixer.layer_scale",
                            "text_encoder.transformer.1.pre_norm_ffn.4.weight"};
    for (int i = 0; i < 3; i++) {
        mc_named_tensor *t = mc_test_entry(&w, shaped[i]);
        t->t.shape[0]--;
        expect_init_error(&w, "mis-shaped tensor", shaped[i]);
        t->t.shape[0]++;
    }
    /* unexpected tensor inside the text encoder namespace */
    mc_tensor extra = mc_test_entry(&w, "text_encoder.final_layer_norm.bias")->t;
    if (mc_tensor_map_add(&w, "text_encoder.transformer.2.pre_norm_mha.1.k_norm.weight", &extra, &e))
        mc_test_fatal("%s", e.msg);
    expect_init_error(&w, "unexpected tensor", "text_encoder.transformer.2.pre_norm_mha.1.k_norm.weight");
    mc_test_entry(&w, "text_encoder.transformer.2.pre_norm_mha.1.k_norm.weight")->name[0] = 'X';

    /* restored map binds again */
    mc_text_encoder *te = NULL;
    CHECK(mc_text_encoder_init(&te, &w, 0, &e) == 0, "restored map: %s", e.msg);
    mc_text_encoder_free(te);
    mc_tensor_map_free(&w);
}

int main(void) {
    check_arch("s0", 0, MC_TEXT_MCT, 6);
    check_arch("s1", 0, MC_TEXT_BASE, 12);
    check_arch("s2", 0, MC_TEXT_BASE, 12);
    check_arch("b", 1, MC_TEXT_BASE, 12);
    check_errors();
    return mc_test_finish("text_encoder");
}
