/* embed_writer.h - where `mobileclip embed` writes its rows, one row per input as soon as its
 * batch is done.
 *
 *   jsonl  {"kind":"image"|"text","input":NAME,"embedding":[dim floats]} per line, to stdout
 *          or to --out FILE;
 *   npy    NumPy .npy, float32 little-endian, shape (rows, dim) (version 1.0 header of 128
 *          bytes, rewritten with the final row count at the end);
 *   f32    raw float32 little-endian rows, no header.
 * npy and f32 need --out FILE and write a sidecar NAMES file (see mc_embed_names_path) with one
 * {"kind":...,"input":NAME} line per row, row i on line i+1. Files are written atomically
 * (io/atomic_file.h): after a failure neither the data file nor the sidecar exists. */
#ifndef MC_TOOLS_EMBED_WRITER_H
#define MC_TOOLS_EMBED_WRITER_H

#include <stdio.h>

#include "io/atomic_file.h"

typedef enum { MC_EMBED_JSONL, MC_EMBED_NPY, MC_EMBED_F32 } mc_embed_format;

typedef struct mc_embed_writer {
    mc_embed_format format;
    int dim;
    long long rows;
    FILE *data;               /* stdout or out.f */
    mc_atomic_file out, names;
} mc_embed_writer;

/* "jsonl"/"npy"/"f32" -> format, or -1. */
int mc_embed_format_from_name(const char *name);
/* The sidecar of a data file: OUT without a trailing .npy/.f32, plus ".names.jsonl" (malloc'd). */
char *mc_embed_names_path(const char *out);
/* out NULL: jsonl to stdout. */
int mc_embed_writer_open(mc_embed_writer *w, mc_embed_format format, const char *out, int dim, mc_err *e);
int mc_embed_writer_row(mc_embed_writer *w, const char *kind, const char *name, const float *v, mc_err *e);
/* Flushes the rows written so far (stdout: so a reader sees each batch as it finishes). */
int mc_embed_writer_flush(mc_embed_writer *w, mc_err *e);
/* Completes the files (header, fsync, rename) and frees w; on failure nothing is left. */
int mc_embed_writer_commit(mc_embed_writer *w, mc_err *e);
void mc_embed_writer_abort(mc_embed_writer *w);

#endif
