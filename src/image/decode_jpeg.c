/* decode_jpeg.c - JPEG to 8-bit RGB with libjpeg-turbo, reproducing PIL 9.4's pixels.
 *
 * PIL maps 1/3/4 components to modes L/RGB/CMYK, asks libjpeg for GRAYSCALE/RGB/CMYK output
 * with default settings (JDCT_ISLOW, fancy upsampling), treats CMYK as Adobe-inverted
 * ("CMYK;I") and converts with cmyk2rgb. Warnings are silent in PIL; its decoder only fails
 * on libjpeg errors or when the file ends before the last scanline ("image file is
 * truncated"). We do the same: the memory source's end-of-data warning (JWRN_JPEG_EOF,
 * after which libjpeg would invent an EOI and grey rows) is fatal until every scanline has
 * been delivered, harmless after (PIL ignores a suspension inside jpeg_finish_decompress).
 */
#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE and size_t */
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "image/image.h"

typedef struct jpeg_guard {
    struct jpeg_error_mgr pub; /* first: libjpeg hands us a pointer to it */
    jmp_buf jmp;
    int rows_done;  /* every scanline delivered: a missing EOI no longer matters */
    int truncated;  /* ran out of data before the last scanline */
    int too_many_scans;
    char msg[JMSG_LENGTH_MAX];
} jpeg_guard;

static void jpeg_on_error(j_common_ptr c) {
    jpeg_guard *g = (jpeg_guard *)c->err;
    c->err->format_message(c, g->msg);
    longjmp(g->jmp, 1);
}

/* Warnings (level -1) are ignored like PIL does, except premature end of data. Trace
 * messages (level >= 0) are dropped. */
static void jpeg_on_message(j_common_ptr c, int level) {
    jpeg_guard *g = (jpeg_guard *)c->err;
    if (level >= 0) return;
    c->err->num_warnings++;
    if (c->err->msg_code == JWRN_JPEG_EOF && !g->rows_done) {
        g->truncated = 1;
        longjmp(g->jmp, 1);
    }
}

static void jpeg_on_output(j_common_ptr c) { (void)c; }

/* Called while libjpeg consumes input; bounds the work a progressive "scan bomb" can cause. */
static void jpeg_on_progress(j_common_ptr c) {
    if (!c->is_decompressor) return;
    j_decompress_ptr d = (j_decompress_ptr)c;
    if (d->input_scan_number > MC_IMAGE_MAX_JPEG_SCANS) {
        jpeg_guard *g = (jpeg_guard *)c->err;
        g->too_many_scans = 1;
        longjmp(g->jmp, 1);
    }
}

/* PIL's cmyk2rgb on Adobe-inverted samples: C = 255 - c', K = 255 - k', nk = 255 - K = k',
 * out = nk - MULDIV255(C, nk) with MULDIV255(a, b) = (t + (t >> 8)) >> 8, t = a * b + 128. */
static void cmyk_inverted_to_rgb(const uint8_t *in, uint8_t *out, int w) {
    for (int x = 0; x < w; x++, in += 4, out += 3) {
        int nk = in[3];
        for (int c = 0; c < 3; c++) {
            int t = (255 - in[c]) * nk + 128;
            int v = nk - (((t >> 8) + t) >> 8);
            out[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

int mc_image_decode_jpeg(const uint8_t *buf, size_t len, const char *name, int64_t max_pixels,
                         mc_image *out, mc_err *e) {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_progress_mgr progress;
    jpeg_guard g;
    uint8_t *volatile rgb = NULL; /* volatile: still valid when longjmp lands below */
    uint8_t *volatile row = NULL;

    memset(out, 0, sizeof *out);
    memset(&g, 0, sizeof g);
    memset(&progress, 0, sizeof progress);
    cinfo.err = jpeg_std_error(&g.pub);
    g.pub.error_exit = jpeg_on_error;
    g.pub.emit_message = jpeg_on_message;
    g.pub.output_message = jpeg_on_output;
    progress.progress_monitor = jpeg_on_progress;

    if (setjmp(g.jmp)) {
        jpeg_destroy_decompress(&cinfo);
        free(rgb);
        free(row);
        if (g.truncated) return mc_fail(e, MC_E_FORMAT, "%s: truncated JPEG (premature end of data)", name);
        if (g.too_many_scans)
            return mc_fail(e, MC_E_FORMAT, "%s: corrupt JPEG: more than %d scans", name, MC_IMAGE_MAX_JPEG_SCANS);
        return mc_fail(e, MC_E_FORMAT, "%s: corrupt JPEG: %s", name, g.msg);
    }

    jpeg_create_decompress(&cinfo);
    cinfo.progress = &progress;
    jpeg_mem_src(&cinfo, buf, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);

    int r = mc_image_check_size(cinfo.image_width, cinfo.image_height, max_pixels, name, e);
    if (r) {
        jpeg_destroy_decompress(&cinfo);
        return r;
    }
    int ncomp = cinfo.num_components;
    switch (ncomp) {
    case 1: cinfo.out_color_space = JCS_GRAYSCALE; break;
    case 3: cinfo.out_color_space = JCS_RGB; break;
    case 4: cinfo.out_color_space = JCS_CMYK; break; /* libjpeg turns YCCK into CMYK */
    default:
        jpeg_destroy_decompress(&cinfo);
        return mc_fail(e, MC_E_UNSUPPORTED, "%s: unsupported JPEG with %d components", name, ncomp);
    }
    /* Defaults are what PIL uses; set them explicitly so nobody "optimises" them away. */
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    cinfo.scale_num = cinfo.scale_denom = 1;

    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height;
    if (w != (int)cinfo.image_width || h != (int)cinfo.image_height || cinfo.output_components != ncomp) {
        jpeg_destroy_decompress(&cinfo);
        return mc_fail(e, MC_E_FORMAT, "%s: corrupt JPEG: unexpected output geometry", name);
    }
    rgb = malloc((size_t)w * (size_t)h * 3);
    if (ncomp != 3) row = malloc((size_t)w * (size_t)ncomp);
    if (!rgb || (ncomp != 3 && !row)) {
        jpeg_destroy_decompress(&cinfo);
        free(rgb);
        free(row);
        return mc_fail(e, MC_E_NOMEM, "%s: out of memory for a %dx%d image", name, w, h);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        int y = (int)cinfo.output_scanline;
        uint8_t *dst = rgb + (size_t)y * (size_t)w * 3;
        JSAMPROW rp = ncomp == 3 ? dst : row;
        if (jpeg_read_scanlines(&cinfo, &rp, 1) != 1) {
            g.rows_done = 0;
            snprintf(g.msg, sizeof g.msg, "decoder returned no scanline at row %d", y);
            longjmp(g.jmp, 1);
        }
        if (ncomp == 1) {
            for (int x = 0; x < w; x++) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = row[x];
        } else if (ncomp == 4) {
            cmyk_inverted_to_rgb(row, dst, w);
        }
    }
    g.rows_done = 1;
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    out->w = w;
    out->h = h;
    out->rgb = rgb;
    return 0;
}
