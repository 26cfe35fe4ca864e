/* trace.h - optional per-layer activation callbacks.
 *
 * Models call the trace function (when non-NULL) with the output of each traced module,
 * named as in shared/golden/README.md without the "trace.image."/"trace.text." prefix
 * ("patch_embed", "network.3", "transformer.5", "embed", ...). Tests compare them with the
 * reference; the data pointer is only valid during the call.
 */
#ifndef MC_MODELS_TRACE_H
#define MC_MODELS_TRACE_H

#include <stdint.h>

typedef void (*mc_trace_fn)(void *user, const char *name, const float *data, int ndim, const int64_t *shape);

typedef struct mc_trace {
    mc_trace_fn fn;
    void *user;
} mc_trace;

static inline void mc_trace_emit(const mc_trace *t, const char *name, const float *data, int ndim,
                                 const int64_t *shape) {
    if (t && t->fn) t->fn(t->user, name, data, ndim, shape);
}

#endif
