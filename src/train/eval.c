/* eval.c - evaluation sets and the evaluation of the weights being trained (rules in eval.h). */
#include "train/eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/context.h"
#include "core/strlist.h"
#include "eval/batch.h"
#include "experiment/fmnist.h"
#include "io/idx.h"
#include "io/mapped_file.h"
#include "io/walk.h"
#include "io/wds.h"

typedef enum set_kind { SET_FMNIST, SET_FOLDERS, SET_SHARDS } set_kind;

typedef struct eval_set {
    set_kind kind;
    char name[32];
    int n;                    /* evaluated images */
    int *label;               /* [n] class of each image; NULL: no zero-shot */
    mc_strlist class_names;
    /* images: IDX grey (fmnist), paths (folders) or encoded bytes (shards) */
    mc_idx images, labels;
    int *index;               /* fmnist: evaluated image -> IDX image */
    mc_strlist paths;         /* folders: [n] */
    unsigned char **bytes;    /* shards: [n] */
    size_t *size;
    mc_strlist keys;          /* shards: "shard:key" for messages */
    mc_strlist texts;         /* captions; text_image[t] is the image of caption t */
    int *text_image;
} eval_set;

struct mc_train_eval {
    eval_set sets[MC_TRAIN_EVAL_MAX_SETS];
    int count, batch;
    mc_strlist templates;
    mobileclip_ctx *ctx;      /* the evaluated copy (training-form store, plan derived per run) */
};

/* The evaluated subset: n of total, spread evenly (i * total / n), as `eval --limit`. */
static int pick(int i, int n, int total) { return (int)((long long)i * total / n); }

static int push_label(int **label, int n, int v, mc_err *e) {
    int *nl = realloc(*label, sizeof(int) * ((size_t)n + 1));
    if (!nl) return mc_fail(e, MC_E_NOMEM, "out of memory");
    (*label = nl)[n] = v;
    return 0;
}

/* Lines of a text file (trailing spaces and CR dropped, empty lines skipped). */
static int read_lines(const char *path, mc_strlist *out, mc_err *e) {
    char *data;
    size_t len;
    int r = mc_read_file(path, (size_t)64 << 20, &data, &len, e);
    if (r) return r;
    if (memchr(data, 0, len)) r = mc_fail(e, MC_E_FORMAT, "%s: contains NUL bytes (not a text file)", path);
    for (const char *p = data, *end = data + len; !r && p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *q = nl ? nl : end;
        while (q > p && (q[-1] == '\r' || q[-1] == ' ')) q--;
        if (q > p) r = mc_strlist_push(out, p, (size_t)(q - p), e);
        p = nl ? nl + 1 : end;
    }
    free(data);
    if (!r && !out->count) r = mc_fail(e, MC_E_FORMAT, "%s: no lines", path);
    return r;
}

static int push_all(mc_strlist *out, const char *const *items, int n, mc_err *e) {
    int r = 0;
    for (int k = 0; k < n && !r; k++) r = mc_strlist_push(out, items[k], strlen(items[k]), e);
    return r;
}

static int open_fmnist(eval_set *s, const char *dir, int limit, mc_err *e) {
    char img[4096], lab[4096];
    snprintf(img, sizeof img, "%s/t10k-images-idx3-ubyte.gz", dir);
    snprintf(lab, sizeof lab, "%s/t10k-labels-idx1-ubyte.gz", dir);
    int r = mc_idx_load_labelled(img, lab, MC_FMNIST_CLASSES, &s->images, &s->labels, e);
    if (r) return r;
    int total = (int)s->images.dims[0];
    s->n = limit && limit < total ? limit : total;
    if (!(s->index = malloc(sizeof(int) * (size_t)s->n)) || !(s->label = malloc(sizeof(int) * (size_t)s->n)))
        return mc_fail(e, MC_E_NOMEM, "out of memory");
    for (int i = 0; i < s->n; i++) s->label[i] = s->labels.data[s->index[i] = pick(i, s->n, total)];
    return push_all(&s->class_names, mc_fmnist_class_names, MC_FMNIST_CLASSES, e);
}

static int open_folders(eval_set *s, const char *dir, int limit, mc_err *e) {
    mc_strlist dirs = {0}, files = {0};
    int *label = NULL;
    int r = mc_walk_subdirs(dir, &dirs, e);
    if (!r && !dirs.count) r = mc_fail(e, MC_E_FORMAT, "%s: no class folders", dir);
    for (int c = 0; c < dirs.count && !r; c++) {
        int before = files.count;
        if ((r = mc_walk_images(dirs.items[c], NULL, &files, NULL, e))) break;
        for (int k = before; k < files.count && !r; k++) r = push_label(&label, k, c, e);
        const char *base = strrchr(dirs.items[c], '/'), *name = base ? base + 1 : dirs.items[c];
        if (!r) r = mc_strlist_push(&s->class_names, name, strlen(name), e);
    }
    if (!r && !files.count) r = mc_fail(e, MC_E_FORMAT, "%s: no images in the class folders", dir);
    if (!r) {
        s->n = limit && limit < files.count ? limit : files.count;
        if (!(s->label = malloc(sizeof(int) * (size_t)s->n))) r = mc_fail(e, MC_E_NOMEM, "out of memory");
        for (int i = 0; !r && i < s->n; i++) {
            int k = pick(i, s->n, files.count);
            s->label[i] = label[k];
            r = mc_strlist_push(&s->paths, files.items[k], strlen(files.items[k]), e);
        }
    }
    free(label);
    mc_strlist_free(&dirs);
    mc_strlist_free(&files);
    return r;
}

static const mc_wds_member *sample_image(const mc_wds_sample *smp) {
    static const char *exts[] = {"jpg", "jpeg", "png", "webp"};
    for (int k = 0; k < 4; k++) {
        const mc_wds_member *m = mc_wds_sample_find(smp, exts[k]);
        if (m) return m;
    }
    return NULL;
}

/* One shard sample: its image bytes, its captions, its class (when classes are wanted). */
static int shard_sample(eval_set *s, const mc_wds_sample *smp, int want_cls, mc_err *e) {
    const mc_wds_member *im = sample_image(smp), *txt = mc_wds_sample_find(smp, "txt");
    if (!im) return mc_fail(e, MC_E_FORMAT, "%s: sample '%s' has no jpg/jpeg/png/webp member", smp->shard, smp->key);
    if (want_cls) {
        const mc_wds_member *c = mc_wds_sample_find(smp, "cls");
        char *end = NULL;
        long v = c ? strtol((const char *)c->data, &end, 10) : -1;
        if (c) while (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t') end++;
        if (!c || end == (const char *)c->data || *end || v < 0 || v >= s->class_names.count)
            return mc_fail(e, MC_E_FORMAT, "%s: sample '%s': no .cls member naming one of the %d classes", smp->shard,
                           smp->key, s->class_names.count);
        int r = push_label(&s->label, s->n, (int)v, e);
        if (r) return r;
    }
    for (const char *p = txt ? (const char *)txt->data : NULL, *end = p ? p + txt->size : NULL; p && p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *q = nl ? nl : end, *a = p;
        while (q > a && (q[-1] == '\r' || q[-1] == ' ')) q--;
        while (a < q && *a == ' ') a++;
        if (q > a) {
            int r = mc_strlist_push(&s->texts, a, (size_t)(q - a), e);
            if (!r) r = push_label(&s->text_image, s->texts.count - 1, s->n, e);
            if (r) return r;
        }
        p = nl ? nl + 1 : end;
    }
    unsigned char **nb = realloc(s->bytes, sizeof *nb * ((size_t)s->n + 1));
    if (nb) s->bytes = nb;
    size_t *ns = nb ? realloc(s->size, sizeof *ns * ((size_t)s->n + 1)) : NULL;
    if (ns) s->size = ns;
    if (!nb || !ns || !(s->bytes[s->n] = malloc(im->size ? im->size : 1))) return mc_fail(e, MC_E_NOMEM, "out of memory");
    memcpy(s->bytes[s->n], im->data, im->size);
    s->size[s->n] = im->size;
    char key[512];
    snprintf(key, sizeof key, "%s:%s", smp->shard, smp->key);
    s->n++;
    return mc_strlist_push(&s->keys, key, strlen(key), e);
}

static int open_shards(eval_set *s, const char *spec, int limit, const char *classes, mc_err *e) {
    int r = 0;
    if (classes && !strcmp(classes, "fmnist")) r = push_all(&s->class_names, mc_fmnist_class_names, MC_FMNIST_CLASSES, e);
    else if (classes) r = read_lines(classes, &s->class_names, e);
    if (r) return r;
    mc_wds_reader rd;
    if ((r = mc_wds_open_spec(&rd, spec, NULL, e))) return r;
    mc_wds_sample smp;
    int got;
    while (!r && (!limit || s->n < limit) && (got = mc_wds_next(&rd, &smp, e)) != 0)
        r = got < 0 ? got : shard_sample(s, &smp, classes != NULL, e);
    mc_wds_close(&rd);
    if (!r && !s->n) r = mc_fail(e, MC_E_FORMAT, "%s: no samples", spec);
    if (!r && !classes && !s->texts.count)
        r = mc_fail(e, MC_E_FORMAT, "%s: no 'txt' captions (and no classes given for zero-shot)", spec);
    return r;
}

static void set_free(eval_set *s) {
    free(s->label), free(s->index), free(s->size), free(s->text_image);
    for (int i = 0; s->bytes && i < s->n; i++) free(s->bytes[i]);
    free(s->bytes);
    mc_idx_free(&s->images);
    mc_idx_free(&s->labels);
    mc_strlist_free(&s->class_names);
    mc_strlist_free(&s->paths);
    mc_strlist_free(&s->keys);
    mc_strlist_free(&s->texts);
}

int mc_train_eval_open(mc_train_eval **out, const char *const *specs, int n, const mc_train_eval_options *o,
                       const mc_clip_config *cfg, mc_err *e) {
    *out = NULL;
    if (n < 1 || n > MC_TRAIN_EVAL_MAX_SETS) return mc_fail(e, MC_E_ARG, "1 to %d evaluation sets, got %d", MC_TRAIN_EVAL_MAX_SETS, n);
    mc_train_eval *ev = calloc(1, sizeof *ev);
    if (!ev) return mc_fail(e, MC_E_NOMEM, "out of memory");
    ev->batch = o->batch > 0 ? o->batch : 16;
    int r = 0, kinds[3] = {0};
    const char *tm = o->templates ? o->templates : "imagenet";
    int nt = 0;
    const char *const *builtin = !strcmp(tm, "imagenet") ? mobileclip_imagenet_templates(&nt)
                                 : !strcmp(tm, "simple") ? mobileclip_simple_templates(&nt) : NULL;
    if (builtin) r = push_all(&ev->templates, builtin, nt, e);
    else r = read_lines(tm, &ev->templates, e);
    static const char *const prefix[3] = {"fmnist:", "folders:", "shards:"};
    for (int k = 0; k < n && !r; k++) {
        eval_set *s = &ev->sets[ev->count++];
        int kind = -1;
        for (int j = 0; j < 3; j++)
            if (!strncmp(specs[k], prefix[j], strlen(prefix[j]))) kind = j;
        const char *arg = kind >= 0 ? specs[k] + strlen(prefix[kind]) : "";
        if (kind < 0 || !*arg) {
            r = mc_fail(e, MC_E_ARG, "--eval '%s': expected fmnist:DIR, folders:DIR or shards:SPEC", specs[k]);
            break;
        }
        s->kind = (set_kind)kind;
        int nth = ++kinds[kind]; /* "shards", then "shards.2", ... */
        snprintf(s->name, sizeof s->name, nth > 1 ? "%.*s.%d" : "%.*s", (int)strlen(prefix[kind]) - 1, prefix[kind], nth);
        r = kind == SET_FMNIST    ? open_fmnist(s, arg, o->limit, e)
            : kind == SET_FOLDERS ? open_folders(s, arg, o->limit, e)
                                  : open_shards(s, arg, o->limit, o->classes, e);
    }
    /* the evaluated copy: the configuration's training-form layout, values copied per run */
    if (!r && !(ev->ctx = calloc(1, sizeof *ev->ctx))) r = mc_fail(e, MC_E_NOMEM, "out of memory");
    if (!r) {
        r = mc_clip_init_config(&ev->ctx->model, cfg, NULL, 1, 1, 0, e);
        if (r) free(ev->ctx), ev->ctx = NULL;
    }
    if (r) {
        mc_train_eval_close(ev);
        return r;
    }
    *out = ev;
    return 0;
}

int mc_train_eval_count(const mc_train_eval *ev) { return ev->count; }

static int load_item(void *user, int i, int R, float *chw, mc_err *e) {
    const eval_set *s = user;
    if (s->kind == SET_FMNIST) {
        mc_batch_gray g = {s->images.data, (int)s->images.dims[1], (int)s->images.dims[2]};
        return mc_batch_load_gray(&g, s->index[i], R, chw, e);
    }
    if (s->kind == SET_FOLDERS) return mc_batch_load_path(s->paths.items, i, R, chw, e);
    mc_batch_bytes b = {(const unsigned char *const *)s->bytes, s->size, (const char *const *)s->keys.items};
    return mc_batch_load_bytes(&b, i, R, chw, e);
}

static int eval_set_run(mc_train_eval *ev, const eval_set *s, mc_train_eval_result *res, mc_err *e) {
    mobileclip_ctx *ctx = ev->ctx;
    const int dim = mobileclip_embed_dim(ctx);
    *res = (mc_train_eval_result){.images = s->n, .texts = s->texts.count, .top1 = NAN, .i2t_r1 = NAN, .t2i_r1 = NAN};
    snprintf(res->name, sizeof res->name, "%s", s->name);
    float *img = malloc(sizeof(float) * (size_t)dim * (size_t)s->n);
    float *txt = s->texts.count ? malloc(sizeof(float) * (size_t)dim * (size_t)s->texts.count) : NULL;
    mobileclip_classifier *clf = NULL;
    int r = !img || (s->texts.count && !txt) ? mc_fail(e, MC_E_NOMEM, "out of memory") : 0;
    /* every image must load: a skipped one would change what the figure means */
    if (!r) r = mc_batch_embed_images(ctx, s->n, ev->batch, load_item, (void *)s, img, NULL, NULL, e);
    if (!r && s->label) {
        clf = mobileclip_classifier_build(ctx, (const char *const *)s->class_names.items, s->class_names.count,
                                          (const char *const *)ev->templates.items, ev->templates.count);
        if (!clf) r = mc_fail(e, MC_E_MODEL, "%s: zero-shot classifier: %s", s->name, mobileclip_last_error(ctx));
        mobileclip_zeroshot_result zr = {0};
        if (!r && mobileclip_eval_zeroshot(img, s->n, s->label, mobileclip_classifier_weights(clf), s->class_names.count,
                                           dim, &zr))
            r = mc_fail(e, MC_E_NOMEM, "out of memory");
        if (!r) res->top1 = zr.top1;
    }
    if (!r && s->texts.count) {
        r = mc_batch_embed_texts(ctx, (const char *const *)s->texts.items, s->texts.count, txt, NULL, e);
        mobileclip_retrieval_result rr;
        if (!r && mobileclip_eval_retrieval(img, s->n, txt, s->texts.count, s->text_image, dim, &rr))
            r = mc_fail(e, MC_E_NOMEM, "out of memory");
        if (!r) res->i2t_r1 = rr.i2t_r1, res->t2i_r1 = rr.t2i_r1;
    }
    mobileclip_classifier_free(clf);
    free(img);
    free(txt);
    return r;
}

int mc_train_eval_run(mc_train_eval *ev, const mc_clip *clip, mc_train_eval_result *res, mc_err *e) {
    mc_param_store *dst = &ev->ctx->model.store;
    const mc_param_store *src = &clip->store;
    if (dst->total != src->total || dst->count != src->count || dst->ncounters != src->ncounters)
        return mc_fail(e, MC_E_ARG, "evaluation: the trained model's layout differs from its configuration's");
    memcpy(dst->data, src->data, sizeof(float) * src->total);
    if (src->ncounters) memcpy(dst->counters, src->counters, sizeof(int64_t) * (size_t)src->ncounters);
    ev->ctx->model.reparam = 1; /* run the plan derived from these values */
    int threads = mc_ctx_threads_begin(ev->ctx);
    int r = mc_clip_plan_build(&ev->ctx->model, e);
    mc_ctx_threads_end(threads);
    for (int k = 0; k < ev->count && !r; k++) r = eval_set_run(ev, &ev->sets[k], &res[k], e);
    return r;
}

void mc_train_eval_close(mc_train_eval *ev) {
    if (!ev) return;
    for (int k = 0; k < ev->count; k++) set_free(&ev->sets[k]);
    mc_strlist_free(&ev->templates);
    mobileclip_free(ev->ctx);
    free(ev);
}
