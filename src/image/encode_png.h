/* encode_png.h - 8-bit greyscale or RGB images to PNG bytes in memory (libpng).
 *
 * Output is a function of the pixels only: no tIME or text chunks, fixed zlib settings
 * (level 9, default strategy, no filter choice heuristics beyond libpng's defaults), so the
 * same pixels give the same bytes with the same libpng/zlib (dataset shards are reproducible).
 */
#ifndef MC_IMAGE_ENCODE_PNG_H
#define MC_IMAGE_ENCODE_PNG_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* px[h][w][channels] (channels 1 = grey, 3 = RGB) -> *out (malloc'd, *len bytes). */
int mc_png_encode(const uint8_t *px, int w, int h, int channels, unsigned char **out, size_t *len, mc_err *e);

#endif
