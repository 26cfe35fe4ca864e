/* model_file.h - the converted-model file (`mobileclip convert`, docs/MODEL_FORMAT.md): an
 * inference plan's tensors, 64-byte aligned, for use in place from a read-only mapping.
 *
 * Layout (little-endian; offsets from the start of the file):
 *   header   256 bytes: magic, format version, project version, precision, the packing layout
 *            (low-precision tile MR x NR, depth granule), the CPU features the data needs, the
 *            model identity, offsets and counts, file size, SHA-256 of header + config + tables
 *   config   the model configuration as JSON (models/config.h schema)
 *   tensors  n_tensors entries of 128 bytes: name, dtype, ndim, shape[4], offset, size
 *   packed   n_packed entries of 48 bytes: one low-precision weight each (nn/lowp.h)
 *   data     every tensor at a 64-byte aligned offset
 *
 * This module knows the format only (checks, reading, writing); models/clip_convert.c maps a
 * model's plan onto it. Every field is checked on open: a file of another format or project
 * version, packing layout or CPU feature set is refused with one line naming the file and the
 * reason; so is a truncated or corrupt file (sizes, bounds, checksum). The tensor data carries
 * no checksum (docs/MODEL_FORMAT.md says why).
 */
#ifndef MC_IO_MODEL_FILE_H
#define MC_IO_MODEL_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define MC_MODEL_FILE_VERSION 1
#define MC_MODEL_FILE_HEADER 256
#define MC_MODEL_FILE_ALIGN 64
#define MC_MODEL_FILE_NAME 72
#define MC_MODEL_FILE_MAX_TENSORS (1 << 20)
#define MC_MODEL_FILE_MAX_CONFIG (1 << 20)

extern const unsigned char mc_model_file_magic[8];

/* 1 if buf (len bytes of a file's start) begins with the converted-model magic. */
int mc_model_file_sniff(const void *buf, size_t len);

/* 1 if the file at path is readable and begins with that magic (0 otherwise, no message). */
int mc_model_file_is(const char *path);

typedef enum mc_mf_dtype { MC_MF_F32 = 0, MC_MF_BF16 = 1, MC_MF_I8 = 2, MC_MF_I32 = 3, MC_MF_DTYPES } mc_mf_dtype;
size_t mc_mf_dtype_size(mc_mf_dtype d);

/* CPU features a file's data may need (the `features` bits). */
enum {
    MC_MF_FEAT_AVX2 = 1u << 0,
    MC_MF_FEAT_FMA = 1u << 1,
    MC_MF_FEAT_AVX512F = 1u << 2,
    MC_MF_FEAT_AVX512BW = 1u << 3,
    MC_MF_FEAT_AVX512VL = 1u << 4,
    MC_MF_FEAT_AVX512BF16 = 1u << 5,
    MC_MF_FEAT_AVX512VNNI = 1u << 6,
    MC_MF_FEAT_KNOWN = (1u << 7) - 1,
};
/* The bits of this CPU. */
uint64_t mc_mf_cpu_features(void);

typedef struct mc_mf_tensor {
    char name[MC_MODEL_FILE_NAME];
    mc_mf_dtype dtype;
    int ndim;
    int64_t shape[4];
    uint64_t offset, size; /* bytes, from the file's start */
    const void *data;      /* in the mapping (open) or the caller's memory (write) */
} mc_mf_tensor;

/* One packed low-precision weight: tensor `q` packs rows [0, M) of the f32 matrix at element
 * `src_offset` of tensor `src` ([M, K], row stride K); scale/qsum: int8 only, else -1. */
typedef struct mc_mf_packed {
    int src, q, scale, qsum;
    uint64_t src_offset;
    int M, K, Mp, Kp, order;
} mc_mf_packed;

typedef struct mc_model_file {
    char *path;
    void *map;
    size_t map_len;
    char project_version[32];
    int precision;          /* mc_precision */
    int lp_mr, lp_nr, lp_kg; /* the packing layout the data was made for */
    uint64_t features_needed, features_maker;
    uint8_t model_id[32];
    int has_model_id;
    const char *config;     /* JSON text in the mapping (not NUL-terminated) */
    size_t config_len;
    mc_mf_tensor *tensors;
    int n_tensors;
    mc_mf_packed *packed;
    int n_packed;
} mc_model_file;

/* What a writer provides (tensors[i].data and the sizes; offsets are assigned). */
typedef struct mc_model_file_spec {
    int precision;
    uint64_t features_needed;
    const uint8_t *model_id; /* 32 bytes or NULL */
    const char *config;
    size_t config_len;
    mc_mf_tensor *tensors;
    int n_tensors;
    const mc_mf_packed *packed;
    int n_packed;
} mc_model_file_spec;

/* The packing layout and version this build reads and writes. */
const char *mc_model_file_project_version(void);

/* Maps `path` read-only and checks every field (see above). On failure f is zeroed. */
int mc_model_file_open(mc_model_file *f, const char *path, mc_err *e);
/* The same over bytes already in memory (the fuzz target; data stays the caller's). */
int mc_model_file_parse(mc_model_file *f, const void *buf, size_t len, const char *name, mc_err *e);
void mc_model_file_close(mc_model_file *f);

/* Writes the file atomically (io/atomic_file.h). */
int mc_model_file_write(const char *path, const mc_model_file_spec *s, mc_err *e);

#endif
