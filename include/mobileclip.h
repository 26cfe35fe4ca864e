/* mobileclip.h - public C API of mobileclip.c
 *
 * MobileCLIP (Vasu et al., CVPR 2024) image and text embeddings in plain C.
 *
 *   mobileclip_params p = mobileclip_default_params();   // vocabulary: built in
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

/* The text context of the official variants; a model given by a configuration file may have
 * another: size token buffers by mobileclip_context_length(ctx). */
#define MOBILECLIP_CONTEXT_LENGTH 77

enum {
    MOBILECLIP_OK = 0,
    MOBILECLIP_E_IO = -1,          /* missing file, directory, read error */
    MOBILECLIP_E_FORMAT = -2,      /* corrupt or unsupported file contents */
    MOBILECLIP_E_NOMEM = -3,
    MOBILECLIP_E_MODEL = -4,       /* checkpoint does not fit the architecture */
    MOBILECLIP_E_ARG = -5,         /* invalid argument */
    MOBILECLIP_E_UNSUPPORTED = -6, /* e.g. text with a context loaded without the text tower */
};

typedef enum mobileclip_arch {
    MOBILECLIP_ARCH_AUTO = -1, /* recognise from the checkpoint's tensor names and shapes */
    MOBILECLIP_ARCH_S0 = 0,    /* MCi0 image, MCt text, 256 px */
    MOBILECLIP_ARCH_S1 = 1,    /* MCi1 image, Base text, 256 px */
    MOBILECLIP_ARCH_S2 = 2,    /* MCi2 image, Base text, 256 px */
    MOBILECLIP_ARCH_B = 3,     /* ViT-B/16 image, Base text (causal), 224 px */
} mobileclip_arch;

/* Arithmetic of the encoders' matrix products (convolutions run as GEMMs, Linear layers):
 * float32 (the reference's numbers), or opt-in bfloat16 / int8 with weights packed at load
 * (cosine to float32 >= 0.999 / >= 0.995 on the golden inputs; docs/BENCHMARKS.md). */
typedef enum mobileclip_precision {
    MOBILECLIP_PRECISION_AUTO = -1, /* the default: a converted model's own precision, else F32 */
    MOBILECLIP_PRECISION_F32 = 0,
    MOBILECLIP_PRECISION_BF16 = 1, /* bf16 weights and GEMM inputs, float32 accumulation */
    MOBILECLIP_PRECISION_INT8 = 2, /* int8 weights (per output channel), dynamic int8 inputs */
} mobileclip_precision;

typedef struct mobileclip_params {
    mobileclip_arch arch;      /* default MOBILECLIP_ARCH_AUTO */
    int n_threads;             /* default 0: $OMP_NUM_THREADS, else the processors available */
    int reparameterize;        /* default 1: reparameterize at load and run the inference form;
                                  0: run the training form the checkpoint stores */
    int load_image;            /* default 1: bind the image tower */
    int load_text;             /* default 1: bind the text tower */
    const char *vocab_path;    /* BPE vocabulary override (bpe_simple_vocab_16e6.txt.gz, merges.txt, or
                                  a folder with vocab.json + merges.txt); NULL with vocab_data NULL:
                                  the built-in copy of open_clip's bpe_simple_vocab_16e6.txt.gz */
    const void *vocab_data;    /* alternatively the vocabulary file's bytes (gzip or plain merges); */
    size_t vocab_size;         /* used when vocab_path is NULL and vocab_data is not; copied */
    const char *config_path;   /* model configuration (JSON in the reference's schema, e.g. a custom
                                  small model); NULL: an official variant (arch) */
    mobileclip_precision precision; /* default MOBILECLIP_PRECISION_AUTO (f32 for a checkpoint, a converted
                                       model's own); others need reparameterize. A converted model given
                                       another precision is repacked from the f32 plan it holds. */
} mobileclip_params;

typedef struct mobileclip_ctx mobileclip_ctx;

mobileclip_params mobileclip_default_params(void);

/* Loads a checkpoint (PyTorch torch.save zip or safetensors; official tensor names), or a
 * converted model (`mobileclip convert`, docs/MODEL_FORMAT.md), recognised by its magic and used
 * in place from a read-only mapping (its configuration is its own: arch / config_path, if given,
 * must match it; reparameterize must be 1).
 * Returns NULL on failure with the reason in err[errlen] (err may be NULL). */
mobileclip_ctx *mobileclip_init_from_file(const char *checkpoint_path, const mobileclip_params *params,
                                          char *err, size_t errlen);
void mobileclip_free(mobileclip_ctx *ctx);

const char *mobileclip_last_error(const mobileclip_ctx *ctx);
const char *mobileclip_arch_name(mobileclip_arch arch);   /* "s0", "s1", "s2", "b" */
/* Parses "s0"/"s1"/"s2"/"b" (also "mobileclip_s0", ...); returns MOBILECLIP_ARCH_AUTO for "auto"
 * and -2 for anything else. */
int mobileclip_arch_from_name(const char *name);
mobileclip_arch mobileclip_get_arch(const mobileclip_ctx *ctx); /* MOBILECLIP_ARCH_AUTO: a custom configuration */
int mobileclip_image_size(const mobileclip_ctx *ctx);     /* model input resolution R */
int mobileclip_embed_dim(const mobileclip_ctx *ctx);      /* 512 for the official variants */
int mobileclip_context_length(const mobileclip_ctx *ctx); /* text positions T: 77 for the official variants */
float mobileclip_logit_scale(const mobileclip_ctx *ctx);  /* min(exp(logit_scale), 100) */

/* ---- images ---- */

/* Decodes a JPEG/PNG file and applies the reference preprocessing (PIL convert('RGB'),
 * bilinear resize of the shorter side to R, centre crop R x R, scale to [0,1]) into
 * chw[3*R*R]. */
int mobileclip_load_image(mobileclip_ctx *ctx, const char *path, float *chw);
/* mobileclip_load_image for n files at once, in parallel (params.n_threads): chw[n,3,R,R].
 * status (may be NULL) receives each file's result (0 or a negative code; a failed file's slot is
 * unspecified). Returns 0 if every file loaded, else the first failure's code, with
 * mobileclip_last_error naming that file (and counting the others). */
int mobileclip_load_images(mobileclip_ctx *ctx, const char *const *paths, int n, float *chw, int *status);
/* Embeds n preprocessed images chw[n,3,R,R] into out[n, dim]; normalize != 0 gives unit rows. */
int mobileclip_encode_images(mobileclip_ctx *ctx, const float *chw, int n, float *out, int normalize);
/* Loads, preprocesses and embeds n image files. */
int mobileclip_encode_image_files(mobileclip_ctx *ctx, const char *const *paths, int n, float *out, int normalize);

/* ---- text ---- */

/* CLIP BPE tokenization into ids[T], T = mobileclip_context_length(ctx) (SOT ... EOT, zero
 * padded, truncated with EOT last). */
int mobileclip_tokenize(mobileclip_ctx *ctx, const char *utf8, int32_t *ids);
/* Embeds n token rows ids[n,T] into out[n, dim]. */
int mobileclip_encode_tokens(mobileclip_ctx *ctx, const int32_t *ids, int n, float *out, int normalize);
/* 1 if the text has more tokens than fit in the context (the model sees it cut after 75 tokens
 * plus start and end), 0 if not, negative on error (e.g. invalid UTF-8). */
int mobileclip_text_truncated(mobileclip_ctx *ctx, const char *utf8);
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
/* The classifier's unit rows [n_labels, dim] (valid until mobileclip_classifier_free). */
const float *mobileclip_classifier_weights(const mobileclip_classifier *clf);

/* ---- model identity ---- */

/* SHA-256 of the checkpoint's floating-point tensors (names, shapes, values as float32), the
 * same for a torch.save and a safetensors file of one model (docs/INDEX_FORMAT.md). */
int mobileclip_model_id(mobileclip_ctx *ctx, uint8_t id[32]);

/* ---- evaluation over embeddings (no context needed) ---- */

/* Zero-shot classification accuracy: image i is predicted as the class whose embedding has the
 * highest inner product with it (ties: the lower class number); the ranks rank the classes the
 * same way. labels[i] in [0, n_classes). Embeddings need not be normalized for the argmax, but
 * CLIP's protocol uses unit rows (mobileclip_classifier_weights). */
typedef struct mobileclip_zeroshot_result {
    int n_images;
    double top1, top5;   /* fraction of images whose class ranks first / in the first five */
    /* optional outputs, caller-allocated (NULL to skip): */
    double *per_class;   /* [n_classes] top-1 accuracy over each class's images (NaN: no image) */
    int64_t *confusion;  /* [n_classes][n_classes] counts, row = true class, column = prediction */
} mobileclip_zeroshot_result;
int mobileclip_eval_zeroshot(const float *image_embeds, int n_images, const int *labels, const float *class_embeds,
                             int n_classes, int dim, mobileclip_zeroshot_result *res);

/* Image-text retrieval recall as in the Flickr30k/COCO protocol: text t describes image
 * text_image[t]. image->text R@K: fraction of images (with at least one caption) whose
 * best-ranked own caption is among the K texts of highest similarity; text->image R@K: fraction
 * of texts whose image is among the K images of highest similarity. Ties rank the lower number
 * first. Similarity is the inner product (cosine for unit rows). */
typedef struct mobileclip_retrieval_result {
    int n_images, n_texts;       /* images with captions, texts */
    double i2t_r1, i2t_r5, i2t_r10;
    double t2i_r1, t2i_r5, t2i_r10;
} mobileclip_retrieval_result;
int mobileclip_eval_retrieval(const float *image_embeds, int n_images, const float *text_embeds, int n_texts,
                              const int *text_image, int dim, mobileclip_retrieval_result *res);

#ifdef __cplusplus
}
#endif
#endif
