/* Pointwise and per-channel kernels. */
#include <math.h>

#include "core/parallel.h"
#include "nn/isa.h"
#include "nn/ops.h"
#include "nn/simd_expf.h"

void mc_batchnorm_eval_coeffs(float *scale, float *shift, const float *w, const float *b,
                              const float *mean, const float *var, float eps, int C) {
    for (int c = 0; c < C; c++) {
        /* PyTorch evaluates (x - mean) / sqrt(var + eps) * w + b; this affine form is equal
         * up to float rounding (well inside the 1e-4 relative budget). */
        float inv = 1.0f / sqrtf(var[c] + eps);
        scale[c] = w[c] * inv;
        shift[c] = b[c] - mean[c] * scale[c];
    }
}

/* Per-channel maps over planes [B*C][HW], run in parallel over the planes. */
enum { CH_AFFINE, CH_AFFINE_ADD, CH_SCALE, CH_ADD_SCALED };
typedef struct ch_job {
    float *y;
    const float *x, *scale, *shift;
    int C, HW, op;
} ch_job;

static void ch_planes(void *arg, int p0, int p1) {
    const ch_job *j = arg;
    int HW = j->HW;
    for (int p = p0; p < p1; p++) {
        size_t o = (size_t)p * HW;
        int c = p % j->C;
        float *y = j->y + o;
        const float *x = j->x ? j->x + o : NULL;
        switch (j->op) {
        case CH_AFFINE: {
            float sc = j->scale[c], sh = j->shift[c];
            for (int i = 0; i < HW; i++) y[i] = x[i] * sc + sh;
        } break;
        case CH_AFFINE_ADD: {
            float sc = j->scale[c], sh = j->shift[c];
            for (int i = 0; i < HW; i++) y[i] += x[i] * sc + sh;
        } break;
        case CH_SCALE: { /* scale is the gate array [B*C] */
            float s = j->scale[p];
            for (int i = 0; i < HW; i++) y[i] *= s;
        } break;
        default: {
            float sc = j->scale[c];
            for (int i = 0; i < HW; i++) y[i] += sc * x[i];
        } break;
        }
    }
}

/* HW == 1 (token-major [B, C]: the text tower's layer scales): rows of C, the same arithmetic
 * per element without a plane (and a switch) per element */
static void ch_rows(void *arg, int r0, int r1) {
    const ch_job *j = arg;
    int C = j->C;
    const float *sc = j->scale, *sh = j->shift;
    for (int r = r0; r < r1; r++) {
        float *y = j->y + (size_t)r * C;
        const float *x = j->x ? j->x + (size_t)r * C : NULL;
        switch (j->op) {
        case CH_AFFINE:
            for (int c = 0; c < C; c++) y[c] = x[c] * sc[c] + sh[c];
            break;
        case CH_AFFINE_ADD:
            for (int c = 0; c < C; c++) y[c] += x[c] * sc[c] + sh[c];
            break;
        case CH_SCALE:
            for (int c = 0; c < C; c++) y[c] *= sc[(size_t)r * C + c];
            break;
        default:
            for (int c = 0; c < C; c++) y[c] += sc[c] * x[c];
            break;
        }
    }
}

static void per_channel(int op, float *y, const float *x, const float *scale, const float *shift, int B, int C, int HW) {
    ch_job j = {y, x, scale, shift, C, HW, op};
    int n = HW == 1 ? B : B * C;
    /* small maps are not worth waking a thread for */
    int grain = (size_t)B * C * HW < 16384 ? n : mc_parallel_grain(n, 2);
    mc_parallel_for(n, grain, HW == 1 ? ch_rows : ch_planes, &j);
}

void mc_channel_affine_forward(float *y, const float *x, const float *scale, const float *shift,
                               int B, int C, int HW) {
    per_channel(CH_AFFINE, y, x, scale, shift, B, C, HW);
}

void mc_channel_affine_add(float *y, const float *x, const float *scale, const float *shift, int B, int C, int HW) {
    per_channel(CH_AFFINE_ADD, y, x, scale, shift, B, C, HW);
}

void mc_scale_channels(float *y, const float *g, int B, int C, int HW) {
    per_channel(CH_SCALE, y, NULL, g, NULL, B, C, HW);
}

void mc_add_scaled_channels(float *y, const float *x, const float *scale, int B, int C, int HW) {
    per_channel(CH_ADD_SCALED, y, x, scale, NULL, B, C, HW);
}

typedef struct map_job {
    float *y;
    const float *x;
    void (*fn)(float *, const float *, size_t);
} map_job;

#define MAP_GRAIN 4096 /* elements per chunk of the pointwise maps */

static void map_chunk(void *arg, int c0, int c1) {
    const map_job *j = arg;
    size_t b = (size_t)c0 * MAP_GRAIN, e = (size_t)c1 * MAP_GRAIN;
    j->fn(j->y + b, j->x + b, e - b);
}

/* fn over [0, n): whole chunks in parallel, the tail in the caller */
static void map_parallel(void (*fn)(float *, const float *, size_t), float *y, const float *x, size_t n) {
    map_job j = {y, x, fn};
    size_t chunks = n / MAP_GRAIN;
    if (chunks > 0x7fffffff) chunks = 0x7fffffff;
    mc_parallel_for((int)chunks, mc_parallel_grain((int)chunks, 2), map_chunk, &j);
    size_t done = chunks * MAP_GRAIN;
    if (done < n) fn(y + done, x + done, n - done);
}

static void add_serial(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

static void sub_serial(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] -= x[i];
}

static void neg_serial(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = -x[i];
}

/* The exact erf form, with the vector erff of the instruction set in use (gelu.inc). */
void mc_gelu_forward(float *y, const float *x, size_t n) { map_parallel(mc_kernels_get()->gelu, y, x, n); }

/* QuickGELU as open_clip (OpenAI CLIP) computes it: x * sigmoid(1.702 * x) in float32, the
 * constant rounded to float as torch does for a Python scalar. expf through libmvec's vector
 * variants where available (nn/simd_expf.h, as erff in gelu.inc). */
static void quickgelu_serial(float *y, const float *x, size_t n) {
#ifdef MC_EXPF_SIMD
#pragma omp simd
#endif
    for (size_t i = 0; i < n; i++) y[i] = x[i] * (1.0f / (1.0f + expf(-(1.702f * x[i]))));
}

void mc_quickgelu_forward(float *y, const float *x, size_t n) { map_parallel(quickgelu_serial, y, x, n); }

void mc_relu_forward(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.f ? x[i] : 0.f;
}

void mc_sigmoid_forward(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}

void mc_add_forward(float *y, const float *x, size_t n) { map_parallel(add_serial, y, x, n); }
void mc_sub_forward(float *y, const float *x, size_t n) { map_parallel(sub_serial, y, x, n); }
void mc_neg_forward(float *y, const float *x, size_t n) { map_parallel(neg_serial, y, x, n); }

void mc_softmax_rows(float *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        float *v = x + (size_t)r * cols, m = -INFINITY, sum = 0.f;
        for (int j = 0; j < cols; j++) m = v[j] > m ? v[j] : m;
        for (int j = 0; j < cols; j++) { v[j] = expf(v[j] - m); sum += v[j]; }
        float inv = 1.0f / sum;
        for (int j = 0; j < cols; j++) v[j] *= inv;
    }
}

void mc_mean_hw_forward(float *out, const float *x, int B, int C, int HW) {
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            const float *v = x + ((size_t)b * C + c) * HW;
            double s = 0;
            for (int i = 0; i < HW; i++) s += v[i];
            out[(size_t)b * C + c] = (float)(s / HW);
        }
}

void mc_transpose_chw_to_hwc(float *out, const float *x, int B, int C, int HW) {
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < HW; i++) out[((size_t)b * HW + i) * C + c] = x[((size_t)b * C + c) * HW + i];
}

void mc_transpose_hwc_to_chw(float *out, const float *x, int B, int C, int HW) {
    for (int b = 0; b < B; b++)
        for (int i = 0; i < HW; i++)
            for (int c = 0; c < C; c++) out[((size_t)b * C + c) * HW + i] = x[((size_t)b * HW + i) * C + c];
}

void mc_l2_normalize_rows(float *v, int n, int d) {
    for (int r = 0; r < n; r++) {
        float *x = v + (size_t)r * d;
        double s = 0;
        for (int j = 0; j < d; j++) s += (double)x[j] * x[j];
        if (s > 0) {
            float inv = (float)(1.0 / sqrt(s));
            for (int j = 0; j < d; j++) x[j] *= inv;
        }
    }
}
