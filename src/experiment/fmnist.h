/* fmnist.h - the Fashion-MNIST experiment's data: noisy "web alt-text" captions, caption
 * quality by class-synonym matching, and the IDX -> WebDataset shard converter.
 *
 * Captions (docs/EXPERIMENT.md has the full process): each sample's caption is a function of
 * (seed, split, index, label, pixels) only, drawn from its own counter-based random stream, so
 * any subset, order or sharding gives the same caption for the same sample. Of the captions:
 *   MC_FMNIST_P_WRONG  name another item (half of them a look-alike class) and not the true one,
 *   MC_FMNIST_P_NONE   name no item at all (irrelevant alt-text: "view larger", "IMG_2041"...),
 *   MC_FMNIST_P_MIXED  name the true item and another one ("tee and jeans"),
 *   the rest           name the true item only,
 * with varied phrasing (templates, per-class synonyms, case), attributes (colour from the
 * image's brightness, sometimes a wrong colour; materials and styles, often implausible) and
 * irrelevant words ("free shipping", "sku 4821"). None is ever the bare class name as a label.
 */
#ifndef MC_EXPERIMENT_FMNIST_H
#define MC_EXPERIMENT_FMNIST_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define MC_FMNIST_CLASSES 10
#define MC_FMNIST_SIDE 28
#define MC_FMNIST_CAPTION_MAX 256 /* bytes, NUL included */

/* The documented caption rates (fractions of captions). */
#define MC_FMNIST_P_WRONG 0.15
#define MC_FMNIST_P_NONE 0.10
#define MC_FMNIST_P_MIXED 0.05
#define MC_FMNIST_P_WRONG_COLOUR 0.30 /* of the captions that give a colour */

/* The dataset's class names (as torchvision's FashionMNIST.classes): "T-shirt/top", ... */
extern const char *const mc_fmnist_class_names[MC_FMNIST_CLASSES];

/* Which random stream a caption comes from (so the test set's captions differ from any
 * training caption process draw). */
typedef enum mc_fmnist_split { MC_FMNIST_TRAIN = 0, MC_FMNIST_TEST = 1 } mc_fmnist_split;

/* Writes the caption of sample `index` (of class `label`, grey pixels px[28*28]) into
 * out[MC_FMNIST_CAPTION_MAX]; *named (may be NULL) receives the bit mask of the classes the
 * generator chose to name (bit c = class c), which mc_fmnist_caption_classes must recover. */
void mc_fmnist_caption(uint64_t seed, mc_fmnist_split split, uint64_t index, int label, const uint8_t *px,
                       char *out, uint32_t *named);

/* The classes a caption names, as a bit mask: case-insensitive, punctuation as spaces, whole
 * words, the longest synonym at each word ("t-shirt" is a tee, not a shirt; "sweatshirt" a
 * pullover), an optional plural "s"/"es". Works on any text (synthetic captions too). */
uint32_t mc_fmnist_caption_classes(const char *text, size_t len);

/* The k-th synonym of class c in matching form ("t shirt", "tee", ...), NULL past the last. */
const char *mc_fmnist_synonym(int c, int k);

typedef enum mc_caption_kind {
    MC_CAPTION_RIGHT = 0, /* names the true item only */
    MC_CAPTION_WRONG = 1, /* names other items only */
    MC_CAPTION_NONE = 2,  /* names no item */
    MC_CAPTION_MIXED = 3, /* names the true item and others */
} mc_caption_kind;
mc_caption_kind mc_caption_kind_of(uint32_t named, int label);
extern const char *const mc_caption_kind_names[4]; /* "right", "wrong", "none", "mixed" */

typedef struct mc_caption_quality {
    long long n;
    long long kind[4]; /* by mc_caption_kind */
} mc_caption_quality;
/* Counts one caption of an image of class `label`. */
void mc_caption_quality_add(mc_caption_quality *q, const char *text, size_t len, int label);
/* Fraction of captions that name the right item (right only; mixed ones not counted). */
double mc_caption_quality_right(const mc_caption_quality *q);

/* Caption quality of the captions of WebDataset shards (spec as mc_wds_open_spec) against each
 * sample's class (member "cls"). Member `ext` holds the captions: one per line, or, when ext
 * is "json" or ends in ".json" (DataCompDR's "syn.json"), a JSON string, an array of strings,
 * or an object whose "syn_text" is either. */
int mc_caption_quality_shards(const char *spec, const char *ext, mc_caption_quality *q, mc_err *e);

/* ---- shards ---- */

typedef struct mc_fmnist_shards_opts {
    const char *data_dir;  /* the four IDX files (Debian: /usr/share/datasets/fashion-mnist) */
    const char *out_dir;   /* created if missing */
    uint64_t seed;
    int per_shard;         /* samples per shard (default 5000) */
    int heldout;           /* the last `heldout` training images go to heldout-*.tar (default 5000) */
    int limit;             /* 0: all; else the first `limit` samples of each split */
} mc_fmnist_shards_opts;

typedef struct mc_fmnist_split_stats {
    int samples, shards;
    long long bytes;             /* of the shard files */
    mc_caption_quality quality;  /* of the written captions */
} mc_fmnist_split_stats;

typedef struct mc_fmnist_shards_stats {
    mc_fmnist_split_stats train, heldout, test;
} mc_fmnist_shards_stats;

/* Writes out_dir/{train,heldout,test}-NNNNN.tar: per sample "KEY.cls" (the class number, for
 * evaluation only), "KEY.png" (the 28x28 grey image, unchanged) and "KEY.txt" (its caption),
 * KEY the image's index in its IDX file (5 digits). Each shard is written atomically; shards of
 * a split numbered past the last one written (left by an earlier, larger run) are removed. */
int mc_fmnist_write_shards(const mc_fmnist_shards_opts *o, mc_fmnist_shards_stats *st, mc_err *e);

/* shards/manifest.json: the options and the statistics of a conversion, so a re-run can reuse
 * the shards (experiment fmnist --reuse). Written atomically after the shards. */
int mc_fmnist_write_manifest(const mc_fmnist_shards_opts *o, const mc_fmnist_shards_stats *st, mc_err *e);
/* 1 (st filled) when out_dir/manifest.json records a conversion with the same data folder,
 * seed, limit, shard size and held-out slice, and every shard it lists exists with the size it
 * records; 0 when not (no manifest, other options, a missing or changed shard); < 0 on a
 * manifest that cannot be read or parsed. */
int mc_fmnist_read_manifest(const mc_fmnist_shards_opts *o, mc_fmnist_shards_stats *st, mc_err *e);
/* The same over the manifest's text (`name` for messages); the shard files are still checked. */
int mc_fmnist_parse_manifest(const char *text, size_t len, const char *name, const mc_fmnist_shards_opts *o,
                             mc_fmnist_shards_stats *st, mc_err *e);

#endif
