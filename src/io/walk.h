/* walk.h - the image files under a directory, for collections (index) and datasets (eval).
 *
 * Recursive, names in byte order, entries starting with '.' skipped, symbolic links to files
 * followed and to directories not. A file is an image when its first bytes are a JPEG, PNG or WebP
 * signature, whatever its name; other files are counted in *n_other and left out.
 */
#ifndef MC_IO_WALK_H
#define MC_IO_WALK_H

#include "core/error.h"
#include "core/strlist.h"

/* Appends the images under dir (paths "dir/sub/name") to out; n_other (may be NULL) counts the
 * non-image files seen. */
int mc_walk_images(const char *dir, mc_strlist *out, int *n_other, mc_err *e);
/* Appends the names of the subdirectories of dir (not recursive, byte order, no dot entries). */
int mc_walk_subdirs(const char *dir, mc_strlist *out, mc_err *e);
/* 1 if the file starts like a JPEG, PNG or WebP image, 0 if not, -1 if it cannot be read. */
int mc_sniff_image(const char *path);

#endif
