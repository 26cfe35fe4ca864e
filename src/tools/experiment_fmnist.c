/* experiment_fmnist.c - `mobileclip experiment fmnist`: the Fashion-MNIST experiment driver.
 *
 * What runs today (every figure is measured, none is assumed):
 *   1. data      IDX -> shards/{train,heldout,test}-*.tar with noisy captions (experiment/fmnist.h)
 *   2. captions  quality of the real captions (train and held-out), by class-synonym matching
 *   3. student   the built-in student configuration, saved to configs/, with seeded random
 *                weights in checkpoints/student_random.pt (experiment/random_init.h)
 *   4. eval      that checkpoint through the public API: zero-shot top-1/top-5 on the test
 *                images (IDX, the reference preprocessing) and on the held-out shards, and
 *                image<->text R@1 on the test shards' captions
 * Not run (their commands are not in this build): teachers, captioner, reinforcement, the
 * four training runs; results.json lists them under "not_run" and report.md says so. */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "mobileclip.h"
#include "eval/batch.h"
#include "experiment/configs.h"
#include "experiment/random_init.h"
#include "io/atomic_file.h"
#include "io/idx.h"
#include "io/wds.h"
#include "tools/cli.h"
#include "tools/experiment_fmnist.h"

void mc_experiment_set_threads(int n) {
    if (n > 0) omp_set_num_threads(n);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int make_dir(const char *path, mc_err *e) {
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

typedef struct eval_figures {
    int n_test, n_heldout, n_retrieval;
    double test_top1, test_top5, heldout_top1, heldout_top5, i2t_r1, t2i_r1, i2t_r5, t2i_r5;
    double seconds_test, seconds_heldout, seconds_retrieval, seconds_classifier;
} eval_figures;

static int zeroshot(const float *emb, int n, const int *labels, const mobileclip_classifier *clf, int dim, double *top1,
                    double *top5, mc_err *e) {
    mobileclip_zeroshot_result res = {0};
    if (mobileclip_eval_zeroshot(emb, n, labels, mobileclip_classifier_weights(clf), MC_FMNIST_CLASSES, dim, &res))
        return mc_fail(e, MC_E_ARG, "zero-shot evaluation failed");
    *top1 = res.top1, *top5 = res.top5;
    return 0;
}

/* The evaluations of one checkpoint: test (IDX), held-out and test shards. */
static int evaluate(const char *ckpt, const char *config, const char *held_spec, const char *test_spec, const char *data, int n_eval,
                    eval_figures *f, mc_err *e) {
    mobileclip_params p = mobileclip_default_params();
    p.config_path = config;
    char err[1024];
    mobileclip_ctx *ctx = mobileclip_init_from_file(ckpt, &p, err, sizeof err);
    if (!ctx) return mc_fail(e, MC_E_MODEL, "%s", err);
    const int dim = mobileclip_embed_dim(ctx);
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

static const struct {
    const char *stage, *needs;
} not_run[] = {
    {"teachers", "`mobileclip train` (two CLIP teachers: fmnist_teacher_mci, fmnist_teacher_attn)"},
    {"captioner", "`mobileclip train` for the CoCa captioner and `mobileclip caption` (synthetic captions, top-p 0.9)"},
    {"reinforce", "`mobileclip reinforce` (augmentations at the student's size, synthetic captions, teacher embeddings)"},
    {"students", "`mobileclip train`: plain CLIP, CLIP + synthetic captions, DR lambda 0.7 and 1.0"},
};

static void json_quality(FILE *f, const mc_caption_quality *q) {
    fprintf(f, "{\"captions\": %lld", q->n);
    for (int k = 0; k < 4; k++)
        fprintf(f, ", \"%s\": %.6f", mc_caption_kind_names[k], q->n ? (double)q->kind[k] / (double)q->n : 0.0);
    fprintf(f, "}");
}

static void json_split(FILE *f, const char *name, const char *spec, const mc_fmnist_split_stats *s, int last) {
    fprintf(f, "    \"%s\": {\"shards\": \"%s\", \"samples\": %d, \"shard_files\": %d, \"bytes\": %lld, "
               "\"bytes_per_sample\": %.1f}%s\n",
            name, spec, s->samples, s->shards, s->bytes, s->samples ? (double)s->bytes / s->samples : 0.0, last ? "" : ",");
}

typedef struct run_state {
    const mc_fmnist_run_opts *o;
    int limit, n_eval;
    mc_fmnist_shards_stats st;
    char specs[3][128];
    mc_clip_config cfg;
    eval_figures ev;
    double sec_shards, sec_init, sec_eval, sec_total;
} run_state;

static int write_results(const run_state *s, const char *path, mc_err *e) {
    mc_atomic_file af;
    int r = mc_atomic_open(&af, path, e), nt;
    if (r) return r;
    FILE *f = af.f;
    const mc_fmnist_run_opts *o = s->o;
    fprintf(f, "{\n  \"experiment\": \"fashion-mnist learning efficiency (issue 8)\",\n");
    fprintf(f, "  \"mode\": \"%s\",\n  \"seed\": %llu,\n  \"samples_per_split_limit\": %d,\n", o->quick ? "quick" : "full",
            (unsigned long long)o->seed, s->limit);
    fprintf(f, "  \"data\": {\n    \"source\": ");
    mc_json_print_string(f, o->data);
    fprintf(f, ",\n");
    json_split(f, "train", s->specs[0], &s->st.train, 0);
    json_split(f, "heldout", s->specs[1], &s->st.heldout, 0);
    json_split(f, "test", s->specs[2], &s->st.test, 1);
    fprintf(f, "  },\n  \"caption_process\": {\"p_wrong\": %.2f, \"p_none\": %.2f, \"p_mixed\": %.2f, "
               "\"p_wrong_colour\": %.2f, \"documented_in\": \"docs/EXPERIMENT.md\"},\n",
            MC_FMNIST_P_WRONG, MC_FMNIST_P_NONE, MC_FMNIST_P_MIXED, MC_FMNIST_P_WRONG_COLOUR);
    fprintf(f, "  \"real_captions\": {\"train\": ");
    json_quality(f, &s->st.train.quality);
    fprintf(f, ", \"heldout\": ");
    json_quality(f, &s->st.heldout.quality);
    fprintf(f, "},\n  \"synthetic_captions\": null,\n  \"teachers\": [],\n  \"captioner\": null,\n");
    fprintf(f, "  \"class_names\": [");
    for (int c = 0; c < MC_FMNIST_CLASSES; c++) fprintf(f, "%s\"%s\"", c ? ", " : "", mc_fmnist_class_names[c]);
    fprintf(f, "],\n  \"templates\": [");
    const char *const *t = mobileclip_imagenet_templates(&nt);
    for (int k = 0; k < nt; k++) {
        fprintf(f, "%s", k ? ", " : "");
        mc_json_print_string(f, t[k]);
    }
    const eval_figures *v = &s->ev;
    fprintf(f, "],\n  \"runs\": [\n    {\"name\": \"untrained\", \"lambda\": null, \"config\": \"configs/%s.json\", "
               "\"checkpoint\": \"checkpoints/student_random.pt\", \"init_seed\": %llu,\n",
            o->student, (unsigned long long)o->seed);
    fprintf(f, "     \"evaluations\": [{\"seen_samples\": 0, \"test_images\": %d, \"zeroshot_top1\": %.6f, "
               "\"zeroshot_top5\": %.6f, \"heldout_images\": %d, \"heldout_zeroshot_top1\": %.6f, "
               "\"retrieval_pairs\": %d, \"i2t_r1\": %.6f, \"t2i_r1\": %.6f, \"i2t_r5\": %.6f, \"t2i_r5\": %.6f}]}\n  ],\n",
            v->n_test, v->test_top1, v->test_top5, v->n_heldout, v->heldout_top1, v->n_retrieval, v->i2t_r1, v->t2i_r1,
            v->i2t_r5, v->t2i_r5);
    fprintf(f, "  \"not_run\": [\n");
    for (int k = 0; k < 4; k++)
        fprintf(f, "    {\"stage\": \"%s\", \"needs\": \"%s\"}%s\n", not_run[k].stage, not_run[k].needs, k < 3 ? "," : "");
    fprintf(f, "  ],\n  \"timings\": {\n    \"shards_seconds\": %.3f,\n    \"student_init_seconds\": %.3f,\n"
               "    \"classifier_seconds\": %.3f,\n    \"eval_seconds\": %.3f,\n    \"total_seconds\": %.3f\n  }\n}\n",
            s->sec_shards, s->sec_init, v->seconds_classifier, s->sec_eval, s->sec_total);
    return mc_atomic_commit(&af, e);
}

static void report_quality_row(FILE *f, const char *what, const mc_caption_quality *q) {
    fprintf(f, "| %s | %lld | %.4f | %.4f | %.4f | %.4f |\n", what, q->n, q->n ? (double)q->kind[0] / q->n : 0,
            q->n ? (double)q->kind[1] / q->n : 0, q->n ? (double)q->kind[2] / q->n : 0, q->n ? (double)q->kind[3] / q->n : 0);
}

static int write_report(const run_state *s, const char *path, mc_err *e) {
    mc_atomic_file af;
    int r = mc_atomic_open(&af, path, e);
    if (r) return r;
    FILE *f = af.f;
    const mc_fmnist_run_opts *o = s->o;
    const eval_figures *v = &s->ev;
    fprintf(f, "# Fashion-MNIST learning-efficiency experiment: %s run, seed %llu\n\n", o->quick ? "quick" : "full",
            (unsigned long long)o->seed);
    fprintf(f, "**Incomplete experiment.** Only the data, caption and evaluation stages ran. The teachers, the "
               "captioner, reinforcement and the four student trainings were not run because their commands "
               "are not in this build; no figure below comes from a trained model.\n\n");
    fprintf(f, "## Data\n\nSource: `%s` (Fashion-MNIST IDX files). Shards (PNG 28x28 grey, noisy caption, class for "
               "evaluation only):\n\n| split | samples | shards | bytes per sample | spec |\n|---|---|---|---|---|\n",
            o->data);
    const char *names[3] = {"train", "heldout", "test"};
    const mc_fmnist_split_stats *sp[3] = {&s->st.train, &s->st.heldout, &s->st.test};
    for (int k = 0; k < 3; k++)
        fprintf(f, "| %s | %d | %d | %.0f | `%s` |\n", names[k], sp[k]->samples, sp[k]->shards,
                sp[k]->samples ? (double)sp[k]->bytes / sp[k]->samples : 0, s->specs[k]);
    fprintf(f, "\nThe held-out slice is the last 5000 training images (kept apart for tuning); the test set is used "
               "only for evaluation.%s\n\n",
            s->limit ? " This run used only the first samples of each split (see the limit in results.json)." : "");
    fprintf(f, "## Real captions\n\nSeeded noisy alt-text process (docs/EXPERIMENT.md): documented rates wrong %.2f, "
               "none %.2f, mixed %.2f (colour wrong in %.0f%% of the captions that give one). Measured by "
               "class-synonym matching:\n\n| captions | n | right | wrong | none | mixed |\n|---|---|---|---|---|---|\n",
            MC_FMNIST_P_WRONG, MC_FMNIST_P_NONE, MC_FMNIST_P_MIXED, 100 * MC_FMNIST_P_WRONG_COLOUR);
    report_quality_row(f, "real, train", &s->st.train.quality);
    report_quality_row(f, "real, held-out", &s->st.heldout.quality);
    fprintf(f, "| synthetic | - | not run | | | |\n\n");
    fprintf(f, "## Student\n\nConfiguration `configs/%s.json` (image %d px, embedding %d, context %d tokens), "
               "random weights (seed %llu) in `checkpoints/student_random.pt`.\n\n",
            o->student, s->cfg.image_size, s->cfg.embed_dim, s->cfg.text.context_length, (unsigned long long)o->seed);
    fprintf(f, "| run | lambda | seen samples | zero-shot top-1 (test) | top-5 | top-1 (held-out) | I->T R@1 | T->I R@1 |\n"
               "|---|---|---|---|---|---|---|---|\n");
    fprintf(f, "| untrained | - | 0 | %.4f (%d images) | %.4f | %.4f (%d) | %.4f | %.4f (%d pairs) |\n", v->test_top1,
            v->n_test, v->test_top5, v->heldout_top1, v->n_heldout, v->i2t_r1, v->t2i_r1, v->n_retrieval);
    fprintf(f, "| plain CLIP | 0 | - | not run | | | | |\n| CLIP + synthetic | 0 | - | not run | | | | |\n"
               "| DR | 0.7 | - | not run | | | | |\n| DR | 1.0 | - | not run | | | | |\n\n");
    fprintf(f, "Zero-shot: CLIP's protocol with the %d ImageNet templates and the class names %s, ...; each test "
               "image preprocessed as the reference does (grey to RGB, bilinear resize of the shorter side, centre "
               "crop, [0,1]). Chance is 0.10.\n\n",
            80, "\"T-shirt/top\", \"Trouser\"");
    fprintf(f, "## Not run\n\n");
    for (int k = 0; k < 4; k++) fprintf(f, "- **%s**: needs %s.\n", not_run[k].stage, not_run[k].needs);
    fprintf(f, "\n## Timings (this machine, shared)\n\nshards %.1f s, student init %.1f s, evaluation %.1f s "
               "(classifier %.1f s), total %.1f s.\n",
            s->sec_shards, s->sec_init, s->sec_eval, v->seconds_classifier, s->sec_total);
    return mc_atomic_commit(&af, e);
}

int mc_experiment_fmnist_run(const mc_fmnist_run_opts *o) {
    run_state s = {.o = o};
    mc_err e = {0};
    double t_start = now();
    mc_experiment_set_threads(o->threads);
    s.limit = o->limit ? o->limit : o->quick ? 2000 : 0;
    s.n_eval = o->quick || o->limit ? (s.limit < 1000 ? s.limit : 1000) : 10000;
    const mc_builtin_config *b = mc_builtin_config_find(o->student);
    if (!b) {
        fprintf(stderr, "mobileclip experiment: no built-in configuration '%s' (see experiment configs)\n", o->student);
        return 2;
    }
    char dir[4096], path[4096], cfg_path[4096], ckpt[4096];
    int r = make_dir(o->out, &e);
    snprintf(dir, sizeof dir, "%s/shards", o->out);
    /* 1. data */
    fprintf(stderr, "mobileclip experiment: [1/4] shards from %s (%s)\n", o->data, s.limit ? "subset" : "all");
    double t0 = now();
    mc_fmnist_shards_opts so = {.data_dir = o->data, .out_dir = dir, .seed = o->seed, .per_shard = o->quick ? 1000 : 5000,
                                .heldout = 5000, .limit = s.limit};
    int reused = o->reuse && !r ? mc_fmnist_read_manifest(&so, &s.st, &e) : 0;
    if (reused < 0) r = reused;
    if (reused > 0) fprintf(stderr, "mobileclip experiment:       reusing the shards in %s (same data, seed and sizes)\n", dir);
    if (!r && !reused) r = mc_fmnist_write_shards(&so, &s.st, &e);
    if (!r && !reused) r = mc_fmnist_write_manifest(&so, &s.st, &e);
    s.sec_shards = now() - t0;
    const char *names[3] = {"train", "heldout", "test"};
    const mc_fmnist_split_stats *sp[3] = {&s.st.train, &s.st.heldout, &s.st.test};
    for (int k = 0; k < 3; k++)
        snprintf(s.specs[k], sizeof s.specs[k], "shards/%s-{00000..%05d}.tar", names[k], sp[k]->shards ? sp[k]->shards - 1 : 0);
    /* 2. real caption quality: the converter counted the captions it wrote (see also caption-quality) */
    /* 3. student */
    fprintf(stderr, "mobileclip experiment: [2/4] student %s with random weights (seed %llu)\n", o->student,
            (unsigned long long)o->seed);
    t0 = now();
    snprintf(path, sizeof path, "%s/configs", o->out);
    if (!r) r = make_dir(path, &e);
    snprintf(cfg_path, sizeof cfg_path, "%s/configs/%s.json", o->out, o->student);
    if (!r) r = mc_builtin_config_save(b, cfg_path, &e);
    if (!r) r = mc_builtin_config_parse(b, &s.cfg, &e);
    snprintf(path, sizeof path, "%s/checkpoints", o->out);
    if (!r) r = make_dir(path, &e);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoints/student_random.pt", o->out);
    if (!r) r = mc_experiment_write_random_checkpoint(&s.cfg, o->seed, ckpt, &e);
    s.sec_init = now() - t0;
    /* 4. evaluation */
    fprintf(stderr, "mobileclip experiment: [3/4] evaluation (%d test images)\n", s.n_eval);
    t0 = now();
    char held_spec[8300], test_spec[8300];
    snprintf(held_spec, sizeof held_spec, "%s/%s", o->out, s.specs[1]);
    snprintf(test_spec, sizeof test_spec, "%s/%s", o->out, s.specs[2]);
    if (!r) r = evaluate(ckpt, cfg_path, s.st.heldout.samples ? held_spec : NULL, test_spec, o->data, s.n_eval, &s.ev, &e);
    s.sec_eval = now() - t0;
    s.sec_total = now() - t_start;
    fprintf(stderr, "mobileclip experiment: [4/4] results.json, report.md\n");
    snprintf(path, sizeof path, "%s/results.json", o->out);
    if (!r) r = write_results(&s, path, &e);
    snprintf(path, sizeof path, "%s/report.md", o->out);
    if (!r) r = write_report(&s, path, &e);
    if (r) {
        fprintf(stderr, "mobileclip experiment: %s\n", e.msg);
        return 1;
    }
    const eval_figures *v = &s.ev;
    printf("Fashion-MNIST experiment (%s, seed %llu) -> %s\n", o->quick ? "quick" : "full", (unsigned long long)o->seed,
           o->out);
    printf("real captions (train, %lld): right %.4f  wrong %.4f  none %.4f  mixed %.4f\n", s.st.train.quality.n,
           (double)s.st.train.quality.kind[0] / (double)(s.st.train.quality.n ? s.st.train.quality.n : 1),
           (double)s.st.train.quality.kind[1] / (double)(s.st.train.quality.n ? s.st.train.quality.n : 1),
           (double)s.st.train.quality.kind[2] / (double)(s.st.train.quality.n ? s.st.train.quality.n : 1),
           (double)s.st.train.quality.kind[3] / (double)(s.st.train.quality.n ? s.st.train.quality.n : 1));
    printf("%-12s %6s %8s %10s %8s %10s %8s %8s\n", "run", "lambda", "seen", "zs top-1", "top-5", "held-out", "I->T R1",
           "T->I R1");
    printf("%-12s %6s %8d %10.4f %8.4f %10.4f %8.4f %8.4f\n", "untrained", "-", 0, v->test_top1, v->test_top5,
           v->heldout_top1, v->i2t_r1, v->t2i_r1);
    for (int k = 0; k < 4; k++) printf("not run: %s (needs %s)\n", not_run[k].stage, not_run[k].needs);
    return mc_cli_finish_output("experiment");
}
