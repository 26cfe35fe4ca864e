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
};

/* Runs `body` with the context's OpenMP thread count. */
void mc_ctx_set_threads(const mobileclip_ctx *ctx);

#endif
