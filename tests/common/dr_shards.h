/* dr_shards.h - small reinforced (DataCompDR-layout) WebDataset shards for the training tests.
 *
 * Sample k of shard s (key "s%02d_%04d") holds: one of the small PNGs of tests/data/bicubic
 * (chosen by k) as "png", the caption "a photo number k of shard s" as "txt", syn.json with
 * N_SYN captions "synthetic caption j of sample s k", paug.json with N_AUG augmentations
 * sampled at the requested size, and npz with image_emb [N_AUG, D], text_emb [1 + N_SYN, D]
 * (older layout: the synthetic rows follow the real one). Every teacher row is unit norm per
 * teacher half and starts with a tag identifying it: row of augmentation a: first element
 * 0.01 * (a + 1), real caption 0.5, synthetic caption j: 0.01 * (j + 1) + 0.2, so a test can
 * tell which row the loader chose. `bad` of the samples are broken on purpose, cycling over:
 * an undecodable image, a missing syn.json, teacher rows of the wrong width. */
#ifndef MC_TEST_DR_SHARDS_H
#define MC_TEST_DR_SHARDS_H

#define MC_TEST_DR_N_AUG 3
#define MC_TEST_DR_N_SYN 4

/* Writes dir/{00..n_shards-1}.tar with per_shard samples each, D = 2 * half; the bad samples
 * are the ones with k % bad_every == bad_every - 1 (bad_every 0: none). Dies on failure. */
void mc_test_write_dr_shards(const char *dir, int n_shards, int per_shard, int half, int aug_size, int bad_every);
/* Whether sample k of a shard is broken (for counting). */
int mc_test_dr_is_bad(int k, int bad_every);

#endif
