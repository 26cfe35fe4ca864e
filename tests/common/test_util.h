/* test_util.h - shared helpers for the test executables.
 *
 * Golden data is read from $MC_SHARED_DIR (set by ctest; defaults to ../shared next to
 * the source tree). Missing data is a failure, never a skip.
 */
#ifndef MC_TEST_UTIL_H
#define MC_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"
#include "io/json.h"

extern int mc_test_failures, mc_test_checks;

#define CHECK(cond, ...)                                                                          \
    do {                                                                                          \
        mc_test_checks++;                                                                         \
        if (!(cond)) {                                                                            \
            mc_test_failures++;                                                                   \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                         \
            fprintf(stderr, "\n");                                                                \
        }                                                                                         \
    } while (0)

/* Aborts the test executable (a failure) when a precondition such as golden data is absent. */
void mc_test_fatal(const char *fmt, ...);

/* Returns "<shared>/<rel>" in a static rotating buffer. */
const char *mc_test_path(const char *rel);

/* Loads a golden safetensors file (relative to shared/) or dies. */
void mc_test_load_golden(const char *rel, mc_tensor_map *m, mc_json **header);
/* The weight rule's model of an official arch ("s0".."b": shared/golden/ARCH.params.tsv) into
 * *weights and its golden outputs (ARCH.golden.safetensors) into *golden, or dies. Returns the
 * arch as an mc_arch value. */
int mc_test_load_arch(const char *arch, mc_tensor_map *weights, mc_tensor_map *golden);
/* Parses a JSON file (relative to shared/) or dies. Free with mc_json_free. */
mc_json *mc_test_load_json(const char *rel);
/* The map entry named `name` (to edit it in negative tests), or dies. */
mc_named_tensor *mc_test_entry(mc_tensor_map *m, const char *name);
/* Finds a tensor or dies. */
const mc_tensor *mc_test_tensor(const mc_tensor_map *m, const char *name);

/* Compares got[n] with the reference tensor: returns max|got-ref| / max|ref| and
 * records a check that it is <= rel_tol. Prints one line per comparison. */
double mc_test_compare(const char *what, const float *got, const mc_tensor *ref, double rel_tol);
/* mc_test_compare on a [rows, d] embedding tensor, plus cosine >= cos_min for every row. */
void mc_test_compare_rows(const char *what, const float *got, const mc_tensor *ref, double rel_tol, double cos_min);
/* Monotonic clock in seconds, for the timings tests print. */
double mc_test_now(void);
/* Cosine similarity of two vectors. */
double mc_test_cosine(const float *a, const float *b, int64_t n);

/* Golden trace comparison: pass mc_test_on_trace with a mc_test_trace as the model's trace
 * callback. Each traced tensor [B, ...] has row `row` compared with golden tensor
 * "<prefix><name>" ([1, ...]) at tolerance rel_tol; `seen` counts comparisons and `worst`
 * keeps the largest relative error. */
typedef struct mc_test_trace {
    const mc_tensor_map *golden;
    const char *label;   /* e.g. the arch, printed before each comparison */
    const char *prefix;  /* "trace.image." or "trace.text." */
    int row;
    double rel_tol;
    int seen;
    double worst;
} mc_test_trace;
void mc_test_on_trace(void *user, const char *name, const float *data, int ndim, const int64_t *shape);

/* Runs a shell command and returns its whole stdout (malloc'd); *status gets the exit status
 * (-1 if it did not exit normally). */
char *mc_test_run(const char *cmd, int *status);
/* Runs `cli args` in dir (stderr to dir/stderr.txt) and CHECKs the exit status; returns stdout
 * parsed as JSON when it starts with '{' or '[' (else NULL). *err_out (may be NULL) gets the
 * stderr text (malloc'd). */
mc_json *mc_test_cli_json(const char *dir, const char *cli, const char *args, int want_status, char **err_out);

/* Prints the summary line and returns the exit status. */
int mc_test_finish(const char *suite);

#endif
