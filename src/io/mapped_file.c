#include "io/mapped_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int open_regular(const char *path, struct stat *st, mc_err *e) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return mc_fail(e, MC_E_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, st) != 0) {
        int r = mc_fail(e, MC_E_IO, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return r;
    }
    if (S_ISDIR(st->st_mode)) {
        close(fd);
        return mc_fail(e, MC_E_IO, "%s: is a directory", path);
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return mc_fail(e, MC_E_IO, "%s: not a regular file", path);
    }
    if (st->st_size == 0) {
        close(fd);
        return mc_fail(e, MC_E_FORMAT, "%s: file is empty", path);
    }
    return fd;
}

int mc_map_file(const char *path, void **addr, size_t *len, mc_err *e) {
    struct stat st;
    int fd = open_regular(path, &st, e);
    if (fd < 0) return fd;
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return mc_fail(e, MC_E_IO, "%s: cannot map: %s", path, strerror(errno));
    *addr = p;
    *len = (size_t)st.st_size;
    return 0;
}

int mc_tensor_map_load_file(const char *path, mc_tensor_map *m, mc_map_parse_fn parse, void *arg, mc_err *e) {
    void *addr;
    size_t len;
    int r = mc_map_file(path, &addr, &len, e);
    if (r) return r;
    if ((r = parse(addr, len, path, m, arg, e))) {
        munmap(addr, len);
        return r;
    }
    m->map_addr = addr;
    m->map_len = len;
    return 0;
}

int mc_read_file(const char *path, size_t max_len, char **data, size_t *len, mc_err *e) {
    struct stat st;
    int fd = open_regular(path, &st, e);
    if (fd < 0) return fd;
    if ((size_t)st.st_size > max_len) {
        close(fd);
        return mc_fail(e, MC_E_FORMAT, "%s: file too large (%lld bytes, limit %zu)", path,
                       (long long)st.st_size, max_len);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return mc_fail(e, MC_E_NOMEM, "%s: out of memory", path);
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            free(buf);
            close(fd);
            return mc_fail(e, MC_E_IO, "%s: read failed: %s", path, r < 0 ? strerror(errno) : "short read");
        }
        got += (size_t)r;
    }
    close(fd);
    buf[got] = 0;
    *data = buf;
    *len = got;
    return 0;
}
