/* open_clip model configurations; see openclip_config.h. */
#include "models/openclip_config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/mapped_file.h"

/* The teachers' configurations, verbatim in open_clip's schema (model_configs/<name>.json). */
#define OC_VIT_L14(QG)                                                                                               \
    "{\"embed_dim\": 768," QG "\"vision_cfg\": {\"image_size\": 224, \"layers\": 24, \"width\": 1024,"               \
    "\"patch_size\": 14}, \"text_cfg\": {\"context_length\": 77, \"vocab_size\": 49408, \"width\": 768,"            \
    "\"heads\": 12, \"layers\": 12}}"
#define OC_VIT_B(QG, P)                                                                                              \
    "{\"embed_dim\": 512," QG "\"vision_cfg\": {\"image_size\": 224, \"layers\": 12, \"width\": 768,"                \
    "\"patch_size\": " P "}, \"text_cfg\": {\"context_length\": 77, \"vocab_size\": 49408, \"width\": 512,"         \
    "\"heads\": 8, \"layers\": 12}}"
#define QUICK "\"quick_gelu\": true,"
/* model_configs/coca_ViT-B-32.json and coca_ViT-L-14.json (open_clip 7260a46) */
#define OC_COCA(D, VL, VW, VP, TW, TH, AH)                                                                           \
    "{\"embed_dim\": " D ", \"vision_cfg\": {\"image_size\": 224, \"layers\": " VL ", \"width\": " VW ","              \
    "\"patch_size\": " VP ", \"attentional_pool\": true, \"attn_pooler_heads\": 8, \"output_tokens\": true},"       \
    "\"text_cfg\": {\"context_length\": 76, \"vocab_size\": 49408, \"width\": " TW ", \"heads\": " TH ","           \
    "\"layers\": 12, \"embed_cls\": true, \"output_tokens\": true}, \"multimodal_cfg\": {\"context_length\": 76,"  \
    "\"vocab_size\": 49408, \"width\": " TW ", \"heads\": " TH ", \"layers\": 12, \"attn_pooler_heads\": " AH "},"   \
    "\"custom_text\": true}"

static const struct {
    const char *name, *json;
} builtins[] = {
    {"ViT-L-14", OC_VIT_L14("")},         {"ViT-L-14-quickgelu", OC_VIT_L14(QUICK)},
    {"ViT-B-16", OC_VIT_B("", "16")},     {"ViT-B-16-quickgelu", OC_VIT_B(QUICK, "16")},
    {"ViT-B-32", OC_VIT_B("", "32")},     {"ViT-B-32-quickgelu", OC_VIT_B(QUICK, "32")},
    {"coca_ViT-B-32", OC_COCA("512", "12", "768", "32", "512", "8", "8")},
    {"coca_ViT-L-14", OC_COCA("768", "24", "1024", "14", "768", "12", "12")},
};
#define N_BUILTINS ((int)(sizeof builtins / sizeof *builtins))

/* OPENAI_DATASET_MEAN / _STD (open_clip constants.py), the teachers' normalisation. */
static const float openai_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float openai_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

const char *mc_oc_cfg_builtin_names(void) {
    return "ViT-L-14, ViT-L-14-quickgelu, ViT-B-16, ViT-B-16-quickgelu, ViT-B-32, ViT-B-32-quickgelu, "
           "coca_ViT-B-32, coca_ViT-L-14";
}

int mc_oc_cfg_is_builtin(const char *name) {
    for (int i = 0; name && i < N_BUILTINS; i++)
        if (strcmp(name, builtins[i].name) == 0) return 1;
    return 0;
}

/* ---- field readers: each consumes one key of an object ---- */

typedef struct oc_ctx {
    const char *src, *section;
    mc_err *e;
} oc_ctx;

static int bad(oc_ctx *c, const char *key, const char *what) {
    return mc_fail(c->e, MC_E_FORMAT, "%s: %s%s'%s' %s", c->src, c->section, c->section[0] ? "." : "", key, what);
}

static int get_int(oc_ctx *c, const char *key, const mc_json *v, int lo, int hi, int *out) {
    if (v->type != MC_JSON_NUMBER || v->number != floor(v->number) || v->number < lo || v->number > hi) {
        char what[96];
        snprintf(what, sizeof what, "must be an integer in [%d, %d]", lo, hi);
        return bad(c, key, what);
    }
    *out = (int)v->number;
    return 0;
}

static int get_bool(oc_ctx *c, const char *key, const mc_json *v, int *out) {
    if (v->type == MC_JSON_NULL) return *out = 0, 0;
    if (v->type != MC_JSON_BOOL) return bad(c, key, "must be true or false");
    *out = v->boolean;
    return 0;
}

static int get_pos_number(oc_ctx *c, const char *key, const mc_json *v, double hi, double *out) {
    if (v->type != MC_JSON_NUMBER || !(v->number > 0) || v->number > hi) return bad(c, key, "must be a positive number");
    *out = v->number;
    return 0;
}

/* A key whose only supported value is null / false / empty. */
static int must_be_unset(oc_ctx *c, const char *key, const mc_json *v, const char *feature) {
    int unset = v->type == MC_JSON_NULL || (v->type == MC_JSON_BOOL && !v->boolean) ||
                (v->type == MC_JSON_STRING && v->len == 0) || (v->type == MC_JSON_OBJECT && v->count == 0);
    if (unset) return 0;
    char what[160];
    snprintf(what, sizeof what, "is set: %s is not supported", feature);
    return bad(c, key, what);
}

static int is_one_of(const char *key, const char *const *list) {
    for (; *list; list++)
        if (strcmp(key, *list) == 0) return 1;
    return 0;
}

/* norm_kwargs: only {"eps": x}. act_kwargs: none supported (tanh GELU, ...). */
static int get_norm_kwargs(oc_ctx *c, const char *key, const mc_json *v, double *eps) {
    if (v->type == MC_JSON_NULL) return 0;
    if (v->type != MC_JSON_OBJECT) return bad(c, key, "must be an object");
    for (int i = 0; i < v->count; i++) {
        if (strcmp(v->keys[i], "eps") != 0) return bad(c, key, "has a key other than eps (not supported)");
        if (get_pos_number(c, "norm_kwargs.eps", &v->items[i], 1.0, eps)) return c->e->code;
    }
    return 0;
}

static int get_pool(oc_ctx *c, const char *key, const mc_json *v, const char *const *names, const mc_oc_pool *vals,
                    mc_oc_pool *out) {
    if (v->type == MC_JSON_STRING)
        for (int i = 0; names[i]; i++)
            if (strcmp(v->str, names[i]) == 0) return *out = vals[i], 0;
    return bad(c, key, "is not a supported pooling type");
}

static const char *const ignored_vision[] = {"patch_dropout", "output_tokens", "timm_model_pretrained", "timm_pool",
                                             "timm_proj", "timm_proj_bias", "timm_drop", "timm_drop_path", NULL};
static const char *const ignored_text[] = {"output_tokens", "hf_model_pretrained", "hf_proj_type", "hf_pooler_type",
                                           "final_ln_after_pool", NULL};

static int parse_vision(oc_ctx *c, const mc_json *o, mc_oc_vision_cfg *v) {
    *v = (mc_oc_vision_cfg){.image_size = 224, .patch_size = 16, .layers = 12, .width = 768, .head_width = 64,
                            .mlp_ratio = 4.0, .pool_type = MC_OC_POOL_TOK, .ln_eps = 1e-5,
                            .attn_pooler_queries = 256, .attn_pooler_heads = 8};
    c->section = "vision_cfg";
    if (o->type != MC_JSON_OBJECT) return bad(c, "vision_cfg", "must be an object");
    static const char *const pools[] = {"tok", "avg", NULL};
    static const mc_oc_pool pool_vals[] = {MC_OC_POOL_TOK, MC_OC_POOL_AVG};
    for (int i = 0; i < o->count; i++) {
        const char *k = o->keys[i];
        const mc_json *x = &o->items[i];
        int r = 0;
        if (!strcmp(k, "image_size") || !strcmp(k, "patch_size")) {
            if (x->type == MC_JSON_ARRAY) {
                if (x->count != 2 || x->items[0].type != MC_JSON_NUMBER || x->items[1].type != MC_JSON_NUMBER ||
                    x->items[0].number != x->items[1].number)
                    return bad(c, k, "is not square (only square images are supported)");
                x = &x->items[0];
            }
            r = get_int(c, k, x, 1, 1 << 14, !strcmp(k, "image_size") ? &v->image_size : &v->patch_size);
        } else if (!strcmp(k, "layers")) {
            if (x->type == MC_JSON_ARRAY) return bad(c, k, "is a list: ModifiedResNet towers are not supported");
            r = get_int(c, k, x, 1, 4096, &v->layers);
        } else if (!strcmp(k, "width")) r = get_int(c, k, x, 1, 1 << 16, &v->width);
        else if (!strcmp(k, "head_width")) r = get_int(c, k, x, 1, 1 << 16, &v->head_width);
        else if (!strcmp(k, "mlp_ratio")) r = get_pos_number(c, k, x, 64, &v->mlp_ratio);
        else if (!strcmp(k, "no_ln_pre")) r = get_bool(c, k, x, &v->no_ln_pre);
        else if (!strcmp(k, "final_ln_after_pool")) r = get_bool(c, k, x, &v->final_ln_after_pool);
        else if (!strcmp(k, "attentional_pool")) r = get_bool(c, k, x, &v->attentional_pool);
        else if (!strcmp(k, "attn_pooler_queries")) r = get_int(c, k, x, 1, 1 << 16, &v->attn_pooler_queries);
        else if (!strcmp(k, "attn_pooler_heads")) r = get_int(c, k, x, 1, 1 << 16, &v->attn_pooler_heads);
        else if (!strcmp(k, "pool_type")) r = get_pool(c, k, x, pools, pool_vals, &v->pool_type);
        else if (!strcmp(k, "norm_kwargs")) r = get_norm_kwargs(c, k, x, &v->ln_eps);
        else if (!strcmp(k, "act_kwargs")) r = must_be_unset(c, k, x, "an activation with arguments");
        else if (!strcmp(k, "ls_init_value")) r = must_be_unset(c, k, x, "layer scale");
        else if (!strcmp(k, "timm_model_name")) r = must_be_unset(c, k, x, "a timm image tower");
        else if (!strcmp(k, "pos_embed_type")) {
            /* both kinds are a stored [T, C] parameter, so inference is the same */
            if (x->type != MC_JSON_STRING || (strcmp(x->str, "learnable") && strcmp(x->str, "sin_cos_2d")))
                r = bad(c, k, "must be \"learnable\" or \"sin_cos_2d\"");
        } else if (!is_one_of(k, ignored_vision)) r = bad(c, k, "is not an open_clip vision_cfg field");
        if (r) return r;
    }
    if (v->width % v->head_width) return bad(c, "width", "is not a multiple of head_width");
    if (v->image_size < v->patch_size) return bad(c, "image_size", "is smaller than patch_size");
    return 0;
}

static int parse_text(oc_ctx *c, const mc_json *o, mc_oc_text_cfg *t) {
    *t = (mc_oc_text_cfg){.context_length = 77, .vocab_size = 49408, .width = 512, .heads = 8, .layers = 12,
                          .mlp_ratio = 4.0, .pool_type = MC_OC_POOL_ARGMAX, .ln_eps = 1e-5};
    c->section = "text_cfg";
    if (o->type != MC_JSON_OBJECT) return bad(c, "text_cfg", "must be an object");
    static const char *const pools[] = {"argmax", "first", "last", NULL};
    static const mc_oc_pool pool_vals[] = {MC_OC_POOL_ARGMAX, MC_OC_POOL_FIRST, MC_OC_POOL_LAST};
    for (int i = 0; i < o->count; i++) {
        const char *k = o->keys[i];
        const mc_json *x = &o->items[i];
        int r = 0;
        if (!strcmp(k, "context_length")) r = get_int(c, k, x, 1, 1 << 16, &t->context_length);
        else if (!strcmp(k, "vocab_size")) r = get_int(c, k, x, 1, 1 << 24, &t->vocab_size);
        else if (!strcmp(k, "width")) r = get_int(c, k, x, 1, 1 << 16, &t->width);
        else if (!strcmp(k, "heads")) r = get_int(c, k, x, 1, 1 << 16, &t->heads);
        else if (!strcmp(k, "layers")) r = get_int(c, k, x, 1, 4096, &t->layers);
        else if (!strcmp(k, "mlp_ratio")) r = get_pos_number(c, k, x, 64, &t->mlp_ratio);
        else if (!strcmp(k, "no_causal_mask")) r = get_bool(c, k, x, &t->no_causal_mask);
        else if (!strcmp(k, "proj_bias")) r = get_bool(c, k, x, &t->proj_bias);
        else if (!strcmp(k, "embed_cls")) r = get_bool(c, k, x, &t->embed_cls);
        else if (!strcmp(k, "pad_id")) r = get_int(c, k, x, 0, 1 << 24, &t->pad_id);
        else if (!strcmp(k, "pool_type")) r = get_pool(c, k, x, pools, pool_vals, &t->pool_type);
        else if (!strcmp(k, "proj_type")) {
            if (x->type == MC_JSON_STRING && !strcmp(x->str, "none")) t->proj_none = 1;
            else if (!(x->type == MC_JSON_STRING && !strcmp(x->str, "linear")))
                r = bad(c, k, "must be \"linear\" or \"none\"");
        } else if (!strcmp(k, "norm_kwargs")) r = get_norm_kwargs(c, k, x, &t->ln_eps);
        else if (!strcmp(k, "act_kwargs")) r = must_be_unset(c, k, x, "an activation with arguments");
        else if (!strcmp(k, "ls_init_value")) r = must_be_unset(c, k, x, "layer scale");
        else if (!strcmp(k, "hf_model_name")) r = must_be_unset(c, k, x, "a Hugging Face text tower");
        else if (!strcmp(k, "hf_tokenizer_name")) r = must_be_unset(c, k, x, "a tokenizer other than CLIP's BPE");
        else if (!strcmp(k, "tokenizer_kwargs")) r = must_be_unset(c, k, x, "tokenizer options");
        else if (!is_one_of(k, ignored_text)) r = bad(c, k, "is not an open_clip text_cfg field");
        if (r) return r;
    }
    if (t->width % t->heads) return bad(c, "width", "is not a multiple of heads");
    return 0;
}

/* MultimodalCfg: CLIPTextCfg's fields plus mlp_ratio, dim_head, heads, n_queries,
 * attn_pooler_heads; the decoder uses context_length, width, heads, layers, ls_init_value. */
static const char *const ignored_mm[] = {"vocab_size", "mlp_ratio", "dim_head", "n_queries", "attn_pooler_heads",
                                         "output_tokens", "embed_cls", "pad_id", "no_causal_mask",
                                         "final_ln_after_pool", "pool_type", "proj_bias", "proj_type", "norm_kwargs",
                                         "act_kwargs", "hf_model_pretrained", "hf_proj_type", "hf_pooler_type",
                                         "hf_tokenizer_name", "tokenizer_kwargs", NULL};

static int parse_multimodal(oc_ctx *c, const mc_json *o, mc_oc_mm_cfg *m) {
    *m = (mc_oc_mm_cfg){.context_length = 77, .width = 512, .heads = 8, .layers = 12};
    c->section = "multimodal_cfg";
    if (o->type != MC_JSON_OBJECT) return bad(c, "multimodal_cfg", "must be an object");
    for (int i = 0; i < o->count; i++) {
        const char *k = o->keys[i];
        const mc_json *x = &o->items[i];
        int r = 0;
        if (!strcmp(k, "context_length")) r = get_int(c, k, x, 1, 1 << 16, &m->context_length);
        else if (!strcmp(k, "width")) r = get_int(c, k, x, 1, 1 << 16, &m->width);
        else if (!strcmp(k, "heads")) r = get_int(c, k, x, 1, 1 << 16, &m->heads);
        else if (!strcmp(k, "layers")) r = get_int(c, k, x, 1, 4096, &m->layers);
        else if (!strcmp(k, "ls_init_value")) r = must_be_unset(c, k, x, "layer scale");
        else if (!strcmp(k, "hf_model_name")) r = must_be_unset(c, k, x, "a Hugging Face text tower");
        else if (!is_one_of(k, ignored_mm)) r = bad(c, k, "is not an open_clip multimodal_cfg field");
        if (r) return r;
    }
    if (m->width % m->heads) return bad(c, "width", "is not a multiple of heads");
    return 0;
}

static int get_triple(oc_ctx *c, const char *key, const mc_json *v, float out[3]) {
    if (v->type != MC_JSON_ARRAY || v->count != 3) return bad(c, key, "must be a list of 3 numbers");
    for (int i = 0; i < 3; i++) {
        if (v->items[i].type != MC_JSON_NUMBER || !isfinite(v->items[i].number)) return bad(c, key, "must hold numbers");
        out[i] = (float)v->items[i].number;
    }
    return 0;
}

static int parse_preprocess(oc_ctx *c, const mc_json *o, mc_oc_cfg *cfg) {
    c->section = "preprocess_cfg";
    if (o->type != MC_JSON_OBJECT) return bad(c, "preprocess_cfg", "must be an object");
    for (int i = 0; i < o->count; i++) {
        const char *k = o->keys[i];
        const mc_json *x = &o->items[i];
        int r = 0;
        if (!strcmp(k, "mean")) r = get_triple(c, k, x, cfg->mean);
        else if (!strcmp(k, "std")) {
            if (!(r = get_triple(c, k, x, cfg->std)))
                for (int j = 0; j < 3; j++)
                    if (!(cfg->std[j] > 0)) r = bad(c, k, "must be positive");
        } else if (!strcmp(k, "interpolation")) {
            if (x->type == MC_JSON_STRING && !strcmp(x->str, "bicubic")) cfg->bicubic = 1;
            else if (x->type == MC_JSON_STRING && !strcmp(x->str, "bilinear")) cfg->bicubic = 0;
            else r = bad(c, k, "must be \"bicubic\" or \"bilinear\"");
        } else if (!strcmp(k, "resize_mode")) {
            if (!(x->type == MC_JSON_STRING && !strcmp(x->str, "shortest")))
                r = bad(c, k, "must be \"shortest\" (the only eval resize implemented)");
        } else if (!strcmp(k, "size")) {
            int s = 0;
            const mc_json *y = x->type == MC_JSON_ARRAY && x->count == 2 ? &x->items[0] : x;
            if (!(r = get_int(c, k, y, 1, 1 << 14, &s)) && s != cfg->vision.image_size)
                r = bad(c, k, "differs from vision_cfg.image_size");
        } else if (strcmp(k, "mode") && strcmp(k, "fill_color")) r = bad(c, k, "is not a preprocess_cfg field");
        if (r) return r;
    }
    return 0;
}

int mc_oc_cfg_from_json(const mc_json *root, const char *src, mc_oc_cfg *cfg, mc_err *e) {
    oc_ctx c = {src ? src : "config", "", e};
    memset(cfg, 0, sizeof *cfg);
    memcpy(cfg->mean, openai_mean, sizeof cfg->mean);
    memcpy(cfg->std, openai_std, sizeof cfg->std);
    cfg->bicubic = 1;
    if (!root || root->type != MC_JSON_OBJECT)
        return mc_fail(e, MC_E_FORMAT, "%s: an open_clip model config must be a JSON object", c.src);
    const mc_json *v = mc_json_get(root, "vision_cfg"), *t = mc_json_get(root, "text_cfg"),
                  *d = mc_json_get(root, "embed_dim"), *p = mc_json_get(root, "preprocess_cfg");
    if (!d || !v || !t)
        return mc_fail(e, MC_E_FORMAT, "%s: not an open_clip model config (needs embed_dim, vision_cfg and text_cfg)",
                       c.src);
    int r;
    if ((r = get_int(&c, "embed_dim", d, 1, 1 << 16, &cfg->embed_dim)) || (r = parse_vision(&c, v, &cfg->vision)) ||
        (r = parse_text(&c, t, &cfg->text)))
        return r;
    c.section = "";
    for (int i = 0; i < root->count; i++) {
        const char *k = root->keys[i];
        const mc_json *x = &root->items[i];
        r = 0;
        if (!strcmp(k, "quick_gelu")) r = get_bool(&c, k, x, &cfg->quick_gelu);
        else if (!strcmp(k, "custom_text")) r = get_bool(&c, k, x, &cfg->custom_text);
        else if (!strcmp(k, "init_logit_bias")) cfg->has_logit_bias = x->type != MC_JSON_NULL;
        else if (!strcmp(k, "multimodal_cfg")) {
            if (x->type != MC_JSON_NULL) {
                cfg->has_multimodal = 1;
                r = parse_multimodal(&c, x, &cfg->mm);
                c.section = "";
            }
        } else if (!strcmp(k, "pad_id")) r = get_int(&c, k, x, 0, 1 << 24, &cfg->pad_id);
        else if (!is_one_of(k, (const char *const[]){"embed_dim", "vision_cfg", "text_cfg", "preprocess_cfg",
                                                      "init_logit_scale", "nonscalar_logit_scale", NULL}))
            r = bad(&c, k, "is not an open_clip model config field");
        if (r) return r;
    }
    if (p && (r = parse_preprocess(&c, p, cfg))) return r;
    c.section = "";
    if (cfg->has_multimodal && cfg->mm.width != cfg->embed_dim)
        /* the decoder's cross-attention reads the pooled image tokens (embed_dim wide) as its own width */
        return bad(&c, "multimodal_cfg", "width differs from embed_dim (CoCa's cross-attention needs them equal)");
    if (cfg->vision.attentional_pool && cfg->embed_dim % cfg->vision.attn_pooler_heads)
        return bad(&c, "embed_dim", "is not a multiple of vision_cfg.attn_pooler_heads");
    return 0;
}

int mc_oc_cfg_parse(const char *text, size_t len, const char *src, mc_oc_cfg *cfg, mc_err *e) {
    mc_json *root = mc_json_parse(text, len, e);
    if (!root) return mc_err_prefix(e, "%s", src ? src : "config");
    int r = mc_oc_cfg_from_json(root, src, cfg, e);
    mc_json_free(root);
    return r;
}

int mc_oc_cfg_builtin(const char *name, mc_oc_cfg *cfg, mc_err *e) {
    for (int i = 0; name && i < N_BUILTINS; i++)
        if (strcmp(name, builtins[i].name) == 0) {
            int r = mc_oc_cfg_parse(builtins[i].json, strlen(builtins[i].json), name, cfg, e);
            if (!r) snprintf(cfg->name, sizeof cfg->name, "%s", name);
            return r;
        }
    return mc_fail(e, MC_E_ARG, "unknown open_clip model '%s' (built in: %s; or give a model config .json file)",
                   name ? name : "(null)", mc_oc_cfg_builtin_names());
}

int mc_oc_cfg_load(const char *name_or_path, mc_oc_cfg *cfg, mc_err *e) {
    if (!name_or_path) return mc_fail(e, MC_E_ARG, "no open_clip model name or config file given");
    if (mc_oc_cfg_is_builtin(name_or_path)) return mc_oc_cfg_builtin(name_or_path, cfg, e);
    size_t n = strlen(name_or_path);
    if (n < 5 || strcmp(name_or_path + n - 5, ".json") != 0) return mc_oc_cfg_builtin(name_or_path, cfg, e);
    char *text = NULL;
    size_t len = 0;
    int r = mc_read_file(name_or_path, 1 << 20, &text, &len, e);
    if (r) return r;
    r = mc_oc_cfg_parse(text, len, name_or_path, cfg, e);
    free(text);
    if (!r) {
        const char *base = strrchr(name_or_path, '/');
        base = base ? base + 1 : name_or_path;
        snprintf(cfg->name, sizeof cfg->name, "%.*s", (int)(strlen(base) - 5 < 63 ? strlen(base) - 5 : 63), base);
    }
    return r;
}
