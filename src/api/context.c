/* Construction, properties and errors of mobileclip_ctx. */
#include "api/context.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "io/checkpoint.h"
#include "io/model_file.h"

mobileclip_params mobileclip_default_params(void) {
    mobileclip_params p;
    memset(&p, 0, sizeof p);
    p.arch = MOBILECLIP_ARCH_AUTO;
    p.n_threads = 0;
    p.reparameterize = 1;
    p.precision = MOBILECLIP_PRECISION_AUTO;
    p.load_image = 1;
    p.load_text = 1;
    p.vocab_path = NULL;
    p.config_path = NULL;
    return p;
}

int mc_ctx_threads_begin(const mobileclip_ctx *ctx) {
    int previous = omp_get_max_threads();
    if (ctx->n_threads > 0) omp_set_num_threads(ctx->n_threads);
    return previous;
}

void mc_ctx_threads_end(int previous) { omp_set_num_threads(previous); }

/* Builds ctx->model from the weights (the model takes them over on success). */
static int bind_model(mobileclip_ctx *ctx, mc_tensor_map *w, const mobileclip_params *p, mc_err *e) {
    int threads = mc_ctx_threads_begin(ctx);
    int r = mc_clip_init(&ctx->model, w, (mc_arch)p->arch, p->load_image, p->load_text, p->reparameterize, e);
    if (!r && p->precision > MOBILECLIP_PRECISION_F32)
        r = mc_clip_set_precision(&ctx->model, (mc_precision)p->precision, e);
    mc_ctx_threads_end(threads);
    return r;
}

/* A converted model (io/model_file.h): mapped, its plan used in place. The caller's arch or
 * configuration must be the file's; another precision than the file's is repacked from its f32 plan. */
static int open_converted(mobileclip_ctx *ctx, const char *path, const mobileclip_params *p, const mc_clip_config *cfg,
                          mc_err *e) {
    if (!p->reparameterize)
        return mc_fail(e, MC_E_UNSUPPORTED, "%s: a converted model holds the reparameterized inference plan only "
                                            "(the training form needs the checkpoint)", path);
    int threads = mc_ctx_threads_begin(ctx);
    int r = mc_clip_open_converted(&ctx->model, path, p->load_image, p->load_text, e);
    if (!r && cfg && !mc_clip_config_equal(cfg, &ctx->model.config))
        r = mc_fail(e, MC_E_MODEL, "%s: converted from another configuration than %s", path, cfg->name);
    if (!r && !cfg && p->arch != MOBILECLIP_ARCH_AUTO && (int)ctx->model.arch != (int)p->arch)
        r = mc_fail(e, MC_E_MODEL, "%s: converted from %s, not %s", path,
                    ctx->model.cfg ? ctx->model.cfg->name : ctx->model.config.name, mobileclip_arch_name(p->arch));
    if (!r && p->precision != MOBILECLIP_PRECISION_AUTO && (int)p->precision != (int)ctx->model.precision)
        r = mc_clip_set_precision(&ctx->model, (mc_precision)p->precision, e);
    mc_ctx_threads_end(threads);
    const uint8_t *id = r ? NULL : mc_clip_mapping_model_id(&ctx->model);
    if (id) {
        memcpy(ctx->model_id, id, 32);
        ctx->has_model_id = 1;
    }
    return r;
}

mobileclip_ctx *mobileclip_init_from_file(const char *checkpoint_path, const mobileclip_params *params,
                                          char *err, size_t errlen) {
    mobileclip_params p = params ? *params : mobileclip_default_params();
    mc_err e = {0};
    mobileclip_ctx *ctx = calloc(1, sizeof *ctx);
    mc_tensor_map w;
    mc_tensor_map_init(&w);
    if (!ctx) {
        mc_fail(&e, MC_E_NOMEM, "out of memory");
        goto fail;
    }
    ctx->n_threads = p.n_threads;
    if (p.n_threads < 0) {
        mc_fail(&e, MC_E_ARG, "n_threads must be 0 (OpenMP default) or positive, got %d", p.n_threads);
        goto fail;
    }
    if (!checkpoint_path) {
        mc_fail(&e, MC_E_ARG, "no checkpoint path given");
        goto fail;
    }
    if (p.arch < MOBILECLIP_ARCH_AUTO || p.arch > MOBILECLIP_ARCH_B) {
        mc_fail(&e, MC_E_ARG, "invalid architecture %d", (int)p.arch);
        goto fail;
    }
    if (p.precision < MOBILECLIP_PRECISION_AUTO || p.precision > MOBILECLIP_PRECISION_INT8) {
        mc_fail(&e, MC_E_ARG, "invalid precision %d", (int)p.precision);
        goto fail;
    }
    if (p.vocab_path && !(ctx->tokenizer = mc_tokenizer_load(p.vocab_path, &e))) goto fail;
    if (!p.vocab_path && p.vocab_data &&
        !(ctx->tokenizer = mc_tokenizer_load_buffer(p.vocab_data, p.vocab_size, &e)))
        goto fail;
    mc_clip_config cfg;
    if (p.config_path && mc_clip_config_load(p.config_path, &cfg, &e)) goto fail;
    if (mc_model_file_is(checkpoint_path)) {
        if (open_converted(ctx, checkpoint_path, &p, p.config_path ? &cfg : NULL, &e)) goto fail;
        return ctx;
    }
    if (mc_checkpoint_load(checkpoint_path, &w, &e)) goto fail;
    int threads = mc_ctx_threads_begin(ctx);
    /* one tower only: the store will not hold the whole checkpoint, so its identity now */
    if (!(p.load_image && p.load_text)) {
        if (mc_model_id_of_map(&w, ctx->model_id, &e)) {
            mc_ctx_threads_end(threads);
            goto fail;
        }
        ctx->has_model_id = 1;
    }
    int r = p.config_path ? mc_clip_init_config(&ctx->model, &cfg, &w, p.load_image, p.load_text, p.reparameterize, &e)
                          : mc_clip_init(&ctx->model, &w, (mc_arch)p.arch, p.load_image, p.load_text, p.reparameterize, &e);
    if (!r && p.precision > MOBILECLIP_PRECISION_F32)
        r = mc_clip_set_precision(&ctx->model, (mc_precision)p.precision, &e);
    mc_ctx_threads_end(threads);
    if (r) goto fail;
    return ctx;
fail:
    if (err && errlen) snprintf(err, errlen, "%s", e.msg[0] ? e.msg : "unknown error");
    mc_tensor_map_free(&w);
    mobileclip_free(ctx);
    return NULL;
}

mobileclip_ctx *mc_ctx_init_from_map(mc_tensor_map *w, const mobileclip_params *params, mc_err *e) {
    mobileclip_params p = params ? *params : mobileclip_default_params();
    mobileclip_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        mc_fail(e, MC_E_NOMEM, "out of memory");
    } else if (p.n_threads < 0 || p.arch < MOBILECLIP_ARCH_AUTO || p.arch > MOBILECLIP_ARCH_B ||
               p.precision < MOBILECLIP_PRECISION_AUTO || p.precision > MOBILECLIP_PRECISION_INT8) {
        mc_fail(e, MC_E_ARG, "invalid thread count %d, architecture %d or precision %d", p.n_threads, (int)p.arch,
                (int)p.precision);
    } else {
        ctx->n_threads = p.n_threads;
        if (!bind_model(ctx, w, &p, e)) return ctx;
    }
    mc_tensor_map_free(w);
    mobileclip_free(ctx);
    return NULL;
}

void mobileclip_free(mobileclip_ctx *ctx) {
    if (!ctx) return;
    mc_clip_free(&ctx->model);
    mc_tokenizer_free(ctx->tokenizer);
    free(ctx);
}

const char *mobileclip_last_error(const mobileclip_ctx *ctx) { return ctx ? ctx->err.msg : "no context"; }

static const char *const arch_names[] = {"s0", "s1", "s2", "b"};

const char *mobileclip_arch_name(mobileclip_arch arch) {
    return (arch >= MOBILECLIP_ARCH_S0 && arch <= MOBILECLIP_ARCH_B) ? arch_names[arch] : "auto";
}

int mobileclip_arch_from_name(const char *name) {
    if (!name) return -2;
    if (strcmp(name, "auto") == 0) return MOBILECLIP_ARCH_AUTO;
    if (strncmp(name, "mobileclip_", 11) == 0) name += 11;
    for (int i = 0; i < 4; i++)
        if (strcmp(name, arch_names[i]) == 0) return i;
    return -2;
}

mobileclip_arch mobileclip_get_arch(const mobileclip_ctx *ctx) { return (mobileclip_arch)ctx->model.arch; }
int mobileclip_image_size(const mobileclip_ctx *ctx) { return ctx->model.config.image_size; }
int mobileclip_embed_dim(const mobileclip_ctx *ctx) { return ctx->model.config.embed_dim; }
int mobileclip_context_length(const mobileclip_ctx *ctx) { return ctx->model.config.text.context_length; }
float mobileclip_logit_scale(const mobileclip_ctx *ctx) { return mc_clip_logit_scale(&ctx->model); }
