/* AVX2 + FMA kernels (compiled with -mavx2 -mfma for this file only): 6x16 tiles, 12 ymm
 * accumulators. */
#include "nn/kernels_common.h"

#if defined(__x86_64__) && defined(__GNUC__)
typedef float vf __attribute__((vector_size(32), aligned(4), may_alias));
typedef vf dvf;
#define DWV 8

#define VB 32
#define MR 6
#define NV 2
#define KC 256
#define NC 256
#define NAME(x) avx2_##x
#include "nn/gelu.inc"
#include "nn/gemm_tile.inc"
#include "nn/dw_plane.inc"
#include "nn/fma_peak.inc"

const mc_kernels mc_kernels_avx2 = {MC_ISA_AVX2, "avx2", avx2_gemm, dw_plane, gelu, fma_chains, 8};
#endif
