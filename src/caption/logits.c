/* Logits processors and warpers of CoCa.generate; see logits.h. */
#include "caption/logits.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

void mc_logits_min_length(float *scores, int V, int cur_len, int min_len, int eot) {
    if (cur_len < min_len && eot >= 0 && eot < V) scores[eot] = -INFINITY;
}

void mc_logits_repetition_penalty(float *scores, int V, const int32_t *ids, int n, float penalty) {
    /* torch gathers every id's score first, then scatters: a repeated id is penalised once */
    for (int i = 0; i < n; i++) {
        int id = ids[i], seen = 0;
        if (id < 0 || id >= V) continue;
        for (int j = 0; j < i && !seen; j++) seen = ids[j] == id;
        if (seen) continue;
        float s = scores[id];
        scores[id] = s < 0 ? s * penalty : s / penalty;
    }
}

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

void mc_logits_top_k(float *scores, int V, int k, float *scratch) {
    if (k < 1) k = 1;
    if (k >= V) return;
    memcpy(scratch, scores, sizeof(float) * (size_t)V);
    qsort(scratch, (size_t)V, sizeof(float), cmp_desc);
    float thr = scratch[k - 1];
    for (int i = 0; i < V; i++)
        if (scores[i] < thr) scores[i] = -INFINITY;
}

/* Nucleus filtering without sorting the whole vocabulary. The removed ids are a prefix of the
 * ascending (score, id) order: those whose running probability (self and everything below) is
 * <= 1 - top_p. Probabilities are binned by m - s (eighth-nat bins, lower bin = higher score).
 * Walking the bins from the lowest scores, the bins whose running mass stays within the limit are
 * removed whole (every id in them has a running sum no larger than that mass); the bins above
 * the first bin that crosses it are kept whole (every id in them has a running sum above the
 * limit); only the ids of the crossing bin (a handful) are radix-sorted by (score, id) and walked
 * exactly. Shapes: scores [V]; scratch holds V floats (the probabilities) and 4 V uint32 (keys
 * and ids, twice). */
enum { TOP_P_BINS = 512, TOP_P_BINS_PER_NAT = 8 };

size_t mc_logits_top_p_scratch(int V) { return (size_t)V * (sizeof(float) + 4 * sizeof(uint32_t)); }

static int top_p_bin(float d) {
    float b = d * (float)TOP_P_BINS_PER_NAT;
    return b < (float)(TOP_P_BINS - 1) ? (int)b : TOP_P_BINS - 1;
}

/* float -> uint32 with the same order (no NaN; -0 ordered as +0) */
static uint32_t order_key(float f) {
    uint32_t u;
    if (f == 0.f) f = 0.f;
    memcpy(&u, &f, sizeof u);
    return u & 0x80000000u ? ~u : u | 0x80000000u;
}

/* stable LSD radix sort of (key, id) pairs, ascending by key; n pairs in key/id, tk/ti the same
 * size; the result is in tk/ti. */
static void radix_sort(uint32_t *key, uint32_t *id, uint32_t *tk, uint32_t *ti, int n) {
    static const int shift[3] = {0, 11, 22};
    for (int pass = 0; pass < 3; pass++) {
        int count[2048] = {0}, sh = shift[pass];
        for (int i = 0; i < n; i++) count[(key[i] >> sh) & 2047]++;
        for (int b = 0, sum = 0; b < 2048; b++) {
            int c = count[b];
            count[b] = sum;
            sum += c;
        }
        for (int i = 0; i < n; i++) {
            int at = count[(key[i] >> sh) & 2047]++;
            tk[at] = key[i];
            ti[at] = id[i];
        }
        uint32_t *t = key;
        key = tk, tk = t;
        t = id, id = ti, ti = t;
    }
    /* three (an odd number of) passes: the sorted pairs are in the buffers passed as tk / ti */
}

void mc_logits_top_p(float *scores, int V, float top_p, void *scratch) {
    float *p = scratch;
    uint32_t *key = (uint32_t *)(p + V), *id = key + V, *tk = id + V, *ti = tk + V;
    float m = -INFINITY;
    int top = 0;
    for (int i = 0; i < V; i++)
        if (scores[i] > m || (scores[i] == m && m != -INFINITY)) m = scores[i], top = i; /* the last maximum */
    if (m == -INFINITY) return;
    double bin_mass[TOP_P_BINS] = {0}, z = 0;
    for (int i = 0; i < V; i++) {
        float d = m - scores[i];
        p[i] = scores[i] == -INFINITY ? 0.f : expf(-d);
        z += (double)p[i];
        bin_mass[top_p_bin(d)] += (double)p[i];
    }
    double limit = (double)(float)(1.0 - (double)top_p);
    /* the low bins removed whole: their mass below the limit with a margin for the sums' rounding */
    int cut = TOP_P_BINS;
    double tail = 0;
    while (cut > 1 && tail + bin_mass[cut - 1] <= limit * z * (1 - 1e-9)) tail += bin_mass[--cut];
    int n = 0, cross = cut - 1; /* the bin whose ids are walked one by one */
    for (int i = 0; i < V; i++) {
        if (scores[i] == -INFINITY) continue;
        int b = top_p_bin(m - scores[i]);
        if (b >= cut) scores[i] = -INFINITY;
        else if (b == cross) key[n] = order_key(scores[i]), id[n++] = (uint32_t)i;
    }
    radix_sort(key, id, tk, ti, n);
    double cum = tail;
    for (int k = 0; k < n; k++) {
        int i = (int)ti[k];
        cum += (double)p[i];
        if (i != top && cum / z <= limit) scores[i] = -INFINITY;
    }
}

int mc_logits_sample(const float *scores, int V, float temperature, double u) {
    int best = 0;
    for (int i = 1; i < V; i++)
        if (scores[i] > scores[best]) best = i;
    if (!(temperature > 0) || scores[best] == -INFINITY) return best;
    double m = scores[best], total = 0;
    for (int i = 0; i < V; i++)
        if (scores[i] != -INFINITY) total += exp(((double)scores[i] - m) / temperature);
    double target = u * total, cum = 0;
    int last = best;
    for (int i = 0; i < V; i++) {
        if (scores[i] == -INFINITY) continue;
        cum += exp(((double)scores[i] - m) / temperature);
        last = i;
        if (cum > target) return i;
    }
    return last;
}

double mc_caption_uniform(uint64_t seed, uint64_t stream, uint64_t step) {
    uint64_t x = mc_splitmix64(mc_splitmix64(seed) ^ mc_splitmix64(stream + 0x632be59bd9b4e019ull) ^ (step * 0xd1b54a32d192ed03ull));
    return (double)(x >> 11) * (1.0 / 9007199254740992.0);
}
