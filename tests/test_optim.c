/* Optimisation (src/train/optim.h): AdamW against a double-precision implementation of torch
 * 1.13's _single_tensor_adamw over a small store (decay and no-decay groups, buffers untouched,
 * gradient accumulation), clip_grad_norm_, open_clip's cosine_lr, the logit-scale clamp; and
 * against golden/train: the total gradient norm from every parameter's gradient L2 equals the
 * reference's norm before clipping, the clip coefficient, and logit_scale after the first
 * clipped AdamW step (both lambdas). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/checkpoint.h"

#include "common/test_util.h"
#include "common/weight_rule.h"
#include "models/param_store.h"
#include "train/optim.h"

static void near(const char *what, double got, double want, double tol) {
    int ok = fabs(got - want) <= tol;
    printf("%-4s %-52s %.9g  reference %.9g\n", ok ? "ok" : "FAIL", what, got, want);
    CHECK(ok, "%s: %.12g vs %.12g (tol %.1e)", what, got, want, tol);
}

static double lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 9007199254740992.0 - 0.5;
}

static void declare(mc_param_store *s, const char *name, int ndim, int64_t d0, int64_t d1) {
    mc_err e = {0};
    int64_t shape[2] = {d0, d1};
    if (mc_param_store_declare(s, name, ndim, shape, &e)) mc_test_fatal("%s", e.msg);
}

static void test_adamw_small(void) {
    mc_param_store s;
    mc_param_store_init(&s);
    declare(&s, "proj.weight", 2, 3, 5);         /* decayed */
    declare(&s, "proj.bias", 1, 3, 0);           /* no decay: bias */
    declare(&s, "norm.bn.running_mean", 1, 3, 0);/* buffer */
    declare(&s, "norm.bn.num_batches_tracked", 0, 0, 0);
    declare(&s, "layer_scale", 2, 4, 1);         /* decayed, although a gain (ndim >= 2), as open_clip */
    declare(&s, "logit_scale", 0, 0, 0);         /* no decay */
    mc_err e = {0};
    if (mc_param_store_alloc(&s, &e) || mc_param_store_alloc_grad(&s, &e)) mc_test_fatal("%s", e.msg);
    mc_adamw o;
    mc_adamw_config cfg = mc_adamw_config_default(0);
    cfg.beta2 = 0.95f;
    mc_adamw_init(&o, &cfg);
    CHECK(mc_adamw_step(&o, &s, 1e-3f, &e) == MC_E_ARG, "step without moments refused");
    o.step = 0;
    if (mc_param_store_alloc_adam(&s, &e)) mc_test_fatal("%s", e.msg);
    CHECK((mc_param_store_find(&s, "layer_scale")->flags & MC_PARAM_NO_DECAY) == 0 &&
              (mc_param_store_find(&s, "proj.bias")->flags & MC_PARAM_NO_DECAY) &&
              (mc_param_store_find(&s, "logit_scale")->flags & MC_PARAM_NO_DECAY),
          "decay groups");

    uint64_t st = 42;
    size_t n = s.total;
    double *x = calloc(n, sizeof(double)), *m = calloc(n, sizeof(double)), *v = calloc(n, sizeof(double));
    double *gbuf = calloc(n, sizeof(double));
    for (size_t k = 0; k < n; k++) x[k] = s.data[k] = (float)lcg(&st);
    float buf0 = mc_param_store_data(&s, "norm.bn.running_mean")[1];
    double maxrel = 0;
    for (int t = 1; t <= 12; t++) {
        double lr = mc_cosine_lr(1e-2, 4, 12, t - 1);
        /* two accumulated micro-batches, averaged */
        mc_grad_zero(&s);
        double *g = gbuf;
        for (int i = 0; i < s.count; i++) {
            const mc_param *p = &s.params[i];
            if (p->flags & MC_PARAM_BUFFER) continue;
            for (size_t k = 0; k < p->numel; k++) {
                double g1 = lcg(&st) * (t % 3 + 0.1), g2 = lcg(&st);
                s.grad[p->offset + k] += (float)g1;
                s.grad[p->offset + k] += (float)g2;
                g[p->offset + k] = ((double)(float)g1 + (float)g2) * 0.5;
            }
        }
        mc_grad_scale(&s, 0.5f);
        if (mc_adamw_step(&o, &s, (float)lr, &e)) mc_test_fatal("%s", e.msg);
        /* the double reference */
        double bc1 = 1 - pow(0.9, t), bc2 = 1 - pow(0.95, t);
        for (int i = 0; i < s.count; i++) {
            const mc_param *p = &s.params[i];
            if (p->flags & MC_PARAM_BUFFER) continue;
            double wd = (p->flags & MC_PARAM_NO_DECAY) ? 0 : 0.2;
            for (size_t k = p->offset; k < p->offset + p->numel; k++) {
                x[k] *= 1 - (double)(float)lr * wd;
                m[k] = 0.9 * m[k] + 0.1 * g[k];
                v[k] = 0.95 * v[k] + 0.05 * g[k] * g[k];
                x[k] -= (double)(float)lr / bc1 * m[k] / (sqrt(v[k]) / sqrt(bc2) + 1e-8);
                maxrel = fmax(maxrel, fabs(s.data[k] - x[k]) / fmax(fabs(x[k]), 1e-3));
            }
        }
    }
    printf("%-4s AdamW 12 steps (cosine schedule, 2 accumulated micro-batches) vs double: max rel %.2e\n",
           maxrel <= 2e-5 ? "ok" : "FAIL", maxrel);
    CHECK(maxrel <= 2e-5, "AdamW vs double reference %.3e", maxrel);
    CHECK(o.step == 12, "step count %lld", (long long)o.step);
    CHECK(mc_param_store_data(&s, "norm.bn.running_mean")[1] == buf0, "buffers are not optimised");

    /* clip_grad_norm_ */
    double ss = 0;
    for (int i = 0; i < s.count; i++) {
        const mc_param *p = &s.params[i];
        for (size_t k = 0; k < p->numel && !(p->flags & MC_PARAM_COUNTER); k++) {
            float gv = (p->flags & MC_PARAM_BUFFER) ? 0.f : (float)(3 * lcg(&st));
            s.grad[p->offset + k] = gv;
            ss += (double)gv * gv;
        }
    }
    /* a buffer slot never carries a gradient; put garbage there: it must be ignored */
    s.grad[mc_param_store_find(&s, "norm.bn.running_mean")->offset] = 1e6f;
    float before = s.grad[0];
    double nrm = mc_clip_grad_norm(&s, 1.0f);
    near("global gradient norm (buffers excluded)", nrm, sqrt(ss), 1e-9 * sqrt(ss));
    near("clipped gradient", s.grad[0], before * (1.0 / (sqrt(ss) + 1e-6)), 1e-7);
    near("norm after clipping", mc_grad_global_norm(&s), 1.0, 1e-5);
    before = s.grad[0];
    mc_clip_grad_norm(&s, 10.f);
    CHECK(s.grad[0] == before, "no clipping below the threshold");
    free(x), free(m), free(v), free(gbuf);
    mc_param_store_free(&s);
}

static void test_schedule_and_clamp(void) {
    near("cosine_lr warmup step 0", mc_cosine_lr(1e-3, 1000, 10000, 0), 1e-6, 1e-15);
    near("cosine_lr warmup step 499", mc_cosine_lr(1e-3, 1000, 10000, 499), 5e-4, 1e-15);
    near("cosine_lr end of warmup (step 999)", mc_cosine_lr(1e-3, 1000, 10000, 999), 1e-3, 1e-15);
    near("cosine_lr first decay step (1000)", mc_cosine_lr(1e-3, 1000, 10000, 1000), 1e-3, 1e-15);
    near("cosine_lr half way (5500)", mc_cosine_lr(1e-3, 1000, 10000, 5500), 5e-4, 1e-15);
    near("cosine_lr quarter (3250)", mc_cosine_lr(1e-3, 1000, 10000, 3250), 1e-3 * (0.5 + 0.5 * sqrt(0.5)), 1e-15);
    near("cosine_lr last step (9999)", mc_cosine_lr(1e-3, 1000, 10000, 9999),
         0.5e-3 * (1 + cos(M_PI * 8999.0 / 9000.0)), 1e-15);
    near("cosine_lr no warmup step 0", mc_cosine_lr(2e-3, 0, 10, 0), 2e-3, 1e-15);
    float t = 5.f;
    mc_logit_scale_clamp(&t);
    near("logit scale clamped to ln 100", t, (float)log(100.0), 0);
    t = -0.5f;
    mc_logit_scale_clamp(&t);
    near("logit scale clamped to 0", t, 0, 0);
    t = 2.65f;
    mc_logit_scale_clamp(&t);
    near("logit scale inside the range", t, 2.65f, 0);
}

static double expected(const mc_json *j, const char *tag, int step, const char *key) {
    const mc_json *x = mc_json_get(mc_json_get(mc_json_get(j, "float32"), tag), "steps");
    x = mc_json_get(mc_json_at(x, step), key);
    if (!x || x->type != MC_JSON_NUMBER) mc_test_fatal("expected_losses.json: no %s %s", tag, key);
    return x->number;
}

static void test_golden(void) {
    mc_tensor_map g, w;
    mc_test_load_golden("golden/train/s0_step.safetensors", &g, NULL);
    mc_json *exp = mc_test_load_json("golden/train/expected_losses.json");
    mc_err e = {0};
    mc_tensor_map_init(&w);
    if (mc_weights_from_tsv(mc_test_path("golden/train/s0.params.tsv"), &w, NULL, &e)) mc_test_fatal("%s", e.msg);
    /* the store's trainable set with each gradient's reference L2 norm -> the total norm */
    mc_param_store s;
    mc_param_store_init(&s);
    if (mc_param_store_from_map(&s, &w, NULL, &e) || mc_param_store_alloc_grad(&s, &e)) mc_test_fatal("%s", e.msg);
    static const char *tags[2] = {"lam1", "lam0_5"};
    for (int l = 0; l < 2; l++) {
        mc_grad_zero(&s);
        int nparams = 0;
        for (int i = 0; i < s.count; i++) {
            const mc_param *p = &s.params[i];
            if (p->flags & MC_PARAM_BUFFER) continue;
            char name[300];
            snprintf(name, sizeof name, "grad.%s.%s.stats", tags[l], p->name);
            s.grad[p->offset] = (float)mc_tensor_get_f64(mc_test_tensor(&g, name), 0);
            nparams++;
        }
        double want = expected(exp, tags[l], 0, "grad_total_norm_before_clip");
        char what[128];
        snprintf(what, sizeof what, "%s total gradient norm over %d parameters", tags[l], nparams);
        /* the stats are the float32 run's gradients' norms taken in double; torch's float32
         * reductions over 54M elements differ from that by ~1.2e-5 relative */
        near(what, mc_grad_global_norm(&s), want, 3e-5 * want);

        /* logit_scale after the first clipped AdamW step */
        mc_param_store one;
        mc_param_store_init(&one);
        declare(&one, "logit_scale", 0, 0, 0);
        if (mc_param_store_alloc(&one, &e) || mc_param_store_alloc_grad(&one, &e) || mc_param_store_alloc_adam(&one, &e))
            mc_test_fatal("%s", e.msg);
        one.data[0] = (float)expected(exp, tags[l], 0, "logit_scale_param_before");
        char gname[64];
        snprintf(gname, sizeof gname, "grad.%s.logit_scale.full", tags[l]);
        one.grad[0] = (float)mc_tensor_get_f64(mc_test_tensor(&g, gname), 0);
        double coef = 1.0 / (want + 1e-6);
        near("clip coefficient", coef, expected(exp, tags[l], 0, "clip_coef"), 1e-7);
        one.grad[0] *= (float)coef;
        mc_adamw_config cfg = mc_adamw_config_default(0);
        cfg.beta2 = 0.95f;
        mc_adamw o;
        mc_adamw_init(&o, &cfg);
        if (mc_adamw_step(&o, &one, 1e-3f, &e)) mc_test_fatal("%s", e.msg);
        mc_logit_scale_clamp(one.data);
        snprintf(what, sizeof what, "%s logit_scale after step 1", tags[l]);
        near(what, one.data[0], expected(exp, tags[l], 0, "logit_scale_param_after"), 2e-7);
        mc_param_store_free(&one);
    }
    mc_param_store_free(&s);
    mc_tensor_map_free(&w);
    mc_tensor_map_free(&g);
    mc_json_free(exp);
}

/* Deterministic gradients of step t for the resume test. */
static void set_grads(mc_param_store *s, int t) {
    uint64_t st = 1000 + (uint64_t)t;
    mc_grad_zero(s);
    for (int i = 0; i < s->count; i++) {
        const mc_param *p = &s->params[i];
        if (p->flags & MC_PARAM_BUFFER) continue;
        for (size_t k = 0; k < p->numel; k++) s->grad[p->offset + k] = (float)lcg(&st);
    }
}

static void new_store(mc_param_store *s) {
    mc_err e = {0};
    mc_param_store_init(s);
    declare(s, "proj.weight", 2, 7, 5);
    declare(s, "proj.bias", 1, 7, 0);
    declare(s, "bn.running_var", 1, 7, 0);
    declare(s, "bn.num_batches_tracked", 0, 0, 0);
    declare(s, "logit_scale", 0, 0, 0);
    if (mc_param_store_alloc(s, &e) || mc_param_store_alloc_grad(s, &e) || mc_param_store_alloc_adam(s, &e))
        mc_test_fatal("%s", e.msg);
    uint64_t st = 99;
    for (size_t k = 0; k < s->total; k++) s->data[k] = (float)lcg(&st);
}

/* 4 steps in one run == 2 steps, save (parameters + optimizer), load into fresh objects, 2 steps. */
static void test_resume(void) {
    mc_adamw_config cfg = mc_adamw_config_default(0);
    cfg.beta2 = 0.95f;
    mc_err e = {0};
    mc_param_store a, b, c;
    mc_adamw oa, ob, oc;
    new_store(&a);
    new_store(&b);
    mc_adamw_init(&oa, &cfg);
    mc_adamw_init(&ob, &cfg);
    for (int t = 0; t < 4; t++) {
        set_grads(&a, t);
        mc_adamw_step(&oa, &a, (float)mc_cosine_lr(1e-2, 1, 4, t), &e);
    }
    for (int t = 0; t < 2; t++) {
        set_grads(&b, t);
        mc_adamw_step(&ob, &b, (float)mc_cosine_lr(1e-2, 1, 4, t), &e);
    }
    char pp[] = "/tmp/mc_resume_p_XXXXXX", po[] = "/tmp/mc_resume_o_XXXXXX";
    int f1 = mkstemp(pp), f2 = mkstemp(po);
    if (f1 < 0 || f2 < 0) mc_test_fatal("mkstemp");
    close(f1), close(f2);
    CHECK(mc_param_store_save(&b, pp, &e) == 0, "save parameters: %s", e.msg);
    CHECK(mc_adamw_save(&ob, &b, po, &e) == 0, "save optimizer: %s", e.msg);
    mc_param_store_free(&b);
    /* a fresh process: parameters from the checkpoint, the optimizer from its file */
    mc_tensor_map w;
    mc_tensor_map_init(&w);
    mc_param_store_init(&c);
    if (mc_checkpoint_load(pp, &w, &e) || mc_param_store_from_map(&c, &w, NULL, &e) || mc_param_store_alloc_grad(&c, &e))
        mc_test_fatal("%s", e.msg);
    mc_tensor_map_free(&w);
    mc_adamw_init(&oc, &cfg);
    CHECK(mc_adamw_load(&oc, &c, po, &e) == 0 && oc.step == 2, "load optimizer: %s", e.msg);
    for (int t = 2; t < 4; t++) {
        set_grads(&c, t);
        mc_adamw_step(&oc, &c, (float)mc_cosine_lr(1e-2, 1, 4, t), &e);
    }
    int same = c.count == a.count && oc.step == oa.step;
    for (int i = 0; same && i < a.count; i++) { /* entry by entry (the padding between entries is not state) */
        const mc_param *p = &a.params[i], *q = mc_param_store_find(&c, p->name);
        if (!q || q->numel != p->numel) { same = 0; break; }
        if (p->flags & MC_PARAM_COUNTER) continue;
        size_t n = p->numel * sizeof(float);
        same = !memcmp(c.data + q->offset, a.data + p->offset, n) && !memcmp(c.m + q->offset, a.m + p->offset, n) &&
               !memcmp(c.v + q->offset, a.v + p->offset, n);
    }
    printf("%-4s resume: 4 steps == 2 steps, save, load, 2 steps (bit-exact parameters and moments)\n",
           same ? "ok" : "FAIL");
    CHECK(same, "resumed run differs");
    /* refusals */
    mc_adamw_config other = cfg;
    other.beta2 = 0.999f;
    mc_adamw_init(&oc, &other);
    CHECK(mc_adamw_load(&oc, &c, po, &e) == MC_E_ARG && strstr(e.msg, "beta2"), "other beta2 refused: %s", e.msg);
    printf("     %s\n", e.msg);
    mc_param_store d;
    new_store(&d);
    mc_param_store_free(&d);
    mc_param_store_init(&d);
    declare(&d, "proj.weight", 2, 7, 6);
    if (mc_param_store_alloc(&d, &e)) mc_test_fatal("%s", e.msg);
    mc_adamw_init(&oc, &cfg);
    CHECK(mc_adamw_load(&oc, &d, po, &e) == MC_E_FORMAT && strstr(e.msg, "exp_avg.proj.weight"),
          "mis-shaped moment refused: %s", e.msg);
    printf("     %s\n", e.msg);
    mc_param_store_free(&d);
    mc_param_store_init(&d);
    declare(&d, "proj.weight", 2, 7, 5);
    if (mc_param_store_alloc(&d, &e)) mc_test_fatal("%s", e.msg);
    CHECK(mc_adamw_load(&oc, &d, po, &e) == MC_E_FORMAT && strstr(e.msg, "unexpected tensor 'exp_avg.proj.bias'"),
          "moments of unknown parameters refused: %s", e.msg);
    printf("     %s\n", e.msg);
    CHECK(mc_adamw_load(&oc, &d, pp, &e) == MC_E_FORMAT && strstr(e.msg, "step"), "a model checkpoint is no state: %s",
          e.msg);
    mc_param_store_free(&d);
    unlink(pp), unlink(po);
    mc_param_store_free(&a);
    mc_param_store_free(&c);
}

int main(void) {
    test_adamw_small();
    test_schedule_and_clamp();
    test_resume();
    test_golden();
    return mc_test_finish("test_optim");
}
