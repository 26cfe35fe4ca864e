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

typedef double (*mc_fd_loss)(void *ctx);
typedef uint64_t (*mc_fd_signature)(void *ctx);

typedef struct mc_fd_opts {
    float h;
    double tol, floor;
    mc_fd_signature kink; /* may be NULL */
} mc_fd_opts;

double mc_fd_error(const mc_fd_opts *o, void *ctx, mc_fd_loss loss, float *param, const float *g, size_t n,
                   int samples);
/* sum a[i] * b[i] in double */
double mc_fd_dot(const float *a, const float *b, size_t n);

#endif
