/* tar.c - streaming tar reader and writer; see tar.h for the formats and semantics. */
#include "io/tar.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ---- header fields (offsets of the ustar layout) ---- */

enum { H_NAME = 0, H_MODE = 100, H_UID = 108, H_GID = 116, H_SIZE = 124, H_MTIME = 136, H_CHKSUM = 148,
       H_TYPE = 156, H_LINK = 157, H_MAGIC = 257, H_UNAME = 265, H_GNAME = 297, H_DEVMAJ = 329,
       H_DEVMIN = 337, H_PREFIX = 345 };

static size_t nts_len(const unsigned char *f, size_t n) {
    const void *z = memchr(f, 0, n);
    return z ? (size_t)((const unsigned char *)z - f) : n;
}

static int is_py_space(unsigned char c) { return c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f); }

/* tarfile.nti: GNU base-256 (first byte 0x80 / 0xff) or NUL-terminated, whitespace-stripped
 * octal. Returns 0 and *out, or -1 for an invalid or out-of-range (negative, >= 2^63) value. */
static int nti(const unsigned char *f, size_t n, int64_t *out) {
    if (f[0] == 0x80 || f[0] == 0xff) {
        if (f[0] == 0xff) return -1; /* negative */
        uint64_t v = 0;
        for (size_t i = 1; i < n; i++) {
            if (v >> 55) return -1;
            v = v << 8 | f[i];
        }
        if (v >> 63) return -1;
        *out = (int64_t)v;
        return 0;
    }
    size_t a = 0, b = nts_len(f, n);
    while (a < b && is_py_space(f[a])) a++;
    while (b > a && is_py_space(f[b - 1])) b--;
    uint64_t v = 0;
    for (size_t i = a; i < b; i++) {
        if (f[i] < '0' || f[i] > '7' || v >> 60) return -1;
        v = v << 3 | (uint64_t)(f[i] - '0');
    }
    if (v >> 63) return -1;
    *out = (int64_t)v;
    return 0;
}

static int checksum_ok(const unsigned char *h) {
    int64_t want;
    if (nti(h + H_CHKSUM, 8, &want) != 0) return 0;
    int64_t u = 256, s = 256;
    for (int i = 0; i < MC_TAR_BLOCK; i++) {
        if (i >= H_CHKSUM && i < H_CHKSUM + 8) continue;
        u += h[i];
        s += (signed char)h[i];
    }
    return want == u || want == s;
}

/* ---- reader ---- */

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int fatal(mc_tar_reader *r, mc_err *e, int code, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    mc_fail(&r->err, code, "%s: %s", r->name, msg);
    r->done = code;
    if (e) *e = r->err;
    return code;
}

/* Reads up to n bytes; returns the count (short only at end of stream) or -1 on a
 * decompression/read error (reason in r->err via fatal by the caller). */
static int64_t rd(mc_tar_reader *r, void *dst, size_t n, const char **why) {
    size_t got = 0;
    while (got < n) {
        size_t want = n - got > (1u << 30) ? (1u << 30) : n - got;
        int k = gzread((gzFile)r->gz, (unsigned char *)dst + got, (unsigned)want);
        if (k < 0) {
            int errnum;
            *why = gzerror((gzFile)r->gz, &errnum);
            return -1;
        }
        if (k == 0) {
            int errnum;
            const char *m = gzerror((gzFile)r->gz, &errnum);
            if (errnum != Z_OK && errnum != Z_BUF_ERROR) { *why = m; return -1; }
            break;
        }
        got += (size_t)k;
    }
    r->offset += got;
    return (int64_t)got;
}

static int64_t skip(mc_tar_reader *r, uint64_t n, const char **why) {
    unsigned char tmp[16384];
    uint64_t done = 0;
    while (done < n) {
        size_t want = n - done > sizeof tmp ? sizeof tmp : (size_t)(n - done);
        int64_t k = rd(r, tmp, want, why);
        if (k < 0) return -1;
        done += (uint64_t)k;
        if ((size_t)k < want) break;
    }
    return (int64_t)done;
}

static uint64_t padded(uint64_t n) { return (n + MC_TAR_BLOCK - 1) / MC_TAR_BLOCK * MC_TAR_BLOCK; }

static int init_common(mc_tar_reader *r, const char *name, size_t max_member, mc_err *e) {
    r->name = strdup(name ? name : "(tar)");
    r->max_member = max_member ? max_member : MC_TAR_DEFAULT_MAX_MEMBER;
    r->gsize = -1;
    if (!r->name) return mc_fail(e, MC_E_NOMEM, "%s: out of memory", name);
    return 0;
}

int mc_tar_reader_open(mc_tar_reader *r, const char *path, size_t max_member, mc_err *e) {
    memset(r, 0, sizeof *r);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return mc_fail(e, MC_E_IO, "%s: cannot open: %s", path, strerror(errno));
    int rc = mc_tar_reader_open_fd(r, fd, path, max_member, e);
    close(fd);
    return rc;
}

int mc_tar_reader_open_fd(mc_tar_reader *r, int fd, const char *name, size_t max_member, mc_err *e) {
    memset(r, 0, sizeof *r);
    if (init_common(r, name, max_member, e)) return MC_E_NOMEM;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        int rc = mc_fail(e, MC_E_IO, "%s: is a directory, not a tar shard", r->name);
        mc_tar_reader_close(r);
        return rc;
    }
    int d = dup(fd);
    if (d < 0) {
        int rc = mc_fail(e, MC_E_IO, "%s: %s", r->name, strerror(errno));
        mc_tar_reader_close(r);
        return rc;
    }
    r->gz = gzdopen(d, "rb");
    if (!r->gz) {
        close(d);
        int rc = mc_fail(e, MC_E_NOMEM, "%s: cannot open the stream", r->name);
        mc_tar_reader_close(r);
        return rc;
    }
    gzbuffer((gzFile)r->gz, 1 << 16);
    return 0;
}

void mc_tar_reader_close(mc_tar_reader *r) {
    if (r->gz) gzclose((gzFile)r->gz);
    free(r->name);
    free(r->buf);
    free(r->mname);
    free(r->gpath);
    memset(r, 0, sizeof *r);
}

static int grow(unsigned char **p, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 4096;
    while (c < need) c = c > SIZE_MAX / 2 ? need : c * 2;
    void *q = realloc(*p, c);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int set_name(mc_tar_reader *r, const unsigned char *s, size_t n) {
    if (grow((unsigned char **)&r->mname, &r->mname_cap, n + 1)) return -1;
    memcpy(r->mname, s, n);
    r->mname[n] = 0;
    return 0;
}

/* pax records "%d %s=%s\n" as tarfile parses them (3.11.x): stops at a NUL or the end. */
typedef struct pax_vals {
    const unsigned char *path;
    size_t path_len;
    int has_path;
    int64_t size;       /* -1 if absent */
} pax_vals;

static int parse_pax(const unsigned char *b, size_t n, pax_vals *pv, const char **why) {
    pv->has_path = 0;
    pv->size = -1;
    size_t pos = 0;
    while (pos < n && b[pos] != 0) {
        size_t q = pos;
        uint64_t len = 0;
        while (q < n && b[q] >= '0' && b[q] <= '9') {
            if (len > (uint64_t)n) { *why = "record length out of range"; return -1; }
            len = len * 10 + (uint64_t)(b[q] - '0');
            q++;
        }
        if (q == pos || q >= n || b[q] != ' ') { *why = "malformed record"; return -1; }
        if (len < 5 || len > n - pos) { *why = "record length out of range"; return -1; }
        size_t end = pos + (size_t)len - 1; /* the '\n' */
        const unsigned char *kv = b + q + 1;
        if (q + 1 > end || b[end] != '\n') { *why = "record not terminated by a newline"; return -1; }
        size_t kvn = end - (q + 1);
        const unsigned char *eq = memchr(kv, '=', kvn);
        if (!eq || eq == kv) { *why = "record without a keyword"; return -1; }
        size_t kn = (size_t)(eq - kv), vn = kvn - kn - 1;
        const unsigned char *v = eq + 1;
        if (kn == 4 && !memcmp(kv, "path", 4)) {
            while (vn > 0 && v[vn - 1] == '/') vn--; /* tarfile strips trailing slashes */
            pv->path = v;
            pv->path_len = vn;
            pv->has_path = 1;
        } else if (kn == 4 && !memcmp(kv, "size", 4)) {
            uint64_t s = 0;
            if (vn == 0) { *why = "invalid size record"; return -1; }
            for (size_t i = 0; i < vn; i++) {
                if (v[i] < '0' || v[i] > '9' || s > (UINT64_MAX >> 1) / 10) { *why = "invalid size record"; return -1; }
                s = s * 10 + (uint64_t)(v[i] - '0');
            }
            pv->size = (int64_t)s;
        }
        pos += (size_t)len;
    }
    return 0;
}

static void fill_member(mc_tar_member *m, const mc_tar_reader *r, char type, uint64_t size, uint64_t first,
                        uint64_t data_off, const unsigned char *data) {
    m->name = r->mname;
    m->name_len = strlen(r->mname);
    m->type = type;
    m->size = size;
    m->offset = first;
    m->data_offset = data_off;
    m->data = data;
}

int mc_tar_next(mc_tar_reader *r, mc_tar_member *m, mc_err *e) {
    if (r->done < 0) {
        if (e) *e = r->err;
        return r->done;
    }
    if (r->done) return 0;
    unsigned char h[MC_TAR_BLOCK];
    const char *why = NULL;
    int have_name = 0;      /* set by 'L' or 'x' path: first one wins */
    int64_t xsize = -1;     /* set by 'x' size */
    int64_t first = -1;
    for (;;) {
        uint64_t off = r->offset;
        int64_t got = rd(r, h, MC_TAR_BLOCK, &why);
        if (got < 0) return fatal(r, e, MC_E_FORMAT, "offset %llu: %s", (unsigned long long)off, why);
        if (got == 0) {
            if (first >= 0)
                return fatal(r, e, MC_E_FORMAT, "offset %llu: archive ends after an extension header",
                             (unsigned long long)first);
            if (off == 0) return fatal(r, e, MC_E_FORMAT, "empty file (not a tar archive)");
            r->done = 1;
            return 0;
        }
        if (got < MC_TAR_BLOCK)
            return fatal(r, e, MC_E_FORMAT, "offset %llu: truncated tar header (%lld of 512 bytes)",
                         (unsigned long long)off, (long long)got);
        int zero = 1;
        for (int i = 0; i < MC_TAR_BLOCK && zero; i++) zero = h[i] == 0;
        if (zero) {
            if (first >= 0)
                return fatal(r, e, MC_E_FORMAT, "offset %llu: end-of-archive block after an extension header",
                             (unsigned long long)off);
            if (off == 0) return fatal(r, e, MC_E_FORMAT, "offset 0: an all-zero block (not a tar archive)");
            r->done = 1;
            r->clean_end = 1;
            return 0;
        }
        if (!checksum_ok(h))
            return fatal(r, e, MC_E_FORMAT, "offset %llu: bad tar header checksum%s", (unsigned long long)off,
                         off == 0 ? " (not a tar archive?)" : "");
        int64_t hsize;
        if (nti(h + H_SIZE, 12, &hsize) != 0)
            return fatal(r, e, MC_E_FORMAT, "offset %llu: invalid size field in tar header", (unsigned long long)off);
        if (first < 0) first = (int64_t)off;
        char type = (char)h[H_TYPE];
        if (type == 'L' || type == 'K' || type == 'x' || type == 'X' || type == 'g') {
            if ((uint64_t)hsize > MC_TAR_MAX_EXT_HEADER)
                return fatal(r, e, MC_E_FORMAT, "offset %llu: extension header of %lld bytes (limit %zu)",
                             (unsigned long long)off, (long long)hsize, MC_TAR_MAX_EXT_HEADER);
            if (grow(&r->buf, &r->cap, padded((uint64_t)hsize) + 1))
                return fatal(r, e, MC_E_NOMEM, "out of memory");
            got = rd(r, r->buf, padded((uint64_t)hsize), &why);
            if (got < 0) return fatal(r, e, MC_E_FORMAT, "offset %llu: %s", (unsigned long long)off, why);
            if ((uint64_t)got < padded((uint64_t)hsize))
                return fatal(r, e, MC_E_FORMAT, "offset %llu: truncated extension header data", (unsigned long long)off);
            if (type == 'L') {
                if (!have_name && set_name(r, r->buf, nts_len(r->buf, (size_t)hsize)))
                    return fatal(r, e, MC_E_NOMEM, "out of memory");
                have_name = 1;
            } else if (type != 'K') {
                pax_vals pv = {0};
                if (parse_pax(r->buf, (size_t)hsize, &pv, &why))
                    return fatal(r, e, MC_E_FORMAT, "offset %llu: pax header: %s", (unsigned long long)off, why);
                if (type == 'g') {
                    if (pv.has_path) {
                        char *g = malloc(pv.path_len + 1);
                        if (!g) return fatal(r, e, MC_E_NOMEM, "out of memory");
                        memcpy(g, pv.path, pv.path_len);
                        g[pv.path_len] = 0;
                        free(r->gpath);
                        r->gpath = g;
                    }
                    if (pv.size >= 0) r->gsize = pv.size;
                    if (first == (int64_t)off) first = -1; /* a global header describes no member */
                } else {
                    if (pv.has_path && !have_name) {
                        if (set_name(r, pv.path, pv.path_len)) return fatal(r, e, MC_E_NOMEM, "out of memory");
                        if (memchr(pv.path, 0, pv.path_len)) r->mname[0] = 0, have_name = -1;
                        else have_name = 1;
                    }
                    if (pv.size >= 0 && xsize < 0) xsize = pv.size;
                }
            }
            continue;
        }
        if (type == 'S')
            return fatal(r, e, MC_E_UNSUPPORTED, "offset %llu: GNU sparse member (not supported)", (unsigned long long)off);
        /* a file-system object */
        size_t nlen = nts_len(h + H_NAME, 100);
        int is_dir = type == '5' || (type == 0 && nlen > 0 && h[H_NAME + nlen - 1] == '/');
        int is_reg = !is_dir && (type == '0' || type == 0 || type == '7');
        int has_data = is_reg || !(type >= '1' && type <= '6');
        int64_t size = xsize >= 0 ? xsize : r->gsize >= 0 ? r->gsize : hsize;
        if (!have_name) {
            if (r->gpath) {
                if (set_name(r, (const unsigned char *)r->gpath, strlen(r->gpath))) return fatal(r, e, MC_E_NOMEM, "out of memory");
            } else {
                size_t plen = nts_len(h + H_PREFIX, 155);
                unsigned char full[257];
                size_t k = 0;
                if (plen) {
                    memcpy(full, h + H_PREFIX, plen);
                    full[plen] = '/';
                    k = plen + 1;
                }
                memcpy(full + k, h + H_NAME, nlen);
                if (set_name(r, full, k + nlen)) return fatal(r, e, MC_E_NOMEM, "out of memory");
            }
        }
        uint64_t data_off = r->offset;
        if (!is_reg) {
            if (has_data) {
                int64_t s = skip(r, padded((uint64_t)size), &why);
                if (s < 0) return fatal(r, e, MC_E_FORMAT, "offset %llu: %s", (unsigned long long)off, why);
                if ((uint64_t)s < padded((uint64_t)size))
                    return fatal(r, e, MC_E_FORMAT, "offset %llu: truncated data of a non-file member", (unsigned long long)off);
            }
            have_name = 0;
            xsize = -1;
            first = -1;
            continue;
        }
        if (have_name < 0 || (uint64_t)size > r->max_member) {
            int64_t s = skip(r, padded((uint64_t)size), &why);
            if (s < 0) return fatal(r, e, MC_E_FORMAT, "offset %llu: %s", (unsigned long long)off, why);
            if ((uint64_t)s < (uint64_t)size)
                return fatal(r, e, MC_E_FORMAT, "offset %llu: truncated member data", (unsigned long long)first);
            fill_member(m, r, type, (uint64_t)size, (uint64_t)first, data_off, NULL);
            if (have_name < 0)
                return mc_fail(e, MC_E_FORMAT, "%s: offset %llu: member name contains a NUL byte (skipped)", r->name,
                               (unsigned long long)first);
            return mc_fail(e, MC_E_NOMEM, "%s: offset %llu: member '%s' has %lld bytes, more than the limit of %zu (skipped)",
                           r->name, (unsigned long long)first, r->mname, (long long)size, r->max_member);
        }
        if (grow(&r->buf, &r->cap, (size_t)size + 1)) return fatal(r, e, MC_E_NOMEM, "out of memory for %lld bytes", (long long)size);
        got = rd(r, r->buf, (size_t)size, &why);
        if (got < 0) return fatal(r, e, MC_E_FORMAT, "offset %llu: member '%s': %s", (unsigned long long)first, r->mname, why);
        if (got < size)
            return fatal(r, e, MC_E_FORMAT, "offset %llu: member '%s' truncated (%lld of %lld bytes)",
                         (unsigned long long)first, r->mname, (long long)got, (long long)size);
        r->buf[size] = 0;
        uint64_t pad = padded((uint64_t)size) - (uint64_t)size;
        int64_t s = skip(r, pad, &why);
        if (s < 0) return fatal(r, e, MC_E_FORMAT, "offset %llu: %s", (unsigned long long)off, why);
        if ((uint64_t)s < pad) /* tarfile would not notice; the archive was cut here */
            return fatal(r, e, MC_E_FORMAT, "offset %llu: member '%s': truncated padding after the data",
                         (unsigned long long)first, r->mname);
        fill_member(m, r, type, (uint64_t)size, (uint64_t)first, data_off, r->buf);
        return 1;
    }
}

/* ---- writer ---- */

static int wput(mc_tar_writer *w, const void *p, size_t n, mc_err *e) {
    if (w->failed) return mc_fail(e, MC_E_IO, "%s: earlier write failed", w->name);
    if (n && fwrite(p, 1, n, w->fp) != n) {
        w->failed = 1;
        return mc_fail(e, MC_E_IO, "%s: write failed: %s", w->name, strerror(errno));
    }
    w->offset += n;
    return 0;
}

static int wpad(mc_tar_writer *w, uint64_t n, mc_err *e) {
    static const unsigned char zeros[MC_TAR_BLOCK];
    size_t p = (size_t)(padded(n) - n);
    return wput(w, zeros, p, e);
}

int mc_tar_writer_init_fp(mc_tar_writer *w, FILE *fp, const char *name, mc_err *e) {
    memset(w, 0, sizeof *w);
    w->fp = fp;
    w->name = strdup(name ? name : "(tar)");
    if (!w->name) return mc_fail(e, MC_E_NOMEM, "out of memory");
    return 0;
}

int mc_tar_writer_open(mc_tar_writer *w, const char *path, mc_err *e) {
    memset(w, 0, sizeof *w);
    FILE *fp = fopen(path, "wb");
    if (!fp) return mc_fail(e, MC_E_IO, "%s: cannot create: %s", path, strerror(errno));
    if (mc_tar_writer_init_fp(w, fp, path, e)) {
        fclose(fp);
        return MC_E_NOMEM;
    }
    w->own = 1;
    return 0;
}

int mc_tar_writer_open_atomic(mc_tar_writer *w, const char *path, mc_err *e) {
    memset(w, 0, sizeof *w);
    mc_atomic_file af;
    int rc = mc_atomic_open(&af, path, e);
    if (rc) return rc;
    if ((rc = mc_tar_writer_init_fp(w, af.f, path, e))) {
        mc_atomic_abort(&af);
        memset(w, 0, sizeof *w);
        return rc;
    }
    w->atomic = af;
    return 0;
}

/* itn for ustar: `digits-1` octal digits and a NUL. */
static void put_octal(unsigned char *f, int width, uint64_t v) {
    for (int i = width - 2; i >= 0; i--) {
        f[i] = (unsigned char)('0' + (v & 7));
        v >>= 3;
    }
    f[width - 1] = 0;
}

/* The ustar name field as tarfile fills it next to a pax path: each non-ASCII character
 * (UTF-8 sequence) becomes '?', then the first 100 bytes. */
static void put_name(unsigned char *f, const char *name, size_t nlen) {
    size_t k = 0;
    for (size_t i = 0; i < nlen && k < 100; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x80) f[k++] = c;
        else if ((c & 0xc0) != 0x80) f[k++] = '?'; /* a lead byte; continuation bytes vanish */
    }
}

static void make_header(unsigned char *h, const char *name, size_t nlen, uint64_t size, char type, int64_t mtime) {
    memset(h, 0, MC_TAR_BLOCK);
    put_name(h + H_NAME, name, nlen);
    put_octal(h + H_MODE, 8, type == '0' ? 0444 : 0);
    put_octal(h + H_UID, 8, 0);
    put_octal(h + H_GID, 8, 0);
    put_octal(h + H_SIZE, 12, size);
    put_octal(h + H_MTIME, 12, (uint64_t)(mtime < 0 ? 0 : mtime));
    memset(h + H_CHKSUM, ' ', 8);
    h[H_TYPE] = (unsigned char)type;
    memcpy(h + H_MAGIC, "ustar\0" "00", 8);
    if (type == '0') {
        memcpy(h + H_UNAME, "bigdata", 7);
        memcpy(h + H_GNAME, "bigdata", 7);
    }
    /* devmajor/devminor stay NUL for non-device members, as tarfile writes them */
    unsigned sum = 0;
    for (int i = 0; i < MC_TAR_BLOCK; i++) sum += h[i];
    put_octal(h + H_CHKSUM, 7, sum); /* "%06o\0" and the 8th byte stays a space */
}

static void pax_record(char *dst, size_t *pos, const char *key, const char *val, size_t vlen) {
    /* the length counts its own digits: find the fixed point */
    size_t base = strlen(key) + vlen + 3, len = base + 1;
    for (;;) {
        char d[24];
        size_t nd = (size_t)snprintf(d, sizeof d, "%zu", len);
        if (base + nd == len) break;
        len = base + nd;
    }
    *pos += (size_t)sprintf(dst + *pos, "%zu %s=", len, key);
    memcpy(dst + *pos, val, vlen);
    *pos += vlen;
    dst[(*pos)++] = '\n';
}

int mc_tar_write_member(mc_tar_writer *w, const char *name, const void *data, size_t size, mc_err *e) {
    size_t nlen = name ? strlen(name) : 0;
    if (nlen == 0 || nlen > 65535) return mc_fail(e, MC_E_ARG, "%s: invalid member name length %zu", w->name, nlen);
    int ascii = 1;
    for (size_t i = 0; i < nlen; i++) ascii &= (unsigned char)name[i] < 0x80;
    int big = (uint64_t)size >= ((uint64_t)1 << 33);
    unsigned char h[MC_TAR_BLOCK];
    if (nlen > 100 || !ascii || big) {
        size_t cap = nlen + 64;
        char *pax = malloc(cap);
        if (!pax) return mc_fail(e, MC_E_NOMEM, "%s: out of memory", w->name);
        size_t pos = 0;
        if (nlen > 100 || !ascii) pax_record(pax, &pos, "path", name, nlen);
        if (big) {
            char s[24];
            int sl = snprintf(s, sizeof s, "%llu", (unsigned long long)size);
            pax_record(pax, &pos, "size", s, (size_t)sl);
        }
        make_header(h, "././@PaxHeader", 14, pos, 'x', 0);
        int rc = wput(w, h, MC_TAR_BLOCK, e);
        if (!rc) rc = wput(w, pax, pos, e);
        if (!rc) rc = wpad(w, pos, e);
        free(pax);
        if (rc) return rc;
    }
    make_header(h, name, nlen, big ? 0 : (uint64_t)size, '0', w->mtime);
    int rc = wput(w, h, MC_TAR_BLOCK, e);
    if (!rc) rc = wput(w, data, size, e);
    if (!rc) rc = wpad(w, size, e);
    return rc;
}

int mc_tar_writer_finish(mc_tar_writer *w, mc_err *e) {
    static const unsigned char zeros[MC_TAR_BLOCK];
    int rc = wput(w, zeros, MC_TAR_BLOCK, e);
    if (!rc) rc = wput(w, zeros, MC_TAR_BLOCK, e);
    while (!rc && w->offset % MC_TAR_RECORD) rc = wput(w, zeros, MC_TAR_BLOCK, e); /* tarfile's record padding */
    if (!rc && fflush(w->fp) != 0) rc = mc_fail(e, MC_E_IO, "%s: write failed: %s", w->name, strerror(errno));
    if (w->atomic.f) { /* fsync, rename, fsync of the folder; the temporary file goes on failure */
        if (rc) mc_atomic_abort(&w->atomic);
        else rc = mc_atomic_commit(&w->atomic, e);
    } else if (w->own) {
        if (!rc && fsync(fileno(w->fp)) != 0) rc = mc_fail(e, MC_E_IO, "%s: fsync failed: %s", w->name, strerror(errno));
        if (fclose(w->fp) != 0 && !rc) rc = mc_fail(e, MC_E_IO, "%s: close failed: %s", w->name, strerror(errno));
    }
    free(w->name);
    memset(w, 0, sizeof *w);
    return rc;
}

void mc_tar_writer_abort(mc_tar_writer *w) {
    if (w->atomic.f) mc_atomic_abort(&w->atomic); /* closes fp and removes the temporary file */
    else if (w->own && w->fp) fclose(w->fp);
    free(w->name);
    memset(w, 0, sizeof *w);
}
