/* experiment_fmnist_stages.c - see experiment_fmnist_stages.h. */
#include "tools/experiment_fmnist_stages.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mobileclip.h"
#include "eval/batch.h"
#include "experiment/fmnist.h"
#include "io/atomic_file.h"
#include "io/idx.h"
#include "io/wds.h"
#include "tools/cli.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int mc_xp_make_dir(const char *path, mc_err *e) {
    if (mkdir(path, 0777) == 0 || errno == EEXIST) return 0;
    return mc_fail(e, MC_E_IO, "%s: cannot create directory: %s", path, strerror(errno));
}

/* Samples of shards held in memory: PNG bytes, class, caption. */
typedef struct shard_set {
    int n, cap;
    unsigned char **png;
    size_t *size;
    char **names, **caption;
    int *label;
} shard_set;

static void shard_set_free(shard_set *s) {
    for (int i = 0; i < s->n; i++) free(s->png[i]), free(s->names[i]), free(s->caption[i]);
    free(s->png), free(s->size), free(s->names), free(s->caption), free(s->label);
    memset(s, 0, sizeof *s);
}

static char *dup_n(const void *p, size_t n) {
    char *s = malloc(n + 1);
    if (s) memcpy(s, p, n), s[n] = 0;
    return s;
}

static int read_shards(const char *spec, int max, shard_set *s, mc_err *e) {
    mc_wds_reader rd;
    int r = mc_wds_open_spec(&rd, spec, NULL, e), got;
    if (r) return r;
    mc_wds_sample smp;
    while (!r && s->n < max && (got = mc_wds_next(&rd, &smp, e)) != 0) {
        if (got < 0) {
            r = got;
            break;
        }
        const mc_wds_member *p = mc_wds_sample_find(&smp, "png"), *c = mc_wds_sample_find(&smp, "cls"),
                            *t = mc_wds_sample_find(&smp, "txt");
        if (!p || !c || !t) {
            r = mc_fail(e, MC_E_FORMAT, "%s: sample '%s' lacks png, cls or txt", smp.shard, smp.key);
            break;
        }
        if (s->n == s->cap) {
            int cap = s->cap ? 2 * s->cap : 1024;
            void *a = realloc(s->png, sizeof *s->png * cap), *b = realloc(s->size, sizeof *s->size * cap);
            void *c2 = realloc(s->names, sizeof *s->names * cap), *d = realloc(s->caption, sizeof *s->caption * cap);
            void *f = realloc(s->label, sizeof *s->label * cap);
            if (a) s->png = a;
            if (b) s->size = b;
            if (c2) s->names = c2;
            if (d) s->caption = d;
            if (f) s->label = f;
            if (!a || !b || !c2 || !d || !f) {
                r = mc_fail(e, MC_E_NOMEM, "out of memory");
                break;
            }
            s->cap = cap;
        }
        char name[512];
        snprintf(name, sizeof name, "%s:%s", smp.shard, smp.key);
        int i = s->n;
        s->png[i] = (unsigned char *)dup_n(p->data, p->size), s->size[i] = p->size;
        s->names[i] = dup_n(name, strlen(name)), s->caption[i] = dup_n(t->data, t->size);
        s->label[i] = atoi((const char *)c->data);
        s->n++;
        if (!s->png[i] || !s->names[i] || !s->caption[i]) r = mc_fail(e, MC_E_NOMEM, "out of memory");
    }
    mc_wds_close(&rd);
    return r;
}

/* Test images from the IDX file: n of total, spread evenly. */
typedef struct idx_subset {
    mc_batch_gray gray;
    int n, total;
} idx_subset;

static int idx_index(const idx_subset *s, int i) { return (int)((long long)i * s->total / s->n); }
static int load_idx_subset(void *user, int i, int R, float *chw, mc_err *e) {
    idx_subset *s = user;
    return mc_batch_load_gray(&s->gray, idx_index(s, i), R, chw, e);
}

static int zeroshot(const float *emb, int n, const int *labels, const mobileclip_classifier *clf, int dim, double *top1,
                    double *top5, mc_err *e) {
    mobileclip_zeroshot_result res = {0};
    if (mobileclip_eval_zeroshot(emb, n, labels, mobileclip_classifier_weights(clf), MC_FMNIST_CLASSES, dim, &res))
        return mc_fail(e, MC_E_ARG, "zero-shot evaluation failed");
    *top1 = res.top1, *top5 = res.top5;
    return 0;
}

int mc_xp_evaluate(const char *ckpt, const char *config, const char *held_spec, const char *test_spec, const char *data, int n_eval,
                    mc_xp_eval *f, mc_err *e) {
    mobileclip_params p = mobileclip_default_params();
    p.config_path = config;
    char err[1024];
    mobileclip_ctx *ctx = mobileclip_init_from_file(ckpt, &p, err, sizeof err);
    if (!ctx) return mc_fail(e, MC_E_MODEL, "%s", err);
    const int dim = mobileclip_embed_dim(ctx);
    f->logit_scale = mobileclip_logit_scale(ctx);
    int nt, r = 0;
    const char *const *tmpl = mobileclip_imagenet_templates(&nt);
    double t0 = now();
    mobileclip_classifier *clf = mobileclip_classifier_build(ctx, mc_fmnist_class_names, MC_FMNIST_CLASSES, tmpl, nt);
    f->seconds_classifier = now() - t0;
    if (!clf) r = mc_fail(e, MC_E_MODEL, "%s", mobileclip_last_error(ctx));
    /* test set, from the IDX files as `eval zeroshot --fashion-mnist` reads it */
    mc_idx im = {0}, lb = {0};
    float *emb = NULL, *temb = NULL;
    int *labels = NULL, *text_image = NULL;
    shard_set held = {0}, test = {0};
    char ip[4096], lp[4096];
    snprintf(ip, sizeof ip, "%s/t10k-images-idx3-ubyte.gz", data);
    snprintf(lp, sizeof lp, "%s/t10k-labels-idx1-ubyte.gz", data);
    if (!r) r = mc_idx_load_labelled(ip, lp, MC_FMNIST_CLASSES, &im, &lb, e);
    if (!r) {
        idx_subset sub = {{im.data, (int)im.dims[1], (int)im.dims[2]}, 0, (int)im.dims[0]};
        sub.n = n_eval < sub.total ? n_eval : sub.total;
        emb = malloc(sizeof(float) * (size_t)dim * (n_eval > 10000 ? n_eval : 10000));
        labels = malloc(sizeof(int) * (size_t)(n_eval > 10000 ? n_eval : 10000));
        if (!emb || !labels) r = mc_fail(e, MC_E_NOMEM, "out of memory");
        t0 = now();
        if (!r) r = mc_batch_embed_images(ctx, sub.n, 64, load_idx_subset, &sub, emb, NULL, NULL, e);
        for (int i = 0; !r && i < sub.n; i++) labels[i] = lb.data[idx_index(&sub, i)];
        if (!r) r = zeroshot(emb, sub.n, labels, clf, dim, &f->test_top1, &f->test_top5, e);
        f->n_test = sub.n, f->seconds_test = now() - t0;
    }
    /* held-out slice, from its shards */
    t0 = now();
    if (!r && held_spec) r = read_shards(held_spec, n_eval, &held, e);
    if (!r && held.n) {
        mc_batch_bytes bb = {(const unsigned char *const *)held.png, held.size, (const char *const *)held.names};
        r = mc_batch_embed_images(ctx, held.n, 64, mc_batch_load_bytes, &bb, emb, NULL, NULL, e);
        if (!r) r = zeroshot(emb, held.n, held.label, clf, dim, &f->heldout_top1, &f->heldout_top5, e);
    }
    f->n_heldout = held.n, f->seconds_heldout = now() - t0;
    /* retrieval on the test shards' (noisy) captions: caption i describes image i */
    t0 = now();
    if (!r) r = read_shards(test_spec, n_eval, &test, e);
    if (!r && test.n) {
        mc_batch_bytes bb = {(const unsigned char *const *)test.png, test.size, (const char *const *)test.names};
        temb = malloc(sizeof(float) * (size_t)dim * test.n);
        text_image = malloc(sizeof(int) * (size_t)test.n);
        if (!temb || !text_image) r = mc_fail(e, MC_E_NOMEM, "out of memory");
        if (!r) r = mc_batch_embed_images(ctx, test.n, 64, mc_batch_load_bytes, &bb, emb, NULL, NULL, e);
        if (!r) r = mc_batch_embed_texts(ctx, (const char *const *)test.caption, test.n, temb, NULL, e);
        for (int i = 0; !r && i < test.n; i++) text_image[i] = i;
        mobileclip_retrieval_result rr = {0};
        if (!r && mobileclip_eval_retrieval(emb, test.n, temb, test.n, text_image, dim, &rr))
            r = mc_fail(e, MC_E_ARG, "retrieval evaluation failed");
        f->i2t_r1 = rr.i2t_r1, f->t2i_r1 = rr.t2i_r1, f->i2t_r5 = rr.i2t_r5, f->t2i_r5 = rr.t2i_r5;
    }
    f->n_retrieval = test.n, f->seconds_retrieval = now() - t0;
    free(emb), free(temb), free(labels), free(text_image);
    shard_set_free(&held), shard_set_free(&test);
    mc_idx_free(&im), mc_idx_free(&lb);
    mobileclip_classifier_free(clf);
    mobileclip_free(ctx);
    return r;
}


/* ---- commands ---- */

static const struct {
    const char *name;
    int (*fn)(int, char **);
} commands[] = {{"train", mc_cmd_train}, {"reinforce", mc_cmd_reinforce}, {"caption", mc_cmd_caption}};

int mc_xp_command(const char *const *args) {
    int argc = 0;
    while (args[argc]) argc++;
    int (*fn)(int, char **) = NULL;
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (argc && !strcmp(args[0], commands[k].name)) fn = commands[k].fn;
    if (!fn) return 2;
    fprintf(stderr, "mobileclip experiment:   $ mobileclip");
    for (int i = 0; i < argc; i++) fprintf(stderr, strchr(args[i], '{') || strchr(args[i], ' ') ? " '%s'" : " %s", args[i]);
    fprintf(stderr, "\n");
    char **argv = malloc(sizeof(char *) * (size_t)(argc + 1));
    if (!argv) return 1;
    for (int i = 0; i <= argc; i++) argv[i] = (char *)args[i];
    fflush(stdout);
    int st = fn(argc, argv);
    fflush(stdout);
    free(argv);
    return st;
}

/* ---- cached stages ---- */

double mc_xp_cpu_seconds(void) {
    struct rusage u;
    if (getrusage(RUSAGE_SELF, &u)) return 0;
    return (double)u.ru_utime.tv_sec + 1e-6 * (double)u.ru_utime.tv_usec + (double)u.ru_stime.tv_sec +
           1e-6 * (double)u.ru_stime.tv_usec;
}

int mc_xp_stamp_matches(const char *dir, const char *stamp) {
    char p[4096];
    snprintf(p, sizeof p, "%s/stamp.txt", dir);
    FILE *f = fopen(p, "rb");
    if (!f) return 0;
    size_t n = strlen(stamp);
    char *buf = malloc(n + 2);
    size_t got = buf ? fread(buf, 1, n + 1, f) : 0;
    fclose(f);
    int same = buf && got == n && memcmp(buf, stamp, n) == 0;
    free(buf);
    return same;
}

int mc_xp_stamp_write(const char *dir, const char *stamp, mc_err *e) {
    char p[4096];
    snprintf(p, sizeof p, "%s/stamp.txt", dir);
    mc_atomic_file af;
    int r = mc_atomic_open(&af, p, e);
    if (r) return r;
    fputs(stamp, af.f);
    return mc_atomic_commit(&af, e);
}

int mc_xp_dir_reset(const char *dir, mc_err *e) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        char p[4096];
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2]))) continue;
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            struct stat st;
            if (lstat(p, &st) == 0 && !S_ISDIR(st.st_mode) && unlink(p)) {
                closedir(d);
                return mc_fail(e, MC_E_IO, "%s: cannot remove: %s", p, strerror(errno));
            }
        }
        closedir(d);
    }
    return mc_xp_make_dir(dir, e);
}

long long mc_xp_tar_bytes(const char *dir, const char *prefix, int *count) {
    DIR *d = opendir(dir);
    long long total = 0;
    int n = 0;
    size_t lp = strlen(prefix);
    if (d) {
        struct dirent *de;
        char p[4096];
        while ((de = readdir(d)) != NULL) {
            size_t l = strlen(de->d_name);
            if (l < lp + 4 || strncmp(de->d_name, prefix, lp) || strcmp(de->d_name + l - 4, ".tar")) continue;
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            struct stat st;
            if (stat(p, &st) == 0) total += (long long)st.st_size, n++;
        }
        closedir(d);
    }
    if (count) *count = n;
    return total;
}

int mc_xp_write_real_as_syn(const char *spec, const char *path, mc_err *e) {
    mc_wds_reader rd;
    int r = mc_wds_open_spec(&rd, spec, NULL, e), got;
    if (r) return r;
    mc_atomic_file af;
    if ((r = mc_atomic_open(&af, path, e))) {
        mc_wds_close(&rd);
        return r;
    }
    mc_wds_sample smp;
    while (!r && (got = mc_wds_next(&rd, &smp, e)) != 0) {
        if (got < 0) {
            r = got;
            break;
        }
        const mc_wds_member *t = mc_wds_sample_find(&smp, "txt");
        char *cap = t ? dup_n(t->data, t->size) : NULL;
        if (!cap) {
            r = t ? mc_fail(e, MC_E_NOMEM, "out of memory") : mc_fail(e, MC_E_FORMAT, "%s: sample '%s' has no txt", smp.shard, smp.key);
            break;
        }
        char *nl = strchr(cap, '\n');
        if (nl) *nl = 0;
        fprintf(af.f, "{\"key\": ");
        mc_json_print_string(af.f, smp.key);
        fprintf(af.f, ", \"syn_text\": [");
        mc_json_print_string(af.f, cap);
        fprintf(af.f, "]}\n");
        free(cap);
    }
    mc_wds_close(&rd);
    if (r) {
        mc_atomic_abort(&af);
        return r;
    }
    return mc_atomic_commit(&af, e);
}
