/* clip.h - a whole MobileCLIP model: image tower, text tower and logit scale bound from
 * one checkpoint's tensors (official state-dict names), with architecture recognition.
 *
 *   image tower: MCi0/1/2 (src/models/mci.h) or ViT-B/16 (src/models/vit.h), prefix image_encoder.
 *   text tower:  MCt or Base (src/models/text_encoder.h), prefix text_encoder.
 */
#ifndef MC_MODELS_CLIP_H
#define MC_MODELS_CLIP_H

#include "core/tensor.h"
#include "models/config.h"
#include "models/param_store.h"
#include "models/trace.h"
#include "nn/lowp.h"

/* The official variants embed into 512 dimensions from 77 text positions; a configuration
 * (models/config.h) may choose others: size buffers by c->config (embed_dim, text.context_length). */
#define MC_CLIP_EMBED_DIM 512
#define MC_CLIP_CONTEXT 77

typedef enum mc_arch { MC_ARCH_AUTO = -1, MC_ARCH_S0 = 0, MC_ARCH_S1, MC_ARCH_S2, MC_ARCH_B, MC_ARCH_COUNT } mc_arch;

typedef struct mc_arch_config {
    const char *name;        /* "s0" */
    const char *model_name;  /* "mobileclip_s0" */
    int image_size;          /* 256 or 224 */
    int mci_variant;         /* 0,1,2 or -1 for ViT */
    int text_causal;         /* causal attention mask in the text encoder */
    int text_mct;            /* MCt (Text-RepMixer) text encoder rather than Base */
} mc_arch_config;

const mc_arch_config *mc_arch_get(mc_arch a);

struct mc_mci;
struct mc_vit;
struct mc_text_encoder;

typedef struct mc_clip {
    mc_arch arch;                 /* the official variant the configuration equals, or MC_ARCH_AUTO (custom) */
    const mc_arch_config *cfg;    /* that variant's summary; NULL for a custom configuration */
    mc_clip_config config;        /* the model's configuration (always set) */
    mc_param_store store;         /* every parameter and buffer, writable; the towers' pointers point here */
    struct mc_mci *mci;
    struct mc_vit *vit;
    struct mc_text_encoder *text;
    float *logit_scale;           /* the parameter t (log scale) in the store; s = min(exp(t), 100) */
    union {
        int reparameterized;      /* run the reparameterized inference form (the plan) */
        int reparam;              /* its former name, kept as an alias for code written against it */
    };
    int planned;                  /* the inference plan was built (mc_clip_plan_build) */
    mc_precision precision;       /* GEMM precision of the reparameterized forward (default f32) */
    mc_lowp_plan lowp;            /* its packed weights when not f32 (models/clip_lowp.c) */
    struct mc_clip_mapping *mapping; /* a converted model file the plan points into (models/clip_convert.c),
                                        or NULL; then the store is empty and the plan cannot be rebuilt */
} mc_clip;

/* Recognises the architecture from tensor names and shapes; MC_ARCH_AUTO if unknown,
 * with a reason in e. */
mc_arch mc_arch_detect(const mc_tensor_map *w, mc_err *e);

/* Takes ownership of *weights (it is emptied). arch may be MC_ARCH_AUTO. Copies the tensors of
 * the requested towers (and logit_scale; everything when both towers are loaded) into c->store,
 * releases *weights (the file mapping is no longer referenced), binds the towers from the store,
 * checks that no tensor of a bound tower is left over, and builds the reparameterized form when reparameterized.
 * Memory: the parameters are one private copy (the mapping's pages are dropped after load; the
 * peak during load is the file plus its float32 copy). */
int mc_clip_init(mc_clip *c, mc_tensor_map *weights, mc_arch arch, int load_image, int load_text, int reparameterized,
                 mc_err *e);
/* The same for any configuration. The binders first declare the configuration's tensors
 * (official names and shapes, BatchNorm counters included) into c->store, then the checkpoint
 * is copied in strictly (missing, mis-shaped and unexpected tensors are errors naming them);
 * weights may be NULL: every parameter and buffer is then 0 (for training from scratch, set
 * them before use). Takes ownership of *weights as mc_clip_init does. */
int mc_clip_init_config(mc_clip *c, const mc_clip_config *cfg, mc_tensor_map *weights, int load_image, int load_text,
                        int reparameterized, mc_err *e);

/* The towers' structure only: the binders run on decl, a declaring map (tensor.h) that outlives
 * the model, so every parameter pointer points into it; no store, no plan. For a converted model
 * (models/clip_convert.c), whose plan pointers are then set into the file's mapping. */
int mc_clip_init_structure(mc_clip *c, const mc_clip_config *cfg, mc_tensor_map *decl, int load_image, int load_text,
                           mc_err *e);

/* Converted model files (models/clip_convert.c, docs/MODEL_FORMAT.md). save: the plan of c (built,
 * both towers; its precision's packed weights too) with its configuration and model identity
 * (32 bytes or NULL). open: maps the file read-only and points the requested towers' plan into
 * it: no parameter store, no reparameterization, no copy; c->precision is the file's. */
int mc_clip_save_converted(mc_clip *c, const char *path, const uint8_t *model_id, mc_err *e);
int mc_clip_open_converted(mc_clip *c, const char *path, int load_image, int load_text, mc_err *e);
/* The mapped file's path and model identity (NULL when none). */
const char *mc_clip_mapping_path(const mc_clip *c);
const uint8_t *mc_clip_mapping_model_id(const mc_clip *c);
/* Bytes of the mapped file (0 when none). */
size_t mc_clip_mapping_bytes(const mc_clip *c);
void mc_clip_mapping_free(mc_clip *c);

/* Builds (or rebuilds) the reparameterized inference form of the loaded towers, and every eval-mode
 * cache derived from parameters (BatchNorm scale/shift, transposed kernels), from the current
 * store values. The only reparameterization path: call it after loading, after optimizer
 * steps and before export; the reparameterized forward then computes the training form's function of
 * the current parameters. Safe to call any number of times (buffers are reused/freed). */
int mc_clip_plan_build(mc_clip *c, mc_err *e);
void mc_clip_free(mc_clip *c);

/* Chooses the GEMM precision of the folded forward (nn/lowp.h) and packs the weights for it
 * (one recording forward on a blank image and a 20-token caption, then bf16 / int8 copies);
 * mc_clip_plan_build repacks. f32 frees the packed copies. Needs the folded form:
 * MC_E_UNSUPPORTED for a model loaded in the training form. */
int mc_clip_set_precision(mc_clip *c, mc_precision p, mc_err *e);
/* (Re)builds c->lowp for c->precision from the current folded weights (clip_lowp.c). */
int mc_clip_lowp_build(mc_clip *c, mc_err *e);

/* images [B,3,R,R] (R = config.image_size) -> out [B,E] (E = config.embed_dim; not normalized) */
int mc_clip_encode_image(mc_clip *c, const float *images, int B, float *out, const mc_trace *trace, mc_err *e);
/* tokens [N,T] (T = config.text.context_length) -> out [N,E] (not normalized) */
int mc_clip_encode_text(mc_clip *c, const int32_t *tokens, int N, float *out, const mc_trace *trace, mc_err *e);
/* min(exp(logit_scale), 100) */
float mc_clip_logit_scale(const mc_clip *c);

#endif
