/* image.c - image buffers, format sniffing and file loading. */
#include "image/image.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "io/mapped_file.h"

int mc_image_check_size(int64_t w, int64_t h, int64_t max_pixels, const char *name, mc_err *e) {
    if (max_pixels > MC_IMAGE_MAX_PIXELS || max_pixels <= 0) max_pixels = MC_IMAGE_MAX_PIXELS;
    if (w < 1 || h < 1)
        return mc_fail(e, MC_E_FORMAT, "%s: invalid image size %lldx%lld", name, (long long)w,
                       (long long)h);
    if (w > MC_IMAGE_MAX_SIDE || h > MC_IMAGE_MAX_SIDE || w * h > max_pixels)
        return mc_fail(e, MC_E_FORMAT, "%s: image too large (%lldx%lld = %lld pixels, limit %lld pixels, %d per side)",
                       name, (long long)w, (long long)h, (long long)(w * h), (long long)max_pixels,
                       MC_IMAGE_MAX_SIDE);
    return 0;
}

int mc_image_alloc(mc_image *im, int w, int h, mc_err *e) {
    memset(im, 0, sizeof *im);
    int r = mc_image_check_size(w, h, MC_IMAGE_MAX_PIXELS, "image", e);
    if (r) return r;
    im->rgb = malloc((size_t)w * (size_t)h * 3);
    if (!im->rgb) return mc_fail(e, MC_E_NOMEM, "out of memory for a %dx%d image", w, h);
    im->w = w;
    im->h = h;
    return 0;
}

void mc_image_free(mc_image *im) {
    if (!im) return;
    free(im->rgb);
    memset(im, 0, sizeof *im);
}

int mc_image_sniff(const void *head, size_t len) {
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    const uint8_t *p = head;
    if (len >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) return MC_IMAGE_FORMAT_JPEG;
    if (len >= 8 && memcmp(p, png_sig, 8) == 0) return MC_IMAGE_FORMAT_PNG;
    if (len >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0) return MC_IMAGE_FORMAT_WEBP;
    return 0;
}

int mc_image_decode_limited(const void *buf, size_t len, const char *name, int64_t max_pixels,
                            mc_image *out, mc_err *e) {
    const uint8_t *p = buf;
    if (!name) name = "<memory>";
    memset(out, 0, sizeof *out);
    if (!p || len == 0) return mc_fail(e, MC_E_FORMAT, "%s: empty image data", name);
    switch (mc_image_sniff(p, len)) {
    case MC_IMAGE_FORMAT_JPEG: return mc_image_decode_jpeg(p, len, name, max_pixels, out, e);
    case MC_IMAGE_FORMAT_PNG: return mc_image_decode_png(p, len, name, max_pixels, out, e);
    case MC_IMAGE_FORMAT_WEBP: return mc_image_decode_webp(p, len, name, max_pixels, out, e);
    }
    return mc_fail(e, MC_E_FORMAT, "%s: not a JPEG, PNG or WebP image", name);
}

int mc_image_decode(const void *buf, size_t len, const char *name, mc_image *out, mc_err *e) {
    return mc_image_decode_limited(buf, len, name, MC_IMAGE_MAX_PIXELS, out, e);
}

int mc_image_load(const char *path, mc_image *out, mc_err *e) {
    void *addr = NULL;
    size_t len = 0;
    memset(out, 0, sizeof *out);
    if (!path) return mc_fail(e, MC_E_ARG, "image path is NULL");
    int r = mc_map_file(path, &addr, &len, e); /* rejects missing, directory, empty */
    if (r) return r;
    r = mc_image_decode(addr, len, path, out, e);
    munmap(addr, len);
    return r;
}
