/* inputs.c - see inputs.h. */
#include "tools/inputs.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image/image.h"
#include "io/walk.h"

void mc_inputs_init(mc_inputs *in) { memset(in, 0, sizeof *in); }

/* The last source if it holds fixed items, else a new one. */
static mc_input_source *fixed_source(mc_inputs *in, mc_err *e) {
    if (in->n_src && !in->src[in->n_src - 1].stream) return &in->src[in->n_src - 1];
    mc_input_source *s = realloc(in->src, sizeof *s * (size_t)(in->n_src + 1));
    if (!s) { mc_fail(e, MC_E_NOMEM, "out of memory"); return NULL; }
    in->src = s;
    s = &in->src[in->n_src++];
    memset(s, 0, sizeof *s);
    return s;
}

/* Appends an item; takes ownership of value. */
static int push(mc_inputs *in, int kind, char *value, const char *list, long line, mc_err *e) {
    mc_input_source *s = value ? fixed_source(in, e) : NULL;
    if (s && (s->n & (s->n - 1)) == 0) { /* grow at powers of two */
        mc_input *it = realloc(s->items, sizeof *it * (size_t)(s->n ? 2 * s->n : 1));
        if (it) s->items = it;
        else s = NULL;
    }
    if (!s) {
        free(value);
        return mc_fail(e, MC_E_NOMEM, "out of memory");
    }
    s->items[s->n++] = (mc_input){kind, value, list, line};
    if (in->total >= 0) in->total++;
    in->has_kind[kind] = 1;
    return 0;
}

int mc_inputs_add_value(mc_inputs *in, int kind, const char *value, mc_err *e) {
    return push(in, kind, strdup(value), NULL, 0, e);
}

/* Reads the next non-empty line of f into a new string: 1, 0 at EOF, < 0 on error. */
static int read_line(FILE *f, const char *name, long *line, char **out, mc_err *e) {
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&buf, &cap, f)) >= 0) {
        ++*line;
        if (len && buf[len - 1] == '\n') buf[--len] = 0;
        if (len && buf[len - 1] == '\r') buf[--len] = 0;
        if ((size_t)len != strlen(buf)) {
            free(buf);
            return mc_fail(e, MC_E_FORMAT, "%s:%ld: line contains a NUL byte", name, *line);
        }
        if (len) {
            *out = buf;
            return 1;
        }
    }
    int bad = ferror(f);
    free(buf);
    return bad ? mc_fail(e, MC_E_IO, "%s: read error: %s", name, strerror(errno)) : 0;
}

int mc_inputs_add_list(mc_inputs *in, int kind, const char *path, mc_err *e) {
    if (!strcmp(path, "-")) {
        if (in->has_stdin) return mc_fail(e, MC_E_ARG, "only one list can be read from stdin (-)");
        mc_input_source *s = realloc(in->src, sizeof *s * (size_t)(in->n_src + 1));
        if (!s) return mc_fail(e, MC_E_NOMEM, "out of memory");
        in->src = s;
        in->src[in->n_src++] = (mc_input_source){.stream = stdin, .stream_kind = kind};
        in->has_stdin = 1;
        in->has_kind[kind] = 1;
        in->total = -1;
        return 0;
    }
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return mc_fail(e, MC_E_IO, "%s: is a directory, not a list file", path);
    FILE *f = fopen(path, "r");
    if (!f) return mc_fail(e, MC_E_IO, "%s: cannot open: %s", path, strerror(errno));
    int r = mc_inputs_add_lines(in, kind, f, path, e);
    fclose(f);
    return r;
}

int mc_inputs_add_lines(mc_inputs *in, int kind, FILE *f, const char *name, mc_err *e) {
    long line = 0;
    char *v;
    int r;
    while ((r = read_line(f, name, &line, &v, e)) > 0)
        if ((r = push(in, kind, v, name, line, e))) break;
    return r;
}

int mc_inputs_add_dir(mc_inputs *in, const char *dir, mc_err *e) {
    /* every file counts, dot files too, and one that cannot be read is kept so that loading it
     * reports the problem instead of the walk dropping it silently */
    const mc_walk_opts o = {.formats = MC_IMAGE_FORMAT_ALL, .dot_files = 1, .keep_unreadable = 1};
    mc_strlist files = {0};
    int r = mc_walk_images(dir, &o, &files, NULL, e);
    for (int i = 0; i < files.count && !r; i++) {
        r = push(in, MC_INPUT_IMAGE, files.items[i], NULL, 0, e); /* push owns it, even on failure */
        files.items[i] = NULL;
    }
    mc_strlist_free(&files);
    in->has_kind[MC_INPUT_IMAGE] = 1;
    return r;
}

int mc_inputs_next(mc_inputs *in, mc_input *out, mc_err *e) {
    while (in->cur < in->n_src) {
        mc_input_source *s = &in->src[in->cur];
        if (s->stream) {
            char *v;
            int r = read_line(s->stream, "stdin", &s->stream_line, &v, e);
            if (r < 0) return r;
            if (r) {
                *out = (mc_input){s->stream_kind, v, "stdin", s->stream_line};
                return 1;
            }
        } else if (s->pos < s->n) {
            *out = s->items[s->pos];
            s->items[s->pos++].value = NULL;
            return 1;
        }
        in->cur++;
    }
    return 0;
}

void mc_inputs_free(mc_inputs *in) {
    for (int i = 0; i < in->n_src; i++) {
        for (long long k = 0; k < in->src[i].n; k++) free(in->src[i].items[k].value);
        free(in->src[i].items);
    }
    free(in->src);
    memset(in, 0, sizeof *in);
}
