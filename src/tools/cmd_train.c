/* cmd_train.c - `mobileclip train`: reinforced (or plain CLIP) training from WebDataset shards.
 *
 * Over the training API: train/loader.h (batches on worker threads), train/step.h (forward,
 * DR loss, backward, clip, AdamW, clamp), train/optim.h (schedule, optimizer state file),
 * models/param_store.h (checkpoints in the official state-dict layout, torch.save zips).
 *
 * Output folder (--out DIR), rank 0 only:
 *   log.csv                 one row per optimizer step
 *   loss.png                the loss curves (tools/plot.h), redrawn at every save
 *   config.json             the model configuration (reference schema; pass it to --config)
 *   model-S.pt, optim-S.pt  the model and optimizer state after step S
 *   state.json              the commit point of a save: step, data position, seed and the two
 *                           file names; written last, atomically
 *   model.pt                the latest saved model (a hard link to model-S.pt), for embed/classify
 *   eval.csv                with --eval-every: one row per evaluation set and evaluation
 *                           (train/eval.h), at step 0, every N steps and at the last step
 * A run killed at any moment resumes (--resume) from the last state.json and continues
 * bit-exactly: the batches are a function of (seed, data position), the model file holds the
 * BatchNorm running statistics and counters, the optimizer file the moments and step count.
 */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "io/json.h"
#include "io/mapped_file.h"
#include "models/clip.h"
#include "models/config.h"
#include "text/tokenizer.h"
#include "tools/cli.h"
#include "tools/cmd_train_coca.h"
#include "tools/plot.h"
#include "train/run_state.h"
#include "tools/train_files.h"
#include "train/comm.h"
#include "train/eval.h"
#include "train/init.h"
#include "train/loader.h"
#include "train/step.h"

#define CMD "train"

static void usage(FILE *f) {
    fprintf(f,
            "usage: mobileclip train --data SHARDS (--arch A | --config FILE) --out DIR [options]\n"
            "Trains a MobileCLIP model with the reinforced (DR) loss, or plain CLIP with --lambda 0.\n"
            "  --data SPEC         WebDataset shards, braceexpand syntax: 'DIR/{0000..0099}.tar'\n"
            "  --data-kind K       dr (reinforced DataCompDR shards, default) | plain (image + txt; needs --lambda 0)\n"
            "  --arch A            s0 | s1 | s2 | b\n"
            "  --config FILE       model configuration (JSON, the reference's schema); an open_clip CoCa\n"
            "                      configuration (with multimodal_cfg) trains that captioner with CoCaLoss\n"
            "                      on --data-kind plain (also --coca-contrastive-loss-weight W, default 1,\n"
            "                      --coca-caption-loss-weight W, default 2; AdamW betas 0.9, 0.98, eps 1e-6)\n"
            "  --init CKPT         initial weights (default: the reference's initialisation, seeded by --seed)\n"
            "  --out DIR           output folder (log.csv, loss.png, checkpoints)\n"
            "  --resume            continue the run saved in --out (bit-exact)\n"
            "  --lambda L          distillation weight (default 1.0; loss = (1-L) CLIP + L distill)\n"
            "  --teacher-dims D    teacher embedding widths, comma separated (default 768,768)\n"
            "  --teacher-scale S   teacher logit scale, or one per teacher (S1,S2; default 100, the\n"
            "                      reference's, which its ViT-L/14 teachers learned)\n"
            "  --batch B           samples per step and process (default 32)\n"
            "  --steps N           optimizer steps (default 1000), or --samples N: steps = ceil(N / global batch)\n"
            "  --lr X              peak learning rate (default 1e-3)\n"
            "  --wd X              weight decay (default 0.2)\n"
            "  --beta1 X, --beta2 X, --eps X   AdamW (defaults 0.9, 0.95, 1e-8: the MobileCLIP recipe)\n"
            "  --warmup N          linear warmup steps before the cosine decay (default 0)\n"
            "  --grad-clip X       clip the global gradient norm (default 1.0; 0: off)\n"
            "  --drop R            image tower dropout, overriding the configuration's (MCi: FastViT drop_rate in\n"
            "                      every ConvFFN; ViT: image_cfg.dropout); text tower rates: text_cfg keys\n"
            "  --drop-path R       image tower stochastic depth, overriding the configuration's (MCi:\n"
            "                      drop_path_rate, linear over the blocks; ViT: stochastic_dropout). Both\n"
            "                      default to the configuration's (0: off), are written to DIR/config.json\n"
            "                      and must be given again with --resume; masks are seeded by --seed and the step\n"
            "  --accum K           micro-batches per step, as open_clip's --accum-freq: the loss over the\n"
            "                      features of all K (recomputed per micro-batch; default 1)\n"
            "  --threads N         model threads (default: $OMP_NUM_THREADS, else all cores)\n"
            "  --loader-threads N  decoding threads (default 2)\n"
            "  --seed S            data order, augmentation and caption choices, initialisation (default 0)\n"
            "  --save-every N      save every N steps (default 1000; always at the end)\n"
            "  --stop-after N      stop (saving) after N steps of this invocation, the schedule unchanged\n"
            "  --bn-groups G       BatchNorm statistics over G slices of the batch (what G ranks do)\n"
            "  --log-every N       progress line every N steps when stderr is not a terminal (default 10)\n"
            "  --eval-every N      evaluate the current weights at step 0, every N steps and at the end,\n"
            "                      into DIR/eval.csv (step, samples, set, images, texts, top1, i2t_r1, t2i_r1)\n"
            "  --eval SPEC         an evaluation set (repeatable, up to 8):\n"
            "                        fmnist:DIR    Fashion-MNIST test IDX files in DIR: zero-shot top-1\n"
            "                        folders:DIR   one sub-folder of images per class: zero-shot top-1\n"
            "                        shards:SPEC   WebDataset shards: R@1 both ways over the 'txt' captions,\n"
            "                                      and zero-shot top-1 over 'cls' with --eval-classes\n"
            "  --eval-classes F    class names of shards:SPEC sets: a file (one per line) or 'fmnist'\n"
            "  --eval-templates T  zero-shot prompts: imagenet (default), simple or a file, one per line\n"
            "  --eval-limit N      images per set, spread evenly (the first N of shards; default all)\n"
            "Run with mpirun -np N for data parallel training (when built with MPI).\n");
}

typedef struct opts {
    const char *data, *out, *init, *config, *kind;
    const char *eval[MC_TRAIN_EVAL_MAX_SETS], *eval_classes, *eval_templates;
    int n_eval;
    long long eval_every, eval_limit;
    int arch;
    int resume;
    double lambda, teacher_scale[MC_DRCLIP_MAX_TEACHERS];
    int n_scales; /* 1: teacher_scale[0] for every teacher */
    int teacher_dims[MC_DRCLIP_MAX_TEACHERS], n_teachers;
    int batch;
    long long steps, samples;
    double lr, wd, beta1, beta2, eps, grad_clip, drop, drop_path; /* drop*: < 0 = the configuration's */
    long long warmup, save_every, stop_after;
    int accum, threads, loader_threads, bn_groups, log_every;
    unsigned long long seed;
} opts;

static int parse_num(const char *opt, const char *v, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (*end || errno || !(x >= lo && x <= hi)) {
        fprintf(stderr, "mobileclip " CMD ": %s expects a number in [%g, %g], got '%s'\n", opt, lo, hi, v);
        return -1;
    }
    *out = x;
    return 0;
}

static int parse_int(const char *opt, const char *v, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (*end || errno || x < lo || x > hi || end == v) {
        fprintf(stderr, "mobileclip " CMD ": %s expects an integer from %lld to %lld, got '%s'\n", opt, lo, hi, v);
        return -1;
    }
    *out = x;
    return 0;
}

/* A comma-separated list of up to MC_DRCLIP_MAX_TEACHERS numbers in [lo, hi] (integers when
 * `integer`): --teacher-dims 768,768 and --teacher-scale 100 or 12.5,13 */
static int parse_list(const char *opt, const char *v, double lo, double hi, int integer, const char *like, double *out,
                      int *n) {
    *n = 0;
    const char *p = v;
    while (*p) {
        char *end;
        errno = 0;
        double x = strtod(p, &end);
        if (end == p || errno || !(x >= lo && x <= hi) || (integer && x != (double)(long)x) || (*end && *end != ',') ||
            *n == MC_DRCLIP_MAX_TEACHERS) {
            fprintf(stderr, "mobileclip " CMD ": %s expects %s, got '%s'\n", opt, like, v);
            return -1;
        }
        out[(*n)++] = x;
        p = *end ? end + 1 : end;
    }
    if (!*n) {
        fprintf(stderr, "mobileclip " CMD ": %s is empty\n", opt);
        return -1;
    }
    return 0;
}

static int parse_dims(const char *v, opts *o) {
    double d[MC_DRCLIP_MAX_TEACHERS];
    if (parse_list("--teacher-dims", v, 1, 65536, 1, "widths like 768,768", d, &o->n_teachers)) return -1;
    for (int k = 0; k < o->n_teachers; k++) o->teacher_dims[k] = (int)d[k];
    return 0;
}

/* --teacher-scale S or S1,S2,...: one logit scale for every teacher, or one per teacher */
static int parse_scales(const char *v, opts *o) {
    return parse_list("--teacher-scale", v, 1e-3, 1e6, 0, "scales in [0.001, 1e6] like 100 or 12.5,13", o->teacher_scale,
                      &o->n_scales);
}

static int parse_args(int argc, char **argv, opts *o) {
    *o = (opts){.arch = -1, .kind = "dr", .lambda = 1.0, .teacher_scale = {100}, .n_scales = 1, .teacher_dims = {768, 768},
                .n_teachers = 2, .batch = 32, .steps = -1, .samples = -1, .lr = 1e-3, .wd = 0.2, .beta1 = 0.9,
                .beta2 = 0.95, .eps = 1e-8, .grad_clip = 1.0, .save_every = 1000, .stop_after = -1, .accum = 1,
                .loader_threads = 2, .bn_groups = 1, .log_every = 10, .drop = -1, .drop_path = -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        long long n;
        double x;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        }
        if (strcmp(a, "--resume") == 0) {
            o->resume = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "mobileclip " CMD ": unexpected argument '%s'\n", a);
            return 2;
        }
        if (!(v = mc_cli_value(CMD, argc, argv, &i))) return 2;
#define INT(name, lo, hi, field) else if (strcmp(a, name) == 0) { if (parse_int(a, v, lo, hi, &n)) return 2; o->field = n; }
#define NUM(name, lo, hi, field) else if (strcmp(a, name) == 0) { if (parse_num(a, v, lo, hi, &x)) return 2; o->field = x; }
        if (strcmp(a, "--data") == 0) o->data = v;
        else if (strcmp(a, "--out") == 0) o->out = v;
        else if (strcmp(a, "--init") == 0) o->init = v;
        else if (strcmp(a, "--config") == 0) o->config = v;
        else if (strcmp(a, "--eval-classes") == 0) o->eval_classes = v;
        else if (strcmp(a, "--eval-templates") == 0) o->eval_templates = v;
        else if (strcmp(a, "--eval") == 0) {
            if (o->n_eval == MC_TRAIN_EVAL_MAX_SETS) {
                fprintf(stderr, "mobileclip " CMD ": at most %d --eval sets\n", MC_TRAIN_EVAL_MAX_SETS);
                return 2;
            }
            o->eval[o->n_eval++] = v;
        }
        else if (strcmp(a, "--data-kind") == 0) {
            if (strcmp(v, "dr") && strcmp(v, "plain")) {
                fprintf(stderr, "mobileclip " CMD ": --data-kind expects dr or plain, got '%s'\n", v);
                return 2;
            }
            o->kind = v;
        } else if (strcmp(a, "--arch") == 0) {
            o->arch = mobileclip_arch_from_name(v);
            if (o->arch < 0) {
                fprintf(stderr, "mobileclip " CMD ": unknown --arch '%s' (expected s0, s1, s2 or b)\n", v);
                return 2;
            }
        } else if (strcmp(a, "--teacher-dims") == 0) {
            if (parse_dims(v, o)) return 2;
        } else if (strcmp(a, "--teacher-scale") == 0) {
            if (parse_scales(v, o)) return 2;
        } else if (strcmp(a, "--seed") == 0) {
            if (parse_int(a, v, 0, INT64_MAX, &n)) return 2;
            o->seed = (unsigned long long)n;
        }
        NUM("--lambda", 0, 1, lambda) NUM("--lr", 0, 10, lr)
        NUM("--wd", 0, 10, wd) NUM("--beta1", 0, 0.999999, beta1) NUM("--beta2", 0, 0.999999, beta2)
        NUM("--eps", 1e-30, 1, eps) NUM("--grad-clip", 0, 1e9, grad_clip)
        NUM("--drop", 0, 0.999, drop) NUM("--drop-path", 0, 0.999, drop_path)
        INT("--batch", 2, 1 << 20, batch) INT("--steps", 1, INT64_MAX / 4, steps) INT("--samples", 1, INT64_MAX / 4, samples)
        INT("--warmup", 0, INT64_MAX / 4, warmup) INT("--save-every", 1, INT64_MAX / 4, save_every)
        INT("--stop-after", 1, INT64_MAX / 4, stop_after) INT("--accum", 1, 1024, accum) INT("--threads", 1, 1024, threads)
        INT("--loader-threads", 1, 256, loader_threads) INT("--bn-groups", 1, MC_TRAIN_MAX_GROUPS, bn_groups)
        INT("--log-every", 1, 1 << 30, log_every) INT("--eval-every", 1, INT64_MAX / 4, eval_every)
        INT("--eval-limit", 1, 100000000, eval_limit)
        else {
            fprintf(stderr, "mobileclip " CMD ": unknown option '%s' (see --help)\n", a);
            return 2;
        }
#undef INT
#undef NUM
    }
    const char *miss = !o->data ? "--data SHARDS" : !o->out ? "--out DIR" : (o->arch < 0 && !o->config) ? "--arch or --config" : NULL;
    if (miss) {
        fprintf(stderr, "mobileclip " CMD ": %s is required\n", miss);
        return 2;
    }
    if (o->n_scales > 1 && o->n_scales != o->n_teachers) {
        fprintf(stderr, "mobileclip " CMD ": --teacher-scale gives %d scales for %d teachers (--teacher-dims)\n",
                o->n_scales, o->n_teachers);
        return 2;
    }
    if (o->arch >= 0 && o->config) {
        fprintf(stderr, "mobileclip " CMD ": give either --arch or --config, not both\n");
        return 2;
    }
    if (o->steps > 0 && o->samples > 0) {
        fprintf(stderr, "mobileclip " CMD ": give either --steps or --samples, not both\n");
        return 2;
    }
    if (strcmp(o->kind, "plain") == 0 && o->lambda != 0) {
        fprintf(stderr, "mobileclip " CMD ": plain image-caption data has no teacher embeddings: use --lambda 0\n");
        return 2;
    }
    if (!!o->eval_every != !!o->n_eval) {
        fprintf(stderr, "mobileclip " CMD ": --eval-every N and --eval SPEC go together\n");
        return 2;
    }
    if (o->batch % o->bn_groups) {
        fprintf(stderr, "mobileclip " CMD ": --bn-groups %d does not divide --batch %d\n", o->bn_groups, o->batch);
        return 2;
    }
    return 0;
}

/* ---- log and plot ---- */

#define LOG_HEADER "step,samples,lr,loss,contrastive,distill,clip_real,clip_syn,distill_real,distill_syn,grad_norm,logit_scale,samples_per_s\n"

#define EVAL_HEADER "step,samples,set,images,texts,top1,i2t_r1,t2i_r1\n"

static int plot_curves(const char *path, const mc_train_curve *c, int distill, mc_err *e) {
    mc_plot_series s[3] = {{"total", c->x, c->y[0], c->n},
                           {"contrastive", c->x, c->y[1], c->n},
                           {"distillation", c->x, c->y[2], c->n}};
    return mc_plot_lines_png(path, s, distill ? 3 : 2, "training loss", "step", "loss", 0, e);
}

/* ---- checkpoints ---- */

static int save_all(const char *out, const mc_trainer *t, mc_run_state *st, const mc_train_curve *c, int distill,
                    mc_err *e) {
    char p[4096];
    int rc = mc_run_state_save(out, st, &t->opt, &t->clip->store, e);
    if (rc) return rc;
    mc_train_path(p, sizeof p, out, "loss.png");
    return c->n ? plot_curves(p, c, distill, e) : 0;
}

static int write_config(const char *out, const mc_clip_config *cfg, mc_err *e) {
    char p[4096];
    mc_train_path(p, sizeof p, out, "config.json");
    mc_atomic_file af;
    int rc = mc_atomic_open(&af, p, e);
    if (rc) return rc;
    if (mc_clip_config_write(cfg, af.f)) {
        mc_atomic_abort(&af);
        return mc_fail(e, MC_E_IO, "%s: cannot write", p);
    }
    return mc_atomic_commit(&af, e);
}

/* ---- the run ---- */

typedef struct bad_report {
    long long shown;
} bad_report;

static void on_bad(void *user, const char *msg) {
    bad_report *b = user;
    if (b->shown++ < 20) fprintf(stderr, "\rmobileclip " CMD ": skipped: %s\n", msg);
    else if (b->shown == 21) fprintf(stderr, "\rmobileclip " CMD ": (further skipped samples are only counted)\n");
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fmt_eta(char *buf, size_t n, double s) {
    if (!(s >= 0) || s > 1e8) {
        snprintf(buf, n, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

/* Evaluates the current weights on every set: one eval.csv row per set, and a line on stderr. */
static int run_eval(mc_train_eval *ev, const mc_clip *clip, long long step, long long samples, FILE *f, int tty,
                    mc_err *e) {
    mc_train_eval_result res[MC_TRAIN_EVAL_MAX_SETS];
    int rc = mc_train_eval_run(ev, clip, res, e);
    if (rc) return rc;
    fprintf(stderr, "%seval step %lld (%lld samples):", tty ? "\r\033[K" : "", step, samples);
    for (int k = 0; k < mc_train_eval_count(ev); k++) {
        const mc_train_eval_result *r = &res[k];
        fprintf(f, "%lld,%lld,%s,%d,%d", step, samples, r->name, r->images, r->texts);
        double v[3] = {r->top1, r->i2t_r1, r->t2i_r1};
        for (int j = 0; j < 3; j++) isnan(v[j]) ? fputs(",", f) : fprintf(f, ",%.6f", v[j]);
        fputc('\n', f);
        fprintf(stderr, "  %s", r->name);
        if (!isnan(r->top1)) fprintf(stderr, " top-1 %.2f%%", 100 * r->top1);
        if (!isnan(r->i2t_r1)) fprintf(stderr, " R@1 i2t %.2f%% t2i %.2f%%", 100 * r->i2t_r1, 100 * r->t2i_r1);
    }
    fputc('\n', stderr);
    if (fflush(f)) return mc_fail(e, MC_E_IO, "eval.csv: cannot write");
    return 0;
}

int mc_cmd_train(int argc, char **argv) {
    if (mc_cmd_train_is_coca(argc, argv)) return mc_cmd_train_coca(argc, argv); /* a captioner: CoCaLoss */
    opts o;
    mc_comm comm = {.rank = 0, .world = 1};
    mc_err e = {0};
#ifdef MC_HAVE_MPI
    if (mc_comm_mpi_init(&comm, &argc, &argv, &e)) {
        fprintf(stderr, "mobileclip " CMD ": %s\n", e.msg);
        return 1;
    }
#endif
    int r = parse_args(argc, argv, &o);
    if (r) {
        if (r == 2) fprintf(stderr, "(mobileclip train --help for the options)\n");
#ifdef MC_HAVE_MPI
        mc_comm_mpi_finish(&comm);
#endif
        return r == 1 ? 0 : 2;
    }
    int rank0 = comm.rank == 0, status = 1, distill = o.lambda > 0, reinforced = strcmp(o.kind, "dr") == 0;
    if (o.threads > 0) omp_set_num_threads(o.threads);
    mc_clip_config cfg;
    mc_clip clip;
    int clip_ok = 0;
    mc_tokenizer *tok = NULL;
    mc_loader *loaders[MC_TRAIN_MAX_GROUPS] = {0};
    mc_batch sub[MC_TRAIN_MAX_GROUPS] = {0};
    mc_trainer tr;
    int tr_ok = 0;
    mc_batch *batches = NULL;
    mc_train_batch *mb = NULL;
    mc_train_curve cv = {0};
    FILE *log = NULL, *evlog = NULL;
    mc_train_eval *ev = NULL;
    bad_report bad = {0};
    static mc_run_state st;
    char path[4096];
    int rc = o.config ? mc_clip_config_load(o.config, &cfg, &e) : mc_clip_config_builtin(o.arch, &cfg, &e);
    if (rc) goto done;
    /* the command line wins over the configuration (and config.json records the result) */
    if (o.drop >= 0) cfg.image_drop.drop = (float)o.drop;
    if (o.drop_path >= 0) cfg.image_drop.drop_path = (float)o.drop_path;
    if (cfg.image == MC_IMAGE_VIT && cfg.image_drop.drop > 0 && cfg.image_drop.drop_path > 0) {
        rc = mc_fail(&e, MC_E_ARG, "ViT image tower: dropout (--drop) and stochastic depth (--drop-path) are mutually "
                     "exclusive in the reference's TransformerEncoder");
        goto done;
    }
    if (rank0 && mkdir(o.out, 0777) && errno != EEXIST) {
        rc = mc_fail(&e, MC_E_IO, "%s: cannot create the folder: %s", o.out, strerror(errno));
        goto done;
    }
    /* weights: the saved run, --init, or a fresh initialisation */
    mc_tensor_map w;
    mc_tensor_map_init(&w);
    const char *wpath = o.init;
    if (o.resume) {
        mc_train_path(path, sizeof path, o.out, "state.json");
        if ((rc = mc_run_state_read(path, &st, &e))) goto done;
        if (st.batch != o.batch || st.world != comm.world || st.seed != o.seed || st.groups != o.bn_groups) {
            rc = mc_fail(&e, MC_E_ARG, "%s: the run was saved with --batch %d, --seed %llu, --bn-groups %d on %d processes; "
                         "resume with the same", path, st.batch, st.seed, st.groups, st.world);
            goto done;
        }
        static char mpath[4096];
        mc_train_path(mpath, sizeof mpath, o.out, st.model);
        wpath = mpath;
    }
    if (wpath && (rc = mc_checkpoint_load(wpath, &w, &e))) goto done;
    rc = mc_clip_init_config(&clip, &cfg, wpath ? &w : NULL, 1, 1, 0, &e);
    mc_tensor_map_free(&w);
    if (rc) goto done;
    clip_ok = 1;
    if (!wpath) mc_train_init_params(&clip.store, o.seed); /* the reference's rules (train/init.h) */

    mc_train_config tc = {.adamw = {.beta1 = (float)o.beta1, .beta2 = (float)o.beta2, .eps = (float)o.eps,
                                    .weight_decay = (float)o.wd},
                          .grad_clip = (float)o.grad_clip, .accum = o.accum, .bn_groups = o.bn_groups,
                          .seed = o.seed};
    if (reinforced) {
        tc.loss = mc_drclip_config_default((float)o.lambda);
        tc.loss.n_teachers = o.n_teachers;
        for (int k = 0; k < o.n_teachers; k++) {
            tc.loss.teacher_dims[k] = o.teacher_dims[k];
            tc.loss.teacher_scale[k] = (float)o.teacher_scale[o.n_scales == 1 ? 0 : k];
        }
    } else {
        tc.loss = (mc_drclip_config){.weights = {1, 0}, .n_teachers = 0};
    }
    if ((rc = mc_trainer_init(&tr, &clip, &tc, o.batch, reinforced ? 2 : 1, &comm, &e))) goto done;
    tr_ok = 1;
    if (o.resume) {
        if ((rc = mc_run_state_load_optim(o.out, &st, &tr.opt, &clip.store, &e))) goto done;
    } else {
        memset(&st, 0, sizeof st);
        st.seed = o.seed;
        st.batch = o.batch;
        st.world = comm.world;
        st.groups = o.bn_groups;
        st.n_pos = comm.world * o.bn_groups;
        if (st.n_pos > MC_RUN_MAX_STREAMS) {
            rc = mc_fail(&e, MC_E_ARG, "more than %d data streams (processes x --bn-groups)", MC_RUN_MAX_STREAMS);
            goto done;
        }
    }
    if (!(tok = mc_tokenizer_load_builtin(&e))) {
        rc = -1;
        goto done;
    }
    int Dt = 0;
    for (int k = 0; k < o.n_teachers; k++) Dt += o.teacher_dims[k];
    /* one data stream per BatchNorm group: stream rank*G + g of world*G, so one process with
     * --bn-groups G sees exactly the batches of G ranks */
    int G = o.bn_groups, gb = o.batch / G;
    for (int g = 0; g < G; g++) {
        int sid = comm.rank * G + g;
        mc_loader_config lc = {.spec = o.data, .reinforced = reinforced, .teacher_dim = Dt, .batch = gb,
                               .image_size = cfg.image_size, .context = cfg.text.context_length, .tokenizer = tok,
                               .threads = o.loader_threads, .seed = o.seed, .rank = sid, .world = comm.world * G,
                               .start = st.pos[sid], .on_bad = on_bad, .user = &bad};
        if ((rc = mc_loader_open(&loaders[g], &lc, &e))) goto done;
        if ((rc = mc_batch_alloc(&sub[g], loaders[g], &e))) goto done;
    }
    batches = calloc((size_t)o.accum, sizeof *batches);
    mb = calloc((size_t)o.accum, sizeof *mb);
    if (!batches || !mb) {
        rc = mc_fail(&e, MC_E_NOMEM, "out of memory");
        goto done;
    }
    for (int k = 0; k < o.accum; k++) {
        if ((rc = mc_batch_alloc_n(&batches[k], loaders[0], o.batch, &e))) goto done;
        mb[k] = (mc_train_batch){batches[k].images, batches[k].tokens, batches[k].teacher_image, batches[k].teacher_text};
    }
    long long global_batch = (long long)o.batch * comm.world * o.accum;
    long long steps = o.steps > 0 ? o.steps : o.samples > 0 ? (o.samples + global_batch - 1) / global_batch : 1000;
    if (rank0) {
        mc_train_path(path, sizeof path, o.out, "log.csv");
        if (o.resume && (rc = mc_train_csv_truncate(path, LOG_HEADER, st.step, mc_train_curve_row, &cv, &e))) goto done;
        if ((rc = write_config(o.out, &cfg, &e))) goto done;
        int fresh = access(path, F_OK) != 0;
        if (!(log = fopen(path, "a"))) {
            rc = mc_fail(&e, MC_E_IO, "%s: %s", path, strerror(errno));
            goto done;
        }
        if (fresh) fputs(LOG_HEADER, log);
        if (o.n_eval) {
            mc_train_eval_options eo = {.limit = (int)o.eval_limit, .templates = o.eval_templates,
                                        .classes = o.eval_classes};
            if ((rc = mc_train_eval_open(&ev, o.eval, o.n_eval, &eo, &cfg, &e))) goto done;
            mc_train_path(path, sizeof path, o.out, "eval.csv");
            /* rows past the saved step were written by a killed run: they are evaluated again */
            if (o.resume && (rc = mc_train_csv_truncate(path, EVAL_HEADER, st.step, NULL, NULL, &e))) goto done;
            int efresh = !o.resume || access(path, F_OK) != 0;
            if (!(evlog = fopen(path, efresh ? "w" : "a"))) {
                rc = mc_fail(&e, MC_E_IO, "%s: %s", path, strerror(errno));
                goto done;
            }
            if (efresh) fputs(EVAL_HEADER, evlog);
        }
        fprintf(stderr, "mobileclip " CMD ": %s, %d processes x batch %d x %d micro-batches, %lld steps from step %lld, "
                "activations %.0f MiB\n", cfg.name, comm.world, o.batch, o.accum, steps, st.step,
                (double)(tr.tape_floats + tr.work_floats) * 4.0 / 1048576.0);
    }
    int tty = isatty(2);
    if (ev && !o.resume && (rc = run_eval(ev, &clip, 0, 0, evlog, tty, &e))) goto done;
    double t0 = now(), t_last = t0, t_eval = 0; /* evaluation time is not training time */
    long long start = st.step, done_here = 0, run_bad0 = st.bad;
    while (st.step < steps) {
        for (int k = 0; k < o.accum; k++)
            for (int g = 0; g < G; g++) {
                if ((rc = mc_loader_next(loaders[g], &sub[g], &e))) goto done;
                mc_batch_copy_group(&batches[k], &sub[g], g);
            }
        float lr = (float)mc_cosine_lr(o.lr, o.warmup, steps, st.step);
        mc_step_stats ss;
        if ((rc = mc_trainer_step(&tr, mb, lr, &ss, &e))) goto done;
        st.step++;
        done_here++;
        /* every stream's position (all ranks' in a data-parallel run: rank 0 saves them) */
        double pv[2 * MC_RUN_MAX_STREAMS];
        memset(pv, 0, sizeof(double) * 2 * st.n_pos);
        long long bad_here = 0;
        for (int g = 0; g < G; g++) {
            int sid = comm.rank * G + g;
            pv[2 * sid] = (double)sub[g].next.epoch;
            pv[2 * sid + 1] = (double)sub[g].next.index;
            bad_here += mc_loader_get_stats(loaders[g]).bad;
        }
        double badv = (double)bad_here;
        if (comm.world > 1 && (comm.allreduce_double(comm.user, pv, 2 * (size_t)st.n_pos) ||
                               comm.allreduce_double(comm.user, &badv, 1))) {
            rc = mc_fail(&e, MC_E_IO, "data parallel: all-reduce of the data positions failed");
            goto done;
        }
        for (int i = 0; i < st.n_pos; i++) st.pos[i] = (mc_loader_pos){(int64_t)pv[2 * i], (int64_t)pv[2 * i + 1]};
        st.samples += global_batch;
        st.bad = run_bad0 + (long long)badv;
        double t = now(), rate = (double)done_here * global_batch / (t - t0 - t_eval);
        if (rank0) {
            const mc_drclip_losses *L = &ss.loss;
            fprintf(log, "%lld,%lld,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.4g\n", st.step, st.samples, lr,
                    L->total, L->contrastive, L->distill, L->clip[0], L->clip[1], L->distill_ce[0], L->distill_ce[1],
                    ss.grad_norm, ss.scale, rate);
            fflush(log);
            if (mc_train_curve_push(&cv, (double)st.step, L->total, L->contrastive, L->distill)) {
                rc = mc_fail(&e, MC_E_NOMEM, "out of memory");
                goto done;
            }
            if ((tty && t - t_last > 0.2) || (!tty && st.step % o.log_every == 0) || st.step == steps) {
                char eta[32];
                fmt_eta(eta, sizeof eta, (double)(steps - st.step) * global_batch / rate);
                fprintf(stderr, "%sstep %lld/%lld  loss %.4f (contrastive %.4f, distill %.4f)  lr %.3g  %.1f samples/s  ETA %s%s",
                        tty ? "\r\033[K" : "", st.step, steps, L->total, L->contrastive, L->distill, lr, rate, eta,
                        tty ? "" : "\n");
                t_last = t;
            }
        }
        if (ev && (st.step % o.eval_every == 0 || st.step == steps)) {
            double te = now();
            if ((rc = run_eval(ev, &clip, st.step, st.samples, evlog, tty, &e))) goto done;
            t_eval += now() - te;
        }
        int last = st.step == steps || (o.stop_after > 0 && done_here >= o.stop_after);
        if (last || st.step % o.save_every == 0) {
            if (rank0 && (rc = save_all(o.out, &tr, &st, &cv, distill, &e))) goto done;
#ifdef MC_HAVE_MPI
            mc_comm_mpi_barrier(&comm);
#endif
        }
        if (last) break;
    }
    if (rank0) {
        fprintf(stderr, "%smobileclip " CMD ": %lld steps done (%lld this run: %lld samples used, %lld skipped); model %s/model.pt\n",
                tty ? "\n" : "", st.step, st.step - start, (st.step - start) * global_batch, st.bad - run_bad0, o.out);
    }
    status = bad.shown ? MC_EXIT_SKIPPED : 0;
done:
    if (rc) fprintf(stderr, "%smobileclip " CMD ": %s\n", isatty(2) ? "\n" : "", e.msg[0] ? e.msg : "failed");
    int log_failed = log && fclose(log);
    log_failed |= evlog && fclose(evlog); /* both closed, either failing */
    if (log_failed && !rc) {
        fprintf(stderr, "mobileclip " CMD ": cannot write the log\n");
        status = 1;
    }
    mc_train_eval_close(ev);
    for (int k = 0; batches && k < o.accum; k++) mc_batch_free(&batches[k]);
    free(batches);
    free(mb);
    for (int g = 0; g < MC_TRAIN_MAX_GROUPS; g++) {
        mc_loader_close(loaders[g]);
        mc_batch_free(&sub[g]);
    }
    if (tr_ok) mc_trainer_free(&tr);
    if (clip_ok) mc_clip_free(&clip);
    mc_tokenizer_free(tok);
    mc_train_curve_free(&cv);
    if (rank0) mc_plot_release();
#ifdef MC_HAVE_MPI
    mc_comm_mpi_finish(&comm);
#endif
    (void)start;
    return rc ? 1 : status;
}
