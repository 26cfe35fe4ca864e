/* Low-precision tiles with AVX2 + FMA intrinsics (-mavx2 -mfma for this file only), for CPUs
 * without AVX512-BF16 / VNNI and under MC_ISA=avx2; the panel packing is lowp_pack.inc. Same
 * arithmetic as the other tiles (lowp.h), so the int8 sums are bit-identical to vpdpbusd's:
 *  - bf16: no bf16 arithmetic on AVX2, so the bf16 values are widened to f32 (a bf16 is the
 *    high half of its f32) and multiplied with FMA: the 8 weight rows of a depth chunk once per
 *    tile into an f32 scratch (broadcast from there), the panel's k pairs per load (shift /
 *    mask). 4 rows x 16 columns per pass: 8 ymm accumulators, 4 widened panel vectors, 2 weight
 *    broadcasts; 4 passes make the 8 x 32 tile.
 *  - int8: exact in int32 with vpmaddwd (s16 x s16 pair sums, no saturation; vpmaddubsw's u8 x s8
 *    pairs would overflow int16 at 255 x 127 x 2): the weight quads are sign-extended to int16
 *    once per tile, the panel's u8 quads zero-extended per load (vpmovzxbw: 4 columns x 4 depths),
 *    so lane 2c of an accumulator sums depths 0-1 of column c and lane 2c+1 depths 2-3; the two
 *    halves are added at the end. 4 rows x 8 columns per pass (8 accumulators), 8 passes. */
#include <math.h>
#include <string.h>

#include "nn/kernel_attr.h"
#include "nn/lowp.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define NAME(x) mc_lowp_##x##_avx2
#include "nn/lowp_pack.inc"

/* depth per chunk of widened weights (a multiple of MC_LP_KG): 8 rows x 256 in 8 KB (f32) */
#define KC 256

MC_HOT_KERNEL void mc_lowp_bf16_tile_avx2(float *acc, const uint16_t *w, int Kp, const uint16_t *b) {
    float ws[KC / 2][MC_LP_MR][2] __attribute__((aligned(32))); /* [k pair][row][k0, k1] */
    const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
    memset(acc, 0, sizeof(float) * MC_LP_MR * MC_LP_NR);
    for (int k0 = 0; k0 < Kp; k0 += KC) {
        int kc = Kp - k0 < KC ? Kp - k0 : KC, pairs = kc / 2;
        for (int r = 0; r < MC_LP_MR; r++) {
            const uint16_t *wr = w + (size_t)r * Kp + k0;
            for (int kk = 0; kk < pairs; kk++) {
                ws[kk][r][0] = mc_lowp_from_bf16(wr[2 * kk]);
                ws[kk][r][1] = mc_lowp_from_bf16(wr[2 * kk + 1]);
            }
        }
        const uint16_t *bc = b + (size_t)k0 * MC_LP_NR; /* [k pair][32 columns][2] */
        for (int r0 = 0; r0 < MC_LP_MR; r0 += 4)
            for (int c0 = 0; c0 < MC_LP_NR; c0 += 16) {
                __m256 a[4][2];
                for (int r = 0; r < 4; r++)
                    for (int j = 0; j < 2; j++) a[r][j] = _mm256_loadu_ps(acc + (r0 + r) * MC_LP_NR + c0 + 8 * j);
                for (int kk = 0; kk < pairs; kk++) {
                    const uint16_t *bk = bc + ((size_t)kk * MC_LP_NR + c0) * 2;
                    __m256i v0 = _mm256_loadu_si256((const __m256i *)bk), v1 = _mm256_loadu_si256((const __m256i *)(bk + 16));
                    __m256 e0 = _mm256_castsi256_ps(_mm256_slli_epi32(v0, 16)), o0 = _mm256_castsi256_ps(_mm256_and_si256(v0, hi));
                    __m256 e1 = _mm256_castsi256_ps(_mm256_slli_epi32(v1, 16)), o1 = _mm256_castsi256_ps(_mm256_and_si256(v1, hi));
#pragma GCC unroll 4
                    for (int r = 0; r < 4; r++) {
                        __m256 w0 = _mm256_broadcast_ss(&ws[kk][r0 + r][0]), w1 = _mm256_broadcast_ss(&ws[kk][r0 + r][1]);
                        a[r][0] = _mm256_fmadd_ps(w0, e0, a[r][0]);
                        a[r][1] = _mm256_fmadd_ps(w0, e1, a[r][1]);
                        a[r][0] = _mm256_fmadd_ps(w1, o0, a[r][0]);
                        a[r][1] = _mm256_fmadd_ps(w1, o1, a[r][1]);
                    }
                }
                for (int r = 0; r < 4; r++)
                    for (int j = 0; j < 2; j++) _mm256_storeu_ps(acc + (r0 + r) * MC_LP_NR + c0 + 8 * j, a[r][j]);
            }
    }
}

MC_HOT_KERNEL void mc_lowp_int8_tile_avx2(int32_t *acc, const int8_t *w, int Kp, const uint8_t *b) {
    int16_t ws[KC / 4][MC_LP_MR][4] __attribute__((aligned(32))); /* [k quad][row][4 depths] */
    int32_t part[MC_LP_MR][MC_LP_NR][2] __attribute__((aligned(32)));  /* [row][column][depths 0-1, 2-3] */
    memset(part, 0, sizeof part);
    for (int k0 = 0; k0 < Kp; k0 += KC) {
        int kc = Kp - k0 < KC ? Kp - k0 : KC, quads = kc / 4;
        for (int r = 0; r < MC_LP_MR; r++) {
            const int8_t *wr = w + (size_t)r * Kp + k0;
            for (int kq = 0; kq < quads; kq++)
                for (int t = 0; t < 4; t++) ws[kq][r][t] = wr[4 * kq + t];
        }
        const uint8_t *bc = b + (size_t)k0 * MC_LP_NR; /* [k quad][32 columns][4] */
        for (int r0 = 0; r0 < MC_LP_MR; r0 += 4)
            for (int c0 = 0; c0 < MC_LP_NR; c0 += 8) {
                __m256i a[4][2];
                for (int r = 0; r < 4; r++)
                    for (int j = 0; j < 2; j++) a[r][j] = _mm256_load_si256((const __m256i *)&part[r0 + r][c0 + 4 * j][0]);
                for (int kq = 0; kq < quads; kq++) {
                    const uint8_t *bk = bc + ((size_t)kq * MC_LP_NR + c0) * 4;
                    __m256i b0 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)bk));
                    __m256i b1 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(bk + 16)));
#pragma GCC unroll 4
                    for (int r = 0; r < 4; r++) {
                        int64_t q;
                        memcpy(&q, ws[kq][r0 + r], sizeof q);
                        __m256i wq = _mm256_set1_epi64x(q);
                        a[r][0] = _mm256_add_epi32(a[r][0], _mm256_madd_epi16(b0, wq));
                        a[r][1] = _mm256_add_epi32(a[r][1], _mm256_madd_epi16(b1, wq));
                    }
                }
                for (int r = 0; r < 4; r++)
                    for (int j = 0; j < 2; j++) _mm256_store_si256((__m256i *)&part[r0 + r][c0 + 4 * j][0], a[r][j]);
            }
    }
    for (int r = 0; r < MC_LP_MR; r++)
        for (int c = 0; c < MC_LP_NR; c++) acc[r * MC_LP_NR + c] = part[r][c][0] + part[r][c][1];
}
#endif
