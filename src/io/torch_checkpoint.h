/* torch_checkpoint.h - reader for files written by torch.save.
 *
 * Formats:
 *  - zip (torch >= 1.6): `<prefix>/data.pkl` (a pickle whose tensors are
 *    torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...) calls with
 *    persistent ids ('storage', torch.<T>Storage, key, location, numel)) plus one member
 *    `<prefix>/data/<key>` of raw little-endian bytes per storage. The prefix is whatever
 *    the single top folder is called ("archive", or the file's stem in torch 1.x).
 *  - legacy (pre-1.6, `_use_new_zipfile_serialization=False`): five pickles (magic number,
 *    protocol, sys_info, object, storage keys) followed by each storage as an int64
 *    element count and its raw bytes. Little-endian files only.
 *
 * Result: every tensor reachable through dicts, lists and tuples becomes a named view in
 * the map. Names join the keys on the path with '.', list/tuple indices in decimal (so an
 * ordinary state dict keeps its own keys). Unless keep_paths is set, two wrappers are
 * removed: a top-level dict holding a dict under "state_dict" (open_clip / Lightning
 * training checkpoints) or, failing that, under "model" (timm / DeiT style) is replaced by
 * that dict (tensors elsewhere, e.g. optimizer state, are dropped), and a "module." prefix
 * shared by every name (DistributedDataParallel) is stripped. Tensors keep their dtype,
 * shape, strides (in elements; views such as transposes stay views) and their storage
 * provenance (storage_id: 0, 1, ... in order of first use, storage_offset, storage_numel).
 * Non-tensor leaves (None, bool, int, float, str) can be observed with a callback.
 * Opaque objects (calls to any global other than the tensor/dict constructors) are
 * skipped; a tensor that depends on one (an unknown storage type, an unsupported tensor
 * constructor such as sparse or quantized tensors) is an error naming the tensor.
 *
 * Memory: zip members are used in place (the caller's buffer, or the map's mmap for
 * mc_torch_load); deflated members, and storages whose data is not aligned to the element
 * size, are copied once into buffers owned by the map. Nothing is ever executed.
 *
 * Errors: one line naming the file and the problem ("x.pt: tensor 'a.b': view [3, 4]
 * stride [4, 1] offset 8 needs 20 elements but its storage has 12"). On failure the map
 * is left empty. Maps must be freshly initialised (mc_tensor_map_init) before the call.
 * Thread safety: no global state; distinct maps may be filled concurrently.
 */
#ifndef MC_IO_TORCH_CHECKPOINT_H
#define MC_IO_TORCH_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

typedef enum mc_torch_kind {
    MC_TORCH_NONE, MC_TORCH_BOOL, MC_TORCH_INT, MC_TORCH_FLOAT, MC_TORCH_STR
} mc_torch_kind;

typedef struct mc_torch_value {
    mc_torch_kind kind;
    int64_t i;        /* BOOL (0/1), INT */
    double f;         /* FLOAT */
    const char *s;    /* STR: UTF-8, NOT NUL-terminated, valid only during the callback */
    size_t len;
} mc_torch_value;

/* Receives one non-tensor leaf: path[0..depth) are its keys from the root of the pickled
 * object (full paths, whatever keep_paths says), each NUL-terminated. */
typedef void (*mc_torch_scalar_fn)(void *ctx, const char *const *path, int depth, const mc_torch_value *v);

typedef struct mc_torch_options {
    int keep_paths;               /* 1: name tensors by their full path (no unwrapping) */
    int skip_crc;                 /* 1: skip the CRC-32 of stored zip members (saves ~0.15 s per
                                     200 MB on a warm cache; fuzzing). Inflated data is always checked. */
    mc_torch_scalar_fn on_scalar; /* optional */
    void *ctx;
} mc_torch_options;

/* Returns 1 if buf starts like a legacy (pre-1.6) torch.save file. */
int mc_torch_sniff_legacy(const void *buf, size_t len);

/* Parses an in-memory torch.save image (zip or legacy) buf[0..len). Views point into
 * buf, which the caller keeps alive as long as the map. `name` is used in messages. */
int mc_torch_parse(const void *buf, size_t len, const char *name, mc_tensor_map *m, mc_err *e);
int mc_torch_parse_ex(const void *buf, size_t len, const char *name, const mc_torch_options *opt,
                      mc_tensor_map *m, mc_err *e);

/* Maps `path` and parses it; the map owns the mapping. */
int mc_torch_load(const char *path, mc_tensor_map *m, mc_err *e);
int mc_torch_load_ex(const char *path, const mc_torch_options *opt, mc_tensor_map *m, mc_err *e);

#endif
