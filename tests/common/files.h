/* files.h - test helpers for data files: reading (dies when missing), JSON, temporary dirs. */
#ifndef MC_TEST_FILES_H
#define MC_TEST_FILES_H

#include <stddef.h>

#include "io/json.h"

/* Whole file (NUL-terminated, malloc'd) or dies: missing reference data is a failure. */
unsigned char *mc_test_read(const char *path, size_t *len);
/* Parsed JSON file or dies. */
mc_json *mc_test_json(const char *path);
/* A fresh directory /tmp/<prefix>_XXXXXX (static buffer) or dies. */
const char *mc_test_tmpdir(const char *prefix);
/* Writes dir/name and returns the path (rotating static buffers) or dies. */
const char *mc_test_write(const char *dir, const char *name, const void *data, size_t n);
/* Decodes hex text into a malloc'd buffer (*n bytes) or dies. */
unsigned char *mc_test_unhex(const char *hex, size_t *n);

#endif
