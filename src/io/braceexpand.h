/* braceexpand.h - shard list patterns as webdataset expands them.
 *
 * mc_brace_expand ports the `braceexpand` package (0.1.7, escape=True) that webdataset uses:
 * integer ranges {a..b[..step]} in either direction (negative numbers allowed; when either
 * end other than "0"/"-0" starts with 0 or -0 every number is zero-padded to the longer
 * end's length, sign included: '{07..10}' -> 07 08 09 10, '{-01..1}' -> -01 000 001),
 * letter ranges {a..e[..step]} over A-Z followed by a-z, comma lists {x,y,} (items may be
 * empty and nest), any number of braces (the cartesian product, last brace fastest), a
 * brace that is neither kept literally with its contents expanded ('{abc}' -> '{abc}'),
 * backslash escapes removed at the end ('\{' -> '{'). Unbalanced braces are an error, as
 * in braceexpand. Limits (an error, never a huge allocation): at most MC_BRACE_MAX_RESULTS
 * strings of MC_BRACE_MAX_BYTES in total, numbers of at most 18 digits, nesting of at
 * most 64 braces. Numbers are ASCII digits only (Python's \d also takes other scripts).
 *
 * mc_shard_list_expand is webdataset's expand_urls without environment substitution:
 * the spec is split at "::" and each part brace-expanded, in order.
 */
#ifndef MC_IO_BRACEEXPAND_H
#define MC_IO_BRACEEXPAND_H

#include "core/error.h"
#include "core/strlist.h"

#define MC_BRACE_MAX_RESULTS 1000000
#define MC_BRACE_MAX_BYTES ((size_t)64 << 20)

/* Appends the expansions of `pattern` to out (an initialised list). On error out is
 * left as it was. */
int mc_brace_expand(const char *pattern, mc_strlist *out, mc_err *e);
int mc_shard_list_expand(const char *spec, mc_strlist *out, mc_err *e);

#endif
