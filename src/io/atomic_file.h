/* atomic_file.h - output files that appear complete or not at all.
 *
 * The one way the project writes a file atomically (torch checkpoints, tar shards, embeddings,
 * manifests, configurations). Data goes to "<path>.tmp.XXXXXX" in the target's own folder (so
 * the rename cannot cross file systems); commit flushes and fsyncs it, renames it over `path`,
 * then fsyncs the folder so the rename survives a crash; abort removes it. A crash leaves at
 * most the temporary file, whose name says it is incomplete (reinforce/job.c removes such
 * leftovers by that pattern), never a truncated `path`; an existing `path` stays untouched
 * until the commit. The file gets the mode of an ordinary new file (0666 & ~umask). */
#ifndef MC_IO_ATOMIC_FILE_H
#define MC_IO_ATOMIC_FILE_H

#include <stdio.h>

#include "core/error.h"

/* Suffix of temporary files, before the six mkstemp characters. */
#define MC_ATOMIC_TMP_SUFFIX ".tmp."

typedef struct mc_atomic_file {
    FILE *f;    /* write here (binary) */
    char *path; /* final name */
    char *tmp;  /* temporary name */
} mc_atomic_file;

/* On failure af is zeroed (nothing to abort) and the message names `path`. */
int mc_atomic_open(mc_atomic_file *af, const char *path, mc_err *e);
/* Makes the file visible under its final name. Frees af (also on failure, after aborting:
 * a failed write, fsync or rename leaves no temporary file). */
int mc_atomic_commit(mc_atomic_file *af, mc_err *e);
/* Discards the temporary file. Safe on a zeroed or already finished af. */
void mc_atomic_abort(mc_atomic_file *af);

#endif
