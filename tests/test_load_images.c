/* mobileclip_load_images (parallel decode + preprocess) against mobileclip_load_image one file
 * at a time: the same floats bit for bit for every shared photo, whatever the thread count;
 * per-file status for missing and corrupt files, the others still loaded; the error names the
 * first failing file and counts the rest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/test_util.h"
#include "common/weight_rule.h"
#include "io/safetensors.h"
#include "mobileclip.h"

int main(void) {
    char tmpdir[] = "/tmp/mc_load_XXXXXX", ckpt[256], bad[256], missing[256], err[512];
    if (!mkdtemp(tmpdir)) mc_test_fatal("mkdtemp failed");
    snprintf(ckpt, sizeof ckpt, "%s/s0.safetensors", tmpdir);
    snprintf(bad, sizeof bad, "%s/bad.png", tmpdir);
    snprintf(missing, sizeof missing, "%s/missing.jpg", tmpdir);
    mc_weights_save_test_model("s0", ckpt);
    FILE *f = fopen(bad, "wb");
    fwrite("\x89PNG\r\n\x1a\n\0\0", 1, 10, f);
    fclose(f);

    const char *names[] = {"astronaut.png", "camera.png", "chelsea.png", "coffee.png", "hubble_deep_field.jpg",
                           "logo.png", "motorcycle_left.png", "rocket.jpg", "synthetic_tall_97x301.jpg",
                           "synthetic_tiny_17x13_palette.png"};
    enum { N = 10, M = N + 2 };
    static char paths_buf[N][512];
    const char *paths[M];
    for (int i = 0; i < N; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "images/%s", names[i]);
        snprintf(paths_buf[i], sizeof paths_buf[i], "%s", mc_test_path(rel));
        paths[i] = paths_buf[i];
    }
    for (int threads = 1; threads <= 2; threads++) {
        mobileclip_params p = mobileclip_default_params();
        p.load_text = 0;
        p.n_threads = threads;
        mobileclip_ctx *ctx = mobileclip_init_from_file(ckpt, &p, err, sizeof err);
        if (!ctx) mc_test_fatal("%s", err);
        size_t sz = (size_t)3 * mobileclip_image_size(ctx) * mobileclip_image_size(ctx);
        float *one = malloc(sizeof(float) * sz), *all = malloc(sizeof(float) * sz * M);
        int status[M];
        int r = mobileclip_load_images(ctx, paths, N, all, status);
        CHECK(r == 0, "load_images: %s", mobileclip_last_error(ctx));
        int same = 0;
        for (int i = 0; i < N; i++) {
            CHECK(mobileclip_load_image(ctx, paths[i], one) == 0, "%s: %s", paths[i], mobileclip_last_error(ctx));
            same += status[i] == 0 && memcmp(one, all + i * sz, sizeof(float) * sz) == 0;
        }
        CHECK(same == N, "threads %d: %d of %d images identical to one-at-a-time loading", threads, same, N);
        /* failures: a corrupt file first, a missing one last; the good ones in between still load */
        const char *mixed[M] = {bad};
        for (int i = 0; i < N; i++) mixed[i + 1] = paths[i];
        mixed[M - 1] = missing;
        r = mobileclip_load_images(ctx, mixed, M, all, status);
        char msg[512];
        snprintf(msg, sizeof msg, "%s", mobileclip_last_error(ctx));
        int good = 0;
        for (int i = 1; i <= N; i++) {
            mobileclip_load_image(ctx, paths[i - 1], one);
            good += status[i] == 0 && memcmp(one, all + i * sz, sizeof(float) * sz) == 0;
        }
        CHECK(r < 0 && status[0] < 0 && status[M - 1] == MOBILECLIP_E_IO && good == N, "mixed: r %d, status %d/%d, good %d",
              r, status[0], status[M - 1], good);
        CHECK(strstr(msg, bad) && strstr(msg, "and 1 more image"), "message: %s", msg);
        printf("%-4s threads %d: %d images bit-identical to one at a time; failures per file (%s)\n",
               same == N && good == N ? "ok" : "FAIL", threads, same, msg);
        free(one);
        free(all);
        mobileclip_free(ctx);
    }
    remove(bad);
    remove(ckpt);
    rmdir(tmpdir);
    return mc_test_finish("load_images");
}
