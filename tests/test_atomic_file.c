/* test_atomic_file.c - io/atomic_file and the writers built on it (torch checkpoints, tar
 * shards): the final name appears only on commit, an existing file survives until then, and
 * every failure (folder missing or unwritable, write error, rename error, abort) leaves no
 * temporary file and a message naming the path. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/files.h"
#include "common/test_util.h"
#include "core/tensor.h"
#include "io/atomic_file.h"
#include "io/tar.h"
#include "io/torch_writer.h"

static const char *dir;

static const char *at(const char *name) {
    static char buf[4][512];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, sizeof buf[0], "%s/%s", dir, name);
    return b;
}

/* Entries of dir whose name holds the temporary suffix. */
static int temporaries(void) {
    DIR *d = opendir(dir);
    if (!d) mc_test_fatal("%s: cannot list", dir);
    int n = 0;
    for (struct dirent *de; (de = readdir(d));) n += strstr(de->d_name, MC_ATOMIC_TMP_SUFFIX) != NULL;
    closedir(d);
    return n;
}

static int is_zero(const mc_atomic_file *af) { return !af->f && !af->path && !af->tmp; }

static int content_is(const char *path, const char *want) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char got[256];
    size_t n = fread(got, 1, sizeof got, f);
    fclose(f);
    return n == strlen(want) && !memcmp(got, want, n);
}

static void check_commit_and_abort(void) {
    mc_err e = {0};
    mc_atomic_file af;
    const char *p = at("a.txt");
    CHECK(mc_atomic_open(&af, p, &e) == 0, "open: %s", e.msg);
    fputs("hello", af.f);
    CHECK(access(p, F_OK) != 0 && temporaries() == 1, "before commit only the temporary file exists");
    CHECK(strncmp(af.tmp, p, strlen(p)) == 0 && strstr(af.tmp + strlen(p), MC_ATOMIC_TMP_SUFFIX) == af.tmp + strlen(p),
          "temporary name %s is next to the target", af.tmp);
    CHECK(mc_atomic_commit(&af, &e) == 0 && is_zero(&af), "commit: %s", e.msg);
    CHECK(content_is(p, "hello") && temporaries() == 0, "committed content, no temporary left");
    mode_t mask = umask(0);
    umask(mask);
    struct stat st;
    CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == (0666 & ~mask), "mode %o, want %o", st.st_mode & 0777, 0666 & ~mask);

    /* an existing file is replaced only on commit, and abort keeps it */
    CHECK(mc_atomic_open(&af, p, &e) == 0, "reopen: %s", e.msg);
    fputs("other", af.f);
    fflush(af.f);
    CHECK(content_is(p, "hello"), "old content while writing");
    mc_atomic_abort(&af);
    CHECK(is_zero(&af) && content_is(p, "hello") && temporaries() == 0, "abort keeps the old file, removes the temporary");
    mc_atomic_abort(&af); /* twice is harmless */
    CHECK(mc_atomic_open(&af, p, &e) == 0, "reopen 2: %s", e.msg);
    fputs("new", af.f);
    CHECK(mc_atomic_commit(&af, &e) == 0 && content_is(p, "new"), "replace on commit: %s", e.msg);
}

static void check_open_failures(void) {
    mc_err e = {0};
    mc_atomic_file af;
    const char *p = at("missing/x.bin");
    CHECK(mc_atomic_open(&af, p, &e) < 0 && is_zero(&af) && strstr(e.msg, p), "missing folder: %s", e.msg);
    mc_test_write(dir, "plain", "x", 1);
    p = at("plain/x.bin"); /* a file where the folder should be */
    CHECK(mc_atomic_open(&af, p, &e) < 0 && is_zero(&af) && strstr(e.msg, p), "not a folder: %s", e.msg);
    /* a read-only folder (root ignores the permission: then only the commit is checked) */
    const char *ro = at("ro");
    CHECK(mkdir(ro, 0555) == 0, "mkdir %s", ro);
    p = at("ro/x.bin");
    if (access(ro, W_OK) != 0) {
        CHECK(mc_atomic_open(&af, p, &e) < 0 && is_zero(&af) && strstr(e.msg, p), "read-only folder: %s", e.msg);
    } else {
        CHECK(mc_atomic_open(&af, p, &e) == 0 && mc_atomic_commit(&af, &e) == 0, "folder writable as root: %s", e.msg);
        unlink(p);
    }
    chmod(ro, 0755);
    rmdir(ro);
}

/* The rename fails when the target is a non-empty folder: the temporary file must go. */
static void check_rename_failure(void) {
    mc_err e = {0};
    mc_atomic_file af;
    const char *p = at("busy");
    CHECK(mkdir(p, 0755) == 0, "mkdir %s", p);
    mc_test_write(p, "inside", "x", 1);
    CHECK(mc_atomic_open(&af, p, &e) == 0, "open next to a folder: %s", e.msg);
    fputs("data", af.f);
    CHECK(mc_atomic_commit(&af, &e) < 0 && is_zero(&af) && strstr(e.msg, p) && strstr(e.msg, "rename"), "rename failure: %s", e.msg);
    CHECK(temporaries() == 0, "no temporary after a failed rename");

    /* the writers built on it clean up the same way */
    float v[3] = {1, 2, 3};
    mc_named_tensor t = {.name = (char *)"w", .t = {.data = v, .dtype = MC_DTYPE_F32, .ndim = 1, .shape = {3}, .stride = {1}}};
    mc_tensor_map m = {.items = &t, .count = 1};
    CHECK(mc_torch_save(p, &m, &e) < 0 && strstr(e.msg, p) && temporaries() == 0, "torch save over a folder: %s", e.msg);
    mc_tar_writer w;
    CHECK(mc_tar_writer_open_atomic(&w, p, &e) == 0 && mc_tar_write_member(&w, "k.txt", "x", 1, &e) == 0, "tar open: %s", e.msg);
    CHECK(mc_tar_writer_finish(&w, &e) < 0 && strstr(e.msg, p) && temporaries() == 0, "tar finish over a folder: %s", e.msg);
    CHECK(mc_tar_writer_open_atomic(&w, at("t.tar"), &e) == 0, "tar open 2: %s", e.msg);
    mc_tar_writer_abort(&w);
    CHECK(access(at("t.tar"), F_OK) != 0 && temporaries() == 0, "tar abort leaves nothing");
    CHECK(mc_torch_save(at("ok.pt"), &m, &e) == 0 && access(at("ok.pt"), F_OK) == 0 && temporaries() == 0, "torch save: %s", e.msg);
}

/* A write error (file size limit, EFBIG) surfaces at commit and removes the temporary file. */
static void check_write_failure(void) {
    mc_err e = {0};
    mc_atomic_file af;
    struct rlimit old;
    if (getrlimit(RLIMIT_FSIZE, &old) != 0) mc_test_fatal("getrlimit");
    signal(SIGXFSZ, SIG_IGN);
    const char *p = at("big.bin");
    CHECK(mc_atomic_open(&af, p, &e) == 0, "open: %s", e.msg);
    struct rlimit lim = {4096, old.rlim_max};
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
    static char block[65536];
    fwrite(block, 1, sizeof block, af.f);
    int r = mc_atomic_commit(&af, &e);
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK(r < 0 && is_zero(&af) && strstr(e.msg, p) && strstr(e.msg, "cannot write"), "write failure: %s", e.msg);
    CHECK(access(p, F_OK) != 0 && temporaries() == 0, "no file after a failed write");
    signal(SIGXFSZ, SIG_DFL);
}

int main(void) {
    dir = mc_test_tmpdir("mc_test_atomic");
    check_commit_and_abort();
    check_open_failures();
    check_rename_failure();
    check_write_failure();
    return mc_test_finish("test_atomic_file");
}
