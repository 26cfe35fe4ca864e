/* torch_writer.h - write a tensor map as a torch.save state dict.
 *
 * The file is what `torch.save(OrderedDict(name -> tensor), path)` writes (zip format,
 * readable by torch.load of torch >= 1.6 and by mc_checkpoint_load):
 *   archive/data.pkl    pickle protocol 2: an OrderedDict in map order whose values are
 *                       torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False,
 *                       OrderedDict()) with persistent ids
 *                       ('storage', torch.<T>Storage, "<i>", 'cpu', numel)
 *   archive/byteorder   "little"
 *   archive/data/<i>    the raw little-endian bytes of tensor i, 64-byte aligned
 *   archive/version     "3\n"
 * Members are stored uncompressed with CRC-32s; ZIP64 records are written (as torch does)
 * so files and members beyond 4 GiB work. Every dtype of mc_dtype is supported. Each
 * tensor gets its own contiguous storage: strided views are written contiguous (values
 * preserved, storage sharing is not).
 *
 * The file is written through io/atomic_file (a temporary file next to `path`, fsync'd and
 * renamed over it only when complete, then the folder fsync'd), so a failed or killed write
 * leaves no partial file (and an existing file untouched).
 * Thread safety: reads m only.
 */
#ifndef MC_IO_TORCH_WRITER_H
#define MC_IO_TORCH_WRITER_H

#include <stdio.h>

#include "core/tensor.h"

int mc_torch_save(const char *path, const mc_tensor_map *m, mc_err *e);

/* Writes the same bytes to an open stream (e.g. open_memstream, for a .pth member of a
 * shard); `name` is used in messages. Flushes, does not close. */
int mc_torch_save_fp(FILE *f, const char *name, const mc_tensor_map *m, mc_err *e);

#endif
