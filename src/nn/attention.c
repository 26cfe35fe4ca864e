/* General multi-head attention: separate query and key/value sequences (cross-attention,
 * attentional pooling, KV-cached decoding) with a causal offset and an optional key mask.
 * See mc_attention_general in ops.h. */
#include <limits.h>
#include <math.h>
#include <stdatomic.h>

#include "core/error.h"
#include "core/parallel.h"
#include "nn/ops.h"

/* One (sequence, head): out[Tq, D] (row stride ldo) from q rows scaled by `scale`. */
static void attend(float *out, size_t ldo, const mc_attention_args *a, int n, int h, float *sc) {
    int D = a->D, Tq = a->Tq, Tk = a->Tk;
    size_t kvn = a->kv_index ? (size_t)a->kv_index[n] : (size_t)n;
    const float *q = a->q + (size_t)n * a->q_batch + (size_t)h * D;
    const float *k = a->k + kvn * a->kv_batch + (size_t)h * D, *v = a->v + kvn * a->kv_batch + (size_t)h * D;
    for (int i = 0; i < Tq; i++) {
        const float *qi = q + (size_t)i * a->q_ld;
        const uint8_t *mrow = a->mask ? a->mask + ((size_t)n * Tq + i) * Tk : NULL;
        long lim = a->causal_off == INT_MAX ? Tk - 1 : (long)i + a->causal_off;
        int nk = lim + 1 < Tk ? (int)(lim + 1) : Tk;
        float m = -INFINITY;
        for (int j = 0; j < nk; j++) {
            if (mrow && !mrow[j]) {
                sc[j] = -INFINITY;
                continue;
            }
            const float *kj = k + (size_t)j * a->kv_ld;
            float s = 0.f;
#pragma omp simd reduction(+ : s)
            for (int d = 0; d < D; d++) s += qi[d] * a->scale * kj[d];
            sc[j] = s;
            if (s > m) m = s;
        }
        float sum = 0.f;
        for (int j = 0; j < nk; j++) {
            sc[j] = sc[j] == -INFINITY ? 0.f : expf(sc[j] - m);
            sum += sc[j];
        }
        float inv = sum > 0.f ? 1.0f / sum : 0.f, *o = out + (size_t)i * ldo;
        for (int d = 0; d < D; d++) o[d] = 0.f;
        for (int j = 0; j < nk; j++) {
            float p = sc[j] * inv;
            if (p == 0.f) continue;
            const float *vj = v + (size_t)j * a->kv_ld;
#pragma omp simd
            for (int d = 0; d < D; d++) o[d] += p * vj[d];
        }
    }
}

typedef struct attend_job {
    float *out;
    const mc_attention_args *a;
    _Atomic int failed;
} attend_job;

/* tasks nh = n * H + h on the library's pool (core/parallel.h), each writing its own head's
 * columns; the score row is this thread's scratch */
static void attend_heads(void *arg, int nh0, int nh1) {
    attend_job *j = arg;
    const mc_attention_args *a = j->a;
    int C = a->H * a->D;
    float *sc = mc_thread_scratch(MC_SCRATCH_ATTEND, sizeof(float) * (size_t)(a->Tk > 0 ? a->Tk : 1));
    if (!sc) {
        atomic_store(&j->failed, 1);
        return;
    }
    for (int nh = nh0; nh < nh1; nh++) {
        int n = nh / a->H, h = nh % a->H;
        attend(j->out + (size_t)n * a->Tq * C + (size_t)h * a->D, (size_t)C, a, n, h, sc);
    }
}

int mc_attention_general(float *out, const mc_attention_args *a, int N) {
    attend_job j = {.out = out, .a = a};
    mc_parallel_for(N * a->H, mc_parallel_grain(N * a->H, 4), attend_heads, &j);
    return atomic_load(&j.failed) ? MC_E_NOMEM : 0;
}
