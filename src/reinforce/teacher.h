/* teacher.h - the teacher ensemble of dataset reinforcement (paper section 3.1).
 *
 * A teacher is a CLIP model this project runs: an open_clip ViT CLIP (models/openclip.h; the
 * paper's two ViT-L-14, `openai` with QuickGELU and `datacomp_xl_s13b_b90k` with GELU) or a
 * MobileCLIP model (models/clip.h). Each teacher has its own eval preprocessing:
 *   open_clip:  Resize(R, bicubic) shorter side, CenterCrop(R), ToTensor, Normalize(mean, std)
 *               (OpenAI mean/std unless the config's preprocess_cfg says otherwise);
 *   MobileCLIP: Resize(R, bilinear), CenterCrop(R), ToTensor (no normalisation).
 * Images are given decoded (8-bit RGB of any size) or as the output of the DR augmentation (an
 * R x R uint8 crop): the same transform serves both, because on an R x R image the resize and
 * the crop are the identity, leaving ToTensor + Normalize, which is what the reference applies
 * to the augmented image. An augmented image of another size than a teacher's R goes through
 * that teacher's resize + crop.
 *
 * Ensemble embeddings: each teacher's features L2-normalised (F.normalize), concatenated in
 * teacher order -> one row of sum(dims) floats per image or text (DataCompDR: [openai |
 * datacomp] = 768 + 768). Texts are tokenised with the CLIP BPE at each teacher's context
 * length (77 for all of these).
 *
 * Checkpoints are state dicts (torch.save or safetensors) under open_clip's names, e.g. the
 * Hugging Face open_clip_pytorch_model.bin / open_clip_model.safetensors files. OpenAI's own
 * ViT-L-14.pt is a TorchScript archive, not a state dict: save open_clip's model built from it
 * (torch.save(model.state_dict())) once; fp16 tensors are converted at load.
 *
 * Work is batched (MC_TEACHER_BATCH images at a time, every teacher on the same batch);
 * the kernels use all OpenMP threads; preprocessing runs one image per thread.
 */
#ifndef MC_REINFORCE_TEACHER_H
#define MC_REINFORCE_TEACHER_H

#include <stdint.h>

#include "core/error.h"
#include "image/image.h"
#include "models/clip.h"
#include "models/openclip.h"
#include "text/tokenizer.h"

#define MC_TEACHER_BATCH 8

typedef enum mc_teacher_kind { MC_TEACHER_OPENCLIP = 0, MC_TEACHER_MOBILECLIP = 1 } mc_teacher_kind;

typedef struct mc_teacher {
    mc_teacher_kind kind;
    char name[160];                /* "FILE:ARCH", for messages */
    int dim;                       /* embedding width */
    int image_size, context;       /* R, text positions */
    mc_openclip oc;                /* kind OPENCLIP */
    mc_clip mc;                    /* kind MOBILECLIP (reparameterized) */
} mc_teacher;

typedef struct mc_teacher_ensemble {
    int count;
    mc_teacher *teachers;          /* [count], owned */
    int dim;                       /* sum of the teachers' dims */
} mc_teacher_ensemble;

/* Loads one teacher. arch: an open_clip model name (mc_oc_cfg_builtin_names) or the path of an
 * open_clip model config .json, or a MobileCLIP architecture (s0, s1, s2, b, mobileclip_*,
 * auto). The checkpoint is .pt or safetensors. Errors name the file and the problem. */
int mc_teacher_load(mc_teacher *t, const char *path, const char *arch, mc_err *e);
void mc_teacher_free(mc_teacher *t);

/* The teacher's eval transform of im -> chw [3, R, R]. */
int mc_teacher_preprocess(const mc_teacher *t, const mc_image *im, float *chw, mc_err *e);
/* The reference's path for an augmented image (apple/ml-mobileclip-dr scripts/gen.py): the DR
 * augmentation's uint8 output `aug` (any square size S), ToTensor and the teacher's Normalize at S
 * (open_clip: its mean/std, which the reference asserts equal the augmentation's; MobileCLIP:
 * none), then, when S differs from the teacher's R, torch's F.interpolate(mode="bicubic",
 * align_corners=False) of that tensor to R x R (cubic a = -0.75, borders clamped, no antialias).
 * scratch: 3 * S * S floats (unused when S == R). */
int mc_teacher_preprocess_augmented(const mc_teacher *t, const mc_image *aug, float *chw, float *scratch, mc_err *e);
/* F.interpolate(x [C, h, w], size=(oh, ow), mode="bicubic", align_corners=False) -> out [C, oh, ow]. */
void mc_interpolate_bicubic(const float *x, int C, int h, int w, float *out, int oh, int ow);
/* chw [B, 3, R, R] (preprocessed) -> out [B, dim], not normalised. */
int mc_teacher_encode_images(mc_teacher *t, const float *chw, int B, float *out, mc_err *e);
/* tokens [N, context] -> out [N, dim], not normalised. */
int mc_teacher_encode_tokens(mc_teacher *t, const int32_t *tokens, int N, float *out, mc_err *e);

void mc_teacher_ensemble_init(mc_teacher_ensemble *ens);
/* Appends a teacher; spec is "FILE:ARCH" (split at the last ':'). */
int mc_teacher_ensemble_add(mc_teacher_ensemble *ens, const char *path, const char *arch, mc_err *e);
int mc_teacher_ensemble_add_spec(mc_teacher_ensemble *ens, const char *spec, mc_err *e);
void mc_teacher_ensemble_free(mc_teacher_ensemble *ens);

/* Column offset of teacher i's block in an ensemble row. */
int mc_teacher_ensemble_offset(const mc_teacher_ensemble *ens, int i);

/* images[n] -> out [n, ens->dim]: per-teacher normalised, concatenated. */
int mc_teacher_ensemble_embed_images(mc_teacher_ensemble *ens, const mc_image *images, int n, float *out, mc_err *e);
/* The same for augmented images (mc_teacher_preprocess_augmented per teacher). */
int mc_teacher_ensemble_embed_augmented(mc_teacher_ensemble *ens, const mc_image *images, int n, float *out, mc_err *e);
/* texts[n] (UTF-8, NUL-terminated) -> out [n, ens->dim]. Errors name the failing text. */
int mc_teacher_ensemble_embed_texts(mc_teacher_ensemble *ens, const mc_tokenizer *tok, const char *const *texts,
                                    int n, float *out, mc_err *e);

#endif
