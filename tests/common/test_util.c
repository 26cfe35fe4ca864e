#include "common/test_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "common/weight_rule.h"
#include "io/mapped_file.h"
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

int mc_test_load_arch(const char *arch, mc_tensor_map *weights, mc_tensor_map *golden) {
    char rel[64];
    mc_err e = {0};
    mc_tensor_map_init(weights);
    snprintf(rel, sizeof rel, "golden/%s.params.tsv", arch);
    if (mc_weights_from_tsv(mc_test_path(rel), weights, NULL, &e)) mc_test_fatal("%s", e.msg);
    snprintf(rel, sizeof rel, "golden/%s.golden.safetensors", arch);
    mc_json *hdr = NULL;
    mc_test_load_golden(rel, golden, &hdr);
    mc_json_free(hdr);
    static const char *const names[] = {"s0", "s1", "s2", "b"};
    for (int a = 0; a < 4; a++)
        if (!strcmp(arch, names[a])) return a;
    mc_test_fatal("unknown arch '%s'", arch);
    return -1;
}

mc_json *mc_test_load_json(const char *rel) {
    mc_err e = {0};
    char *text;
    size_t len;
    if (mc_read_file(mc_test_path(rel), (size_t)64 << 20, &text, &len, &e))
        mc_test_fatal("golden JSON missing or unreadable: %s", e.msg);
    mc_json *j = mc_json_parse(text, len, &e);
    free(text);
    if (!j) mc_test_fatal("%s: %s", rel, e.msg);
    return j;
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

void mc_test_on_trace(void *user, const char *name, const float *data, int ndim, const int64_t *shape) {
    mc_test_trace *c = user;
    char key[128], what[192];
    snprintf(key, sizeof key, "%s%s", c->prefix, name);
    snprintf(what, sizeof what, "%s %s", c->label, key);
    const mc_tensor *ref = mc_tensor_map_find(c->golden, key);
    CHECK(ref != NULL, "%s: traced tensor has no golden counterpart", what);
    if (!ref) return;
    int same = ref->ndim == ndim && ref->shape[0] == 1 && shape[0] > c->row;
    int64_t row_numel = 1;
    for (int i = 1; same && i < ndim; i++) {
        same = ref->shape[i] == shape[i];
        row_numel *= shape[i];
    }
    CHECK(same, "%s: traced shape does not match the golden one", what);
    if (!same) return;
    double r = mc_test_compare(what, data + (size_t)c->row * row_numel, ref, c->rel_tol);
    if (r > c->worst) c->worst = r;
    c->seen++;
}

void mc_test_compare_rows(const char *what, const float *got, const mc_tensor *ref, double rel_tol, double cos_min) {
    mc_test_compare(what, got, ref, rel_tol);
    int64_t rows = ref->shape[0], d = ref->ndim > 1 ? ref->shape[1] : 1;
    float *r = malloc(sizeof(float) * (size_t)(rows * d));
    mc_tensor_to_f32(ref, r);
    double worst = 1;
    for (int64_t i = 0; i < rows; i++) {
        double cs = mc_test_cosine(got + i * d, r + i * d, d);
        CHECK(cs >= cos_min, "%s row %lld: cosine %.9f", what, (long long)i, cs);
        if (cs < worst) worst = cs;
    }
    printf("     %-48s min cosine 1 - %.2e\n", what, 1 - worst);
    free(r);
}

double mc_test_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

mc_named_tensor *mc_test_entry(mc_tensor_map *m, const char *name) {
    for (int i = 0; i < m->count; i++)
        if (strcmp(m->items[i].name, name) == 0) return &m->items[i];
    mc_test_fatal("no tensor %s", name);
    return NULL;
}

char *mc_test_run(const char *cmd, int *status) {
    FILE *p = popen(cmd, "r");
    if (!p) mc_test_fatal("cannot run %s", cmd);
    size_t cap = 1 << 16, len = 0, got;
    char *buf = malloc(cap);
    if (!buf) mc_test_fatal("out of memory");
    while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len < 4096 && !(buf = realloc(buf, cap *= 2))) mc_test_fatal("out of memory");
    }
    buf[len] = 0;
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return buf;
}

mc_json *mc_test_cli_json(const char *dir, const char *cli, const char *args, int want_status, char **err_out) {
    char errf[600];
    snprintf(errf, sizeof errf, "%s/stderr.txt", dir);
    size_t cl = strlen(dir) + strlen(cli) + strlen(args) + strlen(errf) + 32;
    char *cmd = malloc(cl);
    if (!cmd) mc_test_fatal("out of memory");
    snprintf(cmd, cl, "cd '%s' && '%s' %s 2>'%s'", dir, cli, args, errf);
    int st;
    char *out = mc_test_run(cmd, &st), *err = NULL;
    size_t n;
    mc_err e = {0};
    if (mc_read_file(errf, 1 << 20, &err, &n, &e)) err = strdup("");
    CHECK(st == want_status, "exit %d (want %d): %s\n  stderr: %s", st, want_status, cmd, err);
    mc_json *j = out[0] == '{' || out[0] == '[' ? mc_json_parse(out, strlen(out), &e) : NULL;
    free(out);
    free(cmd);
    if (err_out) *err_out = err;
    else free(err);
    return j;
}

void mc_weights_save_test_model(const char *arch, const char *path) {
    char rel[128];
    snprintf(rel, sizeof rel, "golden/%s.params.tsv", arch);
    mc_tensor_map w;
    mc_tensor_map_init(&w);
    mc_err e = {0};
    if (mc_weights_from_tsv(mc_test_path(rel), &w, NULL, &e) || mc_safetensors_save(path, &w, &e))
        mc_test_fatal("%s", e.msg);
    mc_tensor_map_free(&w);
}
