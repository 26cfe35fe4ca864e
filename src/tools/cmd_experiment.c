/* mobileclip experiment: the Fashion-MNIST learning-efficiency experiment (docs/EXPERIMENT.md).
 *   fmnist-shards    IDX files -> WebDataset image-caption shards with noisy alt-text captions
 *   caption-quality  how often captions name the right item (class-synonym matching)
 *   configs          the built-in student/teacher configurations: list, write, time
 *   fmnist           the experiment driver (a stage that cannot run is reported as such) */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "experiment/configs.h"
#include "experiment/fmnist.h"
#include "experiment/random_init.h"
#include "io/wds.h"
#include "models/clip.h"
#include "tools/cli.h"
#include "tools/experiment_fmnist.h"

#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

static const char *help =
    "usage: mobileclip experiment fmnist-shards --out DIR [--data DIR] [--seed N] [--limit N]\n"
    "           [--per-shard N] [--heldout N] [--json]\n"
    "       mobileclip experiment caption-quality --shards SPEC [--member EXT] [--json]\n"
    "       mobileclip experiment configs [--write DIR] [--time] [--n N] [--threads N]\n"
    "       mobileclip experiment fmnist [--out DIR] [--quick] [--reuse] [--data DIR] [--seed N]\n"
    "           [--limit N] [--student NAME] [--threads N]\n"
    "\n"
    "fmnist-shards: Fashion-MNIST (Debian dataset-fashion-mnist, default " DEFAULT_DATA ")\n"
    "  as WebDataset shards DIR/{train,heldout,test}-NNNNN.tar: KEY.png (the 28x28 grey image),\n"
    "  KEY.txt (a noisy alt-text caption: seeded, see docs/EXPERIMENT.md), KEY.cls (the class,\n"
    "  for evaluation only). heldout: the last N training images (default 5000), kept apart\n"
    "  for tuning. --limit N: the first N samples of each split. --per-shard N (default 5000).\n"
    "  DIR/manifest.json records the options and figures (for experiment fmnist --reuse).\n"
    "caption-quality: fractions of captions naming the right item only / a wrong one / none /\n"
    "  both, against each sample's .cls; --member EXT holds them (default txt: one per line;\n"
    "  a *.json member such as DataCompDR's syn.json: {\"syn_text\": [...]}, a list or a string).\n"
    "configs: the built-in configurations (data/configs): name, sizes, parameter counts;\n"
    "  --write DIR writes them as JSON; --time measures the forward cost of a random model\n"
    "  (ms per image and per text, batches of --n, default 32).\n"
    "fmnist: the experiment (default --out fmnist_experiment): converts the data, trains two\n"
    "  teachers (train), reinforces the train shards (reinforce), trains four students (plain\n"
    "  CLIP, real + synthetic lambda 0, DR lambda 0.7 and 1.0) evaluated at log-spaced points a\n"
    "  factor sqrt(2) apart (zero-shot top-1 on the test set and the held-out slice, R@1 both ways\n"
    "  on test captions); the synthetic captions come from a CoCa captioner it trains (train) and\n"
    "  samples (caption, top-p 0.9); writes results.json, report.md and accuracy.png and prints\n"
    "  the table. A stage that cannot run is reported as not run (docs/EXPERIMENT.md).\n"
    "  --quick: 2000 samples per split and 500 evaluation images (--limit overrides).\n"
    "  --reuse: keep DIR/shards, DIR/teachers and DIR/captioner when made with the same options.\n"
    "  --threads N: results do not depend on it.\n";

static int parse_num(const char *opt, const char *v, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long k = strtoll(v, &end, 10);
    if (!*v || *end || errno || k < lo || k > hi) {
        fprintf(stderr, "mobileclip experiment: %s expects a number from %lld to %lld, got '%s'\n", opt, lo, hi, v);
        return -1;
    }
    *out = k;
    return 0;
}

typedef struct opts {
    const char *out, *data, *shards, *member, *write, *student;
    long long seed, limit, per_shard, heldout, n, threads;
    int json, time, quick, reuse;
} opts;

/* The position of a in names[0..n), or -1. */
static int lookup(const char *a, const char *const *names, int n) {
    for (int k = 0; k < n; k++)
        if (!strcmp(a, names[k])) return k;
    return -1;
}

/* 0 ok, 1 help printed, 2 usage error */
static int parse(int argc, char **argv, opts *o) {
    static const char *const valued[] = {"--out", "--data", "--shards", "--member", "--write", "--student",
                                         "--seed", "--limit", "--per-shard", "--heldout", "--n", "--threads"};
    static const char *const flags[] = {"--json", "--time", "--quick", "--reuse"};
    static const long long lo[] = {0, 1, 1, 0, 1, 1}, hi[] = {(1LL << 53), 1000000, 1000000, 59999, 4096, 1024};
    int *flag_slot[] = {&o->json, &o->time, &o->quick, &o->reuse};
    const char **str_slot[] = {&o->out, &o->data, &o->shards, &o->member, &o->write, &o->student};
    long long *num_slot[] = {&o->seed, &o->limit, &o->per_shard, &o->heldout, &o->n, &o->threads};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v;
        int f = lookup(a, flags, 4), which = lookup(a, valued, 12);
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return 1;
        }
        if (f >= 0) {
            *flag_slot[f] = 1;
            continue;
        }
        if (which < 0) {
            fprintf(stderr, "mobileclip experiment: unknown option '%s' (see --help)\n", a);
            return 2;
        }
        if (!(v = mc_cli_value("experiment", argc, argv, &i))) return 2;
        if (which < 6) *str_slot[which] = v;
        else if (parse_num(a, v, lo[which - 6], hi[which - 6], num_slot[which - 6])) return 2;
    }
    return 0;
}

static void print_quality_json(FILE *f, const mc_caption_quality *q) {
    fprintf(f, "{\"captions\": %lld", q->n);
    for (int k = 0; k < 4; k++)
        fprintf(f, ", \"%s\": %lld, \"%s_fraction\": %.6f", mc_caption_kind_names[k], q->kind[k],
                mc_caption_kind_names[k], q->n ? (double)q->kind[k] / (double)q->n : 0.0);
    fprintf(f, "}");
}

static void print_quality_line(FILE *f, const char *what, const mc_caption_quality *q) {
    fprintf(f, "%-8s %7lld captions: right %.4f  wrong %.4f  none %.4f  mixed %.4f\n", what, q->n,
            q->n ? (double)q->kind[0] / (double)q->n : 0, q->n ? (double)q->kind[1] / (double)q->n : 0,
            q->n ? (double)q->kind[2] / (double)q->n : 0, q->n ? (double)q->kind[3] / (double)q->n : 0);
}

static int cmd_shards(const opts *o) {
    if (!o->out) {
        fprintf(stderr, "mobileclip experiment fmnist-shards: --out DIR is required\n");
        return 2;
    }
    mc_fmnist_shards_opts so = {.data_dir = o->data ? o->data : DEFAULT_DATA, .out_dir = o->out,
                                .seed = (uint64_t)o->seed, .per_shard = (int)o->per_shard,
                                .heldout = o->heldout >= 0 ? (int)o->heldout : 5000, .limit = (int)o->limit};
    mc_fmnist_shards_stats st;
    mc_err e = {0};
    if (mc_fmnist_write_shards(&so, &st, &e) || mc_fmnist_write_manifest(&so, &st, &e)) {
        fprintf(stderr, "mobileclip experiment: %s\n", e.msg);
        return 1;
    }
    const char *names[3] = {"train", "heldout", "test"};
    const mc_fmnist_split_stats *s[3] = {&st.train, &st.heldout, &st.test};
    if (o->json) {
        printf("{\"seed\": %llu", (unsigned long long)so.seed);
        for (int k = 0; k < 3; k++) {
            printf(", \"%s\": {\"samples\": %d, \"shards\": %d, \"bytes\": %lld, \"quality\": ", names[k], s[k]->samples,
                   s[k]->shards, s[k]->bytes);
            print_quality_json(stdout, &s[k]->quality);
            printf("}");
        }
        printf("}\n");
    } else
        for (int k = 0; k < 3; k++) {
            printf("%-8s %6d samples in %3d shards, %.1f MB (%.0f bytes per sample)\n", names[k], s[k]->samples,
                   s[k]->shards, (double)s[k]->bytes / 1e6, s[k]->samples ? (double)s[k]->bytes / s[k]->samples : 0);
            print_quality_line(stdout, names[k], &s[k]->quality);
        }
    return mc_cli_finish_output("experiment");
}

static int cmd_quality(const opts *o) {
    if (!o->shards) {
        fprintf(stderr, "mobileclip experiment caption-quality: --shards SPEC is required\n");
        return 2;
    }
    mc_caption_quality q;
    mc_err e = {0};
    if (mc_caption_quality_shards(o->shards, o->member ? o->member : "txt", &q, &e)) {
        fprintf(stderr, "mobileclip experiment: %s\n", e.msg);
        return 1;
    }
    if (o->json) {
        print_quality_json(stdout, &q);
        printf("\n");
    } else print_quality_line(stdout, o->member ? o->member : "txt", &q);
    return mc_cli_finish_output("experiment");
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Forward cost of cfg with random weights: ms per image and per text over batches of B. */
static int time_config(const mc_clip_config *cfg, int B, double *ms_image, double *ms_text, mc_err *e) {
    mc_clip c;
    int r = mc_clip_init_config(&c, cfg, NULL, 1, 1, 1, e);
    if (r) return r;
    mc_experiment_random_init(&c.store, 1);
    const int R = cfg->image_size, T = cfg->text.context_length;
    float *img = malloc(sizeof(float) * (size_t)B * 3 * R * R), *out = malloc(sizeof(float) * (size_t)B * cfg->embed_dim);
    int32_t *tok = calloc((size_t)B * T, sizeof *tok);
    if (!img || !out || !tok) r = mc_fail(e, MC_E_NOMEM, "out of memory");
    if (!r) r = mc_clip_plan_build(&c, e);
    for (size_t i = 0; !r && i < (size_t)B * 3 * R * R; i++) img[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;
    for (int b = 0; !r && b < B; b++) { /* SOT, 10 tokens, EOT */
        tok[(size_t)b * T] = 49406;
        for (int k = 1; k < 11 && k < T - 1; k++) tok[(size_t)b * T + k] = 400 + (b * 131 + k * 17) % 40000;
        tok[(size_t)b * T + (T > 12 ? 11 : T - 1)] = 49407;
    }
    for (int pass = 0; pass < 2 && !r; pass++) { /* first pass warms up */
        double t0 = now();
        r = mc_clip_encode_image(&c, img, B, out, NULL, e);
        double t1 = now();
        if (!r) r = mc_clip_encode_text(&c, tok, B, out, NULL, e);
        double t2 = now();
        *ms_image = 1e3 * (t1 - t0) / B, *ms_text = 1e3 * (t2 - t1) / B;
    }
    free(img), free(out), free(tok);
    mc_clip_free(&c);
    return r;
}

static long long count_params(const mc_clip_config *cfg, const char *prefix, mc_err *e) {
    mc_clip c;
    if (mc_clip_init_config(&c, cfg, NULL, 1, 1, 0, e)) return -1;
    long long n = 0;
    for (int i = 0; i < c.store.count; i++)
        if (!(c.store.params[i].flags & MC_PARAM_BUFFER) && !strncmp(c.store.params[i].name, prefix, strlen(prefix)))
            n += (long long)c.store.params[i].numel;
    mc_clip_free(&c);
    return n;
}

static int cmd_configs(const opts *o) {
    mc_err e = {0};
    if (o->write && mkdir(o->write, 0777) && errno != EEXIST) {
        fprintf(stderr, "mobileclip experiment: %s: cannot create directory: %s\n", o->write, strerror(errno));
        return 1;
    }
    if (o->threads) mc_experiment_set_threads((int)o->threads);
    printf("%-22s %5s %5s %4s %10s %10s%s\n", "configuration", "image", "embed", "ctx", "image par", "text par",
           o->time ? "  ms/image  ms/text" : "");
    for (int i = 0; i < mc_builtin_configs_count; i++) {
        const mc_builtin_config *b = &mc_builtin_configs[i];
        mc_clip_config cfg;
        if (mc_builtin_config_is_captioner(b)) { /* a CoCa configuration: written, not listed as a CLIP model */
            char path[4096];
            snprintf(path, sizeof path, "%s/%s.json", o->write ? o->write : "", b->name);
            if (o->write && mc_builtin_config_save(b, path, &e)) goto fail;
            continue;
        }
        if (mc_builtin_config_parse(b, &cfg, &e)) goto fail;
        long long pi = count_params(&cfg, "image_encoder.", &e), pt = count_params(&cfg, "text_encoder.", &e);
        if (pi < 0 || pt < 0) goto fail;
        printf("%-22s %5d %5d %4d %10lld %10lld", b->name, cfg.image_size, cfg.embed_dim, cfg.text.context_length, pi, pt);
        if (o->time) {
            double mi, mt;
            if (time_config(&cfg, o->n ? (int)o->n : 32, &mi, &mt, &e)) goto fail;
            printf("  %8.3f %8.3f", mi, mt);
        }
        printf("\n");
        if (o->write) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s.json", o->write, b->name);
            if (mc_builtin_config_save(b, path, &e)) goto fail;
        }
    }
    return mc_cli_finish_output("experiment");
fail:
    fprintf(stderr, "mobileclip experiment: %s\n", e.msg);
    return 1;
}

int mc_cmd_experiment(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(help, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    opts o = {.heldout = -1};
    int p = parse(argc, argv, &o);
    if (p) return p == 1 ? 0 : 2;
    const char *sub = argv[1];
    if (!strcmp(sub, "fmnist-shards")) return cmd_shards(&o);
    if (!strcmp(sub, "caption-quality")) return cmd_quality(&o);
    if (!strcmp(sub, "configs")) return cmd_configs(&o);
    if (!strcmp(sub, "fmnist")) {
        mc_fmnist_run_opts ro = {.out = o.out ? o.out : "fmnist_experiment", .data = o.data ? o.data : DEFAULT_DATA,
                                 .seed = (uint64_t)o.seed, .quick = o.quick, .limit = (int)o.limit,
                                 .student = o.student ? o.student : "fmnist_student_mct", .threads = (int)o.threads,
                                 .reuse = o.reuse};
        return mc_experiment_fmnist_run(&ro);
    }
    fprintf(stderr, "mobileclip experiment: unknown experiment '%s' (see --help)\n", sub);
    return 2;
}
