/* Kernels against naive double-precision references: GEMM (all transposes, ragged sizes,
 * fused biases and epilogues, every tile shape), convolution (dense, grouped, depthwise with multiplier,
 * strided, padded), attention (causal and not), layernorm, GELU; each on every instruction
 * set this CPU supports (nn/isa.h), and bitwise equal across thread counts. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/test_util.h"
#include "core/parallel.h"
#include "nn/gemm.h"
#include "nn/isa.h"
#include "nn/ops.h"

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 16777216.0) * 2.0 - 1.0);
}
static float *rand_buf(size_t n) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = frand();
    return p;
}
static double max_rel(const float *a, const double *b, size_t n) {
    double m = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        m = fmax(m, fabs(b[i]));
        r = fmax(r, fabs(a[i] - b[i]));
    }
    return r / (m > 0 ? m : 1);
}

static void test_gemm(int ta, int tb, int M, int N, int K) {
    float *A = rand_buf((size_t)M * K), *B = rand_buf((size_t)K * N), *C = rand_buf((size_t)M * N);
    double *R = malloc(sizeof(double) * M * N);
    int lda = ta ? M : K, ldb = tb ? K : N;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)(ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
            R[i * N + j] = 0.5 * s + 2.0 * C[i * N + j];
        }
    mc_sgemm(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 2.0f, C, N);
    double err = max_rel(C, R, (size_t)M * N);
    CHECK(err < 1e-5, "gemm ta=%d tb=%d %dx%dx%d rel err %g", ta, tb, M, N, K, err);
    free(A); free(B); free(C); free(R);
}

/* mc_sgemm_bias: row and column biases, overwrite and accumulate */
static void test_gemm_bias(int tb, int M, int N, int K, float beta) {
    float *A = rand_buf((size_t)M * K), *B = rand_buf((size_t)K * N), *C = rand_buf((size_t)M * N);
    float *bm = rand_buf(M), *bn = rand_buf(N);
    double *R = malloc(sizeof(double) * M * N);
    int ldb = tb ? K : N;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = beta * C[i * N + j] + bm[i] + bn[j];
            for (int k = 0; k < K; k++) s += (double)A[i * K + k] * (tb ? B[j * ldb + k] : B[k * ldb + j]);
            R[i * N + j] = s;
        }
    mc_sgemm_bias(0, tb, M, N, K, A, K, B, ldb, beta, C, N, bm, bn);
    double err = max_rel(C, R, (size_t)M * N);
    CHECK(err < 1e-5, "gemm+bias tb=%d %dx%dx%d beta=%g rel err %g", tb, M, N, K, beta, err);
    free(A); free(B); free(C); free(R); free(bm); free(bn);
}

/* The same product with 1 and 2 threads: bitwise equal (tiles are reduced in a fixed order). */
static void test_gemm_threads(int tb, int M, int N, int K) {
    float *A = rand_buf((size_t)M * K), *B = rand_buf((size_t)K * N);
    float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
    mc_threads_set(1);
    mc_sgemm(0, tb, M, N, K, 1.f, A, K, B, tb ? K : N, 0.f, C1, N);
    mc_threads_set(2);
    mc_sgemm(0, tb, M, N, K, 1.f, A, K, B, tb ? K : N, 0.f, C2, N);
    mc_threads_set(0);
    size_t diff = 0;
    for (size_t i = 0; i < (size_t)M * N; i++) diff += C1[i] != C2[i];
    CHECK(diff == 0, "gemm tb=%d %dx%dx%d: %zu elements differ between 1 and 2 threads", tb, M, N, K, diff);
    free(A); free(B); free(C1); free(C2);
}

static double gelu_ref(double v) { return 0.5 * v * (1.0 + erf(v / sqrt(2.0))); }

/* mc_sgemm_ep: GELU and/or a row-scaled residual after the product, fused into the tiles
 * (tb = 0 with a row bias; tb = 1 with a column bias: the transposed Linear problem) or as a
 * pass after them (a column bias with tb = 0, K = 0); res must equal res0 + s[i] * C. */
static void test_gemm_epilogue(int tb, int M, int N, int K, int gelu, int resid, int col_bias) {
    float *A = rand_buf((size_t)M * K), *B = rand_buf((size_t)K * N), *C = rand_buf((size_t)M * N);
    float *bias = rand_buf(col_bias ? N : M), *res = rand_buf((size_t)M * N), *sc = rand_buf(M);
    double *R = malloc(sizeof(double) * M * N), *RR = malloc(sizeof(double) * M * N);
    int ldb = tb ? K : N;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double v = col_bias ? bias[j] : bias[i];
            for (int k = 0; k < K; k++) v += (double)A[i * K + k] * (tb ? B[j * ldb + k] : B[k * ldb + j]);
            R[i * N + j] = gelu ? gelu_ref(v) : v;
            RR[i * N + j] = res[i * N + j] + (resid ? (double)sc[i] * R[i * N + j] : 0.0);
        }
    mc_gemm_epilogue ep = {gelu, resid ? res : NULL, resid ? sc : NULL, N};
    mc_sgemm_ep(0, tb, M, N, K, A, K, B, ldb, 0.f, C, N, col_bias ? NULL : bias, col_bias ? bias : NULL, &ep);
    double err = max_rel(C, R, (size_t)M * N), err2 = max_rel(res, RR, (size_t)M * N);
    CHECK(err < 1e-5 && err2 < 1e-5, "gemm epilogue tb=%d %dx%dx%d gelu=%d res=%d: rel err %g, residual %g", tb, M,
          N, K, gelu, resid, err, err2);
    /* and bit for bit the unfused sequence: the product, then mc_gelu_forward */
    float *U = malloc(sizeof(float) * M * N);
    mc_sgemm_bias(0, tb, M, N, K, A, K, B, ldb, 0.f, U, N, col_bias ? NULL : bias, col_bias ? bias : NULL);
    if (gelu) mc_gelu_forward(U, U, (size_t)M * N);
    CHECK(memcmp(U, C, sizeof(float) * M * N) == 0, "gemm epilogue tb=%d %dx%dx%d gelu=%d: differs from unfused", tb, M,
          N, K, gelu);
    free(A); free(B); free(C); free(U); free(bias); free(res); free(sc); free(R); free(RR);
}

/* Convolution epilogues against the unfused sequence conv; GELU; x += ls * y, on the GEMM
 * path (1x1, im2col) and the depthwise path: equal bit for bit. */
static void test_conv_epilogue(int cin, int cout, int groups, int k, int gelu, int resid) {
    int B = 2, H = 9, W = 11, P = H * W; /* stride 1, same padding */
    mc_conv2d_shape s = {cin, cout, k, k, 1, k / 2, k / 2, groups};
    size_t n = (size_t)B * cout * P;
    float *x = rand_buf((size_t)B * cin * P), *w = rand_buf((size_t)cout * (cin / groups) * k * k);
    float *b = rand_buf(cout), *ls = rand_buf(cout), *r1 = rand_buf(n), *r2 = malloc(n * sizeof(float));
    float *y1 = malloc(n * sizeof(float)), *y2 = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) r2[i] = r1[i];
    mc_conv2d_forward(y1, x, w, b, &s, B, H, W);
    if (gelu) mc_gelu_forward(y1, y1, n);
    if (resid) mc_add_scaled_channels(r1, y1, ls, B, cout, P);
    mc_conv_epilogue ep = {gelu, resid ? r2 : NULL, resid ? ls : NULL};
    mc_conv2d_forward_ep(y2, x, w, b, &s, B, H, W, &ep);
    double d = 0, d2 = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs(y1[i] - y2[i]) / fmax(1.0, fabs(y1[i])));
        d2 = fmax(d2, fabs(r1[i] - r2[i]) / fmax(1.0, fabs(r1[i])));
    }
    CHECK(d == 0 && d2 == 0, "conv epilogue cin=%d cout=%d g=%d k=%d gelu=%d res=%d: %g, residual %g", cin, cout,
          groups, k, gelu, resid, d, d2);
    free(x); free(w); free(b); free(ls); free(r1); free(r2); free(y1); free(y2);
}

static void test_conv(int B, int cin, int cout, int groups, int k, int stride, int pad, int H, int W) {
    mc_conv2d_shape s = {cin, cout, k, k, stride, pad, pad, groups};
    int Ho = mc_conv_out(H, k, stride, pad), Wo = mc_conv_out(W, k, stride, pad), cin_g = cin / groups;
    float *x = rand_buf((size_t)B * cin * H * W), *w = rand_buf((size_t)cout * cin_g * k * k), *bias = rand_buf(cout);
    float *y = malloc(sizeof(float) * B * cout * Ho * Wo);
    double *r = malloc(sizeof(double) * B * cout * Ho * Wo);
    for (int b = 0; b < B; b++)
        for (int co = 0; co < cout; co++) {
            int g = co / (cout / groups);
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++) {
                    double acc = bias[co];
                    for (int ci = 0; ci < cin_g; ci++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                acc += (double)x[((b * cin + g * cin_g + ci) * H + iy) * W + ix] *
                                       w[((co * cin_g + ci) * k + ky) * k + kx];
                            }
                    r[((b * cout + co) * Ho + oy) * Wo + ox] = acc;
                }
        }
    mc_conv2d_forward(y, x, w, bias, &s, B, H, W);
    double err = max_rel(y, r, (size_t)B * cout * Ho * Wo);
    CHECK(err < 1e-5, "conv cin=%d cout=%d g=%d k=%d s=%d p=%d rel err %g", cin, cout, groups, k, stride, pad, err);
    free(x); free(w); free(bias); free(y); free(r);
}

static void test_attention(int N, int T, int H, int D, int causal) {
    int C = H * D;
    float *qkv = rand_buf((size_t)N * T * 3 * C), *out = malloc(sizeof(float) * N * T * C);
    double *ref = malloc(sizeof(double) * N * T * C), *p = malloc(sizeof(double) * T);
    float scale = 1.0f / sqrtf((float)D);
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++) {
                double m = -INFINITY, sum = 0;
                for (int j = 0; j < T; j++) {
                    double s = 0;
                    for (int d = 0; d < D; d++)
                        s += (double)qkv[(n * T + i) * 3 * C + h * D + d] * scale * qkv[(n * T + j) * 3 * C + C + h * D + d];
                    p[j] = (causal && j > i) ? -INFINITY : s;
                    m = fmax(m, p[j]);
                }
                for (int j = 0; j < T; j++) { p[j] = exp(p[j] - m); sum += p[j]; }
                for (int d = 0; d < D; d++) {
                    double o = 0;
                    for (int j = 0; j < T; j++) o += p[j] / sum * qkv[(n * T + j) * 3 * C + 2 * C + h * D + d];
                    ref[(n * T + i) * C + h * D + d] = o;
                }
            }
    mc_attention_forward(out, qkv, N, T, H, D, scale, causal);
    double err = max_rel(out, ref, (size_t)N * T * C);
    CHECK(err < 1e-5, "attention N=%d T=%d H=%d D=%d causal=%d rel err %g", N, T, H, D, causal, err);
    free(qkv); free(out); free(ref); free(p);
}

static void test_layernorm(void) {
    int N = 5, C = 77;
    float *x = rand_buf((size_t)N * C), *w = rand_buf(C), *b = rand_buf(C), *y = malloc(sizeof(float) * N * C);
    double *r = malloc(sizeof(double) * N * C);
    for (int n = 0; n < N; n++) {
        double mean = 0, var = 0;
        for (int c = 0; c < C; c++) mean += x[n * C + c];
        mean /= C;
        for (int c = 0; c < C; c++) var += (x[n * C + c] - mean) * (x[n * C + c] - mean);
        var /= C;
        for (int c = 0; c < C; c++) r[n * C + c] = (x[n * C + c] - mean) / sqrt(var + 1e-5) * w[c] + b[c];
    }
    mc_layernorm_forward(y, x, w, b, N, C, 1e-5f);
    double err = max_rel(y, r, (size_t)N * C);
    CHECK(err < 1e-5, "layernorm rel err %g", err);
    free(x); free(w); free(b); free(y); free(r);
}

/* exact (erf) GELU on a ramp over [-12, 12] and odd lengths (vector tails) */
static void test_gelu(void) {
    size_t n = 100003;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) x[i] = (float)(((double)i / (n - 1) - 0.5) * 24.0);
    mc_gelu_forward(y, x, n);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double r = 0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0)));
        worst = fmax(worst, fabs(y[i] - r) / fmax(1.0, fabs(x[i])));
    }
    CHECK(worst < 3e-7, "gelu abs err %g", worst);
    printf("gelu max |err| / max(1,|x|) = %.3g\n", worst);
    mc_gelu_forward(y, x, 7);
    for (int i = 0; i < 7; i++) CHECK(fabs(y[i] - 0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0)))) < 3e-7 * fabs(x[i]), "gelu short");
    free(x); free(y);
}

/* mc_thread_scratch (the GEMM's and depthwise planes' buffers): 64-byte aligned, the same
 * memory while big enough, slots kept apart, contents kept when not grown */
static void test_thread_scratch(void) {
    float *a = mc_thread_scratch(MC_SCRATCH_GEMM, 1000 * sizeof(float));
    float *b = mc_thread_scratch(MC_SCRATCH_DEPTHWISE, 10 * sizeof(float));
    CHECK(a && b && a != b && (uintptr_t)a % 64 == 0 && (uintptr_t)b % 64 == 0, "thread scratch: %p %p", (void *)a, (void *)b);
    if (!a || !b) return;
    a[999] = 7.f;
    CHECK(mc_thread_scratch(MC_SCRATCH_GEMM, 500 * sizeof(float)) == a && a[999] == 7.f, "thread scratch not reused");
    float *c = mc_thread_scratch(MC_SCRATCH_GEMM, (size_t)1 << 22);
    CHECK(c && (uintptr_t)c % 64 == 0, "thread scratch did not grow");
    if (c) c[((size_t)1 << 20) - 1] = 1.f; /* all of it is usable */
    CHECK(!mc_thread_scratch(MC_SCRATCH_SLOTS, 16), "thread scratch: a slot out of range gave memory");
}

static void run_all(void) {
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            test_gemm(ta, tb, 1, 1, 1);
            test_gemm(ta, tb, 7, 17, 5);
            test_gemm(ta, tb, 64, 300, 257);
            test_gemm(ta, tb, 13, 1100, 600);
            test_gemm(ta, tb, 77, 130, 1100); /* tokens x features, deep K (transposed passes) */
            test_gemm(ta, tb, 20, 100, 1700); /* the 4x24 tiles (AVX2, AVX-512): two passes when transposed */
        }
    /* N just above 16 / 32 / 64 (each tile shape), M not a multiple of 6 or 8 */
    test_gemm_bias(0, 50, 17, 40, 0.f);
    test_gemm_bias(0, 50, 65, 300, 1.f);
    test_gemm_bias(0, 9, 4096 + 33, 19, 0.f);
    test_gemm_bias(1, 77, 96, 520, 0.f);
    test_gemm_bias(1, 77, 40, 2100, 1.f);
    test_gemm_bias(0, 3, 5, 0, 1.f); /* K = 0: C = beta C + biases */
    test_gemm_epilogue(0, 50, 300, 600, 1, 1, 0); /* deep K: the epilogue after the last pass only */
    test_gemm_epilogue(0, 13, 65, 40, 0, 1, 0);
    test_gemm_epilogue(0, 9, 33, 20, 1, 0, 0);
    test_gemm_epilogue(1, 77, 200, 300, 1, 0, 1); /* a Linear with GELU (stored transposed) */
    test_gemm_epilogue(1, 20, 50, 30, 1, 1, 1);   /* residual: not transposed, fused */
    test_gemm_epilogue(0, 11, 40, 30, 1, 1, 1);   /* column bias: the epilogue as a pass */
    test_gemm_epilogue(0, 5, 7, 0, 1, 1, 0);      /* K = 0 */
    test_conv_epilogue(16, 24, 1, 1, 1, 1);       /* 1x1: fused */
    test_conv_epilogue(6, 10, 1, 3, 1, 0);        /* im2col: fused */
    test_conv_epilogue(8, 8, 8, 7, 1, 1);         /* depthwise: passes */
    test_gemm_threads(0, 70, 300, 700);
    test_gemm_threads(1, 77, 200, 600);
    test_conv(2, 3, 8, 1, 3, 2, 1, 17, 15);   /* dense stem-like */
    test_conv(1, 8, 8, 8, 3, 1, 1, 9, 9);     /* depthwise */
    test_conv(1, 8, 16, 8, 7, 2, 3, 16, 16);  /* depthwise with multiplier 2 */
    test_conv(2, 16, 12, 4, 3, 1, 1, 6, 7);   /* grouped */
    test_conv(2, 6, 6, 6, 7, 1, 3, 5, 11);    /* depthwise 7x7, image narrower than the kernel reach */
    test_conv(1, 4, 8, 4, 7, 2, 3, 3, 2);     /* depthwise strided, tiny image */
    test_conv(1, 4, 8, 4, 3, 2, 1, 1, 1);     /* 1x1 image */
    test_conv(1, 5, 5, 5, 1, 2, 0, 9, 8);     /* depthwise 1x1 strided */
    test_conv(1, 16, 24, 1, 1, 1, 0, 5, 5);   /* 1x1 */
    test_conv(1, 3, 8, 1, 4, 4, 0, 16, 16);   /* patchify */
    test_attention(2, 77, 2, 64, 0);
    test_attention(1, 77, 2, 64, 1);
    test_attention(1, 64, 3, 32, 0);
    test_layernorm();
    test_gelu();
    test_thread_scratch();
}

int main(void) {
    for (int isa = 0; isa < MC_ISA_COUNT; isa++) {
        mc_err e = {0};
        if (!mc_isa_supported((mc_isa)isa)) {
            printf("%s: not supported here, skipped\n", mc_isa_name((mc_isa)isa));
            continue;
        }
        CHECK(mc_isa_force((mc_isa)isa, &e) == 0, "force %s: %s", mc_isa_name((mc_isa)isa), e.msg);
        CHECK(mc_kernels_get()->isa == (mc_isa)isa, "kernels of %s in use", mc_isa_name((mc_isa)isa));
        printf("== kernels: %s\n", mc_kernels_get()->name);
        run_all();
    }
    return mc_test_finish("nn");
}
