/* fd_check.h - finite-difference gradient checks of float training code (model-level tests).
 *
 * The loss is evaluated by the float forward and summed in double; central differences at
 * step h are compared with the analytic gradient on `samples` elements spread over a tensor.
 * Error = max |fd - g| / max(max |g|, floor): relative for gradients above `floor`, absolute
 * (tol * floor) below it, where the float forward's rounding noise dominates the derivative.
 * An element that disagrees at h is retried at h/4 and 4h and the best agreement counts: a
 * step too large for the curvature, or too small for the rounding noise, fails at one step
 * size only, a wrong gradient at all of them. With a `kink` signature (the sign pattern of
 * ReLU inputs after a forward), a difference whose two evaluations took different ReLU
 * branches is not a derivative and is not counted (tried smaller first).
 */
#ifndef MC_TEST_FD_CHECK_H
#define MC_TEST_FD_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"
#include "models/param_store.h"
#include "models/train_tape.h"

typedef double (*mc_fd_loss)(void *ctx);
typedef uint64_t (*mc_fd_signature)(void *ctx);

typedef struct mc_fd_opts {
    float h;
    double tol, floor;
    mc_fd_signature kink; /* may be NULL */
} mc_fd_opts;

double mc_fd_error(const mc_fd_opts *o, void *ctx, mc_fd_loss loss, float *param, const float *g, size_t n,
                   int samples);
/* Checks every float tensor of `params` named `prefix` or `prefix.`* (BatchNorm buffers excluded)
 * whose gradient lives in `grads`, sampling `samples` elements each, against finite differences;
 * records a CHECK per tensor (error < o->tol) and prints one summary line for `label`, where
 * `worst` (the input gradient's error, say) is the starting worst value. Returns the count. */
int mc_fd_check_params(const mc_fd_opts *o, void *ctx, mc_fd_loss loss, const mc_tensor_map *params,
                       const mc_grad_map *grads, const char *prefix, int samples, const char *label, double worst);
/* Where a sweep finds a parameter's values and size; dies when `name` is absent. */
typedef float *(*mc_fd_find)(const void *params, const char *name, size_t *numel);
float *mc_fd_find_map(const void *map, const char *name, size_t *numel);     /* an mc_tensor_map */
float *mc_fd_find_store(const void *store, const char *name, size_t *numel); /* an mc_param_store */
/* The sweep of the tower tests: mc_fd_error on `samples` elements of each named parameter, a
 * CHECK per parameter (error < o->tol, named "label: name") and the worst error returned. */
double mc_fd_check_names(const mc_fd_opts *o, void *ctx, mc_fd_loss loss, mc_fd_find find, const void *params,
                         const mc_grad_map *grads, const char *const *names, size_t n, int samples, const char *label);
/* The same on elements [first, first + count) of one parameter (one row of an embedding table). */
double mc_fd_check_slice(const mc_fd_opts *o, void *ctx, mc_fd_loss loss, mc_fd_find find, const void *params,
                         const mc_grad_map *grads, const char *name, size_t first, size_t count, int samples,
                         const char *label);
/* BatchNorm running statistics after a step against a golden file's "bn1.<name>" tensors: every
 * running_* tensor of params under prefix (each must be in golden); returns how many were
 * compared, *worst the largest rel-L2 and worst_name (wn bytes) its name. */
int mc_fd_running_stats(const mc_tensor_map *params, const mc_tensor_map *golden, const char *prefix, double *worst,
                        char *worst_name, size_t wn);

/* sum a[i] * b[i] in double */
double mc_fd_dot(const float *a, const float *b, size_t n);
/* ||a - b|| / ||b|| in double */
double mc_fd_rel_l2(const float *a, const float *b, size_t n);
/* n floats uniform in [-1, 1) from a xorshift64 stream (malloc'd; dies when out of memory) */
float *mc_fd_rand(uint64_t *state, size_t n);
/* 1 for BatchNorm buffers (running statistics, counters): no gradient */
int mc_fd_is_buffer(const char *name);

#endif
