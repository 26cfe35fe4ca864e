/* bench_reinforce [--teacher ARCH|CONFIG.json]... [--num-aug N] [--samples S] [--syn K] [--dtype f32|bf16]
 *                 [--keep-images] [--images DIR] [--vocab V] [--batch B]
 * Throughput and storage of the reinforcement job (src/reinforce/job.h) end to end: S samples
 * (the photos of DIR, default ../shared/images, cycled; caption "a photo number i") in one
 * shard, K synthetic captions each (default 5, as DataCompDR), N augmentations (default 2),
 * teachers declared from their open_clip config and filled by the weight rule (as
 * bench_teacher; default one ViT-L-14). Prints samples/s and bytes per written sample.
 * Threads: OMP_NUM_THREADS. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_util.h"
#include "image/image.h"
#include "io/wds.h"
#include "io/walk.h"
#include "reinforce/job.h"

static int add_teacher(mc_teacher_ensemble *ens, const char *arch, mc_err *e) {
    mc_oc_cfg cfg;
    if (mc_oc_cfg_load(arch, &cfg, e)) return -1;
    mc_teacher *g = realloc(ens->teachers, sizeof *g * (size_t)(ens->count + 1));
    if (!g) return -1;
    ens->teachers = g;
    mc_teacher *t = &g[ens->count];
    memset(t, 0, sizeof *t);
    if (mc_openclip_init_declared(&t->oc, &cfg, e)) return -1;
    bench_fill_openclip(&t->oc.weights);
    t->kind = MC_TEACHER_OPENCLIP;
    snprintf(t->name, sizeof t->name, "(weight rule):%s", arch);
    t->dim = cfg.embed_dim;
    t->image_size = cfg.vision.image_size;
    t->context = t->oc.text->context;
    ens->dim += t->dim;
    ens->count++;
    return 0;
}

static unsigned char *slurp(const char *p, size_t *n) {
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    if (b && fread(b, 1, (size_t)len, f) != (size_t)len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *n = (size_t)len;
    return b;
}

int main(int argc, char **argv) {
    const char *teachers[16], *images = "../shared/images", *vocab = "../shared/vocab/bpe_simple_vocab_16e6.txt.gz";
    int nt = 0, N = 2, S = 4, K = 5, bf16 = 0, keep = 0, batch = 32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--keep-images")) keep = 1;
        else if (!v) return fprintf(stderr, "bench_reinforce: bad arguments (see the source's first comment)\n"), 2;
        else if (!strcmp(a, "--teacher") && nt < 16) teachers[nt++] = argv[++i];
        else if (!strcmp(a, "--num-aug")) N = atoi(argv[++i]);
        else if (!strcmp(a, "--samples")) S = atoi(argv[++i]);
        else if (!strcmp(a, "--syn")) K = atoi(argv[++i]);
        else if (!strcmp(a, "--batch")) batch = atoi(argv[++i]);
        else if (!strcmp(a, "--dtype")) bf16 = !strcmp(argv[++i], "bf16");
        else if (!strcmp(a, "--images")) images = argv[++i];
        else if (!strcmp(a, "--vocab")) vocab = argv[++i];
        else return fprintf(stderr, "bench_reinforce: unknown option %s\n", a), 2;
    }
    if (!nt) teachers[nt++] = "ViT-L-14";
    if (N < 1 || S < 1 || K < 0 || batch < 1) return fprintf(stderr, "bench_reinforce: sizes must be positive\n"), 2;
    mc_err e = {0};
    mc_strlist files;
    mc_strlist_init(&files);
    int n_other = 0;
    if (mc_walk_images(images, NULL, &files, &n_other, &e) || files.count == 0)
        return fprintf(stderr, "bench_reinforce: no images in %s %s\n", images, e.msg), 1;
    char dir[] = "/tmp/mc_bench_reinforce_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char in[256], out[256], spec[300];
    snprintf(in, sizeof in, "%s/in.tar", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    mc_tar_writer w;
    mc_syn_store syn;
    mc_syn_init(&syn);
    if (mc_tar_writer_open(&w, in, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    long long image_bytes = 0;
    for (int i = 0; i < S; i++) {
        const char *f = files.items[i % files.count], *dot = strrchr(f, '.');
        size_t n;
        unsigned char *b = slurp(f, &n);
        if (!b) return fprintf(stderr, "cannot read %s\n", f), 1;
        char key[32], cap[64], line[2048];
        snprintf(key, sizeof key, "%06d", i);
        snprintf(cap, sizeof cap, "a photo number %d", i);
        mc_wds_member m[2] = {{dot && !strcmp(dot, ".jpg") ? "jpg" : "png", b, n}, {"txt", (unsigned char *)cap, strlen(cap)}};
        if (mc_wds_write_sample(&w, key, m, 2, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
        image_bytes += (long long)n;
        free(b);
        int len = snprintf(line, sizeof line, "{\"key\": \"%s\", \"syn_text\": [", key);
        for (int k = 0; k < K; k++)
            len += snprintf(line + len, sizeof line - (size_t)len, "%s\"a synthetic caption %d of photo %d with some words\"",
                            k ? ", " : "", k, i);
        len += snprintf(line + len, sizeof line - (size_t)len, "]}");
        if (K && mc_syn_add_line(&syn, line, (size_t)len, "bench", &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    }
    if (mc_tar_writer_finish(&w, &e)) return fprintf(stderr, "%s\n", e.msg), 1;

    mc_teacher_ensemble ens;
    mc_teacher_ensemble_init(&ens);
    int rmax = 0;
    for (int k = 0; k < nt; k++) {
        if (add_teacher(&ens, teachers[k], &e)) return fprintf(stderr, "%s: %s\n", teachers[k], e.msg), 1;
        if (ens.teachers[k].image_size > rmax) rmax = ens.teachers[k].image_size;
    }
    mc_tokenizer *tok = mc_tokenizer_load(vocab, &e);
    if (!tok) return fprintf(stderr, "%s\n", e.msg), 1;
    mc_reinforce_opts o;
    mc_reinforce_opts_init(&o);
    snprintf(spec, sizeof spec, "%s", in);
    o.input = spec;
    o.out_dir = out;
    o.num_aug = N;
    o.bf16 = bf16;
    o.keep_images = keep;
    o.batch_images = batch;
    o.aug.size_w = o.aug.size_h = rmax;
    o.syn = K ? &syn : NULL;
    mc_reinforce_stats st;
    if (mc_reinforce_check_out_dir(out, &e) || mc_reinforce_run(&o, &ens, tok, &st, &e) < 0)
        return fprintf(stderr, "%s\n", e.msg), 1;
    double la[3] = {0};
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        if (fscanf(lf, "%lf %lf %lf", &la[0], &la[1], &la[2]) != 3) la[0] = -1;
        fclose(lf);
    }
    printf("teachers");
    for (int k = 0; k < nt; k++) printf(" %s", teachers[k]);
    printf(" (D = %d), %d augmentations, %d synthetic captions, %d samples, %d threads, load %.1f %.1f %.1f\n",
           ens.dim, N, K, S, omp_get_max_threads(), la[0], la[1], la[2]);
    printf("  %.1f s: %.3f samples/s (%.2f s per sample, %.2f augmented images/s)\n", st.seconds,
           st.samples_written / st.seconds, st.seconds / st.samples_written, st.images_embedded / st.seconds);
    printf("  %s%s: %.0f bytes per sample in the output shard (input images %.0f bytes per sample)\n",
           bf16 ? "bf16 pth.gz" : "f32 npz", keep ? " + images" : "", (double)st.bytes_written / st.samples_written,
           (double)image_bytes / S);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    mc_syn_free(&syn);
    mc_tokenizer_free(tok);
    mc_teacher_ensemble_free(&ens);
    mc_strlist_free(&files);
    return 0;
}
