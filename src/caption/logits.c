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

size_t mc_logits_top_p_scratch(int V) { return (size_t)V * (sizeof(float) + sizeof(int)); }

/* index sort ascending by (score, id): torch.sort's order among equal scores is unspecified */
static void msort(int *idx, int *tmp, int n, const float *s) {
    if (n < 2) return;
    int h = n / 2;
    msort(idx, tmp, h, s);
    msort(idx + h, tmp, n - h, s);
    int i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int a = idx[i], b = idx[j];
        int take_b = s[b] < s[a] || (s[b] == s[a] && b < a);
        tmp[k++] = take_b ? idx[j++] : idx[i++];
    }
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, sizeof(int) * (size_t)n);
}

void mc_logits_top_p(float *scores, int V, float top_p, void *scratch) {
    float *p = scratch;
    int *idx = (int *)(p + V);
    for (int i = 0; i < V; i++) idx[i] = i;
    /* p doubles as the merge buffer before it holds probabilities */
    msort(idx, (int *)p, V, scores);
    float m = scores[idx[V - 1]], sum = 0.f;
    if (m == -INFINITY) return;
    for (int i = 0; i < V; i++) {
        p[i] = expf(scores[idx[i]] - m);
        sum += p[i];
    }
    float limit = (float)(1.0 - (double)top_p);
    double cum = 0;
    for (int i = 0; i < V - 1; i++) { /* the last (largest) is always kept */
        cum += (double)(p[i] / sum);
        if ((float)cum <= limit) scores[idx[i]] = -INFINITY;
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
