/* bench_blas - our SGEMM (nn/gemm.h) against a CBLAS (OpenBLAS from Debian, when CMake finds
 * it) on the matrix products of mobileclip_s0's image tower (1x1 convolutions W[M,K] x X[K,N],
 * N = H*W) and of mobileclip_b's ViT and the text towers (Linear layers X[T,K] x W[N,K]^T),
 * same threads, interleaved runs, median of R. Both sides get the same inputs and the same
 * layout; the output is checked to agree. GFLOP/s from the wall time and, for a shared machine,
 * from the process CPU time (all threads; a thread waiting for a core costs wall time only,
 * while spinning threads, OpenBLAS's among them, add CPU time), and the best CPU time of the R
 * runs (on a loaded machine other jobs' cache and memory traffic slow some runs down; the
 * best is the steadiest figure of the kernel itself). Benchmark only: never a build or test
 * dependency.
 *
 *   bench_blas [--threads N] [--runs R]
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench_util.h"
#include "core/parallel.h"
#include "nn/gemm.h"
#include "nn/isa.h"

#ifdef MC_HAVE_CBLAS
#include <cblas.h>
#endif

typedef struct shape {
    const char *what;
    int linear; /* 0: C[M,N] = W[M,K] X[K,N]; 1: C[M,N] = X[M,K] W[N,K]^T */
    int M, N, K;
} shape;

static const shape shapes[] = {
    {"s0 stage 1 fc1 (1x1 conv)", 0, 192, 4096, 64},   {"s0 stage 1 fc2", 0, 64, 4096, 192},
    {"s0 stage 2 fc1", 0, 384, 1024, 128},            {"s0 stage 2 fc2", 0, 128, 1024, 384},
    {"s0 stage 3 fc1", 0, 768, 256, 256},             {"s0 stage 3 fc2", 0, 256, 256, 768},
    {"s0 stage 4 fc1", 0, 1536, 64, 512},             {"s0 stage 4 fc2", 0, 512, 64, 1536},
    {"b ViT qkv (197 tokens)", 1, 197, 2304, 768},    {"b ViT fc1", 1, 197, 3072, 768},
    {"b ViT fc2", 1, 197, 768, 3072},                 {"text qkv (77 tokens)", 1, 77, 1536, 512},
    {"text fc1", 1, 77, 2048, 512},                   {"text fc2", 1, 77, 512, 2048},
    {"text qkv (20 tokens)", 1, 20, 1536, 512},       {"text fc1 (20)", 1, 20, 2048, 512},
    {"text fc2 (20)", 1, 20, 512, 2048},              {"text qkv (7 tokens)", 1, 7, 1536, 512},
};

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static float *fill(size_t n, uint64_t seed) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; p && i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)((seed >> 40) * (1.0 / 16777216.0) - 0.5);
    }
    return p;
}

static void ours(const shape *s, const float *A, const float *B, float *C) {
    if (s->linear) mc_sgemm(0, 1, s->M, s->N, s->K, 1.f, A, s->K, B, s->K, 0.f, C, s->N);
    else mc_sgemm(0, 0, s->M, s->N, s->K, 1.f, A, s->K, B, s->N, 0.f, C, s->N);
}

#ifdef MC_HAVE_CBLAS
static void blas(const shape *s, const float *A, const float *B, float *C) {
    if (s->linear)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->M, s->N, s->K, 1.f, A, s->K, B, s->K, 0.f, C, s->N);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->M, s->N, s->K, 1.f, A, s->K, B, s->N, 0.f, C, s->N);
}
#endif

int main(int argc, char **argv) {
    int threads = 2, runs = 15;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_blas [--threads N] [--runs R]\n");
            return 2;
        }
    }
    if (threads < 1 || runs < 1 || runs > 1000) {
        fprintf(stderr, "bench_blas: --threads and --runs must be positive (runs at most 1000)\n");
        return 2;
    }
    mc_threads_set(threads);
#ifdef MC_HAVE_CBLAS
    openblas_set_num_threads(threads);
    printf("threads %d, ours with %s kernels, OpenBLAS %s; GFLOP/s, median of %d interleaved runs\n", threads,
           mc_kernels_get()->name, openblas_get_config(), runs);
#else
    printf("threads %d, ours with %s kernels; built without a CBLAS (install libopenblas-dev and reconfigure)\n",
           threads, mc_kernels_get()->name);
#endif
    printf("%-28s %5s %5s %5s | wall: %6s %6s %9s | cpu: %6s %6s %9s | best cpu: %6s %6s %6s\n", "product", "M", "N", "K",
           "ours", "blas", "ours/blas", "ours", "blas", "ours/blas", "ours", "blas", "probe");
    /* the per-thread FMA probe of the bench (12 chains), best CPU time of 5: the ceiling the
     * best-CPU column is compared with */
    const mc_kernels *kern = mc_kernels_get();
    double probe = 0;
    for (int r = 0; r < 5; r++) {
        double c = cpu_now();
        volatile float sink = kern->fma_chains(2000000);
        (void)sink;
        c = cpu_now() - c;
        double gf = 12.0 * 2000000 * kern->vec_floats * 2 / fmax(c, 1e-9) * 1e-9;
        if (gf > probe) probe = gf;
    }
    printf("FMA probe: %.1f GFLOP/s per thread (best CPU time of 5)\n", probe);
    double *t0 = malloc(sizeof(double) * runs), *t1 = malloc(sizeof(double) * runs);
    double *c0 = malloc(sizeof(double) * runs), *c1 = malloc(sizeof(double) * runs);
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        const shape *s = &shapes[si];
        float *A = fill((size_t)s->M * s->K, 1 + si), *B = fill((size_t)s->K * s->N, 100 + si);
        float *C0 = malloc(sizeof(float) * s->M * s->N), *C1 = malloc(sizeof(float) * s->M * s->N);
        if (!A || !B || !C0 || !C1 || !t0 || !t1 || !c0 || !c1) {
            fprintf(stderr, "bench_blas: out of memory\n");
            return 1;
        }
        double flop = 2.0 * s->M * s->N * s->K, g_ours, g_blas = 0, h_ours, h_blas = 0, b_ours, b_blas = 0;
        ours(s, A, B, C0);
#ifdef MC_HAVE_CBLAS
        blas(s, A, B, C1);
        double worst = 0;
        for (size_t i = 0; i < (size_t)s->M * s->N; i++) worst = fmax(worst, fabs(C0[i] - C1[i]));
        if (worst > 1e-3) {
            fprintf(stderr, "bench_blas: %s: results differ by %g\n", s->what, worst);
            return 1;
        }
#endif
        for (int r = 0; r < runs; r++) { /* interleaved: a change of machine load hits both */
            double a = now(), c = cpu_now();
            ours(s, A, B, C0);
            t0[r] = now() - a;
            c0[r] = cpu_now() - c;
#ifdef MC_HAVE_CBLAS
            a = now(), c = cpu_now();
            blas(s, A, B, C1);
            t1[r] = now() - a;
            c1[r] = cpu_now() - c;
#endif
        }
        qsort(t0, (size_t)runs, sizeof *t0, cmp_double);
        qsort(c0, (size_t)runs, sizeof *c0, cmp_double);
        g_ours = flop / t0[runs / 2] * 1e-9;
        h_ours = flop / fmax(c0[runs / 2], 1e-9) * 1e-9;
        b_ours = flop / fmax(c0[0], 1e-9) * 1e-9;
#ifdef MC_HAVE_CBLAS
        qsort(t1, (size_t)runs, sizeof *t1, cmp_double);
        qsort(c1, (size_t)runs, sizeof *c1, cmp_double);
        g_blas = flop / t1[runs / 2] * 1e-9;
        h_blas = flop / fmax(c1[runs / 2], 1e-9) * 1e-9;
        b_blas = flop / fmax(c1[0], 1e-9) * 1e-9;
#endif
        printf("%-28s %5d %5d %5d | %12.1f %6.1f %8.2fx | %11.1f %6.1f %8.2fx | %16.1f %6.1f %5.0f%%\n", s->what, s->M,
               s->N, s->K, g_ours, g_blas, g_blas > 0 ? g_ours / g_blas : 0.0, h_ours, h_blas,
               h_blas > 0 ? h_ours / h_blas : 0.0, b_ours, b_blas, 100.0 * b_ours / probe);
        free(A); free(B); free(C0); free(C1);
    }
    free(t0);
    free(t1);
    free(c0);
    free(c1);
    return 0;
}
