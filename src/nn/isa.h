/* isa.h - the instruction set the compute kernels run with, chosen once at run time.
 *
 * Each kernel family (GEMM micro-kernel and drivers, depthwise convolution plane) is compiled
 * three times, in translation units of their own with per-file target flags
 * (kernels_portable.c, kernels_avx2.c, kernels_avx512.c): the rest of the library is built
 * for the baseline of the target (unless MC_NATIVE is set), so one binary runs everywhere
 * and uses AVX-512 where the CPU has it.
 *
 * Selection: the environment variable MC_ISA=portable|avx2|avx512 (read once, at the first
 * kernel call) or mc_isa_force(); otherwise the best the CPU supports
 * (__builtin_cpu_supports: avx512f+bw+vl > avx2+fma > portable).
 */
#ifndef MC_NN_ISA_H
#define MC_NN_ISA_H

#include <stdint.h>

#include "core/error.h"
#include "nn/kernels.h"

typedef enum mc_isa { MC_ISA_PORTABLE = 0, MC_ISA_AVX2 = 1, MC_ISA_AVX512 = 2, MC_ISA_COUNT } mc_isa;

/* Kernels of one instruction set. All are plain functions of their arguments. */
typedef struct mc_kernels {
    mc_isa isa;
    const char *name;
    /* the GEMM of kernels.h, threads from core/parallel.h; 0, or -1 when out of memory */
    int (*gemm)(const mc_gemm_args *g);
    /* one depthwise output plane from a phase-split padded scratch (see conv2d.c) */
    void (*dw_plane)(float *y, const float *ph, const float *w, float b0, int kh, int kw, int st, int Ho, int Wo,
                     int row_stride, const size_t *koff);
    /* y = GELU(x), exact erf form (in place ok) */
    void (*gelu)(float *y, const float *x, size_t n);
    /* dx (=, or += with acc) = dy * GELU'(x), exact erf form (dx may be dy) */
    void (*gelu_grad)(float *dx, const float *dy, const float *x, size_t n, int acc);
    /* 12 * iters multiply-adds on vectors of vec_floats lanes (the FMA peak probe) */
    float (*fma_chains)(long iters);
    int vec_floats;
} mc_kernels;

/* Best instruction set this CPU supports. */
mc_isa mc_isa_detect(void);
/* Whether this build has the kernels of `isa` and the CPU can run them. */
int mc_isa_supported(mc_isa isa);
/* The kernels in use (selected on first call: MC_ISA or mc_isa_detect()). */
const mc_kernels *mc_kernels_get(void);
/* Forces an instruction set; MC_E_UNSUPPORTED (with a message) when the CPU or build lacks it. */
int mc_isa_force(mc_isa isa, mc_err *e);
/* "portable", "avx2", "avx512"; mc_isa_parse returns -1 for an unknown name. */
const char *mc_isa_name(mc_isa isa);
int mc_isa_parse(const char *name);

/* Multiply-accumulates issued by the kernels (GEMM, convolutions, attention) from the calling
 * thread, counted for the benchmark's MACs per inference. */
void mc_macs_add(uint64_t n);
uint64_t mc_macs_get(void);

#endif
