/* mobileclip.h - public C API of mobileclip.c
 *
 * MobileCLIP (Vasu et al., CVPR 2024) image and text embeddings in plain C.
 *
 *   mobileclip_params p = mobileclip_default_params();
 *   p.vocab_path = "bpe_simple_vocab_16e6.txt.gz";          // needed for text
 *   char err[512];
 *   mobileclip_ctx *ctx = mobileclip_init_from_file("mobileclip_s0.pt", &p, err, sizeof err);
 *   if (!ctx) { fprintf(stderr, "%s\n", err); return 1; }
 *   float img[512], txt[512];
 *   const char *path = "cat.jpg", *text = "a photo of a cat";
 *   if (mobileclip_encode_image_files(ctx, &path, 1, img, 1) < 0 ||
 *       mobileclip_encode_texts(ctx, &text, 1, txt, 1) < 0)
 *       fprintf(stderr, "%s\n", mobileclip_last_error(ctx));
 *   mobileclip_free(ctx);
 *
 * Conventions: functions returning int give 0 on success and a negative MOBILECLIP_E_*
 * code on failure, with a one-line reason (naming the file and the problem) available
 * from mobileclip_last_error(). Constructors return NULL and write the reason into a
 * caller buffer. Embeddings are float32 rows of mobileclip_embed_dim() values.
 *
 * Thread safety: a context may be used by one thread at a time (calls mutate its
 * workspace and error string); distinct contexts are independent. Parallelism inside a
 * call comes from the library's worker threads (params.n_threads of them; idle workers
 * sleep), shared by the process: a call made while another thread's call is using them runs
 * on its calling thread alone. Beyond that pool and the kernels' instruction set (chosen
 * once from the CPU, or MC_ISA=portable|avx2|avx512) there is no global state.
 */
#ifndef MOBILECLIP_H
#define MOBILECLIP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MOBILECLIP_CONTEXT_LENGTH 77

enum {
    MOBILECLIP_OK = 0,
    MOBILECLIP_E_IO = -1,          /* missing file, directory, read error */
    MOBILECLIP_E_FORMAT = -2,      /* corrupt or unsupported file contents */
    MOBILECLIP_E_NOMEM = -3,
    MOBILECLIP_E_MODEL = -4,       /* checkpoint does not fit the architecture */
    MOBILECLIP_E_ARG = -5,         /* invalid argument */
    MOBILECLIP_E_UNSUPPORTED = -6, /* e.g. text requested without a vocabulary */
};

typedef enum mobileclip_arch {
    MOBILECLIP_ARCH_AUTO = -1, /* recognise from the checkpoint's tensor names and shapes */
    MOBILECLIP_ARCH_S0 = 0,    /* MCi0 image, MCt text, 256 px */
    MOBILECLIP_ARCH_S1 = 1,    /* MCi1 image, Base text, 256 px */
    MOBILECLIP_ARCH_S2 = 2,    /* MCi2 image, Base text, 256 px */
    MOBILECLIP_ARCH_B = 3,     /* ViT-B/16 image, Base text (causal), 224 px */
} mobileclip_arch;

typedef struct mobileclip_params {
    mobileclip_arch arch;      /* default MOBILECLIP_ARCH_AUTO */
    int n_threads;             /* default 0: $OMP_NUM_THREADS, else the processors available */
    int reparameterize;        /* default 1: fold branches at load and run the inference form;
                                  0: run the training form the checkpoint stores */
    int load_image;            /* default 1: bind the image tower */
    int load_text;             /* default 1: bind the text tower */
    const char *vocab_path;    /* BPE vocabulary (bpe_simple_vocab_16e6.txt.gz, merges.txt, or a
                                  folder with vocab.json + merges.txt); NULL: no tokenizer */
    const void *vocab_data;    /* alternatively the vocabulary file's bytes (gzip or plain merges); */
    size_t vocab_size;         /* used when vocab_path is NULL and vocab_data is not; copied */
} mobileclip_params;

typedef struct mobileclip_ctx mobileclip_ctx;

mobileclip_params mobileclip_default_params(void);

/* Loads a checkpoint (PyTorch torch.save zip or safetensors; official tensor names).
 * Returns NULL on failure with the reason in err[errlen] (err may be NULL). */
mobileclip_ctx *mobileclip_init_from_file(const char *checkpoint_path, const mobileclip_params *params,
                                          char *err, size_t errlen);
void mobileclip_free(mobileclip_ctx *ctx);

const char *mobileclip_last_error(const mobileclip_ctx *ctx);
const char *mobileclip_arch_name(mobileclip_arch arch);   /* "s0", "s1", "s2", "b" */
/* Parses "s0"/"s1"/"s2"/"b" (also "mobileclip_s0", ...); returns MOBILECLIP_ARCH_AUTO for "auto"
 * and -2 for anything else. */
int mobileclip_arch_from_name(const char *name);
mobileclip_arch mobileclip_get_arch(const mobileclip_ctx *ctx);
int mobileclip_image_size(const mobileclip_ctx *ctx);     /* model input resolution R */
int mobileclip_embed_dim(const mobileclip_ctx *ctx);      /* 512 */
float mobileclip_logit_scale(const mobileclip_ctx *ctx);  /* min(exp(logit_scale), 100) */

/* ---- images ---- */

/* Decodes a JPEG/PNG file and applies the reference preprocessing (PIL convert('RGB'),
 * bilinear resize of the shorter side to R, centre crop R x R, scale to [0,1]) into
 * chw[3*R*R]. */
int mobileclip_load_image(mobileclip_ctx *ctx, const char *path, float *chw);
/* Embeds n preprocessed images chw[n,3,R,R] into out[n, dim]; normalize != 0 gives unit rows. */
int mobileclip_encode_images(mobileclip_ctx *ctx, const float *chw, int n, float *out, int normalize);
/* Loads, preprocesses and embeds n image files. */
int mobileclip_encode_image_files(mobileclip_ctx *ctx, const char *const *paths, int n, float *out, int normalize);

/* ---- text ---- */

/* CLIP BPE tokenization into ids[77] (SOT ... EOT, zero padded, truncated with EOT last). */
int mobileclip_tokenize(mobileclip_ctx *ctx, const char *utf8, int32_t ids[MOBILECLIP_CONTEXT_LENGTH]);
/* Embeds n token rows ids[n,77] into out[n, dim]. */
int mobileclip_encode_tokens(mobileclip_ctx *ctx, const int32_t *ids, int n, float *out, int normalize);
/* Tokenizes and embeds n UTF-8 texts. */
int mobileclip_encode_texts(mobileclip_ctx *ctx, const char *const *texts, int n, float *out, int normalize);

/* ---- zero-shot classification ---- */

typedef struct mobileclip_classifier mobileclip_classifier;

/* The 80 ImageNet prompt templates of CLIP ("a bad photo of a {}.", ...) and the single
 * template "a photo of a {}.". Each contains one "{}" replaced by the label. */
const char *const *mobileclip_imagenet_templates(int *count);
const char *const *mobileclip_simple_templates(int *count);

/* CLIP's zero-shot protocol: for each label, the mean of the normalized embeddings of its
 * templates, renormalized. Texts are embedded in batches. Returns NULL on failure (reason in
 * mobileclip_last_error(ctx)). */
mobileclip_classifier *mobileclip_classifier_build(mobileclip_ctx *ctx, const char *const *labels, int n_labels,
                                                   const char *const *templates, int n_templates);
void mobileclip_classifier_free(mobileclip_classifier *clf);
int mobileclip_classifier_size(const mobileclip_classifier *clf); /* number of labels */
/* probs[n, n_labels] = softmax(logit_scale * normalize(image_embeds) @ classifier^T) */
int mobileclip_classify(mobileclip_ctx *ctx, const mobileclip_classifier *clf, const float *image_embeds, int n,
                        float *probs);

#ifdef __cplusplus
}
#endif
#endif
