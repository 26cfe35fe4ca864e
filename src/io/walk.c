/* Directory walking for image collections (see walk.h). */
#include "io/walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/image.h"

/* The format bit of the file (0: no image signature), or -1 if it cannot be read. */
static int sniff_file(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    unsigned char h[12];
    ssize_t n = read(fd, h, sizeof h);
    close(fd);
    return n < 0 ? -1 : mc_image_sniff(h, (size_t)n);
}

/* The entries of dir as full paths, sorted, without "." and ".." (nor other dot entries unless
 * dot_files). */
static int list_dir(const char *dir, int dot_files, mc_strlist *names, mc_err *e) {
    DIR *d = opendir(dir);
    if (!d) return mc_fail(e, MC_E_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    size_t dl = strlen(dir);
    int sep = dl && dir[dl - 1] != '/', r = 0;
    struct dirent *de;
    char *buf = NULL;
    while (!r && (de = readdir(d))) {
        if (de->d_name[0] == '.' && (!dot_files || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))) continue;
        char *nb = realloc(buf, dl + strlen(de->d_name) + 2);
        if (!nb) { r = mc_fail(e, MC_E_NOMEM, "out of memory"); break; }
        buf = nb;
        strcpy(buf, dir);
        if (sep) strcat(buf, "/");
        strcat(buf, de->d_name);
        r = mc_strlist_push(names, buf, strlen(buf), e);
    }
    free(buf);
    closedir(d);
    if (!r) mc_strlist_sort_unique(names);
    return r;
}

static int walk(const char *dir, int depth, const mc_walk_opts *o, mc_strlist *out, int *n_other, mc_err *e) {
    if (depth > 64) return mc_fail(e, MC_E_IO, "%s: directories nested more than 64 deep", dir);
    mc_strlist names = {0};
    int r = list_dir(dir, o->dot_files, &names, e);
    for (int i = 0; i < names.count && !r; i++) {
        struct stat st;
        if (lstat(names.items[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            r = walk(names.items[i], depth + 1, o, out, n_other, e);
            continue;
        }
        int f = stat(names.items[i], &st) != 0 ? -1 : S_ISREG(st.st_mode) ? sniff_file(names.items[i]) : -2;
        if (f == -2) continue; /* a socket, device or FIFO */
        if (f < 0 ? o->keep_unreadable : (f & o->formats) != 0) r = mc_strlist_take(out, names.items[i], e), names.items[i] = NULL;
        else if (n_other) ++*n_other;
    }
    mc_strlist_free(&names);
    return r;
}

int mc_walk_images(const char *dir, const mc_walk_opts *o, mc_strlist *out, int *n_other, mc_err *e) {
    mc_walk_opts opt = o ? *o : (mc_walk_opts){0};
    if (!opt.formats) opt.formats = MC_IMAGE_FORMAT_ALL;
    struct stat st;
    if (stat(dir, &st) != 0) return mc_fail(e, MC_E_IO, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return mc_fail(e, MC_E_IO, "%s: not a directory", dir);
    return walk(dir, 0, &opt, out, n_other, e);
}

int mc_walk_subdirs(const char *dir, mc_strlist *out, mc_err *e) {
    mc_strlist names = {0};
    int r = list_dir(dir, 0, &names, e);
    for (int i = 0; i < names.count && !r; i++) {
        struct stat st;
        if (stat(names.items[i], &st) == 0 && S_ISDIR(st.st_mode)) r = mc_strlist_take(out, names.items[i], e), names.items[i] = NULL;
    }
    mc_strlist_free(&names);
    return r;
}
