/* syn.h - synthetic captions for dataset reinforcement (paper section 3.1).
 *
 * A captioner's output as JSON lines, one object per sample:
 *   {"key": "<webdataset key>", "syn_text": ["caption", ...]}
 * (the shape apple/ml-mobileclip-dr's capgen job writes, keyed like the shards). Every line
 * is validated: UTF-8 (strict, as bytes.decode), a JSON object, "key" a non-empty string,
 * "syn_text" a non-empty array of strings without NUL bytes. A line that fails is counted
 * (bad_lines, the first reason kept in first_bad) and its key gets no captions, so its
 * sample is later skipped as "no synthetic captions"; other keys are counted (unknown_keys)
 * and ignored; a key given again replaces the earlier captions (as a dict update) and is
 * counted (duplicates). Blank lines are ignored. The store lives in memory (the captions
 * of the whole file: ~5 x 60 bytes per sample).
 *
 * mc_pyjson_dump_string writes a string as Python's json.dumps does (ensure_ascii: non-ASCII
 * as \uXXXX, surrogate pairs past U+FFFF), which is how the reference writes syn.json.
 */
#ifndef MC_REINFORCE_SYN_H
#define MC_REINFORCE_SYN_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/strlist.h"

typedef struct mc_syn_entry {
    char *key;
    int first, count;          /* captions[first .. first + count) of the store */
} mc_syn_entry;

typedef struct mc_syn_store {
    mc_strlist captions;
    mc_syn_entry *slots;       /* open addressing, cap a power of two; key NULL = empty */
    size_t cap, used;
    long long lines, bad_lines, unknown_keys, duplicates;
    char first_bad[512];
} mc_syn_store;

void mc_syn_init(mc_syn_store *s);
void mc_syn_free(mc_syn_store *s);
/* Reads a JSON-lines file. Only an unreadable file (or out of memory) is an error;
 * malformed lines are counted as above. */
int mc_syn_load(mc_syn_store *s, const char *path, mc_err *e);
/* One line (no newline); returns 0 when stored, 1 when counted as bad (reason in e), < 0 on
 * out of memory. `where` names the line in messages ("captions.jsonl:12"). */
int mc_syn_add_line(mc_syn_store *s, const char *line, size_t len, const char *where, mc_err *e);
/* Captions of `key`: the count (0 if none) and *caps pointing into the store. */
int mc_syn_find(const mc_syn_store *s, const char *key, char *const **caps);

/* FNV-1a 64 of the bytes of s: the hash of a sample key (synthetic-caption lookup and the
 * per-sample augmentation stream). */
uint64_t mc_key_hash(const char *s);

/* Appends json.dumps(s) (s UTF-8, len bytes) to buf[*n..cap); returns 0 or MC_E_ARG when it does
 * not fit or s is not UTF-8. */
int mc_pyjson_dump_string(const char *s, size_t len, char *buf, size_t cap, size_t *n);
/* {"syn_text": [c0, c1, ...]} as json.dumps writes it, malloc'd into *out. */
int mc_syn_json_write(char *const *caps, int n, char **out, size_t *len, mc_err *e);

#endif
