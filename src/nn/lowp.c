/* Low-precision GEMMs over weights packed once (see lowp.h): the plan (recording, packing,
 * lookup), the activation packing and the epilogue shared by every instruction set. */
#include "nn/lowp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "nn/isa.h"
#include "nn/kernel_attr.h"

static const char *const prec_names[MC_PREC_COUNT] = {"f32", "bf16", "int8"};

const char *mc_precision_name(mc_precision p) { return (unsigned)p < MC_PREC_COUNT ? prec_names[p] : "?"; }

int mc_precision_parse(const char *name) {
    for (int i = 0; i < MC_PREC_COUNT; i++)
        if (name && !strcmp(name, prec_names[i])) return i;
    return -1;
}

/* ---------------------------------------------------------------- kernels */

#define DECLARE(isa)                                                                                          \
    void mc_lowp_bf16_tile_##isa(float *acc, const uint16_t *w, int Kp, const uint16_t *b, int nc);         \
    void mc_lowp_int8_tile_##isa(int32_t *acc, const int8_t *w, int Kp, const uint8_t *b, int nc);          \
    void mc_lowp_bf16_pack_##isa(uint16_t *d, const float *B, int ldb, int trans_b, int K, int Kp, int nc); \
    void mc_lowp_int8_pack_##isa(uint8_t *d, float *xs, int32_t *zp, const float *B, int ldb, int trans_b, int K, \
                                 int Kp, int nc); \
    void mc_lowp_finish_##isa(const mc_lowp_out *o, const void *acc);
#define KERNELS(isa)                                                                                          \
    (mc_lowp_kernels) {                                                                                       \
        #isa, #isa, mc_lowp_bf16_tile_##isa, mc_lowp_int8_tile_##isa, mc_lowp_bf16_pack_##isa,               \
            mc_lowp_int8_pack_##isa, mc_lowp_finish_##isa, 0                                                  \
    }
DECLARE(portable)
#if defined(__x86_64__) && defined(__GNUC__)
#define MC_HAVE_X86_LOWP 1
DECLARE(avx512) /* tiles: kernels_lowp_avx512.c, packing: kernels_lowp_pack_avx512.c */
void mc_lowp_int8_tile_avx2(int32_t *acc, const int8_t *w, int Kp, const uint8_t *b, int nc);
void mc_lowp_int8_pack_avx2(uint8_t *d, float *xs, int32_t *zp, const float *B, int ldb, int trans_b, int K, int Kp,
                            int nc);
void mc_lowp_finish_avx2(const mc_lowp_out *o, const void *acc);
#endif

mc_lowp_kernels mc_lowp_kernels_get(void) {
    mc_lowp_kernels k = KERNELS(portable);
#ifdef MC_HAVE_X86_LOWP
    mc_isa isa = mc_kernels_get()->isa;
    if (isa >= MC_ISA_AVX2) {
        /* no bf16 arithmetic below AVX512-BF16: bf16 products widened to f32 cost the f32 FMAs plus
         * the widening (an AVX2 tile measured 0.8-0.9x of f32 on S0), so bf16 GEMMs run the f32
         * kernels on the f32 weights (f32's numbers) unless the AVX512-BF16 tile below applies */
        k = (mc_lowp_kernels){"f32", "avx2", NULL, mc_lowp_int8_tile_avx2, NULL, mc_lowp_int8_pack_avx2,
                              mc_lowp_finish_avx2, 256};
    }
    if (isa == MC_ISA_AVX512) { /* AVX-512 packing; the tiles where the CPU has the extension */
        mc_lowp_kernels z = KERNELS(avx512);
        k.pack_bf16 = z.pack_bf16;
        k.pack_int8 = z.pack_int8;
        k.finish = z.finish;
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512bf16")) {
            k.bf16_name = "avx512bf16";
            k.bf16_tile = mc_lowp_bf16_tile_avx512;
        }
        if (__builtin_cpu_supports("avx512vnni")) {
            k.int8_name = "avx512vnni";
            k.int8_tile = mc_lowp_int8_tile_avx512;
            k.int8_min_depth = 0;
        }
    }
#endif
    return k;
}

/* ---------------------------------------------------------------- the plan */

void mc_lowp_plan_init(mc_lowp_plan *p, mc_precision precision) {
    memset(p, 0, sizeof *p);
    p->precision = precision;
}

void mc_lowp_plan_free(mc_lowp_plan *p) {
    if (!p) return;
    for (int i = 0; i < p->n && !p->borrowed; i++) {
        free(p->w[i].q);
        free(p->w[i].scale);
        free(p->w[i].qsum);
    }
    free(p->w);
    mc_lowp_plan_init(p, p->precision);
}

static void record(mc_lowp_plan *p, const mc_gemm_args *g) {
    if (g->trans_a || g->lda != g->K || g->K <= 0) return;
    /* int8: 255 * 127 * K must fit the int32 sums (custom models this deep stay f32) */
    if (p->precision == MC_PREC_INT8 && g->K > 65536) return;
    for (int i = 0; i < p->n; i++)
        if (p->w[i].src == g->A && p->w[i].K == g->K) {
            if (g->M > p->w[i].M) p->w[i].M = g->M;
            return;
        }
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 64;
        mc_lowp_weight *w = realloc(p->w, (size_t)cap * sizeof *w);
        if (!w) {
            p->failed = 1;
            return;
        }
        p->w = w;
        p->cap = cap;
    }
    p->w[p->n] = (mc_lowp_weight){g->A, g->M, g->K, 0, 0, p->n, NULL, NULL, NULL};
    p->n++;
}

void mc_lowp_plan_keep_f32(mc_lowp_plan *p, const float *w, size_t n) {
    uintptr_t lo = (uintptr_t)w, hi = (uintptr_t)(w + n);
    int kept = 0;
    for (int i = 0; i < p->n; i++)
        if ((uintptr_t)p->w[i].src < lo || (uintptr_t)p->w[i].src >= hi) p->w[kept++] = p->w[i];
    p->n = kept;
}

static int cmp_src(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)((const mc_lowp_weight *)a)->src, y = (uintptr_t)((const mc_lowp_weight *)b)->src;
    return x < y ? -1 : x > y;
}

/* Rows [r0, r1) of one weight. */
typedef struct pack_w_job {
    mc_lowp_weight *w;
    mc_precision prec;
    double *err2, *norm2; /* int8: [M] per row, sum of (w - s q)^2 and of w^2 */
} pack_w_job;

MC_HOT_KERNEL static void pack_weight_rows(void *arg, int r0, int r1) {
    const pack_w_job *j = arg;
    mc_lowp_weight *w = j->w;
    for (int r = r0; r < r1; r++) {
        const float *s = w->src + (size_t)r * w->K;
        if (j->prec == MC_PREC_BF16) {
            uint16_t *d = (uint16_t *)w->q + (size_t)r * w->Kp;
            for (int k = 0; k < w->K; k++) d[k] = mc_lowp_to_bf16(s[k]);
            continue;
        }
        int8_t *d = (int8_t *)w->q + (size_t)r * w->Kp;
        float amax = 0.f;
        for (int k = 0; k < w->K; k++) amax = fmaxf(amax, fabsf(s[k]));
        float inv = amax > 0.f && isfinite(amax) ? 127.f / amax : 0.f;
        int32_t sum = 0;
        float sc = amax / 127.f;
        double e2 = 0, n2 = 0;
        for (int k = 0; k < w->K; k++) {
            float v = s[k] * inv; /* inv 0 when amax is not finite: v is 0 or NaN */
            v = v >= -127.f ? v : -127.f; /* NaN to -127: its row's scale is NaN then */
            v = v <= 127.f ? v : 127.f;
            int q = (int)(v + copysignf(0.5f, v));
            d[k] = (int8_t)q;
            sum += q;
            double dq = (double)s[k] - (double)q * sc;
            e2 += dq * dq;
            n2 += (double)s[k] * s[k];
        }
        /* a non-finite weight makes its row NaN, as the f32 product would be */
        w->scale[r] = !isfinite(amax) ? NAN : amax > 0.f ? sc : 0.f;
        w->qsum[r] = sum;
        j->err2[r] = isfinite(amax) ? e2 : 0; /* NaN rows stay packed: NaN either way */
        j->norm2[r] = isfinite(amax) ? n2 : 0;
    }
}

/* int8: a weight whose quantization error ||W - s q|| / ||W|| (per-row scales) exceeds this stays
 * f32. Rows of uniform or Gaussian weights lose 0.4% / 0.75%; the square 1x1 convolutions that
 * reparameterization folds an identity into (MCi's stage entries: a large diagonal, max/rms
 * 6-18 per row) lose 1.3-4% and alone cost s2's golden images 2.8e-3 of cosine (measured, one
 * weight packed at a time); they hold ~1% of the multiply-adds. */
#define LP_INT8_MAX_REL_ERR 0.01

static size_t packed_bytes(const mc_lowp_plan *p, const mc_lowp_weight *w) {
    size_t elem = p->precision == MC_PREC_BF16 ? 2 : 1;
    return (size_t)w->Mp * w->Kp * elem + (p->precision == MC_PREC_INT8 ? (size_t)w->Mp * 8 : 0);
}

int mc_lowp_plan_pack(mc_lowp_plan *p, mc_err *e) {
    if (p->failed) return mc_fail(e, MC_E_NOMEM, "out of memory recording the low-precision plan");
    p->bytes = 0;
    if (p->precision == MC_PREC_BF16 && !mc_lowp_kernels_get().bf16_tile) { /* the f32 weights serve */
        p->n = 0;
        return 0;
    }
    qsort(p->w, (size_t)p->n, sizeof *p->w, cmp_src);
    int kept = 0;
    for (int i = 0; i < p->n; i++) {
        mc_lowp_weight *w = &p->w[i];
        w->Mp = (w->M + MC_LP_MR - 1) / MC_LP_MR * MC_LP_MR;
        w->Kp = (w->K + MC_LP_KG - 1) / MC_LP_KG * MC_LP_KG;
        size_t elem = p->precision == MC_PREC_BF16 ? 2 : 1, n = (size_t)w->Mp * w->Kp;
        w->q = calloc(n, elem);
        if (p->precision == MC_PREC_INT8) {
            w->scale = calloc((size_t)w->Mp, sizeof *w->scale);
            w->qsum = calloc((size_t)w->Mp, sizeof *w->qsum);
        }
        if (!w->q || (p->precision == MC_PREC_INT8 && (!w->scale || !w->qsum)))
            return mc_fail(e, MC_E_NOMEM, "out of memory packing a %d x %d weight to %s", w->M, w->K,
                           mc_precision_name(p->precision));
        pack_w_job j = {w, p->precision, NULL, NULL};
        if (p->precision == MC_PREC_INT8 && !(j.err2 = calloc((size_t)2 * w->M, sizeof *j.err2)))
            return mc_fail(e, MC_E_NOMEM, "out of memory packing a %d x %d weight to int8", w->M, w->K);
        j.norm2 = j.err2 ? j.err2 + w->M : NULL;
        mc_parallel_for(w->M, mc_parallel_grain(w->M, 2), pack_weight_rows, &j);
        double e2 = 0, n2 = 0;
        for (int r = 0; j.err2 && r < w->M; r++) e2 += j.err2[r], n2 += j.norm2[r];
        free(j.err2);
        if (e2 > LP_INT8_MAX_REL_ERR * LP_INT8_MAX_REL_ERR * n2) { /* stays f32 (sorted order kept) */
            free(w->q);
            free(w->scale);
            free(w->qsum);
            w->q = NULL, w->scale = NULL, w->qsum = NULL; /* a later failure frees the slot once */
            continue;
        }
        p->bytes += packed_bytes(p, w);
        if (kept != i) {
            p->w[kept] = *w;
            w->q = NULL, w->scale = NULL, w->qsum = NULL;
        }
        kept++;
    }
    p->n = kept;
    return 0;
}

int mc_lowp_plan_adopt(mc_lowp_plan *p, mc_err *e) {
    (void)e;
    qsort(p->w, (size_t)p->n, sizeof *p->w, cmp_src);
    p->bytes = 0;
    for (int i = 0; i < p->n; i++) p->bytes += packed_bytes(p, &p->w[i]);
    return 0;
}

/* The packed weight holding g->A as rows [*row0, *row0 + g->M), or NULL. */
static const mc_lowp_weight *lookup(const mc_lowp_plan *p, const mc_gemm_args *g, int *row0) {
    if (g->trans_a || g->lda != g->K) return NULL;
    uintptr_t a = (uintptr_t)g->A;
    int lo = 0, hi = p->n - 1, at = -1;
    while (lo <= hi) { /* last entry with src <= A */
        int mid = (lo + hi) / 2;
        if ((uintptr_t)p->w[mid].src <= a) at = mid, lo = mid + 1;
        else hi = mid - 1;
    }
    if (at < 0) return NULL;
    const mc_lowp_weight *w = &p->w[at];
    if (w->K != g->K) return NULL;
    size_t off = (a - (uintptr_t)w->src) / sizeof(float);
    if ((a - (uintptr_t)w->src) % sizeof(float) || off % (size_t)w->K) return NULL;
    size_t r = off / (size_t)w->K;
    if (r % MC_LP_MR || r + (size_t)g->M > (size_t)w->M) return NULL;
    *row0 = (int)r;
    return w;
}

/* ---------------------------------------------------------------- the GEMM */

static _Thread_local mc_lowp_plan *scope;

mc_lowp_plan *mc_lowp_scope_begin(mc_lowp_plan *p) {
    mc_lowp_plan *prev = scope;
    scope = p;
    return prev;
}

void mc_lowp_scope_end(mc_lowp_plan *previous) { scope = previous; }

mc_lowp_plan *mc_lowp_scope_current(void) { return scope; }

/* Packed activation per group of panels walked strip by strip (mc_lowp_gemm): half the 1 MB L2 of
 * a Zen 4 core. */
#define LP_GROUP_BYTES ((size_t)384 << 10)

typedef struct lp_job {
    const mc_gemm_args *g;
    const mc_lowp_weight *w;
    mc_precision prec;
    mc_lowp_kernels k;
    int row0, panels, strips, group; /* tiles in groups of `group` panels, strip by strip inside */
    void *bp;  /* packed activation: [panels][Kp * MC_LP_NR] elements */
    float *xs; /* int8: [panels * MC_LP_NR] column scales */
    void (*gelu)(float *y, const float *x, size_t n); /* the epilogue's (mc_kernels.gelu) */
    int32_t *zp; /* int8: [panels * MC_LP_NR] column zero points */
} lp_job;

/* Panels [p0, p1) of the activation op(B) [K, N] (lowp_pack.inc). */
static void pack_b(void *arg, int p0, int p1) {
    const lp_job *j = arg;
    const mc_gemm_args *g = j->g;
    int Kp = j->w->Kp;
    for (int p = p0; p < p1; p++) {
        int j0 = p * MC_LP_NR, nc = g->N - j0 < MC_LP_NR ? g->N - j0 : MC_LP_NR;
        const float *B = g->B + (g->trans_b ? (size_t)j0 * g->ldb : (size_t)j0);
        size_t off = (size_t)p * Kp * MC_LP_NR;
        if (j->prec == MC_PREC_BF16) j->k.pack_bf16((uint16_t *)j->bp + off, B, g->ldb, g->trans_b, g->K, Kp, nc);
        else j->k.pack_int8((uint8_t *)j->bp + off, j->xs + j0, j->zp + j0, B, g->ldb, g->trans_b, g->K, Kp, nc);
    }
}

MC_HOT_KERNEL static void compute(void *arg, int t0, int t1) {
    const lp_job *j = arg;
    const mc_gemm_args *g = j->g;
    const mc_lowp_weight *w = j->w;
    int Kp = w->Kp;
    union {
        float f[MC_LP_MR * MC_LP_NR];
        int32_t i[MC_LP_MR * MC_LP_NR];
    } acc;
    for (int t = t0; t < t1; t++) {
        int g0 = t / (j->group * j->strips) * j->group, gn = j->panels - g0 < j->group ? j->panels - g0 : j->group;
        int u = t - g0 * j->strips, s = u / gn, p = g0 + u % gn;
        int i0 = s * MC_LP_MR, j0 = p * MC_LP_NR;
        int mr = g->M - i0 < MC_LP_MR ? g->M - i0 : MC_LP_MR, nc = g->N - j0 < MC_LP_NR ? g->N - j0 : MC_LP_NR;
        size_t wrow = (size_t)(j->row0 + i0) * Kp, panel = (size_t)p * Kp * MC_LP_NR;
        if (j->prec == MC_PREC_BF16)
            j->k.bf16_tile(acc.f, (const uint16_t *)w->q + wrow, Kp, (const uint16_t *)j->bp + panel, nc);
        else
            j->k.int8_tile(acc.i, (const int8_t *)w->q + wrow, Kp, (const uint8_t *)j->bp + panel, nc);
        int wi = j->row0 + i0;
        mc_lowp_out o = {g->c_trans ? g->C + (size_t)j0 * g->ldc + i0 : g->C + (size_t)i0 * g->ldc + j0,
                         g->ldc, g->c_trans, g->beta != 0.f, mr, nc, g->alpha, g->bias ? g->bias + i0 : NULL,
                         j->prec == MC_PREC_INT8 ? w->scale + wi : NULL, j->prec == MC_PREC_INT8 ? w->qsum + wi : NULL,
                         j->xs + j0, j->zp + j0, g->ep.gelu ? j->gelu : NULL, g->ep.ldr, NULL, NULL};
        if (g->ep.res) {
            o.res = g->c_trans ? g->ep.res + (size_t)j0 * g->ep.ldr + i0 : g->ep.res + (size_t)i0 * g->ep.ldr + j0;
            o.res_scale = g->ep.res_scale + i0;
        }
        j->k.finish(&o, &acc);
    }
}

int mc_lowp_gemm(const mc_gemm_args *g) {
    mc_lowp_plan *p = scope;
    if (!p || p->precision == MC_PREC_F32 || g->M <= 0 || g->N <= 0 || g->K <= 0) return 0;
    if (p->recording) {
        record(p, g);
        return 0;
    }
    lp_job j = {g, NULL, p->precision, mc_lowp_kernels_get(), 0, 0, 0, 1, NULL, NULL, mc_kernels_get()->gelu, NULL};
    if (p->precision == MC_PREC_BF16 ? !j.k.bf16_tile : g->K < j.k.int8_min_depth) return 0; /* f32 is faster */
    if (!(j.w = lookup(p, g, &j.row0))) return 0;
    j.panels = (g->N + MC_LP_NR - 1) / MC_LP_NR;
    j.strips = (g->M + MC_LP_MR - 1) / MC_LP_MR;
    /* the tiles of a group of panels (columns) are walked strip by strip (rows of C), panels
     * inside: C and a residual are written along their rows, and the group's packed activation
     * (<= LP_GROUP_BYTES) stays in L2 while the strips pass over it. (Panel by panel, the order
     * of session 6, wrote C down its columns, rows 16 KB apart (4096 pixels) that share cache
     * sets: with the fused residual, half of the finish's time sat on the residual's stores.) */
    size_t elem = p->precision == MC_PREC_BF16 ? 2 : 1, per = (size_t)j.w->Kp * MC_LP_NR;
    j.group = (int)(LP_GROUP_BYTES / (per * elem));
    j.group = j.group < 1 ? 1 : j.group > j.panels ? j.panels : j.group;
    /* the calling thread's scratch (no allocation per GEMM once it has grown): a large malloc here
     * was an mmap / munmap per call, with its pages faulted in and cleared every time */
    j.bp = mc_thread_scratch(MC_SCRATCH_LOWP, (size_t)j.panels * per * elem +
                                                  (size_t)j.panels * MC_LP_NR * (sizeof(float) + sizeof(int32_t)));
    if (!j.bp) return 0;
    j.xs = (float *)((char *)j.bp + (size_t)j.panels * per * elem);
    j.zp = (int32_t *)(j.xs + (size_t)j.panels * MC_LP_NR);
    mc_parallel_for(j.panels, 1, pack_b, &j);
    int tiles = j.panels * j.strips;
    mc_parallel_for(tiles, mc_parallel_grain(tiles, 8), compute, &j);
    return 1;
}
