/* dr_sample.h - the members of a DataCompDR sample (MobileCLIP's reinforced data).
 *
 * Layout, as apple/ml-mobileclip-dr's TarWriter writes it and open_clip_v2.patch /
 * hf_dataset_example.py read it (webdataset keys, one sample per key):
 *   jpg | png | jpeg | webp  the image (the loader takes the first present in that order)
 *   txt                      the real caption (UTF-8)
 *   url.txt                  the source URL
 *   json                     everything else (uid, sha256, ...)
 *   syn.json                 {"syn_text": ["caption", ...], ...} - every key starting with
 *                            "syn_text" (or containing "_captions") holds a caption list
 *   paug.json                {"param_aug": [p0, p1, ...]} one compressed augmentation per
 *                            stored image embedding; the Hugging Face copy stores the list
 *                            as a JSON string ({"param_aug": "[[...], ...]"}): both accepted
 *   npz                      float32 embeddings: image_emb [n_aug, D], text_emb [T, D] with
 *                            row 0 the real caption and (older layout) rows 1.. the synthetic
 *                            captions, or, newer, a separate syn_text_emb [n_syn, D]
 *   pth.gz                   the same dict as a gzip'd torch.save pickle of bfloat16 tensors
 *                            (the DataCompDR-12M-bf16 storage; the loader prefers npz)
 * D is the sum of the teachers' embedding widths. JSON members must be UTF-8; duplicate
 * object keys resolve to the last one, as Python's json does.
 * Errors: one line naming the member ("shard.tar: sample 'k': syn.json: ...") and the problem.
 */
#ifndef MC_IO_DR_SAMPLE_H
#define MC_IO_DR_SAMPLE_H

#include <stddef.h>

#include "core/error.h"
#include "core/strlist.h"
#include "io/json.h"
#include "io/wds.h"

#define MC_DR_MAX_GUNZIP ((size_t)1 << 30)

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF), as bytes.decode. */
int mc_utf8_valid(const void *s, size_t n);

/* txt / url.txt: a NUL-terminated malloc'd copy after UTF-8 validation (a NUL byte inside
 * is an error too). */
int mc_dr_parse_text(const void *buf, size_t len, const char *name, char **out, mc_err *e);
/* json: any JSON value. */
int mc_dr_parse_json(const void *buf, size_t len, const char *name, mc_json **out, mc_err *e);
/* syn.json: appends the strings of array `key` (NULL: "syn_text") to out. An absent key, a
 * non-array, a non-string item, an empty list or a caption with a NUL is an error. */
int mc_dr_parse_syn(const void *buf, size_t len, const char *name, const char *key, mc_strlist *out, mc_err *e);

/* paug.json: the list of compressed augmentation parameter sets. */
typedef struct mc_dr_paug {
    mc_json *root;           /* the member */
    mc_json *inner;          /* the parsed string form, or NULL */
    const mc_json *list;     /* the array (into root or inner) */
    int count;               /* >= 1 */
} mc_dr_paug;
int mc_dr_parse_paug(const void *buf, size_t len, const char *name, mc_dr_paug *p, mc_err *e);
static inline const mc_json *mc_dr_paug_at(const mc_dr_paug *p, int i) { return mc_json_at(p->list, i); }
void mc_dr_paug_free(mc_dr_paug *p);

/* Embeddings, converted to float32 rows. */
typedef struct mc_dr_emb {
    int dim;                 /* D */
    int n_image;
    float *image_emb;        /* [n_image, D] */
    int n_text;
    float *text_emb;         /* [n_text, D] */
    int n_syn;               /* 0 when absent */
    float *syn_text_emb;     /* [n_syn, D] or NULL */
} mc_dr_emb;
void mc_dr_emb_free(mc_dr_emb *m);
/* npz: float32/float16/float64 arrays image_emb, text_emb and optionally syn_text_emb, all
 * 2-D with one width. */
int mc_dr_parse_npz(const void *buf, size_t len, const char *name, mc_dr_emb *out, mc_err *e);
/* pth.gz: gunzip (at most MC_DR_MAX_GUNZIP bytes) then torch.save's dict of tensors of any
 * float dtype (bfloat16 in the released data). */
int mc_dr_parse_pth_gz(const void *buf, size_t len, const char *name, mc_dr_emb *out, mc_err *e);
/* Writers (malloc'd *out): npz with float32 arrays (stored, as np.savez), or pth.gz with
 * bfloat16 tensors (rounded to nearest even) as the reference's --bfloat16 writer. The
 * syn_text_emb array is written only when n_syn > 0. */
int mc_dr_encode_npz(const mc_dr_emb *m, unsigned char **out, size_t *out_len, mc_err *e);
int mc_dr_encode_pth_gz(const mc_dr_emb *m, unsigned char **out, size_t *out_len, mc_err *e);

/* Conveniences over a webdataset sample (member lookups in the reference's order). */
const mc_wds_member *mc_dr_sample_image(const mc_wds_sample *s); /* jpg, png, jpeg, webp */
/* The embeddings from "npz" if present, else "pth.gz"; MC_E_FORMAT if neither. */
int mc_dr_sample_emb(const mc_wds_sample *s, mc_dr_emb *out, mc_err *e);

#endif
