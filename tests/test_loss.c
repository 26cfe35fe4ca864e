/* The DR loss (src/train/loss.h) against golden/train (README "Loss"):
 *  - from the golden first-forward features (fwd.*) and teacher embeddings (input.*), every
 *    first-step breakdown term of expected_losses.json for lambda = 1 and 0.5 (abs <= 1e-5), the
 *    variant without --distill-average-after-softmax, the bfloat16-teacher variant, and the
 *    student logits / teacher probabilities the reference saved; plain CLIP with no teacher;
 *  - the logit scale from the stored parameter;
 *  - the backward (through the L2 normalisation and s = min(exp(t), 100)) against central
 *    finite differences of an independent double-precision implementation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/test_util.h"
#include "train/loss.h"

#define LOSS_TOL 1e-5

static mc_tensor_map G;
static mc_json *EXP;

static const float *golden(const char *name, int64_t numel) {
    const mc_tensor *t = mc_test_tensor(&G, name);
    if (t->dtype != MC_DTYPE_F32 || mc_tensor_numel(t) != numel) mc_test_fatal("%s: unexpected dtype or size", name);
    return t->data;
}

static double expected(const char *path) {
    /* path: keys separated by '/', numeric keys index arrays */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const mc_json *j = EXP;
    for (char *save = NULL, *k = strtok_r(buf, "/", &save); k && j; k = strtok_r(NULL, "/", &save))
        j = (*k >= '0' && *k <= '9') ? mc_json_at(j, atoi(k)) : mc_json_get(j, k);
    if (!j || j->type != MC_JSON_NUMBER) mc_test_fatal("expected_losses.json: no number at %s", path);
    return j->number;
}

static void near(const char *what, double got, double want, double tol) {
    int ok = fabs(got - want) <= tol;
    printf("%-4s %-44s %.7f  reference %.7f  (diff %.1e)\n", ok ? "ok" : "FAIL", what, got, want, fabs(got - want));
    CHECK(ok, "%s: %.9f vs %.9f", what, got, want);
}

enum { B = 4, E = 512, DT = 1536 };

static double lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 9007199254740992.0 - 0.5;
}

static mc_drclip_input golden_input(const float *teacher_image) {
    mc_drclip_input in;
    memset(&in, 0, sizeof in);
    in.B = B, in.E = E, in.Dt = DT, in.n_sets = 2;
    in.image = golden("fwd.image_features", B * E);
    in.text[0] = golden("fwd.text_features", B * E);
    in.text[1] = golden("fwd.syn_text_features", B * E);
    in.teacher_image = teacher_image;
    in.teacher_text[0] = golden("input.teacher_text_emb", B * DT);
    in.teacher_text[1] = golden("input.teacher_syn_text_emb", B * DT);
    in.scale = golden("fwd.logit_scale", 1)[0];
    return in;
}

static void compare_matrix(const char *what, const float *got, const char *ref, double scale) {
    const float *r = golden(ref, B * B);
    double d = 0;
    for (int i = 0; i < B * B; i++) d = fmax(d, fabs(got[i] * scale - r[i]));
    int ok = d <= 1e-5 * fmax(1.0, scale);
    printf("%-4s %-44s max abs diff %.2e\n", ok ? "ok" : "FAIL", what, d);
    CHECK(ok, "%s differs by %.3e", what, d);
}

static void test_golden_values(void) {
    mc_drclip_input shape = golden_input(NULL);
    float *scratch = malloc(sizeof(float) * mc_drclip_scratch_size(&shape));
    mc_err e = {0};
    const float *U = golden("input.teacher_image_emb", B * DT);
    /* the scale from the parameter t (s0.params.tsv: logit_scale = ln(1/0.07) in float32) */
    float t = (float)expected("float32/lam1/steps/0/logit_scale_param_before");
    near("logit scale min(exp(t), 100)", mc_logit_scale_forward(t), golden("fwd.logit_scale", 1)[0], 1e-6);

    static const char *tags[2] = {"lam1", "lam0_5"};
    static const float lambdas[2] = {1.f, 0.5f};
    for (int l = 0; l < 2; l++) {
        mc_drclip_config cfg = mc_drclip_config_default(lambdas[l]);
        mc_drclip_input in = golden_input(U);
        mc_drclip_losses out;
        if (mc_drclip_loss_forward(&cfg, &in, scratch, &out, &e)) mc_test_fatal("%s", e.msg);
        char k[256], w[64];
        static const char *sets[2] = {"real", "syn"};
        for (int s = 0; s < 2; s++) {
            double wc = cfg.weights[0] * out.clip[s], wd = cfg.weights[1] * out.distill_ce[s];
            struct { const char *name; double v; } terms[] = {
                {"weighted.%s.contrastive", wc}, {"weighted.%s.distill", wd}, {"weighted.%s.total", wc + wd},
                {"unweighted.%s.contrastive", out.clip[s]}, {"unweighted.%s.distill", out.distill_ce[s]},
                {"unweighted.%s.total", out.clip[s] + out.distill_ce[s]}, {"kl.%s.distill", out.distill_kl[s]},
            };
            for (size_t i = 0; i < sizeof terms / sizeof *terms; i++) {
                snprintf(w, sizeof w, terms[i].name, sets[s]);
                snprintf(k, sizeof k, "float32/%s/first_step_breakdown/%s", tags[l], w);
                char label[200];
                snprintf(label, sizeof label, "%s %s", tags[l], w);
                near(label, terms[i].v, expected(k), LOSS_TOL);
            }
        }
        snprintf(k, sizeof k, "float32/%s/steps/0/contrastive", tags[l]);
        near("contrastive_loss", out.contrastive, expected(k), LOSS_TOL);
        snprintf(k, sizeof k, "float32/%s/steps/0/distill", tags[l]);
        near("distill_loss", out.distill, expected(k), LOSS_TOL);
        snprintf(k, sizeof k, "float32/%s/steps/0/total", tags[l]);
        near("total", out.total, expected(k), LOSS_TOL);
        if (l == 0) {
            near("total vs float64 reference", out.total, expected("float64_lam1/steps/0/total"), LOSS_TOL);
            /* the saved matrices against the reference's tensors */
            const float *saved = scratch + 2 * B;
            for (int s = 0; s < 2; s++) {
                const float *Gm = saved + (size_t)6 * s * B * B; /* G_A, S_A, P_A, G_B, S_B, P_B */
                char ref[128];
                snprintf(ref, sizeof ref, "fwd.%s.student_logits_per_image", sets[s]);
                compare_matrix(ref, Gm, ref, in.scale);
                snprintf(ref, sizeof ref, "fwd.%s.student_logits_per_text", sets[s]);
                compare_matrix(ref, Gm + 3 * B * B, ref, in.scale);
                snprintf(ref, sizeof ref, "fwd.%s.teacher_probs_per_image", sets[s]);
                compare_matrix(ref, Gm + 2 * B * B, ref, 1);
                snprintf(ref, sizeof ref, "fwd.%s.teacher_probs_per_text", sets[s]);
                compare_matrix(ref, Gm + 5 * B * B, ref, 1);
            }
        }

        /* without --distill-average-after-softmax: softmax(100 U V^T) on the full vectors */
        cfg.average_after_softmax = 0;
        if (mc_drclip_loss_forward(&cfg, &in, scratch, &out, &e)) mc_test_fatal("%s", e.msg);
        snprintf(k, sizeof k, "reference_checks/no_average_after_softmax_losses/%s/distill_loss", tags[l]);
        near("distill_loss, summed teacher logits", out.distill, expected(k), LOSS_TOL);
        snprintf(k, sizeof k, "reference_checks/no_average_after_softmax_losses/%s/contrastive_loss", tags[l]);
        near("contrastive_loss, summed teacher logits", out.contrastive, expected(k), LOSS_TOL);

        /* bfloat16-stored teacher embeddings (DataCompDR-12M-bf16): the golden image rows as
         * given, the text rows rounded here (round to nearest even, as torch's .bfloat16()) */
        cfg.average_after_softmax = 1;
        in = golden_input(golden("input.teacher_image_emb_bf16_as_f32", B * DT));
        static float vt[2][B * DT];
        for (int s = 0; s < 2; s++) {
            for (int i = 0; i < B * DT; i++) vt[s][i] = mc_bf16_to_f32(mc_f32_to_bf16(in.teacher_text[s][i]));
            in.teacher_text[s] = vt[s];
        }
        if (mc_drclip_loss_forward(&cfg, &in, scratch, &out, &e)) mc_test_fatal("%s", e.msg);
        snprintf(k, sizeof k, "reference_checks/teacher_bf16_losses/%s/distill_loss", tags[l]);
        near("distill_loss, bf16 teacher", out.distill, expected(k), LOSS_TOL);
        snprintf(k, sizeof k, "reference_checks/teacher_bf16_losses/%s/contrastive_loss", tags[l]);
        near("contrastive_loss, bf16 teacher", out.contrastive, expected(k), LOSS_TOL);
    }

    /* plain CLIP: no teacher, lambda = 0 */
    mc_drclip_config clip = {.weights = {1.f, 0.f}, .n_teachers = 0};
    mc_drclip_input in = golden_input(NULL);
    in.teacher_text[0] = in.teacher_text[1] = NULL;
    in.Dt = 0;
    mc_drclip_losses out;
    CHECK(mc_drclip_loss_forward(&clip, &in, scratch, &out, &e) == 0, "plain CLIP: %s", e.msg);
    near("plain CLIP total (no teacher)", out.total,
         expected("float32/lam1/first_step_breakdown/unweighted.real.contrastive") +
             expected("float32/lam1/first_step_breakdown/unweighted.syn.contrastive"),
         LOSS_TOL);
    /* configuration errors */
    clip.weights[1] = 1.f;
    CHECK(mc_drclip_loss_forward(&clip, &in, scratch, &out, &e) == MC_E_ARG && strstr(e.msg, "without teacher"),
          "distillation without teachers refused: %s", e.msg);
    mc_drclip_config bad = mc_drclip_config_default(1.f);
    bad.teacher_dims[1] = 512;
    in = golden_input(U);
    CHECK(mc_drclip_loss_forward(&bad, &in, scratch, &out, &e) == MC_E_ARG && strstr(e.msg, "1536"),
          "teacher width mismatch refused: %s", e.msg);
    free(scratch);
}

/* ---- independent double reference ---- */

typedef struct ref_case {
    int b, e, dt, k, avg, sets;
    double w0, w1, scale[2];
    int dims[2];
} ref_case;

static double ref_lse(const double *z, int n) {
    double m = -INFINITY, s = 0;
    for (int i = 0; i < n; i++) m = z[i] > m ? z[i] : m;
    for (int i = 0; i < n; i++) s += exp(z[i] - m);
    return m + log(s);
}

/* L(raw image features FX [b,e], raw text features FY[s] [b,e], t) */
static double ref_loss(const ref_case *c, const double *FX, const double *FY, double t, const float *U,
                       const float *V) {
    int b = c->b, e = c->e;
    double *X = malloc(sizeof(double) * b * e), *Y = malloc(sizeof(double) * b * e);
    double *Z = malloc(sizeof(double) * b * b), *P = malloc(sizeof(double) * b * b), *row = malloc(sizeof(double) * b);
    double s = exp(t) < 100 ? exp(t) : 100, total = 0;
    for (int i = 0; i < b; i++) {
        double n = 0;
        for (int d = 0; d < e; d++) n += FX[i * e + d] * FX[i * e + d];
        for (int d = 0; d < e; d++) X[i * e + d] = FX[i * e + d] / fmax(sqrt(n), 1e-12);
    }
    for (int st = 0; st < c->sets; st++) {
        const double *F = FY + (size_t)st * b * e;
        const float *Vs = V + (size_t)st * b * c->dt;
        for (int i = 0; i < b; i++) {
            double n = 0;
            for (int d = 0; d < e; d++) n += F[i * e + d] * F[i * e + d];
            for (int d = 0; d < e; d++) Y[i * e + d] = F[i * e + d] / fmax(sqrt(n), 1e-12);
        }
        for (int dir = 0; dir < 2; dir++) { /* 0: image -> text, 1: text -> image */
            const double *A = dir ? Y : X, *Bm = dir ? X : Y;
            const float *TA = dir ? Vs : U, *TB = dir ? U : Vs;
            for (int i = 0; i < b; i++)
                for (int j = 0; j < b; j++) {
                    double z = 0;
                    for (int d = 0; d < e; d++) z += A[i * e + d] * Bm[j * e + d];
                    Z[i * b + j] = s * z;
                }
            /* teacher targets */
            for (int i = 0; i < b * b; i++) P[i] = 0;
            int nk = c->avg ? c->k : 1;
            for (int k = 0, off = 0; k < nk; k++) {
                int w = c->avg ? c->dims[k] : c->dt;
                for (int i = 0; i < b; i++) {
                    for (int j = 0; j < b; j++) {
                        double z = 0;
                        for (int d = 0; d < w; d++) z += (double)TA[i * c->dt + off + d] * TB[j * c->dt + off + d];
                        row[j] = c->scale[k] * z;
                    }
                    double l = ref_lse(row, b);
                    for (int j = 0; j < b; j++) P[i * b + j] += exp(row[j] - l) / nk;
                }
                off += w;
            }
            double ce = 0, dce = 0;
            for (int i = 0; i < b; i++) {
                double l = ref_lse(Z + i * b, b);
                ce += l - Z[i * b + i];
                for (int j = 0; j < b; j++) dce -= P[i * b + j] * (Z[i * b + j] - l);
            }
            total += c->w0 * ce / b / 2 + (c->k ? c->w1 * dce / b / 2 : 0);
        }
    }
    free(X), free(Y), free(Z), free(P), free(row);
    return total;
}

/* Compares our analytic gradient g[n] with central differences of ref_loss in x[n]. */
static void fd_compare(const char *what, const ref_case *c, double *x, const float *g, int n, double *FX, double *FY,
                       double *t, const float *U, const float *V) {
    double h = 1e-6, maxfd = 0, maxdiff = 0;
    double *fd = malloc(sizeof(double) * n);
    for (int i = 0; i < n; i++) {
        double x0 = x[i];
        x[i] = x0 + h;
        double lp = ref_loss(c, FX, FY, *t, U, V);
        x[i] = x0 - h;
        double lm = ref_loss(c, FX, FY, *t, U, V);
        x[i] = x0;
        fd[i] = (lp - lm) / (2 * h);
        maxfd = fmax(maxfd, fabs(fd[i]));
    }
    for (int i = 0; i < n; i++) maxdiff = fmax(maxdiff, fabs(fd[i] - g[i]));
    double rel = maxdiff / (maxfd > 0 ? maxfd : 1);
    int ok = maxfd == 0 ? maxdiff <= 1e-7 : rel <= 2e-4;
    printf("%-4s gradient %-34s max |fd| %.3e, max diff %.2e (rel %.2e)\n", ok ? "ok" : "FAIL", what, maxfd, maxdiff, rel);
    CHECK(ok, "%s: analytic vs finite differences rel %.3e", what, rel);
    free(fd);
}

static void test_backward(const char *label, ref_case c, double t0) {
    int b = c.b, e = c.e, n = b * e;
    /* raw features: not normalised, varied norms */
    double *FX = malloc(sizeof(double) * n), *FY = malloc(sizeof(double) * n * c.sets);
    float *U = malloc(sizeof(float) * b * c.dt), *V = malloc(sizeof(float) * b * c.dt * c.sets);
    uint64_t st = 0x9e3779b97f4a7c15ull;
#define RND() ((st = st * 6364136223846793005ull + 1442695040888963407ull), ((double)(st >> 11) / 9007199254740992.0 - 0.5))
    for (int i = 0; i < n; i++) FX[i] = RND() * (1 + i / e);
    for (int i = 0; i < n * c.sets; i++) FY[i] = RND() * (2 + (i / e) % 3);
    for (int i = 0; i < b * c.dt; i++) U[i] = (float)RND();
    for (int i = 0; i < b * c.dt * c.sets; i++) V[i] = (float)RND() * 0.5f;
    /* our path: normalise, loss, backward, chain */
    float *fx = malloc(sizeof(float) * n), *fy = malloc(sizeof(float) * n * c.sets), *x = malloc(sizeof(float) * n),
          *y = malloc(sizeof(float) * n * c.sets), nx[64], ny[2][64];
    float *dx = malloc(sizeof(float) * n), *dy = malloc(sizeof(float) * n * c.sets);
    for (int i = 0; i < n; i++) fx[i] = (float)FX[i];
    for (int i = 0; i < n * c.sets; i++) fy[i] = (float)FY[i];
    for (int i = 0; i < n; i++) FX[i] = fx[i]; /* the reference sees the same float inputs */
    for (int i = 0; i < n * c.sets; i++) FY[i] = fy[i];
    mc_l2_normalize_forward(x, nx, fx, b, e);
    for (int s = 0; s < c.sets; s++) mc_l2_normalize_forward(y + (size_t)s * n, ny[s], fy + (size_t)s * n, b, e);
    mc_drclip_config cfg = {.weights = {(float)c.w0, (float)c.w1}, .n_teachers = c.k, .average_after_softmax = c.avg};
    for (int k = 0; k < c.k; k++) cfg.teacher_dims[k] = c.dims[k], cfg.teacher_scale[k] = (float)c.scale[k];
    float t = (float)t0;
    mc_drclip_input in = {.B = b, .E = e, .Dt = c.dt, .image = x, .teacher_image = c.k ? U : NULL, .n_sets = c.sets,
                          .scale = mc_logit_scale_forward(t)};
    for (int s = 0; s < c.sets; s++) {
        in.text[s] = y + (size_t)s * n;
        in.teacher_text[s] = c.k ? V + (size_t)s * b * c.dt : NULL;
    }
    float *scratch = malloc(sizeof(float) * mc_drclip_scratch_size(&in));
    mc_drclip_losses out;
    mc_err err = {0};
    if (mc_drclip_loss_forward(&cfg, &in, scratch, &out, &err)) mc_test_fatal("%s", err.msg);
    double tt = t, ref = ref_loss(&c, FX, FY, tt, U, V);
    char what[160];
    snprintf(what, sizeof what, "%s: loss vs double reference", label);
    near(what, out.total, ref, 1e-5 * fmax(1, fabs(ref)));
    mc_drclip_grads g = {.image = dx, .text = {dy, c.sets > 1 ? dy + n : NULL}};
    mc_drclip_loss_backward(&cfg, &in, scratch, 1.f, &g);
    float *dys[2] = {dy, dy + n}, ds = g.scale;
    mc_l2_normalize_backward(dx, dx, x, nx, b, e);
    for (int s = 0; s < c.sets; s++) mc_l2_normalize_backward(dys[s], dys[s], y + (size_t)s * n, ny[s], b, e);
    float dt = mc_logit_scale_backward(t, ds);
    snprintf(what, sizeof what, "%s d image", label);
    fd_compare(what, &c, FX, dx, n, FX, FY, &tt, U, V);
    snprintf(what, sizeof what, "%s d text", label);
    fd_compare(what, &c, FY, dy, n * c.sets, FX, FY, &tt, U, V);
    snprintf(what, sizeof what, "%s d logit_scale", label);
    fd_compare(what, &c, &tt, &dt, 1, FX, FY, &tt, U, V);
    free(FX), free(FY), free(U), free(V), free(fx), free(fy), free(x), free(y), free(dx), free(dy), free(scratch);
}

/* Two emulated ranks (--local-loss --gather-with-grad): the mean of the ranks' losses is the
 * single-process loss, and DDP's average of the ranks' gradients, with the gathered copies'
 * gradients summed back into their owners' rows, is the single-process gradient. */
static void test_data_parallel(void) {
    enum { NB = 8, R = 2, LB = NB / R, EE = 24, TD = 20 };
    static float X[NB * EE], Y[2][NB * EE], U[NB * TD], V[2][NB * TD], nrm[NB];
    uint64_t st = 7;
    for (int i = 0; i < NB * EE; i++) X[i] = (float)lcg(&st), Y[0][i] = (float)lcg(&st), Y[1][i] = (float)lcg(&st);
    for (int i = 0; i < NB * TD; i++) U[i] = (float)lcg(&st), V[0][i] = (float)lcg(&st), V[1][i] = (float)lcg(&st);
    mc_l2_normalize_forward(X, nrm, X, NB, EE);
    for (int s = 0; s < 2; s++) mc_l2_normalize_forward(Y[s], nrm, Y[s], NB, EE);
    mc_drclip_config cfg = mc_drclip_config_default(0.5f);
    cfg.teacher_dims[0] = 12, cfg.teacher_dims[1] = 8, cfg.teacher_scale[1] = 40.f;
    mc_drclip_input in = {.B = NB, .E = EE, .Dt = TD, .image = X, .teacher_image = U, .n_sets = 2, .scale = 13.f,
                          .text = {Y[0], Y[1]}, .teacher_text = {V[0], V[1]}};
    mc_err e = {0};
    mc_drclip_losses whole, part[R];
    static float dX[NB * EE], dY[2][NB * EE];
    float *scratch = malloc(sizeof(float) * mc_drclip_scratch_size(&in));
    if (mc_drclip_loss_forward(&cfg, &in, scratch, &whole, &e)) mc_test_fatal("%s", e.msg);
    mc_drclip_grads g = {.image = dX, .text = {dY[0], dY[1]}};
    mc_drclip_loss_backward(&cfg, &in, scratch, 1.f, &g);
    float ds = g.scale;
    free(scratch);
    /* the ranks; DDP averages the gradients */
    static float aX[NB * EE], aY[2][NB * EE], lX[LB * EE], lY[2][LB * EE], gX[NB * EE], gY[2][NB * EE];
    double mean = 0, ads = 0;
    for (int r = 0; r < R; r++) {
        mc_drclip_input ri = in;
        ri.B = LB, ri.N = NB, ri.offset = r * LB;
        ri.image = X + r * LB * EE, ri.teacher_image = U + r * LB * TD;
        ri.image_all = X, ri.teacher_image_all = U;
        for (int s = 0; s < 2; s++) {
            ri.text[s] = Y[s] + r * LB * EE, ri.teacher_text[s] = V[s] + r * LB * TD;
            ri.text_all[s] = Y[s], ri.teacher_text_all[s] = V[s];
        }
        scratch = malloc(sizeof(float) * mc_drclip_scratch_size(&ri));
        if (mc_drclip_loss_forward(&cfg, &ri, scratch, &part[r], &e)) mc_test_fatal("rank %d: %s", r, e.msg);
        mc_drclip_grads rg = {.image = lX, .text = {lY[0], lY[1]}, .image_all = gX, .text_all = {gY[0], gY[1]}};
        mc_drclip_loss_backward(&cfg, &ri, scratch, 1.f, &rg);
        free(scratch);
        mean += part[r].total / R;
        ads += rg.scale / (double)R;
        for (int i = 0; i < NB * EE; i++) {
            aX[i] += gX[i] / R;
            for (int s = 0; s < 2; s++) aY[s][i] += gY[s][i] / R;
        }
        for (int i = 0; i < LB * EE; i++) {
            aX[r * LB * EE + i] += lX[i] / R;
            for (int s = 0; s < 2; s++) aY[s][r * LB * EE + i] += lY[s][i] / R;
        }
    }
    near("2 ranks: mean of the local losses = the loss", mean, whole.total, 1e-6);
    near("2 ranks: averaged d logit scale", ads, ds, 1e-5 * fabs(ds));
    double dmax = 0, gmax = 0;
    for (int i = 0; i < NB * EE; i++) {
        dmax = fmax(dmax, fabs(aX[i] - dX[i]));
        gmax = fmax(gmax, fabs(dX[i]));
        for (int s = 0; s < 2; s++) dmax = fmax(dmax, fabs(aY[s][i] - dY[s][i])), gmax = fmax(gmax, fabs(dY[s][i]));
    }
    printf("%-4s 2 ranks: DDP-averaged feature gradients vs one process: max diff %.2e (max %.2e)\n",
           dmax <= 1e-5 * gmax ? "ok" : "FAIL", dmax, gmax);
    CHECK(dmax <= 1e-5 * gmax, "data-parallel gradients differ by %.3e", dmax);
    /* a bad row range is refused */
    mc_drclip_input bad = in;
    bad.N = NB, bad.B = LB, bad.offset = NB - 1, bad.image_all = X, bad.teacher_image_all = U;
    bad.text_all[0] = Y[0], bad.text_all[1] = Y[1], bad.teacher_text_all[0] = V[0], bad.teacher_text_all[1] = V[1];
    CHECK(mc_drclip_check(&cfg, &bad, &e) == MC_E_ARG && strstr(e.msg, "gathered rows"), "row range: %s", e.msg);
}

int main(void) {
    mc_test_load_golden("golden/train/s0_step.safetensors", &G, NULL);
    EXP = mc_test_load_json("golden/train/expected_losses.json");
    test_golden_values();
    test_data_parallel();
    ref_case dr = {.b = 6, .e = 24, .dt = 20, .k = 2, .avg = 1, .sets = 2, .w0 = 0.5, .w1 = 0.5,
                   .scale = {100, 30}, .dims = {12, 8}};
    test_backward("DR lambda 0.5", dr, log(1 / 0.07));
    dr.avg = 0;
    test_backward("DR summed teacher logits", dr, 1.3);
    dr.w0 = 0, dr.w1 = 1, dr.avg = 1, dr.sets = 1;
    test_backward("distillation only, one set", dr, 0.2);
    ref_case clip = {.b = 5, .e = 16, .dt = 0, .k = 0, .sets = 1, .w0 = 1, .w1 = 0};
    test_backward("plain CLIP", clip, 2.0);
    test_backward("plain CLIP, scale clamped at 100", clip, 4.8);
    mc_tensor_map_free(&G);
    mc_json_free(EXP);
    return mc_test_finish("test_loss");
}
