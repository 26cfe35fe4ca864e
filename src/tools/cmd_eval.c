/* mobileclip eval zeroshot | retrieval: dataset evaluation with the API's metrics
 * (mobileclip_eval_zeroshot / mobileclip_eval_retrieval). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "eval/batch.h"
#include "experiment/fmnist.h"
#include "io/idx.h"
#include "io/wds.h"
#include "io/mapped_file.h"
#include "io/walk.h"
#include "tools/cli.h"
#include "tools/cli_report.h"
#include "tools/plot.h"

static const char *help =
    "usage: mobileclip eval zeroshot --checkpoint FILE [--arch A | --config FILE] [--threads N] [--vocab V]\n"
    "           [--training-form]\n"
    "           (--dataset DIR | --fashion-mnist DIR | --idx-images F --idx-labels F --classes FILE |\n"
    "            --shards SPEC --classes FILE)\n"
    "           [--split test|train] [--classes FILE] [--templates simple|imagenet|FILE] [--limit N]\n"
    "           [--confusion PNG] [--batch N] [--progress] [--json]\n"
    "       mobileclip eval retrieval --checkpoint FILE [--arch A | --config FILE] [--threads N] [--vocab V]\n"
    "           [--training-form] (--dataset DIR | --captions TSV | --shards SPEC)\n"
    "           [--limit N] [--batch N] [--progress] [--json]\n"
    "\n"
    "zeroshot: CLIP's zero-shot protocol (classify's classifier) over a labelled dataset; prints\n"
    "top-1, top-5 and per-class accuracy, and optionally draws the confusion matrix.\n"
    "  --dataset DIR       one sub-folder per class (byte order of the names); class names are the\n"
    "                      folder names unless --classes gives them (one per line, same order)\n"
    "  --fashion-mnist DIR Fashion-MNIST IDX files (Debian dataset-fashion-mnist installs them in\n"
    "                      /usr/share/datasets/fashion-mnist)\n"
    "  --split S           test (default) or train: the Fashion-MNIST files read\n"
    "  --idx-images F      any IDX images file [N,H,W] (gzip'd or not) ...\n"
    "  --idx-labels F      ... with its IDX labels file [N]\n"
    "  --classes FILE      class names, one per line (class number order)\n"
    "  --shards SPEC       WebDataset shards ('dir/test-{0000..0009}.tar'): an image member (jpg,\n"
    "                      jpeg, png or webp) and the class number in 'cls' per sample\n"
    "  --templates T       imagenet (CLIP's 80 prompts, default), simple, or a file, one per line\n"
    "  --confusion PNG     write the confusion matrix (rows: true class, columns: prediction)\n"
    "retrieval: image->text and text->image recall@1/5/10 (Flickr30k/COCO protocol: an image is\n"
    "found by text when any of its captions ranks in the top K).\n"
    "  --dataset DIR       DIR/captions.tsv: lines \"IMAGE<TAB>CAPTION\", image paths relative to DIR,\n"
    "                      several lines per image for several captions; '#' lines are comments\n"
    "  --captions TSV      the same file given directly (paths relative to its folder)\n"
    "  --shards SPEC       WebDataset shards: an image member and its captions in 'txt', one per line\n"
    "common:\n" MC_CLI_MODEL_OPTS_HELP
    "  --limit N           evaluate N images spread evenly over the dataset (the first N of shards)\n"
    "  --batch N           images per model call (default 16)\n"
    "  --progress          progress on stderr even when it is not a terminal\n"
    "  --json              the figures as one JSON object on stdout\n";

/* The evaluated subset: n of total, spread evenly (i * total / n). */
static int pick(int i, int n, int total) { return (int)((long long)i * total / n); }

typedef struct opts {
    mc_model_opts m;
    const char *dataset, *fmnist, *split, *idx_images, *idx_labels, *classes, *templates, *confusion, *captions, *shards;
    int limit, batch, progress, json;
} opts;

static int parse_int(const char *opt, const char *v, int max, int *out) {
    char *end;
    errno = 0;
    long k = strtol(v, &end, 10);
    if (*end || errno || k < 1 || k > max) {
        fprintf(stderr, "mobileclip eval: %s expects a number from 1 to %d, got '%s'\n", opt, max, v);
        return -1;
    }
    *out = (int)k;
    return 0;
}

/* 0 ok, 1 --help printed, 2 usage error */
static int parse(int argc, char **argv, opts *o) {
    for (int i = 2; i < argc; i++) {
        int r = mc_cli_model_opt("eval", argc, argv, &i, &o->m);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *a = argv[i], *v;
        static const char *valued[] = {"--dataset", "--fashion-mnist", "--split", "--idx-images", "--idx-labels",
                                       "--classes", "--templates", "--confusion", "--captions", "--shards", "--limit",
                                       "--batch"};
        int which = -1;
        for (int k = 0; k < (int)(sizeof valued / sizeof *valued); k++)
            if (!strcmp(a, valued[k])) which = k;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return 1;
        } else if (!strcmp(a, "--json")) o->json = 1;
        else if (!strcmp(a, "--progress")) o->progress = 1;
        else if (which >= 0) {
            if (!(v = mc_cli_value("eval", argc, argv, &i))) return 2;
            const char **slot[] = {&o->dataset, &o->fmnist, &o->split, &o->idx_images, &o->idx_labels,
                                   &o->classes, &o->templates, &o->confusion, &o->captions, &o->shards};
            if (which < 10) *slot[which] = v;
            else if (parse_int(a, v, which == 10 ? 100000000 : 4096, which == 10 ? &o->limit : &o->batch)) return 2;
        } else {
            fprintf(stderr, "mobileclip eval: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    return 0;
}

/* A labelled image set: files or an IDX grey array. */
typedef struct dataset {
    mc_strlist files;       /* image paths (folder datasets) */
    mc_idx images, labels;  /* or IDX */
    int *label;             /* [n] class of each image */
    int n;
    mc_strlist class_names;
} dataset;

static void dataset_free(dataset *d) {
    mc_strlist_free(&d->files);
    mc_idx_free(&d->images);
    mc_idx_free(&d->labels);
    free(d->label);
    mc_strlist_free(&d->class_names);
}

static int load_dataset(const opts *o, dataset *d, mc_err *e) {
    int r = 0;
    if (o->dataset) {
        mc_strlist dirs = {0};
        if ((r = mc_walk_subdirs(o->dataset, &dirs, e))) return r;
        if (!dirs.count) r = mc_fail(e, MC_E_FORMAT, "%s: no class folders", o->dataset);
        int cap = 0;
        for (int c = 0; c < dirs.count && !r; c++) {
            int before = d->files.count;
            if ((r = mc_walk_images(dirs.items[c], NULL, &d->files, NULL, e))) break;
            if (d->files.count > cap) {
                int *nl = realloc(d->label, sizeof(int) * (size_t)(cap = d->files.count * 2));
                if (!nl) { r = mc_fail(e, MC_E_NOMEM, "out of memory"); break; }
                d->label = nl;
            }
            for (int k = before; k < d->files.count; k++) d->label[k] = c;
            const char *base = strrchr(dirs.items[c], '/'), *name = base ? base + 1 : dirs.items[c];
            r = mc_strlist_push(&d->class_names, name, strlen(name), e);
        }
        mc_strlist_free(&dirs);
        d->n = d->files.count;
        if (!r && !d->n) r = mc_fail(e, MC_E_FORMAT, "%s: no images in the class folders", o->dataset);
    } else if (o->shards) {
        /* samples are read (and embedded) as the shards stream by: see read_shards */
    } else {
        char img[4096], lab[4096];
        const char *ip = o->idx_images, *lp = o->idx_labels;
        if (o->fmnist) {
            const char *s = o->split && !strcmp(o->split, "train") ? "train" : "t10k";
            snprintf(img, sizeof img, "%s/%s-images-idx3-ubyte.gz", o->fmnist, s);
            snprintf(lab, sizeof lab, "%s/%s-labels-idx1-ubyte.gz", o->fmnist, s);
            ip = img, lp = lab;
            for (int c = 0; c < MC_FMNIST_CLASSES && !r && !o->classes; c++)
                r = mc_strlist_push(&d->class_names, mc_fmnist_class_names[c], strlen(mc_fmnist_class_names[c]), e);
        }
        int n_classes = o->classes || !o->fmnist ? 256 : MC_FMNIST_CLASSES;
        if (!r) r = mc_idx_load_labelled(ip, lp, n_classes, &d->images, &d->labels, e);
        if (!r) {
            d->n = (int)d->images.dims[0];
            if (!(d->label = malloc(sizeof(int) * (size_t)d->n))) r = mc_fail(e, MC_E_NOMEM, "out of memory");
            for (int i = 0; !r && i < d->n; i++) d->label[i] = d->labels.data[i];
        }
    }
    if (!r && o->classes) {
        int n;
        char **lines = mc_cli_read_lines("eval", o->classes, &n);
        if (!lines) return MC_E_IO; /* reason printed */
        int expect = o->dataset ? d->class_names.count : 0;
        if (o->dataset && n != expect)
            r = mc_fail(e, MC_E_FORMAT, "%s: %d class names for %d class folders", o->classes, n, expect);
        mc_strlist_free(&d->class_names);
        for (int k = 0; k < n && !r; k++) r = mc_strlist_push(&d->class_names, lines[k], strlen(lines[k]), e);
        mc_cli_free_lines(lines);
        for (int i = 0; !r && i < d->n; i++)
            if (d->label[i] >= d->class_names.count)
                r = mc_fail(e, MC_E_FORMAT, "%s: label %d of image %d has no name (%d names)", o->classes, d->label[i], i,
                            d->class_names.count);
    }
    return r;
}

typedef struct subset_loader {
    const dataset *d;
    const int *index; /* evaluated item -> dataset item */
    mc_batch_gray gray;
} subset_loader;

static int load_subset(void *user, int i, int R, float *chw, mc_err *e) {
    subset_loader *s = user;
    int k = s->index[i];
    if (s->d->files.count) return mc_batch_load_path(s->d->files.items, k, R, chw, e);
    return mc_batch_load_gray(&s->gray, k, R, chw, e);
}

/* Images (and their captions or classes) streamed from WebDataset shards and embedded a batch
 * at a time, so only one batch of encoded images is held. */
typedef struct shard_data {
    float *emb;             /* [n][dim] */
    int n, cap;
    int *label;             /* [n] with want_cls */
    mc_strlist texts;       /* captions, with text_image[t] their image */
    int *text_image, text_cap;
} shard_data;

static void shard_data_free(shard_data *sd) {
    free(sd->emb), free(sd->label), free(sd->text_image);
    mc_strlist_free(&sd->texts);
    memset(sd, 0, sizeof *sd);
}

static const mc_wds_member *sample_image(const mc_wds_sample *s) {
    static const char *exts[] = {"jpg", "jpeg", "png", "webp"};
    for (int k = 0; k < 4; k++) {
        const mc_wds_member *m = mc_wds_sample_find(s, exts[k]);
        if (m) return m;
    }
    return NULL;
}

/* Adds sample s's class (want_cls) or captions to sd; its image becomes image number sd->n. */
static int shard_sample_meta(const mc_wds_sample *s, int want_cls, shard_data *sd, mc_err *e) {
    const mc_wds_member *m = mc_wds_sample_find(s, want_cls ? "cls" : "txt");
    if (!m)
        return mc_fail(e, MC_E_FORMAT, "%s: sample '%s' has no .%s member", s->shard, s->key, want_cls ? "cls" : "txt");
    if (want_cls) {
        char *end;
        long c = strtol((const char *)m->data, &end, 10);
        while (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t') end++;
        if (end == (const char *)m->data || *end || c < 0 || c > 1000000)
            return mc_fail(e, MC_E_FORMAT, "%s: sample '%s': .cls is not a class number", s->shard, s->key);
        int *nl = realloc(sd->label, sizeof(int) * ((size_t)sd->n + 1));
        if (!nl) return mc_fail(e, MC_E_NOMEM, "out of memory");
        (sd->label = nl)[sd->n] = (int)c;
        return 0;
    }
    const char *p = (const char *)m->data, *end = p + m->size;
    while (p < end) { /* one caption per line (clip_benchmark's retrieval shards) */
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *q = nl ? nl : end, *a = p;
        while (q > a && (q[-1] == '\r' || q[-1] == ' ')) q--;
        while (a < q && *a == ' ') a++;
        if (q > a) {
            int r = mc_strlist_push(&sd->texts, a, (size_t)(q - a), e);
            if (r) return r;
            if (sd->texts.count > sd->text_cap) {
                int *nt = realloc(sd->text_image, sizeof(int) * (size_t)(sd->text_cap = 2 * sd->texts.count));
                if (!nt) return mc_fail(e, MC_E_NOMEM, "out of memory");
                sd->text_image = nt;
            }
            sd->text_image[sd->texts.count - 1] = sd->n;
        }
        p = nl ? nl + 1 : end;
    }
    return 0;
}

static int read_shards(mobileclip_ctx *ctx, const opts *o, int want_cls, shard_data *sd, mc_cli_report *ps,
                       mc_err *e) {
    const int B = o->batch > 0 ? o->batch : 16, dim = mobileclip_embed_dim(ctx);
    mc_wds_reader rd;
    int r = mc_wds_open_spec(&rd, o->shards, NULL, e), nb = 0, more = 1;
    if (r) return r;
    unsigned char **data = calloc((size_t)B, sizeof *data);
    size_t *size = calloc((size_t)B, sizeof *size);
    char **names = calloc((size_t)B, sizeof *names);
    if (!data || !size || !names) r = mc_fail(e, MC_E_NOMEM, "out of memory");
    mc_batch_hooks hooks = {0}; /* progress over the whole stream, below */
    mc_progress_start(&ps->progress, ps->enabled, o->limit ? o->limit : -1);
    while (!r && more) {
        mc_wds_sample s;
        int got = o->limit && sd->n + nb >= o->limit ? 0 : mc_wds_next(&rd, &s, e);
        if (got < 0) { r = got; break; }
        if (got) {
            const mc_wds_member *im = sample_image(&s);
            if (!im) { r = mc_fail(e, MC_E_FORMAT, "%s: sample '%s' has no jpg/jpeg/png/webp member", s.shard, s.key); break; }
            sd->n += nb; /* the metadata refers to the image's final number */
            r = shard_sample_meta(&s, want_cls, sd, e);
            sd->n -= nb;
            size_t nl = strlen(s.shard) + strlen(s.key) + 2;
            if (!r && (!(data[nb] = malloc(im->size ? im->size : 1)) || !(names[nb] = malloc(nl))))
                r = mc_fail(e, MC_E_NOMEM, "out of memory");
            if (r) break;
            memcpy(data[nb], im->data, im->size);
            size[nb] = im->size;
            snprintf(names[nb], nl, "%s:%s", s.shard, s.key);
            nb++;
        } else more = 0;
        if (nb == B || (!more && nb)) {
            if (sd->n + nb > sd->cap) {
                float *ne = realloc(sd->emb, sizeof(float) * (size_t)dim * (size_t)(sd->cap = 2 * (sd->n + nb)));
                if (!ne) { r = mc_fail(e, MC_E_NOMEM, "out of memory"); break; }
                sd->emb = ne;
            }
            mc_batch_bytes bb = {(const unsigned char *const *)data, size, (const char *const *)names};
            r = mc_batch_embed_images(ctx, nb, nb, mc_batch_load_bytes, &bb, sd->emb + (size_t)sd->n * dim, NULL, &hooks, e);
            sd->n += nb;
            for (int k = 0; k < nb; k++) free(data[k]), free(names[k]), data[k] = NULL, names[k] = NULL;
            nb = 0;
            mc_progress_update(&ps->progress, sd->n);
        }
    }
    mc_progress_finish(&ps->progress);
    for (int k = 0; k < nb; k++) free(data[k]), free(names[k]);
    free(data), free(size), free(names);
    mc_wds_close(&rd);
    if (!r && !sd->n) r = mc_fail(e, MC_E_FORMAT, "%s: no samples", o->shards);
    return r;
}

static int eval_zeroshot(const opts *o) {
    if (!!o->dataset + !!o->fmnist + !!(o->idx_images || o->idx_labels) + !!o->shards != 1) {
        fprintf(stderr, "mobileclip eval zeroshot: give one of --dataset, --fashion-mnist, --idx-images/--idx-labels, --shards\n");
        return 2;
    }
    if (o->shards && !o->classes) {
        fprintf(stderr, "mobileclip eval zeroshot: --shards needs --classes FILE (the names of the class numbers)\n");
        return 2;
    }
    if ((o->idx_images || o->idx_labels) && (!o->idx_images || !o->idx_labels || !o->classes)) {
        fprintf(stderr, "mobileclip eval zeroshot: IDX input needs --idx-images, --idx-labels and --classes\n");
        return 2;
    }
    if (o->split && strcmp(o->split, "test") && strcmp(o->split, "train")) {
        fprintf(stderr, "mobileclip eval zeroshot: --split expects test or train, got '%s'\n", o->split);
        return 2;
    }
    int st = mc_cli_check_model_opts("eval", &o->m, 1);
    if (st) return st;
    dataset d = {0};
    mc_err e = {0};
    mobileclip_ctx *ctx = NULL;
    mobileclip_classifier *clf = NULL;
    char **tmpl_lines = NULL;
    int n_templates = 0, *index = NULL, *labels = NULL, n_classes = 0;
    float *emb = NULL;
    double *per_class = NULL;
    int64_t *confusion = NULL;
    int status = 1;
    shard_data sd = {0};
    const char *const *templates = mc_cli_templates("eval", o->templates ? o->templates : "imagenet", &n_templates, &tmpl_lines);
    if (!templates) goto done;
    if (load_dataset(o, &d, &e)) {
        if (e.code) fprintf(stderr, "mobileclip eval: %s\n", e.msg);
        goto done;
    }
    n_classes = d.class_names.count;
    int n = o->limit && o->limit < d.n ? o->limit : d.n;
    index = malloc(sizeof(int) * (size_t)(n ? n : 1));
    labels = malloc(sizeof(int) * (size_t)(n ? n : 1));
    per_class = malloc(sizeof(double) * (size_t)n_classes);
    confusion = malloc(sizeof(int64_t) * (size_t)n_classes * (size_t)n_classes);
    if (!index || !labels || !per_class || !confusion) { fprintf(stderr, "mobileclip eval: out of memory\n"); goto done; }
    for (int i = 0; i < n; i++) labels[i] = d.label[index[i] = pick(i, n, d.n)];
    if (!(ctx = mc_cli_load("eval", &o->m, 1, 1))) goto done;
    mc_cli_report ps;
    mc_cli_report_start(&ps, "eval", o->progress);
    if (ps.enabled) fprintf(stderr, "mobileclip eval: embedding %d prompts\n", n_classes * n_templates);
    if (!(clf = mobileclip_classifier_build(ctx, (const char *const *)d.class_names.items, n_classes, templates, n_templates))) {
        fprintf(stderr, "mobileclip eval: %s\n", mobileclip_last_error(ctx));
        goto done;
    }
    const int dim = mobileclip_embed_dim(ctx);
    mc_cli_report_start(&ps, "eval", o->progress);
    if (o->shards) {
        if (read_shards(ctx, o, 1, &sd, &ps, &e)) {
            fprintf(stderr, "mobileclip eval: %s\n", e.msg);
            goto done;
        }
        n = sd.n;
        int *nl = realloc(labels, sizeof(int) * (size_t)n);
        if (!nl) { fprintf(stderr, "mobileclip eval: out of memory\n"); goto done; }
        labels = nl;
        for (int i = 0; i < n; i++)
            if ((labels[i] = sd.label[i]) >= n_classes) {
                fprintf(stderr, "mobileclip eval: %s: sample %d has class %d, but %s names %d classes\n", o->shards, i,
                        labels[i], o->classes, n_classes);
                goto done;
            }
        emb = sd.emb, sd.emb = NULL;
    } else {
        if (!(emb = malloc(sizeof(float) * (size_t)dim * (size_t)n))) { fprintf(stderr, "mobileclip eval: out of memory\n"); goto done; }
        subset_loader sl = {&d, index, {d.images.data, (int)d.images.dims[1], (int)d.images.dims[2]}};
        mc_batch_hooks hooks = mc_cli_report_hooks(&ps);
        if (mc_batch_embed_images(ctx, n, o->batch, load_subset, &sl, emb, NULL, &hooks, &e)) {
            fprintf(stderr, "mobileclip eval: %s\n", e.msg);
            goto done;
        }
    }
    mobileclip_zeroshot_result res = {.per_class = per_class, .confusion = confusion};
    if (mobileclip_eval_zeroshot(emb, n, labels, mobileclip_classifier_weights(clf), n_classes, dim, &res)) {
        fprintf(stderr, "mobileclip eval: out of memory\n");
        goto done;
    }
    if (o->confusion) {
        char title[128];
        snprintf(title, sizeof title, "zero-shot confusion matrix, %d images, top-1 %.2f%%", n, 100 * res.top1);
        int pr = mc_plot_confusion_png(o->confusion, confusion, n_classes, (const char *const *)d.class_names.items, title, &e);
        mc_plot_release();
        if (pr) {
            fprintf(stderr, "mobileclip eval: %s\n", e.msg);
            goto done;
        }
    }
    int64_t *count = calloc((size_t)n_classes, sizeof *count);
    if (!count) { fprintf(stderr, "mobileclip eval: out of memory\n"); goto done; }
    for (int i = 0; i < n; i++) count[labels[i]]++;
    if (o->json) {
        printf("{\"task\":\"zeroshot\",\"images\":%d,\"classes\":%d,\"templates\":%d,\"top1\":", n, n_classes, n_templates);
        mc_json_print_number(stdout, (float)res.top1, 7);
        printf(",\"top5\":");
        mc_json_print_number(stdout, (float)res.top5, 7);
        printf(",\"per_class\":[");
        for (int c = 0; c < n_classes; c++) {
            printf(c ? ",{\"name\":" : "{\"name\":");
            mc_json_print_string(stdout, d.class_names.items[c]);
            printf(",\"images\":%lld,\"top1\":", (long long)count[c]);
            mc_json_print_number(stdout, (float)per_class[c], 7);
            printf("}");
        }
        printf("],\"confusion\":[");
        for (int c = 0; c < n_classes; c++) {
            printf(c ? ",[" : "[");
            for (int k = 0; k < n_classes; k++) printf(k ? ",%lld" : "%lld", (long long)confusion[(size_t)c * n_classes + k]);
            printf("]");
        }
        printf("]}\n");
    } else {
        printf("zero-shot: %d images, %d classes, %d templates\ntop-1  %6.2f%%\ntop-5  %6.2f%%\n\n%-24s %8s  %s\n", n,
               n_classes, n_templates, 100 * res.top1, 100 * res.top5, "class", "images", "top-1");
        for (int c = 0; c < n_classes; c++)
            printf("%-24s %8lld  %6.2f%%\n", d.class_names.items[c], (long long)count[c], 100 * per_class[c]);
    }
    free(count);
    status = mc_cli_finish_output("eval");
done:
    mobileclip_classifier_free(clf);
    mobileclip_free(ctx);
    dataset_free(&d);
    shard_data_free(&sd);
    mc_cli_free_lines(tmpl_lines);
    free(index), free(labels), free(emb), free(per_class), free(confusion);
    return status;
}

/* captions.tsv: images in first-appearance order, captions in file order. */
typedef struct captions {
    mc_strlist images, texts;
    int *text_image;
} captions;

static int load_captions(const char *tsv, captions *c, mc_err *e) {
    char *data;
    size_t len;
    int r = mc_read_file(tsv, (size_t)1 << 30, &data, &len, e);
    if (r) return r;
    if (memchr(data, 0, len)) {
        free(data);
        return mc_fail(e, MC_E_FORMAT, "%s: contains NUL bytes (not a text file)", tsv);
    }
    const char *slash = strrchr(tsv, '/');
    int dirlen = slash ? (int)(slash - tsv) : 1;
    const char *dir = slash ? tsv : ".";
    int cap = 0, line = 0;
    char *save = NULL, *buf = NULL;
    for (char *l = strtok_r(data, "\n", &save); l && !r; l = strtok_r(NULL, "\n", &save)) {
        line++;
        size_t ll = strlen(l);
        if (ll && l[ll - 1] == '\r') l[--ll] = 0;
        if (!ll || l[0] == '#') continue;
        char *tab = strchr(l, '\t');
        if (!tab || tab == l || !tab[1]) {
            r = mc_fail(e, MC_E_FORMAT, "%s:%d: expected IMAGE<TAB>CAPTION", tsv, line);
            break;
        }
        *tab = 0;
        char *nb = realloc(buf, (size_t)dirlen + strlen(l) + 2);
        if (!nb) { r = mc_fail(e, MC_E_NOMEM, "out of memory"); break; }
        buf = nb;
        if (l[0] == '/') strcpy(buf, l);
        else sprintf(buf, "%.*s/%s", dirlen, dir, l);
        int img = -1;
        for (int k = c->images.count - 1; k >= 0 && k >= c->images.count - 64; k--) /* captions of an image are usually adjacent */
            if (!strcmp(c->images.items[k], buf)) img = k;
        for (int k = 0; img < 0 && k < c->images.count - 64; k++)
            if (!strcmp(c->images.items[k], buf)) img = k;
        if (img < 0) {
            if ((r = mc_strlist_push(&c->images, buf, strlen(buf), e))) break;
            img = c->images.count - 1;
        }
        if ((r = mc_strlist_push(&c->texts, tab + 1, strlen(tab + 1), e))) break;
        if (c->texts.count > cap) {
            int *nt = realloc(c->text_image, sizeof(int) * (size_t)(cap = 2 * c->texts.count));
            if (!nt) { r = mc_fail(e, MC_E_NOMEM, "out of memory"); break; }
            c->text_image = nt;
        }
        c->text_image[c->texts.count - 1] = img;
    }
    free(buf);
    free(data);
    if (!r && !c->texts.count) r = mc_fail(e, MC_E_FORMAT, "%s: no captions", tsv);
    return r;
}

static int eval_retrieval(const opts *o) {
    if (!!o->dataset + !!o->captions + !!o->shards != 1) {
        fprintf(stderr, "mobileclip eval retrieval: give one of --dataset DIR, --captions TSV and --shards SPEC\n");
        return 2;
    }
    int st = mc_cli_check_model_opts("eval", &o->m, 1);
    if (st) return st;
    captions c = {0};
    shard_data sd = {0};
    mc_err e = {0};
    mobileclip_ctx *ctx = NULL;
    float *img_emb = NULL, *txt_emb = NULL;
    int status = 1, *index = NULL, *keep = NULL, *text_image = NULL, n = 0, nt = 0, r = 0;
    const char **texts = NULL;
    mc_cli_report ps;
    mc_cli_report_start(&ps, "eval", o->progress);
    mc_batch_hooks hooks = mc_cli_report_hooks(&ps);
    if (!o->shards) {
        char tsv[4096];
        if (o->dataset) snprintf(tsv, sizeof tsv, "%s/captions.tsv", o->dataset);
        else snprintf(tsv, sizeof tsv, "%s", o->captions);
        if (load_captions(tsv, &c, &e)) {
            fprintf(stderr, "mobileclip eval: %s\n", e.msg);
            goto done;
        }
        /* --limit: a subset of the images, with all their captions */
        n = o->limit && o->limit < c.images.count ? o->limit : c.images.count;
        index = malloc(sizeof(int) * (size_t)n);
        keep = malloc(sizeof(int) * (size_t)c.images.count);
        texts = malloc(sizeof(char *) * (size_t)c.texts.count);
        text_image = malloc(sizeof(int) * (size_t)c.texts.count);
        if (!index || !keep || !texts || !text_image) { fprintf(stderr, "mobileclip eval: out of memory\n"); goto done; }
        for (int k = 0; k < c.images.count; k++) keep[k] = -1;
        for (int i = 0; i < n; i++) keep[index[i] = pick(i, n, c.images.count)] = i;
        for (int t = 0; t < c.texts.count; t++)
            if (keep[c.text_image[t]] >= 0) texts[nt] = c.texts.items[t], text_image[nt++] = keep[c.text_image[t]];
    }
    if (!(ctx = mc_cli_load("eval", &o->m, 1, 1))) goto done;
    const int dim = mobileclip_embed_dim(ctx);
    if (o->shards) {
        if ((r = read_shards(ctx, o, 0, &sd, &ps, &e))) goto fail;
        n = sd.n, nt = sd.texts.count, img_emb = sd.emb, sd.emb = NULL;
        if (!nt) { fprintf(stderr, "mobileclip eval: %s: no captions\n", o->shards); goto done; }
        texts = malloc(sizeof(char *) * (size_t)nt);
        text_image = malloc(sizeof(int) * (size_t)nt);
        if (!texts || !text_image) { fprintf(stderr, "mobileclip eval: out of memory\n"); goto done; }
        for (int t = 0; t < nt; t++) texts[t] = sd.texts.items[t], text_image[t] = sd.text_image[t];
    } else {
        char **sub = malloc(sizeof(char *) * (size_t)n);
        if (!(img_emb = malloc(sizeof(float) * (size_t)dim * (size_t)n)) || !sub) {
            free(sub);
            fprintf(stderr, "mobileclip eval: out of memory\n");
            goto done;
        }
        for (int i = 0; i < n; i++) sub[i] = c.images.items[index[i]];
        r = mc_batch_embed_images(ctx, n, o->batch, mc_batch_load_path, sub, img_emb, NULL, &hooks, &e);
        free(sub);
        if (r) goto fail;
    }
    if (!(txt_emb = malloc(sizeof(float) * (size_t)dim * (size_t)nt))) { fprintf(stderr, "mobileclip eval: out of memory\n"); goto done; }
    mc_cli_report_start(&ps, "eval", o->progress);
    if ((r = mc_batch_embed_texts(ctx, texts, nt, txt_emb, &hooks, &e))) goto fail;
    mobileclip_retrieval_result res;
    if (mobileclip_eval_retrieval(img_emb, n, txt_emb, nt, text_image, dim, &res)) {
        fprintf(stderr, "mobileclip eval: out of memory\n");
        goto done;
    }
    if (o->json) {
        double v[6] = {res.i2t_r1, res.i2t_r5, res.i2t_r10, res.t2i_r1, res.t2i_r5, res.t2i_r10};
        static const char *names[6] = {"i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10"};
        printf("{\"task\":\"retrieval\",\"images\":%d,\"texts\":%d", res.n_images, res.n_texts);
        for (int k = 0; k < 6; k++) {
            printf(",\"%s\":", names[k]);
            mc_json_print_number(stdout, (float)v[k], 7);
        }
        printf("}\n");
    } else {
        printf("retrieval: %d images, %d captions\n%-14s %7s %7s %7s\n", res.n_images, res.n_texts, "", "R@1", "R@5", "R@10");
        printf("%-14s %6.2f%% %6.2f%% %6.2f%%\n", "image->text", 100 * res.i2t_r1, 100 * res.i2t_r5, 100 * res.i2t_r10);
        printf("%-14s %6.2f%% %6.2f%% %6.2f%%\n", "text->image", 100 * res.t2i_r1, 100 * res.t2i_r5, 100 * res.t2i_r10);
    }
    status = mc_cli_finish_output("eval");
    goto done;
fail:
    fprintf(stderr, "mobileclip eval: %s\n", e.msg);
done:
    shard_data_free(&sd);
    mobileclip_free(ctx);
    mc_strlist_free(&c.images);
    mc_strlist_free(&c.texts);
    free(c.text_image), free(index), free(keep), free(texts), free(text_image), free(img_emb), free(txt_emb);
    return status;
}

int mc_cmd_eval(int argc, char **argv) {
    if (argc < 2 || (strcmp(argv[1], "zeroshot") && strcmp(argv[1], "retrieval"))) {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            fputs(help, stdout);
            return 0;
        }
        fprintf(stderr, "mobileclip eval: give the task: zeroshot or retrieval (see --help)\n");
        return 2;
    }
    opts o = {.m = {.arch = MOBILECLIP_ARCH_AUTO}};
    int r = parse(argc, argv, &o);
    if (r) return r == 1 ? 0 : 2;
    return argv[1][0] == 'z' ? eval_zeroshot(&o) : eval_retrieval(&o);
}
