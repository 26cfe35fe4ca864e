/* Zero-shot accuracy and image-text retrieval recall over embeddings (the public API's
 * mobileclip_eval_*), shared by `mobileclip eval`, training and the experiment. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "mobileclip.h"
#include "core/parallel.h"
#include "index/search.h"

/* score a (row a) ranks before score b (row b): higher first, NaN last, ties by row number */
static int ranks_before(double a, int64_t ia, double b, int64_t ib) {
    if (isnan(a) || isnan(b)) return !isnan(a) && isnan(b);
    return a > b || (a == b && ia < ib);
}

/* Position of row `own` in the descending order of s[0..n) (0 = first). */
static int64_t rank_of(const float *s, int64_t n, int64_t own) {
    if (isnan(s[own])) return n;
    int64_t r = 0;
    for (int64_t j = 0; j < n; j++) r += ranks_before(s[j], j, s[own], own);
    return r;
}

int mobileclip_eval_zeroshot(const float *image_embeds, int n_images, const int *labels, const float *class_embeds,
                             int n_classes, int dim, mobileclip_zeroshot_result *res) {
    if (!res || n_images < 0 || n_classes < 1 || dim < 1 || (n_images && (!image_embeds || !labels)) || !class_embeds)
        return MOBILECLIP_E_ARG;
    for (int i = 0; i < n_images; i++)
        if (labels[i] < 0 || labels[i] >= n_classes) return MOBILECLIP_E_ARG;
    double *s = malloc(sizeof(double) * (size_t)n_classes);
    int64_t *per_n = calloc((size_t)n_classes, sizeof *per_n), *per_hit = calloc((size_t)n_classes, sizeof *per_hit);
    if (!s || !per_n || !per_hit) {
        free(s), free(per_n), free(per_hit);
        return MOBILECLIP_E_NOMEM;
    }
    if (res->confusion) memset(res->confusion, 0, sizeof(int64_t) * (size_t)n_classes * (size_t)n_classes);
    int64_t top1 = 0, top5 = 0;
    for (int i = 0; i < n_images; i++) {
        const float *x = image_embeds + (size_t)i * dim;
        int pred = 0, y = labels[i];
        for (int c = 0; c < n_classes; c++) {
            const float *w = class_embeds + (size_t)c * dim;
            double acc = 0;
            for (int d = 0; d < dim; d++) acc += (double)x[d] * w[d];
            s[c] = acc;
            if (c && ranks_before(s[c], c, s[pred], pred)) pred = c;
        }
        int rank = 0;
        if (isnan(s[y])) rank = n_classes;
        else
            for (int c = 0; c < n_classes; c++) rank += ranks_before(s[c], c, s[y], y);
        top1 += rank == 0;
        top5 += rank < 5;
        per_n[y]++;
        per_hit[y] += rank == 0;
        if (res->confusion) res->confusion[(size_t)y * n_classes + pred]++;
    }
    res->n_images = n_images;
    res->top1 = n_images ? (double)top1 / n_images : NAN;
    res->top5 = n_images ? (double)top5 / n_images : NAN;
    if (res->per_class)
        for (int c = 0; c < n_classes; c++) res->per_class[c] = per_n[c] ? (double)per_hit[c] / per_n[c] : NAN;
    free(s), free(per_n), free(per_hit);
    return 0;
}

/* The rank counts of a retrieval evaluation, summed by tasks on the library's pool
 * (core/parallel.h): integer counts, so the order of the tasks does not matter. */
typedef struct retrieval_job {
    const float *image_embeds, *text_embeds;
    const int *text_image, *first, *caps;
    int n_images, n_texts, dim;
    _Atomic int64_t i2t[3], t2i[3], with_caps;
    _Atomic int failed;
} retrieval_job;

static const int K[3] = {1, 5, 10};

/* images [i0, i1): the rank of their best caption among all texts */
static void retrieval_images(void *arg, int i0, int i1) {
    retrieval_job *j = arg;
    float *s = malloc(sizeof(float) * (size_t)(j->n_texts > 0 ? j->n_texts : 1));
    if (!s) {
        atomic_store(&j->failed, 1);
        return;
    }
    int64_t hits[3] = {0}, with = 0;
    for (int i = i0; i < i1; i++) {
        if (j->first[i] == j->first[i + 1]) continue;
        mc_search_scores(j->image_embeds + (size_t)i * j->dim, j->text_embeds, MC_INDEX_F32, j->n_texts, j->dim, s);
        int best = j->caps[j->first[i]];
        for (int c = j->first[i] + 1; c < j->first[i + 1]; c++)
            if (ranks_before(s[j->caps[c]], j->caps[c], s[best], best)) best = j->caps[c];
        int64_t r = rank_of(s, j->n_texts, best);
        with++;
        for (int k = 0; k < 3; k++) hits[k] += r < K[k];
    }
    free(s);
    atomic_fetch_add(&j->with_caps, with);
    for (int k = 0; k < 3; k++) atomic_fetch_add(&j->i2t[k], hits[k]);
}

/* texts [t0, t1): the rank of their image among all images */
static void retrieval_texts(void *arg, int t0, int t1) {
    retrieval_job *j = arg;
    float *s = malloc(sizeof(float) * (size_t)(j->n_images > 0 ? j->n_images : 1));
    if (!s) {
        atomic_store(&j->failed, 1);
        return;
    }
    int64_t hits[3] = {0};
    for (int t = t0; t < t1; t++) {
        mc_search_scores(j->text_embeds + (size_t)t * j->dim, j->image_embeds, MC_INDEX_F32, j->n_images, j->dim, s);
        int64_t r = rank_of(s, j->n_images, j->text_image[t]);
        for (int k = 0; k < 3; k++) hits[k] += r < K[k];
    }
    free(s);
    for (int k = 0; k < 3; k++) atomic_fetch_add(&j->t2i[k], hits[k]);
}

int mobileclip_eval_retrieval(const float *image_embeds, int n_images, const float *text_embeds, int n_texts,
                              const int *text_image, int dim, mobileclip_retrieval_result *res) {
    if (!res || n_images < 1 || n_texts < 1 || dim < 1 || !image_embeds || !text_embeds || !text_image)
        return MOBILECLIP_E_ARG;
    for (int t = 0; t < n_texts; t++)
        if (text_image[t] < 0 || text_image[t] >= n_images) return MOBILECLIP_E_ARG;
    /* each image's captions, as a list of text numbers in ascending order */
    int *first = malloc(sizeof(int) * ((size_t)n_images + 1)), *caps = malloc(sizeof(int) * (size_t)n_texts);
    int *fill = calloc((size_t)n_images + 1, sizeof(int));
    if (!first || !caps || !fill) {
        free(first), free(caps), free(fill);
        return MOBILECLIP_E_NOMEM;
    }
    for (int t = 0; t < n_texts; t++) fill[text_image[t] + 1]++;
    first[0] = 0;
    for (int i = 0; i < n_images; i++) first[i + 1] = first[i] + fill[i + 1];
    memset(fill, 0, sizeof(int) * ((size_t)n_images + 1));
    for (int t = 0; t < n_texts; t++) caps[first[text_image[t]] + fill[text_image[t]]++] = t;

    retrieval_job j = {.image_embeds = image_embeds, .text_embeds = text_embeds, .text_image = text_image,
                       .first = first, .caps = caps, .n_images = n_images, .n_texts = n_texts, .dim = dim};
    mc_parallel_for(n_images, mc_parallel_grain(n_images, 4), retrieval_images, &j);
    mc_parallel_for(n_texts, mc_parallel_grain(n_texts, 4), retrieval_texts, &j);
    int64_t i2t[3], t2i[3], with_caps = atomic_load(&j.with_caps);
    for (int k = 0; k < 3; k++) i2t[k] = atomic_load(&j.i2t[k]), t2i[k] = atomic_load(&j.t2i[k]);
    int failed = atomic_load(&j.failed);
    free(first), free(caps), free(fill);
    if (failed) return MOBILECLIP_E_NOMEM;
    res->n_images = (int)with_caps;
    res->n_texts = n_texts;
    res->i2t_r1 = (double)i2t[0] / (double)with_caps;
    res->i2t_r5 = (double)i2t[1] / (double)with_caps;
    res->i2t_r10 = (double)i2t[2] / (double)with_caps;
    res->t2i_r1 = (double)t2i[0] / n_texts;
    res->t2i_r5 = (double)t2i[1] / n_texts;
    res->t2i_r10 = (double)t2i[2] / n_texts;
    return 0;
}
