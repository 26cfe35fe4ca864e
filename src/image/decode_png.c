/* decode_png.c - PNG to 8-bit RGB with libpng, reproducing PIL 9.4's convert('RGB').
 *
 * Every pixel ends up as 3 bytes, and every raw row fits in 3 bytes per pixel, so libpng
 * writes straight into the output (also for Adam7, whose passes refill whole rows):
 *   gray 1/2/4/8    expand to 8 bits (x255, x85, x17 like PIL's "1", "L;2", "L;4"), gray->rgb
 *   gray+alpha 8/16 strip 16 -> high byte, strip alpha, gray->rgb
 *   rgb(a) 8/16     strip 16 -> high byte, strip alpha
 *   gray 16         kept as 2 big-endian bytes, then min(v, 255) in place (PIL mode "I")
 *   palette         indices (packing: one per byte), then looked up in place in PIL's
 *                   palette: PLTE entries, the rest a grey ramp
 * The in-place passes run backwards over each row: pixel x reads bytes at <= 2x+1 and
 * writes 3x..3x+2, so nothing still unread is overwritten. tRNS is never expanded.
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "image/image.h"

typedef struct png_src {
    const uint8_t *buf;
    size_t len, pos;
    int truncated;
    char msg[256];
} png_src;

static void png_on_error(png_structp png, png_const_charp msg) {
    png_src *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

static void png_on_read(png_structp png, png_bytep dst, png_size_t n) {
    png_src *s = png_get_io_ptr(png);
    if (n > s->len - s->pos) {
        s->truncated = 1;
        png_error(png, "truncated");
    }
    memcpy(dst, s->buf + s->pos, n);
    s->pos += n;
}

int mc_image_decode_png(const uint8_t *buf, size_t len, const char *name, int64_t max_pixels,
                        mc_image *out, mc_err *e) {
    png_src src = {.buf = buf, .len = len};
    png_structp png = NULL;
    png_infop info = NULL;
    uint8_t *volatile rgb = NULL; /* volatile: still valid when png_longjmp lands below */
    png_bytep *volatile rows = NULL;

    memset(out, 0, sizeof *out);
    png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
    if (!png) return mc_fail(e, MC_E_NOMEM, "%s: out of memory (libpng)", name);
    info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return mc_fail(e, MC_E_NOMEM, "%s: out of memory (libpng)", name);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rgb);
        free(rows);
        if (src.truncated) return mc_fail(e, MC_E_FORMAT, "%s: truncated PNG", name);
        return mc_fail(e, MC_E_FORMAT, "%s: corrupt PNG: %s", name, src.msg);
    }
    png_set_read_fn(png, &src, png_on_read);
    png_set_user_limits(png, MC_IMAGE_MAX_SIDE, MC_IMAGE_MAX_SIDE);
    png_read_info(png, info);

    png_uint_32 w32, h32;
    int depth, ctype, interlace;
    png_get_IHDR(png, info, &w32, &h32, &depth, &ctype, &interlace, NULL, NULL);
    int r = mc_image_check_size(w32, h32, max_pixels, name, e);
    if (r) {
        png_destroy_read_struct(&png, &info, NULL);
        return r;
    }
    int w = (int)w32, h = (int)h32;

    /* Palette as PIL holds it: PLTE entries first, then the default ramp (i, i, i). */
    uint8_t pal[256][3];
    for (int i = 0; i < 256; i++) pal[i][0] = pal[i][1] = pal[i][2] = (uint8_t)i;

    int gray16 = 0, palette = 0;
    if (ctype == PNG_COLOR_TYPE_PALETTE) {
        png_colorp plte = NULL;
        int n = 0;
        if (png_get_PLTE(png, info, &plte, &n) && plte) {
            if (n > 256) n = 256;
            for (int i = 0; i < n; i++) {
                pal[i][0] = plte[i].red;
                pal[i][1] = plte[i].green;
                pal[i][2] = plte[i].blue;
            }
        }
        if (depth < 8) png_set_packing(png);
        palette = 1;
    } else if (ctype == PNG_COLOR_TYPE_GRAY && depth == 16) {
        gray16 = 1;
    } else {
        if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
        if (depth == 16) png_set_strip_16(png); /* keeps the high byte, as PIL's ";16B" */
        if (ctype & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
        if (!(ctype & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(png);
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    size_t expect = (size_t)w * (gray16 ? 2 : palette ? 1 : 3);
    if (rowbytes != expect) {
        snprintf(src.msg, sizeof src.msg, "unexpected row size %zu for %dx%d, colour type %d, depth %d",
                 rowbytes, w, h, ctype, depth);
        png_longjmp(png, 1);
    }

    rgb = malloc((size_t)w * (size_t)h * 3);
    rows = malloc((size_t)h * sizeof *rows);
    if (!rgb || !rows) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rgb);
        free(rows);
        return mc_fail(e, MC_E_NOMEM, "%s: out of memory for a %dx%d image", name, w, h);
    }
    for (int y = 0; y < h; y++) rows[y] = rgb + (size_t)y * (size_t)w * 3;
    png_read_image(png, rows);
    /* No png_read_end: like PIL, chunks after the image data are not needed. */
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);

    if (gray16 || palette) {
        for (int y = 0; y < h; y++) {
            uint8_t *p = rgb + (size_t)y * (size_t)w * 3;
            for (int x = w - 1; x >= 0; x--) {
                uint8_t v0, v1, v2;
                if (gray16) {
                    unsigned v = (unsigned)p[2 * x] << 8 | p[2 * x + 1];
                    v0 = v1 = v2 = (uint8_t)(v > 255 ? 255 : v);
                } else {
                    const uint8_t *c = pal[p[x]];
                    v0 = c[0], v1 = c[1], v2 = c[2];
                }
                p[3 * x] = v0, p[3 * x + 1] = v1, p[3 * x + 2] = v2;
            }
        }
    }
    out->w = w;
    out->h = h;
    out->rgb = rgb;
    return 0;
}
