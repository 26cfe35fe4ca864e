/* DRClipLoss forward/backward, the logit scale and the L2 normalisation; see loss.h. */
#include "train/loss.h"

#include <math.h>
#include <string.h>

#define SAVED 5 /* matrices saved per caption set: G, S_A, S_B, P_A, P_B */

mc_drclip_config mc_drclip_config_default(float lambda) {
    mc_drclip_config c;
    memset(&c, 0, sizeof c);
    c.weights[0] = 1.f - lambda;
    c.weights[1] = lambda;
    c.n_teachers = 2;
    c.teacher_dims[0] = c.teacher_dims[1] = 768;
    c.teacher_scale[0] = c.teacher_scale[1] = 100.f;
    c.average_after_softmax = 1;
    return c;
}

/* Scratch layout (floats): a double row vector [B] (2B floats, first so that it is aligned),
 * then per set the SAVED [B,B] matrices, then one [B,B] work matrix (teacher logits in the
 * forward, dG in the backward). */
static size_t saved_offset(int B) { return 2 * (size_t)B; }
static size_t work_offset(int B, int n_sets) { return saved_offset(B) + (size_t)SAVED * n_sets * B * B; }

size_t mc_drclip_scratch_size(int B, int n_sets) {
    return work_offset(B, n_sets > 0 ? n_sets : 1) + (size_t)B * B;
}

int mc_drclip_check(const mc_drclip_config *cfg, const mc_drclip_input *in, mc_err *e) {
    if (in->B < 1 || in->E < 1) return mc_fail(e, MC_E_ARG, "loss: batch %d, width %d", in->B, in->E);
    if (in->n_sets < 1 || in->n_sets > MC_DRCLIP_MAX_SETS)
        return mc_fail(e, MC_E_ARG, "loss: %d caption sets (1 or 2)", in->n_sets);
    if (!in->image) return mc_fail(e, MC_E_ARG, "loss: no image features");
    for (int s = 0; s < in->n_sets; s++)
        if (!in->text[s]) return mc_fail(e, MC_E_ARG, "loss: no text features for caption set %d", s);
    if (!(in->scale >= 0) || !isfinite(in->scale)) return mc_fail(e, MC_E_ARG, "loss: logit scale %g", in->scale);
    if (cfg->n_teachers < 0 || cfg->n_teachers > MC_DRCLIP_MAX_TEACHERS)
        return mc_fail(e, MC_E_ARG, "loss: %d teachers (at most %d)", cfg->n_teachers, MC_DRCLIP_MAX_TEACHERS);
    if (cfg->n_teachers == 0) {
        if (cfg->weights[1] != 0.f)
            return mc_fail(e, MC_E_ARG, "loss: distillation weight %g without teacher embeddings", cfg->weights[1]);
        return 0;
    }
    long sum = 0;
    for (int k = 0; k < cfg->n_teachers; k++) {
        if (cfg->teacher_dims[k] < 1) return mc_fail(e, MC_E_ARG, "loss: teacher %d has width %d", k, cfg->teacher_dims[k]);
        sum += cfg->teacher_dims[k];
    }
    if (sum != in->Dt)
        return mc_fail(e, MC_E_ARG, "loss: the teacher embeddings are %d wide, the teacher widths add up to %ld", in->Dt,
                       sum);
    if (!in->teacher_image) return mc_fail(e, MC_E_ARG, "loss: no teacher image embeddings");
    for (int s = 0; s < in->n_sets; s++)
        if (!in->teacher_text[s]) return mc_fail(e, MC_E_ARG, "loss: no teacher text embeddings for caption set %d", s);
    return 0;
}

/* G[i,j] = sum_d a[i, off + d] * b[j, off + d] over d < D (rows of width ld), times scale. */
static void gram(float *G, const float *a, const float *b, int B, int ld, int off, int D, float scale) {
#pragma omp parallel for schedule(static) if (B >= 64)
    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++) {
            const float *x = a + (size_t)i * ld + off, *y = b + (size_t)j * ld + off;
            double acc = 0;
            for (int d = 0; d < D; d++) acc += (double)x[d] * y[d];
            G[(size_t)i * B + j] = (float)(acc * scale);
        }
}

/* Row i (or column i when `trans`) of the [B,B] matrix M times `scale`, as a double vector. */
static void load_row(double *z, const float *M, int B, int i, int trans, double scale) {
    for (int j = 0; j < B; j++) z[j] = scale * M[trans ? (size_t)j * B + i : (size_t)i * B + j];
}

/* log-sum-exp of z[B] */
static double lse(const double *z, int B) {
    double m = z[0], s = 0;
    for (int j = 1; j < B; j++) m = fmax(m, z[j]);
    for (int j = 0; j < B; j++) s += exp(z[j] - m);
    return m + log(s);
}

/* Adds w * softmax_row(M or M^T) into P ([B,B]). */
static void add_softmax(float *P, const float *M, int B, int trans, double w, double *z) {
    for (int i = 0; i < B; i++) {
        load_row(z, M, B, i, trans, 1.0);
        double l = lse(z, B);
        for (int j = 0; j < B; j++) P[(size_t)i * B + j] += (float)(w * exp(z[j] - l));
    }
}

/* Student softmax rows into S and the cross-entropies of one direction:
 * ce = mean_i -log_softmax(z_i)[i], dce = mean_i -sum_j P[i,j] log_softmax(z_i)[j], h = teacher entropy. */
static void direction(float *S, const float *G, const float *P, int B, int trans, double s, double *ce, double *dce,
                      double *h, double *z) {
    double a = 0, b = 0, c = 0;
    for (int i = 0; i < B; i++) {
        load_row(z, G, B, i, trans, s);
        double l = lse(z, B);
        a += l - z[i];
        for (int j = 0; j < B; j++) {
            S[(size_t)i * B + j] = (float)exp(z[j] - l);
            if (P) {
                double p = P[(size_t)i * B + j];
                b -= p * (z[j] - l);
                if (p > 0) c -= p * log(p);
            }
        }
    }
    *ce = a / B;
    *dce = b / B;
    *h = c / B;
}

int mc_drclip_loss_forward(const mc_drclip_config *cfg, const mc_drclip_input *in, float *scratch,
                           mc_drclip_losses *out, mc_err *e) {
    int r = mc_drclip_check(cfg, in, e);
    if (r) return r;
    memset(out, 0, sizeof *out);
    int B = in->B, K = cfg->n_teachers;
    size_t BB = (size_t)B * B;
    double *zrow = (double *)(void *)scratch;
    float *work = scratch + work_offset(B, in->n_sets), *saved = scratch + saved_offset(B);
    for (int s = 0; s < in->n_sets; s++) {
        float *G = saved + (size_t)SAVED * s * BB, *SA = G + BB, *SB = SA + BB, *PA = SB + BB, *PB = PA + BB;
        gram(G, in->image, in->text[s], B, in->E, 0, in->E, 1.f);
        if (K) {
            memset(PA, 0, 2 * BB * sizeof(float));
            if (cfg->average_after_softmax) {
                for (int k = 0, off = 0; k < K; off += cfg->teacher_dims[k++]) {
                    gram(work, in->teacher_image, in->teacher_text[s], B, in->Dt, off, cfg->teacher_dims[k],
                         cfg->teacher_scale[k]);
                    add_softmax(PA, work, B, 0, 1.0 / K, zrow);
                    add_softmax(PB, work, B, 1, 1.0 / K, zrow);
                }
            } else {
                gram(work, in->teacher_image, in->teacher_text[s], B, in->Dt, 0, in->Dt, cfg->teacher_scale[0]);
                add_softmax(PA, work, B, 0, 1.0, zrow);
                add_softmax(PB, work, B, 1, 1.0, zrow);
            }
        }
        double ce_a, ce_b, d_a, d_b, h_a, h_b;
        direction(SA, G, K ? PA : NULL, B, 0, in->scale, &ce_a, &d_a, &h_a, zrow);
        direction(SB, G, K ? PB : NULL, B, 1, in->scale, &ce_b, &d_b, &h_b, zrow);
        out->clip[s] = (ce_a + ce_b) / 2;
        out->distill_ce[s] = K ? (d_a + d_b) / 2 : 0;
        out->distill_kl[s] = K ? out->distill_ce[s] - (h_a + h_b) / 2 : 0;
        out->contrastive += cfg->weights[0] * out->clip[s];
        out->distill += cfg->weights[1] * out->distill_ce[s];
    }
    out->total = out->contrastive + out->distill;
    return 0;
}

void mc_drclip_loss_backward(const mc_drclip_config *cfg, const mc_drclip_input *in, float *scratch,
                             float dloss, float *d_image, float *const *d_text, float *d_scale) {
    int B = in->B, E = in->E, K = cfg->n_teachers;
    size_t BB = (size_t)B * B;
    double w0 = 0.5 * cfg->weights[0], w1 = K ? 0.5 * cfg->weights[1] : 0, c = (double)dloss / B, s = in->scale;
    double ds = 0;
    memset(d_image, 0, sizeof(float) * (size_t)B * E);
    /* dG is formed in the forward's work matrix */
    float *dG = scratch + work_offset(B, in->n_sets);
    for (int st = 0; st < in->n_sets; st++) {
        const float *G = scratch + saved_offset(B) + (size_t)SAVED * st * BB, *SA = G + BB, *SB = SA + BB, *PA = SB + BB, *PB = PA + BB;
        /* dL/dA[i,j] and dL/dA^T[j,i] (softmax-CE gradients, mean over rows); A = s G, A^T = s G^T */
        for (int i = 0; i < B; i++) {
            double ra = 0; /* sum_j P_A[i,j] (1 up to rounding) */
            if (w1)
                for (int j = 0; j < B; j++) ra += PA[(size_t)i * B + j];
            for (int j = 0; j < B; j++) {
                double sa = SA[(size_t)i * B + j], d = (i == j);
                double ga = w0 * (sa - d) + (w1 ? w1 * (sa * ra - PA[(size_t)i * B + j]) : 0);
                dG[(size_t)i * B + j] = (float)(c * ga);
            }
        }
        for (int j = 0; j < B; j++) {
            double rb = 0;
            if (w1)
                for (int i = 0; i < B; i++) rb += PB[(size_t)j * B + i];
            for (int i = 0; i < B; i++) {
                double sb = SB[(size_t)j * B + i], d = (i == j);
                double gb = w0 * (sb - d) + (w1 ? w1 * (sb * rb - PB[(size_t)j * B + i]) : 0);
                dG[(size_t)i * B + j] += (float)(c * gb);
            }
        }
        /* d s = sum dZ * G; then dG = s * dZ */
        for (size_t k = 0; k < BB; k++) {
            ds += (double)dG[k] * G[k];
            dG[k] = (float)(dG[k] * s);
        }
        const float *X = in->image, *Y = in->text[st];
        float *dY = d_text ? d_text[st] : NULL;
#pragma omp parallel for schedule(static) if (B * E >= 65536)
        for (int i = 0; i < B; i++) /* dX[i] += sum_j dG[i,j] Y[j] */
            for (int e2 = 0; e2 < E; e2++) {
                double acc = 0;
                for (int j = 0; j < B; j++) acc += (double)dG[(size_t)i * B + j] * Y[(size_t)j * E + e2];
                d_image[(size_t)i * E + e2] += (float)acc;
            }
        if (dY) {
#pragma omp parallel for schedule(static) if (B * E >= 65536)
            for (int j = 0; j < B; j++) /* dY[j] = sum_i dG[i,j] X[i] */
                for (int e2 = 0; e2 < E; e2++) {
                    double acc = 0;
                    for (int i = 0; i < B; i++) acc += (double)dG[(size_t)i * B + j] * X[(size_t)i * E + e2];
                    dY[(size_t)j * E + e2] = (float)acc;
                }
        }
    }
    if (d_scale) *d_scale = (float)ds;
}

float mc_logit_scale_forward(float t) {
    float s = expf(t);
    return s > 100.f ? 100.f : s;
}

float mc_logit_scale_backward(float t, float d_scale) {
    float s = expf(t);
    return s <= 100.f ? d_scale * s : 0.f;
}

void mc_l2_normalize_forward(float *y, float *norms, const float *x, int N, int D) {
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * D;
        double ss = 0;
        for (int d = 0; d < D; d++) ss += (double)xn[d] * xn[d];
        float nrm = (float)sqrt(ss), den = nrm > 1e-12f ? nrm : 1e-12f;
        norms[n] = nrm;
        for (int d = 0; d < D; d++) y[(size_t)n * D + d] = xn[d] / den;
    }
}

void mc_l2_normalize_backward(float *dx, const float *dy, const float *y, const float *norms, int N, int D) {
    for (int n = 0; n < N; n++) {
        const float *yn = y + (size_t)n * D, *gn = dy + (size_t)n * D;
        float *dn = dx + (size_t)n * D;
        if (norms[n] < 1e-12f) { /* clamped: y = x / eps, the norm's gradient is cut */
            for (int d = 0; d < D; d++) dn[d] = gn[d] / 1e-12f;
            continue;
        }
        double dot = 0;
        for (int d = 0; d < D; d++) dot += (double)yn[d] * gn[d];
        for (int d = 0; d < D; d++) dn[d] = (float)((gn[d] - yn[d] * dot) / norms[n]);
    }
}
