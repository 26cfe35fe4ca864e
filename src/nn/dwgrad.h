/* dwgrad.h - per-instruction-set kernels of the depthwise convolution backward
 * (src/nn/dw_grad.inc, used by conv2d_grad.c); chosen with the instruction set of
 * mc_kernels_get() (AVX-512 CPUs use the AVX2 one: the plane rows are short). */
#ifndef MC_NN_DWGRAD_H
#define MC_NN_DWGRAD_H

#include <stddef.h>

/* the largest kernel width and tap count the kernels take */
#define DWG_MAX_KW 16
#define DWG_MAX_TAPS 256

/* See dw_grad.inc: acc[kh*kw] += the weight gradient of one plane. */
typedef void (*mc_dw_wgrad_fn)(double *acc, const float *xp, int rs, const size_t *koff, int st, const float *g, int gs, int Ho, int Wo, int kh,
                               int kw);

/* The kernel for the active instruction set and its vector width in floats (*dwv). */
mc_dw_wgrad_fn mc_dw_wgrad_get(int *dwv);

void mc_dw_wgrad_portable(double *acc, const float *xp, int rs, const size_t *koff, int st, const float *g, int gs, int Ho, int Wo, int kh,
                          int kw);
void mc_dw_wgrad_avx2(double *acc, const float *xp, int rs, const size_t *koff, int st, const float *g, int gs, int Ho, int Wo, int kh, int kw);

#endif
