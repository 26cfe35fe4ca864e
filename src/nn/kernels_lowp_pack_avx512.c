/* Activation panel packing and the tile epilogue for the low-precision path with AVX-512F/BW/VL only (the flags of
 * kernels_avx512.c): used under the avx512 instruction set whether or not the CPU has
 * AVX512-BF16 / VNNI. */
#include <math.h>
#include <string.h>

#include "core/parallel.h"
#include "nn/kernel_attr.h"
#include "nn/lowp.h"

#if defined(__x86_64__) && defined(__GNUC__)
#ifdef __AVX2__
#include <immintrin.h>
#endif
#define NAME(x) mc_lowp_##x##_avx512
#include "nn/lowp_pack.inc"
#include "nn/lowp_finish.inc"
#endif
