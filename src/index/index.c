/* The index file: validation on read, atomic writing (format in docs/INDEX_FORMAT.md). */
#include "index/index.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "io/atomic_file.h"
#include "io/mapped_file.h"

static const char MAGIC[8] = {'M', 'C', 'L', 'I', 'P', 'I', 'D', 'X'};

/* Header fields by byte offset. */
enum {
    H_MAGIC = 0, H_VERSION = 8, H_HEADER_SIZE = 12, H_DIM = 16, H_DTYPE = 20, H_COUNT = 24,
    H_STRINGS_OFF = 32, H_STRINGS_SIZE = 40, H_ROWS_OFF = 48, H_FILE_SIZE = 56, H_MODEL_ID = 64,
    H_ARCH = 96, H_FLAGS = 104, H_BODY_CRC = 108, H_HEADER_CRC = 124,
};
/* Record fields. */
enum { R_PATH_OFF = 0, R_PATH_LEN = 8, R_SIZE = 16, R_MTIME = 24, R_SHA = 32 };

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

size_t mc_index_dtype_size(mc_index_dtype t) { return t == MC_INDEX_F16 ? 2 : 4; }

static uint64_t align64(uint64_t x) { return (x + 63) & ~(uint64_t)63; }

/* CRC-32 (zlib) of a possibly > 4 GiB buffer. */
static uint32_t crc_of(uint32_t crc, const uint8_t *p, uint64_t n) {
    while (n) {
        uInt step = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = (uint32_t)crc32(crc, p, step);
        p += step, n -= step;
    }
    return crc;
}

int mc_index_parse(const void *buf, size_t len, const char *name, mc_index *ix, mc_err *e) {
    const uint8_t *b = buf;
    memset(ix, 0, sizeof *ix);
    if (len < MC_INDEX_HEADER_SIZE || memcmp(b, MAGIC, 8))
        return mc_fail(e, MC_E_FORMAT, "%s: not a mobileclip index (bad magic or shorter than its header)", name);
    uint32_t version = rd32(b + H_VERSION);
    if (version != MC_INDEX_VERSION)
        return mc_fail(e, MC_E_FORMAT, "%s: index format version %u, this build reads version %d", name, version,
                       MC_INDEX_VERSION);
    if (rd32(b + H_HEADER_SIZE) != MC_INDEX_HEADER_SIZE)
        return mc_fail(e, MC_E_FORMAT, "%s: bad header size %u", name, rd32(b + H_HEADER_SIZE));
    if ((uint32_t)crc32(0, b, H_HEADER_CRC) != rd32(b + H_HEADER_CRC))
        return mc_fail(e, MC_E_FORMAT, "%s: header checksum mismatch (corrupt index)", name);
    uint64_t file_size = rd64(b + H_FILE_SIZE);
    if (file_size != len)
        return mc_fail(e, MC_E_FORMAT, "%s: %s index: %zu bytes, the header says %llu", name,
                       len < file_size ? "truncated" : "oversized", len, (unsigned long long)file_size);
    uint32_t dim = rd32(b + H_DIM), dtype = rd32(b + H_DTYPE);
    uint64_t count = rd64(b + H_COUNT), soff = rd64(b + H_STRINGS_OFF), ssize = rd64(b + H_STRINGS_SIZE),
             roff = rd64(b + H_ROWS_OFF);
    if (dim < 1 || dim > MC_INDEX_MAX_DIM || dtype > MC_INDEX_F16)
        return mc_fail(e, MC_E_FORMAT, "%s: bad embedding shape (dim %u, dtype %u)", name, dim, dtype);
    size_t esz = mc_index_dtype_size((mc_index_dtype)dtype);
    /* every section exactly where the count says it is; checked without overflow */
    if (count > len / MC_INDEX_RECORD_SIZE || soff != MC_INDEX_HEADER_SIZE + count * MC_INDEX_RECORD_SIZE ||
        ssize > len || soff > len - ssize || roff != align64(soff + ssize) || roff > len ||
        count > (len - roff) / ((uint64_t)dim * esz) || roff + count * dim * esz != len)
        return mc_fail(e, MC_E_FORMAT, "%s: section offsets do not match %llu entries of dim %u", name,
                       (unsigned long long)count, dim);
    if (crc_of(0, b + MC_INDEX_HEADER_SIZE, len - MC_INDEX_HEADER_SIZE) != rd32(b + H_BODY_CRC))
        return mc_fail(e, MC_E_FORMAT, "%s: checksum mismatch (corrupt index)", name);
    if (b[H_ARCH + 7]) return mc_fail(e, MC_E_FORMAT, "%s: architecture name not terminated", name);
    const char *strings = (const char *)b + soff;
    const char *prev = NULL;
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *r = b + MC_INDEX_HEADER_SIZE + i * MC_INDEX_RECORD_SIZE;
        uint64_t po = rd64(r + R_PATH_OFF), pl = rd32(r + R_PATH_LEN);
        if (pl < 1 || pl > MC_INDEX_MAX_PATH || po >= ssize || pl > ssize - po - 1 || strings[po + pl] ||
            memchr(strings + po, 0, pl))
            return mc_fail(e, MC_E_FORMAT, "%s: entry %llu: bad path reference", name, (unsigned long long)i);
        if (prev && strcmp(prev, strings + po) >= 0)
            return mc_fail(e, MC_E_FORMAT, "%s: entry %llu: paths not sorted and unique", name, (unsigned long long)i);
        prev = strings + po;
    }
    ix->meta.dim = dim;
    ix->meta.dtype = (mc_index_dtype)dtype;
    memcpy(ix->meta.model_id, b + H_MODEL_ID, 32);
    memcpy(ix->meta.arch, b + H_ARCH, 8);
    ix->count = count;
    ix->records = b + MC_INDEX_HEADER_SIZE;
    ix->strings = strings;
    ix->rows = b + roff;
    return 0;
}

int mc_index_open(const char *path, mc_index *ix, mc_err *e) {
    void *addr;
    size_t len;
    memset(ix, 0, sizeof *ix);
    int r = mc_map_file(path, &addr, &len, e);
    if (r) return r;
    if ((r = mc_index_parse(addr, len, path, ix, e))) {
        munmap(addr, len);
        return r;
    }
    ix->map = addr;
    ix->map_len = len;
    return 0;
}

void mc_index_close(mc_index *ix) {
    if (ix->map) munmap(ix->map, ix->map_len);
    memset(ix, 0, sizeof *ix);
}

void mc_index_get(const mc_index *ix, uint64_t i, mc_index_item *out) {
    const uint8_t *r = ix->records + i * MC_INDEX_RECORD_SIZE;
    out->path = ix->strings + rd64(r + R_PATH_OFF);
    out->size = rd64(r + R_SIZE);
    out->mtime_ns = (int64_t)rd64(r + R_MTIME);
    memcpy(out->sha256, r + R_SHA, 32);
    out->row = (const uint8_t *)ix->rows + i * ix->meta.dim * mc_index_dtype_size(ix->meta.dtype);
}

int64_t mc_index_find(const mc_index *ix, const char *path) {
    int64_t lo = 0, hi = (int64_t)ix->count - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ix->strings + rd64(ix->records + (uint64_t)mid * MC_INDEX_RECORD_SIZE + R_PATH_OFF), path);
        if (!c) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

/* Writes n bytes and folds them into the running CRC. */
static int put(FILE *f, const void *p, size_t n, uint32_t *crc) {
    *crc = crc_of(*crc, p, n);
    return fwrite(p, 1, n, f) == n ? 0 : -1;
}

int mc_index_write(const char *path, const mc_index_meta *meta, const mc_index_item *items, uint64_t n, mc_err *e) {
    if (meta->dim < 1 || meta->dim > MC_INDEX_MAX_DIM || (unsigned)meta->dtype > MC_INDEX_F16 || meta->arch[7])
        return mc_fail(e, MC_E_ARG, "%s: bad index metadata", path);
    uint64_t ssize = 0;
    for (uint64_t i = 0; i < n; i++) {
        size_t l = strlen(items[i].path);
        if (l < 1 || l > MC_INDEX_MAX_PATH) return mc_fail(e, MC_E_ARG, "%s: path of entry %llu is empty or too long", path, (unsigned long long)i);
        if (i && strcmp(items[i - 1].path, items[i].path) >= 0)
            return mc_fail(e, MC_E_ARG, "%s: entries not sorted by path or duplicated ('%s')", path, items[i].path);
        ssize += l + 1;
    }
    size_t esz = mc_index_dtype_size(meta->dtype), row_bytes = (size_t)meta->dim * esz;
    uint64_t soff = MC_INDEX_HEADER_SIZE + n * MC_INDEX_RECORD_SIZE, roff = align64(soff + ssize);
    uint8_t hdr[MC_INDEX_HEADER_SIZE] = {0};
    memcpy(hdr + H_MAGIC, MAGIC, 8);
    wr32(hdr + H_VERSION, MC_INDEX_VERSION);
    wr32(hdr + H_HEADER_SIZE, MC_INDEX_HEADER_SIZE);
    wr32(hdr + H_DIM, meta->dim);
    wr32(hdr + H_DTYPE, (uint32_t)meta->dtype);
    wr64(hdr + H_COUNT, n);
    wr64(hdr + H_STRINGS_OFF, soff);
    wr64(hdr + H_STRINGS_SIZE, ssize);
    wr64(hdr + H_ROWS_OFF, roff);
    wr64(hdr + H_FILE_SIZE, roff + n * row_bytes);
    memcpy(hdr + H_MODEL_ID, meta->model_id, 32);
    memcpy(hdr + H_ARCH, meta->arch, 8);
    wr32(hdr + H_FLAGS, 1); /* rows are unit-norm */

    mc_atomic_file af;
    int r = mc_atomic_open(&af, path, e);
    if (r) return r;
    FILE *f = af.f;
    uint32_t crc = 0;
    int bad = fwrite(hdr, 1, sizeof hdr, f) != sizeof hdr;
    uint64_t off = 0;
    for (uint64_t i = 0; i < n && !bad; i++) {
        uint8_t rec[MC_INDEX_RECORD_SIZE] = {0};
        size_t l = strlen(items[i].path);
        wr64(rec + R_PATH_OFF, off);
        wr32(rec + R_PATH_LEN, (uint32_t)l);
        wr64(rec + R_SIZE, items[i].size);
        wr64(rec + R_MTIME, (uint64_t)items[i].mtime_ns);
        memcpy(rec + R_SHA, items[i].sha256, 32);
        bad |= put(f, rec, sizeof rec, &crc);
        off += l + 1;
    }
    for (uint64_t i = 0; i < n && !bad; i++) bad |= put(f, items[i].path, strlen(items[i].path) + 1, &crc);
    static const uint8_t zeros[64];
    if (!bad) bad |= put(f, zeros, (size_t)(roff - soff - ssize), &crc);
    for (uint64_t i = 0; i < n && !bad; i++) bad |= put(f, items[i].row, row_bytes, &crc);
    wr32(hdr + H_BODY_CRC, crc);
    wr32(hdr + H_HEADER_CRC, (uint32_t)crc32(0, hdr, H_HEADER_CRC));
    if (!bad) bad = fseek(f, 0, SEEK_SET) || fwrite(hdr, 1, sizeof hdr, f) != sizeof hdr;
    if (bad) {
        r = mc_fail(e, MC_E_IO, "%s: cannot write the index: %s", path, strerror(errno ? errno : EIO));
        mc_atomic_abort(&af);
        return r;
    }
    return mc_atomic_commit(&af, e); /* fsync, rename over path, fsync of the folder */
}
