/* ftfy.h - a port of ftfy 6.3.1's fix_text() with its default configuration.
 *
 * open_clip cleans every caption with ftfy.fix_text before tokenizing, so the
 * token ids depend on it.  What is ported (the complete default pipeline):
 *   fix_text: per line (and per 10^6 code points), HTML unescaping switched off
 *     for this and all later lines once a line contains '<'; then repeat until
 *     nothing changes:
 *   unescape_html      ftfy's own rules: "&name;" from the HTML5 table, all-caps
 *                      variants of lower-case names ("&EACUTE;" -> "É"), "&#..;"
 *   fix_encoding       mojibake repair: the "badness" heuristic (is_bad), re-encoding
 *                      in latin-1, sloppy windows-1252/1251/1250/1253/1254/1257,
 *                      iso-8859-2, macroman, cp437 and decoding as UTF-8 (or its
 *                      CESU-8/Java variants), with restore_byte_a0 and
 *                      replace_lossy_sequences; decode_inconsistent_utf8 for embedded
 *                      mojibake; latin-1 -> windows-1252; fix_c1_controls
 *   fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes,
 *   fix_line_breaks, remove_terminal_escapes, remove_control_chars, NFC.
 * fix_surrogates has nothing to do: our text never holds surrogates (input is
 * strict UTF-8 and no step can create one).  Python quirks are replayed where they
 * change results, e.g. the utf-8-variants codec swallowing a final "\n" after C0/ED
 * (its regexes' `$` matches before a final newline).
 *
 * Verified against ftfy 6.3.1 on Python 3.11 (ad hoc, not part of the build): all
 * texts of ftfy's own test-case files, ~90,000 random mojibake/HTML/control-char
 * texts and the libFuzzer corpus; is_bad alone on 400,000 random strings.
 *
 * Deviation from Python, by design: the fixing loops get a work budget of 24
 * passes over the input plus 2^20 code points.  Text that needs more (e.g. a
 * megabyte of HTML escaped 250,000 times over) is refused with an error instead of taking
 * quadratic time; ftfy itself would loop on.
 */
#ifndef MC_TEXT_FTFY_H
#define MC_TEXT_FTFY_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "text/unicode.h"

typedef struct mc_ftfy mc_ftfy;

/* Derived tables (encoders for the single-byte codecs, width map); immutable after
 * creation, so one mc_ftfy can serve any number of threads. */
mc_ftfy *mc_ftfy_new(mc_err *e);
void mc_ftfy_free(mc_ftfy *f);

/* ftfy.fix_text(in[0..n)) -> out (replaced; must not alias in). */
int mc_ftfy_fix_text(const mc_ftfy *f, const uint32_t *in, size_t n, mc_u32buf *out, mc_err *e);

/* ftfy.badness.is_bad: does the text look like it contains mojibake? (exposed for tests) */
int mc_ftfy_is_bad(const uint32_t *t, size_t n);

#endif
