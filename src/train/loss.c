/* DRClipLoss forward/backward, the logit scale and the L2 normalisation; see loss.h. */
#include "train/loss.h"

#include <math.h>
#include <string.h>

#include "core/parallel.h"

#define SAVED 6 /* matrices saved per caption set: G_A, S_A, P_A, G_B, S_B, P_B */

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

/* Columns of the logit matrices: all gathered rows, or the local ones in one process. */
static int ncols(const mc_drclip_input *in) { return in->N > 0 ? in->N : in->B; }

/* Scratch layout (floats): a double row vector [N] (2N floats, first so that it is aligned),
 * then per set the SAVED [B,N] matrices, then one [B,N] work matrix (teacher logits in the
 * forward, dZ in the backward). */
static size_t saved_offset(const mc_drclip_input *in) { return 2 * (size_t)ncols(in); }
static size_t work_offset(const mc_drclip_input *in) {
    return saved_offset(in) + (size_t)SAVED * (size_t)(in->n_sets > 0 ? in->n_sets : 1) * in->B * ncols(in);
}

size_t mc_drclip_scratch_size(const mc_drclip_input *in) { return work_offset(in) + (size_t)in->B * ncols(in); }

int mc_drclip_check(const mc_drclip_config *cfg, const mc_drclip_input *in, mc_err *e) {
    if (in->B < 1 || in->E < 1) return mc_fail(e, MC_E_ARG, "loss: batch %d, width %d", in->B, in->E);
    if (in->n_sets < 1 || in->n_sets > MC_DRCLIP_MAX_SETS)
        return mc_fail(e, MC_E_ARG, "loss: %d caption sets (1 or 2)", in->n_sets);
    if (!in->image) return mc_fail(e, MC_E_ARG, "loss: no image features");
    if (in->N > 0) {
        if (in->offset < 0 || in->offset + in->B > in->N)
            return mc_fail(e, MC_E_ARG, "loss: rows %d..%d are not inside the %d gathered rows", in->offset,
                           in->offset + in->B - 1, in->N);
        if (!in->image_all) return mc_fail(e, MC_E_ARG, "loss: no gathered image features");
        for (int s = 0; s < in->n_sets; s++)
            if (!in->text_all[s]) return mc_fail(e, MC_E_ARG, "loss: no gathered text features for caption set %d", s);
    } else if (in->offset) {
        return mc_fail(e, MC_E_ARG, "loss: row offset %d in a single process", in->offset);
    }
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
    if (in->N > 0) {
        if (!in->teacher_image_all) return mc_fail(e, MC_E_ARG, "loss: no gathered teacher image embeddings");
        for (int s = 0; s < in->n_sets; s++)
            if (!in->teacher_text_all[s])
                return mc_fail(e, MC_E_ARG, "loss: no gathered teacher text embeddings for caption set %d", s);
    }
    return 0;
}

/* Arguments of the Gram products and their backward, whose rows run as tasks on the library's
 * pool (core/parallel.h): every output element is one task's double sum in a fixed order. */
typedef struct gram_job {
    float *out;
    const float *a, *b, *dG;
    int B, N, ld, off, D;
    float scale;
} gram_job;

static void gram_rows(void *arg, int i0, int i1) {
    const gram_job *g = arg;
    for (int i = i0; i < i1; i++)
        for (int j = 0; j < g->N; j++) {
            const float *x = g->a + (size_t)i * g->ld + g->off, *y = g->b + (size_t)j * g->ld + g->off;
            double acc = 0;
            for (int d = 0; d < g->D; d++) acc += (double)x[d] * y[d];
            g->out[(size_t)i * g->N + j] = (float)(acc * g->scale);
        }
}

/* rows i0..i1 of out[rows, E] += dG[rows, cols] b[cols, E], dG read with strides (si, sj) so
 * the same loop serves dG (rows = B) and dG^T (rows = N) */
static void gram_grad_rows(void *arg, int i0, int i1) {
    const gram_job *g = arg;
    int E = g->D, cols = g->N, si = g->ld, sj = g->off;
    for (int i = i0; i < i1; i++)
        for (int e2 = 0; e2 < E; e2++) {
            double acc = 0;
            for (int j = 0; j < cols; j++) acc += (double)g->dG[(size_t)i * si + (size_t)j * sj] * g->b[(size_t)j * E + e2];
            g->out[(size_t)i * E + e2] += (float)acc;
        }
}

/* tasks of about `work` multiply-adds at least, so small products run in the caller */
static int rows_grain(int rows, long per_row) {
    long min_rows = (4096L * 64 + per_row - 1) / (per_row > 0 ? per_row : 1);
    int g = mc_parallel_grain(rows, 4);
    return g < min_rows ? (int)(min_rows < rows ? min_rows : rows) : g;
}

/* G[i,j] = scale * sum_d a[i, off + d] * b[j, off + d] over d < D; a [B, ld], b [N, ld], G [B,N]. */
static void gram(float *G, const float *a, const float *b, int B, int N, int ld, int off, int D, float scale) {
    gram_job g = {.out = G, .a = a, .b = b, .B = B, .N = N, .ld = ld, .off = off, .D = D, .scale = scale};
    mc_parallel_for(B, rows_grain(B, (long)N * D), gram_rows, &g);
}

/* log-sum-exp of z[N] */
static double lse(const double *z, int N) {
    double m = z[0], s = 0;
    for (int j = 1; j < N; j++) m = fmax(m, z[j]);
    for (int j = 0; j < N; j++) s += exp(z[j] - m);
    return m + log(s);
}

/* P += w * softmax_row(M), both [B,N]; z: a double row [N]. */
static void add_softmax(float *P, const float *M, int B, int N, double w, double *z) {
    for (int i = 0; i < B; i++) {
        for (int j = 0; j < N; j++) z[j] = M[(size_t)i * N + j];
        double l = lse(z, N);
        for (int j = 0; j < N; j++) P[(size_t)i * N + j] += (float)(w * exp(z[j] - l));
    }
}

/* The teacher targets of one direction: P = (1/K) sum_k softmax_row(c_k Ta_k Tb_k^T), or
 * softmax_row(c_0 Ta Tb^T) without averaging after the softmax. Ta [B,Dt], Tb [N,Dt]. */
static void teacher_targets(const mc_drclip_config *cfg, float *P, float *work, const float *ta, const float *tb,
                            int B, int N, int Dt, double *z) {
    memset(P, 0, sizeof(float) * (size_t)B * N);
    if (!cfg->average_after_softmax) {
        gram(work, ta, tb, B, N, Dt, 0, Dt, cfg->teacher_scale[0]);
        add_softmax(P, work, B, N, 1.0, z);
        return;
    }
    int K = cfg->n_teachers;
    for (int k = 0, off = 0; k < K; off += cfg->teacher_dims[k++]) {
        gram(work, ta, tb, B, N, Dt, off, cfg->teacher_dims[k], cfg->teacher_scale[k]);
        add_softmax(P, work, B, N, 1.0 / K, z);
    }
}

/* Student softmax rows of s*G into S and the cross-entropies of one direction (row i's label
 * is column offset + i): ce = mean_i -log_softmax[i, offset+i], dce = mean_i -sum_j P log_softmax,
 * h = the teachers' entropy. */
static void direction(float *S, const float *G, const float *P, int B, int N, int offset, double s, double *ce,
                      double *dce, double *h, double *z) {
    double a = 0, b = 0, c = 0;
    for (int i = 0; i < B; i++) {
        for (int j = 0; j < N; j++) z[j] = s * G[(size_t)i * N + j];
        double l = lse(z, N);
        a += l - z[offset + i];
        for (int j = 0; j < N; j++) {
            S[(size_t)i * N + j] = (float)exp(z[j] - l);
            if (P) {
                double p = P[(size_t)i * N + j];
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
    int B = in->B, N = ncols(in), K = cfg->n_teachers, off = in->N > 0 ? in->offset : 0;
    size_t BN = (size_t)B * N;
    double *z = (double *)(void *)scratch;
    float *work = scratch + work_offset(in), *saved = scratch + saved_offset(in);
    const float *X_all = in->N > 0 ? in->image_all : in->image;
    const float *U_all = in->N > 0 ? in->teacher_image_all : in->teacher_image;
    for (int s = 0; s < in->n_sets; s++) {
        float *GA = saved + (size_t)SAVED * s * BN, *SA = GA + BN, *PA = SA + BN, *GB = PA + BN, *SB = GB + BN,
              *PB = SB + BN;
        const float *Y_all = in->N > 0 ? in->text_all[s] : in->text[s];
        const float *V_all = in->N > 0 ? in->teacher_text_all[s] : in->teacher_text[s];
        gram(GA, in->image, Y_all, B, N, in->E, 0, in->E, 1.f);
        gram(GB, in->text[s], X_all, B, N, in->E, 0, in->E, 1.f);
        if (K) {
            teacher_targets(cfg, PA, work, in->teacher_image, V_all, B, N, in->Dt, z);
            teacher_targets(cfg, PB, work, in->teacher_text[s], U_all, B, N, in->Dt, z);
        }
        double ce_a, ce_b, d_a, d_b, h_a, h_b;
        direction(SA, GA, K ? PA : NULL, B, N, off, in->scale, &ce_a, &d_a, &h_a, z);
        direction(SB, GB, K ? PB : NULL, B, N, off, in->scale, &ce_b, &d_b, &h_b, z);
        out->clip[s] = (ce_a + ce_b) / 2;
        out->distill_ce[s] = K ? (d_a + d_b) / 2 : 0;
        out->distill_kl[s] = K ? out->distill_ce[s] - (h_a + h_b) / 2 : 0;
        out->contrastive += cfg->weights[0] * out->clip[s];
        out->distill += cfg->weights[1] * out->distill_ce[s];
    }
    out->total = out->contrastive + out->distill;
    return 0;
}

/* dZ of one direction into dG (then scaled by s), returns sum dZ * G (the part of dL/ds):
 * dZ[i,j] = c (w0 (S - [j == offset+i]) + w1 (S sum_j P - P)). */
static double direction_backward(float *dG, const float *G, const float *S, const float *P, int B, int N, int offset,
                                 double c, double w0, double w1, double s) {
    double ds = 0;
    for (int i = 0; i < B; i++) {
        double rp = 0;
        if (w1)
            for (int j = 0; j < N; j++) rp += P[(size_t)i * N + j];
        for (int j = 0; j < N; j++) {
            size_t k = (size_t)i * N + j;
            double sm = S[k], dz = w0 * (sm - (j == offset + i)) + (w1 ? w1 * (sm * rp - P[k]) : 0);
            dz *= c;
            ds += dz * G[k];
            dG[k] = (float)(dz * s);
        }
    }
    return ds;
}

/* G = rows cols^T: d_rows[B,E] += dG cols, d_cols[N,E] += dG^T rows (either may be NULL). */
static void gram_backward(float *d_rows, float *d_cols, const float *dG, const float *rows, const float *cols, int B,
                          int N, int E) {
    if (d_rows) {
        gram_job g = {.out = d_rows, .b = cols, .dG = dG, .N = N, .D = E, .ld = N, .off = 1};
        mc_parallel_for(B, rows_grain(B, (long)N * E), gram_grad_rows, &g);
    }
    if (d_cols) {
        gram_job g = {.out = d_cols, .b = rows, .dG = dG, .N = B, .D = E, .ld = 1, .off = N};
        mc_parallel_for(N, rows_grain(N, (long)B * E), gram_grad_rows, &g);
    }
}

void mc_drclip_loss_backward(const mc_drclip_config *cfg, const mc_drclip_input *in, float *scratch, float dloss,
                             mc_drclip_grads *g) {
    int B = in->B, N = ncols(in), E = in->E, K = cfg->n_teachers, off = in->N > 0 ? in->offset : 0;
    int dp = in->N > 0;
    size_t BN = (size_t)B * N;
    double w0 = 0.5 * cfg->weights[0], w1 = K ? 0.5 * cfg->weights[1] : 0, c = (double)dloss / B, s = in->scale;
    double ds = 0;
    float *dG = scratch + work_offset(in);
    const float *saved = scratch + saved_offset(in);
    const float *X_all = dp ? in->image_all : in->image;
    /* in one process the column gradients are the row gradients of the same arrays */
    float *dX_all = dp ? g->image_all : g->image;
    memset(g->image, 0, sizeof(float) * (size_t)B * E);
    if (dp && dX_all) memset(dX_all, 0, sizeof(float) * (size_t)N * E);
    for (int st = 0; st < in->n_sets; st++) {
        float *dY = g->text[st], *dY_all = dp ? g->text_all[st] : g->text[st];
        if (dY) memset(dY, 0, sizeof(float) * (size_t)B * E);
        if (dp && dY_all) memset(dY_all, 0, sizeof(float) * (size_t)N * E);
    }
    for (int st = 0; st < in->n_sets; st++) {
        const float *GA = saved + (size_t)SAVED * st * BN, *SA = GA + BN, *PA = SA + BN, *GB = PA + BN, *SB = GB + BN,
                    *PB = SB + BN;
        const float *Y = in->text[st], *Y_all = dp ? in->text_all[st] : Y;
        float *dY = g->text[st], *dY_all = dp ? g->text_all[st] : dY;
        /* image -> text: A = s X Y_all^T */
        ds += direction_backward(dG, GA, SA, PA, B, N, off, c, w0, w1, s);
        gram_backward(g->image, dY_all, dG, in->image, Y_all, B, N, E);
        /* text -> image: A' = s Y X_all^T */
        ds += direction_backward(dG, GB, SB, PB, B, N, off, c, w0, w1, s);
        gram_backward(dY, dX_all, dG, Y, X_all, B, N, E);
    }
    g->scale = (float)ds;
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
