/* configs.h - the model configurations built into the library (data/configs/ *.json, compiled
 * in by CMake through mc_bin2c): the Fashion-MNIST experiment's students, teachers and captioner.
 * The JSON is the reference's schema (models/config.h); the bytes are the files' exactly. */
#ifndef MC_EXPERIMENT_CONFIGS_H
#define MC_EXPERIMENT_CONFIGS_H

#include <stddef.h>
#include <stdio.h>

#include "core/error.h"
#include "models/config.h"

typedef struct mc_builtin_config {
    const char *name;          /* the file name without .json: "fmnist_student_mct" */
    const unsigned char *json; /* *size bytes, not NUL-terminated */
    const size_t *size;
} mc_builtin_config;

/* [mc_builtin_configs_count] entries in name order, then a zeroed one (generated). */
extern const mc_builtin_config mc_builtin_configs[];
extern const int mc_builtin_configs_count;

/* The entry called name, or NULL. */
const mc_builtin_config *mc_builtin_config_find(const char *name);
/* Whether it is an open_clip CoCa configuration (NAME_captioner: `train --config`, `caption
 * --arch`), not a CLIP student or teacher of the reference's schema. */
int mc_builtin_config_is_captioner(const mc_builtin_config *b);
/* Parses it (out->name = its name). */
int mc_builtin_config_parse(const mc_builtin_config *b, mc_clip_config *out, mc_err *e);
/* Writes its bytes to path atomically (so a run's output folder holds the file it used). */
int mc_builtin_config_save(const mc_builtin_config *b, const char *path, mc_err *e);

#endif
