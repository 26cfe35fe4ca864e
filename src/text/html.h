/* html.h - HTML character references, as Python 3.11's html.unescape decodes them.
 *
 * Used twice by the CLIP text cleaning (open_clip's basic_clean) and by the ftfy
 * port (its unescape_html step, which has its own stricter rules; see ftfy.c).
 * The named references are the full WHATWG/HTML5 table (html_entities.inc).
 */
#ifndef MC_TEXT_HTML_H
#define MC_TEXT_HTML_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "text/unicode.h"

/* Looks up an entity name given as code points (e.g. "amp;" or the legacy "amp"):
 * returns the number of code points written to out (1 or 2), or 0 if unknown. */
int mc_html_entity(const uint32_t *name, size_t len, uint32_t out[2]);

/* Python's html.unescape(in[0..n)) appended to out (out must not alias in):
 *  - "&#NNN;" / "&#xHH;" (";" optional): code points, with the HTML5 replacements
 *    for 0x00, 0x0D and 0x80-0x9F, U+FFFD for surrogates and > U+10FFFF, and
 *    nothing for the other invalid code points (C0/C1 controls, U+FDD0-FDEF,
 *    U+xFFFE/xFFFF);
 *  - "&name;" from the HTML5 table, and the longest known legacy prefix for
 *    names without ";" (e.g. "&ampx" -> "&x", "&notit;" -> "¬it;").
 * A decimal reference with more than 4300 digits is an error, as in Python
 * (int() refuses such strings). */
int mc_html_unescape(const uint32_t *in, size_t n, mc_u32buf *out, mc_err *e);

#endif
