/* bench_train_step - time of one whole training step (train/step.h: forward of both towers,
 * loss, backward, clip, AdamW, clamp) of a random-weight model on random data.
 *
 *   bench_train_step [--arch s0|s1|s2|b | --config FILE] [--batch 32] [--threads 2] [--steps 2]
 *                    [--warmup 1] [--mode dr|dr0|clip|all]
 *
 * Modes: dr = the reinforced loss, lambda 1 (two caption sets: [real; synthetic] texts as one
 * batch of 2B, two 768-d teachers); dr0 = the same data with lambda 0; clip = plain CLIP
 * (one caption set of B texts, no teacher); all = the three. Prints per mode the median step
 * time, samples/s, the activation memory per sample (the tape and work arenas, sized by the
 * towers' measure passes) and the process's peak RSS, and the load average (the machine is
 * shared: read timings against it). Weights: the tests' deterministic rule (never trained).
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench_util.h"
#include "io/weight_rule.h"
#include "models/clip.h"
#include "models/config.h"
#include "train/step.h"

static void die(const char *m) {
    fprintf(stderr, "bench_train_step: %s\n", m);
    exit(1);
}

static double load1(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

/* CPU seconds of the process (all threads): on a loaded machine this, divided by the thread
 * count, is the step time the machine would give when idle (an estimate; wall time is printed too) */
static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec + 1e-6 * ru.ru_stime.tv_usec;
}

static double run_mode(mc_clip_config *cfg, const char *mode, int B, int steps, int warmup) {
    mc_err e = {0};
    mc_clip clip;
    if (mc_clip_init_config(&clip, cfg, NULL, 1, 1, 0, &e)) die(e.msg);
    mc_weight_rule_fill_store(&clip.store);
    int dr = strcmp(mode, "clip") != 0, ns = dr ? 2 : 1;
    mc_train_config tc = {.adamw = mc_adamw_config_default(cfg->image == MC_IMAGE_VIT), .grad_clip = 1.0f, .accum = 1,
                          .bn_groups = 1};
    tc.adamw.beta2 = 0.95f;
    tc.loss = dr ? mc_drclip_config_default(strcmp(mode, "dr") == 0 ? 1.0f : 0.0f)
                 : (mc_drclip_config){.weights = {1, 0}, .n_teachers = 0};
    mc_trainer t;
    if (mc_trainer_init(&t, &clip, &tc, B, ns, NULL, &e)) die(e.msg);
    int R = cfg->image_size, T = cfg->text.context_length, Dt = dr ? 1536 : 0;
    float *images = malloc(sizeof(float) * B * 3 * R * R), *U = dr ? malloc(sizeof(float) * B * Dt) : NULL;
    float *V = dr ? malloc(sizeof(float) * 2 * B * Dt) : NULL;
    int32_t *tok = calloc((size_t)ns * B * T, sizeof(int32_t));
    if (!images || !tok || (dr && (!U || !V))) die("out of memory");
    uint64_t x = 88172645463325252ull;
#define RND() (x ^= x << 13, x ^= x >> 7, x ^= x << 17, (double)(x >> 11) * 0x1p-53)
    for (size_t i = 0; i < (size_t)B * 3 * R * R; i++) images[i] = (float)RND();
    for (int n = 0; n < ns * B; n++) { /* <sot> words <eot> */
        int len = 5 + (int)(RND() * (T - 7));
        tok[n * T] = 49406;
        for (int k = 1; k < len; k++) tok[n * T + k] = 1 + (int)(RND() * 40000);
        tok[n * T + len] = 49407;
    }
    for (int r = 0; dr && r < 3 * B; r++) { /* unit-norm 768-d halves */
        float *row = r < B ? U + (size_t)r * Dt : V + (size_t)(r - B) * Dt;
        for (int h = 0; h < 2; h++) {
            double s = 0;
            for (int k = 0; k < 768; k++) {
                row[h * 768 + k] = (float)(RND() - 0.5);
                s += (double)row[h * 768 + k] * row[h * 768 + k];
            }
            for (int k = 0; k < 768; k++) row[h * 768 + k] /= (float)sqrt(s);
        }
    }
    mc_train_batch mb = {images, tok, U, V};
    double *ts = malloc(sizeof(double) * (steps > 0 ? steps : 1)), *cs = malloc(sizeof(double) * (steps > 0 ? steps : 1));
    mc_step_stats ss;
    for (int i = 0; i < warmup + steps; i++) {
        double t0 = now(), c0 = cpu_seconds();
        if (mc_trainer_step(&t, &mb, 1e-4f, &ss, &e)) die(e.msg);
        if (i >= warmup) {
            ts[i - warmup] = now() - t0;
            cs[i - warmup] = cpu_seconds() - c0;
        }
    }
    qsort(ts, (size_t)steps, sizeof(double), cmp_double);
    qsort(cs, (size_t)steps, sizeof(double), cmp_double);
    double med = ts[steps / 2], cpu = cs[steps / 2];
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%-5s batch %d: step %.3f s wall, %.3f s CPU (median of %d), %.2f samples/s, loss %.4f; activations %.1f MB/sample "
           "(tape %.0f MB + work %.0f MB), parameters+grad+moments %.0f MB, peak RSS %.0f MB, load %.1f\n",
           mode, B, med, cpu, steps, B / med, ss.loss.total, (t.tape_floats + t.work_floats) * 4e-6 / B, t.tape_floats * 4e-6,
           t.work_floats * 4e-6, clip.store.total * 16e-6, ru.ru_maxrss / 1024.0, load1());
    fflush(stdout);
    free(ts);
    free(cs);
    free(images);
    free(U);
    free(V);
    free(tok);
    mc_trainer_free(&t);
    mc_clip_free(&clip);
    return cpu;
}

int main(int argc, char **argv) {
    const char *arch = "s0", *config = NULL, *mode = "all";
    int B = 32, threads = 2, steps = 2, warmup = 1;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) die("every option takes a value");
        if (!strcmp(a, "--arch")) arch = v;
        else if (!strcmp(a, "--config")) config = v;
        else if (!strcmp(a, "--batch")) B = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--steps")) steps = atoi(v);
        else if (!strcmp(a, "--warmup")) warmup = atoi(v);
        else if (!strcmp(a, "--mode")) mode = v;
        else die("unknown option");
    }
    if (B < 2 || threads < 1 || steps < 1 || warmup < 0) die("bad --batch / --threads / --steps / --warmup");
    omp_set_num_threads(threads);
    mc_clip_config cfg;
    mc_err e = {0};
    static const char *names[] = {"s0", "s1", "s2", "b"};
    int a = -1;
    for (int k = 0; k < 4; k++)
        if (!strcmp(arch, names[k])) a = k;
    if (config ? mc_clip_config_load(config, &cfg, &e) : a < 0 ? (die("unknown --arch"), 0) : mc_clip_config_builtin(a, &cfg, &e))
        die(e.msg);
    printf("bench_train_step: %s, %d threads, load average %.1f at start\n", cfg.name, threads, load1());
    if (!strcmp(mode, "all")) {
        double d = run_mode(&cfg, "dr", B, steps, warmup), d0 = run_mode(&cfg, "dr0", B, steps, warmup),
               c = run_mode(&cfg, "clip", B, steps, warmup);
        printf("CPU time per step, distillation (lambda 1) / lambda 0: %.3f; / plain CLIP (B texts): %.3f\n", d / d0, d / c);
    } else {
        run_mode(&cfg, mode, B, steps, warmup);
    }
    return 0;
}
