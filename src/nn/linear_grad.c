/* Backward of the linear maps (nn.Linear and the `x @ P` projections), see layers.h.
 * Both are two GEMMs and a column sum:
 *   nn.Linear  y = x W^T + b:  dW [out,in] += dy^T x,  db += colsum(dy),  dx = dy W
 *   projection y = x P:        dP [in,out] += x^T dy,                     dx = dy P^T */
#include "core/parallel.h"
#include "nn/gemm.h"
#include "nn/layers.h"

/* db[j] += sum_n dy[n, j], in double, n in order; parallel (core/parallel.h) over blocks of
 * CB columns, each block summed row by row (contiguous loads, instead of one strided pass per
 * column). */
#define CB 64
typedef struct colsum_job {
    float *db;
    const float *dy;
    int N, cols;
} colsum_job;

static void colsum_blocks(void *arg, int b0, int b1) {
    const colsum_job *c = arg;
    for (int blk = b0; blk < b1; blk++) {
        int j0 = blk * CB, nj = c->cols - j0 < CB ? c->cols - j0 : CB;
        double acc[CB] = {0};
        for (int n = 0; n < c->N; n++) {
            const float *r = c->dy + (size_t)n * c->cols + j0;
            for (int j = 0; j < nj; j++) acc[j] += r[j];
        }
        for (int j = 0; j < nj; j++) c->db[j0 + j] += (float)acc[j];
    }
}

static void colsum_acc(float *db, const float *dy, int N, int cols) {
    int nb = (cols + CB - 1) / CB;
    colsum_job c = {db, dy, N, cols};
    mc_parallel_for(nb, mc_parallel_grain(nb, 4), colsum_blocks, &c);
}
#undef CB

void mc_linear_backward(float *dx, float *dW, float *db, const float *dy, const float *x, const float *W, int N,
                        int in_f, int out_f, int acc_dx) {
    if (dW) mc_sgemm(1, 0, out_f, in_f, N, 1.f, dy, out_f, x, in_f, 1.f, dW, in_f);
    if (db) colsum_acc(db, dy, N, out_f);
    if (dx) mc_sgemm(0, 0, N, in_f, out_f, 1.f, dy, out_f, W, in_f, acc_dx ? 1.f : 0.f, dx, in_f);
}

void mc_matmul_backward(float *dx, float *dP, const float *dy, const float *x, const float *P, int N, int in_f,
                        int out_f, int acc_dx) {
    if (dP) mc_sgemm(1, 0, in_f, out_f, N, 1.f, x, in_f, dy, out_f, 1.f, dP, out_f);
    if (dx) mc_sgemm(0, 1, N, in_f, out_f, 1.f, dy, out_f, P, out_f, acc_dx ? 1.f : 0.f, dx, in_f);
}
