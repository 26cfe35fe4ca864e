/* Training form of mc_attention_general (separate query and key/value sequences): the
 * cross-attention of CoCa's decoder, its attentional pooler (queries shared by the batch) and
 * masked self-attention (the CLS row of its text tower). See layers.h. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "core/parallel.h"
#include "nn/layers.h"

/* Key j visible to query i (mc_attention_general's rule). */
static int visible(const mc_attention_args *a, int n, int i, int j) {
    if (a->causal_off != INT_MAX && (long)j > (long)i + a->causal_off) return 0;
    return !a->mask || a->mask[((size_t)n * a->Tq + i) * a->Tk + j];
}

/* One call's arguments, shared by its tasks on the library's pool (core/parallel.h). */
typedef struct general_job {
    float *out, *save_p, *dq, *dk, *dv, *scratch;
    const float *dout, *cp;
    const mc_attention_args *a;
    int N;
} general_job;

/* tasks nh = n * H + h: each writes its own head's columns of out and its own P */
static void general_forward_heads(void *arg, int nh0, int nh1) {
    const general_job *job = arg;
    const mc_attention_args *a = job->a;
    float *out = job->out, *save_p = job->save_p;
    int Tq = a->Tq, Tk = a->Tk, H = a->H, D = a->D, C = H * D;
    for (int nh = nh0; nh < nh1; nh++) {
        int n = nh / H, h = nh % H;
        {
            const float *qb = a->q + (size_t)n * a->q_batch + (size_t)h * D;
            const float *kb = a->k + (size_t)n * a->kv_batch + (size_t)h * D;
            const float *vb = a->v + (size_t)n * a->kv_batch + (size_t)h * D;
            float *P = save_p + ((size_t)n * H + h) * Tq * Tk;
            for (int i = 0; i < Tq; i++) {
                const float *q = qb + (size_t)i * a->q_ld;
                float *p = P + (size_t)i * Tk, mx = -INFINITY;
                for (int j = 0; j < Tk; j++) {
                    if (!visible(a, n, i, j)) continue;
                    const float *k = kb + (size_t)j * a->kv_ld;
                    float s = 0;
                    for (int d = 0; d < D; d++) s += (q[d] * a->scale) * k[d];
                    p[j] = s;
                    if (s > mx) mx = s;
                }
                float sum = 0;
                for (int j = 0; j < Tk; j++) sum += p[j] = visible(a, n, i, j) ? expf(p[j] - mx) : 0.f;
                float inv = sum > 0 ? 1.f / sum : 0.f; /* a row that sees no key: zeros */
                float *o = out + ((size_t)n * Tq + i) * C + (size_t)h * D;
                for (int d = 0; d < D; d++) o[d] = 0.f;
                for (int j = 0; j < Tk; j++) {
                    p[j] *= inv;
                    if (p[j] == 0.f) continue;
                    const float *v = vb + (size_t)j * a->kv_ld;
                    for (int d = 0; d < D; d++) o[d] += p[j] * v[d];
                }
            }
        }
    }
}

void mc_attention_general_train_forward(float *out, float *save_p, const mc_attention_args *a, int N) {
    general_job job = {.out = out, .save_p = save_p, .a = a, .N = N};
    mc_parallel_for(N * a->H, mc_parallel_grain(N * a->H, 4), general_forward_heads, &job);
}

size_t mc_attention_general_backward_scratch(const mc_attention_args *a) { return (size_t)a->H * a->Tk; }

/* one task per head: heads own disjoint columns of dq, dk, dv, so sequences that share
 * their queries (q_batch 0) or keys (kv_batch 0) accumulate without races */
static void general_backward_heads(void *arg, int h0, int h1) {
    const general_job *job = arg;
    const mc_attention_args *a = job->a;
    float *dq = job->dq, *dk = job->dk, *dv = job->dv, *scratch = job->scratch;
    const float *dout = job->dout, *save_p = job->cp;
    int N = job->N, Tq = a->Tq, Tk = a->Tk, H = a->H, D = a->D, C = H * D;
    for (int h = h0; h < h1; h++) {
        float *ds = scratch + (size_t)h * Tk;
        for (int n = 0; n < N; n++) {
            const float *qb = a->q + (size_t)n * a->q_batch + (size_t)h * D;
            const float *kb = a->k + (size_t)n * a->kv_batch + (size_t)h * D;
            const float *vb = a->v + (size_t)n * a->kv_batch + (size_t)h * D;
            float *dqb = dq + (size_t)n * a->q_batch + (size_t)h * D;
            float *dkb = dk + (size_t)n * a->kv_batch + (size_t)h * D;
            float *dvb = dv + (size_t)n * a->kv_batch + (size_t)h * D;
            const float *P = save_p + ((size_t)n * H + h) * Tq * Tk;
            for (int i = 0; i < Tq; i++) {
                const float *p = P + (size_t)i * Tk, *g = dout + ((size_t)n * Tq + i) * C + (size_t)h * D;
                const float *q = qb + (size_t)i * a->q_ld;
                float *dqi = dqb + (size_t)i * a->q_ld;
                double dot = 0;
                for (int j = 0; j < Tk; j++) {
                    ds[j] = 0.f;
                    if (p[j] == 0.f) continue;
                    const float *v = vb + (size_t)j * a->kv_ld;
                    float dp = 0;
                    for (int d = 0; d < D; d++) dp += g[d] * v[d];
                    ds[j] = dp;
                    dot += (double)p[j] * dp;
                }
                for (int j = 0; j < Tk; j++) {
                    if (p[j] == 0.f) continue;
                    float sj = p[j] * (ds[j] - (float)dot) * a->scale;
                    const float *k = kb + (size_t)j * a->kv_ld;
                    float *dkj = dkb + (size_t)j * a->kv_ld, *dvj = dvb + (size_t)j * a->kv_ld;
                    for (int d = 0; d < D; d++) {
                        dqi[d] += sj * k[d];
                        dkj[d] += sj * q[d];
                        dvj[d] += p[j] * g[d];
                    }
                }
            }
        }
    }
}

void mc_attention_general_backward(float *dq, float *dk, float *dv, const float *dout, const mc_attention_args *a,
                                   const float *save_p, int N, float *scratch) {
    general_job job = {.dq = dq, .dk = dk, .dv = dv, .scratch = scratch, .dout = dout, .cp = save_p, .a = a, .N = N};
    mc_parallel_for(a->H, 1, general_backward_heads, &job);
}
