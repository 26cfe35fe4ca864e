/* Finite-difference gradient checks; see fd_check.h. */
#include "common/fd_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/test_util.h"

double mc_fd_dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

double mc_fd_rel_l2(const float *a, const float *b, size_t n) {
    double d = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        r += (double)b[i] * b[i];
    }
    return sqrt(d / (r > 0 ? r : 1));
}

float *mc_fd_rand(uint64_t *state, size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) mc_test_fatal("out of memory for %zu random floats", n);
    for (size_t i = 0; i < n; i++) {
        uint64_t x = *state;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        *state = x;
        p[i] = (float)((x >> 40) * (1.0 / 16777216.0) * 2.0 - 1.0);
    }
    return p;
}

int mc_fd_is_buffer(const char *name) { return strstr(name, "running_") || strstr(name, "num_batches_tracked"); }

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

int mc_fd_check_params(const mc_fd_opts *o, void *ctx, mc_fd_loss loss, const mc_tensor_map *params,
                       const mc_grad_map *grads, const char *prefix, int samples, const char *label, double worst) {
    int n = 0;
    char wname[200] = "input";
    size_t plen = strlen(prefix);
    for (int i = 0; i < params->count; i++) {
        const char *name = params->items[i].name;
        if (strncmp(name, prefix, plen) || mc_fd_is_buffer(name) || params->items[i].t.dtype != MC_DTYPE_F32) continue;
        if (plen && prefix[plen - 1] != '.' && name[plen] != '.' && name[plen] != 0) continue; /* 0.1 vs 0.10 */
        float *p = (float *)params->items[i].t.data;
        double e = mc_fd_error(o, ctx, loss, p, mc_grad_of(grads, p), (size_t)mc_tensor_numel(&params->items[i].t),
                               samples);
        CHECK(e < o->tol, "%s: %s fd rel err %.3g", label, name + plen, e);
        if (e > worst) worst = e, snprintf(wname, sizeof wname, "%s", name + plen);
        n++;
    }
    printf("  %-38s input + %2d parameters: worst fd rel err %.2e (%s)\n", label, n, worst, wname);
    CHECK(n > 0, "%s: no parameters under %s", label, prefix);
    return n;
}

float *mc_fd_find_map(const void *map, const char *name, size_t *numel) {
    const mc_tensor *t = mc_test_tensor(map, name);
    *numel = (size_t)mc_tensor_numel(t);
    return (float *)t->data;
}

float *mc_fd_find_store(const void *store, const char *name, size_t *numel) {
    const mc_param_store *s = store;
    const mc_param *p = mc_param_store_find(s, name);
    if (!p) mc_test_fatal("parameter %s not declared", name);
    *numel = p->numel;
    return s->data + p->offset;
}

double mc_fd_check_slice(const mc_fd_opts *o, void *ctx, mc_fd_loss loss, mc_fd_find find, const void *params,
                         const mc_grad_map *grads, const char *name, size_t first, size_t count, int samples,
                         const char *label) {
    size_t numel;
    float *p = find(params, name, &numel);
    if (first > numel || count > numel - first) mc_test_fatal("%s: elements %zu + %zu of %zu", name, first, count, numel);
    p += first;
    double d = mc_fd_error(o, ctx, loss, p, mc_grad_of(grads, p), count ? count : numel - first, samples);
    CHECK(d < o->tol, "%s: %s (elements from %zu) fd rel err %.3g", label, name, first, d);
    return d;
}

double mc_fd_check_names(const mc_fd_opts *o, void *ctx, mc_fd_loss loss, mc_fd_find find, const void *params,
                         const mc_grad_map *grads, const char *const *names, size_t n, int samples, const char *label) {
    double worst = 0;
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, mc_fd_check_slice(o, ctx, loss, find, params, grads, names[i], 0, 0, samples, label));
    return worst;
}

int mc_fd_running_stats(const mc_tensor_map *params, const mc_tensor_map *golden, const char *prefix, double *worst,
                        char *worst_name, size_t wn) {
    int n = 0;
    *worst = 0;
    if (wn) worst_name[0] = 0;
    for (int i = 0; i < params->count; i++) {
        const char *name = params->items[i].name;
        if (strncmp(name, prefix, strlen(prefix)) || !strstr(name, "running_")) continue;
        char gname[256];
        snprintf(gname, sizeof gname, "bn1.%s", name);
        const mc_tensor *ref = mc_tensor_map_find(golden, gname);
        CHECK(ref != NULL, "golden tensor %s missing", gname);
        if (!ref) continue;
        size_t k = (size_t)mc_tensor_numel(ref);
        float *rv = malloc(k * sizeof(float));
        if (!rv) mc_test_fatal("out of memory");
        mc_tensor_to_f32(ref, rv);
        double d = mc_fd_rel_l2((const float *)params->items[i].t.data, rv, k);
        if (d > *worst) {
            *worst = d;
            if (wn) snprintf(worst_name, wn, "%s", name);
        }
        free(rv);
        n++;
    }
    return n;
}
