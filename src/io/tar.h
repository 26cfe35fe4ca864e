/* tar.h - streaming tar reader and writer (WebDataset shards).
 *
 * Reader: reads a tar stream one member at a time with bounded memory (one member's data,
 * at most max_member bytes, plus its name), from a path or an fd, through zlib's gzread so
 * gzip-compressed shards (.tar.gz) read transparently like Python's tarfile mode "r|*".
 * Formats: POSIX ustar (name + prefix), old GNU/v7 headers, GNU long names (type 'L' from
 * "././@LongLink"; 'K' long link names are consumed), pax extended headers ('x' for the
 * next member, 'g' for all later ones, 'x' overriding 'g'; the keywords `path` and `size`
 * are honoured, the rest ignored). When several extension headers precede one member the
 * first one that sets the name wins, as in Python's tarfile. Numeric fields are octal or
 * GNU base-256. Every header's checksum is verified (unsigned or signed sums, as tarfile).
 * The archive ends at the first all-zero block, or at end of file exactly on a header
 * boundary (r->clean_end tells whether the end-of-archive block was seen).
 * Only regular files (types '0', '\0', '7') are returned; directories, links, devices and
 * unknown types are skipped (their data too, when they have any, as tarfile does).
 *
 * Errors name the file and the byte offset of the header concerned: bad checksum,
 * invalid number, truncated header or data, malformed pax record, sparse files
 * (unsupported). They are fatal for the stream (mc_tar_next keeps returning the error),
 * except a member larger than max_member (or whose pax name holds a NUL), which is skipped
 * (its data is read past) and reported once, with m filled but m->data NULL: the next call
 * continues with the following member.
 *
 * Writer: ustar headers as Python's tarfile (PAX_FORMAT) writes them for webdataset's
 * TarWriter (mode 0444, uname/gname "bigdata", mtime from the writer, 0 by default so
 * output is reproducible); a name longer than 100 bytes or not ASCII, or a size of 8 GiB or
 * more, gets a pax 'x' header ("././@PaxHeader") with `path` / `size`. The archive ends
 * with two zero blocks and is padded to a 10240-byte record, as tarfile does.
 */
#ifndef MC_IO_TAR_H
#define MC_IO_TAR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/error.h"
#include "io/atomic_file.h"

#define MC_TAR_BLOCK 512
#define MC_TAR_RECORD 10240
#define MC_TAR_DEFAULT_MAX_MEMBER ((size_t)1 << 30) /* 1 GiB */
#define MC_TAR_MAX_EXT_HEADER ((size_t)1 << 20)     /* long-name / pax data limit */

typedef struct mc_tar_member {
    const char *name;       /* NUL-terminated, valid until the next mc_tar_next */
    size_t name_len;
    char type;              /* '0', '\0' or '7' */
    uint64_t size;
    uint64_t offset;        /* of its first header block (extension headers included) */
    uint64_t data_offset;   /* of its data */
    const unsigned char *data; /* size bytes, owned by the reader, valid until the next call */
} mc_tar_member;

typedef struct mc_tar_reader {
    void *gz;               /* gzFile */
    char *name;             /* for messages (owned copy) */
    uint64_t offset;        /* bytes consumed from the (uncompressed) stream */
    size_t max_member;
    unsigned char *buf;     /* member data */
    size_t cap;
    char *mname;            /* member name */
    size_t mname_cap;
    char *gpath;            /* pax 'g' path= (owned) or NULL */
    int64_t gsize;          /* pax 'g' size= or -1 */
    int done;               /* 1 at the end, <0: the fatal error code (msg in err) */
    int clean_end;          /* 1 if the end-of-archive zero block was read */
    mc_err err;             /* the fatal error, repeated by later calls */
} mc_tar_reader;

/* Opens `path` for reading (plain or gzip'd tar). max_member 0 means the default. */
int mc_tar_reader_open(mc_tar_reader *r, const char *path, size_t max_member, mc_err *e);
/* Same over an open fd (dup'ed: the caller keeps and closes its own fd), read from its
 * current position; `name` is used in messages. */
int mc_tar_reader_open_fd(mc_tar_reader *r, int fd, const char *name, size_t max_member, mc_err *e);
/* Next regular member: returns 1 (m filled), 0 at the end of the archive, or a negative
 * code (see above for which errors let the next call continue). */
int mc_tar_next(mc_tar_reader *r, mc_tar_member *m, mc_err *e);
void mc_tar_reader_close(mc_tar_reader *r);

typedef struct mc_tar_writer {
    FILE *fp;
    int own;                /* fp opened by mc_tar_writer_open */
    char *name;
    uint64_t offset;
    int64_t mtime;          /* written in every header; 0 by default */
    int failed;
    mc_atomic_file atomic;  /* atomic writers: fp is atomic.f, committed by finish */
} mc_tar_writer;

/* Creates (truncates) `path`. */
int mc_tar_writer_open(mc_tar_writer *w, const char *path, mc_err *e);
/* Writes through io/atomic_file (a temporary path.tmp.XXXXXX); mc_tar_writer_finish commits
 * it (fsync, rename over `path`, fsync of the folder), so a killed or failed job never leaves
 * a partial shard under the final name; mc_tar_writer_abort removes the temporary file. */
int mc_tar_writer_open_atomic(mc_tar_writer *w, const char *path, mc_err *e);
/* Writes to fp (not closed by the writer); `name` is used in messages. */
int mc_tar_writer_init_fp(mc_tar_writer *w, FILE *fp, const char *name, mc_err *e);
/* Appends a regular file member `name` (no NUL, 1..65535 bytes) with data[0..size). */
int mc_tar_write_member(mc_tar_writer *w, const char *name, const void *data, size_t size, mc_err *e);
/* Writes the end-of-archive blocks and flushes; if the writer opened the file, fsyncs and
 * closes it. Returns the first error of the whole write. The writer is closed either way. */
int mc_tar_writer_finish(mc_tar_writer *w, mc_err *e);
/* Closes without finishing (after an error); the file is left as it is (an atomic writer's
 * temporary file is removed). */
void mc_tar_writer_abort(mc_tar_writer *w);

#endif
