/* Text towers in training mode (src/models/text_train.c) on MobileCLIP-S0's MCt text tower
 * (weight rule of shared/golden/s0.params.tsv, parameters in one arena as the store lays them):
 *  1. eval mode: the training forward equals the inference forward and the golden embeddings;
 *  2. train mode, golden first step (shared/golden/train): text features of the 8 captions
 *     (real + synthetic, one batch as the reference) and the text tower's BatchNorm running
 *     statistics after that forward;
 *  3. train mode: Text-RepMixer and transformer layer (causal and not, and with dropout,
 *     ffn_dropout and stochastic depth on: the backward reuses the forward's masks) backwards,
 *     input and every parameter (sampled), against finite differences; the whole tower on a few
 *     parameters (token and positional embeddings, projection, final LayerNorm, ...).
 * Tolerances: see tests/common/fd_check.h and tests/test_train_mci.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fd_check.h"
#include "common/param_arena.h"
#include "common/test_util.h"
#include "common/weight_rule.h"
#include "models/text_train.h"
#include "nn/layers.h"
#include "train/loss.h"

#define TOL 1e-2
#define GRAD_FLOOR 0.1
/* Whole tower (6 blocks, N = 2 x 77 tokens): h = 1e-2 measured 4.7e-3 worst, h = 1e-3 2.9e-2
 * (rounding noise of the float forward dominates there). A wiring check: a missing or
 * misrouted gradient path is an O(1) error. */
#define TOWER_TOL 2e-2
#define TOWER_H 1e-2f
#define TOWER_FLOOR 0.3 /* gradients below it compared absolutely (rounding noise, see test_train_mci.c) */
#define PREFIX "text_encoder."

static mc_tensor_map WM;
static mc_grad_map GM;

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static float *rand_buf(size_t n) { return mc_fd_rand(&rng_state, n); }
static int32_t *tokens_of(const mc_tensor *t) {
    int64_t n = mc_tensor_numel(t);
    int32_t *p = malloc(sizeof(int32_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) p[i] = (int32_t)mc_tensor_get_f64(t, i);
    return p;
}

static void tapes_alloc(mc_tape *tape, mc_tape *work) {
    tape->base = malloc((tape->peak ? tape->peak : 1) * sizeof(float));
    work->base = malloc((work->peak ? work->peak : 1) * sizeof(float));
    if (!tape->base || !work->base) mc_test_fatal("out of memory for the training arenas");
    tape->cap = tape->peak, work->cap = work->peak;
    mc_tape_reset(tape);
    mc_tape_reset(work);
}

/* ---------------------------------------------------------------- blocks */

typedef struct blk_case {
    int repmixer, causal, N, T, C;
    const void *blk;
    float *x, *r;
    mc_tape tape, work;
    mc_train_ctx c;
    mc_text_repmixer_save srm;
    mc_transformer_save stf;
    mc_rng rng;
} blk_case;

/* dropout / stochastic depth rates of the transformer-layer cases (0: off) */
static float DROP, FFN_DROP, ATTN_DROP, DROP_PATH;

static const float *blk_forward(blk_case *k) {
    mc_tape_reset(&k->tape);
    mc_tape_reset(&k->work);
    k->rng = mc_rng_seed(77); /* the same masks at every evaluation: the loss is a function of the parameters */
    return k->repmixer ? mc_text_repmixer_train_forward(&k->c, k->blk, &k->srm, k->x, k->N, k->T)
                       : mc_transformer_train_forward(&k->c, k->blk, &k->stf, k->x, k->N, k->T, k->causal);
}
static void blk_backward(blk_case *k, float *dx, const float *dy) {
    if (k->repmixer) mc_text_repmixer_train_backward(&k->c, k->blk, &k->srm, dx, dy, k->N, k->T);
    else mc_transformer_train_backward(&k->c, k->blk, &k->stf, dx, dy, k->N, k->T, k->causal);
}
static double blk_loss(void *p) {
    blk_case *k = p;
    return mc_fd_dot(blk_forward(k), k->r, (size_t)k->N * k->T * k->C);
}

static void test_block(const char *label, int repmixer, const void *blk, const char *prefix, int C, int N, int T,
                       int causal) {
    blk_case k = {.repmixer = repmixer, .causal = causal, .N = N, .T = T, .C = C, .blk = blk};
    size_t n = (size_t)N * T * C;
    k.x = rand_buf(n);
    k.r = rand_buf(n);
    k.c = (mc_train_ctx){.tape = &k.tape, .work = &k.work, .grads = &GM, .train = 1, .bn_momentum = 0.1f,
                         .rate = {.drop = DROP, .ffn = FFN_DROP, .attn = ATTN_DROP, .drop_path = DROP_PATH}, .rng = &k.rng};
    blk_forward(&k);
    blk_backward(&k, NULL, NULL);
    tapes_alloc(&k.tape, &k.work);
    float *dx = calloc(n, sizeof(float));
    memset(GM.grad, 0, GM.n * sizeof(float));
    blk_forward(&k);
    blk_backward(&k, dx, k.r);
    CHECK(!k.tape.overflow && !k.work.overflow, "%s: arenas overflowed after measuring", label);
    mc_fd_opts fo = {1e-2f, TOL, GRAD_FLOOR, NULL};
    double worst = mc_fd_error(&fo, &k, blk_loss, k.x, dx, n, 24);
    CHECK(worst < TOL, "%s: input gradient fd rel err %.3g", label, worst);
    mc_fd_check_params(&fo, &k, blk_loss, &WM, &GM, prefix, 6, label, worst);
    free(k.x); free(k.r); free(k.tape.base); free(k.work.base); free(dx);
}

/* ---------------------------------------------------------------- tower */

typedef struct tower_case {
    const mc_text_encoder *m;
    mc_text_train_state st;
    mc_tape tape, work;
    mc_train_ctx c;
    const int32_t *tokens;
    int N;
    float *r;
    mc_rng rng;                  /* re-seeded before every forward: the same masks each time */
} tower_case;

/* the tower cases' dropout rates (0: off) */
static mc_dropout_rates TOWER_RATES;

static void tower_alloc(tower_case *t, const mc_text_encoder *m, int N, int train) {
    mc_err e = {0};
    t->m = m, t->N = N;
    if (mc_text_train_sizes(m, N, &TOWER_RATES, &t->tape.peak, &t->work.peak, &e)) mc_test_fatal("%s", e.msg);
    tapes_alloc(&t->tape, &t->work);
    t->c = (mc_train_ctx){.tape = &t->tape, .work = &t->work, .grads = &GM, .train = train, .bn_momentum = 0.1f,
                          .rate = TOWER_RATES, .rng = &t->rng};
    if (mc_text_train_state_init(&t->st, m, &e)) mc_test_fatal("%s", e.msg);
}
static void tower_free(tower_case *t) {
    free(t->tape.base);
    free(t->work.base);
    mc_text_train_state_free(&t->st);
}
static double tower_loss(void *p) {
    tower_case *t = p;
    mc_err e = {0};
    mc_tape_reset(&t->tape);
    mc_tape_reset(&t->work);
    t->rng = mc_rng_seed(5);
    if (mc_text_train_forward(&t->c, t->m, &t->st, t->tokens, t->N, &e)) mc_test_fatal("%s", e.msg);
    return mc_fd_dot(t->st.embed, t->r, (size_t)t->N * t->m->proj_dim);
}

static void test_eval_parity(const mc_text_encoder *m) {
    mc_tensor_map g;
    mc_json *hdr = NULL;
    mc_test_load_golden("golden/s0.golden.safetensors", &g, &hdr);
    mc_json_free(hdr);
    const mc_tensor *tt = mc_test_tensor(&g, "input.tokens");
    int N = (int)tt->shape[0];
    int32_t *tok = tokens_of(tt);
    float *ref = malloc(sizeof(float) * N * m->proj_dim);
    tower_case t;
    tower_alloc(&t, m, N, 0);
    mc_err e = {0};
    CHECK(mc_text_train_forward(&t.c, m, &t.st, tok, N, &e) == 0, "eval forward: %s", e.msg);
    CHECK(mc_text_encoder_forward((mc_text_encoder *)m, tok, N, 0, ref, NULL, &e) == 0, "inference: %s", e.msg);
    double d = mc_fd_rel_l2(t.st.embed, ref, (size_t)N * m->proj_dim);
    printf("  eval-mode training forward vs inference forward: rel-L2 %.2e\n", d);
    CHECK(d < 1e-5, "eval-mode text training forward differs from the inference forward: %g", d);
    mc_test_compare_rows("s0 eval-mode text training forward vs golden output.text_embed", t.st.embed,
                         mc_test_tensor(&g, "output.text_embed"), 1e-4, 0.99999);
    tower_free(&t);
    free(tok);
    free(ref);
    mc_tensor_map_free(&g);
}

static void test_golden_train_forward(const mc_text_encoder *m) {
    mc_tensor_map g;
    mc_json *hdr = NULL;
    mc_test_load_golden("golden/train/s0_step.safetensors", &g, &hdr);
    mc_json_free(hdr);
    const mc_tensor *real = mc_test_tensor(&g, "input.text_tokens"), *syn = mc_test_tensor(&g, "input.syn_text_tokens");
    int n1 = (int)real->shape[0], n2 = (int)syn->shape[0], T = (int)real->shape[1], N = n1 + n2;
    CHECK(T == m->context, "context %d vs %d", T, m->context);
    int32_t *a = tokens_of(real), *b = tokens_of(syn), *tok = malloc(sizeof(int32_t) * N * T);
    memcpy(tok, a, sizeof(int32_t) * n1 * T);
    memcpy(tok + n1 * T, b, sizeof(int32_t) * n2 * T);
    float *saved = malloc(GM.n * sizeof(float)), *feat = malloc(sizeof(float) * N * m->proj_dim), *nrm = malloc(N * 4);
    memcpy(saved, GM.data, GM.n * sizeof(float));
    tower_case t;
    tower_alloc(&t, m, N, 1);
    mc_err e = {0};
    double t0 = mc_test_now();
    CHECK(mc_text_train_forward(&t.c, m, &t.st, tok, N, &e) == 0, "train forward: %s", e.msg);
    double t1 = mc_test_now();
    printf("  S0 text tower N=%d train-mode forward %.2f s (arenas %.1f + %.1f MB)\n", N, t1 - t0, t.tape.cap * 4e-6,
           t.work.cap * 4e-6);
    mc_l2_normalize_forward(feat, nrm, t.st.embed, N, m->proj_dim);
    mc_test_compare_rows("s0 train-mode text features vs golden fwd.text_features", feat,
                         mc_test_tensor(&g, "fwd.text_features"), 1e-4, 0.99999);
    mc_test_compare_rows("s0 train-mode synthetic text features vs golden fwd.syn_text_features",
                         feat + (size_t)n1 * m->proj_dim, mc_test_tensor(&g, "fwd.syn_text_features"), 1e-4, 0.99999);
    double worst;
    int nbuf = mc_fd_running_stats(&WM, &g, PREFIX, &worst, NULL, 0);
    printf("  %d text-tower BatchNorm running statistics after 1 step: worst rel-L2 %.2e\n", nbuf, worst);
    CHECK(nbuf == 16 && worst < 1e-4, "text running statistics: %d compared, worst rel-L2 %g", nbuf, worst);
    memcpy((float *)GM.data, saved, GM.n * sizeof(float));
    tower_free(&t);
    free(a); free(b); free(tok); free(saved); free(feat); free(nrm);
    mc_tensor_map_free(&g);
}

static void test_tower_fd(const mc_text_encoder *m, const char *label) {
    enum { N = 2 };
    int T = m->context;
    int32_t *tok = calloc((size_t)N * T, sizeof(int32_t));
    /* BOS, a few words (one repeated, so a token-embedding row sums two positions), EOT, padding */
    const int32_t s0[] = {49406, 320, 1929, 320, 49407}, s1[] = {49406, 2368, 539, 3086, 2368, 7, 49407};
    memcpy(tok, s0, sizeof s0);
    memcpy(tok + T, s1, sizeof s1);
    tower_case t;
    tower_alloc(&t, m, N, 1);
    t.tokens = tok;
    t.r = rand_buf((size_t)N * m->proj_dim);
    mc_err e = {0};
    memset(GM.grad, 0, GM.n * sizeof(float));
    tower_loss(&t);
    CHECK(mc_text_train_backward(&t.c, m, &t.st, t.r, &e) == 0, "backward: %s", e.msg);
    mc_fd_opts fo = {TOWER_H, TOWER_TOL, TOWER_FLOOR, NULL};
    /* token-embedding rows 320 (twice in sequence 0) and 2368 (twice in sequence 1) */
    size_t C = (size_t)m->dim;
    double worst = 0;
    for (size_t row = 320; row; row = row == 320 ? 2368 : 0)
        worst = fmax(worst, mc_fd_check_slice(&fo, &t, tower_loss, mc_fd_find_map, &WM, &GM, PREFIX "embedding_layer.weight",
                                              row * C, C, 3, "text tower"));
    const float *unused = mc_grad_of(&GM, mc_test_param(&WM, PREFIX "embedding_layer.weight") + 999 * C);
    double z = 0;
    for (size_t i = 0; i < C; i++) z = fmax(z, fabs(unused[i]));
    CHECK(z == 0, "an unused token-embedding row has gradient %g", z);
    static const char *names[] = {PREFIX "positional_embedding.pos_embed.pos_embed",
                                         PREFIX "transformer.0.token_mixer.mixer.rbr_conv.0.conv.weight",
                                         PREFIX "transformer.0.convffn.conv.bn.weight",
                                         PREFIX "transformer.2.pre_norm_mha.1.qkv_proj.weight",
                                         PREFIX "transformer.4.pre_norm_ffn.0.bias",
                                         PREFIX "transformer.5.token_mixer.layer_scale",
                                         PREFIX "final_layer_norm.weight",
                                         PREFIX "projection_layer"};
    worst = fmax(worst, mc_fd_check_names(&fo, &t, tower_loss, mc_fd_find_map, &WM, &GM, names, sizeof names / sizeof *names, 2,
                                            "text tower"));
    /* a token id outside the vocabulary is refused with its position */
    tok[T + 3] = m->vocab;
    mc_tape_reset(&t.tape);
    int r = mc_text_train_forward(&t.c, m, &t.st, tok, N, &e);
    CHECK(r == MC_E_ARG && strstr(e.msg, "sequence 1 position 3"), "bad token id: %d '%s'", r, e.msg);
    printf("  whole text tower N=%d%s: 2 embedding rows + %zu parameters: worst fd rel err %.2e\n", N, label,
           sizeof names / sizeof *names, worst);
    if (mc_dropout_rates_any(&TOWER_RATES))
        CHECK(t.st.m_e && t.st.tf[1].m_o && t.st.tf[1].m_p && t.st.tf[1].m_g, "%s: the masks are on", label);
    tower_free(&t);
    free(tok);
    free(t.r);
}

/* Base text tower (mobileclip_b: 12 transformer layers, causal mask): eval-mode parity with the
 * inference forward on 2 golden captions, and a causal layer's backward by finite differences. */
static void test_base_text(void) {
    const char *archs = getenv("MC_TEST_ARCHS"); /* CI's sanitizer pass runs s0 only */
    if (archs && *archs && !strstr(archs, "b")) return;
    mc_err e = {0};
    mc_tensor_map_init(&WM);
    if (mc_weights_from_tsv_prefix(mc_test_path("golden/b.params.tsv"), PREFIX, &WM, NULL, &e)) mc_test_fatal("%s", e.msg);
    mc_test_param_arena(&WM, &GM);
    mc_text_encoder *m = NULL;
    if (mc_text_encoder_init(&m, &WM, 1, &e)) mc_test_fatal("%s", e.msg);
    CHECK(m->variant == MC_TEXT_BASE && m->causal, "b text tower is not Base / causal");
    mc_tensor_map g;
    mc_json *hdr = NULL;
    mc_test_load_golden("golden/b.golden.safetensors", &g, &hdr);
    mc_json_free(hdr);
    int32_t *tok = tokens_of(mc_test_tensor(&g, "input.tokens"));
    enum { N = 2 };
    float *ref = malloc(sizeof(float) * N * m->proj_dim);
    tower_case t;
    tower_alloc(&t, m, N, 1);
    CHECK(mc_text_train_forward(&t.c, m, &t.st, tok, N, &e) == 0, "b train forward: %s", e.msg);
    CHECK(mc_text_encoder_forward(m, tok, N, 0, ref, NULL, &e) == 0, "b inference: %s", e.msg);
    double d = mc_fd_rel_l2(t.st.embed, ref, (size_t)N * m->proj_dim);
    printf("  Base text (causal) training forward vs inference forward: rel-L2 %.2e\n", d);
    CHECK(d < 1e-5, "Base text training forward differs from the inference forward: %g", d);
    tower_free(&t);
    test_block("Base transformer.11 causal", 0, &m->blocks[11].tf, PREFIX "transformer.11.", m->dim, 2, 5, 1);
    free(tok);
    free(ref);
    mc_tensor_map_free(&g);
    mc_text_encoder_free(m);
    mc_tensor_map_free(&WM);
}

int main(void) {
    mc_err e = {0};
    mc_tensor_map_init(&WM);
    if (mc_weights_from_tsv_prefix(mc_test_path("golden/s0.params.tsv"), PREFIX, &WM, NULL, &e))
        mc_test_fatal("%s", e.msg);
    mc_test_param_arena(&WM, &GM);
    mc_text_encoder *m = NULL;
    if (mc_text_encoder_init(&m, &WM, 0, &e)) mc_test_fatal("%s", e.msg);
    CHECK(m->variant == MC_TEXT_MCT && m->n_blocks >= 3, "S0 text tower is not MCt");

    test_eval_parity(m);
    test_golden_train_forward(m);
    test_block("Text-RepMixer transformer.0", 1, &m->blocks[0].rm, PREFIX "transformer.0.", m->dim, 2, 5, 0);
    test_block("transformer layer transformer.1", 0, &m->blocks[1].tf, PREFIX "transformer.1.", m->dim, 2, 5, 0);
    test_block("transformer layer transformer.1 causal", 0, &m->blocks[1].tf, PREFIX "transformer.1.", m->dim, 2, 6, 1);
    /* dropout 0.3 (out_proj, fc2), ffn_dropout 0.2 (GELU), attn_dropout 0.25 (probabilities),
     * stochastic depth 0.5: the backward uses the forward's masks (fixed seed: the loss is a
     * function of the parameters), non-causal and causal */
    DROP = 0.3f, FFN_DROP = 0.2f, ATTN_DROP = 0.25f, DROP_PATH = 0.5f;
    test_block("transformer.1 with dropout + stochastic depth", 0, &m->blocks[1].tf, PREFIX "transformer.1.", m->dim, 4, 5, 0);
    test_block("transformer.1 causal with dropout + stochastic depth", 0, &m->blocks[1].tf, PREFIX "transformer.1.",
               m->dim, 4, 5, 1);
    {
        blk_case k = {.N = 4, .T = 5, .C = m->dim, .blk = &m->blocks[1].tf};
        size_t n = (size_t)4 * 5 * m->dim;
        k.x = rand_buf(n);
        k.c = (mc_train_ctx){.tape = &k.tape, .work = &k.work, .train = 1,
                             .rate = {.drop = DROP, .ffn = FFN_DROP, .attn = ATTN_DROP, .drop_path = DROP_PATH},
                             .rng = &k.rng};
        blk_forward(&k);
        tapes_alloc(&k.tape, &k.work);
        blk_forward(&k);
        size_t zo = 0, zg = 0, kept = 0, F = (size_t)m->blocks[1].tf.ffn_dim * 4 * 5;
        for (size_t i = 0; i < n; i++) zo += k.stf.m_o[i] == 0;
        for (size_t i = 0; i < F; i++) zg += k.stf.m_g[i] == 0;
        size_t zp = 0, P = (size_t)4 * m->blocks[1].tf.heads * 5 * 5;
        for (size_t i = 0; i < P; i++) zp += k.stf.m_p[i] == 0;
        for (int b = 0; b < 4; b++) kept += k.stf.keep1[b] != 0;
        printf("masks: out_proj %.3f dropped (p 0.3), GELU %.3f (p 0.2), probabilities %.3f (p 0.25), branch 1 kept "
               "for %zu of 4 samples\n", (double)zo / n, (double)zg / F, (double)zp / P, kept);
        CHECK(fabs((double)zo / n - 0.3) < 0.05 && fabs((double)zg / F - 0.2) < 0.03 && fabs((double)zp / P - 0.25) < 0.08,
              "dropout rates off");
        DROP = FFN_DROP = ATTN_DROP = DROP_PATH = 0;
        k.c.rate = (mc_dropout_rates){0};
        blk_forward(&k);
        CHECK(!k.stf.m_o && !k.stf.m_g && !k.stf.m_p && !k.stf.keep1, "rates 0: no masks taken");
        free(k.x), free(k.tape.base), free(k.work.base);
    }
    test_tower_fd(m, "");
    /* the whole tower with embed_dropout, dropout, attn_dropout and ffn_dropout on (fixed seed) */
    TOWER_RATES = (mc_dropout_rates){.embed = 0.1f, .drop = 0.1f, .attn = 0.1f, .ffn = 0.1f};
    test_tower_fd(m, " with dropout");
    TOWER_RATES = (mc_dropout_rates){0};

    mc_text_encoder_free(m);
    mc_tensor_map_free(&WM);
    test_base_text();
    return mc_test_finish("train_text");
}
