/* atomic_file.h - output files that appear complete or not at all.
 *
 * Data goes to "<path>.tmp-XXXXXX" next to the target; commit flushes, fsyncs and renames it
 * over `path` (then fsyncs the directory), abort removes it. A crash leaves at most the
 * temporary file, whose name says it is incomplete, never a truncated `path`. */
#ifndef MC_IO_ATOMIC_FILE_H
#define MC_IO_ATOMIC_FILE_H

#include <stdio.h>

#include "core/error.h"

typedef struct mc_atomic_file {
    FILE *f;    /* write here (binary) */
    char *path; /* final name */
    char *tmp;  /* temporary name */
} mc_atomic_file;

int mc_atomic_open(mc_atomic_file *af, const char *path, mc_err *e);
/* Makes the file visible under its final name. Frees af (also on failure, after aborting). */
int mc_atomic_commit(mc_atomic_file *af, mc_err *e);
/* Discards the temporary file. Safe on a zeroed or already finished af. */
void mc_atomic_abort(mc_atomic_file *af);

#endif
