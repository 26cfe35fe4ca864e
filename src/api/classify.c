/* Zero-shot classification with CLIP's protocol (Radford et al. 2021, section 3.1.4):
 * a label's classifier row is the mean of the normalized embeddings of its prompts,
 * renormalized; probabilities are softmax(logit_scale * cos). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/context.h"
#include "nn/gemm.h"
#include "nn/ops.h"

struct mobileclip_classifier {
    int n_labels, dim;
    float *weights; /* [n_labels, dim], unit rows */
};

/* Replaces every "{}" in template by label; returns a malloc'd string. */
static char *format_prompt(const char *tmpl, const char *label) {
    size_t tl = strlen(tmpl), ll = strlen(label), n = 0;
    for (const char *p = strstr(tmpl, "{}"); p; p = strstr(p + 2, "{}")) n++;
    char *out = malloc(tl + n * ll + 1), *o = out;
    if (!out) return NULL;
    for (const char *p = tmpl; *p;) {
        if (p[0] == '{' && p[1] == '}') {
            memcpy(o, label, ll);
            o += ll;
            p += 2;
        } else {
            *o++ = *p++;
        }
    }
    *o = 0;
    return out;
}

mobileclip_classifier *mobileclip_classifier_build(mobileclip_ctx *ctx, const char *const *labels, int n_labels,
                                                   const char *const *templates, int n_templates) {
    if (!ctx) return NULL;
    if (n_labels <= 0 || !labels) {
        mc_fail(&ctx->err, MC_E_ARG, "the label list is empty");
        return NULL;
    }
    if (n_templates <= 0 || !templates) {
        mc_fail(&ctx->err, MC_E_ARG, "the template list is empty");
        return NULL;
    }
    for (int l = 0; l < n_labels; l++)
        if (!labels[l]) {
            mc_fail(&ctx->err, MC_E_ARG, "label %d is NULL", l + 1);
            return NULL;
        }
    for (int t = 0; t < n_templates; t++)
        if (!templates[t] || !strstr(templates[t], "{}")) {
            mc_fail(&ctx->err, MC_E_ARG, "template %d (\"%s\") has no {} placeholder", t + 1,
                    templates[t] ? templates[t] : "(null)");
            return NULL;
        }
    const int dim = mobileclip_embed_dim(ctx);
    mobileclip_classifier *clf = calloc(1, sizeof *clf);
    char **prompts = calloc((size_t)n_templates, sizeof *prompts);
    float *emb = malloc(sizeof(float) * (size_t)n_templates * dim);
    if (clf) clf->weights = calloc((size_t)n_labels * dim, sizeof(float));
    int r = (!clf || !prompts || !emb || !clf->weights) ? mc_fail(&ctx->err, MC_E_NOMEM, "out of memory") : 0;
    for (int l = 0; l < n_labels && !r; l++) {
        /* all templates of one label form one batch */
        for (int t = 0; t < n_templates && !r; t++)
            if (!(prompts[t] = format_prompt(templates[t], labels[l]))) r = mc_fail(&ctx->err, MC_E_NOMEM, "out of memory");
        if (!r) r = mobileclip_encode_texts(ctx, (const char *const *)prompts, n_templates, emb, 1);
        for (int t = 0; t < n_templates; t++) { free(prompts[t]); prompts[t] = NULL; }
        if (r) {
            mc_err_prefix(&ctx->err, "label \"%s\"", labels[l]);
            break;
        }
        float *w = clf->weights + (size_t)l * dim;
        for (int t = 0; t < n_templates; t++)
            for (int d = 0; d < dim; d++) w[d] += emb[(size_t)t * dim + d];
        mc_l2_normalize_rows(w, 1, dim);
    }
    free(prompts);
    free(emb);
    if (r) {
        mobileclip_classifier_free(clf);
        return NULL;
    }
    clf->n_labels = n_labels;
    clf->dim = dim;
    return clf;
}

void mobileclip_classifier_free(mobileclip_classifier *clf) {
    if (!clf) return;
    free(clf->weights);
    free(clf);
}

int mobileclip_classifier_size(const mobileclip_classifier *clf) { return clf ? clf->n_labels : 0; }

int mobileclip_classify(mobileclip_ctx *ctx, const mobileclip_classifier *clf, const float *image_embeds, int n,
                        float *probs) {
    if (!ctx) return MC_E_ARG;
    if (!clf || n < 0 || (n > 0 && (!image_embeds || !probs))) return mc_fail(&ctx->err, MC_E_ARG, "classify: bad arguments");
    if (n == 0) return 0;
    float *x = malloc(sizeof(float) * (size_t)n * clf->dim);
    if (!x) return mc_fail(&ctx->err, MC_E_NOMEM, "out of memory");
    memcpy(x, image_embeds, sizeof(float) * (size_t)n * clf->dim);
    mc_l2_normalize_rows(x, n, clf->dim);
    int threads = mc_ctx_threads_begin(ctx);
    mc_sgemm(0, 1, n, clf->n_labels, clf->dim, mobileclip_logit_scale(ctx), x, clf->dim, clf->weights, clf->dim, 0.f,
             probs, clf->n_labels);
    mc_ctx_threads_end(threads);
    mc_softmax_rows(probs, n, clf->n_labels);
    free(x);
    return 0;
}

const float *mobileclip_classifier_weights(const mobileclip_classifier *clf) { return clf ? clf->weights : NULL; }
