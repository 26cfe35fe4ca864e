/* mobileclip bench: latency, throughput, memory and efficiency of the image and text encoders.
 *
 * Without --checkpoint the model is built in memory by the deterministic weight rule of
 * shared/golden (io/weight_rule.h; speed does not depend on the values), so no file is
 * needed. Every architecture runs in a child process of its own, so peak RSS is its own.
 * Inputs: a fixed pseudo-random image at the model resolution; a caption of 20 tokens
 * (start, 18 word tokens, end, zero padding to 77). Latencies: median and p90 over --runs
 * runs after 2 warm-up runs. FMA peak: 12 independent multiply-add chains per thread on every
 * instruction set the CPU has, all threads at once (nn/fma_peak.inc). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/context.h"
#include "core/parallel.h"
#include "io/model_file.h"
#include "io/weight_rule.h"
#include "models/plan_tensors.h"
#include "nn/isa.h"
#include "nn/lowp.h"
#include "tools/cli.h"

#ifndef MC_SHARED_DIR_DEFAULT
#define MC_SHARED_DIR_DEFAULT "../shared"
#endif

static const char *help =
    "usage: mobileclip bench [--arch s0|s1|s2|b|all] [--checkpoint FILE] [--threads N] [--batch B]\n"
    "                        [--runs R] [--precision f32|bf16|int8] [--json] [--shared DIR]\n"
    "\n"
    "Times the image encoder (batch 1 and batch B) and the text encoder (batch 1, a 20-token\n"
    "caption): median and p90 latency over R runs (default 20) after warm-up, throughput,\n"
    "peak RSS (at batch 1, and after the batch runs), model load time (wall and CPU), the\n"
    "weights' size, multiply-accumulates per inference and GFLOP/s reached, and\n"
    "the FMA peak measured on this machine. Without --checkpoint the model of --arch (default\n"
    "s0; all: every one) is built from the deterministic weight rule of DIR/golden (DIR:\n"
    "--shared, else $MC_SHARED_DIR, else the build's shared folder).\n"
    "\n"
    "options:\n"
    "  --checkpoint FILE   a checkpoint or converted model (mobileclip convert) instead of the\n"
    "                      weight rule (its architecture and, unless --precision, precision)\n"
    "  --threads N         worker threads (default: $OMP_NUM_THREADS, else all cores)\n"
    "  --batch B           images per call for the throughput figure (default 16)\n"
    "  --runs R            timed runs per figure, at least 1 (default 20)\n"
    "  --precision P       f32 (default), bf16 or int8 matrix products (weights packed at load)\n"
    "  --json              one JSON object keyed by architecture instead of text\n";

typedef struct bench_result {
    int ok;
    char err[512];
    double load_ms, image_p50, image_p90, text_p50, text_p90, batch_ms, batch_img_per_s, peak_rss_mb;
    double image_macs, text_macs;
    double image_cpu_p50, text_cpu_p50; /* CPU time of all threads per run, ms */
    double load_cpu_ms;                 /* process CPU time of the load */
    double peak_rss_batch_mb;           /* after the batch runs too (peak_rss_mb: batch 1 only) */
    double weights_mb;                  /* the plan's weights: f32 tensors + packed copies */
} bench_result;

static double clock_s(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* sorted runs: p in [0, 1] by nearest rank */
static double pct(const double *v, int n, double p) {
    int i = (int)(p * n + 0.999999) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

typedef struct bench_cfg {
    int arch; /* MOBILECLIP_ARCH_*, or AUTO with a checkpoint */
    const char *checkpoint, *shared;
    int threads, batch, runs;
    int precision; /* mc_precision */
} bench_cfg;

/* 2 warm-up runs, then cfg->runs timed ones (wall ms into t, sorted; the median process CPU
 * ms, all threads, into *cpu_p50 when not NULL: on a shared machine the work itself, without
 * the time spent waiting for a core); returns -1 when the call fails. */
static int time_runs(mobileclip_ctx *ctx, int text, const void *in, int n, float *out, int runs, double *t,
                     double *cpu_p50) {
    double *c = cpu_p50 ? malloc(sizeof(double) * runs) : NULL;
    if (cpu_p50 && !c) return -1;
    for (int k = -2; k < runs; k++) {
        double t0 = now_s(), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        int r = text ? mobileclip_encode_tokens(ctx, in, n, out, 1) : mobileclip_encode_images(ctx, in, n, out, 1);
        if (r) {
            free(c);
            return -1;
        }
        if (k >= 0) t[k] = (now_s() - t0) * 1e3;
        if (k >= 0 && c) c[k] = (clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0) * 1e3;
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    if (c) {
        qsort(c, (size_t)runs, sizeof *c, cmp_double);
        *cpu_p50 = pct(c, runs, 0.5);
        free(c);
    }
    return 0;
}

static void run_arch(const bench_cfg *cfg, bench_result *res) {
    memset(res, 0, sizeof *res);
    mobileclip_params p = mobileclip_default_params();
    p.n_threads = cfg->threads;
    p.arch = (mobileclip_arch)cfg->arch;
    p.precision = (mobileclip_precision)cfg->precision;
    mc_err e = {0};
    mobileclip_ctx *ctx = NULL;
    double t0;
    double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    if (cfg->checkpoint) {
        char err[512];
        t0 = now_s();
        ctx = mobileclip_init_from_file(cfg->checkpoint, &p, err, sizeof err);
        res->load_ms = (now_s() - t0) * 1e3;
        res->load_cpu_ms = (clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0) * 1e3;
        if (!ctx) snprintf(res->err, sizeof res->err, "%s", err);
    } else {
        char tsv[4096];
        snprintf(tsv, sizeof tsv, "%s/golden/%s.params.tsv", cfg->shared, mobileclip_arch_name(p.arch));
        mc_tensor_map w;
        mc_tensor_map_init(&w);
        if (mc_weights_from_tsv(tsv, &w, NULL, &e)) {
            snprintf(res->err, sizeof res->err, "%s", e.msg);
            mc_tensor_map_free(&w);
            return;
        }
        t0 = now_s(); /* load = binding and reparameterizing the weights (no file to parse) */
        c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        ctx = mc_ctx_init_from_map(&w, &p, &e);
        res->load_ms = (now_s() - t0) * 1e3;
        res->load_cpu_ms = (clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0) * 1e3;
        if (!ctx) snprintf(res->err, sizeof res->err, "%s", e.msg);
    }
    if (!ctx) return;
    res->weights_mb = (double)(mc_clip_plan_bytes(&ctx->model) + ctx->model.lowp.bytes) / 1048576.0;
    int R = mobileclip_image_size(ctx), B = cfg->batch, runs = cfg->runs;
    float *img = malloc(sizeof(float) * 3 * R * R * B), *out = malloc(sizeof(float) * 512 * B);
    double *t = malloc(sizeof(double) * runs);
    int32_t ids[MOBILECLIP_CONTEXT_LENGTH] = {0};
    if (!img || !out || !t) {
        snprintf(res->err, sizeof res->err, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < (size_t)3 * R * R * B; i++) img[i] = (float)((i * 2654435761u) >> 24) / 255.0f;
    ids[0] = 49406;
    for (int i = 1; i <= 18; i++) ids[i] = 320 + 97 * i; /* word tokens */
    ids[19] = 49407;

    uint64_t m0 = mc_macs_get();
    if (mobileclip_encode_images(ctx, img, 1, out, 1)) goto fail;
    res->image_macs = (double)(mc_macs_get() - m0);
    m0 = mc_macs_get();
    if (mobileclip_encode_tokens(ctx, ids, 1, out, 1)) goto fail;
    res->text_macs = (double)(mc_macs_get() - m0);
    if (time_runs(ctx, 0, img, 1, out, runs, t, &res->image_cpu_p50)) goto fail;
    res->image_p50 = pct(t, runs, 0.5);
    res->image_p90 = pct(t, runs, 0.9);
    if (time_runs(ctx, 1, ids, 1, out, runs, t, &res->text_cpu_p50)) goto fail;
    res->text_p50 = pct(t, runs, 0.5);
    res->text_p90 = pct(t, runs, 0.9);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    res->peak_rss_mb = (double)ru.ru_maxrss / 1024.0; /* batch 1 (Linux: kilobytes) */
    int bruns = runs / 4 > 3 ? runs / 4 : 3; /* batches take B times longer */
    double *tb = malloc(sizeof(double) * bruns);
    if (!tb || time_runs(ctx, 0, img, B, out, bruns, tb, NULL)) {
        free(tb);
        goto fail;
    }
    res->batch_ms = pct(tb, bruns, 0.5);
    res->batch_img_per_s = B / (res->batch_ms * 1e-3);
    free(tb);
    getrusage(RUSAGE_SELF, &ru);
    res->peak_rss_batch_mb = (double)ru.ru_maxrss / 1024.0;
    res->ok = 1;
    goto done;
fail:
    snprintf(res->err, sizeof res->err, "%s", mobileclip_last_error(ctx));
done:
    free(img);
    free(out);
    free(t);
    mobileclip_free(ctx);
}

/* Runs run_arch in a child (own peak RSS); the result comes back through a pipe. */
static void run_arch_isolated(const bench_cfg *cfg, bench_result *res) {
    int fd[2];
    fflush(NULL);
    if (pipe(fd)) {
        run_arch(cfg, res);
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        run_arch(cfg, res);
        return;
    }
    if (pid == 0) {
        close(fd[0]);
        bench_result r;
        run_arch(cfg, &r);
        ssize_t w = write(fd[1], &r, sizeof r);
        _exit(w == (ssize_t)sizeof r ? 0 : 1);
    }
    close(fd[1]);
    memset(res, 0, sizeof *res);
    size_t got = 0;
    while (got < sizeof *res) {
        ssize_t n = read(fd[0], (char *)res + got, sizeof *res - got);
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd[0]);
    waitpid(pid, NULL, 0);
    if (got != sizeof *res) {
        memset(res, 0, sizeof *res);
        snprintf(res->err, sizeof res->err, "the benchmark process died");
    }
}

typedef struct peak_job {
    const mc_kernels *k;
    long iters;
    float sink;
} peak_job;

static void peak_task(void *arg, int b, int e) {
    peak_job *j = arg;
    for (int i = b; i < e; i++) j->sink += j->k->fma_chains(j->iters);
}

/* GFLOP/s of `threads` threads each running the FMA chains of `isa` (best of 3). */
static double fma_peak(mc_isa isa, int threads) {
    const mc_kernels *k = mc_kernels_get(), *use = NULL;
    mc_err e = {0};
    if (mc_isa_force(isa, &e)) return 0;
    use = mc_kernels_get();
    peak_job j = {use, 4000000, 0};
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = now_s();
        mc_parallel_for(threads, 1, peak_task, &j);
        double gf = threads * 12.0 * j.iters * use->vec_floats * 2 / (now_s() - t0) * 1e-9;
        if (gf > best) best = gf;
    }
    mc_isa_force(k->isa, &e);
    return best;
}

int mc_cmd_bench(int argc, char **argv) {
    bench_cfg cfg = {MOBILECLIP_ARCH_S0, NULL, NULL, 0, 16, 20, MOBILECLIP_PRECISION_AUTO};
    int json = 0, all = 0;
    const char *shared = getenv("MC_SHARED_DIR");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--arch") || !strcmp(a, "--checkpoint") || !strcmp(a, "--threads") ||
                   !strcmp(a, "--batch") || !strcmp(a, "--runs") || !strcmp(a, "--precision") ||
                   !strcmp(a, "--shared")) {
            if (!(v = mc_cli_value("bench", argc, argv, &i))) return 2;
            char *end = NULL;
            long n = strtol(v, &end, 10);
            int is_num = *v && !*end;
            if (!strcmp(a, "--arch")) {
                all = !strcmp(v, "all");
                cfg.arch = all ? MOBILECLIP_ARCH_S0 : mobileclip_arch_from_name(v);
                if (cfg.arch < 0) {
                    fprintf(stderr, "mobileclip bench: unknown architecture '%s' (s0, s1, s2, b or all)\n", v);
                    return 2;
                }
            } else if (!strcmp(a, "--checkpoint")) {
                cfg.checkpoint = v;
            } else if (!strcmp(a, "--precision")) {
                if ((cfg.precision = mc_precision_parse(v)) < 0) {
                    fprintf(stderr, "mobileclip bench: unknown --precision '%s' (f32, bf16 or int8)\n", v);
                    return 2;
                }
            } else if (!strcmp(a, "--shared")) {
                shared = v;
            } else if (!is_num || n < (!strcmp(a, "--threads") ? 0 : 1) || n > 4096) {
                fprintf(stderr, "mobileclip bench: %s needs a number in [%d, 4096], got '%s'\n", a,
                        !strcmp(a, "--threads") ? 0 : 1, v);
                return 2;
            } else if (!strcmp(a, "--threads")) {
                cfg.threads = (int)n;
            } else if (!strcmp(a, "--batch")) {
                cfg.batch = (int)n;
            } else {
                cfg.runs = (int)n;
            }
        } else {
            fprintf(stderr, "mobileclip bench: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (cfg.checkpoint && all) {
        fprintf(stderr, "mobileclip bench: --arch all needs the weight rule, not --checkpoint\n");
        return 2;
    }
    if (cfg.checkpoint && cfg.arch == MOBILECLIP_ARCH_S0) cfg.arch = MOBILECLIP_ARCH_AUTO;
    /* the precision reported: the one asked for, else a converted model's own, else f32 */
    int run_prec = cfg.precision;
    if (run_prec < 0 && cfg.checkpoint && mc_model_file_is(cfg.checkpoint)) {
        mc_model_file f;
        mc_err e = {0};
        if (!mc_model_file_open(&f, cfg.checkpoint, &e)) run_prec = f.precision;
        mc_model_file_close(&f);
    }
    if (run_prec < 0) run_prec = MC_PREC_F32;
    cfg.shared = shared && *shared ? shared : MC_SHARED_DIR_DEFAULT;
    mc_threads_set(cfg.threads);
    int threads = mc_threads_get();

    double peak[MC_ISA_COUNT] = {0};
    for (int isa = 0; isa < MC_ISA_COUNT; isa++)
        if (mc_isa_supported((mc_isa)isa)) peak[isa] = fma_peak((mc_isa)isa, threads);
    const mc_kernels *k = mc_kernels_get();

    int first = cfg.arch == MOBILECLIP_ARCH_AUTO ? -1 : cfg.arch, last = all ? MOBILECLIP_ARCH_B : first;
    int status = 0;
    mc_lowp_kernels lk = mc_lowp_kernels_get();
    const char *prec = mc_precision_name((mc_precision)run_prec);
    const char *gemm = run_prec == MC_PREC_BF16 ? lk.bf16_name : run_prec == MC_PREC_INT8 ? lk.int8_name : k->name;
    if (json)
        printf("{\"threads\":%d,\"isa\":\"%s\",\"precision\":\"%s\",\"gemm_kernels\":\"%s\",\"fma_peak_gflops\":{",
               threads, k->name, prec, gemm);
    if (json)
        for (int isa = 0, n = 0; isa < MC_ISA_COUNT; isa++)
            if (peak[isa] > 0) printf("%s\"%s\":%.1f", n++ ? "," : "", mc_isa_name((mc_isa)isa), peak[isa]);
    if (json) printf("}");
    if (!json) {
        printf("threads %d, kernels %s, precision %s (GEMM kernels %s); FMA peak (12 chains per thread, %d threads):",
               threads, k->name, prec, gemm, threads);
        for (int isa = 0; isa < MC_ISA_COUNT; isa++)
            if (peak[isa] > 0) printf(" %s %.1f GFLOP/s", mc_isa_name((mc_isa)isa), peak[isa]);
        printf("\n");
    }
    for (int a = first; a <= last; a++) {
        bench_cfg c = cfg;
        c.arch = a;
        bench_result r;
        run_arch_isolated(&c, &r);
        const char *name = a < 0 ? "checkpoint" : mobileclip_arch_name((mobileclip_arch)a);
        if (!r.ok) {
            fprintf(stderr, "mobileclip bench: %s: %s\n", name, r.err);
            status = 1;
            continue;
        }
        double gi = 2 * r.image_macs / (r.image_p50 * 1e-3) * 1e-9, gt = 2 * r.text_macs / (r.text_p50 * 1e-3) * 1e-9;
        double pk = peak[k->isa];
        if (json) {
            printf(",\"%s\":{\"image_ms_p50\":%.3f,\"image_ms_p90\":%.3f,\"text_ms_p50\":%.3f,\"text_ms_p90\":%.3f,"
                   "\"image_batch\":%d,\"image_batch_ms\":%.3f,\"image_batch_img_per_s\":%.3f,\"peak_rss_mb\":%.1f,"
                   "\"load_ms\":%.2f,\"image_gmacs\":%.4f,\"text_gmacs\":%.4f,\"image_gflops\":%.2f,\"text_gflops\":%.2f,"
                   "\"image_cpu_ms_p50\":%.3f,\"text_cpu_ms_p50\":%.3f,\"load_cpu_ms\":%.2f,\"weights_mb\":%.1f,"
                   "\"peak_rss_batch_mb\":%.1f}",
                   name, r.image_p50, r.image_p90, r.text_p50, r.text_p90, cfg.batch, r.batch_ms, r.batch_img_per_s,
                   r.peak_rss_mb, r.load_ms, r.image_macs * 1e-9, r.text_macs * 1e-9, gi, gt, r.image_cpu_p50,
                   r.text_cpu_p50, r.load_cpu_ms, r.weights_mb, r.peak_rss_batch_mb);
        } else {
            printf("%s: load %.1f ms (cpu %.1f ms), weights %.0f MB, peak RSS %.0f MB at batch 1, %.0f MB at batch %d\n",
                   name, r.load_ms, r.load_cpu_ms, r.weights_mb, r.peak_rss_mb, r.peak_rss_batch_mb, cfg.batch);
            printf("  image  p50 %8.2f ms  p90 %8.2f ms  cpu %8.2f ms  %6.3f GMAC  %6.1f GFLOP/s (%.0f%% of peak)  "
                   "batch %d: %.1f img/s\n",
                   r.image_p50, r.image_p90, r.image_cpu_p50, r.image_macs * 1e-9, gi, pk > 0 ? 100 * gi / pk : 0,
                   cfg.batch, r.batch_img_per_s);
            printf("  text   p50 %8.2f ms  p90 %8.2f ms  cpu %8.2f ms  %6.3f GMAC  %6.1f GFLOP/s (%.0f%% of peak)  "
                   "(20 tokens)\n",
                   r.text_p50, r.text_p90, r.text_cpu_p50, r.text_macs * 1e-9, gt, pk > 0 ? 100 * gt / pk : 0);
        }
    }
    if (json) printf("}\n");
    int w = mc_cli_finish_output("bench");
    return status ? status : w;
}
