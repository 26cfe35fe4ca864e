/* bench_teacher [ARCH] [--checkpoint F] [--images B] [--texts N] [--iters K]
 * Throughput of one open_clip teacher (default ViT-L-14): images/s at batch B (default 8) and
 * texts/s at batch N (default 32), the median of K runs after one warm-up, plus the bicubic
 * eval preprocessing of a photo. Without --checkpoint the model is declared from its config
 * and filled by the project's deterministic weight rule (tests/common/weight_rule.h) with the
 * golden's ranges (shared/golden/teacher_vit/README.md). Threads: OMP_NUM_THREADS. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "bench_util.h"
#include "common/weight_rule.h"
#include "models/openclip.h"


static double median_run(int iters, int (*fn)(void *), void *arg) {
    double *t = malloc(sizeof(double) * (size_t)iters);
    if (fn(arg)) return -1; /* warm-up */
    for (int i = 0; i < iters; i++) {
        double t0 = now();
        if (fn(arg)) return -1;
        t[i] = now() - t0;
    }
    qsort(t, (size_t)iters, sizeof *t, cmp_double);
    double m = t[iters / 2];
    free(t);
    return m;
}

typedef struct job {
    mc_openclip *m;
    float *images, *out;
    int32_t *tokens;
    int n;
    mc_err e;
} job;

static int run_images(void *a) {
    job *j = a;
    return mc_openclip_encode_image(j->m, j->images, j->n, j->out, NULL, &j->e);
}

static int run_texts(void *a) {
    job *j = a;
    return mc_openclip_encode_text(j->m, j->tokens, j->n, j->out, NULL, &j->e);
}

int main(int argc, char **argv) {
    const char *arch = "ViT-L-14", *ckpt = NULL;
    int B = 8, N = 32, iters = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--checkpoint") && i + 1 < argc) ckpt = argv[++i];
        else if (!strcmp(argv[i], "--images") && i + 1 < argc) B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--texts") && i + 1 < argc) N = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
        else if (argv[i][0] != '-') arch = argv[i];
        else {
            fprintf(stderr, "usage: bench_teacher [ARCH|CONFIG.json] [--checkpoint F] [--images B] [--texts N] "
                            "[--iters K]\n");
            return 2;
        }
    }
    if (B < 1 || N < 1 || iters < 1) return fprintf(stderr, "bench_teacher: sizes must be positive\n"), 2;
    mc_oc_cfg cfg;
    mc_openclip m;
    mc_err e = {0};
    if (mc_oc_cfg_load(arch, &cfg, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    double t0 = now();
    if (ckpt ? mc_openclip_load(&m, ckpt, &cfg, &e) : mc_openclip_init_declared(&m, &cfg, &e))
        return fprintf(stderr, "%s\n", e.msg), 1;
    if (!ckpt) bench_fill_openclip(&m.weights);
    double t_load = now() - t0;
    int64_t params = 0;
    for (int i = 0; i < m.weights.count; i++) params += mc_tensor_numel(&m.weights.items[i].t);

    int R = cfg.vision.image_size, T = cfg.text.context_length;
    job j = {.m = &m, .n = B};
    j.images = malloc(sizeof(float) * (size_t)B * 3 * R * R);
    j.out = malloc(sizeof(float) * (size_t)(B > N ? B : N) * (size_t)cfg.embed_dim);
    j.tokens = calloc((size_t)N * T, sizeof(int32_t));
    if (!j.images || !j.out || !j.tokens) return fprintf(stderr, "out of memory\n"), 1;
    for (size_t i = 0; i < (size_t)B * 3 * R * R; i++) j.images[i] = (float)((i * 2654435761u) % 1000) / 500.f - 1.f;
    for (int n = 0; n < N; n++) { /* SOT, 10 + n % 20 words, EOT */
        int32_t *t = j.tokens + (size_t)n * T;
        int len = 10 + n % 20;
        t[0] = 49406;
        for (int k = 1; k <= len && k < T - 1; k++) t[k] = 300 + (n * 31 + k * 17) % 40000;
        t[len + 1 < T ? len + 1 : T - 1] = 49407;
    }
    double ti = median_run(iters, run_images, &j);
    j.n = N;
    double tt = median_run(iters, run_texts, &j);
    if (ti < 0 || tt < 0) return fprintf(stderr, "%s\n", j.e.msg), 1;

    /* the eval transform of a 640 x 480 image */
    mc_image im;
    double tp = -1;
    if (mc_image_alloc(&im, 640, 480, &e) == 0) {
        for (size_t i = 0; i < (size_t)640 * 480 * 3; i++) im.rgb[i] = (uint8_t)(i * 7 % 251);
        double p0 = now();
        for (int k = 0; k < 10; k++) mc_openclip_preprocess(&cfg, &im, j.images, &e);
        tp = (now() - p0) / 10;
        mc_image_free(&im);
    }
    printf("%s: %.1f M parameters (%s), set up in %.2f s, %d threads\n", cfg.name, (double)params / 1e6,
           ckpt ? ckpt : "weight rule", t_load, omp_get_max_threads());
    printf("  image: batch %d in %.3f s -> %.2f images/s (%.0f ms per image)\n", B, ti, B / ti, 1e3 * ti / B);
    printf("  text:  batch %d in %.3f s -> %.2f texts/s (%.1f ms per text)\n", N, tt, N / tt, 1e3 * tt / N);
    printf("  preprocess (bicubic 640x480 -> %d, normalise): %.2f ms\n", R, tp * 1e3);
    free(j.images);
    free(j.out);
    free(j.tokens);
    mc_openclip_free(&m);
    return 0;
}
