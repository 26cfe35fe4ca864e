/* The depthwise weight-gradient kernel with AVX2 + FMA (compiled with -mavx2 -mfma for this
 * file only; see dwgrad.h). Also used on AVX-512 CPUs. */
#include "nn/dwgrad.h"

#include "nn/kernel_attr.h"

#if defined(__x86_64__) && defined(__GNUC__)
typedef float dvf __attribute__((vector_size(32), aligned(4), may_alias));
#define DWV 8
#include "nn/dw_grad.inc"

void mc_dw_wgrad_avx2(double *acc, const float *xp, int rs, const size_t *koff, int st, const float *g, int gs, int Ho, int Wo, int kh, int kw) {
    dw_wgrad_plane(acc, xp, rs, koff, st, g, gs, Ho, Wo, kh, kw);
}
#endif
