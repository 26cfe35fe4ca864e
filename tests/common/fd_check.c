/* Finite-difference gradient checks; see fd_check.h. */
#include "common/fd_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

double mc_fd_dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static double central(const mc_fd_opts *o, void *k, mc_fd_loss loss, float *param, size_t i, float h, int *kink) {
    float v = param[i];
    param[i] = v + h;
    double lp = loss(k);
    uint64_t sp = o->kink ? o->kink(k) : 0;
    param[i] = v - h;
    double lm = loss(k);
    uint64_t sm = o->kink ? o->kink(k) : 0;
    param[i] = v;
    *kink = sp != sm;
    return (lp - lm) / (2.0 * (double)h);
}

double mc_fd_error(const mc_fd_opts *o, void *k, mc_fd_loss loss, float *param, const float *g, size_t n,
                   int samples) {
    size_t step = n > (size_t)samples ? n / samples : 1;
    double gmax = 0, err = 0;
    for (size_t i = step / 2; i < n; i += step) gmax = fmax(gmax, fabs(g[i]));
    double scale = fmax(gmax, o->floor);
    static const float steps[3] = {1.f, 0.25f, 4.f};
    int verbose = getenv("FD_VERBOSE") != NULL;
    for (size_t i = step / 2; i < n; i += step) {
        double d = INFINITY, fd0 = 0;
        int counted = 0;
        for (int j = 0; j < 3 && d > o->tol * scale; j++) {
            int kink;
            double fd = central(o, k, loss, param, i, o->h * steps[j], &kink);
            if (j == 0) fd0 = fd;
            if (kink) continue;
            counted = 1;
            d = fmin(d, fabs(fd - g[i]));
        }
        if (!counted) d = 0; /* a ReLU input within h/4 of zero: no derivative to compare */
        err = fmax(err, d);
        if (verbose) printf("    [%zu] fd %.6g analytic %.6g%s\n", i, fd0, g[i], counted ? "" : " (kink)");
    }
    return err / scale;
}
