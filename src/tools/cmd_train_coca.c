/* cmd_train_coca.c - `mobileclip train --config CAPTIONER.json` for an open_clip CoCa
 * configuration (one with "multimodal_cfg"): trains the captioner with CoCaLoss on plain
 * image-caption shards (train/coca_step.h), with `mobileclip train`'s optimiser, cosine
 * schedule, progress line, log.csv / loss.png and atomic checkpoints:
 *   DIR/model-S.pt, optim-S.pt   open_clip state-dict names (loads strictly into open_clip's CoCa)
 *   DIR/state.json               the commit point (step, data position, seed, file names)
 *   DIR/model.pt                 the latest model (hard link), for `mobileclip caption`
 *   DIR/config.json              the CoCa configuration as given
 * --resume continues bit-exactly (batches are a function of seed and data position).
 * Images: the loader's [0, 1] RandomResizedCrop, then the configuration's Normalize (open_clip's
 * training transform; `caption` applies the same mean/std at inference). One process. */
#include "tools/cmd_train_coca.h"

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
#include "models/openclip_config.h"
#include "text/tokenizer.h"
#include "tools/cli.h"
#include "tools/plot.h"
#include "train/run_state.h"
#include "tools/train_files.h"
#include "train/coca_step.h"
#include "train/loader.h"

#define CMD "train"

int mc_cmd_train_is_coca(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--config") == 0) {
            char *text;
            size_t len;
            if (mc_read_file(argv[i + 1], 1 << 20, &text, &len, NULL)) return 0;
            mc_err e = {0};
            mc_json *j = mc_json_parse(text, len, &e);
            int coca = j && j->type == MC_JSON_OBJECT && mc_json_get(j, "multimodal_cfg") != NULL;
            mc_json_free(j);
            free(text);
            return coca;
        }
    return 0;
}

typedef struct copts {
    const char *data, *out, *init, *config;
    int resume, batch, threads, loader_threads, log_every;
    long long steps, samples, warmup, save_every, stop_after;
    double lr, wd, beta1, beta2, eps, grad_clip, clip_w, cap_w;
    unsigned long long seed;
} copts;

static int bad_num(const char *opt, const char *v) {
    fprintf(stderr, "mobileclip " CMD ": %s: bad value '%s'\n", opt, v);
    return 2;
}

static int num(const char *opt, const char *v, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (*end || end == v || errno || !(x >= lo && x <= hi)) {
        fprintf(stderr, "mobileclip " CMD ": %s expects a number in [%g, %g], got '%s'\n", opt, lo, hi, v);
        return -1;
    }
    *out = x;
    return 0;
}

static int parse(int argc, char **argv, copts *o) {
    *o = (copts){.batch = 32, .threads = 0, .loader_threads = 2, .log_every = 10, .steps = -1, .samples = -1,
                 .save_every = 1000, .stop_after = -1, .lr = 1e-3, .wd = 0.2, .beta1 = 0.9, .beta2 = 0.98,
                 .eps = 1e-6, .grad_clip = 1.0, .clip_w = 1.0, .cap_w = 2.0};
    const char *kind = "dr";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        double x;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: mobileclip train --config CAPTIONER.json --data-kind plain --data SHARDS --out DIR [options]\n"
                   "Trains an open_clip CoCa captioner with CoCaLoss. Options as for CLIP training (--init, --resume,\n"
                   "--batch, --steps/--samples, --lr, --wd, --beta1, --beta2 (0.98), --eps (1e-6), --warmup, --grad-clip,\n"
                   "--threads, --loader-threads, --seed, --save-every, --stop-after, --log-every) plus\n"
                   "--coca-contrastive-loss-weight W (1) and --coca-caption-loss-weight W (2).\n");
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
        if (!strcmp(a, "--lambda") || !strcmp(a, "--teacher-dims") || !strcmp(a, "--teacher-scale") ||
            !strcmp(a, "--bn-groups") || !strcmp(a, "--accum") || !strcmp(a, "--arch")) {
            fprintf(stderr, "mobileclip " CMD ": %s does not apply to a CoCa captioner (trained with CoCaLoss on "
                    "plain image-caption shards: no teacher, no distillation)\n", a);
            return 2;
        }
        if (!(v = mc_cli_value(CMD, argc, argv, &i))) return 2;
        struct { const char *name; double lo, hi, *dst; } nums[] = {
            {"--lr", 0, 10, &o->lr}, {"--wd", 0, 10, &o->wd}, {"--beta1", 0, 0.999999, &o->beta1},
            {"--beta2", 0, 0.999999, &o->beta2}, {"--eps", 1e-30, 1, &o->eps}, {"--grad-clip", 0, 1e9, &o->grad_clip},
            {"--coca-contrastive-loss-weight", 0, 1e6, &o->clip_w}, {"--coca-caption-loss-weight", 0, 1e6, &o->cap_w}};
        struct { const char *name; double lo, hi; long long *dst; } ints[] = {
            {"--steps", 1, 1e15, &o->steps}, {"--samples", 1, 1e15, &o->samples}, {"--warmup", 0, 1e15, &o->warmup},
            {"--save-every", 1, 1e15, &o->save_every}, {"--stop-after", 1, 1e15, &o->stop_after}};
        struct { const char *name; double lo, hi; int *dst; } small[] = {
            {"--batch", 2, 1 << 20, &o->batch}, {"--threads", 1, 1024, &o->threads},
            {"--loader-threads", 1, 256, &o->loader_threads}, {"--log-every", 1, 1 << 30, &o->log_every}};
        int done = 0;
        for (size_t k = 0; !done && k < sizeof nums / sizeof nums[0]; k++)
            if (!strcmp(a, nums[k].name)) {
                if (num(a, v, nums[k].lo, nums[k].hi, nums[k].dst)) return 2;
                done = 1;
            }
        for (size_t k = 0; !done && k < sizeof ints / sizeof ints[0]; k++)
            if (!strcmp(a, ints[k].name)) {
                if (num(a, v, ints[k].lo, ints[k].hi, &x) || x != floor(x)) return bad_num(a, v);
                *ints[k].dst = (long long)x, done = 1;
            }
        for (size_t k = 0; !done && k < sizeof small / sizeof small[0]; k++)
            if (!strcmp(a, small[k].name)) {
                if (num(a, v, small[k].lo, small[k].hi, &x) || x != floor(x)) return bad_num(a, v);
                *small[k].dst = (int)x, done = 1;
            }
        if (done) continue;
        if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--init")) o->init = v;
        else if (!strcmp(a, "--config")) o->config = v;
        else if (!strcmp(a, "--data-kind")) kind = v;
        else if (!strcmp(a, "--seed")) {
            if (num(a, v, 0, 9e15, &x) || x != floor(x)) return bad_num(a, v);
            o->seed = (unsigned long long)x;
        } else {
            fprintf(stderr, "mobileclip " CMD ": unknown option '%s' for a CoCa captioner (see --help)\n", a);
            return 2;
        }
    }
    if (strcmp(kind, "plain")) {
        fprintf(stderr, "mobileclip " CMD ": a CoCa captioner trains on plain image-caption shards: use --data-kind "
                "plain\n");
        return 2;
    }
    const char *miss = !o->data ? "--data SHARDS" : !o->out ? "--out DIR" : NULL;
    if (miss) {
        fprintf(stderr, "mobileclip " CMD ": %s is required\n", miss);
        return 2;
    }
    if (o->steps > 0 && o->samples > 0) {
        fprintf(stderr, "mobileclip " CMD ": give either --steps or --samples, not both\n");
        return 2;
    }
    return 0;
}

/* ---- log (log.csv) and curves ---- */

#define COCA_LOG_HEADER "step,samples,lr,loss,contrastive,caption,grad_norm,logit_scale,samples_per_s\n"

static int save(const char *out, const mc_coca_trainer *t, mc_run_state *st, const mc_train_curve *c, mc_err *e) {
    char p[4096];
    st->kind = "coca";
    int rc = mc_run_state_save(out, st, &t->opt, &t->model->store, e);
    if (rc || !c->n) return rc;
    mc_plot_series s[3] = {{"total", c->x, c->y[0], c->n}, {"contrastive", c->x, c->y[1], c->n},
                           {"caption", c->x, c->y[2], c->n}};
    mc_train_path(p, sizeof p, out, "loss.png");
    return mc_plot_lines_png(p, s, 3, "CoCa training loss", "step", "loss", 0, e);
}

static int copy_config(const char *src, const char *out, mc_err *e) {
    char *text, p[4096];
    size_t len;
    int rc = mc_read_file(src, 1 << 20, &text, &len, e);
    if (rc) return rc;
    mc_train_path(p, sizeof p, out, "config.json");
    mc_atomic_file af;
    if (!(rc = mc_atomic_open(&af, p, e))) {
        if (fwrite(text, 1, len, af.f) != len) {
            mc_atomic_abort(&af);
            rc = mc_fail(e, MC_E_IO, "%s: cannot write", p);
        } else {
            rc = mc_atomic_commit(&af, e);
        }
    }
    free(text);
    return rc;
}

static void on_bad(void *user, const char *msg) {
    long long *shown = user;
    if ((*shown)++ < 20) fprintf(stderr, "\rmobileclip " CMD ": skipped: %s\n", msg);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* [0, 1] pixels -> (x - mean) / std per channel, in place */
static void normalize(float *im, int B, int R, const float *mean, const float *std) {
    size_t hw = (size_t)R * R;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < 3; c++) {
            float *x = im + ((size_t)b * 3 + c) * hw, m = mean[c], s = 1.f / std[c];
            for (size_t i = 0; i < hw; i++) x[i] = (x[i] - m) * s;
        }
}

int mc_cmd_train_coca(int argc, char **argv) {
    copts o;
    int r = parse(argc, argv, &o);
    if (r == 1) return 0;
    if (r) {
        fprintf(stderr, "(mobileclip train --help for the options)\n");
        return 2;
    }
    if (o.threads > 0) omp_set_num_threads(o.threads);
    mc_err e = {0};
    mc_oc_cfg cfg;
    mc_coca_trainable model;
    mc_coca_trainer tr;
    int model_ok = 0, tr_ok = 0;
    mc_tokenizer *tok = NULL;
    mc_loader *loader = NULL;
    mc_batch batch = {0};
    mc_train_curve cv = {0};
    FILE *log = NULL;
    long long shown = 0;
    static mc_run_state st; /* one process, one data stream */
    memset(&st, 0, sizeof st);
    st.world = st.groups = st.n_pos = 1;
    char path[4096], mpath[4096];
    int rc = mc_oc_cfg_load(o.config, &cfg, &e);
    if (rc) goto done;
    if (mkdir(o.out, 0777) && errno != EEXIST) {
        rc = mc_fail(&e, MC_E_IO, "%s: cannot create the folder: %s", o.out, strerror(errno));
        goto done;
    }
    const char *wpath = o.init;
    if (o.resume) {
        mc_train_path(path, sizeof path, o.out, "state.json");
        if ((rc = mc_run_state_read(path, &st, &e))) goto done;
        if (st.n_pos != 1) {
            rc = mc_fail(&e, MC_E_FORMAT, "%s: saved by a run of %d data streams; a CoCa run has one", path, st.n_pos);
            goto done;
        }
        if (st.batch != o.batch || st.seed != o.seed) {
            rc = mc_fail(&e, MC_E_ARG, "%s: the run was saved with --batch %d --seed %llu; resume with the same", path,
                         st.batch, st.seed);
            goto done;
        }
        mc_train_path(mpath, sizeof mpath, o.out, st.model);
        wpath = mpath;
    }
    mc_tensor_map w;
    mc_tensor_map_init(&w);
    if (wpath && (rc = mc_checkpoint_load(wpath, &w, &e))) {
        mc_tensor_map_free(&w);
        goto done;
    }
    if ((rc = mc_coca_trainable_init(&model, &cfg, wpath ? &w : NULL, &e))) goto done;
    model_ok = 1;
    if (!wpath) mc_coca_init_fresh(&model, o.seed);
    mc_coca_train_config tc = {.adamw = {(float)o.beta1, (float)o.beta2, (float)o.eps, (float)o.wd},
                               .grad_clip = (float)o.grad_clip, .clip_weight = o.clip_w, .caption_weight = o.cap_w};
    if ((rc = mc_coca_trainer_init(&tr, &model, &tc, o.batch, &e))) goto done;
    tr_ok = 1;
    if (o.resume) {
        if ((rc = mc_run_state_load_optim(o.out, &st, &tr.opt, &model.store, &e))) goto done;
    } else {
        st.seed = o.seed;
        st.batch = o.batch;
    }
    if (!(tok = mc_tokenizer_load_builtin(&e))) {
        rc = -1;
        goto done;
    }
    int R = cfg.vision.image_size;
    mc_loader_config lc = {.spec = o.data, .reinforced = 0, .batch = o.batch, .image_size = R,
                           .context = cfg.text.context_length, .tokenizer = tok, .threads = o.loader_threads,
                           .seed = o.seed, .rank = 0, .world = 1, .start = st.pos[0], .on_bad = on_bad, .user = &shown};
    if ((rc = mc_loader_open(&loader, &lc, &e)) || (rc = mc_batch_alloc(&batch, loader, &e))) goto done;
    long long steps = o.steps > 0 ? o.steps : o.samples > 0 ? (o.samples + o.batch - 1) / o.batch : 1000;
    mc_train_path(path, sizeof path, o.out, "log.csv");
    if (o.resume && (rc = mc_train_csv_truncate(path, COCA_LOG_HEADER, st.step, mc_train_curve_row, &cv, &e))) goto done;
    if ((rc = copy_config(o.config, o.out, &e))) goto done;
    int fresh = access(path, F_OK) != 0;
    if (!(log = fopen(path, "a"))) {
        rc = mc_fail(&e, MC_E_IO, "%s: %s", path, strerror(errno));
        goto done;
    }
    if (fresh) fputs(COCA_LOG_HEADER, log);
    fprintf(stderr, "mobileclip " CMD ": CoCa captioner %s (%.2fM parameters), batch %d, %lld steps from step %lld, "
            "activations %.0f MiB\n", cfg.name, (double)model.store.total / 1e6, o.batch, steps, st.step,
            (double)(tr.tape_floats + tr.work_floats) * 4.0 / 1048576.0);
    int tty = isatty(2);
    double t0 = now(), t_last = t0;
    long long start = st.step, here = 0, bad0 = st.bad;
    while (st.step < steps) {
        if ((rc = mc_loader_next(loader, &batch, &e))) goto done;
        normalize(batch.images, o.batch, R, cfg.mean, cfg.std);
        float lr = (float)mc_cosine_lr(o.lr, o.warmup, steps, st.step);
        mc_coca_step_stats ss;
        if ((rc = mc_coca_trainer_step(&tr, batch.images, batch.tokens, lr, &ss, &e))) goto done;
        st.step++, here++;
        st.pos[0] = batch.next;
        st.samples += o.batch;
        st.bad = bad0 + mc_loader_get_stats(loader).bad;
        double t = now(), rate = (double)here * o.batch / (t - t0);
        const mc_coca_losses *L = &ss.loss;
        fprintf(log, "%lld,%lld,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.4g\n", st.step, st.samples, lr, L->total, L->clip,
                L->caption, ss.grad_norm, ss.scale, rate);
        fflush(log);
        if (mc_train_curve_push(&cv, (double)st.step, L->total, L->clip, L->caption)) {
            rc = mc_fail(&e, MC_E_NOMEM, "out of memory");
            goto done;
        }
        if ((tty && t - t_last > 0.2) || (!tty && st.step % o.log_every == 0) || st.step == steps) {
            double eta = (double)(steps - st.step) * o.batch / rate;
            fprintf(stderr, "%sstep %lld/%lld  loss %.4f (contrastive %.4f, caption %.4f)  lr %.3g  %.1f samples/s  "
                    "ETA %ld:%02ld%s", tty ? "\r\033[K" : "", st.step, steps, L->total, L->clip, L->caption, lr, rate,
                    (long)(eta / 60), (long)eta % 60, tty ? "" : "\n");
            t_last = t;
        }
        int last = st.step == steps || (o.stop_after > 0 && here >= o.stop_after);
        if ((last || st.step % o.save_every == 0) && (rc = save(o.out, &tr, &st, &cv, &e))) goto done;
        if (last) break;
    }
    fprintf(stderr, "%smobileclip " CMD ": %lld steps done (%lld this run, %lld samples skipped); model %s/model.pt\n",
            tty ? "\n" : "", st.step, st.step - start, st.bad - bad0, o.out);
done:
    if (rc) fprintf(stderr, "%smobileclip " CMD ": %s\n", isatty(2) ? "\n" : "", e.msg[0] ? e.msg : "failed");
    if (log && fclose(log) && !rc) {
        fprintf(stderr, "mobileclip " CMD ": cannot write the log\n");
        rc = -1;
    }
    mc_loader_close(loader);
    mc_batch_free(&batch);
    if (tr_ok) mc_coca_trainer_free(&tr);
    if (model_ok) mc_coca_trainable_free(&model);
    mc_tokenizer_free(tok);
    mc_train_curve_free(&cv);
    mc_plot_release();
    return rc ? 1 : shown ? MC_EXIT_SKIPPED : 0;
}
