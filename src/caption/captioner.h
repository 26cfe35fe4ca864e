/* captioner.h - images to synthetic captions, as DataCompDR's generator does it: open_clip's eval
 * preprocessing of the model config (bicubic shorter-side resize matching PIL, centre crop,
 * OpenAI mean/std), CoCa generation (caption/generate.h), decode and cut (caption/caption_text.h).
 * `num` captions per image: caption c of image k (k counted over the whole run) samples from
 * random stream k * num + c, so a run's captions depend on the seed only, not on the batch size
 * or the thread count. */
#ifndef MC_CAPTION_CAPTIONER_H
#define MC_CAPTION_CAPTIONER_H

#include <stdint.h>

#include "caption/generate.h"
#include "image/image.h"
#include "text/tokenizer.h"

typedef struct mc_captioner {
    mc_coca model;
    mc_tokenizer *tok;        /* owned */
    mc_caption_params params; /* generate()'s defaults on load; set method, top_p, seed, ... */
    int num;                  /* captions per image (1) */
} mc_captioner;

/* arch: a built-in open_clip name (coca_ViT-L-14, coca_ViT-B-32) or a model-config .json path;
 * vocab: a BPE vocabulary path, NULL for the built-in one. A model whose vocabulary is smaller
 * than CLIP's 49408 ids takes its last two ids as start and end (CLIP's layout). */
int mc_captioner_load(mc_captioner *c, const char *checkpoint, const char *arch, const char *vocab, mc_err *e);
void mc_captioner_free(mc_captioner *c);

/* Captions of images[0..B): captions[b * num + k] (malloc'd strings, the caller frees them);
 * first_index: the run-wide number of images[0]. Nothing is returned on failure. */
int mc_captioner_run(mc_captioner *c, const mc_image *images, int B, uint64_t first_index, char **captions, mc_err *e);

/* Where mc_captioner_run_shards sends its results. emit: the captions of one sample (key), in
 * shard order; a non-zero return stops the run. skip (may be NULL): a sample left out (no or an
 * undecodable image, a read error), with the reason. progress (may be NULL): images done. */
typedef struct mc_caption_sink {
    void *user;
    int (*emit)(void *user, const char *key, char *const *caps, int num, mc_err *e);
    void (*skip)(void *user, const char *reason);
    void (*progress)(void *user, long long done);
} mc_caption_sink;

/* Captions every sample of the WebDataset shards paths[0..n) whose image member is jpg, jpeg,
 * png or webp, `batch` images at a time (sample k of the run uses stream k, as
 * mc_captioner_run). Returns 0, or < 0 on a fatal error (out of memory, emit failing). */
int mc_captioner_run_shards(mc_captioner *c, const char *const *paths, int n, int batch, const mc_caption_sink *sink,
                            mc_err *e);

#endif
