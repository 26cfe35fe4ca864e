/* IDX reader: header first (validated, size bounded), then exactly that many bytes. */
#include "io/idx.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <zlib.h>

#include "io/mapped_file.h"

/* A byte source over a plain or gzip'd buffer. */
typedef struct src {
    const uint8_t *buf;
    size_t len, pos;
    int gz, gz_end, gz_complete; /* no more output; the gzip stream ended properly */
    z_stream z;
} src;

/* Reads exactly n bytes into dst; returns the count actually read (< n: data ended), or -1 on
 * corrupt gzip data. */
static long long src_read(src *s, uint8_t *dst, size_t n) {
    if (!s->gz) {
        size_t k = s->len - s->pos < n ? s->len - s->pos : n;
        memcpy(dst, s->buf + s->pos, k);
        s->pos += k;
        return (long long)k;
    }
    size_t got = 0;
    while (got < n && !s->gz_end) {
        size_t want = n - got > (1u << 30) ? (1u << 30) : n - got;
        s->z.next_out = dst + got;
        s->z.avail_out = (uInt)want;
        int r = inflate(&s->z, Z_NO_FLUSH);
        got += want - s->z.avail_out;
        if (r == Z_STREAM_END) s->gz_end = s->gz_complete = 1;
        else if (r != Z_OK && !(r == Z_BUF_ERROR && s->z.avail_in == 0)) return -1;
        else if (r == Z_BUF_ERROR) s->gz_end = 1; /* input ended without the gzip trailer */
    }
    return (long long)got;
}

int mc_idx_parse(const void *buf, size_t len, const char *name, size_t max_bytes, mc_idx *out, mc_err *e) {
    memset(out, 0, sizeof *out);
    src s = {.buf = buf, .len = len};
    const uint8_t *b = buf;
    int r = 0;
    if (len >= 2 && b[0] == 0x1f && b[1] == 0x8b) {
        s.gz = 1;
        if (inflateInit2(&s.z, 16 + MAX_WBITS) != Z_OK) return mc_fail(e, MC_E_NOMEM, "%s: cannot start gzip", name);
        s.z.next_in = (Bytef *)(uintptr_t)b;
        s.z.avail_in = len > (1u << 31) ? (1u << 31) : (uInt)len; /* bigger inputs exceed the element bound */
    }
    uint8_t hdr[4 + 4 * MC_IDX_MAX_DIMS];
    long long got = src_read(&s, hdr, 4);
    if (got < 0) { r = mc_fail(e, MC_E_FORMAT, "%s: corrupt gzip data", name); goto done; }
    if (got < 4 || hdr[0] || hdr[1]) { r = mc_fail(e, MC_E_FORMAT, "%s: not an IDX file (bad magic)", name); goto done; }
    if (hdr[2] != 0x08) {
        r = mc_fail(e, MC_E_FORMAT, "%s: IDX element type 0x%02x not supported (only unsigned bytes, 0x08)", name, hdr[2]);
        goto done;
    }
    int nd = hdr[3];
    if (nd < 1 || nd > MC_IDX_MAX_DIMS) {
        r = mc_fail(e, MC_E_FORMAT, "%s: IDX with %d dimensions (1 to %d supported)", name, nd, MC_IDX_MAX_DIMS);
        goto done;
    }
    got = src_read(&s, hdr + 4, 4 * (size_t)nd);
    if (got != 4 * nd) { r = mc_fail(e, MC_E_FORMAT, "%s: truncated IDX header", name); goto done; }
    size_t total = 1;
    for (int d = 0; d < nd; d++) {
        const uint8_t *p = hdr + 4 + 4 * d;
        uint32_t v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (v == 0) { r = mc_fail(e, MC_E_FORMAT, "%s: IDX dimension %d is zero", name, d); goto done; }
        if (total > max_bytes / v) {
            r = mc_fail(e, MC_E_FORMAT, "%s: IDX dimensions describe more than %zu bytes", name, max_bytes);
            goto done;
        }
        total *= v;
        out->dims[d] = v;
    }
    out->ndim = nd;
    out->size = total;
    if (!s.gz && len - s.pos != total) {
        r = mc_fail(e, MC_E_FORMAT, "%s: %s IDX data: %zu bytes after the header, the dimensions say %zu", name,
                    len - s.pos < total ? "truncated" : "extra", len - s.pos, total);
        goto done;
    }
    if (!(out->data = malloc(total))) { r = mc_fail(e, MC_E_NOMEM, "%s: out of memory (%zu bytes)", name, total); goto done; }
    got = src_read(&s, out->data, total);
    if (got < 0) { r = mc_fail(e, MC_E_FORMAT, "%s: corrupt gzip data", name); goto done; }
    if ((size_t)got != total) {
        r = mc_fail(e, MC_E_FORMAT, "%s: truncated IDX data: %lld of %zu bytes", name, got, total);
        goto done;
    }
    if (s.gz) {
        uint8_t extra;
        got = src_read(&s, &extra, 1);
        if (got != 0 || !s.gz_complete || s.z.avail_in) {
            r = mc_fail(e, MC_E_FORMAT, "%s: %s", name, got ? "extra data after the IDX elements" : "corrupt or truncated gzip stream");
            goto done;
        }
    }
done:
    if (s.gz) inflateEnd(&s.z);
    if (r) mc_idx_free(out);
    return r;
}

int mc_idx_load(const char *path, mc_idx *out, mc_err *e) {
    void *addr;
    size_t len;
    memset(out, 0, sizeof *out);
    int r = mc_map_file(path, &addr, &len, e);
    if (r) return r;
    r = mc_idx_parse(addr, len, path, MC_IDX_MAX_BYTES, out, e);
    munmap(addr, len);
    return r;
}

void mc_idx_free(mc_idx *x) {
    free(x->data);
    memset(x, 0, sizeof *x);
}

int mc_idx_load_labelled(const char *images_path, const char *labels_path, int n_classes, mc_idx *images,
                         mc_idx *labels, mc_err *e) {
    int r = mc_idx_load(images_path, images, e);
    if (!r) r = mc_idx_load(labels_path, labels, e);
    if (!r && images->ndim != 3) r = mc_fail(e, MC_E_FORMAT, "%s: expected images [N, H, W], got %d dimensions", images_path, images->ndim);
    if (!r && labels->ndim != 1) r = mc_fail(e, MC_E_FORMAT, "%s: expected labels [N], got %d dimensions", labels_path, labels->ndim);
    if (!r && images->dims[0] != labels->dims[0])
        r = mc_fail(e, MC_E_FORMAT, "%s has %lld images but %s has %lld labels", images_path, (long long)images->dims[0],
                    labels_path, (long long)labels->dims[0]);
    for (size_t i = 0; !r && i < labels->size; i++)
        if (labels->data[i] >= n_classes)
            r = mc_fail(e, MC_E_FORMAT, "%s: label %u of item %zu is not below the %d classes", labels_path, labels->data[i], i, n_classes);
    if (r) mc_idx_free(images), mc_idx_free(labels);
    return r;
}
