/* pyrepr.h - Python's repr() of a float, which is what json.dumps writes for it.
 *
 * The shortest decimal string that reads back as the same double (round-trip), in fixed
 * notation with at least one fractional digit ("7.0", "-0.26999998092651367") when the
 * decimal exponent is in [-4, 16), otherwise scientific with a signed two-digit-minimum
 * exponent ("1e-05", "1.5e+16"). Lets JSON written here match the bytes the reference's
 * Python writes (e.g. DataCompDR's paug.json).
 */
#ifndef MC_IO_PYREPR_H
#define MC_IO_PYREPR_H

#include <stddef.h>

#define MC_PYREPR_MAX 32 /* enough for any double, NUL included */

/* Writes repr(v) into out (NUL-terminated) and returns its length. Non-finite values, which
 * JSON cannot hold, are written as "null". */
int mc_pyrepr_double(double v, char out[MC_PYREPR_MAX]);

#endif
