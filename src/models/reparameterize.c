#include "models/reparameterize.h"

#include <math.h>

static float bn_scale(const mc_bn_params *bn, int c) { return bn->weight[c] / sqrtf(bn->var[c] + bn->eps); }

void mc_reparameterize_add_conv_bn(float *w_acc, float *b_acc, int cout, int cin_g, int kh, int kw,
                            const float *w, const float *bias, int sh, int sw, const mc_bn_params *bn) {
    int oy = (kh - sh) / 2, ox = (kw - sw) / 2;
    for (int co = 0; co < cout; co++) {
        float s = bn ? bn_scale(bn, co) : 1.f;
        for (int ci = 0; ci < cin_g; ci++)
            for (int y = 0; y < sh; y++)
                for (int x = 0; x < sw; x++)
                    w_acc[((co * cin_g + ci) * kh + y + oy) * kw + x + ox] += w[((co * cin_g + ci) * sh + y) * sw + x] * s;
        float b = bias ? bias[co] : 0.f;
        b_acc[co] += bn ? bn->bias[co] + (b - bn->mean[co]) * s : b;
    }
}

void mc_reparameterize_add_identity_bn(float *w_acc, float *b_acc, int cout, int cin_g, int kh, int kw,
                                const mc_bn_params *bn) {
    for (int co = 0; co < cout; co++) {
        float s = bn_scale(bn, co);
        w_acc[((co * cin_g + co % cin_g) * kh + kh / 2) * kw + kw / 2] += s;
        b_acc[co] += bn->bias[co] - bn->mean[co] * s;
    }
}

void mc_reparameterize_add_identity(float *w_acc, int cout, int cin_g, int kh, int kw, float scale) {
    for (int co = 0; co < cout; co++) w_acc[((co * cin_g + co % cin_g) * kh + kh / 2) * kw + kw / 2] += scale;
}
