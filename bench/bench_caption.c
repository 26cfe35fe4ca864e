/* bench_caption [ARCH|CONFIG.json] [--images B] [--method top_p|top_k|beam] [--iters K] [--seq-len L]
 * Captions per second of a CoCa captioner (default coca_ViT-B-32) at batch B (default 8): the
 * image tower + attentional pooler, then generate() at open_clip's seq_len 30 (top_p 0.9 as
 * DataCompDR, or greedy top_k, or the 6-beam grouped search), median of K runs (default 1)
 * after one warm-up. The model is declared from its config and filled by the weight rule
 * (bench_util.h); the images are a fixed random pattern. A vocabulary smaller than CLIP's
 * uses its last two ids as start / end. Threads: OMP_NUM_THREADS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "bench_util.h"
#include "caption/generate.h"

int main(int argc, char **argv) {
    const char *arch = "coca_ViT-B-32";
    int B = 8, iters = 1, seq_len = 30;
    mc_caption_method method = MC_CAPTION_TOP_P;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--images") && i + 1 < argc) B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seq-len") && i + 1 < argc) seq_len = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--method") && i + 1 < argc) {
            const char *m = argv[++i];
            method = !strcmp(m, "beam") ? MC_CAPTION_BEAM : !strcmp(m, "top_k") ? MC_CAPTION_TOP_K : MC_CAPTION_TOP_P;
        } else if (argv[i][0] != '-') arch = argv[i];
        else {
            fprintf(stderr, "usage: bench_caption [ARCH|CONFIG.json] [--images B] [--method M] [--iters K] [--seq-len L]\n");
            return 2;
        }
    }
    if (B < 1 || iters < 1) return 2;
    mc_err e = {0};
    mc_oc_cfg cfg;
    mc_coca m;
    if (mc_oc_cfg_load(arch, &cfg, &e) || mc_coca_init_declared(&m, &cfg, &e)) {
        fprintf(stderr, "bench_caption: %s\n", e.msg);
        return 1;
    }
    bench_fill_openclip(&m.clip.weights);
    int R = cfg.vision.image_size, T = m.n_img_tok, D = m.embed_dim;
    float *px = malloc(sizeof(float) * (size_t)B * 3 * R * R), *tok = malloc(sizeof(float) * (size_t)B * T * D);
    mc_caption_params p;
    mc_caption_params_default(&p, &m);
    p.method = method;
    p.seq_len = seq_len; /* open_clip's 30; a context of C tokens allows C + 1 */
    p.top_p = 0.9f;
    if (m.dec.vocab < 49408) p.sot = m.dec.vocab - 2, p.eot = m.dec.vocab - 1;
    int32_t *out = malloc(sizeof(int32_t) * (size_t)B * p.seq_len);
    for (size_t i = 0; i < (size_t)B * 3 * R * R; i++) px[i] = (float)((i * 2654435761u) % 1000) / 500.f - 1.f;
    double enc = 1e30, gen = 1e30;
    long tokens = 0;
    for (int it = 0; it <= iters; it++) {
        double t0 = now();
        if (mc_coca_encode_image(&m, px, B, NULL, tok, &e)) break;
        double t1 = now();
        p.seed = (uint64_t)it;
        if (mc_coca_generate(&m, tok, B, &p, NULL, out, &e)) break;
        double t2 = now();
        if (it == 0) continue; /* warm-up */
        if (t1 - t0 < enc) enc = t1 - t0;
        if (t2 - t1 < gen) gen = t2 - t1;
        tokens = 0;
        for (int b = 0; b < B; b++)
            for (int i = 1; i < p.seq_len; i++) {
                int32_t v = out[(size_t)b * p.seq_len + i];
                tokens += v != p.pad || (i > 0 && out[(size_t)b * p.seq_len + i - 1] != p.eot && v == p.pad);
            }
    }
    if (e.code) {
        fprintf(stderr, "bench_caption: %s\n", e.msg);
        return 1;
    }
    static const char *const names[] = {"top_p 0.9", "top_k", "beam 6x3"};
    printf("%s (%s), %d threads, batch %d, %s, seq_len %d: image tower %.1f ms/image, generation %.1f ms/caption "
           "(%ld tokens), %.2f captions/s\n",
           cfg.name, arch, omp_get_max_threads(), B, names[method], p.seq_len, 1e3 * enc / B, 1e3 * gen / B, tokens,
           B / (enc + gen));
    free(px), free(tok), free(out);
    mc_coca_free(&m);
    return 0;
}
