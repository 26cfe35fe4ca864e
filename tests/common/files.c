#include "common/files.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/test_util.h"
#include "io/mapped_file.h"

unsigned char *mc_test_read(const char *path, size_t *len) {
    char *data;
    mc_err e;
    if (mc_read_file(path, (size_t)1 << 30, &data, len, &e)) mc_test_fatal("%s", e.msg);
    return (unsigned char *)data;
}

mc_json *mc_test_json(const char *path) {
    size_t n;
    unsigned char *t = mc_test_read(path, &n);
    mc_err e;
    mc_json *j = mc_json_parse((const char *)t, n, &e);
    free(t);
    if (!j) mc_test_fatal("%s: %s", path, e.msg);
    return j;
}

const char *mc_test_tmpdir(const char *prefix) {
    static char dir[256];
    snprintf(dir, sizeof dir, "/tmp/%s_XXXXXX", prefix);
    if (!mkdtemp(dir)) mc_test_fatal("mkdtemp failed");
    return dir;
}

const char *mc_test_write(const char *dir, const char *name, const void *data, size_t n) {
    static char paths[8][512];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) mc_test_fatal("cannot write %s", p);
    return p;
}

unsigned char *mc_test_unhex(const char *hex, size_t *n) {
    size_t k = strlen(hex) / 2;
    unsigned char *b = malloc(k + 1);
    if (!b) mc_test_fatal("out of memory");
    for (size_t i = 0; i < k; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) mc_test_fatal("bad hex");
        b[i] = (unsigned char)v;
    }
    *n = k;
    return b;
}
