/* caption_text.h - generated token ids to caption text, as the DataCompDR generator
 * (apple/ml-mobileclip-dr scripts/gen.py) does it:
 *   open_clip.decode(ids).split("<end_of_text>")[0].split("<start_of_text>")[-1].split(".")[0].rstrip()
 * (decode: text/tokenizer.h; rstrip: Python's str.isspace characters). */
#ifndef MC_CAPTION_CAPTION_TEXT_H
#define MC_CAPTION_CAPTION_TEXT_H

#include <stdint.h>

#include "core/error.h"
#include "text/tokenizer.h"

/* ids[0..n) -> *out (malloc'd, NUL-terminated UTF-8). */
int mc_caption_text(const mc_tokenizer *t, const int32_t *ids, int n, char **out, mc_err *e);

/* The string part alone (text already decoded): cut in place, returns text. */
char *mc_caption_text_cut(char *text);

#endif
