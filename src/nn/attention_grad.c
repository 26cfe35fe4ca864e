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
 * v and their gradients are disjoint columns of one row, which the compiler cannot prove). */
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

/* pmask [N,H,T,T] (NULL: none): o_t = sum_j p[t,j] pmask[t,j] v_j, p kept undropped */
static void attention_forward_heads(void *arg, int nh0, int nh1) {
    const attn_job *a = arg;
    float *out = a->out, *save_p = a->save_p, scale = a->scale;
    const float *pmask = a->pmask, *qkv = a->qkv;
    int T = a->T, H = a->H, D = a->D, causal = a->causal, C = H * D;
    size_t ld = 3 * (size_t)C;
    for (int nh = nh0; nh < nh1; nh++) {
        int n = nh / H, h = nh % H;
        {
            const float *base = qkv + (size_t)n * T * ld + (size_t)h * D;
            float *P = save_p + ((size_t)n * H + h) * T * T;
            for (int t = 0; t < T; t++) {
                const float *q = base + (size_t)t * ld;
                float *p = P + (size_t)t * T, mx = -INFINITY;
                int nj = causal ? t + 1 : T;
                for (int j = 0; j < nj; j++) {
                    const float *k = base + (size_t)j * ld + C;
                    float s = 0;
#pragma omp simd reduction(+ : s)
                    for (int d = 0; d < D; d++) s += (q[d] * scale) * k[d];
                    p[j] = s;
                    if (s > mx) mx = s;
                }
                float sum = 0;
                for (int j = 0; j < nj; j++) sum += p[j] = expf(p[j] - mx);
                float inv = 1.f / sum;
                for (int j = 0; j < nj; j++) p[j] *= inv;
                for (int j = nj; j < T; j++) p[j] = 0.f;
                float *o = out + ((size_t)n * T + t) * C + (size_t)h * D;
                for (int d = 0; d < D; d++) o[d] = 0.f;
                const float *m = pmask ? pmask + ((size_t)n * H + h) * T * T + (size_t)t * T : NULL;
                for (int j = 0; j < nj; j++) {
                    const float *v = base + (size_t)j * ld + 2 * C;
                    float pj = m ? p[j] * m[j] : p[j];
#pragma omp simd
                    for (int d = 0; d < D; d++) o[d] += pj * v[d];
                }
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

size_t mc_attention_backward_scratch(int N, int T, int H) { return (size_t)N * H * T; }

/* dp[t,j] = pmask[t,j] (do_t . v_j), dv_j += p[t,j] pmask[t,j] do_t (pmask NULL: 1) */
static void attention_backward_heads(void *arg, int nh0, int nh1) {
    const attn_job *a = arg;
    float *dqkv = a->dqkv, *scratch = a->scratch, scale = a->scale;
    const float *dout = a->dout, *qkv = a->qkv, *save_p = a->cp, *pmask = a->pmask;
    int T = a->T, H = a->H, D = a->D, causal = a->causal, C = H * D;
    size_t ld = 3 * (size_t)C;
    for (int nh = nh0; nh < nh1; nh++) {
        int n = nh / H, h = nh % H;
        {
            const float *base = qkv + (size_t)n * T * ld + (size_t)h * D;
            float *dbase = dqkv + (size_t)n * T * ld + (size_t)h * D;
            const float *P = save_p + ((size_t)n * H + h) * T * T;
            float *ds = scratch + ((size_t)n * H + h) * T;
            for (int t = 0; t < T; t++)
                for (int part = 0; part < 3; part++) memset(dbase + (size_t)t * ld + part * C, 0, D * sizeof(float));
            for (int t = 0; t < T; t++) {
                const float *p = P + (size_t)t * T, *g = dout + ((size_t)n * T + t) * C + (size_t)h * D;
                const float *q = base + (size_t)t * ld;
                float *dq = dbase + (size_t)t * ld;
                int nj = causal ? t + 1 : T;
                const float *m = pmask ? pmask + ((size_t)n * H + h) * T * T + (size_t)t * T : NULL;
                double dot = 0;
                for (int j = 0; j < nj; j++) {
                    const float *v = base + (size_t)j * ld + 2 * C;
                    float dp = 0;
#pragma omp simd reduction(+ : dp)
                    for (int d = 0; d < D; d++) dp += g[d] * v[d];
                    if (m) dp *= m[j];
                    ds[j] = dp;
                    dot += (double)p[j] * dp;
                }
                for (int j = 0; j < nj; j++) {
                    float sj = p[j] * (ds[j] - (float)dot) * scale;
                    const float *k = base + (size_t)j * ld + C;
                    float *dk = dbase + (size_t)j * ld + C, *dv = dbase + (size_t)j * ld + 2 * C;
                    float pj = m ? p[j] * m[j] : p[j];
#pragma omp simd
                    for (int d = 0; d < D; d++) {
                        dq[d] += sj * k[d];
                        dk[d] += sj * q[d];
                        dv[d] += pj * g[d];
                    }
                }
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
