/* AVX2 + FMA kernels (compiled with -mavx2 -mfma for this file only). Three GEMM tile shapes
 * in the 16 ymm registers, each call taking the one with the least padded work:
 *  - 6x16 (12 accumulators, 2 loads of B and 6 broadcasts of A per 12 FMAs): the default;
 *  - 4x24 (12 accumulators, 3 loads and 4 broadcasts per 12 FMAs): for N just above a
 *    multiple of 16 (a 20-token caption's Linear layers: 24 columns instead of 32) or M a
 *    multiple of 4 but not of 6 (cout = 64, 128: 6x16 pads them to 66, 132);
 *  - 8x8 (8 accumulators, one FMA chain per row: barely the 2 pipes x 4 cycles of FMA
 *    latency, and 9 loads per 8 FMAs): for a handful of columns (a 7-token caption after the
 *    causal exit: 8 columns instead of 16); its work counts 1.25x.
 * Measured (bench_blas shapes, best CPU time, 1 thread, the three interleaved): 20 tokens
 * 42-52 -> 53-66 GFLOP/s with 4x24, 7 tokens 34-36 -> 47-55 with 8x8; 6x16 stays the best
 * at 77 and 197 tokens and on the 1x1 convolutions whose N is a multiple of 16. */
#include "nn/kernels_common.h"

#if defined(__x86_64__) && defined(__GNUC__)
typedef float vf __attribute__((vector_size(32), aligned(4), may_alias));
typedef vf dvf;
#define DWV 8

#define VB 32
#define KC 256
#define NC 256
#include "nn/gelu.inc" /* before the GEMM instances: their epilogue calls it */

#define MR 6
#define NV 2
#define NAME(x) avx2_##x
#include "nn/gemm_tile.inc"
#undef MR
#undef NV
#undef NAME

#define MR 4
#define NV 3
#define NAME(x) avx2w_##x
#include "nn/gemm_tile.inc"
#undef MR
#undef NV
#undef NAME

#define MR 8
#define NV 1
#define NAME(x) avx2q_##x
#include "nn/gemm_tile.inc"
#undef MR
#undef NV
#undef NAME

#include "nn/dw_plane.inc"
#include "nn/fma_peak.inc"

/* The shape with the least padded work; on a tie the 6x16 one. */
static int gemm(const mc_gemm_args *g) {
    double d = avx2_padded(g->M, g->N), w = avx2w_padded(g->M, g->N), q = 1.25 * avx2q_padded(g->M, g->N);
    if (d <= w && d <= q) return avx2_gemm(g);
    return w <= q ? avx2w_gemm(g) : avx2q_gemm(g);
}

const mc_kernels mc_kernels_avx2 = {MC_ISA_AVX2, "avx2", gemm, dw_plane, gelu, gelu_grad, fma_chains, 8};
#endif
