/* PNG/JPEG variants the shared images do not cover, written here with libpng/libjpeg and
 * decoded with the expected values of PIL 9.4's Image.open(f).convert('RGB') (the rules are
 * listed in src/image/image.h; the numbers below are worked out by hand from them). */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

#include "common/test_util.h"
#include "image/image.h"

/* ---- PNG writing into memory ---- */

typedef struct membuf {
    uint8_t *p;
    size_t n, cap;
} membuf;

static void mb_write(png_structp png, png_bytep d, png_size_t n) {
    membuf *b = png_get_io_ptr(png);
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) mc_test_fatal("out of memory");
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void mb_flush(png_structp png) { (void)png; }

/* Writes a w x h PNG; `raw` holds rows of packed samples exactly as PNG stores them
 * (16-bit big-endian, sub-byte depths packed MSB first). */
static membuf write_png(int w, int h, int depth, int ctype, int interlace, const uint8_t *raw,
                        const png_color *plte, int nplte, const uint8_t *trns, int ntrns,
                        const png_color_16 *trns_color) {
    membuf b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) mc_test_fatal("libpng write failed");
    png_set_write_fn(png, &b, mb_write, mb_flush);
    png_set_benign_errors(png, 1);
#ifdef PNG_CHECK_FOR_INVALID_INDEX_SUPPORTED
    png_set_check_for_invalid_index(png, 0); /* we want out-of-range palette indices */
#endif
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, ctype,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (plte) png_set_PLTE(png, info, plte, nplte);
    if (trns || trns_color) png_set_tRNS(png, info, trns, ntrns, trns_color);
    png_write_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    png_bytep *rows = malloc(sizeof *rows * (size_t)h);
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)raw + (size_t)y * rowbytes;
    png_write_image(png, rows);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(rows);
    return b;
}

/* Decodes b and compares with expected rgb (w*h*3). */
static void expect_pixels(const char *what, membuf b, int w, int h, const uint8_t *want) {
    mc_image im;
    mc_err e = {0};
    int r = mc_image_decode(b.p, b.n, what, &im, &e);
    int ok = r == 0 && im.w == w && im.h == h;
    int bad = -1;
    if (ok)
        for (int i = 0; i < w * h * 3; i++)
            if (im.rgb[i] != want[i]) {
                bad = i;
                ok = 0;
                break;
            }
    printf("%-4s %s\n", ok ? "ok" : "FAIL", what);
    if (r) CHECK(0, "%s: %s", what, e.msg);
    else if (bad >= 0)
        CHECK(0, "%s: byte %d (pixel %d, channel %d) is %d, want %d", what, bad, bad / 3, bad % 3, im.rgb[bad], want[bad]);
    else CHECK(ok, "%s: size %dx%d", what, im.w, im.h);
    if (r == 0) mc_image_free(&im);
    free(b.p);
}

#define W 11 /* odd sizes exercise partial bytes and every Adam7 pass */
#define H 9

static void test_png(void) {
    uint8_t raw[W * H * 8], want[W * H * 3];

    for (int il = 0; il < 2; il++) {
        char what[128];
        const char *ils = il ? "interlaced" : "non-interlaced";

        /* RGB 8: identity. */
        for (int i = 0; i < W * H * 3; i++) raw[i] = want[i] = (uint8_t)(i * 7 + 3);
        snprintf(what, sizeof what, "PNG RGB 8-bit %s", ils);
        expect_pixels(what, write_png(W, H, 8, PNG_COLOR_TYPE_RGB, il, raw, NULL, 0, NULL, 0, NULL), W, H, want);

        /* RGB 8 with a tRNS colour: ignored. */
        png_color_16 tc = {.red = 3, .green = 10, .blue = 17};
        snprintf(what, sizeof what, "PNG RGB 8-bit + tRNS %s (no effect)", ils);
        expect_pixels(what, write_png(W, H, 8, PNG_COLOR_TYPE_RGB, il, raw, NULL, 0, NULL, 0, &tc), W, H, want);

        /* RGBA 8: alpha dropped, colours not composited (alpha 0 pixels keep their RGB). */
        for (int p = 0; p < W * H; p++) {
            for (int c = 0; c < 3; c++) raw[p * 4 + c] = want[p * 3 + c] = (uint8_t)(p * 5 + c * 60);
            raw[p * 4 + 3] = (uint8_t)(p % 3 == 0 ? 0 : p * 11);
        }
        snprintf(what, sizeof what, "PNG RGBA 8-bit %s (alpha dropped, no compositing)", ils);
        expect_pixels(what, write_png(W, H, 8, PNG_COLOR_TYPE_RGBA, il, raw, NULL, 0, NULL, 0, NULL), W, H, want);

        /* RGB 16 and RGBA 16: the high byte ("RGB;16B"/"RGBA;16B"). */
        for (int p = 0; p < W * H; p++)
            for (int c = 0; c < 4; c++) {
                unsigned v = (unsigned)(p * 1237 + c * 20011 + 0x80) & 0xffff;
                raw[(p * 4 + c) * 2] = (uint8_t)(v >> 8);
                raw[(p * 4 + c) * 2 + 1] = (uint8_t)v;
                if (c < 3) want[p * 3 + c] = (uint8_t)(v >> 8);
            }
        snprintf(what, sizeof what, "PNG RGBA 16-bit %s (high byte, alpha dropped)", ils);
        expect_pixels(what, write_png(W, H, 16, PNG_COLOR_TYPE_RGBA, il, raw, NULL, 0, NULL, 0, NULL), W, H, want);
        for (int p = 0; p < W * H; p++)
            for (int c = 0; c < 3; c++) {
                unsigned v = (unsigned)(p * 977 + c * 30011 + 0xff) & 0xffff; /* low bytes 0xff: no rounding up */
                raw[(p * 3 + c) * 2] = (uint8_t)(v >> 8);
                raw[(p * 3 + c) * 2 + 1] = (uint8_t)v;
                want[p * 3 + c] = (uint8_t)(v >> 8);
            }
        snprintf(what, sizeof what, "PNG RGB 16-bit %s (high byte, not rounded)", ils);
        expect_pixels(what, write_png(W, H, 16, PNG_COLOR_TYPE_RGB, il, raw, NULL, 0, NULL, 0, NULL), W, H, want);

        /* Gray 8 replicated; gray 1/2/4 scaled by 255/85/17 (PIL's "1", "L;2", "L;4"). */
        for (int depth = 1; depth <= 8; depth *= 2) {
            int maxv = (1 << depth) - 1, scale = 255 / maxv;
            int rowbytes = (W * depth + 7) / 8;
            memset(raw, 0, sizeof raw);
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    int v = (x * 3 + y * 5) % (maxv + 1);
                    int bit = x * depth;
                    raw[y * rowbytes + bit / 8] |= (uint8_t)(v << (8 - depth - bit % 8));
                    uint8_t o = (uint8_t)(v * scale);
                    want[(y * W + x) * 3] = want[(y * W + x) * 3 + 1] = want[(y * W + x) * 3 + 2] = o;
                }
            snprintf(what, sizeof what, "PNG gray %d-bit %s", depth, ils);
            expect_pixels(what, write_png(W, H, depth, PNG_COLOR_TYPE_GRAY, il, raw, NULL, 0, NULL, 0, NULL), W, H, want);
        }

        /* Gray 16: PIL opens mode "I" and convert('RGB') clamps: min(v, 255). */
        static const unsigned g16[] = {0, 1, 200, 255, 256, 300, 4095, 32768, 65535};
        for (int p = 0; p < W * H; p++) {
            unsigned v = g16[p % 9];
            raw[p * 2] = (uint8_t)(v >> 8), raw[p * 2 + 1] = (uint8_t)v;
            want[p * 3] = want[p * 3 + 1] = want[p * 3 + 2] = (uint8_t)(v > 255 ? 255 : v);
        }
        snprintf(what, sizeof what, "PNG gray 16-bit %s (clamped to 255 like PIL mode I)", ils);
        expect_pixels(what, write_png(W, H, 16, PNG_COLOR_TYPE_GRAY, il, raw, NULL, 0, NULL, 0, NULL), W, H, want);

        /* Gray+alpha 8 and 16: gray (high byte) replicated, alpha dropped. */
        for (int p = 0; p < W * H; p++) {
            raw[p * 2] = (uint8_t)(p * 9), raw[p * 2 + 1] = (uint8_t)(p * 31);
            want[p * 3] = want[p * 3 + 1] = want[p * 3 + 2] = (uint8_t)(p * 9);
        }
        snprintf(what, sizeof what, "PNG gray+alpha 8-bit %s", ils);
        expect_pixels(what, write_png(W, H, 8, PNG_COLOR_TYPE_GRAY_ALPHA, il, raw, NULL, 0, NULL, 0, NULL), W, H, want);
        for (int p = 0; p < W * H; p++) {
            unsigned v = (unsigned)(p * 601 + 0xc0) & 0xffff;
            raw[p * 4] = (uint8_t)(v >> 8), raw[p * 4 + 1] = (uint8_t)v, raw[p * 4 + 2] = 0, raw[p * 4 + 3] = 7;
            want[p * 3] = want[p * 3 + 1] = want[p * 3 + 2] = (uint8_t)(v >> 8);
        }
        snprintf(what, sizeof what, "PNG gray+alpha 16-bit %s", ils);
        expect_pixels(what, write_png(W, H, 16, PNG_COLOR_TYPE_GRAY_ALPHA, il, raw, NULL, 0, NULL, 0, NULL), W, H, want);

        /* Palette 1/2/4/8 bit with tRNS (ignored); indices past the PLTE entries read PIL's
         * default ramp (i, i, i). */
        for (int depth = 1; depth <= 8; depth *= 2) {
            int maxv = (1 << depth) - 1, rowbytes = (W * depth + 7) / 8;
            int nplte = depth == 1 ? 1 : maxv; /* always leave the top index(es) undefined */
            png_color plte[256];
            uint8_t trns[256];
            for (int i = 0; i < nplte; i++) {
                plte[i].red = (uint8_t)(i * 40 + 1), plte[i].green = (uint8_t)(200 - i * 3), plte[i].blue = (uint8_t)(i * 13);
                trns[i] = (uint8_t)(i * 17);
            }
            memset(raw, 0, sizeof raw);
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    int v = (x + y * 3) % (maxv + 1);
                    int bit = x * depth;
                    raw[y * rowbytes + bit / 8] |= (uint8_t)(v << (8 - depth - bit % 8));
                    uint8_t *o = want + (y * W + x) * 3;
                    if (v < nplte) o[0] = plte[v].red, o[1] = plte[v].green, o[2] = plte[v].blue;
                    else o[0] = o[1] = o[2] = (uint8_t)v;
                }
            snprintf(what, sizeof what, "PNG palette %d-bit + tRNS %s (undefined index -> ramp)", depth, ils);
            expect_pixels(what, write_png(W, H, depth, PNG_COLOR_TYPE_PALETTE, il, raw, plte, nplte, trns, nplte, NULL),
                          W, H, want);
        }
    }

    /* A 1x1 image and a 1-pixel-wide tall one (in-place expansion at the row start). */
    uint8_t one[2] = {0x12, 0x34};
    uint8_t w1[3] = {255, 255, 255};
    expect_pixels("PNG gray 16-bit 1x1", write_png(1, 1, 16, PNG_COLOR_TYPE_GRAY, 0, one, NULL, 0, NULL, 0, NULL), 1, 1, w1);
}

/* ---- JPEG ---- */

static void jpeg_fatal(j_common_ptr c) {
    char m[JMSG_LENGTH_MAX];
    c->err->format_message(c, m);
    mc_test_fatal("libjpeg (test encoder): %s", m);
}

/* Encodes w x h samples of `ncomp` components (1 = gray, 4 = CMYK as given) at quality 100
 * without chroma subsampling. */
static membuf write_jpeg(int w, int h, int ncomp, const uint8_t *px) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    err.error_exit = jpeg_fatal;
    jpeg_create_compress(&c);
    unsigned char *out = NULL;
    unsigned long n = 0;
    jpeg_mem_dest(&c, &out, &n);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = ncomp;
    c.in_color_space = ncomp == 1 ? JCS_GRAYSCALE : JCS_CMYK;
    jpeg_set_defaults(&c); /* CMYK: no colour transform, Adobe marker written */
    jpeg_set_quality(&c, 100, TRUE);
    for (int i = 0; i < c.num_components; i++) c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)px + (size_t)c.next_scanline * (size_t)w * (size_t)ncomp;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    membuf b = {.p = out, .n = n, .cap = n};
    return b;
}

static void test_jpeg(void) {
    /* Solid 8x8 blocks at quality 100 survive the DCT exactly, so expected values are exact. */
    enum { JW = 32, JH = 16 };
    uint8_t px[JW * JH * 4], want[JW * JH * 3];

    static const uint8_t gv[8] = {0, 17, 64, 128, 129, 200, 254, 255};
    for (int y = 0; y < JH; y++)
        for (int x = 0; x < JW; x++) {
            uint8_t v = gv[(x / 8) + (y / 8) * 4];
            px[y * JW + x] = v;
            want[(y * JW + x) * 3] = want[(y * JW + x) * 3 + 1] = want[(y * JW + x) * 3 + 2] = v;
        }
    expect_pixels("JPEG grayscale (replicated)", write_jpeg(JW, JH, 1, px), JW, JH, want);

    /* CMYK stored Adobe-style (inverted): raw c', m', y', k'. PIL: C = 255 - c', nk = k',
     * R = nk - MULDIV255(C, nk). Worked values:
     *   c'=255,k'=255 -> 255;  c'=0,k'=255 -> 0;  c'=128,k'=128 -> 128 - 64 = 64;
     *   any c', k'=0 -> 0;  c'=200,k'=255 -> 255 - MULDIV255(55, 255) = 200;
     *   c'=10,k'=99 -> C=245, t=245*99+128=24383, (24383 + 95) >> 8 = 95 -> 99 - 95 = 4. */
    static const uint8_t cm[8][5] = {
        /* c', m', y', k', expected R (G and B use m', y' with the same k') */
        {255, 0, 128, 255, 255}, {0, 255, 128, 255, 0}, {128, 128, 128, 128, 64}, {77, 200, 10, 0, 0},
        {200, 10, 255, 255, 200}, {10, 128, 200, 99, 4}, {255, 255, 255, 255, 255}, {0, 0, 0, 0, 0},
    };
    static const uint8_t expect_g[8] = {0, 255, 64, 0, 10, 50, 255, 0};
    static const uint8_t expect_b[8] = {128, 128, 64, 0, 255, 78, 255, 0};
    for (int y = 0; y < JH; y++)
        for (int x = 0; x < JW; x++) {
            int blk = (x / 8) + (y / 8) * 4;
            for (int c = 0; c < 4; c++) px[(y * JW + x) * 4 + c] = cm[blk][c];
            want[(y * JW + x) * 3] = cm[blk][4];
            want[(y * JW + x) * 3 + 1] = expect_g[blk];
            want[(y * JW + x) * 3 + 2] = expect_b[blk];
        }
    expect_pixels("JPEG CMYK with Adobe marker (PIL cmyk2rgb)", write_jpeg(JW, JH, 4, px), JW, JH, want);
}

int main(void) {
    test_png();
    test_jpeg();
    return mc_test_finish("image_formats");
}
