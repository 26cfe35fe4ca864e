/* safetensors.h - reader for the safetensors format.
 *
 * Layout: u64 little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
 * then the raw little-endian data. The file is mapped; tensors point into the mapping.
 */
#ifndef MC_IO_SAFETENSORS_H
#define MC_IO_SAFETENSORS_H

#include <stddef.h>

#include "core/tensor.h"
#include "io/json.h"

/* Parses an in-memory safetensors image buf[0..len) into m (views into buf; the caller
 * keeps buf alive) and records `name` as the map's source. On failure m is left as it was. If header_out is non-NULL it receives the parsed JSON header
 * (caller frees with mc_json_free). `name` is used in messages. */
int mc_safetensors_parse(const void *buf, size_t len, const char *name, mc_tensor_map *m,
                         mc_json **header_out, mc_err *e);

/* Maps `path` and parses it; the map owns the mapping. */
int mc_safetensors_load(const char *path, mc_tensor_map *m, mc_json **header_out, mc_err *e);

/* Returns 1 if buf starts like a safetensors file (a header length up to 100 MB and '{'),
 * even if the file is too short for that header (then parsing reports the truncation). */
int mc_safetensors_sniff(const void *buf, size_t len);



/* Writes every tensor of m (as contiguous data of its dtype) to `path` in safetensors
 * format, atomically (temporary file, then rename): a failure leaves no file behind. */
int mc_safetensors_save(const char *path, const mc_tensor_map *m, mc_err *e);
#endif
