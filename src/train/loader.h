/* loader.h - training batches from WebDataset shards, decoded on worker threads.
 *
 * Two kinds of shards (io/wds.h grouping, io/dr_sample.h members):
 *   reinforced (DataCompDR, open_clip_v2.patch preprocess_dr): per sample one random stored
 *     augmentation aug_idx of paug.json reapplied to the image (augment/augment.h) with its
 *     teacher image row image_emb[aug_idx]; the real caption (txt, capi = 0: one caption) with
 *     text_emb[0]; one random synthetic caption scapi of syn.json "syn_text" with
 *     text_emb[1 + scapi] (older layout: all captions in text_emb) or syn_text_emb[scapi];
 *   plain (lambda = 0): image + txt, a fresh RandomResizedCrop (open_clip's training
 *     transform: scale (0.9, 1), bicubic), no teacher rows.
 * MobileCLIP models take [0, 1] pixels (mean 0, std 1): no Normalize.
 *
 * Determinism: the stream of an epoch is the shards in an order permuted by (seed, epoch),
 * each read in tar order; the sample at stream position `index` draws its augmentation /
 * caption choices from mc_augment_rng(seed ^ epoch-mix, index) only. Rank r of `world` takes
 * the positions with index % world == r. So batches depend on (seed, epoch, index, rank,
 * world) and never on the thread count or timing: workers decode into a ring of slots and
 * the consumer takes the slots in stream order.
 * Bad samples (undecodable image, missing member, bad JSON, wrong teacher width, a corrupt
 * tar member) are skipped, counted and passed to `on_bad` (stream order, from mc_loader_next's
 * thread). An epoch without one usable sample is an error.
 * Resume: mc_loader_pos after a batch is where the next batch starts; opening at that
 * position gives the same following batches as continuing.
 */
#ifndef MC_TRAIN_LOADER_H
#define MC_TRAIN_LOADER_H

#include <stdint.h>

#include "augment/augment.h"
#include "core/error.h"

struct mc_tokenizer;

typedef struct mc_loader_pos {
    int64_t epoch, index;       /* next stream position to consume */
} mc_loader_pos;

typedef struct mc_loader_config {
    const char *spec;           /* shard spec, 'DIR/{0000..0099}.tar' (braceexpand) */
    int reinforced;             /* 1: DR shards with teacher rows; 0: image + txt */
    int teacher_dim;            /* D, sum of the teachers' widths (reinforced only) */
    int batch;                  /* samples per batch (this rank's) */
    int image_size;             /* R */
    int context;                /* T, token positions */
    const struct mc_tokenizer *tokenizer;
    int threads;                /* decoding threads (>= 1) */
    int queue;                  /* ring slots in samples (0: 4 batches) */
    size_t max_member;          /* tar member size limit (0: the tar reader's default) */
    uint64_t seed;
    int rank, world;            /* data-parallel sharding (0, 1 for one process) */
    mc_loader_pos start;
    void (*on_bad)(void *user, const char *msg);
    void *user;
} mc_loader_config;

/* One batch. Reinforced: tokens [2B,T] are the real captions then the synthetic ones and
 * teacher_text [2B,D] their rows; plain: tokens [B,T], no teacher arrays. */
typedef struct mc_batch {
    int B, R, T, D, n_sets;
    float *images;              /* [B,3,R,R] in [0, 1] */
    int32_t *tokens;            /* [n_sets*B, T] */
    float *teacher_image;       /* [B,D] or NULL */
    float *teacher_text;        /* [n_sets*B, D] or NULL */
    mc_loader_pos first, next;  /* stream position of its first sample; where the next batch starts */
} mc_batch;

typedef struct mc_loader_stats {
    int64_t samples;            /* usable samples delivered */
    int64_t bad;                /* skipped */
    int64_t epoch;              /* current epoch */
} mc_loader_stats;

typedef struct mc_loader mc_loader;

/* Checks the configuration, expands the shard list and starts the reader and workers. */
int mc_loader_open(mc_loader **out, const mc_loader_config *cfg, mc_err *e);
/* Allocates b for the loader's shapes (mc_batch_alloc_n: for B samples, e.g. G groups). */
int mc_batch_alloc(mc_batch *b, const mc_loader *l, mc_err *e);
int mc_batch_alloc_n(mc_batch *b, const mc_loader *l, int B, mc_err *e);
/* Copies src (B rows) into rows g*B .. g*B+B-1 of every array of dst (each caption set's
 * block too), as G ranks' batches lie in the gathered batch. */
void mc_batch_copy_group(mc_batch *dst, const mc_batch *src, int g);
void mc_batch_free(mc_batch *b);
/* The next batch (blocking until its samples are decoded). */
int mc_loader_next(mc_loader *l, mc_batch *b, mc_err *e);
mc_loader_stats mc_loader_get_stats(const mc_loader *l);
/* Stops and joins the threads, frees everything. NULL is fine. */
void mc_loader_close(mc_loader *l);

#endif
