/* encode_png.c - PNG writing into a growing memory buffer with libpng. */
#include "image/encode_png.h"

#include <png.h>
#include <stdlib.h>
#include <string.h>

typedef struct png_sink {
    unsigned char *buf;
    size_t len, cap;
    int nomem;
} png_sink;

static void sink_write(png_structp png, png_bytep data, png_size_t n) {
    png_sink *s = png_get_io_ptr(png);
    if (s->nomem) return;
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 1024;
        while (cap < s->len + n) cap *= 2;
        unsigned char *nb = realloc(s->buf, cap);
        if (!nb) {
            s->nomem = 1;
            return;
        }
        s->buf = nb, s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
}

static void sink_flush(png_structp png) { (void)png; }
static void on_error(png_structp png, png_const_charp msg) { (void)msg, png_longjmp(png, 1); }
static void on_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

int mc_png_encode(const uint8_t *px, int w, int h, int channels, unsigned char **out, size_t *len, mc_err *e) {
    *out = NULL, *len = 0;
    if (w < 1 || h < 1 || w > (1 << 20) || h > (1 << 20) || (channels != 1 && channels != 3))
        return mc_fail(e, MC_E_ARG, "PNG encoder: bad image %dx%d with %d channels", w, h, channels);
    png_sink sink = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        return mc_fail(e, MC_E_NOMEM, "PNG encoder: out of memory (libpng)");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(sink.buf);
        return mc_fail(e, MC_E_NOMEM, "PNG encoder: libpng failed");
    }
    png_set_write_fn(png, &sink, sink_write, sink_flush);
    png_set_compression_level(png, 9);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, (png_const_bytep)(px + (size_t)y * w * channels));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (sink.nomem) {
        free(sink.buf);
        return mc_fail(e, MC_E_NOMEM, "PNG encoder: out of memory");
    }
    *out = sink.buf, *len = sink.len;
    return 0;
}
