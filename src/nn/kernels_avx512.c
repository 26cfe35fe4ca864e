/* AVX-512 kernels (-mavx512f -mavx512bw -mavx512vl -mfma for this file only). Five tile
 * shapes: 6x64 (24 zmm accumulators) and 8x32 in zmm, 8x16, 4x24 and 8x8 in ymm (less padding
 * when N is small, e.g. the 77 tokens of a caption: 80 columns instead of 96 or 128, or the 20
 * of a causal caption: 24 instead of 32); each call takes the shape with the least padded work.
 * On cores that split 512-bit FMAs in two halves (Zen 4) ymm tiles lose nothing: measured
 * there, the zmm and ymm tiles of the same padding run within noise of each other (docs/
 * BENCHMARKS.md, branch avx512), so the choice needs no CPU-specific rule. At most 8 rows of A
 * per tile: A is read in place, and more row streams than L1 ways alias when the row stride is
 * a multiple of 4 KB. Depthwise planes use 8-float vectors (feature maps 8 to 64 wide). */
#include "nn/kernels_common.h"

#if defined(__x86_64__) && defined(__GNUC__)
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

/* The shape with the least padded work; on a tie the first in the order 6x64, 8x32, 8x16,
 * 4x24, 8x8 (wider first: fewer loads per FMA). The 8x8 tile has only 8 accumulators (one FMA
 * chain per row, barely enough to cover the FMA latency) and one B load per 8 FMAs: its work
 * counts 1.2x (measured on ViT-B's 197-token Linear layers: 8x16 ran 69-82 -> 75-92 GFLOP/s
 * per core instead of 8x8's 200 columns). */
static int gemm(const mc_gemm_args *g) {
    double w = avx512w_padded(g->M, g->N), n = avx512n_padded(g->M, g->N), y = avx512y_padded(g->M, g->N),
           t = avx512t_padded(g->M, g->N), q = 1.2 * avx512q_padded(g->M, g->N);
    if (w <= n && w <= y && w <= t && w <= q) return avx512w_gemm(g);
    if (n <= y && n <= t && n <= q) return avx512n_gemm(g);
    if (y <= t && y <= q) return avx512y_gemm(g);
    return t <= q ? avx512t_gemm(g) : avx512q_gemm(g);
}

const mc_kernels mc_kernels_avx512 = {MC_ISA_AVX512, "avx512", gemm, dw_plane, gelu, gelu_grad, fma_chains, 16};
#endif
