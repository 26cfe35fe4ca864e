/* atomic_file.c - temporary file + fsync + rename (see atomic_file.h). */
#include "io/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int mc_atomic_open(mc_atomic_file *af, const char *path, mc_err *e) {
    memset(af, 0, sizeof *af);
    size_t l = strlen(path);
    const size_t sl = sizeof MC_ATOMIC_TMP_SUFFIX "XXXXXX"; /* with its NUL */
    if (!(af->path = strdup(path)) || !(af->tmp = malloc(l + sl))) {
        mc_atomic_abort(af);
        return mc_fail(e, MC_E_NOMEM, "%s: out of memory", path);
    }
    memcpy(af->tmp, path, l);
    memcpy(af->tmp + l, MC_ATOMIC_TMP_SUFFIX "XXXXXX", sl);
    int fd = mkstemp(af->tmp);
    if (fd < 0) {
        int err = errno;
        free(af->tmp);
        af->tmp = NULL;
        mc_atomic_abort(af);
        return mc_fail(e, MC_E_IO, "%s: cannot create a temporary file next to it: %s", path, strerror(err));
    }
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask); /* mkstemp creates 0600; the result is an ordinary file */
    if (!(af->f = fdopen(fd, "wb"))) {
        close(fd);
        mc_atomic_abort(af);
        return mc_fail(e, MC_E_NOMEM, "%s: out of memory", path);
    }
    return 0;
}

/* fsync of the directory holding path, so the rename itself survives a crash. */
static void sync_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY) : -1;
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

int mc_atomic_commit(mc_atomic_file *af, mc_err *e) {
    errno = 0;
    int bad = fflush(af->f) != 0 || ferror(af->f) || fsync(fileno(af->f)) != 0;
    int err = errno;
    if (fclose(af->f) != 0 && !bad) {
        bad = 1;
        err = errno;
    }
    af->f = NULL;
    if (bad) {
        mc_fail(e, MC_E_IO, "%s: cannot write: %s", af->path, strerror(err ? err : EIO));
        mc_atomic_abort(af);
        return MC_E_IO;
    }
    if (rename(af->tmp, af->path) != 0) {
        mc_fail(e, MC_E_IO, "%s: cannot rename the temporary file: %s", af->path, strerror(errno));
        mc_atomic_abort(af);
        return MC_E_IO;
    }
    sync_dir(af->path);
    free(af->tmp);
    free(af->path);
    memset(af, 0, sizeof *af);
    return 0;
}

void mc_atomic_abort(mc_atomic_file *af) {
    if (af->f) fclose(af->f);
    if (af->tmp) unlink(af->tmp);
    free(af->tmp);
    free(af->path);
    memset(af, 0, sizeof *af);
}
