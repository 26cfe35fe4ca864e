#include "common/test_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "io/safetensors.h"

int mc_test_failures, mc_test_checks;

void mc_test_fatal(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FATAL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

const char *mc_test_path(const char *rel) {
    static char bufs[8][1024];
    static int k;
    const char *root = getenv("MC_SHARED_DIR");
#ifdef MC_SHARED_DIR_DEFAULT
    if (!root || !*root) root = MC_SHARED_DIR_DEFAULT;
#endif
    if (!root) mc_test_fatal("MC_SHARED_DIR is not set");
    char *b = bufs[k++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", root, rel);
    return b;
}

void mc_test_load_golden(const char *rel, mc_tensor_map *m, mc_json **header) {
    mc_err e = {0};
    mc_tensor_map_init(m);
    if (mc_safetensors_load(mc_test_path(rel), m, header, &e))
        mc_test_fatal("golden data missing or unreadable: %s", e.msg);
}

const mc_tensor *mc_test_tensor(const mc_tensor_map *m, const char *name) {
    const mc_tensor *t = mc_tensor_map_find(m, name);
    if (!t) mc_test_fatal("golden tensor '%s' not found", name);
    return t;
}

double mc_test_compare(const char *what, const float *got, const mc_tensor *ref, double rel_tol) {
    int64_t n = mc_tensor_numel(ref);
    double maxref = 0, maxdiff = 0;
    for (int64_t i = 0; i < n; i++) {
        double r = mc_tensor_get_f64(ref, i), d = fabs((double)got[i] - r);
        if (fabs(r) > maxref) maxref = fabs(r);
        if (d > maxdiff || isnan(d)) maxdiff = isnan(d) ? INFINITY : d;
    }
    double rel = maxref > 0 ? maxdiff / maxref : maxdiff;
    int ok = rel <= rel_tol;
    printf("%-4s %-48s rel max err %.3e (tol %.1e)\n", ok ? "ok" : "FAIL", what, rel, rel_tol);
    CHECK(ok, "%s: relative error %.3e > %.1e", what, rel, rel_tol);
    return rel;
}

double mc_test_cosine(const float *a, const float *b, int64_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (int64_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return ab / (sqrt(aa) * sqrt(bb) + 1e-300);
}

int mc_test_finish(const char *suite) {
    printf("%s: %d checks, %d failed\n", suite, mc_test_checks, mc_test_failures);
    return mc_test_failures ? 1 : 0;
}
