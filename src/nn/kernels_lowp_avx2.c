/* Low-precision tiles with AVX2 + FMA intrinsics (-mavx2 -mfma for this file only), for CPUs
 * without AVX512-VNNI and under MC_ISA=avx2; the panel packing is lowp_pack.inc, the epilogue
 * lowp_finish.inc. (bf16 has no tile here: without AVX512-BF16 it runs the f32 kernels, see
 * mc_lowp_kernels_get.)
 * int8 is exact in int32 with vpmaddwd (s16 x s16 pair sums, no saturation; vpmaddubsw's u8 x s8
 * pairs would overflow int16 at 255 x 127 x 2 unless activations or weights lost a bit), so its
 * sums are bit-identical to vpdpbusd's: the weight quads are sign-extended to int16 once per tile
 * and depth chunk, the panel's u8 quads zero-extended per load (vpmovzxbw: 4 columns x 4
 * depths), so lane 2c of an accumulator sums depths 0-1 of column c and lane 2c+1 depths 2-3;
 * the two halves are added at the end. 4 rows x 8 columns per pass (8 accumulators). */
#include <math.h>
#include <string.h>

#include "core/parallel.h"
#include "nn/kernel_attr.h"
#include "nn/lowp.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define NAME(x) mc_lowp_##x##_avx2
#define MC_LP_NO_BF16 1
#include "nn/lowp_pack.inc"
#include "nn/lowp_finish.inc"

/* depth per chunk of widened weights (a multiple of MC_LP_KG): 8 rows x 256 in 4 KB */
#define KC 256

/* x[r] holds 4 64-bit groups (g0..g3) of row r0 + r; stores group g of the 4 rows as one 32-byte
 * vector at d + g * stride (a 4 x 4 transpose of 64-bit elements): the widened weights of a depth
 * step for 4 rows side by side, broadcast from there by the tile. */
static inline void store_groups(void *d, size_t stride, __m256i x0, __m256i x1, __m256i x2, __m256i x3) {
    __m256i t0 = _mm256_unpacklo_epi64(x0, x1), t1 = _mm256_unpackhi_epi64(x0, x1);
    __m256i t2 = _mm256_unpacklo_epi64(x2, x3), t3 = _mm256_unpackhi_epi64(x2, x3);
    char *p = d;
    _mm256_store_si256((__m256i *)p, _mm256_permute2x128_si256(t0, t2, 0x20));
    _mm256_store_si256((__m256i *)(p + stride), _mm256_permute2x128_si256(t1, t3, 0x20));
    _mm256_store_si256((__m256i *)(p + 2 * stride), _mm256_permute2x128_si256(t0, t2, 0x31));
    _mm256_store_si256((__m256i *)(p + 3 * stride), _mm256_permute2x128_si256(t1, t3, 0x31));
}

MC_HOT_KERNEL void mc_lowp_int8_tile_avx2(int32_t *acc, const int8_t *w, int Kp, const uint8_t *b, int nc) {
    int16_t ws[KC / 4][MC_LP_MR][4] __attribute__((aligned(32))); /* [k quad][row][4 depths] */
    int32_t part[MC_LP_MR][MC_LP_NR][2] __attribute__((aligned(32)));  /* [row][column][depths 0-1, 2-3] */
    memset(part, 0, sizeof part);
    for (int k0 = 0; k0 < Kp; k0 += KC) {
        int kc = Kp - k0 < KC ? Kp - k0 : KC, quads = kc / 4;
        int kv = quads / 4 * 4; /* 4 quads (16 bytes) of 4 rows per step, then the tail */
        for (int r0 = 0; r0 < MC_LP_MR; r0 += 4)
            for (int kq = 0; kq < kv; kq += 4) {
                __m256i x[4];
                for (int r = 0; r < 4; r++)
                    x[r] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + (size_t)(r0 + r) * Kp + k0 + 4 * kq)));
                store_groups(&ws[kq][r0][0], sizeof ws[0], x[0], x[1], x[2], x[3]);
            }
        for (int r = 0; r < MC_LP_MR; r++) {
            const int8_t *wr = w + (size_t)r * Kp + k0;
            for (int kq = kv; kq < quads; kq++)
                for (int t = 0; t < 4; t++) ws[kq][r][t] = wr[4 * kq + t];
        }
        const uint8_t *bc = b + (size_t)k0 * MC_LP_NR; /* [k quad][32 columns][4] */
        for (int r0 = 0; r0 < MC_LP_MR; r0 += 4)
            for (int c0 = 0; c0 < nc; c0 += 8) { /* a short panel (77 tokens: 13 of 32) skips passes */
                int32_t *o = &part[r0][c0][0];
                const int R = 2 * MC_LP_NR; /* int32 per row of part */
                __m256i a00 = _mm256_load_si256((const __m256i *)o), a01 = _mm256_load_si256((const __m256i *)(o + 8));
                __m256i a10 = _mm256_load_si256((const __m256i *)(o + R)), a11 = _mm256_load_si256((const __m256i *)(o + R + 8));
                __m256i a20 = _mm256_load_si256((const __m256i *)(o + 2 * R)),
                        a21 = _mm256_load_si256((const __m256i *)(o + 2 * R + 8));
                __m256i a30 = _mm256_load_si256((const __m256i *)(o + 3 * R)),
                        a31 = _mm256_load_si256((const __m256i *)(o + 3 * R + 8));
                const uint8_t *bk = bc + (size_t)c0 * 4;
                const int16_t *wk = &ws[0][r0][0];
                for (int kq = 0; kq < quads; kq++, bk += 4 * MC_LP_NR, wk += 4 * MC_LP_MR) {
                    __m256i b0 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)bk));
                    __m256i b1 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(bk + 16)));
                    __m256i w;
                    int64_t q;
#define MADD2(r)                                                                                                       \
    memcpy(&q, wk + 4 * (r), sizeof q);                                                                                \
    w = _mm256_set1_epi64x(q);                                                                                         \
    a##r##0 = _mm256_add_epi32(a##r##0, _mm256_madd_epi16(b0, w));                                                     \
    a##r##1 = _mm256_add_epi32(a##r##1, _mm256_madd_epi16(b1, w));
                    MADD2(0) MADD2(1) MADD2(2) MADD2(3)
#undef MADD2
                }
                _mm256_store_si256((__m256i *)o, a00), _mm256_store_si256((__m256i *)(o + 8), a01);
                _mm256_store_si256((__m256i *)(o + R), a10), _mm256_store_si256((__m256i *)(o + R + 8), a11);
                _mm256_store_si256((__m256i *)(o + 2 * R), a20), _mm256_store_si256((__m256i *)(o + 2 * R + 8), a21);
                _mm256_store_si256((__m256i *)(o + 3 * R), a30), _mm256_store_si256((__m256i *)(o + 3 * R + 8), a31);
            }
    }
    for (int r = 0; r < MC_LP_MR; r++)
        for (int c = 0; c < MC_LP_NR; c++) acc[r * MC_LP_NR + c] = part[r][c][0] + part[r][c][1];
}
#endif
