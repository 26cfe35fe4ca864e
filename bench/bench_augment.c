/* bench_augment IMAGE [--n N] [--size R]
 * Time per DataCompDR augmentation (sample + reapply to R x R, ToTensor, Normalize) of one
 * decoded image, single thread: the per-augmentation image cost of `reinforce` (N per
 * sample) and of the training loader (one per sample). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "augment/augment.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_augment IMAGE [--n N] [--size R]\n");
        return 2;
    }
    int n = 100, R = 224;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n")) n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--size")) R = atoi(argv[i + 1]);
    }
    mc_err e = {0};
    mc_image im;
    if (mc_image_load(argv[1], &im, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    mc_augment_config cfg;
    mc_augment_config_datacompdr(&cfg);
    cfg.size_w = cfg.size_h = R;
    float *chw = malloc((size_t)3 * R * R * sizeof *chw);
    mc_rng rng;
    mc_rng_init(&rng, 0, 0);
    double t0 = now(), c0 = (double)clock() / CLOCKS_PER_SEC, crop_px = 0;
    for (int k = 0; k < n; k++) {
        mc_augment_params p;
        if (mc_augment_sample(&rng, &cfg, im.w, im.h, &p, &e) || mc_augment_apply(&cfg, &p, &im, 0, 0, chw, &e)) {
            fprintf(stderr, "%s\n", e.msg);
            return 1;
        }
        crop_px += (double)p.crop_w * p.crop_h;
    }
    double dt = now() - t0, cpu = (double)clock() / CLOCKS_PER_SEC - c0;
    printf("%s %dx%d -> %d: %.2f ms per augmentation wall, %.2f ms CPU (%d, mean crop %.0f px)\n", argv[1], im.w,
           im.h, R, 1e3 * dt / n, 1e3 * cpu / n, n, crop_px / n);
    free(chw);
    mc_image_free(&im);
    return 0;
}
