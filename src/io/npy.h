/* npy.h - NumPy .npy arrays and .npz archives (read and write), no Python.
 *
 * .npy (numpy/lib/format.py): "\x93NUMPY", major, minor, a little-endian header length
 * (u16 for 1.0, u32 for 2.0 and 3.0), then a Python dict literal
 * {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } padded with spaces and a
 * newline, then the raw data. Read: versions 1.0, 2.0, 3.0 (UTF-8 header), the header parsed
 * as the literal it is (either quote style, any whitespace, trailing commas), exactly the
 * three keys numpy requires, shape a tuple of non-negative ints, a header of at most 10000
 * bytes (numpy's max_header_size), data at least numel * itemsize bytes (extra bytes are
 * ignored as np.load does). Types: '<f4' '<f2' '<f8' '<i8' '<i4' '<i2' '<u8' '<u4' '<u2'
 * '|i1' '|u1' '|b1' (also spelled with '=' or '|' where numpy would accept them).
 * One-line errors name the file for: big-endian ('>'), Fortran order (more than one
 * dimension), object arrays ('|O', pickled data), structured or other dtypes, more than
 * MC_MAX_DIMS dimensions, truncation, bad header syntax.
 * Write: byte-identical to np.save for these dtypes (sorted keys, repr'd shape, 21-digit
 * growth padding, 64-byte alignment, version 1.0 unless the header needs 2.0).
 *
 * .npz (np.savez / np.savez_compressed): a zip of "<name>.npy" members, stored or
 * deflated, read through io/zip (CRC checked). Looking up `name` tries the member `name`
 * then `name.npy`, as NpzFile does. Writing produces a stored zip like np.savez.
 *
 * bfloat16: numpy has no bfloat16; some tools store its bit patterns as '<u2' or '<i2'.
 * mc_npy_to_f32 converts those as bfloat16 when asked. (DataCompDR's own bf16 files are
 * torch.save pickles, see io/dr_sample.h.)
 */
#ifndef MC_IO_NPY_H
#define MC_IO_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/tensor.h"
#include "io/zip.h"

#define MC_NPY_MAX_HEADER 10000

typedef enum mc_npy_type {
    MC_NPY_F32, MC_NPY_F16, MC_NPY_F64, MC_NPY_I8, MC_NPY_U8, MC_NPY_I16, MC_NPY_U16,
    MC_NPY_I32, MC_NPY_U32, MC_NPY_I64, MC_NPY_U64, MC_NPY_BOOL, MC_NPY_TYPE_COUNT
} mc_npy_type;

typedef struct mc_npy {
    mc_npy_type type;
    int ndim;
    int64_t shape[MC_MAX_DIMS];
    int64_t numel;
    const void *data;        /* into the parsed buffer (possibly unaligned) */
    size_t nbytes;           /* numel * itemsize */
    int major, minor;        /* format version read */
} mc_npy;

const char *mc_npy_descr(mc_npy_type t); /* "<f4", "|u1", ... */
size_t mc_npy_itemsize(mc_npy_type t);

/* Parses buf[0..len); a->data points into buf. */
int mc_npy_parse(const void *buf, size_t len, const char *name, mc_npy *a, mc_err *e);

/* Encodes an array as .npy into a malloc'd buffer (*out, *out_len). version: 0 chooses as
 * np.save does (1.0, else 2.0), or 1, 2, 3 to force one. */
int mc_npy_encode(mc_npy_type t, int ndim, const int64_t *shape, const void *data, int version,
                  unsigned char **out, size_t *out_len, mc_err *e);

/* Element i (row-major) as a double (exact except 64-bit integers beyond 2^53).
 * u16_as_bf16: read '<u2'/'<i2' data as bfloat16 bit patterns. */
double mc_npy_get_f64(const mc_npy *a, int64_t i, int u16_as_bf16);
/* Every element as float32 into dst[a->numel] (through double for the wider types). */
void mc_npy_to_f32(const mc_npy *a, int u16_as_bf16, float *dst);

/* ---- .npz ---- */

typedef struct mc_npz {
    mc_zip zip;
    void **owned;            /* inflated members */
    int nowned;
    const char *name;
} mc_npz;

int mc_npz_open(mc_npz *z, const void *buf, size_t len, const char *name, mc_err *e);
/* The array called `key` (see above); MC_E_FORMAT "no array 'key'" if absent. The data
 * stays valid until mc_npz_close. */
int mc_npz_get(mc_npz *z, const char *key, mc_npy *a, mc_err *e);
int mc_npz_has(const mc_npz *z, const char *key);
void mc_npz_close(mc_npz *z);

typedef struct mc_npz_writer {
    unsigned char *buf;
    size_t len, cap;
    struct mc_npz_entry *entries;
    int count, cap_entries;
    int failed;
} mc_npz_writer;

void mc_npz_writer_init(mc_npz_writer *w);
/* Adds the member "<key>.npy" (key: 1..200 bytes, unique). */
int mc_npz_writer_add(mc_npz_writer *w, const char *key, mc_npy_type t, int ndim, const int64_t *shape,
                      const void *data, mc_err *e);
/* Appends the central directory and hands the archive over (*out, malloc'd); w is reset. */
int mc_npz_writer_finish(mc_npz_writer *w, unsigned char **out, size_t *out_len, mc_err *e);
void mc_npz_writer_free(mc_npz_writer *w);

#endif
