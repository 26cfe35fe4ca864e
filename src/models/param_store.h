/* param_store.h - every parameter and buffer of one model in one flat, writable arena.
 *
 * llm.c's params_memory / grads_memory / m_memory / v_memory: each entry (official state-dict
 * name, shape, flags) owns `numel` floats at `offset` of `data`; the gradient and the two AdamW
 * moments of that entry live at the same offset of `grad`, `m` and `v` (allocated on demand).
 * Zeroing, clipping, all-reduce, the optimizer and checkpoint writing are single loops over the
 * arena (or over `params` for per-tensor norms and weight-decay flags).
 *
 * BatchNorm `num_batches_tracked` counters are int64 in every file and are kept exactly in a
 * separate int64 array (`counters`, indexed by the entry's offset); they occupy no floats.
 *
 * Models keep their structs of `const float *` pointers: mc_param_store_as_map gives an
 * mc_tensor_map whose views point into the arena, the existing binders bind from it, and
 * afterwards every model pointer points into the store (mc_param_grad(store, ptr) is its
 * gradient).
 *
 * Layouts come from one of:
 *   mc_param_store_from_map       adopt a checkpoint's tensors (names, shapes, order), copy values
 *   mc_param_store_declare + _alloc  entries one by one (a binder's declare pass), then
 *   mc_param_store_load_map       copy a checkpoint into the declared layout, strictly.
 * Entries are 16-float (64-byte) aligned.
 */
#ifndef MC_MODELS_PARAM_STORE_H
#define MC_MODELS_PARAM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

typedef enum mc_param_flags {
    MC_PARAM_BUFFER = 1,   /* BatchNorm running_mean / running_var: no gradient, not optimised */
    MC_PARAM_NO_DECAY = 2, /* open_clip main.py: ndim < 2 or "bn"/"ln"/"bias"/"logit_scale" in the name */
    MC_PARAM_COUNTER = 4,  /* num_batches_tracked: int64 in `counters` (also a buffer) */
} mc_param_flags;

typedef struct mc_param {
    char *name;
    size_t offset;           /* floats into data/grad/m/v; index into counters for COUNTER */
    int ndim;
    int64_t shape[MC_MAX_DIMS];
    size_t numel;
    unsigned flags;          /* mc_param_flags */
} mc_param;

typedef struct mc_param_store {
    mc_param *params;
    int count, cap;
    size_t total;            /* floats in each arena */
    int ncounters;
    float *data, *grad, *m, *v;  /* data after mc_param_store_alloc; grad, m, v NULL until allocated */
    int64_t *counters;       /* [ncounters] */
    int *index;              /* open-addressing name hash -> entry index, -1 empty */
    int index_cap;
    char *source;            /* where the values came from, for messages (owned) */
} mc_param_store;

void mc_param_store_init(mc_param_store *s);
void mc_param_store_free(mc_param_store *s);

/* Flags the open_clip/PyTorch rules give an entry of this name and rank. */
unsigned mc_param_flags_for(const char *name, int ndim);

/* Adds an entry (before mc_param_store_alloc); flags from mc_param_flags_for. Fails on a
 * duplicate name, a rank above MC_MAX_DIMS or a negative size. A counter must be a scalar. */
int mc_param_store_declare(mc_param_store *s, const char *name, int ndim, const int64_t *shape, mc_err *e);
/* Allocates the zeroed data arena (and counters) for the declared entries. */
int mc_param_store_alloc(mc_param_store *s, mc_err *e);
/* Allocates zeroed grad (mc_param_store_alloc_grad) or m and v (mc_param_store_alloc_adam). */
int mc_param_store_alloc_grad(mc_param_store *s, mc_err *e);
int mc_param_store_alloc_adam(mc_param_store *s, mc_err *e);

/* The entry called name, or NULL. */
const mc_param *mc_param_store_find(const mc_param_store *s, const char *name);
/* Its values (NULL if absent, a counter, or not yet allocated). */
float *mc_param_store_data(const mc_param_store *s, const char *name);
/* The gradient of the parameter whose values start at p (p points into s->data). */
static inline float *mc_param_grad(const mc_param_store *s, const float *p) { return s->grad + (p - s->data); }
/* The entry that owns the float at p (p inside s->data), or NULL. */
const mc_param *mc_param_store_owner(const mc_param_store *s, const float *p);

/* Copies every tensor of m whose name starts with one of `prefixes` (NULL-terminated; NULL:
 * all) into a fresh store of the same names, shapes and order, converting floating-point
 * dtypes to float32 and integer counters exactly. s must be freshly initialised; on failure
 * it is left empty. m is not modified and may be freed afterwards. */
int mc_param_store_from_map(mc_param_store *s, const mc_tensor_map *m, const char *const *prefixes, mc_err *e);

/* Copies m into an allocated store of declared entries, strictly: every entry must be in m
 * with the same shape (a missing num_batches_tracked is set to 0), and every tensor of m whose
 * name starts with one of `prefixes` (NULL: every tensor) must be an entry; errors name the
 * source, the tensor and the problem (missing / mis-shaped ones are reported before unexpected
 * ones). */
int mc_param_store_load_map(mc_param_store *s, const mc_tensor_map *m, const char *const *prefixes, mc_err *e);

/* Fills out (freshly initialised) with views of every entry in store order: float32 views
 * into data, int64 scalar views of the counters. The map owns no tensor memory; it must not
 * outlive the store; its source is the store's. */
int mc_param_store_as_map(const mc_param_store *s, mc_tensor_map *out, mc_err *e);

/* Writes the store as a torch.save state dict (official names, float32 tensors, int64
 * counters) through mc_torch_save: temporary file, fsync, rename. */
int mc_param_store_save(const mc_param_store *s, const char *path, mc_err *e);

#endif
