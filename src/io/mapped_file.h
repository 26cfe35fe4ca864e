/* mapped_file.h - read-only whole-file mappings with clear errors.
 *
 * Checkpoints are mapped, not read, so that a 600 MB file is never held twice:
 * float32 tensors are used in place from the mapping.
 */
#ifndef MC_IO_MAPPED_FILE_H
#define MC_IO_MAPPED_FILE_H

#include <stddef.h>

#include "core/error.h"
#include "core/tensor.h"

/* Maps `path` read-only; rejects missing paths, directories and empty files with a
 * reason naming the path. On success *addr and *len describe the mapping (free with munmap). */
int mc_map_file(const char *path, void **addr, size_t *len, mc_err *e);

/* A parser of a whole file image into a tensor map (views into buf); `arg` is its own. */
typedef int (*mc_map_parse_fn)(const void *buf, size_t len, const char *name, mc_tensor_map *m, void *arg,
                               mc_err *e);

/* Maps `path` and runs parse over it. On success the map owns the mapping (its tensors point
 * into it); on failure the mapping is released and the parser's reason returned. */
int mc_tensor_map_load_file(const char *path, mc_tensor_map *m, mc_map_parse_fn parse, void *arg, mc_err *e);

/* Reads a whole (small) file into a NUL-terminated malloc'd buffer. max_len guards
 * against absurd sizes. */
int mc_read_file(const char *path, size_t max_len, char **data, size_t *len, mc_err *e);

#endif
