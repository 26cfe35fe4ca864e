/* lowp.h - the low-precision inference path: bfloat16 and int8 GEMMs over weights packed once.
 *
 * Opt-in per model (mobileclip_params.precision, `--precision`); f32 stays the default and is
 * untouched (its GEMMs never enter this path). What changes, and only in the inference plan:
 *  - every weight of a convolution or Linear layer that the folded forward runs as a GEMM
 *    (mc_sgemm_bias: 1x1 / im2col convolutions, nn.Linear) gets a packed copy, made once when
 *    the plan is built: bf16 rows (round to nearest even), or int8 rows with one symmetric
 *    scale per output channel (q = round(w / s), s = max|w| / 127) and the row sum of q;
 *  - the activation operand of those GEMMs is rounded to bf16, or quantized to 8 bits per column
 *    of the GEMM (one pixel or token: dynamic, asymmetric, u = round(x / s) + z in [0, 255] over
 *    the column's range) while it is packed;
 *  - products are accumulated in f32 (bf16) or exactly in int32 (int8), then scaled, biased and
 *    stored as f32. Depthwise convolutions, normalisation, softmax, attention, GELU and the
 *    projection heads (x @ P) stay f32: they hold little of the work and most of the error;
 *    so do the text transformer's q|k|v projections (models/clip_lowp.c), measured: their
 *    rounding feeds the softmax, and the 12-layer text transformer's caption embeddings fell
 *    to cosine 0.997 (bf16) / 0.983 (int8) with them packed, 0.9996 / 0.995 without; and its
 *    first layer's attention output projection (int8 captions 0.9954 -> 0.9985);
 *  - int8: a weight whose quantization error ||W - s q|| / ||W|| exceeds 1% is not packed
 *    (mc_lowp_plan_pack; MCi's square 1x1 convolutions with a folded identity).
 *
 * Which weights: mc_clip_lowp_build (models/clip_lowp.c) runs the folded forward once in
 * recording mode; each GEMM whose weight is the A operand (gemm.c after its normalisation)
 * records (pointer, rows, depth). Later GEMMs find their packed weight by pointer (a row
 * range of a recorded weight too, e.g. the k|v rows of a fused qkv weight); a GEMM with no
 * packed weight runs in f32 (always correct, only slower).
 *
 * Kernels: AVX512-BF16 (vdpbf16ps) and AVX512-VNNI (vpdpbusd) where the CPU has them and the
 * active instruction set (nn/isa.h, MC_ISA) is avx512. Without them (avx2): int8 runs exact
 * vpmaddwd tiles for GEMMs of depth >= 256 and the f32 kernels below, bf16 the f32 kernels on
 * the f32 weights (no bf16 unit: widening was slower than f32; nothing is packed). The
 * baseline set runs both in plain C (kernels_lowp_{portable,avx2,avx512}.c).
 *
 * Scope: the plan in use is the calling thread's (mc_lowp_scope_begin/end around a forward,
 * like the thread count of core/parallel.h), so contexts of different precisions can run side
 * by side and nothing outside a scope is affected.
 */
#ifndef MC_NN_LOWP_H
#define MC_NN_LOWP_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "nn/kernels.h"

typedef enum mc_precision { MC_PREC_F32 = 0, MC_PREC_BF16 = 1, MC_PREC_INT8 = 2, MC_PREC_COUNT } mc_precision;

/* "f32", "bf16", "int8"; mc_precision_parse returns -1 for anything else. */
const char *mc_precision_name(mc_precision p);
int mc_precision_parse(const char *name);

/* Tile of the packed kernels: LP_MR rows of the weight by LP_NR columns of the activation. */
#define MC_LP_MR 8
#define MC_LP_NR 32
/* Depth granule: K is zero-padded to a multiple of 4 (bf16 pairs, int8 quads). */
#define MC_LP_KG 4

/* One packed weight, replacing the f32 matrix src [M, K] (row stride K). */
typedef struct mc_lowp_weight {
    const float *src;
    int M, K, Mp, Kp; /* Mp: M rounded up to MC_LP_MR, Kp: K rounded up to MC_LP_KG */
    int order;        /* first use in the recording forward (0, 1, ...) */
    void *q;          /* bf16: uint16_t [Mp][Kp]; int8: int8_t [Mp][Kp]; padding 0 */
    float *scale;     /* int8: [Mp] per-row scale (0 for an all-zero row) */
    int32_t *qsum;    /* int8: [Mp] sum over k of q (removes the activations' zero point) */
} mc_lowp_weight;

typedef struct mc_lowp_plan {
    mc_precision precision;
    int recording;          /* 1: GEMMs record their weights (and run in f32) */
    mc_lowp_weight *w;      /* sorted by src once packed */
    int n, cap;
    size_t bytes;           /* packed bytes held */
    int failed;             /* recording ran out of memory */
    int borrowed;           /* the packed arrays are someone else's (a converted file's mapping) */
} mc_lowp_plan;

void mc_lowp_plan_init(mc_lowp_plan *p, mc_precision precision);
void mc_lowp_plan_free(mc_lowp_plan *p);
/* Before packing: forgets the recorded weights inside w[0, n) (they stay f32). */
void mc_lowp_plan_keep_f32(mc_lowp_plan *p, const float *w, size_t n);
/* After a recording forward: sorts and merges the recorded weights and packs them from the
 * current values of their f32 matrices. 0 or MC_E_NOMEM. */
int mc_lowp_plan_pack(mc_lowp_plan *p, mc_err *e);

/* A plan filled from outside (a converted model file: w[0, n) with src, sizes and packed arrays
 * set, `borrowed`): sorts it for the lookup and counts its bytes. Returns 0. */
int mc_lowp_plan_adopt(mc_lowp_plan *p, mc_err *e);

/* Makes p (NULL: none, f32) the calling thread's plan; returns the previous one for _end. */
mc_lowp_plan *mc_lowp_scope_begin(mc_lowp_plan *p);
void mc_lowp_scope_end(mc_lowp_plan *previous);
/* The calling thread's plan in scope (NULL: f32), for work handed to other threads (a batch
 * split over images: each task opens the same scope). */
mc_lowp_plan *mc_lowp_scope_current(void);

/* Called by gemm.c for the GEMMs of weights (normalised: the weight is A [M,K], lda = K).
 * Returns 1 when it computed C (low precision) and ran g->ep on it, 0 when the caller must run the f32 GEMM (no
 * plan in scope, recording, no packed weight for A, or no memory for the packed activation). */
int mc_lowp_gemm(const mc_gemm_args *g);

/* Where one finished tile goes and how it is scaled (lowp_finish.inc). */
typedef struct mc_lowp_out {
    float *C;          /* element (i0, j0) of C: C + i0 * ldc + j0, or C + j0 * ldc + i0 when c_trans */
    int ldc, c_trans, accumulate;
    int mr, nc;        /* real rows (<= MC_LP_MR) and columns (<= MC_LP_NR) */
    float alpha;
    const float *bias; /* [mr] or NULL */
    const float *rs;   /* int8: [mr] row scales of the weight; NULL for bf16 */
    const int32_t *qs; /* int8: [mr] row sums of q */
    const float *xs;   /* int8: [MC_LP_NR] column scales of the activation */
    const int32_t *zp; /* int8: [MC_LP_NR] column zero points */
    /* the GEMM's epilogue (nn/kernels.h) on the finished tile, after the store or accumulation:
     * gelu (the active kernels' own, mc_kernels.gelu; NULL: none), then res(i, j) += res_scale[i]
     * C(i, j); res and res_scale at the tile's (i0, j0) / i0 */
    void (*gelu)(float *y, const float *x, size_t n);
    int ldr;
    float *res;
    const float *res_scale;
} mc_lowp_out;

/* The packed tile kernels of one instruction set (kernels_lowp_*.c).
 * bf16: acc[r][c] = sum_k w[r][k] b[k][c] over Kp, w rows at w + r*Kp (bf16 bits), the
 *       panel b as [Kp/2][MC_LP_NR][2] (k pairs interleaved per column);
 * int8: acc[r][c] = sum_k w[r][k] (b[k][c]) with w int8 rows as above and the panel as
 *       [Kp/4][MC_LP_NR][4] of unsigned bytes (the quantized activation u). */
typedef struct mc_lowp_kernels {
    const char *bf16_name, *int8_name;
    /* nc: columns of the panel that are real (a tile may skip work on the others, whose acc is
     * then unspecified); bf16_tile NULL: no bf16 arithmetic worth having, bf16 GEMMs run in f32 */
    void (*bf16_tile)(float *acc, const uint16_t *w, int Kp, const uint16_t *b, int nc);
    void (*int8_tile)(int32_t *acc, const int8_t *w, int Kp, const uint8_t *b, int nc);
    /* one activation panel (lowp_pack.inc) */
    void (*pack_bf16)(uint16_t *d, const float *B, int ldb, int trans_b, int K, int Kp, int nc);
    void (*pack_int8)(uint8_t *d, float *xs, int32_t *zp, const float *B, int ldb, int trans_b, int K, int Kp, int nc);
    /* the epilogue of one tile, acc as the tile left it: float (bf16) or int32 (int8: o->rs set) */
    void (*finish)(const mc_lowp_out *o, const void *acc);
    /* int8 GEMMs shallower than this run the f32 kernels instead (AVX2: below 256 the activation
     * packing and the tile's fixed costs outweigh vpmaddwd's gain, measured per S0 shape) */
    int int8_min_depth;
} mc_lowp_kernels;

/* The kernels the next low-precision GEMM uses: those of the active instruction set
 * (nn/isa.h), with the AVX512-BF16 / AVX512-VNNI tiles when that set is avx512 and the CPU
 * has the extension. Each kernel file exports mc_lowp_{bf16,int8}_{tile,pack}_<isa> and
 * mc_lowp_finish_<isa>. */
mc_lowp_kernels mc_lowp_kernels_get(void);

/* float <-> bfloat16 bits as mc_f32_to_bf16 / mc_bf16_to_f32 of core/tensor.h (round to nearest
 * even, NaN stays a quiet NaN), inline for the packing and tile loops. */
static inline uint16_t mc_lowp_to_bf16(float f) {
    union { float f; uint32_t u; } v = {f};
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40u);
    return (uint16_t)((v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16);
}
static inline float mc_lowp_from_bf16(uint16_t h) {
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}

#endif
