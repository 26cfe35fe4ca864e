/* mobileclip classify: zero-shot top-K labels per image. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

static const char *help =
    "usage: mobileclip classify --checkpoint FILE [--arch A | --config FILE] [--threads N] [--vocab V]\n"
    "                           [--training-form] [--precision P]\n"
    "                           --image P [--image P ...] (--labels \"cat,dog,...\" | --labels-file F)\n"
    "                           [--templates simple|imagenet|FILE] [--top K] [--json]\n"
    "\n"
    "For each label, the mean of the normalized text embeddings of its prompt templates is\n"
    "renormalized (CLIP's zero-shot protocol); probabilities are the softmax of the model's\n"
    "logit scale times the cosine similarities.\n"
    "\n"
    "options:\n" MC_CLI_MODEL_OPTS_HELP
    "  --image P           image to classify (repeatable)\n"
    "  --labels L          comma-separated labels\n"
    "  --labels-file F     one label per line\n"
    "  --templates T       imagenet (the 80 CLIP ImageNet prompts, default), simple (\"a photo of a {}.\"),\n"
    "                      or a file with one template per line, each containing {}\n"
    "  --top K             labels to print per image (default 5)\n"
    "  --json              one JSON line per image: {\"input\":P,\"top\":[{\"label\":L,\"prob\":p},...]}\n";

/* Splits a comma-separated list into trimmed, non-empty labels (NULL-terminated). */
static char **split_labels(const char *s, int *count) {
    int cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    char **out = calloc((size_t)cap + 1, sizeof *out);
    int n = 0;
    if (!out) return NULL;
    for (const char *p = s;;) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && (*a == ' ' || *a == '\t')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
        if (b > a && !(out[n++] = strndup(a, (size_t)(b - a)))) {
            mc_cli_free_lines(out);
            return NULL;
        }
        if (!*end) break;
        p = end + 1;
    }
    *count = n;
    return out;
}

typedef struct { float p; int i; } scored;
static int by_prob_desc(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (isnan(x->p) != isnan(y->p)) return isnan(x->p) ? 1 : -1; /* NaN last */
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->i - y->i;
}

int mc_cmd_classify(int argc, char **argv) {
    mc_model_opts o = {.arch = MOBILECLIP_ARCH_AUTO};
    const char *labels_arg = NULL, *labels_file = NULL, *templates_arg = "imagenet";
    int top = 5, json = 0, n_img = 0, n_labels = 0, n_templates = 0, status = 2;
    const char **imgs = calloc((size_t)argc, sizeof *imgs);
    char **labels = NULL, **tmpl_lines = NULL;
    const char *const *templates = NULL;
    mobileclip_ctx *ctx = NULL;
    mobileclip_classifier *clf = NULL;
    float *emb = NULL, *probs = NULL;
    scored *order = NULL;
    if (!imgs) { fprintf(stderr, "mobileclip classify: out of memory\n"); return 1; }
    for (int i = 1; i < argc; i++) {
        int r = mc_cli_model_opt("classify", argc, argv, &i, &o);
        if (r < 0) goto done;
        if (r > 0) continue;
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(help, stdout);
            status = 0;
            goto done;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--image") == 0 || strcmp(a, "--labels") == 0 || strcmp(a, "--labels-file") == 0 ||
                   strcmp(a, "--templates") == 0 || strcmp(a, "--top") == 0) {
            const char *v = mc_cli_value("classify", argc, argv, &i);
            if (!v) goto done;
            if (a[2] == 'i') imgs[n_img++] = v;
            else if (strcmp(a, "--labels") == 0) labels_arg = v;
            else if (a[2] == 'l') labels_file = v;
            else if (a[2] == 't' && a[3] == 'e') templates_arg = v;
            else {
                char *end;
                long k = strtol(v, &end, 10);
                if (*end || k < 1 || k > 1000000) {
                    fprintf(stderr, "mobileclip classify: --top expects a positive number, got '%s'\n", v);
                    goto done;
                }
                top = (int)k;
            }
        } else {
            fprintf(stderr, "mobileclip classify: unknown option '%s' (see --help)\n", a);
            goto done;
        }
    }
    if (!n_img) { fprintf(stderr, "mobileclip classify: give at least one --image PATH\n"); goto done; }
    if (!labels_arg == !labels_file) {
        fprintf(stderr, "mobileclip classify: give exactly one of --labels and --labels-file\n");
        goto done;
    }
    if ((status = mc_cli_check_model_opts("classify", &o, 1))) goto done;
    status = 1;
    labels = labels_arg ? split_labels(labels_arg, &n_labels) : mc_cli_read_lines("classify", labels_file, &n_labels);
    if (!labels) {
        if (labels_arg) fprintf(stderr, "mobileclip classify: out of memory\n");
        goto done;
    }
    for (int a = 0; a < n_labels; a++)
        for (int b = a + 1; b < n_labels; b++)
            if (strcmp(labels[a], labels[b]) == 0) {
                fprintf(stderr, "mobileclip classify: duplicate label '%s' (labels %d and %d)\n", labels[a], a + 1, b + 1);
                goto done;
            }
    if (n_labels == 0) {
        fprintf(stderr, "mobileclip classify: the label list is empty\n");
        goto done;
    }
    if (!(templates = mc_cli_templates("classify", templates_arg, &n_templates, &tmpl_lines))) goto done;
    if (!(ctx = mc_cli_load("classify", &o, 1, 1))) goto done;
    for (int l = 0; l < n_labels; l++) /* errors (invalid UTF-8) are reported by the build below */
        if (mobileclip_text_truncated(ctx, labels[l]) == 1)
            fprintf(stderr, "mobileclip classify: warning: label %d ('%.40s...') is longer than %d tokens; "
                            "the model sees it cut\n", l + 1, labels[l], MOBILECLIP_CONTEXT_LENGTH);
    if (!(clf = mobileclip_classifier_build(ctx, (const char *const *)labels, n_labels, templates, n_templates))) {
        fprintf(stderr, "mobileclip classify: %s\n", mobileclip_last_error(ctx));
        goto done;
    }
    emb = malloc(sizeof(float) * (size_t)mobileclip_embed_dim(ctx) * (size_t)n_img);
    probs = malloc(sizeof(float) * (size_t)n_labels * (size_t)n_img);
    order = malloc(sizeof(scored) * (size_t)n_labels);
    if (!emb || !probs || !order) { fprintf(stderr, "mobileclip classify: out of memory\n"); goto done; }
    if (mobileclip_encode_image_files(ctx, imgs, n_img, emb, 1) || mobileclip_classify(ctx, clf, emb, n_img, probs)) {
        fprintf(stderr, "mobileclip classify: %s\n", mobileclip_last_error(ctx));
        goto done;
    }
    int k = top < n_labels ? top : n_labels;
    for (int i = 0; i < n_img; i++) {
        for (int l = 0; l < n_labels; l++) order[l] = (scored){probs[(size_t)i * n_labels + l], l};
        qsort(order, (size_t)n_labels, sizeof *order, by_prob_desc);
        if (json) {
            printf("{\"input\":");
            mc_json_print_string(stdout, imgs[i]);
            printf(",\"top\":[");
            for (int j = 0; j < k; j++) {
                printf(j ? ",{\"label\":" : "{\"label\":");
                mc_json_print_string(stdout, labels[order[j].i]);
                printf(",\"prob\":");
                mc_json_print_number(stdout, order[j].p, 6);
                printf("}");
            }
            printf("]}\n");
        } else {
            printf("%s\n", imgs[i]);
            for (int j = 0; j < k; j++) printf("  %8.4f  %s\n", order[j].p, labels[order[j].i]);
        }
    }
    status = mc_cli_finish_output("classify");
done:
    mobileclip_classifier_free(clf);
    mobileclip_free(ctx);
    mc_cli_free_lines(labels);
    mc_cli_free_lines(tmpl_lines);
    free(imgs);
    free(emb);
    free(probs);
    free(order);
    return status;
}
