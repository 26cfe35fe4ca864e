/* image.h - decoded 8-bit RGB images and the JPEG/PNG/WebP decoders.
 *
 * The result is what the reference gets from PIL 9.4's `Image.open(f).convert('RGB')`:
 *   - the format is sniffed from the magic bytes (FF D8 FF = JPEG, 89 'PNG' 0D 0A 1A 0A = PNG,
 *     'RIFF' size 'WEBP' = WebP), never from the file name;
 *   - JPEG: libjpeg-turbo with default settings (islow IDCT, fancy upsampling), as PIL;
 *     grayscale is replicated; 4-component (CMYK/YCCK) files are read with Adobe's inverted
 *     polarity and converted like PIL's cmyk2rgb; libjpeg warnings ("corrupt JPEG data:
 *     N extraneous bytes") are not fatal, as in PIL; running out of data before the last
 *     scanline is decoded is ("truncated JPEG"). Because the Huffman decoder reads ahead,
 *     that includes a file missing only its final EOI marker (PIL 9.4 raises "image file is
 *     truncated" there too). Bytes after EOI are ignored.
 *   - PNG: libpng, every colour type and bit depth, interlaced or not. Alpha is dropped
 *     without compositing; tRNS is ignored; palette indices past the PLTE entries read
 *     PIL's default grey ramp (i, i, i); 16-bit RGB/RGBA/gray+alpha keep the high byte
 *     (PIL's ";16B" unpackers); 16-bit grayscale opens as PIL mode "I" whose RGB conversion
 *     clamps, so a sample v becomes min(v, 255) (PIL's quirk, reproduced on purpose).
 *     No gamma or colour-profile handling (PIL applies none). Ancillary chunks with bad CRCs
 *     are skipped; a bad CRC in a critical chunk is an error (stricter than PIL for IDAT).
 *   - WebP: libwebp's WebPAnimDecoder, first frame, RGBA with alpha dropped, as Pillow
 *     (see decode_webp.c); lossy, lossless, alpha and animated files.
 *   - No EXIF orientation is applied (the reference applies none).
 *
 * Size limits: an image whose header claims more than MC_IMAGE_MAX_PIXELS pixels (PIL's
 * DecompressionBombError threshold, 2 * 89478485) or a side above MC_IMAGE_MAX_SIDE is
 * rejected before any pixel memory is allocated. Progressive JPEGs with more than
 * MC_IMAGE_MAX_JPEG_SCANS scans are rejected (libjpeg-turbo's advice against scan bombs).
 */
#ifndef MC_IMAGE_IMAGE_H
#define MC_IMAGE_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define MC_IMAGE_MAX_PIXELS 178956970LL /* PIL 9.4: 2 * MAX_IMAGE_PIXELS */
#define MC_IMAGE_MAX_SIDE 1000000       /* libpng's default user limit; JPEG stops at 65500 */
#define MC_IMAGE_MAX_JPEG_SCANS 1000

typedef struct mc_image {
    int w, h;
    uint8_t *rgb; /* [h][w][3] interleaved R,G,B, row-major, owned (free with mc_image_free) */
} mc_image;

/* Allocates an uninitialised w x h image (w, h >= 1, w*h <= MC_IMAGE_MAX_PIXELS). */
int mc_image_alloc(mc_image *im, int w, int h, mc_err *e);
/* Frees the pixels and zeroes the struct; safe on a zeroed or already freed image. */
void mc_image_free(mc_image *im);

/* Reads and decodes a JPEG, PNG or WebP file. Errors name the path: missing, directory, empty,
 * "not a JPEG, PNG or WebP image", "truncated PNG", "corrupt JPEG: ...", "image too large". */
int mc_image_load(const char *path, mc_image *out, mc_err *e);

/* Image formats, as bits so that callers can accept a set of them (io/walk). */
enum { MC_IMAGE_FORMAT_JPEG = 1, MC_IMAGE_FORMAT_PNG = 2, MC_IMAGE_FORMAT_WEBP = 4,
       MC_IMAGE_FORMAT_ALL = 7 };
/* The format that the first len bytes of a file announce (the signatures above; 12 bytes are
 * enough for every format), or 0 when they announce none. The one signature check of the
 * project: mc_image_decode dispatches on it, directory walkers filter with it. */
int mc_image_sniff(const void *head, size_t len);

/* Decodes buf[0..len) (JPEG, PNG or WebP by magic bytes); `name` is used in messages. */
int mc_image_decode(const void *buf, size_t len, const char *name, mc_image *out, mc_err *e);

/* Same with a caller-chosen pixel limit (<= MC_IMAGE_MAX_PIXELS), e.g. for fuzzing or
 * services that want tighter bounds. */
int mc_image_decode_limited(const void *buf, size_t len, const char *name, int64_t max_pixels,
                            mc_image *out, mc_err *e);

/* The two decoders (called by mc_image_decode after sniffing; no signature check of their own
 * beyond what the libraries do). */
int mc_image_decode_jpeg(const uint8_t *buf, size_t len, const char *name, int64_t max_pixels,
                         mc_image *out, mc_err *e);
int mc_image_decode_png(const uint8_t *buf, size_t len, const char *name, int64_t max_pixels,
                        mc_image *out, mc_err *e);
int mc_image_decode_webp(const uint8_t *buf, size_t len, const char *name, int64_t max_pixels,
                         mc_image *out, mc_err *e);

/* Shared size check: 0 if w x h is acceptable, else a "image too large" reason. */
int mc_image_check_size(int64_t w, int64_t h, int64_t max_pixels, const char *name, mc_err *e);

#endif
