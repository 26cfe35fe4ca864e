/* job.h - the dataset reinforcement job (paper section 3.1; `mobileclip reinforce`).
 *
 * Input: WebDataset shards (an image member, `txt` the real caption, anything else). For every
 * sample, in shard order:
 *   - num_aug augmentation parameter sets drawn by mc_augment_sample from the generator
 *     seeded with (seed, mc_key_hash(key)): one stream per sample key, so the parameters do
 *     not depend on the thread count, the batch, the sharding or the sample's position;
 *   - the teacher-ensemble embeddings of the num_aug augmented images (each teacher's own
 *     preprocessing of the augmented image, mc_teacher_ensemble_embed_augmented), of the real
 *     caption and of each synthetic caption (from the mc_syn_store, else the input's own
 *     syn.json, else none);
 * written to DIR/<input shard file name> as DataCompDR stores it (apple/ml-mobileclip-dr's
 * TarWriter, read by ml-mobileclip's hf_dataset_example.py / open_clip_v2.patch):
 *   <key>.txt, .url.txt, .json and every other input member unchanged; the image members only
 *   with keep_images (the released DataCompDR holds url.txt instead of images); syn.json
 *   {"syn_text": [...]}; paug.json {"param_aug": [...]}; npz (float32, np.savez) or pth.gz
 *   (bfloat16, gzip'd torch.save) with image_emb [num_aug, D] and text_emb [1 + n_syn, D],
 *   row 0 the real caption (the released layout). D = the ensemble's width.
 * Samples are processed in batches of about batch_images augmented images (teachers batched,
 * OpenMP over decoding, augmentation and the kernels); memory is bounded by the batch.
 *
 * Output bytes depend only on the input shard, the teachers, the options and the seed (not on
 * the thread count or on which shards run together). Each output shard is written under a
 * temporary name, fsynced and renamed (mc_tar_writer_open_atomic); an existing output shard is
 * verified (tar readable to its end, a 10240-byte record multiple, every sample with a valid
 * paug.json of num_aug records and embeddings of num_aug x D) and then skipped, else redone.
 * Two input shards of one file name are refused (they would write one output). Shards are
 * partitioned over processes: shard k (in the expanded list) belongs to process
 * k % num_shards == shard_index.
 *
 * Bad samples are skipped and counted by reason (mc_reinforce_stats); the first message of
 * each reason is kept. An input shard that cannot be opened is counted and the job goes on.
 * Fatal (the job stops): the output directory cannot be written, an output shard cannot be
 * written, out of memory, a teacher failing on a batch.
 */
#ifndef MC_REINFORCE_JOB_H
#define MC_REINFORCE_JOB_H

#include <stdint.h>
#include <stdio.h>

#include "augment/augment.h"
#include "core/error.h"
#include "reinforce/syn.h"
#include "reinforce/teacher.h"
#include "text/tokenizer.h"

typedef enum mc_reinforce_skip {
    MC_RSKIP_READ,      /* corrupt or truncated tar data, oversize or duplicate member */
    MC_RSKIP_NO_IMAGE,  /* a key without an image member */
    MC_RSKIP_IMAGE,     /* undecodable image */
    MC_RSKIP_CAPTION,   /* no txt, or not valid UTF-8 */
    MC_RSKIP_SYN,       /* no synthetic captions for the key, or a malformed syn.json */
    MC_RSKIP_COUNT
} mc_reinforce_skip;

/* Short description of a reason ("undecodable image"). */
const char *mc_reinforce_skip_name(int reason);

typedef struct mc_reinforce_opts {
    const char *input;           /* shard spec, brace-expanded */
    const char *out_dir;
    int num_aug;                 /* >= 1 */
    int bf16;                    /* pth.gz instead of npz */
    uint64_t seed;
    int keep_images;
    int shard_index, num_shards; /* 0, 1: all shards */
    int batch_images;            /* augmented images per batch (default 32) */
    int progress;                /* progress line on stderr */
    mc_augment_config aug;       /* the augmentation (mc_augment_config_datacompdr) */
    const mc_syn_store *syn;     /* NULL: the input's syn.json when present */
} mc_reinforce_opts;

typedef struct mc_reinforce_stats {
    int shards_assigned, shards_done, shards_resumed, shards_failed;
    long long samples_read, samples_written, samples_resumed;
    long long skipped[MC_RSKIP_COUNT];
    char first[MC_RSKIP_COUNT][512];
    char first_shard_error[512];
    long long images_embedded, texts_embedded, bytes_written;
    double seconds;
} mc_reinforce_stats;

/* Defaults: num_aug 1, f32, seed 0, all shards, batch 32, the DataCompDR augmentation. */
void mc_reinforce_opts_init(mc_reinforce_opts *o);

/* Creates out_dir when missing and checks that a file can be created in it. */
int mc_reinforce_check_out_dir(const char *dir, mc_err *e);

/* Runs the job. Returns 0 when every assigned shard was written or verified (samples may have
 * been skipped), 1 when some input shard could not be read (counted in stats), < 0 on a fatal
 * error (message in e). */
int mc_reinforce_run(const mc_reinforce_opts *o, mc_teacher_ensemble *ens, const mc_tokenizer *tok,
                     mc_reinforce_stats *st, mc_err *e);

/* Verifies an output shard as the resume check does: 1 complete, 0 not (reason in e). */
int mc_reinforce_verify_shard(const char *path, int num_aug, int dim, long long *samples, mc_err *e);

/* The end-of-job summary (what was done, what was skipped and why). */
void mc_reinforce_print_summary(FILE *f, const mc_reinforce_stats *st);

#endif
