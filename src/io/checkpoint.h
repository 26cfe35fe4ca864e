/* checkpoint.h - the one entry point models use to read weights, whatever the format.
 *
 * Sniffs the first bytes and routes:
 *   "PK\3\4" (zip)                     -> torch.save (torch >= 1.6), see torch_checkpoint.h
 *   pickle + torch magic number        -> legacy torch.save (pre-1.6), see torch_checkpoint.h
 *   u64 header length + '{'            -> safetensors, see safetensors.h
 *   a tar archive                      -> error (torch < 0.4 format, not supported)
 *   anything else                      -> error "not a PyTorch or safetensors checkpoint"
 * Torch checkpoints are unwrapped as torch_checkpoint.h describes ("state_dict"/"model"
 * wrapper dicts and a "module." prefix are removed), so models see plain state-dict names.
 *
 * The map must be freshly initialised; on failure it is left empty. The map owns the file
 * mapping and any converted/inflated buffers; views stay valid until mc_tensor_map_free.
 */
#ifndef MC_IO_CHECKPOINT_H
#define MC_IO_CHECKPOINT_H

#include <stddef.h>

#include "core/tensor.h"

typedef enum mc_checkpoint_format {
    MC_CKPT_UNKNOWN = 0,
    MC_CKPT_TORCH_ZIP,
    MC_CKPT_TORCH_LEGACY,
    MC_CKPT_SAFETENSORS,
    MC_CKPT_TORCH_TAR,
} mc_checkpoint_format;

mc_checkpoint_format mc_checkpoint_sniff(const void *buf, size_t len);

/* In-memory variant (buf must outlive the map); `name` is used in messages. */
int mc_checkpoint_parse(const void *buf, size_t len, const char *name, mc_tensor_map *m, mc_err *e);

/* Maps `path`, sniffs and parses it. */
int mc_checkpoint_load(const char *path, mc_tensor_map *m, mc_err *e);

#endif
