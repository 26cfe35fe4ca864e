/* The low-precision path (nn/lowp.h):
 *  1. the bf16 and int8 GEMMs of every instruction set this CPU runs (portable, avx2, avx512 with
 *     AVX512-BF16 / VNNI where present) against an independent double-precision computation
 *     from the same rounded / quantized operands: conv-shaped (weight A, activation [K,N]) and
 *     Linear-shaped (transposed, c_trans) problems with row, column and depth tails, bias,
 *     accumulation (beta 1) and a row range of a recorded weight; where a set runs the f32
 *     kernels instead (bf16 without AVX512-BF16, int8 below the AVX2 tile's depth), the f32
 *     GEMM's numbers exactly;
 *  2. whole models from the golden weight rule: embeddings of the golden inputs and of the golden
 *     captions in bf16 and int8 against our f32: cosine >= 0.999 (bf16) and >= 0.995 (int8) for
 *     every row (asserted for every arch in the list); for s0 also every shared photo
 *     (preprocess.safetensors) against a control (see test_model); bf16 on the f32 kernels is
 *     f32 exactly, with nothing packed; repacking after mc_clip_plan_build gives the same
 *     numbers; back to f32 gives f32's numbers exactly; the training form refuses low precision.
 * Archs for part 2: $MC_TEST_ARCHS (default "s0"; s1, s2, b: golden inputs and captions), on the
 * instruction set MC_ISA chooses (MC_ISA=portable: the bf16 and int8 C tiles);
 * MC_TEST_SHORT (the sanitizer pass): one photo. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "io/weight_rule.h"
#include "models/clip.h"
#include "nn/gemm.h"
#include "nn/isa.h"
#include "nn/lowp.h"
#include "nn/ops.h"
#include "common/test_util.h"

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(*s >> 40) / (double)(1 << 24) * 2.0 - 1.0);
}

static double qround(double v) { return v >= 0 ? floor(v + 0.5) : -floor(-v + 0.5); }

/* Row i of W [M,K] as the reference quantizes it: q (ints as doubles) and its scale. */
static double ref_quant(const float *v, int n, size_t stride, double *q) {
    double amax = 0;
    for (int k = 0; k < n; k++) amax = fmax(amax, fabs(v[k * stride]));
    float s = (float)amax / 127.f, inv = amax > 0 ? 127.f / (float)amax : 0.f;
    for (int k = 0; k < n; k++) {
        double x = qround((double)(v[k * stride] * inv));
        q[k] = x > 127 ? 127 : x < -127 ? -127 : x;
    }
    return s;
}

/* Column j of X as the reference quantizes activations: 256 levels over [min(lo,0), max(hi,0)],
 * x = s (u - z); q[k] = u - z (ints as doubles); returns s. */
static double ref_quant_asym(const float *v, int n, size_t stride, double *q) {
    float lo = 0, hi = 0;
    for (int k = 0; k < n; k++) lo = fminf(lo, v[k * stride]), hi = fmaxf(hi, v[k * stride]);
    if (!(hi - lo > 0)) {
        for (int k = 0; k < n; k++) q[k] = 0;
        return 0;
    }
    float s = (hi - lo) / 255.f, inv = 1.f / s, z = rintf(-lo * inv);
    for (int k = 0; k < n; k++) {
        float u = v[k * stride] * inv + z;
        u = u > 255.f ? 255.f : u < 0.f ? 0.f : u;
        q[k] = floor((double)u + 0.5) - z;
    }
    return s;
}

/* C[i][j] = sum_k W[i][k] X(k, j) + bias[i] (+ C when accumulate), X(k,j) = xt ? X[j*K+k] : X[k*N+j],
 * from the rounded (bf16) or quantized (int8) operands, in double. */
static void reference(double *ref, mc_precision p, const float *W, const float *X, int xt, const float *bias, int M,
                      int N, int K) {
    double *qw = malloc(sizeof(double) * (size_t)K), *qx = malloc(sizeof(double) * (size_t)K * N), *xs = malloc(sizeof(double) * N);
    for (int j = 0; j < N; j++) {
        const float *col = xt ? X + (size_t)j * K : X + j;
        size_t st = xt ? 1 : (size_t)N;
        if (p == MC_PREC_INT8) xs[j] = ref_quant_asym(col, K, st, qx + (size_t)j * K);
        else
            for (int k = 0; k < K; k++) qx[(size_t)j * K + k] = mc_bf16_to_f32(mc_f32_to_bf16(col[k * st]));
    }
    for (int i = 0; i < M; i++) {
        double ws = 1;
        if (p == MC_PREC_INT8) ws = ref_quant(W + (size_t)i * K, K, 1, qw);
        else
            for (int k = 0; k < K; k++) qw[k] = mc_bf16_to_f32(mc_f32_to_bf16(W[(size_t)i * K + k]));
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += qw[k] * qx[(size_t)j * K + k];
            ref[(size_t)i * N + j] = (p == MC_PREC_INT8 ? s * ws * xs[j] : s) + (bias ? bias[i] : 0);
        }
    }
    free(qw);
    free(qx);
    free(xs);
}

/* One problem shape through mc_sgemm_bias (conv-shaped: xt 0) or mc_linear_forward (xt 1). */
static void gemm_case(mc_precision p, int M, int N, int K, int xt, int accumulate, int row0) {
    uint64_t seed = (uint64_t)(M * 131 + N * 7 + K + xt * 1000 + p * 77);
    int Mall = M + row0;
    float *W = malloc(sizeof(float) * (size_t)Mall * K), *X = malloc(sizeof(float) * (size_t)K * N);
    float *bias = malloc(sizeof(float) * Mall), *C = malloc(sizeof(float) * (size_t)M * N);
    double *ref = malloc(sizeof(double) * (size_t)M * N);
    /* rows of different ranges (every 5th x4: per-row scales); an outlier inside a row would
     * push int8's error past LP_INT8_MAX_REL_ERR (the weight would stay f32) */
    for (size_t i = 0; i < (size_t)Mall * K; i++) W[i] = frand(&seed) * (i / K % 5 == 0 ? 4.f : 1.f);
    for (size_t i = 0; i < (size_t)K * N; i++) X[i] = frand(&seed) * 3.f;
    for (int i = 0; i < Mall; i++) bias[i] = frand(&seed);
    mc_lowp_plan plan;
    mc_lowp_plan_init(&plan, p);
    plan.recording = 1;
    mc_lowp_plan *prev = mc_lowp_scope_begin(&plan);
    /* record the whole weight [Mall, K] */
    float *tmp = calloc((size_t)Mall * N, sizeof(float));
    if (xt) mc_linear_forward(tmp, X, W, bias, N, K, Mall);
    else mc_sgemm_bias(0, 0, Mall, N, K, W, K, X, N, 0.f, tmp, N, bias, NULL);
    plan.recording = 0;
    mc_err e = {0};
    mc_lowp_kernels k = mc_lowp_kernels_get();
    /* else the f32 kernels run: bf16 without a bf16 tile (nothing packed), int8 below the depth
     * where the tile gains */
    int native = p == MC_PREC_BF16 ? k.bf16_tile != NULL : K >= k.int8_min_depth;
    CHECK(mc_lowp_plan_pack(&plan, &e) == 0 && plan.n == (p == MC_PREC_BF16 ? native : 1), "pack: %s (%d weights)",
          e.msg, plan.n);
    const float *Wr = W + (size_t)row0 * K, *br = bias + row0;
    /* C is [M, N] for the conv shape and [N, M] (tokens x features) for the linear one */
    for (int pass = 0; pass < 2; pass++) { /* in the plan's scope; then f32 into tmp */
        float *o = pass ? tmp : C;
        for (int i = 0; i < M * N; i++) o[i] = accumulate ? 0.25f * (float)(i % 7) : NAN;
        if (xt) {
            if (accumulate) mc_linear_accumulate(o, X, Wr, br, N, K, M);
            else mc_linear_forward(o, X, Wr, br, N, K, M);
        } else {
            mc_sgemm_bias(0, 0, M, N, K, Wr, K, X, N, accumulate ? 1.f : 0.f, o, N, br, NULL);
        }
        if (!pass) mc_lowp_scope_end(prev);
    }
    if (!native) {
        printf("     %-4s %-10s M=%3d N=%3d K=%3d %s%s row0=%d: the f32 GEMM's numbers\n", mc_precision_name(p),
               p == MC_PREC_BF16 ? k.bf16_name : k.int8_name, M, N, K, xt ? "linear" : "conv  ", accumulate ? " +=" : "   ",
               row0);
        CHECK(memcmp(C, tmp, sizeof(float) * (size_t)M * N) == 0, "%s as f32 M=%d N=%d K=%d: differs from f32",
              mc_precision_name(p), M, N, K);
        goto done;
    }
    reference(ref, p, Wr, X, xt, br, M, N, K);
    double worst = 0, scale = 0;
    for (int i = 0; i < M * N; i++) scale = fmax(scale, fabs(ref[i]));
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float got = xt ? C[(size_t)j * M + i] : C[(size_t)i * N + j];
            double want = ref[(size_t)i * N + j] + (accumulate ? 0.25 * ((xt ? j * M + i : i * N + j) % 7) : 0);
            double d = fabs(got - want) / scale;
            if (!(d <= worst)) worst = isnan(d) ? INFINITY : d;
        }
    printf("     %-4s %-10s M=%3d N=%3d K=%3d %s%s row0=%d: max err / max|C| %.2e\n", mc_precision_name(p),
           p == MC_PREC_BF16 ? k.bf16_name : k.int8_name, M, N, K, xt ? "linear" : "conv  ", accumulate ? " +=" : "   ",
           row0, worst);
    /* f32 accumulation of exact bf16 products: rounding only; int8: exact integer sums, then 3 roundings */
    CHECK(worst <= 2e-6, "%s M=%d N=%d K=%d xt=%d: error %g", mc_precision_name(p), M, N, K, xt, worst);
done:
    mc_lowp_plan_free(&plan);
    free(W);
    free(X);
    free(bias);
    free(C);
    free(ref);
    free(tmp);
}

/* A plan of precision p holding the conv-shaped weight W [M, K] (recorded from one product with
 * X [K, N] into C) and packed, in the calling thread's scope; returns the previous scope. */
static mc_lowp_plan *plan_one(mc_lowp_plan *plan, mc_precision p, int M, int N, int K, const float *W,
                              const float *X, float *C, const float *bias) {
    mc_lowp_plan_init(plan, p);
    plan->recording = 1;
    mc_lowp_plan *prev = mc_lowp_scope_begin(plan);
    mc_sgemm_bias(0, 0, M, N, K, W, K, X, N, 0.f, C, N, bias, NULL);
    plan->recording = 0;
    mc_err e = {0};
    CHECK(mc_lowp_plan_pack(plan, &e) == 0, "pack: %s", e.msg);
    return prev;
}

/* A non-finite activation makes its column non-finite (as in f32) and no other; a non-finite
 * weight its row. */
static void test_nonfinite(mc_precision p) {
    enum { M = 16, N = 40, K = 24 };
    static float W[M * K], X[K * N], C[M * N];
    uint64_t seed = 99;
    for (int i = 0; i < M * K; i++) W[i] = frand(&seed);
    for (int i = 0; i < K * N; i++) X[i] = frand(&seed);
    X[5 * N + 7] = INFINITY; /* column 7 */
    X[9 * N + 33] = NAN;     /* column 33 */
    X[2 * N + 20] = NAN;     /* column 20 (a whole panel of 32: the AVX-512 range pass) */
    W[3 * K + 2] = INFINITY; /* row 3 */
    mc_lowp_plan plan;
    mc_lowp_plan *prev = plan_one(&plan, p, M, N, K, W, X, C, NULL);
    mc_sgemm_bias(0, 0, M, N, K, W, K, X, N, 0.f, C, N, NULL, NULL);
    mc_lowp_scope_end(prev);
    int bad = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            int want_finite = i != 3 && j != 7 && j != 20 && j != 33;
            if ((isfinite(C[i * N + j]) != 0) != want_finite) bad++;
        }
    CHECK(bad == 0, "%s: %d elements with the wrong finiteness", mc_precision_name(p), bad);
    mc_lowp_plan_free(&plan);
}

/* The GEMM's epilogue (nn/kernels.h) run in the low-precision tiles' finish: GELU on a conv-shaped
 * and a Linear-shaped (transposed) product, and a layer-scaled residual, against the same product
 * without it followed by mc_gelu_forward and the residual loop: GELU the same bytes (the same
 * vector erff on the same blocks), the residual within its rounding (FMA or not). */
static void test_epilogue(mc_precision p) {
    enum { M = 24, N = 70, K = 300 }; /* deep enough for every int8 tile; row and column tails */
    static float W[M * K], X[K * N], bias[M], ls[M], C[M * N], C2[M * N], R[M * N], R2[M * N];
    uint64_t seed = 7 + (uint64_t)p;
    for (int i = 0; i < M * K; i++) W[i] = frand(&seed);
    for (int i = 0; i < K * N; i++) X[i] = frand(&seed);
    for (int i = 0; i < M; i++) bias[i] = frand(&seed), ls[i] = frand(&seed);
    for (int i = 0; i < M * N; i++) R[i] = R2[i] = frand(&seed);
    mc_lowp_plan plan;
    mc_lowp_plan *prev = plan_one(&plan, p, M, N, K, W, X, C, bias);
    mc_gemm_epilogue gelu = {1, NULL, NULL, 0}, res = {0, R, ls, N};
    mc_sgemm_ep(0, 0, M, N, K, W, K, X, N, 0.f, C, N, bias, NULL, &gelu);
    mc_sgemm_bias(0, 0, M, N, K, W, K, X, N, 0.f, C2, N, bias, NULL);
    mc_gelu_forward(C2, C2, (size_t)M * N);
    CHECK(memcmp(C, C2, sizeof C) == 0, "%s: fused GELU differs from the separate pass", mc_precision_name(p));
    mc_sgemm_ep(0, 0, M, N, K, W, K, X, N, 0.f, C, N, bias, NULL, &res);
    mc_sgemm_bias(0, 0, M, N, K, W, K, X, N, 0.f, C2, N, bias, NULL);
    double worst = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            R2[i * N + j] += ls[i] * C2[i * N + j];
            double d = fabs((double)R[i * N + j] - R2[i * N + j]) / (fabs(R2[i * N + j]) + 1);
            if (!(d <= worst)) worst = isnan(d) ? INFINITY : d;
        }
    CHECK(memcmp(C, C2, sizeof C) == 0 && worst <= 1e-6, "%s: fused residual error %g", mc_precision_name(p), worst);
    /* Linear shape: X as [N tokens, K], C [N, M]; the weight W [M, K] is the same recorded matrix */
    mc_linear_gelu_forward(C, X, W, bias, N, K, M);
    mc_linear_forward(C2, X, W, bias, N, K, M);
    mc_gelu_forward(C2, C2, (size_t)M * N);
    CHECK(memcmp(C, C2, sizeof C) == 0, "%s: fused GELU (Linear) differs from the separate pass", mc_precision_name(p));
    printf("     %-4s epilogue in the tiles: GELU exact, residual within %.1e\n", mc_precision_name(p), worst);
    mc_lowp_scope_end(prev);
    mc_lowp_plan_free(&plan);
}

static void test_gemms(void) {
    mc_isa was = mc_kernels_get()->isa; /* MC_ISA's choice, for the model tests after these */
    for (int isa = 0; isa < MC_ISA_COUNT; isa++) {
        mc_err e = {0};
        if (!mc_isa_supported((mc_isa)isa)) continue;
        mc_isa_force((mc_isa)isa, &e);
        for (int p = MC_PREC_BF16; p <= MC_PREC_INT8; p++) {
            gemm_case((mc_precision)p, 37, 70, 45, 0, 0, 0);
            gemm_case((mc_precision)p, 64, 200, 96, 0, 1, 0);
            gemm_case((mc_precision)p, 24, 77, 130, 1, 0, 8);
            gemm_case((mc_precision)p, 17, 5, 3, 1, 1, 0);
            /* depth over the AVX2 tiles' 256-deep weight chunks, with tails */
            gemm_case((mc_precision)p, 16, 40, 600, 0, 0, 0);
            gemm_case((mc_precision)p, 9, 33, 1030, 1, 0, 0);
            /* deep enough for every int8 tile (int8_min_depth), with row and column tails */
            gemm_case((mc_precision)p, 37, 70, 258, 0, 1, 0);
            gemm_case((mc_precision)p, 24, 77, 300, 1, 0, 8);
            test_nonfinite((mc_precision)p);
            test_epilogue((mc_precision)p);
        }
    }
    mc_err e = {0};
    mc_isa_force(was, &e);
}

/* ---------------------------------------------------------------- whole models */

static double min_cosine(const float *a, const float *b, int rows, int d) {
    double m = 1;
    for (int r = 0; r < rows; r++) {
        double c = mc_test_cosine(a + (size_t)r * d, b + (size_t)r * d, d);
        if (!(c >= m)) m = isnan(c) ? -1 : c;
    }
    return m;
}

/* The control: f32 arithmetic with the weights as the low-precision plan stores them (bf16, or
 * int8 times its row scale), written into the f32 matrices for one forward and restored: the
 * error that weight storage alone causes, whatever the kernels do. */
static void control_image(mc_clip *c, const float *img, int B, float *out) {
    mc_lowp_plan *p = &c->lowp;
    float **save = malloc(sizeof(float *) * (size_t)p->n);
    for (int i = 0; i < p->n; i++) {
        const mc_lowp_weight *w = &p->w[i];
        size_t n = (size_t)w->M * w->K;
        float *src = (float *)w->src; /* the model's own matrix, writable in the store/plan */
        save[i] = malloc(sizeof(float) * n);
        memcpy(save[i], src, sizeof(float) * n);
        for (int r = 0; r < w->M; r++)
            for (int k = 0; k < w->K; k++)
                src[(size_t)r * w->K + k] = p->precision == MC_PREC_BF16
                                                ? mc_bf16_to_f32(((const uint16_t *)w->q)[(size_t)r * w->Kp + k])
                                                : ((const int8_t *)w->q)[(size_t)r * w->Kp + k] * w->scale[r];
    }
    mc_precision keep = c->precision;
    c->precision = MC_PREC_F32;
    mc_err e = {0};
    CHECK(mc_clip_encode_image(c, img, B, out, NULL, &e) == 0, "control: %s", e.msg);
    c->precision = keep;
    for (int i = 0; i < p->n; i++) {
        memcpy((float *)p->w[i].src, save[i], sizeof(float) * (size_t)p->w[i].M * p->w[i].K);
        free(save[i]);
    }
    free(save);
}

static void test_model(const char *arch) {
    mc_err e = {0};
    mc_tensor_map w, g, pre;
    int a = mc_test_load_arch(arch, &w, &g);
    mc_json *hdr = NULL;
    mc_test_load_golden("golden/preprocess.safetensors", &pre, &hdr);
    mc_json_free(hdr);
    mc_clip c;
    if (mc_clip_init(&c, &w, (mc_arch)a, 1, 1, 1, &e)) mc_test_fatal("%s: %s", arch, e.msg);
    int R = c.config.image_size, E = c.config.embed_dim, T = c.config.text.context_length;
    /* images: the golden inputs, then every shared image preprocessed at R */
    const mc_tensor *gi = mc_test_tensor(&g, "input.image"), *gt = mc_test_tensor(&g, "input.tokens");
    int nshared = 0, ngold = (int)gi->shape[0], ntext = (int)gt->shape[0], photos = !strcmp(arch, "s0");
    char suffix[8];
    snprintf(suffix, sizeof suffix, ".%d", R);
    int max_photos = getenv("MC_TEST_SHORT") ? 1 : 1 << 20; /* the sanitizer pass: one photo */
    for (int i = 0; i < pre.count && photos && nshared < max_photos; i++)
        if (strstr(pre.items[i].name, suffix)) nshared++;
    int B = ngold + nshared;
    size_t plane = (size_t)3 * R * R;
    float *img = malloc(sizeof(float) * plane * B);
    mc_tensor_to_f32(gi, img);
    for (int i = 0, n = ngold; i < pre.count && n < B; i++)
        if (strstr(pre.items[i].name, suffix)) mc_tensor_to_f32(&pre.items[i].t, img + plane * n++);
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)ntext * T);
    for (int64_t i = 0; i < (int64_t)ntext * T; i++) tok[i] = (int32_t)mc_tensor_get_f64(gt, i);
    float *ref_i = malloc(sizeof(float) * (size_t)B * E), *ref_t = malloc(sizeof(float) * (size_t)ntext * E);
    float *got_i = malloc(sizeof(float) * (size_t)B * E), *got_t = malloc(sizeof(float) * (size_t)ntext * E);
    double t0 = mc_test_now();
    CHECK(mc_clip_encode_image(&c, img, B, ref_i, NULL, &e) == 0, "%s f32 image: %s", arch, e.msg);
    CHECK(mc_clip_encode_text(&c, tok, ntext, ref_t, NULL, &e) == 0, "%s f32 text: %s", arch, e.msg);
    double t1 = mc_test_now();
    printf("     %s f32: %d images, %d captions in %.2f s\n", arch, B, ntext, t1 - t0);
    const double need[MC_PREC_COUNT] = {1, 0.999, 0.995};
    for (int p = MC_PREC_BF16; p <= MC_PREC_INT8; p++) {
        const char *pn = mc_precision_name((mc_precision)p);
        double t2 = mc_test_now();
        CHECK(mc_clip_set_precision(&c, (mc_precision)p, &e) == 0, "%s %s: %s", arch, pn, e.msg);
        double t3 = mc_test_now();
        CHECK(mc_clip_encode_image(&c, img, B, got_i, NULL, &e) == 0, "%s %s image: %s", arch, pn, e.msg);
        CHECK(mc_clip_encode_text(&c, tok, ntext, got_t, NULL, &e) == 0, "%s %s text: %s", arch, pn, e.msg);
        double t4 = mc_test_now();
        /* the golden inputs and the captions: the thresholds */
        double cg = min_cosine(got_i, ref_i, ngold, E), ct = min_cosine(got_t, ref_t, ntext, E);
        printf("     %s %s: %d packed weights (%.1f MB) in %.3f s; forward %.2f s; min cosine to f32: golden images "
               "%.6f, captions %.6f\n", arch, pn, c.lowp.n, c.lowp.bytes / 1048576.0, t3 - t2, t4 - t3, cg, ct);
        CHECK(cg >= need[p] && ct >= need[p], "%s %s: cosine golden images %.6f captions %.6f < %.3f", arch, pn, cg, ct,
              need[p]);
        /* the shared photos: this random-weight model amplifies any weight perturbation on them
         * (1 - cos ~ (50 x relative error)^2), so the measure is the control, f32 arithmetic on the
         * stored weights: bf16 may lose at most 0.005 of cosine beyond the control (or beyond
         * the threshold, where the control is better); int8's dynamic activations lose more
         * (printed; a floor that a wrong kernel cannot reach) */
        float *ctl = malloc(sizeof(float) * (size_t)B * E);
        control_image(&c, img, B, ctl);
        double worst = 1;
        for (int r = ngold; r < B; r++) {
            double co = mc_test_cosine(got_i + (size_t)r * E, ref_i + (size_t)r * E, E);
            double cc = mc_test_cosine(ctl + (size_t)r * E, ref_i + (size_t)r * E, E);
            worst = fmin(worst, co);
            if (getenv("MC_LOWP_VERBOSE")) printf("       photo %2d: cosine %.6f, control %.6f\n", r - ngold, co, cc);
            if (p == MC_PREC_BF16)
                CHECK(co >= fmin(need[p], cc) - 0.005, "%s %s photo %d: cosine %.6f, control %.6f", arch, pn, r - ngold,
                      co, cc);
            else
                CHECK(co >= 0.2, "%s %s photo %d: cosine %.6f (control %.6f)", arch, pn, r - ngold, co, cc);
        }
        if (B > ngold) printf("     %s %s: %d shared photos, min cosine to f32 %.6f\n", arch, pn, B - ngold, worst);
        free(ctl);
        if (p == MC_PREC_BF16 && !mc_lowp_kernels_get().bf16_tile) {
            /* no AVX512-BF16: bf16 runs the f32 kernels on the f32 weights, nothing packed */
            CHECK(c.lowp.n == 0 && c.lowp.bytes == 0, "%s bf16 without a bf16 tile: %d packed", arch, c.lowp.n);
            CHECK(memcmp(got_i, ref_i, sizeof(float) * (size_t)B * E) == 0 &&
                      memcmp(got_t, ref_t, sizeof(float) * (size_t)ntext * E) == 0,
                  "%s bf16 as f32: differs from f32", arch);
        } else {
            CHECK(c.lowp.n > 0 && c.lowp.bytes > 0, "%s %s: nothing packed", arch, pn);
            /* and not simply f32: the packed path ran */
            CHECK(memcmp(got_i, ref_i, sizeof(float) * (size_t)B * E) != 0, "%s %s: image identical to f32", arch, pn);
        }
        /* a rebuilt plan repacks the same numbers (row 0 only: the cost of a forward) */
        CHECK(mc_clip_plan_build(&c, &e) == 0, "%s %s rebuild: %s", arch, pn, e.msg);
        float *again = malloc(sizeof(float) * E);
        CHECK(mc_clip_encode_image(&c, img, 1, again, NULL, &e) == 0, "%s %s image again: %s", arch, pn, e.msg);
        CHECK(memcmp(again, got_i, sizeof(float) * E) == 0, "%s %s: repacked plan differs", arch, pn);
        free(again);
    }
    /* back to f32: exactly the f32 numbers again */
    CHECK(mc_clip_set_precision(&c, MC_PREC_F32, &e) == 0 && c.lowp.n == 0, "%s f32 again: %s", arch, e.msg);
    CHECK(mc_clip_encode_text(&c, tok, ntext, got_t, NULL, &e) == 0, "%s f32 text again: %s", arch, e.msg);
    CHECK(memcmp(got_t, ref_t, sizeof(float) * (size_t)ntext * E) == 0, "%s: f32 after int8 differs", arch);
    mc_clip_free(&c);
    free(img);
    free(tok);
    free(ref_i);
    free(ref_t);
    free(got_i);
    free(got_t);
    mc_tensor_map_free(&g);
    mc_tensor_map_free(&pre);
}

static void test_training_form_refused(void) {
    mc_err e = {0};
    mc_tensor_map w;
    mc_tensor_map_init(&w);
    if (mc_weights_from_tsv(mc_test_path("golden/s0.params.tsv"), &w, NULL, &e)) mc_test_fatal("%s", e.msg);
    mc_clip c;
    if (mc_clip_init(&c, &w, MC_ARCH_S0, 0, 1, 0, &e)) mc_test_fatal("%s", e.msg);
    int r = mc_clip_set_precision(&c, MC_PREC_BF16, &e);
    CHECK(r == MC_E_UNSUPPORTED && strstr(e.msg, "reparameterized"), "training form + bf16: %d %s", r, e.msg);
    mc_clip_free(&c);
}

int main(void) {
    test_gemms();
    test_training_form_refused();
    const char *archs = getenv("MC_TEST_ARCHS");
    char list[64];
    snprintf(list, sizeof list, "%s", archs && *archs ? archs : "s0");
    for (char *t = strtok(list, " ,"); t; t = strtok(NULL, " ,"))
        if (!strcmp(t, "s0") || !strcmp(t, "s1") || !strcmp(t, "s2") || !strcmp(t, "b")) test_model(t);
    return mc_test_finish("lowp");
}
