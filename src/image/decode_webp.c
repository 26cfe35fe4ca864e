/* decode_webp.c - WebP to 8-bit RGB with libwebp, reproducing Pillow's convert('RGB').
 *
 * Pillow (built with WebP animation support, as every distribution's is) opens every WebP,
 * still or animated, through libwebpdemux's WebPAnimDecoder in MODE_RGBA (straight, not
 * premultiplied alpha) and reads the first frame: the full canvas, cleared to transparent
 * black and never blended for a key frame. convert('RGB') then drops alpha without
 * compositing. Doing the same here gives the same bytes (same library, same path), also for
 * animated files whose first frame does not cover the canvas.
 */
#include <stdlib.h>
#include <string.h>

#include <webp/decode.h>
#include <webp/demux.h>

#include "image/image.h"

int mc_image_decode_webp(const uint8_t *buf, size_t len, const char *name, int64_t max_pixels, mc_image *out,
                         mc_err *e) {
    memset(out, 0, sizeof *out);
    int w = 0, h = 0;
    if (!WebPGetInfo(buf, len, &w, &h)) {
        /* an animation's canvas size comes from the demuxer */
        WebPData d0 = {buf, len};
        WebPDemuxer *dm = WebPDemux(&d0);
        if (!dm) return mc_fail(e, MC_E_FORMAT, "%s: corrupt or truncated WebP", name);
        w = (int)WebPDemuxGetI(dm, WEBP_FF_CANVAS_WIDTH);
        h = (int)WebPDemuxGetI(dm, WEBP_FF_CANVAS_HEIGHT);
        WebPDemuxDelete(dm);
    }
    int rc = mc_image_check_size(w, h, max_pixels, name, e);
    if (rc) return rc;
    WebPAnimDecoderOptions opt;
    if (!WebPAnimDecoderOptionsInit(&opt)) return mc_fail(e, MC_E_FORMAT, "%s: libwebp version mismatch", name);
    opt.color_mode = MODE_RGBA;
    opt.use_threads = 0;
    WebPData data = {buf, len};
    WebPAnimDecoder *dec = WebPAnimDecoderNew(&data, &opt);
    if (!dec) return mc_fail(e, MC_E_FORMAT, "%s: corrupt or truncated WebP", name);
    WebPAnimInfo info;
    uint8_t *rgba = NULL;
    int ts = 0;
    if (!WebPAnimDecoderGetInfo(dec, &info) || (int)info.canvas_width != w || (int)info.canvas_height != h) {
        WebPAnimDecoderDelete(dec);
        return mc_fail(e, MC_E_FORMAT, "%s: inconsistent WebP canvas size", name);
    }
    if (!WebPAnimDecoderGetNext(dec, &rgba, &ts) || !rgba) {
        WebPAnimDecoderDelete(dec);
        return mc_fail(e, MC_E_FORMAT, "%s: corrupt or truncated WebP (first frame)", name);
    }
    rc = mc_image_alloc(out, w, h, e);
    if (!rc) {
        size_t n = (size_t)w * (size_t)h;
        for (size_t i = 0; i < n; i++) {
            out->rgb[3 * i] = rgba[4 * i];
            out->rgb[3 * i + 1] = rgba[4 * i + 1];
            out->rgb[3 * i + 2] = rgba[4 * i + 2];
        }
    }
    WebPAnimDecoderDelete(dec);
    return rc;
}
