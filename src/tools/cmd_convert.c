/* mobileclip convert: a model's inference plan (reparameterized, packed for its precision) as a
 * converted-model file for instant mapped loading (docs/MODEL_FORMAT.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/context.h"
#include "models/plan_tensors.h"
#include "io/weight_rule.h"
#include "nn/lowp.h"
#include "tools/cli.h"

#ifndef MC_SHARED_DIR_DEFAULT
#define MC_SHARED_DIR_DEFAULT "../shared"
#endif

static const char *help =
    "usage: mobileclip convert (--arch A | --config FILE) [--checkpoint FILE] [--precision f32|bf16|int8]\n"
    "                          --out FILE [--threads N] [--shared DIR]\n"
    "\n"
    "Writes the model's inference plan - the reparameterized weights and, for bf16 / int8, the\n"
    "packed low-precision weights - with its configuration to FILE (written atomically), which\n"
    "every command that takes --checkpoint then maps and uses in place: no parsing, copying or\n"
    "reparameterization at load. The file records the format and project version and the\n"
    "packing layout; another version's file is refused (docs/MODEL_FORMAT.md). Without\n"
    "--checkpoint the model of --arch is built from the deterministic weight rule of\n"
    "DIR/golden, as `bench` does (DIR: --shared, else $MC_SHARED_DIR, else the build's folder).\n"
    "\n"
    "options:\n"
    "  --checkpoint FILE   checkpoint (.pt, .safetensors) or a converted model (to change precision)\n"
    "  --arch A            s0 | s1 | s2 | b (default: recognised from the checkpoint)\n"
    "  --config FILE       model configuration (JSON, the reference's schema) instead of --arch\n"
    "  --precision P       f32 (default), bf16 or int8\n"
    "  --out FILE          the converted model (conventionally .mcm)\n"
    "  --threads N         worker threads for packing (default: $OMP_NUM_THREADS, else all cores)\n"
    "  --shared DIR        folder holding golden/ (the weight rule)\n";

int mc_cmd_convert(int argc, char **argv) {
    mc_model_opts o = {.arch = MOBILECLIP_ARCH_AUTO};
    const char *out = NULL, *shared = getenv("MC_SHARED_DIR");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return 0;
        }
        if (!strcmp(a, "--out") || !strcmp(a, "--shared")) {
            const char *v = mc_cli_value("convert", argc, argv, &i);
            if (!v) return 2;
            if (!strcmp(a, "--out")) out = v;
            else shared = v;
            continue;
        }
        int k = mc_cli_model_opt("convert", argc, argv, &i, &o);
        if (k < 0) return 2;
        if (k == 0 || o.training_form || o.vocab) {
            fprintf(stderr, "mobileclip convert: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!out) {
        fprintf(stderr, "mobileclip convert: --out FILE is required\n");
        return 2;
    }
    if (o.config && o.arch != MOBILECLIP_ARCH_AUTO) {
        fprintf(stderr, "mobileclip convert: give either --arch or --config, not both\n");
        return 2;
    }
    if (!o.checkpoint && (o.config || o.arch == MOBILECLIP_ARCH_AUTO)) {
        fprintf(stderr, "mobileclip convert: without --checkpoint give --arch s0|s1|s2|b (the weight rule)\n");
        return 2;
    }
    mobileclip_params p = mobileclip_default_params();
    p.arch = (mobileclip_arch)o.arch;
    p.config_path = o.config;
    p.n_threads = o.threads;
    p.precision = o.precision_given ? (mobileclip_precision)o.precision : MOBILECLIP_PRECISION_AUTO;
    mobileclip_ctx *ctx = NULL;
    mc_err e = {0};
    if (o.checkpoint) {
        char err[600];
        if (!(ctx = mobileclip_init_from_file(o.checkpoint, &p, err, sizeof err))) {
            fprintf(stderr, "mobileclip convert: %s\n", err);
            return 1;
        }
    } else {
        char tsv[4096];
        snprintf(tsv, sizeof tsv, "%s/golden/%s.params.tsv", shared && *shared ? shared : MC_SHARED_DIR_DEFAULT,
                 mobileclip_arch_name(p.arch));
        mc_tensor_map w;
        mc_tensor_map_init(&w);
        if (mc_weights_from_tsv(tsv, &w, NULL, &e) || !(ctx = mc_ctx_init_from_map(&w, &p, &e))) {
            if (!ctx) mc_tensor_map_free(&w);
            fprintf(stderr, "mobileclip convert: %s\n", e.msg);
            return 1;
        }
    }
    uint8_t id[32];
    int r = mobileclip_model_id(ctx, id);
    if (r) {
        fprintf(stderr, "mobileclip convert: %s\n", mobileclip_last_error(ctx));
        mobileclip_free(ctx);
        return 1;
    }
    int threads = mc_ctx_threads_begin(ctx);
    r = mc_clip_save_converted(&ctx->model, out, id, &e);
    mc_ctx_threads_end(threads);
    if (r) {
        fprintf(stderr, "mobileclip convert: %s\n", e.msg);
        mobileclip_free(ctx);
        return 1;
    }
    mc_clip *c = &ctx->model;
    printf("%s: %s, %s, %d packed weights (%.1f MB), plan %.1f MB\n", out,
           c->cfg ? c->cfg->model_name : c->config.name, mc_precision_name(c->precision), c->lowp.n,
           (double)c->lowp.bytes / 1048576.0, (double)mc_clip_plan_bytes(c) / 1048576.0);
    mobileclip_free(ctx);
    return mc_cli_finish_output("convert");
}
