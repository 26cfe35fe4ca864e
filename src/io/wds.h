/* wds.h - WebDataset samples: tar members grouped by key, over a list of shards.
 *
 * Grouping is webdataset's (tariterators.py: tar_file_iterator, base_plus_ext,
 * group_by_keys with lcase=True, one end-of-shard marker per shard):
 *   - only regular files are seen; names without '/' that start and end with "__", and names
 *     whose first path component is "__*__" (skip_meta), are skipped;
 *   - a name splits as the regex ^((?:.*[/]|)[^.]+)[.]([^/]*)$: key = everything up to the
 *     first dot of the file name (directories may contain dots), extension = the rest
 *     ("a.b/c.seg.npz" -> key "a.b/c", ext "seg.npz"); names that do not match (no dot in
 *     the file name, ...) are ignored; the extension is lower-cased (ASCII letters only:
 *     Python lowers other letters too);
 *   - a new sample starts whenever the key differs from the previous member's key (so a key
 *     coming back later is a new sample) and at the end of every shard.
 * Errors are per sample and skippable: mc_wds_next returns a negative code with a one-line
 * reason naming the shard, the byte offset and the key, and the next call goes on:
 *   - a member repeated within a sample (webdataset raises "duplicate file name"), a member
 *     over the size limits: that whole sample is reported instead of returned;
 *   - a corrupt or truncated tar (bad checksum, short data, ...): the rest of that shard is
 *     skipped and the sample being assembled is dropped (its members may be incomplete);
 *     webdataset's handler would instead silently stop or carry the sample over;
 *   - a shard that cannot be opened: that shard is skipped.
 * Memory: one sample (a copy of its members, at most max_sample bytes) plus the tar
 * reader's one-member buffer. A returned sample is valid until the next call.
 *
 * The writer side (mc_wds_write_sample) writes a sample's members as webdataset's TarWriter
 * does: "<key>.<ext>" in sorted extension order.
 */
#ifndef MC_IO_WDS_H
#define MC_IO_WDS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/strlist.h"
#include "io/tar.h"

#define MC_WDS_MAX_MEMBERS 1024

typedef struct mc_wds_member {
    const char *ext;            /* lower-cased extension, e.g. "jpg", "syn.json" */
    const unsigned char *data;  /* size bytes (followed by a NUL not counted in size) */
    size_t size;
} mc_wds_member;

typedef struct mc_wds_sample {
    const char *key;
    const char *shard;          /* the shard's path (webdataset's __url__) */
    int shard_index;            /* in the reader's list */
    uint64_t offset;            /* byte offset of its first member's header in the shard */
    int count;
    mc_wds_member *members;     /* in tar order */
} mc_wds_sample;

/* The member with extension `ext` (exact, lower case), or NULL. */
const mc_wds_member *mc_wds_sample_find(const mc_wds_sample *s, const char *ext);

/* webdataset's base_plus_ext on name[0..n): returns 1 and the key length (the extension
 * starts at name + *key_len + 1) or 0 if the name has no key/extension split. */
int mc_wds_split_name(const char *name, size_t n, size_t *key_len);
/* 1 if tar_file_iterator skips this name as metadata. */
int mc_wds_is_meta(const char *name, size_t n);

typedef struct mc_wds_options {
    size_t max_member;          /* per member; 0: MC_TAR_DEFAULT_MAX_MEMBER */
    size_t max_sample;          /* all members of a sample; 0: same as max_member */
} mc_wds_options;

typedef struct mc_wds_reader {
    mc_strlist shards;
    int next_shard;             /* index of the next shard to open */
    int cur_shard;              /* index of the open one, -1 if none */
    mc_tar_reader tar;
    mc_wds_options opt;
    int pending;                /* the tar reader's current member starts the next sample */
    mc_tar_member pend;         /* that member (its data is still the tar reader's) */
    int pending_bad;            /* ... and it was an oversize member (message in pending_err) */
    mc_err pending_err;
    int yielded;                /* the last call returned a sample: reset before building */
    /* the sample being assembled */
    char *key;
    size_t key_cap;
    uint64_t offset;
    int count;
    size_t *ext_off, *data_off, *sizes;
    int members_cap;
    unsigned char *arena;
    size_t arena_len, arena_cap;
    mc_wds_member *members;
    int bad;                    /* the sample is reported instead of returned */
    mc_err bad_err;
    /* counters */
    long long samples, errors;
} mc_wds_reader;

/* Iterates the shards paths[0..n) in order (copied). */
int mc_wds_open(mc_wds_reader *r, const char *const *paths, int n, const mc_wds_options *opt, mc_err *e);
/* Same with a shard spec expanded by mc_shard_list_expand ('DIR/{00000..00009}.tar'). */
int mc_wds_open_spec(mc_wds_reader *r, const char *spec, const mc_wds_options *opt, mc_err *e);
/* 1: s holds the next sample; 0: all shards done; < 0: a sample or shard failed (reason in
 * e), call again to continue. */
int mc_wds_next(mc_wds_reader *r, mc_wds_sample *s, mc_err *e);
void mc_wds_close(mc_wds_reader *r);

/* Writes members[0..n) of sample `key` as "<key>.<ext>" tar members, sorted by extension.
 * Refuses a key whose file name has a dot or that is empty, an empty or duplicate
 * extension, or one with a '/', since those would not read back as the same sample. */
int mc_wds_write_sample(mc_tar_writer *w, const char *key, const mc_wds_member *members, int n, mc_err *e);

#endif
