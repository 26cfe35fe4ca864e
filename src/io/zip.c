#include "io/zip.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const unsigned char *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* off + n <= len without overflow */
static int fits(uint64_t off, uint64_t n, size_t len) { return off <= len && n <= len - off; }

int mc_zip_sniff(const void *buf, size_t len) {
    const unsigned char *b = buf;
    return len >= 4 && (rd32(b) == SIG_LOCAL || (len >= 22 && rd32(b) == SIG_EOCD));
}

void mc_zip_close(mc_zip *z) {
    if (!z) return;
    free(z->entries);
    free(z->sorted);
    memset(z, 0, sizeof *z);
}

static int cmp_entry(const void *pa, const void *pb) {
    const mc_zip_entry *a = *(const mc_zip_entry *const *)pa, *b = *(const mc_zip_entry *const *)pb;
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int c = memcmp(a->name, b->name, n);
    if (c) return c;
    if (a->name_len != b->name_len) return a->name_len < b->name_len ? -1 : 1;
    return a < b ? -1 : a > b; /* keep directory order among duplicates */
}

/* The end of central directory record: the last signature whose record (with its
 * comment) fits in the file. The comment is at most 65535 bytes. */
static long long find_eocd(const unsigned char *b, size_t len) {
    if (len < 22) return -1;
    size_t lo = len - 22 > 65535 ? len - 22 - 65535 : 0;
    for (size_t p = len - 22 + 1; p-- > lo;)
        if (rd32(b + p) == SIG_EOCD && p + 22 + rd16(b + p + 20) <= len) return (long long)p;
    return -1;
}

/* Applies the ZIP64 extended-information extra field (id 1) of a central directory entry:
 * it holds, in this order, only those of usize, csize, offset that are 0xffffffff. */
static int apply_zip64_extra(const unsigned char *x, size_t xlen, mc_zip_entry *en, int need_u, int need_c,
                             int need_o) {
    size_t p = 0;
    while (p + 4 <= xlen) {
        unsigned id = rd16(x + p), sz = rd16(x + p + 2);
        if (p + 4 + sz > xlen) return -1;
        if (id == 1) {
            const unsigned char *f = x + p + 4;
            size_t k = 0;
            if (need_u) { if (k + 8 > sz) return -1; en->size = rd64(f + k); k += 8; }
            if (need_c) { if (k + 8 > sz) return -1; en->comp_size = rd64(f + k); k += 8; }
            if (need_o) { if (k + 8 > sz) return -1; en->local_offset = rd64(f + k); k += 8; }
            return 0;
        }
        p += 4 + sz;
    }
    return need_u || need_c || need_o ? -1 : 0;
}

int mc_zip_open(mc_zip *z, const void *buf, size_t len, const char *name, mc_err *e) {
    memset(z, 0, sizeof *z);
    const unsigned char *b = buf;
    z->buf = b;
    z->len = len;
    z->name = name;
    long long eocd = find_eocd(b, len);
    if (eocd < 0)
        return mc_fail(e, MC_E_FORMAT, "%s: zip end-of-central-directory record not found (truncated file?)", name);
    const unsigned char *r = b + eocd;
    uint64_t disk = rd16(r + 4), cd_disk = rd16(r + 6), n_here = rd16(r + 8), n_total = rd16(r + 10);
    uint64_t cd_size = rd32(r + 12), cd_off = rd32(r + 16);
    /* ZIP64: a locator right before the EOCD points at the ZIP64 end record, whose
     * 64-bit fields replace the saturated 16/32-bit ones. */
    if (eocd >= 20 && rd32(b + eocd - 20) == SIG_LOCATOR64) {
        const unsigned char *l = b + eocd - 20;
        uint64_t off64 = rd64(l + 8);
        if (rd32(l + 4) != 0 || rd32(l + 16) > 1)
            return mc_fail(e, MC_E_UNSUPPORTED, "%s: multi-disk zip archives are not supported", name);
        if (!fits(off64, 56, len) || off64 + 56 > (uint64_t)eocd - 20 || rd32(b + off64) != SIG_EOCD64)
            return mc_fail(e, MC_E_FORMAT, "%s: corrupt zip: bad ZIP64 end-of-central-directory record", name);
        const unsigned char *q = b + off64;
        disk = rd32(q + 16);
        cd_disk = rd32(q + 20);
        n_here = rd64(q + 24);
        n_total = rd64(q + 32);
        cd_size = rd64(q + 40);
        cd_off = rd64(q + 48);
    } else if (n_total == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu) {
        return mc_fail(e, MC_E_FORMAT, "%s: corrupt zip: ZIP64 end-of-central-directory locator missing", name);
    }
    if (disk != 0 || cd_disk != 0 || n_here != n_total)
        return mc_fail(e, MC_E_UNSUPPORTED, "%s: multi-disk zip archives are not supported", name);
    if (!fits(cd_off, cd_size, len) || cd_off + cd_size > (uint64_t)eocd)
        return mc_fail(e, MC_E_FORMAT, "%s: corrupt zip: central directory (offset %llu, %llu bytes) lies outside the file",
                       name, (unsigned long long)cd_off, (unsigned long long)cd_size);
    if (n_total > cd_size / 46 || n_total > INT_MAX)
        return mc_fail(e, MC_E_FORMAT, "%s: corrupt zip: %llu entries cannot fit a %llu-byte central directory", name,
                       (unsigned long long)n_total, (unsigned long long)cd_size);
    int n = (int)n_total;
    z->entries = calloc(n ? (size_t)n : 1, sizeof *z->entries);
    z->sorted = calloc(n ? (size_t)n : 1, sizeof *z->sorted);
    if (!z->entries || !z->sorted) {
        mc_zip_close(z);
        return mc_fail(e, MC_E_NOMEM, "%s: out of memory reading the zip directory", name);
    }
    const unsigned char *cd = b + cd_off, *cd_end = cd + cd_size;
    const unsigned char *p = cd;
    for (int i = 0; i < n; i++) {
        mc_zip_entry *en = &z->entries[i];
        if (cd_end - p < 46 || rd32(p) != SIG_CENTRAL) {
            mc_zip_close(z);
            return mc_fail(e, MC_E_FORMAT, "%s: corrupt zip: bad central directory entry %d", name, i);
        }
        size_t nlen = rd16(p + 28), xlen = rd16(p + 30), clen = rd16(p + 32);
        if ((size_t)(cd_end - p - 46) < nlen + xlen + clen) {
            mc_zip_close(z);
            return mc_fail(e, MC_E_FORMAT, "%s: corrupt zip: central directory entry %d overruns the directory", name, i);
        }
        en->method = rd16(p + 10) | (rd16(p + 8) & 1 ? 0x10000 : 0); /* encryption flag folded in */
        en->crc32 = rd32(p + 16);
        en->comp_size = rd32(p + 20);
        en->size = rd32(p + 24);
        en->local_offset = rd32(p + 42);
        en->name = (const char *)p + 46;
        en->name_len = nlen;
        if (apply_zip64_extra(p + 46 + nlen, xlen, en, en->size == 0xffffffffu, en->comp_size == 0xffffffffu,
                              en->local_offset == 0xffffffffu)) {
            int r = mc_fail(e, MC_E_FORMAT, "%s: corrupt zip: bad ZIP64 extra field in entry '%.*s'", name,
                            (int)(nlen > 200 ? 200 : nlen), en->name);
            mc_zip_close(z);
            return r;
        }
        z->sorted[i] = en;
        p += 46 + nlen + xlen + clen;
    }
    z->count = n;
    qsort(z->sorted, (size_t)n, sizeof *z->sorted, cmp_entry);
    return 0;
}

int mc_zip_find(const mc_zip *z, const char *name) {
    mc_zip_entry key = {.name = name, .name_len = strlen(name)};
    int lo = 0, hi = z->count; /* first entry >= name */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        const mc_zip_entry *en = z->sorted[mid];
        size_t n = en->name_len < key.name_len ? en->name_len : key.name_len;
        int c = memcmp(en->name, name, n);
        if (c == 0) c = en->name_len < key.name_len ? -1 : en->name_len > key.name_len;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    if (lo < z->count && z->sorted[lo]->name_len == key.name_len && memcmp(z->sorted[lo]->name, name, key.name_len) == 0)
        return (int)(z->sorted[lo] - z->entries);
    return -1;
}

static uint32_t crc_of(const unsigned char *p, uint64_t n) { return (uint32_t)crc32_z(0, p, (z_size_t)n); }

int mc_zip_read(const mc_zip *z, int i, const void **data, size_t *size, void **owned, int check_crc,
                mc_err *e) {
    *data = NULL;
    *size = 0;
    *owned = NULL;
    if (i < 0 || i >= z->count) return mc_fail(e, MC_E_ARG, "%s: zip member index %d out of range", z->name, i);
    const mc_zip_entry *en = &z->entries[i];
    int nl = (int)(en->name_len > 200 ? 200 : en->name_len);
    const unsigned char *b = z->buf;
    uint64_t lo = en->local_offset;
    if (!fits(lo, 30, z->len) || rd32(b + lo) != SIG_LOCAL)
        return mc_fail(e, MC_E_FORMAT, "%s: corrupt zip: bad local header for '%.*s'", z->name, nl, en->name);
    uint64_t lnlen = rd16(b + lo + 26), lxlen = rd16(b + lo + 28), start = lo + 30 + lnlen + lxlen;
    if (lnlen != en->name_len || !fits(lo + 30, lnlen, z->len) || memcmp(b + lo + 30, en->name, en->name_len) != 0)
        return mc_fail(e, MC_E_FORMAT, "%s: corrupt zip: local header name does not match '%.*s'", z->name, nl, en->name);
    if (!fits(start, en->comp_size, z->len))
        return mc_fail(e, MC_E_FORMAT, "%s: zip member '%.*s' (%llu bytes at %llu) extends past the end of the file (truncated?)",
                       z->name, nl, en->name, (unsigned long long)en->comp_size, (unsigned long long)start);
    if (en->method & 0x10000)
        return mc_fail(e, MC_E_UNSUPPORTED, "%s: zip member '%.*s' is encrypted", z->name, nl, en->name);
    const unsigned char *src = b + start;
    if (en->method == 0) {
        if (en->comp_size != en->size)
            return mc_fail(e, MC_E_FORMAT, "%s: corrupt zip: stored member '%.*s' has different sizes", z->name, nl, en->name);
        if (check_crc && crc_of(src, en->size) != en->crc32)
            return mc_fail(e, MC_E_FORMAT, "%s: zip member '%.*s' fails its CRC-32 check (corrupt file)", z->name, nl, en->name);
        *data = src;
        *size = (size_t)en->size;
        return 0;
    }
    if (en->method != 8)
        return mc_fail(e, MC_E_UNSUPPORTED, "%s: zip member '%.*s' uses compression method %d (only stored and deflate are supported)",
                       z->name, nl, en->name, en->method);
    /* Deflate expands at most 1032:1, which bounds what a hostile size field can make us allocate. */
    if (en->size / 1032 > en->comp_size + 1 || en->size > (uint64_t)SIZE_MAX - 1)
        return mc_fail(e, MC_E_FORMAT, "%s: corrupt zip: member '%.*s' claims %llu bytes from %llu compressed", z->name, nl,
                       en->name, (unsigned long long)en->size, (unsigned long long)en->comp_size);
    unsigned char *out = malloc((size_t)en->size + 1);
    if (!out) return mc_fail(e, MC_E_NOMEM, "%s: out of memory inflating '%.*s'", z->name, nl, en->name);
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, -MAX_WBITS) != Z_OK) {
        free(out);
        return mc_fail(e, MC_E_NOMEM, "%s: cannot initialise zlib", z->name);
    }
    /* zlib counts in uInt: feed input and output in chunks. One spare output byte
     * detects data longer than declared. */
    uint64_t in_left = en->comp_size, out_left = en->size + 1;
    const unsigned char *in = src;
    unsigned char *o = out;
    int ret = Z_OK;
    while (ret == Z_OK) {
        if (s.avail_in == 0 && in_left) {
            s.next_in = (unsigned char *)in;
            s.avail_in = in_left > UINT_MAX ? UINT_MAX : (uInt)in_left;
            in += s.avail_in;
            in_left -= s.avail_in;
        }
        if (s.avail_out == 0 && out_left) {
            s.next_out = o;
            s.avail_out = out_left > UINT_MAX ? UINT_MAX : (uInt)out_left;
            o += s.avail_out;
            out_left -= s.avail_out;
        }
        ret = inflate(&s, Z_NO_FLUSH);
        if (ret == Z_BUF_ERROR && (s.avail_in || in_left) && (s.avail_out || out_left)) ret = Z_OK;
    }
    uint64_t produced = (uint64_t)(o - out) - s.avail_out;
    inflateEnd(&s);
    if (ret != Z_STREAM_END || produced != en->size) {
        free(out);
        if (ret == Z_STREAM_END || produced > en->size)
            return mc_fail(e, MC_E_FORMAT, "%s: corrupt zip: member '%.*s' inflates to a different size than declared",
                           z->name, nl, en->name);
        return mc_fail(e, MC_E_FORMAT, "%s: corrupt zip: member '%.*s' has invalid or truncated deflate data", z->name, nl,
                       en->name);
    }
    if (crc_of(out, en->size) != en->crc32) {
        free(out);
        return mc_fail(e, MC_E_FORMAT, "%s: zip member '%.*s' fails its CRC-32 check (corrupt file)", z->name, nl, en->name);
    }
    *data = out;
    *size = (size_t)en->size;
    *owned = out;
    return 0;
}
