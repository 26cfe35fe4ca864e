#include "io/checkpoint.h"

#include <stdlib.h>
#include <string.h>

#include "io/mapped_file.h"
#include "io/model_file.h"
#include "io/safetensors.h"
#include "io/torch_checkpoint.h"
#include "io/zip.h"

mc_checkpoint_format mc_checkpoint_sniff(const void *buf, size_t len) {
    if (mc_zip_sniff(buf, len)) return MC_CKPT_TORCH_ZIP;
    if (mc_torch_sniff_legacy(buf, len)) return MC_CKPT_TORCH_LEGACY;
    if (mc_safetensors_sniff(buf, len)) return MC_CKPT_SAFETENSORS;
    if (len >= 262 && memcmp((const char *)buf + 257, "ustar", 5) == 0) return MC_CKPT_TORCH_TAR;
    return MC_CKPT_UNKNOWN;
}

int mc_checkpoint_parse(const void *buf, size_t len, const char *name, mc_tensor_map *m, mc_err *e) {
    if (m->count || m->map_addr || m->nbuffers)
        return mc_fail(e, MC_E_ARG, "%s: mc_checkpoint_parse needs an empty tensor map", name);
    switch (mc_checkpoint_sniff(buf, len)) {
    case MC_CKPT_TORCH_ZIP:
    case MC_CKPT_TORCH_LEGACY:
        return mc_torch_parse(buf, len, name, m, e);
    case MC_CKPT_SAFETENSORS:
        return mc_safetensors_parse(buf, len, name, m, NULL, e);
    case MC_CKPT_TORCH_TAR:
        return mc_fail(e, MC_E_UNSUPPORTED, "%s: the tar-based torch.save format (torch < 0.4) is not supported", name);
    default:
        if (mc_model_file_sniff(buf, len))
            return mc_fail(e, MC_E_UNSUPPORTED, "%s: a converted model (mobileclip convert) holds only the inference "
                                                "plan; this needs the checkpoint it was converted from", name);
        return mc_fail(e, MC_E_FORMAT, "%s: not a PyTorch or safetensors checkpoint", name);
    }
}

static int parse_mapped(const void *buf, size_t len, const char *name, mc_tensor_map *m, void *arg, mc_err *e) {
    (void)arg;
    return mc_checkpoint_parse(buf, len, name, m, e);
}

int mc_checkpoint_load(const char *path, mc_tensor_map *m, mc_err *e) {
    if (m->count || m->map_addr || m->nbuffers)
        return mc_fail(e, MC_E_ARG, "%s: mc_checkpoint_load needs an empty tensor map", path);
    return mc_tensor_map_load_file(path, m, parse_mapped, NULL, e);
}
