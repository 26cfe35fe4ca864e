/* AVX512-BF16 and AVX512-VNNI tiles (-mavx512f -mavx512bw -mavx512vl -mavx512bf16
 * -mavx512vnni for this file only; the tiles are used only when the CPU reports the extension, see
 * mc_lowp_kernels_get; the AVX-512 panel packing is kernels_lowp_pack_avx512.c). One tile is
 * 8 rows x 32 columns: 16 zmm accumulators, two panel loads and 8 broadcasts of a weight pair (bf16) or quad (int8) per step.
 *   vdpbf16ps acc, a, b: acc[c] += a[2c] b[2c] + a[2c+1] b[2c+1]   (f32 accumulation)
 *   vpdpbusd  acc, u, s: acc[c] += sum_t u[4c+t] s[4c+t]            (u8 x s8, exact in int32) */
#include <string.h>

#include "nn/kernel_attr.h"
#include "nn/lowp.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

static inline int32_t load_i32(const void *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* A panel with at most 16 real columns (the last of 77 tokens: 13) runs only the first half of
 * the tile: 8 accumulators, one panel load per step; the other half of acc is stored as 0. */
MC_HOT_KERNEL static void bf16_tile_half_avx512(float *acc, const uint16_t *w, int Kp, const uint16_t *b) {
    __m512 c[MC_LP_MR];
    for (int r = 0; r < MC_LP_MR; r++) c[r] = _mm512_setzero_ps();
    for (int kk = 0; kk < Kp / 2; kk++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + (size_t)kk * 2 * MC_LP_NR);
#pragma GCC unroll 8
        for (int r = 0; r < MC_LP_MR; r++)
            c[r] = _mm512_dpbf16_ps(c[r], (__m512bh)_mm512_set1_epi32(load_i32(w + (size_t)r * Kp + 2 * kk)), b0);
    }
    for (int r = 0; r < MC_LP_MR; r++) {
        _mm512_storeu_ps(acc + r * MC_LP_NR, c[r]);
        _mm512_storeu_ps(acc + r * MC_LP_NR + 16, _mm512_setzero_ps());
    }
}

MC_HOT_KERNEL static void int8_tile_half_avx512(int32_t *acc, const int8_t *w, int Kp, const uint8_t *b) {
    __m512i c[MC_LP_MR];
    for (int r = 0; r < MC_LP_MR; r++) c[r] = _mm512_setzero_si512();
    for (int kq = 0; kq < Kp / 4; kq++) {
        __m512i b0 = _mm512_loadu_si512(b + (size_t)kq * 4 * MC_LP_NR);
#pragma GCC unroll 8
        for (int r = 0; r < MC_LP_MR; r++)
            c[r] = _mm512_dpbusd_epi32(c[r], b0, _mm512_set1_epi32(load_i32(w + (size_t)r * Kp + 4 * kq)));
    }
    for (int r = 0; r < MC_LP_MR; r++) {
        _mm512_storeu_si512(acc + r * MC_LP_NR, c[r]);
        _mm512_storeu_si512(acc + r * MC_LP_NR + 16, _mm512_setzero_si512());
    }
}

MC_HOT_KERNEL void mc_lowp_bf16_tile_avx512(float *acc, const uint16_t *w, int Kp, const uint16_t *b, int nc) {
    if (nc <= 16) {
        bf16_tile_half_avx512(acc, w, Kp, b);
        return;
    }
    __m512 c[MC_LP_MR][2];
    for (int r = 0; r < MC_LP_MR; r++) c[r][0] = c[r][1] = _mm512_setzero_ps();
    for (int kk = 0; kk < Kp / 2; kk++) {
        const uint16_t *bk = b + (size_t)kk * 2 * MC_LP_NR;
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(bk), b1 = (__m512bh)_mm512_loadu_si512(bk + 32);
#pragma GCC unroll 8
        for (int r = 0; r < MC_LP_MR; r++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32(load_i32(w + (size_t)r * Kp + 2 * kk));
            c[r][0] = _mm512_dpbf16_ps(c[r][0], a, b0);
            c[r][1] = _mm512_dpbf16_ps(c[r][1], a, b1);
        }
    }
    for (int r = 0; r < MC_LP_MR; r++) {
        _mm512_storeu_ps(acc + r * MC_LP_NR, c[r][0]);
        _mm512_storeu_ps(acc + r * MC_LP_NR + 16, c[r][1]);
    }
}

MC_HOT_KERNEL void mc_lowp_int8_tile_avx512(int32_t *acc, const int8_t *w, int Kp, const uint8_t *b, int nc) {
    if (nc <= 16) {
        int8_tile_half_avx512(acc, w, Kp, b);
        return;
    }
    __m512i c[MC_LP_MR][2];
    for (int r = 0; r < MC_LP_MR; r++) c[r][0] = c[r][1] = _mm512_setzero_si512();
    for (int kq = 0; kq < Kp / 4; kq++) {
        const uint8_t *bk = b + (size_t)kq * 4 * MC_LP_NR;
        __m512i b0 = _mm512_loadu_si512(bk), b1 = _mm512_loadu_si512(bk + 64);
#pragma GCC unroll 8
        for (int r = 0; r < MC_LP_MR; r++) {
            __m512i a = _mm512_set1_epi32(load_i32(w + (size_t)r * Kp + 4 * kq));
            c[r][0] = _mm512_dpbusd_epi32(c[r][0], b0, a);
            c[r][1] = _mm512_dpbusd_epi32(c[r][1], b1, a);
        }
    }
    for (int r = 0; r < MC_LP_MR; r++) {
        _mm512_storeu_si512(acc + r * MC_LP_NR, c[r][0]);
        _mm512_storeu_si512(acc + r * MC_LP_NR + 16, c[r][1]);
    }
}
#endif
