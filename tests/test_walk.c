/* test_walk.c - io/walk (the one directory walker) and mc_image_sniff: byte order, recursion,
 * symbolic links, each option (formats, dot files, unreadable files) and the counts of files
 * left out, on a tree built here; the signatures on exact and cut-short headers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/files.h"
#include "common/test_util.h"
#include "image/image.h"
#include "io/walk.h"

static const char *root;

static const char JPEG[] = "\xff\xd8\xff\xe0 rest";
static const char PNG[] = "\x89PNG\r\n\x1a\n rest";
static const char WEBP[] = "RIFF\x10\0\0\0WEBPVP8 ";

static void put(const char *rel, const char *data, size_t n) {
    char d[512];
    snprintf(d, sizeof d, "%s/%s", root, rel);
    char *slash = strrchr(d, '/');
    *slash = 0;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", d);
    if (system(cmd) != 0) mc_test_fatal("%s failed", cmd);
    mc_test_write(d, slash + 1, data, n);
}

/* The list as "a|b|c" relative to root. */
static const char *joined(const mc_strlist *l) {
    static char buf[4096];
    size_t k = 0, rl = strlen(root) + 1;
    buf[0] = 0;
    for (int i = 0; i < l->count; i++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i ? "|" : "", strncmp(l->items[i], root, rl - 1) ? l->items[i] : l->items[i] + rl);
    return buf;
}

static void expect(const mc_walk_opts *o, const char *want, int want_other, const char *what) {
    mc_err e = {0};
    mc_strlist l = {0};
    int other = 0;
    int r = mc_walk_images(root, o, &l, &other, &e);
    CHECK(r == 0 && !strcmp(joined(&l), want) && other == want_other, "%s: rc %d (%s)\n  got  %s (%d other)\n  want %s (%d other)",
          what, r, e.msg, joined(&l), other, want, want_other);
    mc_strlist_free(&l);
}

static void check_sniff(void) {
    CHECK(mc_image_sniff(JPEG, 3) == MC_IMAGE_FORMAT_JPEG && mc_image_sniff(JPEG, 2) == 0, "jpeg signature");
    CHECK(mc_image_sniff(PNG, 8) == MC_IMAGE_FORMAT_PNG && mc_image_sniff(PNG, 7) == 0, "png signature");
    CHECK(mc_image_sniff(WEBP, 12) == MC_IMAGE_FORMAT_WEBP && mc_image_sniff(WEBP, 11) == 0, "webp signature");
    CHECK(mc_image_sniff("RIFF\x10\0\0\0WAVE", 12) == 0 && mc_image_sniff("", 0) == 0, "not images");
}

int main(void) {
    check_sniff();
    root = mc_test_tmpdir("mc_test_walk");
    put("b.png", PNG, sizeof PNG);
    put("a.bin", JPEG, sizeof JPEG);               /* named anything: content decides */
    put("c.webp", WEBP, sizeof WEBP);
    put("fake.jpg", "text\n", 5);                  /* other */
    put("a/x.jpg", JPEG, sizeof JPEG);             /* "a" sorts before "a.bin" */
    put("a/deep/y", PNG, sizeof PNG);
    put(".hidden.png", PNG, sizeof PNG);
    put(".dots/z.jpg", JPEG, sizeof JPEG);
    char p[600], q[600];
    snprintf(p, sizeof p, "%s/b.png", root), snprintf(q, sizeof q, "%s/link.png", root);
    CHECK(symlink(p, q) == 0, "symlink to a file");
    snprintf(p, sizeof p, "%s/a", root), snprintf(q, sizeof q, "%s/linkdir", root);
    CHECK(symlink(p, q) == 0, "symlink to a folder");      /* not followed */
    snprintf(p, sizeof p, "%s/nowhere", root), snprintf(q, sizeof q, "%s/dangling", root);
    CHECK(symlink(p, q) == 0, "dangling symlink");        /* unreadable */
    snprintf(q, sizeof q, "%s/fifo", root);
    CHECK(mkfifo(q, 0644) == 0, "fifo");                 /* ignored, never opened */

    const char *all = "a/deep/y|a/x.jpg|a.bin|b.png|c.webp|link.png";
    expect(NULL, all, 2, "defaults (dangling link and fake.jpg left out)");
    expect(&(mc_walk_opts){.formats = MC_IMAGE_FORMAT_ALL}, all, 2, "all formats");
    expect(&(mc_walk_opts){.formats = MC_IMAGE_FORMAT_PNG}, "a/deep/y|b.png|link.png", 5, "PNG only");
    expect(&(mc_walk_opts){.formats = MC_IMAGE_FORMAT_JPEG | MC_IMAGE_FORMAT_WEBP}, "a/x.jpg|a.bin|c.webp", 5, "JPEG + WebP");
    expect(&(mc_walk_opts){.dot_files = 1}, ".dots/z.jpg|.hidden.png|a/deep/y|a/x.jpg|a.bin|b.png|c.webp|link.png", 2, "dot files");
    expect(&(mc_walk_opts){.keep_unreadable = 1}, "a/deep/y|a/x.jpg|a.bin|b.png|c.webp|dangling|link.png", 1, "unreadable kept");

    /* a file without read permission is unreadable too (root reads it anyway) */
    put("secret.png", PNG, sizeof PNG);
    snprintf(q, sizeof q, "%s/secret.png", root);
    chmod(q, 0);
    if (access(q, R_OK) != 0) {
        expect(NULL, all, 3, "no read permission: counted");
        expect(&(mc_walk_opts){.keep_unreadable = 1}, "a/deep/y|a/x.jpg|a.bin|b.png|c.webp|dangling|link.png|secret.png", 1,
               "no read permission: kept");
    }
    unlink(q);

    mc_err e = {0};
    mc_strlist l = {0};
    CHECK(mc_walk_images(p, NULL, &l, NULL, &e) < 0 && strstr(e.msg, p) && l.count == 0, "missing folder: %s", e.msg);
    snprintf(q, sizeof q, "%s/b.png", root);
    CHECK(mc_walk_images(q, NULL, &l, NULL, &e) < 0 && strstr(e.msg, "not a directory"), "a file: %s", e.msg);
    /* class folders may be links (stat), dot folders are not listed */
    CHECK(mc_walk_subdirs(root, &l, &e) == 0 && !strcmp(joined(&l), "a|linkdir"), "subdirs: %s", joined(&l));
    mc_strlist_free(&l);
    return mc_test_finish("test_walk");
}
