/* Low-precision tiles compiled with -mavx2 -mfma (lowp_tile.inc): the bf16 and int8 paths on
 * CPUs without AVX512-BF16 / VNNI, and under MC_ISA=avx2. */
#include <math.h>
#include <string.h>

#include "nn/kernel_attr.h"
#include "nn/lowp.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define NAME(x) mc_lowp_##x##_avx2
#include "nn/lowp_tile.inc"
#include "nn/lowp_pack.inc"
#endif
