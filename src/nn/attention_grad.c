/* Multi-head attention with saved probabilities, and its backward; see layers.h.
 *
 * Per (sequence n, head h), q/k/v rows t at qkv[n, t, {0,1,2}*C + h*D], C = H*D:
 *   s[t, j] = (scale q_t) . k_j           j <= t when causal
 *   p[t, :] = softmax(s[t, :]),  o_t = sum_j p[t, j] v_j
 * Backward with dp[t, j] = do_t . v_j and ds = p (dp - sum_j p dp):
 *   dq_t = scale sum_j ds[t, j] k_j,  dk_j = scale sum_t ds[t, j] q_t,  dv_j = sum_t p[t, j] do_t
 * With attention dropout (the reference MHA's attn_dropout) a mask m [N,H,T,T] (0 or 1/(1-p))
 * multiplies p before v: o_t = sum_j m p v_j; then dp[t, j] = m (do_t . v_j), dv_j = sum_t m p do_t
 * and ds as above (p kept undropped: the softmax backward needs it).
 * One task per (n, h) on the library's pool (core/parallel.h): every task writes only its own head's columns, so no two threads
 * touch the same element. T is at most a few hundred here, so plain loops do, vectorised
 * over the head dimension D (omp simd: the dot products become lane-wise partial sums; q, k,
 * v and their gradients are disjoint columns of one row, which the compiler cannot prove),
 * four keys (or queries) at a time: text tower heads (64 x 8 heads, 77 tokens, D 64) 80 -> 56
 * ms backward on 2 Zen 3 cores. */
#include <math.h>
#include <string.h>

#include "core/parallel.h"
#include "nn/layers.h"

/* The arguments of one call, shared by its (n, h) tasks. */
typedef struct attn_job {
    float *out, *save_p, *dqkv, *scratch;
    const float *pmask, *qkv, *dout, *cp;
    int N, T, H, D, causal;
    float scale;
} attn_job;

/* out[j] = g . rows[j] for j < n (rows `stride` floats apart, D long), four at a time with
 * four independent sums: one `omp simd` accumulator per product is a chain of dependent adds,
 * so taking them four at a time is what keeps the adders busy */
static inline void dot_rows(float *out, const float *g, const float *rows, size_t stride, int n, int D) {
    int j = 0;
    for (; j + 4 <= n; j += 4) {
        const float *r0 = rows + (size_t)j * stride, *r1 = r0 + stride, *r2 = r1 + stride, *r3 = r2 + stride;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
        for (int d = 0; d < D; d++) {
            s0 += g[d] * r0[d];
            s1 += g[d] * r1[d];
            s2 += g[d] * r2[d];
            s3 += g[d] * r3[d];
        }
        out[j] = s0, out[j + 1] = s1, out[j + 2] = s2, out[j + 3] = s3;
    }
    for (; j < n; j++) {
        const float *r = rows + (size_t)j * stride;
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int d = 0; d < D; d++) s += g[d] * r[d];
        out[j] = s;
    }
}

/* acc[d] += sum over i < n of c[i] rows[i][d], rows `stride` floats apart, four rows per pass
 * over acc (one load and store of acc per four FMAs instead of per one) */
static inline void axpy_rows(float *acc, const float *c, const float *rows, size_t stride, int n, int D) {
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        const float *r0 = rows + (size_t)i * stride, *r1 = r0 + stride, *r2 = r1 + stride, *r3 = r2 + stride;
        float c0 = c[i], c1 = c[i + 1], c2 = c[i + 2], c3 = c[i + 3];
#pragma omp simd
        for (int d = 0; d < D; d++) acc[d] += c0 * r0[d] + c1 * r1[d] + c2 * r2[d] + c3 * r3[d];
    }
    for (; i < n; i++) {
        const float *r = rows + (size_t)i * stride;
        float ci = c[i];
#pragma omp simd
        for (int d = 0; d < D; d++) acc[d] += ci * r[d];
    }
}

/* pmask [N,H,T,T] (NULL: none): o_t = sum_j p[t,j] pmask[t,j] v_j, p kept undropped */
static void attention_forward_heads(void *arg, int nh0, int nh1) {
    const attn_job *a = arg;
    float *out = a->out, *save_p = a->save_p, scale = a->scale;
    const float *pmask = a->pmask, *qkv = a->qkv;
    int T = a->T, H = a->H, D = a->D, causal = a->causal, C = H * D;
    size_t ld = 3 * (size_t)C;
    for (int nh = nh0; nh < nh1; nh++) {
        int n = nh / H, h = nh % H;
        const float *base = qkv + (size_t)n * T * ld + (size_t)h * D, *k = base + C, *v = base + 2 * C;
        float *P = save_p + ((size_t)n * H + h) * T * T;
        for (int t = 0; t < T; t++) {
            const float *q = base + (size_t)t * ld;
            float *p = P + (size_t)t * T, mx = -INFINITY;
            int nj = causal ? t + 1 : T, j;
            dot_rows(p, q, k, ld, nj, D);
            for (j = 0; j < nj; j++) {
                p[j] *= scale;
                if (p[j] > mx) mx = p[j];
            }
            float sum = 0;
            for (j = 0; j < nj; j++) sum += p[j] = expf(p[j] - mx);
            float inv = 1.f / sum;
            for (j = 0; j < nj; j++) p[j] *= inv;
            for (j = nj; j < T; j++) p[j] = 0.f;
            float *o = out + ((size_t)n * T + t) * C + (size_t)h * D;
            memset(o, 0, (size_t)D * sizeof(float));
            const float *m = pmask ? pmask + ((size_t)n * H + h) * T * T + (size_t)t * T : NULL;
            if (!m) {
                axpy_rows(o, p, v, ld, nj, D);
                continue;
            }
            for (j = 0; j < nj; j++) {
                float pj = p[j] * m[j];
#pragma omp simd
                for (int d = 0; d < D; d++) o[d] += pj * v[(size_t)j * ld + d];
            }
        }
    }
}

static void attention_forward(float *out, float *save_p, const float *pmask, const float *qkv, int N, int T, int H,
                              int D, float scale, int causal) {
    attn_job a = {.out = out, .save_p = save_p, .pmask = pmask, .qkv = qkv, .N = N, .T = T, .H = H, .D = D,
                  .causal = causal, .scale = scale};
    mc_parallel_for(N * H, mc_parallel_grain(N * H, 4), attention_forward_heads, &a);
}

void mc_attention_train_forward(float *out, float *save_p, const float *qkv, int N, int T, int H, int D, float scale,
                                int causal) {
    attention_forward(out, save_p, NULL, qkv, N, T, H, D, scale, causal);
}

void mc_attention_dropout_train_forward(float *out, float *save_p, float *save_mask, const float *qkv, int N, int T,
                                        int H, int D, float scale, int causal, float p, mc_rng *rng) {
    /* the mask first, serially (a function of the generator only, not of the threads); the
     * positions a causal row never reaches draw too, so the stream does not depend on `causal` */
    size_t n = (size_t)N * H * T * T;
    float keep = 1.f / (1.f - p);
    for (size_t i = 0; i < n; i++) save_mask[i] = mc_rng_uniform(rng) < p ? 0.f : keep;
    attention_forward(out, save_p, save_mask, qkv, N, T, H, D, scale, causal);
}

size_t mc_attention_backward_scratch(int N, int T, int H) { return (size_t)N * H * T * T; }

/* Per head, in three passes over its T x T scores (dS, one head's rows of the scratch):
 *   dS[t, j] = scale p (dp - sum_j p dp),  dp[t, j] = m (do_t . v_j)
 *   dq_t = sum_j dS[t, j] k_j                      (rows of dS against the keys)
 *   dk_j = sum_t dS[t, j] q_t,  dv_j = sum_t p m[t, j] do_t   (columns, gathered per j)
 * pmask NULL: m = 1. */
static void attention_backward_heads(void *arg, int nh0, int nh1) {
    const attn_job *a = arg;
    float *dqkv = a->dqkv, scale = a->scale;
    const float *dout = a->dout, *qkv = a->qkv, *save_p = a->cp, *pmask = a->pmask;
    int T = a->T, H = a->H, D = a->D, causal = a->causal, C = H * D;
    size_t ld = 3 * (size_t)C;
    for (int nh = nh0; nh < nh1; nh++) {
        int n = nh / H, h = nh % H;
        const float *base = qkv + (size_t)n * T * ld + (size_t)h * D, *gbase = dout + (size_t)n * T * C + (size_t)h * D;
        float *dbase = dqkv + (size_t)n * T * ld + (size_t)h * D;
        const float *P = save_p + ((size_t)n * H + h) * T * T;
        const float *M = pmask ? pmask + ((size_t)n * H + h) * T * T : NULL;
        float *dS = a->scratch + ((size_t)n * H + h) * T * T, col[4];
        for (int t = 0; t < T; t++)
            for (int part = 0; part < 3; part++) memset(dbase + (size_t)t * ld + part * C, 0, D * sizeof(float));
        for (int t = 0; t < T; t++) { /* dS row t, then dq_t */
            const float *p = P + (size_t)t * T, *g = gbase + (size_t)t * C, *v = base + 2 * C;
            const float *m = M ? M + (size_t)t * T : NULL;
            float *ds = dS + (size_t)t * T;
            int nj = causal ? t + 1 : T, j;
            dot_rows(ds, g, v, ld, nj, D);
            double dot = 0;
            for (j = 0; j < nj; j++) {
                if (m) ds[j] *= m[j];
                dot += (double)p[j] * ds[j];
            }
            for (j = 0; j < nj; j++) ds[j] = p[j] * (ds[j] - (float)dot) * scale;
            axpy_rows(dbase + (size_t)t * ld, ds, base + C, ld, nj, D);
        }
        for (int j = 0; j < T; j++) { /* dk_j, dv_j from column j of dS and of p m */
            int t0 = causal ? j : 0;
            float *dk = dbase + (size_t)j * ld + C, *dv = dk + C;
            for (int t = t0; t < T; t += 4) {
                int w = T - t < 4 ? T - t : 4;
                for (int i = 0; i < w; i++) col[i] = dS[(size_t)(t + i) * T + j];
                axpy_rows(dk, col, base + (size_t)t * ld, ld, w, D);
                for (int i = 0; i < w; i++) {
                    size_t o = (size_t)(t + i) * T + j;
                    col[i] = M ? P[o] * M[o] : P[o];
                }
                axpy_rows(dv, col, gbase + (size_t)t * C, C, w, D);
            }
        }
    }
}

static void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *save_p, const float *pmask,
                               int N, int T, int H, int D, float scale, int causal, float *scratch) {
    attn_job a = {.dqkv = dqkv, .scratch = scratch, .dout = dout, .qkv = qkv, .cp = save_p, .pmask = pmask, .N = N,
                  .T = T, .H = H, .D = D, .causal = causal, .scale = scale};
    mc_parallel_for(N * H, mc_parallel_grain(N * H, 4), attention_backward_heads, &a);
}

void mc_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *save_p, int N, int T, int H,
                           int D, float scale, int causal, float *scratch) {
    attention_backward(dqkv, dout, qkv, save_p, NULL, N, T, H, D, scale, causal, scratch);
}

void mc_attention_dropout_backward(float *dqkv, const float *dout, const float *qkv, const float *save_p,
                                   const float *save_mask, int N, int T, int H, int D, float scale, int causal,
                                   float *scratch) {
    attention_backward(dqkv, dout, qkv, save_p, save_mask, N, T, H, D, scale, causal, scratch);
}
