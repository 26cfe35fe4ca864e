/* Low-precision tiles for any CPU (baseline flags of the target): lowp_tile.inc. */
#include <math.h>
#include <string.h>

#include "core/parallel.h"
#include "nn/kernel_attr.h"
#include "nn/lowp.h"

#ifdef __AVX2__
#include <immintrin.h>
#endif
#define NAME(x) mc_lowp_##x##_portable
#include "nn/lowp_tile.inc"
#include "nn/lowp_pack.inc"
#include "nn/lowp_finish.inc"
