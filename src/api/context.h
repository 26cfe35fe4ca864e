/* context.h - the opaque mobileclip_ctx behind the public API. */
#ifndef MC_API_CONTEXT_H
#define MC_API_CONTEXT_H

#include "mobileclip.h"
#include "core/error.h"
#include "models/clip.h"
#include "text/tokenizer.h"

struct mobileclip_ctx {
    mc_clip model;
    mc_tokenizer *tokenizer;   /* NULL without params.vocab_path */
    int n_threads;
    mc_err err;                /* last failure */
    uint8_t model_id[32];      /* mobileclip_model_id, once computed */
    int has_model_id;
};

/* Every API call that computes runs between these two: begin applies the context's thread
 * count (if set) and returns the caller's, end restores it, so a context never changes the
 * OpenMP state of the application or of other contexts. */
int mc_ctx_threads_begin(const mobileclip_ctx *ctx);
void mc_ctx_threads_end(int previous);

/* A context from weights already in memory (e.g. the deterministic rule of io/weight_rule.h,
 * for `mobileclip bench`); takes over w (freed on failure too). No tokenizer. NULL with a
 * message in e on failure. */
mobileclip_ctx *mc_ctx_init_from_map(mc_tensor_map *w, const mobileclip_params *params, mc_err *e);

/* The model identity of a checkpoint's float tensors (api/model_id.c). */
int mc_model_id_of_map(const mc_tensor_map *m, uint8_t id[32], mc_err *e);

#endif
