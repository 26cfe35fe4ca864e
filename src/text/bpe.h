/* bpe.h - CLIP's byte-level BPE (open_clip SimpleTokenizer.bpe) on merge ranks.
 *
 * Vocabulary layout (49408 ids, as open_clip builds it): 0..255 the 256 byte symbols
 * in bytes_to_unicode order, 256..511 the same with "</w>", 512 + r the result of
 * merge r (r = 0..48893, the lines 2..48895 of the merges file), 49406
 * <start_of_text>, 49407 <end_of_text>.
 */
#ifndef MC_TEXT_BPE_H
#define MC_TEXT_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define MC_BPE_NMERGES 48894
#define MC_BPE_VOCAB 49408
#define MC_BPE_SOT 49406
#define MC_BPE_EOT 49407

typedef struct mc_bpe mc_bpe;

/* Parses a merges text (bpe_simple_vocab_16e6.txt, or a model hub's merges.txt):
 * line 1 is a header and is skipped, lines 2..48895 are "left right" pairs.  Fewer
 * lines, a line without exactly two symbols, a symbol that is not made of byte
 * symbols, or invalid UTF-8 is an error naming `what` and the line. */
mc_bpe *mc_bpe_load(const char *text, size_t len, const char *what, mc_err *e);
void mc_bpe_free(mc_bpe *b);

/* Checks a model hub vocab.json (token -> id) against the vocabulary built from
 * the merges: every entry must agree (the special tokens may be spelled
 * <|startoftext|>/<|endoftext|>), and all 49408 ids must be present. */
int mc_bpe_check_vocab_json(const mc_bpe *b, const char *json, size_t len, const char *what, mc_err *e);

/* BPE of one pre-tokenized piece given as its UTF-8 bytes (n >= 1): appends at
 * most `max` ids to ids[] (the piece may yield more; they are computed but not
 * stored) and returns the number of ids the piece yields, or < 0 on error.
 * Worst case O(n log n) in time and O(n) in memory: long words are fine. */
long mc_bpe_encode(const mc_bpe *b, const uint8_t *bytes, size_t n, int32_t *ids, size_t max, mc_err *e);

/* Token id of a vocabulary string given in the byte-symbol alphabet (UTF-8), or -1. */
int32_t mc_bpe_token_id(const mc_bpe *b, const char *s, size_t len);

/* open_clip SimpleTokenizer.decode: the ids' strings mapped back to bytes, decoded as UTF-8 with
 * errors='replace' (U+FFFD per maximal ill-formed subpart), "</w>" replaced by " "; the special
 * ids decode to "<start_of_text>" / "<end_of_text>". *out (NUL-terminated) is malloc'd. */
int mc_bpe_decode(const mc_bpe *b, const int32_t *ids, int n, char **out, size_t *out_len, mc_err *e);

#endif
