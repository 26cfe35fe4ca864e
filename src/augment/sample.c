/* sample.c - drawing new augmentation parameters.
 *
 * Generator: mc_rng (core/rng.h: xoshiro256** seeded from (seed, stream); uniform doubles
 * take the top 53 bits; integers below n are unbiased by rejection). The float work (area, aspect, rounding) uses IEEE arithmetic, sqrt
 * and our own log/exp, never the platform's libm transcendentals. Results depend only on
 * (seed, stream) and the call sequence: the same on every machine, compiler and thread count. Reinforcement seeds one stream per sample (e.g. its global
 * index), so parallel workers draw the same parameters as a serial run.
 *
 * The draws follow torchvision's algorithms; the numbers are not torch's (torch's Mersenne
 * Twister / Philox streams are not reproduced), and the reference does not need them to be:
 * only the stored parameters matter for reapplying.
 */
#include <math.h>
#include <string.h>

#include "augment/augment_internal.h"

/* log and exp from +, *, / and exact scaling only, so that the crop sizes do not depend on
 * the platform's libm (whose last bits differ between implementations). IEEE double without
 * contraction (this file is built with -ffp-contract=off) makes them the same everywhere;
 * they are accurate to a few ulp, which is all the sampling needs. */
static double det_log(double x) {
    int ex;
    double m = frexp(x, &ex); /* x = m 2^ex, m in [0.5, 1) */
    if (m < 0.70710678118654752) m *= 2.0, ex--;
    double z = (m - 1.0) / (m + 1.0), z2 = z * z, term = z, sum = 0.0; /* log m = 2 atanh z */
    for (int k = 1; k < 40; k += 2) {
        sum += term / k;
        term *= z2;
    }
    return 2.0 * sum + ex * 0.69314718055994530942;
}

static double det_exp(double x) {
    if (x > 700) x = 700;
    if (x < -700) x = -700;
    double kf = nearbyint(x / 0.69314718055994530942);
    double r = x - kf * 0.69314718055994530942, term = 1.0, sum = 1.0; /* |r| <= ln2 / 2 */
    for (int k = 1; k < 30; k++) {
        term *= r / k;
        sum += term;
    }
    return ldexp(sum, (int)kf);
}

/* torch.empty(1).uniform_(lo, hi) on a float32 tensor, widened by .item(). */
static double uniform_f32(mc_rng *rng, float lo, float hi) {
    float u = (float)mc_rng_double(rng);
    float v = lo + (hi - lo) * u;
    return v < hi ? v : lo; /* float rounding may reach hi; uniform_ is half-open */
}

/* RandomResizedCrop.get_params: 10 tries of (area fraction, log-uniform aspect), then the
 * centred fallback clamped to the ratio range. Python's round() is half to even. */
static void sample_crop(mc_rng *rng, const mc_augment_config *cfg, int W, int H, mc_augment_params *p) {
    double area = (double)H * W;
    float log_r0 = (float)det_log((float)cfg->ratio[0]), log_r1 = (float)det_log((float)cfg->ratio[1]);
    for (int t = 0; t < 10; t++) {
        double target = area * uniform_f32(rng, (float)cfg->scale[0], (float)cfg->scale[1]);
        double aspect = (double)(float)det_exp((float)uniform_f32(rng, log_r0, log_r1));
        double ws = nearbyint(sqrt(target * aspect)), hs = nearbyint(sqrt(target / aspect));
        if (ws > 0 && ws <= W && hs > 0 && hs <= H) {
            int w = (int)ws, h = (int)hs;
            p->crop_i = (int)mc_rng_below(rng, (int64_t)H - h + 1);
            p->crop_j = (int)mc_rng_below(rng, (int64_t)W - w + 1);
            p->crop_h = h, p->crop_w = w;
            return;
        }
    }
    double in_ratio = (double)W / (double)H;
    double rmin = cfg->ratio[0] < cfg->ratio[1] ? cfg->ratio[0] : cfg->ratio[1];
    double rmax = cfg->ratio[0] < cfg->ratio[1] ? cfg->ratio[1] : cfg->ratio[0];
    int w = W, h = H;
    if (in_ratio < rmin) {
        h = (int)nearbyint(w / rmin);
    } else if (in_ratio > rmax) {
        w = (int)nearbyint(h * rmax);
    }
    if (h < 1) h = 1;
    if (w < 1) w = 1;
    p->crop_i = (H - h) / 2, p->crop_j = (W - w) / 2;
    p->crop_h = h, p->crop_w = w;
}

int mc_augment_sample(mc_rng *rng, const mc_augment_config *cfg, int img_w, int img_h,
                      mc_augment_params *p, mc_err *e) {
    int r = mc_augment_config_check(cfg, e);
    if (r) return r;
    if (img_w < 1 || img_h < 1 || img_w > MC_IMAGE_MAX_SIDE || img_h > MC_IMAGE_MAX_SIDE)
        return mc_fail(e, MC_E_ARG, "augment: source image size %dx%d out of range", img_w, img_h);
    memset(p, 0, sizeof *p);
    sample_crop(rng, cfg, img_w, img_h, p);
    if (cfg->hflip) p->flip = mc_rng_double(rng) < cfg->hflip_p; /* torch.rand(1) < p */
    if (cfg->rand_augment) {
        /* RandAugment skips when torch.rand(1) > p; magnitudes are those of the image that
         * enters RandAugment (the crop output). */
        p->ra_applied = !((float)mc_rng_double(rng) > (float)cfg->ra_p);
        if (p->ra_applied) {
            p->num_ops = cfg->num_ops;
            for (int k = 0; k < cfg->num_ops; k++) {
                int op = (int)mc_rng_below(rng, MC_AUG_NUM_OPS);
                double m = mc_augment_magnitude(op, cfg->magnitude, cfg->num_magnitude_bins, cfg->size_w, cfg->size_h);
                if (mc_augment_op_signed(op) && mc_rng_below(rng, 2)) m *= -1.0;
                p->ops[k].op = op;
                p->ops[k].magnitude = m;
            }
        }
    }
    return 0;
}
