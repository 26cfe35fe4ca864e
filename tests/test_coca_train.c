/* CoCa training (models/coca_train.h, train/coca_step.h):
 *  - the general attention's training pair (cross-attention, shared pooler queries, masked
 *    causal self-attention) against a double-precision brute force and its central differences;
 *  - CoCaLoss and the gradient of every parameter for one batch against open_clip 7260a46 in
 *    float64 (tests/data/coca/train_golden.safetensors, tools/reference/gen_coca_train_ref.py):
 *    per-tensor norms and projections on a rule direction, a few full tensors;
 *  - three AdamW steps (clipping, decay groups, logit-scale clamp) against torch's float32 run;
 *  - the training forward's features and logits equal the inference model's;
 *  - fresh initialisation: seeded, deterministic, open_clip's statistics;
 *  - CoCaLoss and its gradients byte-identical with 1 and 2 threads. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "common/fd_check.h"
#include "common/test_util.h"
#include "common/weight_rule.h"
#include "io/safetensors.h"
#include "models/coca_train.h"
#include "nn/layers.h"
#include "train/coca_step.h"

static const char *data(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/coca/%s", MC_TEST_DATA_DIR, name);
    return buf[k];
}

static uint64_t rs = 0x9e3779b97f4a7c15ull;
static float frand(void) {
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    return (float)((rs >> 40) * (1.0 / 16777216.0) * 2.0 - 1.0);
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* ---------------------------------------------------------------- general attention */

typedef struct att_case {
    mc_attention_args a;
    int N;
    size_t nq, nk;          /* floats of the q buffer and of the k|v buffer (v may share it) */
    float *q, *kv, *r;      /* inputs, output weights */
    double *qd, *kvd;       /* double copies for the reference */
} att_case;

/* sum_i r[i] * out[i] of the brute-force attention in double, with q/kv read from qd/kvd */
static double att_ref(const att_case *c) {
    const mc_attention_args *a = &c->a;
    int C = a->H * a->D;
    double total = 0;
    const double *kd = c->kvd + (a->k - c->kv), *vd = c->kvd + (a->v - c->kv);
    const double *qd = c->q == c->kv ? c->kvd + (a->q - c->kv) : c->qd + (a->q - c->q);
    for (int n = 0; n < c->N; n++)
        for (int h = 0; h < a->H; h++)
            for (int i = 0; i < a->Tq; i++) {
                double s[64], mx = -INFINITY, sum = 0;
                const double *q = qd + n * a->q_batch + i * a->q_ld + h * a->D;
                for (int j = 0; j < a->Tk; j++) {
                    int vis = (a->causal_off == INT_MAX || j <= i + a->causal_off) &&
                              (!a->mask || a->mask[((size_t)n * a->Tq + i) * a->Tk + j]);
                    s[j] = -INFINITY;
                    if (!vis) continue;
                    const double *k = kd + n * a->kv_batch + j * a->kv_ld + h * a->D;
                    double d = 0;
                    for (int t = 0; t < a->D; t++) d += q[t] * a->scale * k[t];
                    s[j] = d;
                    mx = fmax(mx, d);
                }
                for (int j = 0; j < a->Tk; j++) sum += s[j] == -INFINITY ? 0 : exp(s[j] - mx);
                for (int t = 0; t < a->D; t++) {
                    double o = 0;
                    for (int j = 0; j < a->Tk; j++)
                        if (s[j] != -INFINITY) o += exp(s[j] - mx) / sum * vd[n * a->kv_batch + j * a->kv_ld + h * a->D + t];
                    total += o * c->r[((size_t)n * a->Tq + i) * C + h * a->D + t];
                }
            }
    return total;
}

/* analytic gradient (float) of every input element vs central differences of att_ref */
static void check_attention(const char *label, att_case *c) {
    int C = c->a.H * c->a.D;
    size_t no = (size_t)c->N * c->a.Tq * C;
    float *out = calloc(no, sizeof(float)), *p = calloc((size_t)c->N * c->a.H * c->a.Tq * c->a.Tk, sizeof(float));
    float *dq = calloc(c->nq, sizeof(float)), *dkv = calloc(c->nk, sizeof(float));
    float *sc = calloc(mc_attention_general_backward_scratch(&c->a), sizeof(float));
    c->qd = malloc(sizeof(double) * c->nq), c->kvd = malloc(sizeof(double) * c->nk);
    for (size_t i = 0; i < c->nq; i++) c->qd[i] = c->q[i];
    for (size_t i = 0; i < c->nk; i++) c->kvd[i] = c->kv[i];
    mc_attention_general_train_forward(out, p, &c->a, c->N);
    double got = dot(out, c->r, no), ref = att_ref(c);
    CHECK(fabs(got - ref) < 1e-5 * (1 + fabs(ref)), "%s forward: %.9g vs %.9g", label, got, ref);
    /* the forward equals the inference kernel */
    float *inf = calloc(no, sizeof(float));
    CHECK(mc_attention_general(inf, &c->a, c->N) == 0, "%s: inference", label);
    double dmax = 0;
    for (size_t i = 0; i < no; i++) dmax = fmax(dmax, fabs(inf[i] - out[i]));
    CHECK(dmax < 1e-5, "%s: train forward vs inference %g", label, dmax);
    const mc_attention_args *a = &c->a;
    float *dk = dkv + (a->k - c->kv), *dv = dkv + (a->v - c->kv);
    float *dqq = c->q == c->kv ? dkv : dq; /* packed self-attention: one buffer */
    mc_attention_general_backward(dqq, dk, dv, c->r, a, p, c->N, sc);
    double worst = 0, gmax = 0;
    for (int part = 0; part < 2; part++) {
        if (part == 0 && c->q == c->kv) continue;
        double *x = part ? c->kvd : c->qd;
        const float *g = part ? dkv : dq;
        size_t n = part ? c->nk : c->nq;
        for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(g[i]));
        for (size_t i = 0; i < n; i++) {
            double v = x[i], h = 1e-5;
            x[i] = v + h;
            double lp = att_ref(c);
            x[i] = v - h;
            double lm = att_ref(c);
            x[i] = v;
            worst = fmax(worst, fabs((lp - lm) / (2 * h) - g[i]));
        }
    }
    worst /= gmax > 0 ? gmax : 1;
    CHECK(worst < 1e-4 && gmax > 0, "%s: gradient rel err %.3g", label, worst);
    printf("  %-48s gradient rel err vs double FD %.2e\n", label, worst);
    free(out), free(p), free(dq), free(dkv), free(sc), free(inf), free(c->qd), free(c->kvd);
}

static float *rand_buf(size_t n, float amp) {
    float *x = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) x[i] = amp * frand();
    return x;
}

static void test_attention(void) {
    int N = 2, H = 2, D = 3, C = H * D;
    /* cross-attention: q [N,3,C], k|v packed [N,5,2C], a mask hiding keys (a row sees none) */
    {
        int Tq = 3, Tk = 5;
        uint8_t mask[2 * 3 * 5];
        for (int i = 0; i < 30; i++) mask[i] = (uint8_t)((i * 7 + 3) % 4 != 0);
        for (int j = 0; j < Tk; j++) mask[1 * Tk + j] = 0; /* sequence 0, query 1: no key */
        att_case c = {.N = N, .nq = (size_t)N * Tq * C, .nk = (size_t)N * Tk * 2 * C};
        c.q = rand_buf(c.nq, 2.f), c.kv = rand_buf(c.nk, 2.f), c.r = rand_buf((size_t)N * Tq * C, 1.f);
        c.a = (mc_attention_args){.q = c.q, .k = c.kv, .v = c.kv + C, .q_ld = (size_t)C, .kv_ld = 2 * (size_t)C,
                                  .q_batch = (size_t)Tq * C, .kv_batch = (size_t)Tk * 2 * C, .Tq = Tq, .Tk = Tk,
                                  .H = H, .D = D, .scale = 0.57735f, .causal_off = INT_MAX, .mask = mask};
        check_attention("cross-attention, byte mask, an empty row", &c);
        free(c.q), free(c.kv), free(c.r);
    }
    /* attentional pooler: the same 4 queries for every sequence (q_batch 0) */
    {
        int Tq = 4, Tk = 6;
        att_case c = {.N = N, .nq = (size_t)Tq * C, .nk = (size_t)N * Tk * 2 * C};
        c.q = rand_buf(c.nq, 2.f), c.kv = rand_buf(c.nk, 2.f), c.r = rand_buf((size_t)N * Tq * C, 1.f);
        c.a = (mc_attention_args){.q = c.q, .k = c.kv, .v = c.kv + C, .q_ld = (size_t)C, .kv_ld = 2 * (size_t)C,
                                  .q_batch = 0, .kv_batch = (size_t)Tk * 2 * C, .Tq = Tq, .Tk = Tk, .H = H, .D = D,
                                  .scale = 0.57735f, .causal_off = INT_MAX};
        check_attention("pooler: shared queries (q_batch 0)", &c);
        free(c.q), free(c.kv), free(c.r);
    }
    /* packed self-attention qkv [N,T,3C], causal + a CLS-like mask on the last row */
    {
        int T = 5;
        uint8_t mask[2 * 5 * 5];
        for (int n = 0; n < N; n++)
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++) mask[(n * T + i) * T + j] = i < T - 1 || j != 3 - n;
        att_case c = {.N = N, .nq = (size_t)N * T * 3 * C, .nk = (size_t)N * T * 3 * C};
        c.kv = rand_buf(c.nk, 2.f), c.q = c.kv, c.r = rand_buf((size_t)N * T * C, 1.f);
        c.a = (mc_attention_args){.q = c.kv, .k = c.kv + C, .v = c.kv + 2 * C, .q_ld = 3 * (size_t)C,
                                  .kv_ld = 3 * (size_t)C, .q_batch = (size_t)T * 3 * C, .kv_batch = (size_t)T * 3 * C,
                                  .Tq = T, .Tk = T, .H = H, .D = D, .scale = 0.57735f, .causal_off = 0, .mask = mask};
        check_attention("self-attention: packed qkv, causal + mask", &c);
        free(c.kv), free(c.r);
    }
}

/* ---------------------------------------------------------------- against open_clip */

typedef struct golden {
    mc_tensor_map g;
    mc_json *header, *names;
    float *images;
    int32_t *text;
    int B, L;
} golden;

static void golden_load(golden *gd) {
    mc_err e = {0};
    mc_tensor_map_init(&gd->g);
    if (mc_safetensors_load(data("train_golden.safetensors"), &gd->g, &gd->header, &e))
        mc_test_fatal("golden data: %s", e.msg);
    const mc_json *meta = mc_json_get(gd->header, "__metadata__"), *nm = meta ? mc_json_get(meta, "names") : NULL;
    gd->names = nm && nm->type == MC_JSON_STRING ? mc_json_parse(nm->str, strlen(nm->str), &e) : NULL;
    if (!gd->names || gd->names->type != MC_JSON_ARRAY) mc_test_fatal("golden metadata: no parameter names");
    const mc_tensor *ti = mc_test_tensor(&gd->g, "input.images"), *tt = mc_test_tensor(&gd->g, "input.text");
    gd->B = (int)tt->shape[0], gd->L = (int)tt->shape[1];
    gd->images = malloc(sizeof(float) * (size_t)mc_tensor_numel(ti));
    mc_tensor_to_f32(ti, gd->images);
    gd->text = malloc(sizeof(int32_t) * (size_t)gd->B * gd->L);
    for (int i = 0; i < gd->B * gd->L; i++) gd->text[i] = (int32_t)mc_tensor_get_f64(tt, i);
}

static void golden_free(golden *gd) {
    mc_tensor_map_free(&gd->g);
    mc_json_free(gd->header);
    mc_json_free(gd->names);
    free(gd->images);
    free(gd->text);
}

static void model_load(mc_coca_trainable *t, const mc_oc_cfg *cfg) {
    mc_err e = {0};
    mc_tensor_map w;
    mc_tensor_map_init(&w);
    if (mc_weights_from_tsv(data("params.tsv"), &w, NULL, &e)) mc_test_fatal("weights: %s", e.msg);
    if (mc_coca_trainable_init(t, cfg, &w, &e)) mc_test_fatal("trainable CoCa: %s", e.msg);
}

/* sum of x[i] * rule("dir." + name, i, -1, 1), as the generator's direction */
static double project(const char *name, const float *x, size_t n) {
    char buf[256];
    snprintf(buf, sizeof buf, "dir.%s", name);
    uint64_t h = mc_fnv1a64(buf);
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * mc_weight_rule_value(h, i, -1.0, 1.0);
    return s;
}

static double norm2(const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

/* per tensor: |norm - ref| <= tol * ref and |proj - ref| <= tol * norm_ref (a projection on a
 * random direction is ~norm / sqrt(n): relative to the norm it bounds the error's component). */
static void compare_summaries(const char *what, const golden *gd, const mc_coca_trainable *t, const float *arena,
                              const char *norm_key, const char *proj_key, double tol) {
    const mc_tensor *rn = mc_test_tensor(&gd->g, norm_key), *rp = mc_test_tensor(&gd->g, proj_key);
    int P = gd->names->count;
    CHECK(P == (int)mc_tensor_numel(rn) && P == t->store.count, "%s: %d names, %d norms, %d store entries", what, P,
          (int)mc_tensor_numel(rn), t->store.count);
    double worst = 0;
    const char *wname = "";
    for (int i = 0; i < P && i < (int)mc_tensor_numel(rn); i++) {
        const char *name = gd->names->items[i].str;
        const mc_param *p = mc_param_store_find(&t->store, name);
        CHECK(p != NULL, "%s: no parameter %s", what, name);
        if (!p) continue;
        const float *x = arena + p->offset;
        double n = norm2(x, p->numel), pr = project(name, x, p->numel);
        double refn = mc_tensor_get_f64(rn, i), refp = mc_tensor_get_f64(rp, i);
        double err = fmax(fabs(n - refn), fabs(pr - refp)) / fmax(refn, 1e-12);
        if (refn < 1e-9) err = n; /* no gradient in torch: none here */
        CHECK(err <= tol, "%s %s: norm %.8g (ref %.8g) projection %.8g (ref %.8g)", what, name, n, refn, pr, refp);
        if (err > worst) worst = err, wname = name;
    }
    printf("  %-40s %d tensors: worst rel err %.2e (%s)\n", what, P, worst, wname);
}

static void test_golden(const mc_oc_cfg *cfg) {
    int nthreads = omp_get_max_threads();
    golden gd;
    golden_load(&gd);
    mc_err e = {0};
    mc_coca_trainable t;
    model_load(&t, cfg);
    mc_coca_train_config tc = {.adamw = {0.9f, 0.98f, 1e-6f, 0.2f}, .grad_clip = 1.0f, .clip_weight = 1.0,
                               .caption_weight = 2.0};
    mc_coca_trainer tr;
    if (mc_coca_trainer_init(&tr, &t, &tc, gd.B, &e)) mc_test_fatal("trainer: %s", e.msg);
    printf("  activations %.1f MiB, backward work %.1f MiB for %d pairs\n", tr.tape_floats * 4.0 / 1048576,
           tr.work_floats * 4.0 / 1048576, gd.B);

    /* the training forward equals the inference model (features, logits) */
    mc_grad_zero(&t.store);
    mc_tape_reset(&tr.tape), mc_tape_reset(&tr.work);
    CHECK(mc_coca_train_forward(&tr.ctx, &t.m, &tr.st, gd.images, gd.text, gd.B, &e) == 0, "forward: %s", e.msg);
    int B = gd.B, L = gd.L, E = t.m.embed_dim, V = t.m.dec.vocab, Ti = t.m.n_img_tok;
    float *fi = malloc(sizeof(float) * B * E), *ft = malloc(sizeof(float) * B * E);
    float *tok = malloc(sizeof(float) * (size_t)B * Ti * E), *lg = malloc(sizeof(float) * (size_t)B * (L - 1) * V);
    int32_t *prefix = malloc(sizeof(int32_t) * B * (L - 1));
    int idx[16];
    for (int b = 0; b < B; b++) {
        idx[b] = b;
        memcpy(prefix + (size_t)b * (L - 1), gd.text + (size_t)b * L, sizeof(int32_t) * (L - 1));
    }
    CHECK(mc_coca_encode_image(&t.m, gd.images, B, fi, tok, &e) == 0, "encode_image: %s", e.msg);
    CHECK(mc_coca_encode_text(&t.m, gd.text, B, ft, &e) == 0, "encode_text: %s", e.msg);
    CHECK(mc_coca_logits(&t.m, tok, B, idx, prefix, B, L - 1, lg, &e) == 0, "logits: %s", e.msg);
    double d1 = mc_fd_rel_l2(tr.st.img_feat, fi, (size_t)B * E), d2 = mc_fd_rel_l2(tr.st.txt_feat, ft, (size_t)B * E);
    double d3 = mc_fd_rel_l2(tr.st.img_tok, tok, (size_t)B * Ti * E);
    /* logits are kept for the positions whose label is not padding */
    int labels = 0;
    for (int b = 0; b < B; b++)
        for (int p = 0; p + 1 < L; p++) labels += gd.text[(size_t)b * L + p + 1] != 0;
    CHECK(tr.st.n_rows == labels && labels < B * (L - 1), "%d logit rows for %d labels", tr.st.n_rows, labels);
    float *lr = malloc(sizeof(float) * (size_t)tr.st.n_rows * V);
    for (int i = 0; i < tr.st.n_rows; i++) memcpy(lr + (size_t)i * V, lg + (size_t)tr.st.rows[i] * V, sizeof(float) * V);
    double d4 = mc_fd_rel_l2(tr.st.logits, lr, (size_t)tr.st.n_rows * V);
    free(lr);
    printf("  training forward vs inference: image %.1e text %.1e tokens %.1e logits %.1e\n", d1, d2, d3, d4);
    CHECK(d1 < 1e-5 && d2 < 1e-5 && d3 < 1e-5 && d4 < 1e-5, "training forward differs from inference");

    /* CoCaLoss and every gradient, one batch */
    mc_coca_losses lo;
    mc_grad_zero(&t.store);
    CHECK(mc_coca_trainer_forward_backward(&tr, gd.images, gd.text, 1.f, &lo, &e) == 0, "forward/backward: %s", e.msg);
    double rc = mc_tensor_get_f64(mc_test_tensor(&gd.g, "loss.clip"), 0);
    double rp = mc_tensor_get_f64(mc_test_tensor(&gd.g, "loss.caption"), 0);
    printf("  CoCaLoss clip %.7f (ref %.7f) caption %.7f (ref %.7f)\n", lo.clip, rc, lo.caption, rp);
    CHECK(fabs(lo.clip - rc) <= 1e-5 * fabs(rc) + 1e-6, "clip loss %.8f vs %.8f", lo.clip, rc);
    CHECK(fabs(lo.caption - rp) <= 1e-5 * fabs(rp), "caption loss %.8f vs %.8f", lo.caption, rp);
    compare_summaries("gradients (norm, projection)", &gd, &t, t.store.grad, "grad.norm", "grad.proj", 1e-3);
    double worst = 0;
    int nfull = 0;
    for (int i = 0; i < gd.g.count; i++) {
        const char *key = gd.g.items[i].name;
        if (strncmp(key, "grad.", 5) || !strcmp(key, "grad.norm") || !strcmp(key, "grad.proj")) continue;
        const mc_param *p = mc_param_store_find(&t.store, key + 5);
        CHECK(p && (int64_t)p->numel == mc_tensor_numel(&gd.g.items[i].t), "%s: no such parameter", key);
        if (!p) continue;
        float *ref = malloc(sizeof(float) * p->numel);
        mc_tensor_to_f32(&gd.g.items[i].t, ref);
        double r = mc_fd_rel_l2(t.store.grad + p->offset, ref, p->numel);
        CHECK(r < 1e-3, "%s: rel L2 error %.3g", key, r);
        worst = fmax(worst, r), nfull++;
        free(ref);
    }
    printf("  %d full gradient tensors: worst rel L2 err %.2e\n", nfull, worst);

    /* the caption rows are split over the threads: the same loss and gradients with 1 and 2 */
    float *g1 = malloc(sizeof(float) * t.store.total);
    mc_coca_losses l1, l2;
    for (int th = 1; th <= 2; th++) {
        omp_set_num_threads(th);
        mc_grad_zero(&t.store);
        CHECK(mc_coca_trainer_forward_backward(&tr, gd.images, gd.text, 1.f, th == 1 ? &l1 : &l2, &e) == 0,
              "forward/backward: %s", e.msg);
        if (th == 1) memcpy(g1, t.store.grad, sizeof(float) * t.store.total);
    }
    omp_set_num_threads(nthreads);
    CHECK(tr.st.n_rows >= 8 && l1.caption == l2.caption && !memcmp(g1, t.store.grad, sizeof(float) * t.store.total),
          "CoCaLoss differs between 1 and 2 threads (%d caption rows)", tr.st.n_rows);
    free(g1);

    /* three AdamW steps on the same batch */
    float *p0 = malloc(sizeof(float) * t.store.total);
    memcpy(p0, t.store.data, sizeof(float) * t.store.total);
    const mc_tensor *sl = mc_test_tensor(&gd.g, "steps.loss");
    for (int s = 0; s < 3; s++) {
        mc_coca_step_stats ss;
        CHECK(mc_coca_trainer_step(&tr, gd.images, gd.text, 1e-3f, &ss, &e) == 0, "step: %s", e.msg);
        double ref = mc_tensor_get_f64(sl, s);
        printf("  step %d loss %.6f (torch float32 %.6f) grad norm %.4f\n", s, ss.loss.total, ref, ss.grad_norm);
        CHECK(fabs(ss.loss.total - ref) <= 2e-4 * fabs(ref), "step %d loss %.7f vs %.7f", s, ss.loss.total, ref);
    }
    for (size_t i = 0; i < t.store.total; i++) p0[i] = t.store.data[i] - p0[i];
    compare_summaries("parameter change, 3 AdamW steps", &gd, &t, p0, "delta.norm", "delta.proj", 2e-2);
    free(p0);
    free(fi), free(ft), free(tok), free(lg), free(prefix);
    mc_coca_trainer_free(&tr);
    mc_coca_trainable_free(&t);
    golden_free(&gd);
}

/* ---------------------------------------------------------------- fresh initialisation */

static double stdev(const mc_coca_trainable *t, const char *name, double *mean_out) {
    const mc_param *p = mc_param_store_find(&t->store, name);
    if (!p) mc_test_fatal("no parameter %s", name);
    const float *x = t->store.data + p->offset;
    double s = 0, q = 0;
    for (size_t i = 0; i < p->numel; i++) s += x[i], q += (double)x[i] * x[i];
    double m = s / p->numel;
    if (mean_out) *mean_out = m;
    return sqrt(fmax(q / p->numel - m * m, 0));
}

static void test_fresh(const mc_oc_cfg *cfg) {
    mc_err e = {0};
    mc_coca_trainable a, b;
    if (mc_coca_trainable_init(&a, cfg, NULL, &e) || mc_coca_trainable_init(&b, cfg, NULL, &e))
        mc_test_fatal("declared CoCa: %s", e.msg);
    mc_coca_init_fresh(&a, 7);
    mc_coca_init_fresh(&b, 7);
    CHECK(a.store.total == b.store.total && !memcmp(a.store.data, b.store.data, sizeof(float) * a.store.total),
          "fresh init: same seed, different weights");
    mc_coca_init_fresh(&b, 8);
    CHECK(memcmp(a.store.data, b.store.data, sizeof(float) * a.store.total), "fresh init: the seed changes nothing");
    int W = cfg->text.width, Cv = cfg->vision.width;
    struct { const char *name; double std; } want[] = {
        {"text.token_embedding.weight", 0.02},
        {"text.positional_embedding", 0.01},
        {"text.transformer.resblocks.0.attn.in_proj_weight", pow(W, -0.5)},
        {"text.transformer.resblocks.1.mlp.c_proj.weight", pow(W, -0.5) * pow(2.0 * cfg->text.layers, -0.5)},
        {"text.transformer.resblocks.0.mlp.c_fc.weight", pow(2.0 * W, -0.5)},
        {"visual.positional_embedding", pow(Cv, -0.5)},
        {"visual.attn_pool.query", 1.0},
        {"text_decoder.text_projection", pow(W, -0.5)},
        /* xavier_uniform of [3W, W]: bound sqrt(6 / (3W + W)), std bound / sqrt 3 */
        {"text_decoder.resblocks.0.attn.in_proj_weight", sqrt(6.0 / (4.0 * W)) / sqrt(3.0)},
        /* nn.Linear default U(+-1/sqrt(W)) */
        {"text_decoder.cross_attn.1.mlp.c_fc.weight", 1.0 / sqrt((double)W) / sqrt(3.0)},
    };
    double worst = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        double m, s = stdev(&a, want[i].name, &m);
        double r = fabs(s / want[i].std - 1);
        CHECK(r < 0.08 && fabs(m) < 0.1 * want[i].std + 0.01, "fresh %s: std %.5f (want %.5f) mean %.5f", want[i].name,
              s, want[i].std, m);
        worst = fmax(worst, r);
    }
    double m;
    CHECK(stdev(&a, "text.ln_final.weight", &m) == 0 && m == 1, "fresh ln weight not 1");
    CHECK(stdev(&a, "visual.attn_pool.attn.in_proj_bias", &m) == 0 && m == 0, "fresh attention bias not 0");
    CHECK(fabsf(*a.logit_scale - logf(1 / 0.07f)) < 1e-6f, "fresh logit_scale %g", *a.logit_scale);
    printf("  fresh init: seeded and deterministic, std within %.1f%% of open_clip's\n", worst * 100);

    /* a fresh model learns a fixed batch */
    golden gd;
    golden_load(&gd);
    mc_coca_train_config tc = {.adamw = {0.9f, 0.98f, 1e-6f, 0.2f}, .grad_clip = 1.0f, .clip_weight = 1.0,
                               .caption_weight = 2.0};
    mc_coca_trainer tr;
    if (mc_coca_trainer_init(&tr, &a, &tc, gd.B, &e)) mc_test_fatal("trainer: %s", e.msg);
    double first = 0, last = 0;
    for (int s = 0; s < 8; s++) {
        mc_coca_step_stats ss;
        CHECK(mc_coca_trainer_step(&tr, gd.images, gd.text, 3e-3f, &ss, &e) == 0, "step: %s", e.msg);
        if (!s) first = ss.loss.total;
        last = ss.loss.total;
    }
    printf("  fresh model, 8 steps on one batch: loss %.4f -> %.4f\n", first, last);
    CHECK(last < 0.7 * first, "a fresh model does not learn: %.4f -> %.4f", first, last);
    mc_coca_trainer_free(&tr);
    golden_free(&gd);
    mc_coca_trainable_free(&a);
    mc_coca_trainable_free(&b);
}

static void test_refusals(const mc_oc_cfg *cfg) {
    mc_err e = {0};
    mc_coca_trainable t;
    mc_oc_cfg q = *cfg;
    q.quick_gelu = 1;
    CHECK(mc_coca_trainable_init(&t, &q, NULL, &e) == MC_E_UNSUPPORTED && strstr(e.msg, "quick_gelu"),
          "quick_gelu CoCa accepted for training: %s", e.msg);
    mc_oc_cfg clip;
    if (mc_oc_cfg_builtin("ViT-B-32", &clip, &e)) mc_test_fatal("ViT-B-32: %s", e.msg);
    CHECK(mc_coca_trainable_init(&t, &clip, NULL, &e) == MC_E_ARG && strstr(e.msg, "not a CoCa"),
          "a CLIP configuration accepted as CoCa: %s", e.msg);
    /* a checkpoint with a tensor too many is refused strictly, naming it */
    mc_tensor_map w;
    mc_tensor_map_init(&w);
    if (mc_weights_from_tsv(data("params.tsv"), &w, NULL, &e)) mc_test_fatal("weights: %s", e.msg);
    float one = 1.f;
    int64_t shape[1] = {1};
    mc_tensor x = {.dtype = MC_DTYPE_F32, .ndim = 1, .shape = {shape[0]}, .data = &one};
    if (mc_tensor_map_add(&w, "text_decoder.extra", &x, &e)) mc_test_fatal("add: %s", e.msg);
    CHECK(mc_coca_trainable_init(&t, cfg, &w, &e) != 0 && strstr(e.msg, "text_decoder.extra"),
          "an unexpected tensor accepted: %s", e.msg);
    /* batch of one: no contrastive loss */
    model_load(&t, cfg);
    mc_coca_train_config tc = {.adamw = {0.9f, 0.98f, 1e-6f, 0.2f}, .clip_weight = 1, .caption_weight = 2};
    mc_coca_trainer tr;
    CHECK(mc_coca_trainer_init(&tr, &t, &tc, 1, &e) == MC_E_ARG, "batch 1 accepted");
    /* token ids outside the vocabulary */
    if (mc_coca_trainer_init(&tr, &t, &tc, 2, &e)) mc_test_fatal("trainer: %s", e.msg);
    int L = t.m.clip.text->context;
    int32_t *bad = calloc((size_t)2 * L, sizeof(int32_t));
    float *img = calloc((size_t)2 * 3 * 32 * 32, sizeof(float));
    bad[3] = 64;
    CHECK(mc_coca_trainer_step(&tr, img, bad, 1e-3f, NULL, &e) == MC_E_ARG && strstr(e.msg, "token id 64"),
          "a token id outside the vocabulary accepted: %s", e.msg);
    free(bad), free(img);
    mc_coca_trainer_free(&tr);
    mc_coca_trainable_free(&t);
}

int main(void) {
    mc_err e = {0};
    mc_oc_cfg cfg;
    if (mc_oc_cfg_load(data("config.json"), &cfg, &e)) mc_test_fatal("config: %s", e.msg);
    test_attention();
    test_golden(&cfg);
    test_fresh(&cfg);
    test_refusals(&cfg);
    return mc_test_finish("coca_train");
}
