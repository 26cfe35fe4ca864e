/* tokenizer.h - the CLIP text tokenizer exactly as MobileCLIP uses it.
 *
 * MobileCLIP tokenizes with open_clip's SimpleTokenizer ("ViT-B-16" config,
 * bpe_simple_vocab_16e6.txt.gz, context length 77).  For a text it computes:
 *
 *   ftfy.fix_text (ftfy 6.3.1 defaults, see ftfy.h) -> html.unescape twice -> strip
 *   -> " ".join(text.split()) -> str.lower()          (Python 3.11 semantics)
 *   -> pieces of <start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|
 *      [\p{N}]|[^\s\p{L}\p{N}]+   (`regex` module, IGNORECASE)
 *   -> each piece's UTF-8 bytes through byte-level BPE (bpe.h); a piece that is
 *      exactly "<start_of_text>"/"<end_of_text>" is the special id
 *   -> [49406] + ids + [49407], cut to the context length with the last id forced to
 *      49407, zero padded.
 *
 * Thread safety: a loaded mc_tokenizer is immutable; mc_tokenizer_encode only uses
 * memory of its own call (there is no BPE cache), so any number of threads may
 * encode with one tokenizer at the same time.
 *
 * Cost: linear in the text (BPE O(n log n) per word); only the first
 * context-2 tokens are produced, so a megabyte of text costs one cleaning pass.
 */
#ifndef MC_TEXT_TOKENIZER_H
#define MC_TEXT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define MC_TOKENIZER_CONTEXT 77
#define MC_TOKEN_SOT 49406
#define MC_TOKEN_EOT 49407

typedef struct mc_tokenizer mc_tokenizer;

/* Loads the vocabulary from
 *   - bpe_simple_vocab_16e6.txt.gz (gzip, detected by its magic bytes) or its
 *     unpacked text,
 *   - a model hub pair: the path of merges.txt or vocab.json, or of a directory
 *     holding them (vocab.json, when present, is checked against the merges),
 *   - a directory holding bpe_simple_vocab_16e6.txt.gz.
 * Errors name the file and the problem. */
mc_tokenizer *mc_tokenizer_load(const char *path, mc_err *e);

/* Same from a merges file (gzip or plain text) already in memory. */
mc_tokenizer *mc_tokenizer_load_buffer(const void *buf, size_t len, mc_err *e);

/* The vocabulary compiled into the library: open_clip's bpe_simple_vocab_16e6.txt.gz, byte
 * for byte (data/ in the source tree, embedded at build time by tools/bin2c). */
mc_tokenizer *mc_tokenizer_load_builtin(mc_err *e);
/* Its gzip bytes. */
const unsigned char *mc_tokenizer_builtin_vocab(size_t *len);

void mc_tokenizer_free(mc_tokenizer *t);

/* Tokenizes utf8[0..len) into ids[0..context) (zero padded).  Returns the number
 * of ids before the padding (2..context), or < 0 with a reason: invalid UTF-8 (the
 * byte offset is named), or text that ftfy would need an unreasonable number of
 * passes for.  The text is counted, not NUL-terminated: NUL bytes are allowed and,
 * as in Python, removed by ftfy. */
int mc_tokenizer_encode_ctx(const mc_tokenizer *t, const char *utf8, size_t len, int32_t *ids, int context,
                            mc_err *e);

/* The usual context of 77. */
int mc_tokenizer_encode(const mc_tokenizer *t, const char *utf8, size_t len, int32_t ids[MC_TOKENIZER_CONTEXT],
                        mc_err *e);

/* The cleaned text the pieces are cut from (after ftfy, html.unescape, whitespace
 * collapse and lower-casing), as NUL-terminated UTF-8 in *out (free() it).  For
 * tests and debugging. */
int mc_tokenizer_clean(const mc_tokenizer *t, const char *utf8, size_t len, char **out, size_t *out_len, mc_err *e);

/* open_clip's decode(ids): see mc_bpe_decode. *out is malloc'd, NUL-terminated. */
int mc_tokenizer_decode(const mc_tokenizer *t, const int32_t *ids, int n, char **out, mc_err *e);

#endif
