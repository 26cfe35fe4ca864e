/* bench_embed CHECKPOINT [--threads N] [--iters K] [--training-form]
 * Median latency of one image embedding (batch 1) and one text embedding, and the
 * checkpoint load time, through the public API. A peer (PyTorch, onnxruntime) is timed
 * separately on the same machine; see docs/BENCHMARKS.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "mobileclip.h"


int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_embed CHECKPOINT [--threads N] [--iters K] [--training-form]\n");
        return 2;
    }
    mobileclip_params p = mobileclip_default_params();
    int iters = 10;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) p.n_threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc) iters = atoi(argv[++i]);
        else if (strcmp(argv[i], "--training-form") == 0) p.reparameterize = 0;
    }
    if (iters < 1) iters = 1;
    char err[512];
    double t0 = now();
    mobileclip_ctx *ctx = mobileclip_init_from_file(argv[1], &p, err, sizeof err);
    double load = now() - t0;
    if (!ctx) {
        fprintf(stderr, "bench_embed: %s\n", err);
        return 1;
    }
    int R = mobileclip_image_size(ctx);
    float *img = malloc(sizeof(float) * 3 * R * R), out[512];
    for (int i = 0; i < 3 * R * R; i++) img[i] = (float)((i * 2654435761u) >> 24) / 255.0f;
    int32_t ids[MOBILECLIP_CONTEXT_LENGTH] = {49406, 320, 1125, 539, 320, 2368, 49407};
    double *ti = malloc(sizeof(double) * iters), *tt = malloc(sizeof(double) * iters);
    mobileclip_encode_images(ctx, img, 1, out, 1); /* warm-up */
    mobileclip_encode_tokens(ctx, ids, 1, out, 1);
    for (int k = 0; k < iters; k++) {
        t0 = now();
        mobileclip_encode_images(ctx, img, 1, out, 1);
        ti[k] = now() - t0;
        t0 = now();
        mobileclip_encode_tokens(ctx, ids, 1, out, 1);
        tt[k] = now() - t0;
    }
    qsort(ti, (size_t)iters, sizeof *ti, cmp_double);
    qsort(tt, (size_t)iters, sizeof *tt, cmp_double);
    printf("%s %s threads=%d load %.0f ms, image %.1f ms, text %.1f ms (median of %d)\n",
           mobileclip_arch_name(mobileclip_get_arch(ctx)), p.reparameterize ? "folded" : "training-form", p.n_threads,
           load * 1e3, ti[iters / 2] * 1e3, tt[iters / 2] * 1e3, iters);
    free(img);
    free(ti);
    free(tt);
    mobileclip_free(ctx);
    return 0;
}
