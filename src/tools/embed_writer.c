/* embed_writer.c - jsonl, npy and f32 outputs of `mobileclip embed` (see embed_writer.h). */
#include "tools/embed_writer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/cli.h"

#define NPY_HEADER 128 /* magic 6 + version 2 + length 2 + dict padded to 128 */

int mc_embed_format_from_name(const char *name) {
    if (!strcmp(name, "jsonl")) return MC_EMBED_JSONL;
    if (!strcmp(name, "npy")) return MC_EMBED_NPY;
    if (!strcmp(name, "f32")) return MC_EMBED_F32;
    return -1;
}

char *mc_embed_names_path(const char *out) {
    size_t l = strlen(out);
    if (l > 4 && (!strcmp(out + l - 4, ".npy") || !strcmp(out + l - 4, ".f32"))) l -= 4;
    char *p = malloc(l + 13);
    if (p) {
        memcpy(p, out, l);
        memcpy(p + l, ".names.jsonl", 13);
    }
    return p;
}

/* The .npy v1.0 header for shape (rows, dim), exactly NPY_HEADER bytes. */
static void npy_header(char *h, long long rows, int dim) {
    memset(h, ' ', NPY_HEADER);
    memcpy(h, "\x93NUMPY\x01\x00", 8);
    h[8] = (char)(NPY_HEADER - 10);
    h[9] = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    const char *descr = ">f4";
#else
    const char *descr = "<f4";
#endif
    int n = snprintf(h + 10, NPY_HEADER - 10, "{'descr': '%s', 'fortran_order': False, 'shape': (%lld, %d), }", descr,
                     rows, dim);
    h[10 + n] = ' '; /* snprintf's NUL becomes padding */
    h[NPY_HEADER - 1] = '\n';
}

static int write_failed(mc_embed_writer *w, mc_err *e) {
    const char *what = w->format == MC_EMBED_JSONL && !w->out.f ? "standard output" : w->out.path;
    return mc_fail(e, MC_E_IO, "cannot write the output (%s): %s", what, strerror(errno ? errno : EIO));
}

int mc_embed_writer_open(mc_embed_writer *w, mc_embed_format format, const char *out, int dim, mc_err *e) {
    memset(w, 0, sizeof *w);
    w->format = format;
    w->dim = dim;
    w->data = stdout;
    if (!out) return format == MC_EMBED_JSONL ? 0 : mc_fail(e, MC_E_ARG, "npy and f32 output need --out FILE");
    if (mc_atomic_open(&w->out, out, e)) return e->code;
    w->data = w->out.f;
    if (format == MC_EMBED_JSONL) return 0;
    char *names = mc_embed_names_path(out);
    int r = names ? mc_atomic_open(&w->names, names, e) : mc_fail(e, MC_E_NOMEM, "out of memory");
    free(names);
    if (!r && format == MC_EMBED_NPY) {
        char h[NPY_HEADER];
        npy_header(h, 0, dim);
        if (fwrite(h, 1, NPY_HEADER, w->data) != NPY_HEADER) r = write_failed(w, e);
    }
    if (r) mc_embed_writer_abort(w);
    return r;
}

static void print_name(FILE *f, const char *kind, const char *name) {
    fprintf(f, "{\"kind\":\"%s\",\"input\":", kind);
    mc_json_print_string(f, name);
}

int mc_embed_writer_row(mc_embed_writer *w, const char *kind, const char *name, const float *v, mc_err *e) {
    w->rows++;
    if (w->format == MC_EMBED_JSONL) {
        print_name(w->data, kind, name);
        fputs(",\"embedding\":", w->data);
        mc_json_print_floats(w->data, v, w->dim);
        fputs("}\n", w->data);
    } else {
        if (fwrite(v, sizeof(float), (size_t)w->dim, w->data) != (size_t)w->dim) return write_failed(w, e);
        print_name(w->names.f, kind, name);
        fputs("}\n", w->names.f);
    }
    return ferror(w->data) ? write_failed(w, e) : 0;
}

int mc_embed_writer_flush(mc_embed_writer *w, mc_err *e) {
    return fflush(w->data) || ferror(w->data) ? write_failed(w, e) : 0;
}

int mc_embed_writer_commit(mc_embed_writer *w, mc_err *e) {
    int r = mc_embed_writer_flush(w, e);
    if (!r && w->format == MC_EMBED_NPY) {
        char h[NPY_HEADER];
        npy_header(h, w->rows, w->dim);
        if (fseek(w->data, 0, SEEK_SET) || fwrite(h, 1, NPY_HEADER, w->data) != NPY_HEADER) r = write_failed(w, e);
    }
    /* the sidecar first: the data file, appearing last, marks the pair complete */
    char *names = w->names.f ? mc_embed_names_path(w->out.path) : NULL;
    if (!r && w->names.f) r = names ? mc_atomic_commit(&w->names, e) : mc_fail(e, MC_E_NOMEM, "out of memory");
    if (!r && w->out.f && (r = mc_atomic_commit(&w->out, e)) && names) unlink(names);
    free(names);
    if (r) mc_embed_writer_abort(w);
    return r;
}

void mc_embed_writer_abort(mc_embed_writer *w) {
    mc_atomic_abort(&w->names);
    mc_atomic_abort(&w->out);
    w->data = NULL;
}
