/* idx.h - IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed.
 *
 * Layout: magic 00 00 TYPE NDIM, NDIM big-endian u32 dimensions, then the elements row-major.
 * Only unsigned bytes (TYPE 0x08) are read: images [N, H, W] and labels [N]. The reader checks
 * the magic, that every dimension is positive, that the data is exactly as long as the dimensions
 * say (nothing missing, nothing after), and bounds the size before allocating.
 */
#ifndef MC_IO_IDX_H
#define MC_IO_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define MC_IDX_MAX_DIMS 4
#define MC_IDX_MAX_BYTES ((size_t)1 << 32) /* 4 GiB of elements */

typedef struct mc_idx {
    int ndim;
    int64_t dims[MC_IDX_MAX_DIMS];
    uint8_t *data; /* row-major elements, owned */
    size_t size;   /* product of dims */
} mc_idx;

/* Parses buf[0..len) (gzip'd when it starts 1f 8b); max_bytes bounds the element count
 * (MC_IDX_MAX_BYTES for files). */
int mc_idx_parse(const void *buf, size_t len, const char *name, size_t max_bytes, mc_idx *out, mc_err *e);
int mc_idx_load(const char *path, mc_idx *out, mc_err *e);
void mc_idx_free(mc_idx *x);

/* Loads an images file [N, H, W] and a labels file [N] with the same N; labels < n_classes. */
int mc_idx_load_labelled(const char *images_path, const char *labels_path, int n_classes, mc_idx *images,
                         mc_idx *labels, mc_err *e);

#endif
