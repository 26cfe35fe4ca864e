/* walk.h - the image files under a directory: the one walker of the project, for collections
 * (index), datasets (eval, bench) and `embed --image-dir`.
 *
 * Recursive, entries of each directory in byte order of their names (a subdirectory's files
 * come at its name's place), symbolic links to files followed and to directories not, at most
 * 64 levels deep. A file is an image when its first bytes carry a signature of one of the
 * accepted formats (image/image.h: mc_image_sniff), whatever its name; other regular files are
 * counted in *n_other and left out; sockets, devices and FIFOs are ignored. What the options
 * choose:
 *   - formats: MC_IMAGE_FORMAT_* bits accepted (0: all, JPEG | PNG | WebP);
 *   - dot_files: 1 walks entries whose name starts with '.' too (0: skips them, files and
 *     directories alike);
 *   - keep_unreadable: 1 lists a file that cannot be opened or read (a dangling link, no read
 *     permission) so that loading it reports the problem; 0 counts it in *n_other.
 */
#ifndef MC_IO_WALK_H
#define MC_IO_WALK_H

#include "core/error.h"
#include "core/strlist.h"

typedef struct mc_walk_opts {
    int formats;         /* MC_IMAGE_FORMAT_* bits; 0 = all */
    int dot_files;       /* walk names starting with '.' */
    int keep_unreadable; /* list unreadable files instead of counting them as non-images */
} mc_walk_opts;

/* Appends the images under dir (paths "dir/sub/name") to out; o NULL means all zero (every
 * format, no dot files, unreadable files counted); n_other (may be NULL) counts the files
 * left out. */
int mc_walk_images(const char *dir, const mc_walk_opts *o, mc_strlist *out, int *n_other, mc_err *e);
/* Appends the names of the subdirectories of dir (not recursive, byte order, no dot entries). */
int mc_walk_subdirs(const char *dir, mc_strlist *out, mc_err *e);

#endif
