/* Kernels for any CPU: 16-byte vectors (SSE2 on x86-64, NEON on arm64, scalar code
 * elsewhere), 6x8 tiles. Built with the baseline flags of the target. */
#include "nn/kernels_common.h"

typedef float vf __attribute__((vector_size(16), aligned(4), may_alias));
typedef vf dvf;
#define DWV 4

#define VB 16
#define MR 6
#define NV 2
#define KC 256
#define NC 256
#define NAME(x) portable_##x
#include "nn/gelu.inc"
#include "nn/gemm_tile.inc"
#include "nn/dw_plane.inc"
#include "nn/fma_peak.inc"

const mc_kernels mc_kernels_portable = {MC_ISA_PORTABLE, "portable", portable_gemm, dw_plane, gelu, gelu_grad, fma_chains, 4};
