/* index.h - the search index file (docs/INDEX_FORMAT.md): paths, file identities and
 * embeddings of an image collection, with the identity of the model that embedded them.
 *
 * Layout (little-endian), every section at an offset the header states and the reader checks:
 *   header [128]  magic "MCLIPIDX", version, dims, count, offsets, model id, CRC-32s
 *   records [count][64]  path offset/length, file size, mtime (ns), SHA-256 of the file
 *   strings [strings_size]  NUL-terminated paths, records sorted by path (strcmp), unique
 *   embeddings [count][dim]  float32 or IEEE float16, starting 64-byte aligned
 * The reader maps the file and validates everything before exposing it, so the views below
 * point straight into the mapping (an index of 1M 512-d f16 rows is never copied).
 */
#ifndef MC_INDEX_INDEX_H
#define MC_INDEX_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define MC_INDEX_VERSION 1
#define MC_INDEX_HEADER_SIZE 128
#define MC_INDEX_RECORD_SIZE 64
#define MC_INDEX_MAX_DIM 65536
#define MC_INDEX_MAX_PATH 4096

typedef enum mc_index_dtype { MC_INDEX_F32 = 0, MC_INDEX_F16 = 1 } mc_index_dtype;

/* What identifies the embedding space of an index. */
typedef struct mc_index_meta {
    uint32_t dim;
    mc_index_dtype dtype;
    uint8_t model_id[32];  /* mobileclip_model_id() of the checkpoint */
    char arch[8];          /* "s0", ... (informational; NUL-terminated) */
} mc_index_meta;

/* One file of the collection. */
typedef struct mc_index_item {
    const char *path;      /* NUL-terminated; in a reader's mapping or the caller's memory */
    uint64_t size;         /* bytes */
    int64_t mtime_ns;      /* modification time, ns since the epoch */
    uint8_t sha256[32];    /* of the file's bytes */
    const void *row;       /* writer input: dim values in meta.dtype (unit-norm embedding) */
} mc_index_item;

typedef struct mc_index {
    mc_index_meta meta;
    uint64_t count;
    const uint8_t *records;  /* [count][64] */
    const char *strings;
    const void *rows;        /* [count][dim] of meta.dtype */
    void *map;               /* the mapping (mc_index_open) or NULL (mc_index_parse) */
    size_t map_len;
} mc_index;

/* Checks and views buf[0..len) as an index; `name` names it in messages ("index.mci: ..."). */
int mc_index_parse(const void *buf, size_t len, const char *name, mc_index *ix, mc_err *e);
/* Maps and parses a file. Free with mc_index_close. */
int mc_index_open(const char *path, mc_index *ix, mc_err *e);
void mc_index_close(mc_index *ix);

/* Entry i (i < count): path, size, mtime, hash; row points at its stored embedding. */
void mc_index_get(const mc_index *ix, uint64_t i, mc_index_item *out);
/* Binary search by path; returns the entry number or -1. */
int64_t mc_index_find(const mc_index *ix, const char *path);
/* Bytes per stored value (4 or 2). */
size_t mc_index_dtype_size(mc_index_dtype t);

/* Writes items[0..n) (sorted by path, unique: checked) atomically: a temporary file next to
 * `path`, fsync, rename. On failure nothing is left at `path` that was not there before. */
int mc_index_write(const char *path, const mc_index_meta *meta, const mc_index_item *items, uint64_t n, mc_err *e);

#endif
