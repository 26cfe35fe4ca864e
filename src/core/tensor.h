/* tensor.h - dtypes, strided tensor views and a named-tensor map.
 *
 * An mc_tensor is a view: dtype, shape, element strides and a pointer to element
 * [0,...,0]. It never owns memory. An mc_tensor_map owns the memory behind a set of
 * named views (a mapped file, inflated zip members, generated buffers) and is what
 * checkpoint readers produce and what model parameter binding consumes, whatever
 * the file format.
 */
#ifndef MC_CORE_TENSOR_H
#define MC_CORE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define MC_MAX_DIMS 8

typedef enum mc_dtype {
    MC_DTYPE_F32 = 0,
    MC_DTYPE_F16,
    MC_DTYPE_BF16,
    MC_DTYPE_F64,
    MC_DTYPE_I64,
    MC_DTYPE_I32,
    MC_DTYPE_I16,
    MC_DTYPE_I8,
    MC_DTYPE_U8,
    MC_DTYPE_BOOL,
    MC_DTYPE_COUNT
} mc_dtype;

size_t mc_dtype_size(mc_dtype t);
const char *mc_dtype_name(mc_dtype t); /* "float32", "float16", ... (torch names) */

typedef struct mc_tensor {
    mc_dtype dtype;
    int ndim;
    int64_t shape[MC_MAX_DIMS];
    int64_t stride[MC_MAX_DIMS];   /* in elements */
    const void *data;              /* element [0,..,0]; NULL only when numel == 0 */
    /* provenance (for readers and tests; optional) */
    int storage_id;                /* -1 if not applicable */
    int64_t storage_offset;        /* in elements */
    int64_t storage_numel;
} mc_tensor;

int64_t mc_tensor_numel(const mc_tensor *t);
int mc_tensor_is_contiguous(const mc_tensor *t);
/* A contiguous row-major view of data[shape] (strides set, no storage: storage_id -1). */
mc_tensor mc_tensor_view(mc_dtype dt, const void *data, int ndim, const int64_t *shape);
/* Value of logical (row-major) element i converted to double. */
double mc_tensor_get_f64(const mc_tensor *t, int64_t i);
/* Converts the whole tensor to a contiguous float32 array dst[numel]. */
void mc_tensor_to_f32(const mc_tensor *t, float *dst);
/* Shape as "[64, 3, 3, 3]" into buf. */
const char *mc_shape_str(const int64_t *shape, int ndim, char *buf, size_t n);

float mc_f16_to_f32(uint16_t h);
float mc_bf16_to_f32(uint16_t h);
uint16_t mc_f32_to_bf16(float f); /* round to nearest even */
uint16_t mc_f32_to_f16(float f);  /* IEEE half, round to nearest even; overflow to infinity */

/* ---- named tensors ---- */

typedef struct mc_named_tensor {
    char *name;
    mc_tensor t;
    int used;                      /* set when a model binds it (mc_tensor_map_f32 / _mark_used) */
} mc_named_tensor;

typedef struct mc_tensor_map {
    mc_named_tensor *items;
    int count, cap;
    /* owned memory */
    void **buffers;
    int nbuffers, capbuffers;
    void *map_addr;                /* whole-file mmap, or NULL */
    size_t map_len;
    char *source;                  /* file name for messages (owned) */
    int declare;                   /* declare mode: mc_tensor_map_f32 creates missing tensors */
    /* declare mode with a zero region (not owned): declared tensors are views of its first bytes
     * instead of allocations (the structure of a model whose values live elsewhere) */
    const void *declare_zero;
    size_t declare_zero_bytes;
} mc_tensor_map;

void mc_tensor_map_init(mc_tensor_map *m);
void mc_tensor_map_free(mc_tensor_map *m);
/* Adds a zero-filled tensor of dtype dt and shape, owned by the map and marked used (declare
 * mode); *data (may be NULL) receives its memory. An implausible shape is MC_E_MODEL. */
int mc_tensor_map_add_zero(mc_tensor_map *m, const char *name, mc_dtype dt, int ndim, const int64_t *shape, void **data,
                           mc_err *e);
/* Adds (copies name); returns 0 or MC_E_NOMEM. */
int mc_tensor_map_add(mc_tensor_map *m, const char *name, const mc_tensor *t, mc_err *e);
/* Takes ownership of buf (freed with free()). Returns buf or NULL. */
void *mc_tensor_map_own(mc_tensor_map *m, void *buf);
/* Linear search is fine for ~2000 tensors bound once; an index is built on demand. */
const mc_tensor *mc_tensor_map_find(const mc_tensor_map *m, const char *name);
/* Marks `name` as consumed by a model (for tensors bound without mc_tensor_map_f32). */
void mc_tensor_map_mark_used(mc_tensor_map *m, const char *name);
/* First tensor whose name starts with `prefix`, is not used and is not a BatchNorm
 * `num_batches_tracked` counter; NULL if every such tensor was bound. */
const char *mc_tensor_map_first_unused(const mc_tensor_map *m, const char *prefix);
/* 1 if some tensor's name starts with `prefix` (architecture detection: "x.layers.7."). */
int mc_tensor_map_has_prefix(const mc_tensor_map *m, const char *prefix);

/* Binding helper for models: finds `name`, checks it has exactly the given shape
 * (ndim entries), and returns a contiguous float32 pointer: into the map's storage
 * when the tensor already is contiguous aligned float32, else a converted copy owned
 * by the map. Errors name the source, the tensor and the expected/actual shapes.
 * In declare mode (m->declare) a missing tensor is created instead, zero-filled, with the
 * requested shape (and, for a BatchNorm "running_var", its int64 "num_batches_tracked"
 * sibling): running a binder on an empty declaring map lists a configuration's tensors. */
int mc_tensor_map_f32(mc_tensor_map *m, const char *name, int ndim, const int64_t *shape,
                      const float **out, mc_err *e);

#endif
