/* AVX-512 kernels (-mavx512f -mavx512bw -mavx512vl -mfma for this file only). Five tile
 * shapes: 6x64 (24 zmm accumulators) and 8x32 in zmm, 8x16, 4x24 and 8x8 in ymm (less padding
 * when N is small, e.g. the 77 tokens of a caption: 80 columns instead of 96 or 128, or the 20
 * of a causal caption: 24 instead of 32); each call takes the shape with the least padded work.
 * On cores that split 512-bit FMAs in two halves (Zen 4) ymm tiles lose nothing: measured
 * there, the zmm and ymm tiles of the same padding run within noise of each other (docs/
 * BENCHMARKS.md, branch avx512); on cores with full-width 512-bit FMA units (Intel, Zen 5) a
 * ymm FMA does half the work of a zmm one, and the choice weighs that (ymm_cost). At most 8
 * rows of A per tile: A is read in place, and more row streams than L1 ways alias when the row
 * stride is a multiple of 4 KB. Depthwise planes use 8-float vectors (feature maps 8 to 64 wide). */
#include "nn/kernels_common.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <stdatomic.h>

typedef float vf512 __attribute__((vector_size(64), aligned(4), may_alias));
typedef float vf256 __attribute__((vector_size(32), aligned(4), may_alias));
typedef vf256 dvf;
#define DWV 8

#define KC 256
#define NC 256

#include "nn/gelu.inc" /* before the GEMM instances: their epilogue calls it */

#define vf vf512
#define VB 64
#define MR 6
#define NV 4
#define NAME(x) avx512w_##x
#include "nn/gemm_tile.inc"
#undef MR
#undef NV
#undef NAME

#define MR 8
#define NV 2
#define NAME(x) avx512n_##x
#include "nn/gemm_tile.inc"
#undef MR
#undef NV
#undef NAME
#undef VB
#undef vf

/* 8x16 in ymm registers: for N just above a multiple of 16 */
#define vf vf256
#define VB 32
#define MR 8
#define NV 2
#define NAME(x) avx512y_##x
#include "nn/gemm_tile.inc"
#undef NV
#undef NAME

/* 8x8 in ymm: for a handful of columns (a short caption's tokens after the causal exit) */
#define NV 1
#define NAME(x) avx512q_##x
#include "nn/gemm_tile.inc"
#undef MR
#undef NV
#undef NAME

/* 4x24 in ymm (12 accumulators, the AVX2 file's shape): for N just above a multiple of 16, a
 * 20-token caption's Linear layers (24 columns instead of 32: 63-70 -> 82-88 GFLOP/s per core) */
#define MR 4
#define NV 3
#define NAME(x) avx512t_##x
#include "nn/gemm_tile.inc"

#include "nn/dw_plane.inc"
#undef vf
#define vf vf512
#include "nn/fma_peak.inc"

/* The cost of a multiply-add in a ymm tile against one in a zmm tile: 1 where the core splits a
 * 512-bit FMA into two 256-bit halves (AMD before Zen 5: measured on Zen 4, zmm and ymm tiles of
 * the same padding run alike), 2 where it has full-width 512-bit units (Intel's AVX-512 cores,
 * AMD family 1Ah): measured on an Ice Lake Xeon, the FMA probe's zmm chains run 1.7-2.2x its ymm
 * ones, and the 8x16 ymm tile that the 1:1 rule chose for ViT-B's 197 tokens ran 55 GFLOP/s per
 * core against the 8x32 zmm tile's 69 (docs/BENCHMARKS.md, session 13). From CPUID: a property
 * of the CPU, the same on every call and in every thread (races store the same value). */
static double ymm_cost(void) {
    static _Atomic int cached; /* 0: not read yet, else 1 or 2 */
    int r = atomic_load_explicit(&cached, memory_order_relaxed);
    if (!r) {
        unsigned a, b, c, d, family = 0;
        int amd = __get_cpuid(0, &a, &b, &c, &d) && b == 0x68747541u; /* "AuthenticAMD" */
        if (__get_cpuid(1, &a, &b, &c, &d)) { /* the extended family counts only under base family 15 */
            family = (a >> 8) & 15;
            if (family == 15) family += (a >> 20) & 255;
        }
        r = amd && family < 0x1a ? 1 : 2;
        atomic_store_explicit(&cached, r, memory_order_relaxed);
    }
    return r;
}

/* The shape with the least padded work, ymm tiles' work weighed by ymm_cost; on a tie the
 * first in the order 6x64, 8x32, 8x16, 4x24, 8x8 (wider first: fewer loads per FMA). The 8x8
 * tile has only 8 accumulators (one FMA chain per row, barely enough to cover the FMA latency)
 * and one B load per 8 FMAs: its work counts 1.2x (measured on ViT-B's 197-token Linear
 * layers on Zen 4: 8x16 ran 69-82 -> 75-92 GFLOP/s per core instead of 8x8's 200 columns). */
static int gemm(const mc_gemm_args *g) {
    double r = ymm_cost();
    double w = avx512w_padded(g->M, g->N), n = avx512n_padded(g->M, g->N), y = r * avx512y_padded(g->M, g->N),
           t = r * avx512t_padded(g->M, g->N), q = r * 1.2 * avx512q_padded(g->M, g->N);
    if (w <= n && w <= y && w <= t && w <= q) return avx512w_gemm(g);
    if (n <= y && n <= t && n <= q) return avx512n_gemm(g);
    if (y <= t && y <= q) return avx512y_gemm(g);
    return t <= q ? avx512t_gemm(g) : avx512q_gemm(g);
}

const mc_kernels mc_kernels_avx512 = {MC_ISA_AVX512, "avx512", gemm, dw_plane, gelu, gelu_grad, fma_chains, 16};
#endif
