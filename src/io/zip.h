/* zip.h - read-only zip archive over a memory buffer (the mapped checkpoint).
 *
 * torch.save writes a zip (PKWARE APPNOTE) whose members are stored uncompressed and
 * 64-byte aligned, with ZIP64 end records and data descriptors (local headers carry no
 * sizes), so everything is taken from the central directory. Supported: stored (method 0)
 * members, returned as pointers into the buffer without a copy, and deflated (method 8)
 * members, inflated with zlib into a malloc'd buffer. Every offset, size and name length
 * is bounds-checked against the buffer; encryption, multi-disk archives and other methods
 * are rejected with a reason.
 *
 * Thread safety: an opened mc_zip is read-only; concurrent mc_zip_read calls are safe.
 */
#ifndef MC_IO_ZIP_H
#define MC_IO_ZIP_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct mc_zip_entry {
    const char *name;        /* into the buffer, NOT NUL-terminated: use name_len */
    size_t name_len;
    int method;              /* 0 stored, 8 deflated */
    uint32_t crc32;
    uint64_t comp_size;      /* bytes in the archive */
    uint64_t size;           /* uncompressed bytes */
    uint64_t local_offset;   /* of the local header */
} mc_zip_entry;

typedef struct mc_zip {
    const unsigned char *buf;
    size_t len;
    mc_zip_entry *entries;   /* central directory order */
    int count;
    const mc_zip_entry **sorted; /* entries sorted by name (ties: directory order), for mc_zip_find */
    const char *name;        /* for messages (not owned) */
} mc_zip;

/* Returns 1 if buf starts like a zip archive (local header or empty-archive EOCD). */
int mc_zip_sniff(const void *buf, size_t len);

/* Reads the end records and the central directory of buf[0..len). `name` (kept by
 * pointer, used in messages) names the file. On failure z is left closed. */
int mc_zip_open(mc_zip *z, const void *buf, size_t len, const char *name, mc_err *e);
void mc_zip_close(mc_zip *z);

/* Index of the member called `name` (exact, NUL-terminated), or -1. */
int mc_zip_find(const mc_zip *z, const char *name);

/* The contents of member i: *data and *size. Stored members point into the buffer and
 * *owned is NULL; deflated members are inflated into a malloc'd buffer returned in
 * *owned as well (the caller frees it). check_crc: verify the CRC-32 of stored data too
 * (inflated data is always checked). */
int mc_zip_read(const mc_zip *z, int i, const void **data, size_t *size, void **owned, int check_crc,
                mc_err *e);

#endif
