/* The depthwise weight-gradient kernel for any CPU (16-byte vectors, baseline flags), and
 * the choice between the instruction sets (see dwgrad.h). */
#include "nn/dwgrad.h"

#include "nn/isa.h"
#include "nn/kernel_attr.h"

typedef float dvf __attribute__((vector_size(16), aligned(4), may_alias));
#define DWV 4
#include "nn/dw_grad.inc"

void mc_dw_wgrad_portable(double *acc, const float *xp, int rs, const size_t *koff, int st, const float *g, int gs, int Ho, int Wo, int kh,
                          int kw) {
    dw_wgrad_plane(acc, xp, rs, koff, st, g, gs, Ho, Wo, kh, kw);
}

mc_dw_wgrad_fn mc_dw_wgrad_get(int *dwv) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (mc_kernels_get()->isa >= MC_ISA_AVX2) {
        *dwv = 8;
        return mc_dw_wgrad_avx2;
    }
#endif
    *dwv = DWV;
    return mc_dw_wgrad_portable;
}
