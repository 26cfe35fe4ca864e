/* bench_embed CHECKPOINT [--threads N] [--iters K] [--training-form] [--help]
 * Median latency of one image embedding (batch 1) and one text embedding, and the
 * checkpoint load time, through the public API. A peer (PyTorch, onnxruntime) is timed
 * separately on the same machine; see docs/BENCHMARKS.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "mobileclip.h"


static const char *usage =
    "usage: bench_embed CHECKPOINT [--threads N] [--iters K] [--training-form] [--help]\n"
    "\n"
    "Times loading CHECKPOINT and the median latency of one image embedding (batch 1) and one\n"
    "text embedding through the public API.\n"
    "  --threads N       worker threads (default: OpenMP's default)\n"
    "  --iters K         timed repetitions (default 10)\n"
    "  --training-form   time the training-form model\n"
    "Options also take the form --name=VALUE.\n";

/* The value of option `name` at argv[*i] ("--name V" or "--name=V"), or NULL if it is not. */
static const char *opt_value(const char *name, int argc, char **argv, int *i) {
    size_t l = strlen(name);
    if (strncmp(argv[*i], name, l)) return NULL;
    if (argv[*i][l] == '=') return argv[*i] + l + 1;
    if (argv[*i][l] || *i + 1 >= argc) return NULL;
    return argv[++*i];
}

static int positive(const char *v, int *out) {
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < 1 || n > 100000) return 0;
    *out = (int)n;
    return 1;
}

int main(int argc, char **argv) {
    mobileclip_params p = mobileclip_default_params();
    int iters = 10;
    const char *ckpt = NULL, *v;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--training-form")) {
            p.reparameterize = 0;
        } else if ((v = opt_value("--threads", argc, argv, &i))) {
            if (!positive(v, &p.n_threads)) return fprintf(stderr, "bench_embed: bad --threads '%s'\n", v), 2;
        } else if ((v = opt_value("--iters", argc, argv, &i))) {
            if (!positive(v, &iters)) return fprintf(stderr, "bench_embed: bad --iters '%s'\n", v), 2;
        } else if (argv[i][0] == '-' || ckpt) {
            fprintf(stderr, "bench_embed: unexpected argument '%s'\n%s", argv[i], usage);
            return 2;
        } else {
            ckpt = argv[i];
        }
    }
    if (!ckpt) {
        fputs(usage, stderr);
        return 2;
    }
    char err[512];
    double t0 = now();
    mobileclip_ctx *ctx = mobileclip_init_from_file(ckpt, &p, err, sizeof err);
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
           mobileclip_arch_name(mobileclip_get_arch(ctx)), p.reparameterize ? "reparameterized" : "training-form", p.n_threads,
           load * 1e3, ti[iters / 2] * 1e3, tt[iters / 2] * 1e3, iters);
    free(img);
    free(ti);
    free(tt);
    mobileclip_free(ctx);
    return 0;
}
