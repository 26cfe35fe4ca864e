/* inputs.h - the ordered inputs of `mobileclip embed`: values from the command line, lines of
 * list files (- for stdin), images found under directories.
 *
 * Sources are kept in command-line order and items come out in that order. List files and
 * directories are read when added (so their errors come before any work); a list on stdin is
 * read line by line as items are taken, so a producer piping names in sees results while it
 * still writes. Lines: the trailing "\n" or "\r\n" is removed, empty lines are skipped, a line
 * with a NUL byte is an error. Directories: io/walk.h (recursive, byte order of the names,
 * symbolic links to files followed, to directories not), with dot files included, a file is
 * an image when its first bytes are a JPEG, PNG or WebP signature, whatever its name; files
 * that cannot be opened are kept (loading them reports the error). */
#ifndef MC_TOOLS_INPUTS_H
#define MC_TOOLS_INPUTS_H

#include <stdio.h>

#include "core/error.h"

enum { MC_INPUT_IMAGE = 0, MC_INPUT_TEXT = 1 };

typedef struct mc_input {
    int kind;          /* MC_INPUT_* */
    char *value;       /* path or text (malloc'd) */
    const char *list;  /* list file it came from, or NULL */
    long line;         /* its line there (1-based) */
} mc_input;

typedef struct mc_input_source {
    mc_input *items;   /* fixed items (command line, list file, directory) */
    long long n, pos;
    FILE *stream;      /* or a list read as it goes (stdin) */
    int stream_kind;
    long stream_line;
} mc_input_source;

typedef struct mc_inputs {
    mc_input_source *src;
    int n_src, cur;
    long long total;      /* items known in advance; -1 once a stream is added */
    int has_kind[2];      /* some source gives images / texts */
    int has_stdin;
} mc_inputs;

void mc_inputs_init(mc_inputs *in);
/* value is copied */
int mc_inputs_add_value(mc_inputs *in, int kind, const char *value, mc_err *e);
int mc_inputs_add_list(mc_inputs *in, int kind, const char *path, mc_err *e);
int mc_inputs_add_dir(mc_inputs *in, const char *dir, mc_err *e);
/* Every line of an open file, named `name` in messages (the items keep the pointer). */
int mc_inputs_add_lines(mc_inputs *in, int kind, FILE *f, const char *name, mc_err *e);
/* Takes the next item into *out (the caller frees out->value): 1, 0 at the end, < 0 on error. */
int mc_inputs_next(mc_inputs *in, mc_input *out, mc_err *e);
void mc_inputs_free(mc_inputs *in);

#endif
