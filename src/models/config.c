/* Model configurations: built-ins, the reference JSON schema, comparison and writing; see config.h. */
#include "models/config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/json.h"
#include "io/mapped_file.h"

/* ---------------------------------------------------------------- built-ins */

static int ffn_dim(int dim, double mult) { return (int)(ceil(dim * mult / 16.0) * 16.0); }

static void text_defaults(mc_text_config *t, int mct, int layers, int causal) {
    memset(t, 0, sizeof *t);
    t->mct = mct;
    t->context_length = 77;
    t->vocab_size = 49408;
    t->dim = 512;
    t->n_layers = layers;
    for (int i = 0; i < layers; i++) {
        t->heads[i] = 8;
        t->ffn_multipliers[i] = 4.0;
        t->ffn_dims[i] = ffn_dim(t->dim, 4.0);
    }
    t->causal = causal;
    t->repmixer_kernel = mct ? 11 : 0;
    t->repmixer_hidden = mct ? 4 * t->dim : 0;
}

int mc_clip_config_builtin(int arch, mc_clip_config *out, mc_err *e) {
    static const char *names[4] = {"mobileclip_s0", "mobileclip_s1", "mobileclip_s2", "mobileclip_b"};
    if (arch < 0 || arch > 3) return mc_fail(e, MC_E_ARG, "no built-in configuration for architecture %d", arch);
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", names[arch]);
    out->embed_dim = 512;
    if (arch == 3) {
        out->image = MC_IMAGE_VIT;
        out->image_size = 224;
        snprintf(out->image_model, sizeof out->image_model, "vit_b16");
        out->vit = mc_vit_config_b16();
    } else {
        out->image = MC_IMAGE_MCI;
        out->image_size = 256;
        out->mci = *mc_mci_config_get(arch);
        snprintf(out->image_model, sizeof out->image_model, "%s", out->mci.name);
    }
    text_defaults(&out->text, arch == 0, arch == 0 ? 4 : 12, arch == 3);
    return 0;
}

/* ---------------------------------------------------------------- JSON */

typedef struct parser {
    const char *src;
    mc_err *e;
} parser;

static const char *type_name(const mc_json *j) {
    static const char *n[] = {"null", "a boolean", "a number", "a string", "an array", "an object"};
    return j ? n[j->type] : "nothing";
}

static int bad(parser *p, const char *key, const char *what, const mc_json *got) {
    return mc_fail(p->e, MC_E_FORMAT, "%s: key '%s': expected %s, got %s", p->src, key, what, type_name(got));
}

/* Every key of obj must be in allowed (NULL-terminated). */
static int only_keys(parser *p, const mc_json *obj, const char *path, const char *const *allowed) {
    for (int i = 0; i < obj->count; i++) {
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++) ok = !strcmp(*a, obj->keys[i]);
        if (!ok)
            return mc_fail(p->e, MC_E_FORMAT, "%s: key '%s%s%s': unknown key", p->src, path, *path ? "." : "",
                           obj->keys[i]);
    }
    return 0;
}

static int get_int(parser *p, const mc_json *v, const char *key, long lo, long hi, int *out) {
    if (!v || v->type != MC_JSON_NUMBER || v->number != floor(v->number)) {
        char what[96];
        snprintf(what, sizeof what, "an integer from %ld to %ld", lo, hi);
        return bad(p, key, what, v);
    }
    if (v->number < lo || v->number > hi)
        return mc_fail(p->e, MC_E_FORMAT, "%s: key '%s': %g is outside %ld..%ld", p->src, key, v->number, lo, hi);
    *out = (int)v->number;
    return 0;
}

static int get_bool(parser *p, const mc_json *v, const char *key, int *out) {
    if (!v || v->type != MC_JSON_BOOL) return bad(p, key, "true or false", v);
    *out = v->boolean;
    return 0;
}

static int get_string(parser *p, const mc_json *v, const char *key, const char **out) {
    if (!v || v->type != MC_JSON_STRING || strlen(v->str) != v->len) return bad(p, key, "a string", v);
    *out = v->str;
    return 0;
}

static const mc_json *field(const mc_json *obj, const char *k) { return mc_json_get(obj, k); }

/* A per-stage list of n entries under "image_cfg.<k>". */
static int stage_list(parser *p, const mc_json *obj, const char *k, int n, const mc_json **out) {
    char key[64];
    snprintf(key, sizeof key, "image_cfg.%s", k);
    const mc_json *v = field(obj, k);
    if (!v || v->type != MC_JSON_ARRAY) return bad(p, key, "a list with one entry per stage", v);
    if (v->count != n)
        return mc_fail(p->e, MC_E_FORMAT, "%s: key '%s': %d entries, but 'layers' has %d stages", p->src, key,
                       v->count, n);
    *out = v;
    return 0;
}

/* ---- dropout rates (models/dropout_rates.h): the reference's key names per tower ---- */

/* The rate under "<path>.<k>" into *out when present: a number in [0, 1). */
static int get_rate(parser *p, const mc_json *obj, const char *path, const char *k, float *out) {
    const mc_json *v = field(obj, k);
    if (!v) return 0;
    char key[64];
    snprintf(key, sizeof key, "%s.%s", path, k);
    /* (checked in float, as it is kept: 0.99999999 would round to 1, a keep factor of infinity) */
    if (v->type != MC_JSON_NUMBER || !(v->number >= 0 && (float)v->number < 1.0f)) return bad(p, key, "a rate in [0, 1)", v);
    *out = (float)v->number;
    return 0;
}

/* FastViT's drop_rate, drop_path_rate (mci.py). */
static int parse_mci_rates(parser *p, const mc_json *img, mc_dropout_rates *r) {
    int rc = get_rate(p, img, "image_cfg", "drop_rate", &r->drop);
    return rc ? rc : get_rate(p, img, "image_cfg", "drop_path_rate", &r->drop_path);
}

/* TransformerEncoder's dropout, attn_dropout, ffn_dropout, stochastic_dropout (the text
 * tower's and the ViT's configuration keys). The reference refuses dropout together with
 * stochastic_dropout ("mutually exclusive"): so does this parser. */
static int parse_transformer_rates(parser *p, const mc_json *obj, const char *path, mc_dropout_rates *r) {
    int rc;
    if ((rc = get_rate(p, obj, path, "dropout", &r->drop)) || (rc = get_rate(p, obj, path, "attn_dropout", &r->attn)) ||
        (rc = get_rate(p, obj, path, "ffn_dropout", &r->ffn)) ||
        (rc = get_rate(p, obj, path, "stochastic_dropout", &r->drop_path)))
        return rc;
    if (r->drop > 0 && r->drop_path > 0)
        return mc_fail(p->e, MC_E_FORMAT, "%s: keys '%s.dropout' and '%s.stochastic_dropout': mutually exclusive in "
                       "the reference's TransformerEncoder (give one of them)", p->src, path, path);
    return 0;
}

static int parse_mci(parser *p, const mc_json *img, mc_mci_config *c) {
    static const char *keys[] = {"image_size", "model_name", "layers", "embed_dims", "mlp_ratios", "downsamples",
                                 "se_downsamples", "token_mixers", "pos_embs", "repmixer_kernel_size", "drop_rate",
                                 "drop_path_rate", NULL};
    int r = only_keys(p, img, "image_cfg", keys);
    if (r) return r;
    memset(c, 0, sizeof *c);
    c->name = "mci";
    c->head_dim = 32;
    c->cls_ratio = 2.0;
    c->repmixer_kernel = 3;
    const mc_json *v = field(img, "layers");
    if (!v || v->type != MC_JSON_ARRAY || v->count < 1 || v->count > MC_MCI_MAX_STAGES) {
        char what[64];
        snprintf(what, sizeof what, "a list of 1 to %d block counts", MC_MCI_MAX_STAGES);
        if (v && v->type == MC_JSON_ARRAY)
            return mc_fail(p->e, MC_E_FORMAT, "%s: key 'image_cfg.layers': %d stages (1 to %d)", p->src, v->count,
                           MC_MCI_MAX_STAGES);
        return bad(p, "image_cfg.layers", what, v);
    }
    int n = c->nstages = v->count;
    char key[64];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "image_cfg.layers[%d]", i);
        if ((r = get_int(p, &v->items[i], key, 0, 1024, &c->layers[i]))) return r;
    }
    if ((r = stage_list(p, img, "embed_dims", n, &v))) return r;
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "image_cfg.embed_dims[%d]", i);
        if ((r = get_int(p, &v->items[i], key, 1, 65536, &c->dims[i]))) return r;
    }
    if ((r = stage_list(p, img, "mlp_ratios", n, &v))) return r;
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "image_cfg.mlp_ratios[%d]", i);
        const mc_json *x = &v->items[i];
        if (x->type != MC_JSON_NUMBER || !(x->number > 0) || x->number > 64)
            return bad(p, key, "a number in (0, 64]", x);
        c->mlp_ratios[i] = x->number;
    }
    if ((r = stage_list(p, img, "downsamples", n, &v))) return r;
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "image_cfg.downsamples[%d]", i);
        if ((r = get_bool(p, &v->items[i], key, &c->downsamples[i]))) return r;
    }
    if (field(img, "se_downsamples")) { /* FastViT: None = no SE anywhere */
        if ((r = stage_list(p, img, "se_downsamples", n, &v))) return r;
        for (int i = 0; i < n; i++) {
            snprintf(key, sizeof key, "image_cfg.se_downsamples[%d]", i);
            if ((r = get_bool(p, &v->items[i], key, &c->se_downsamples[i]))) return r;
        }
    }
    if ((r = stage_list(p, img, "token_mixers", n, &v))) return r;
    for (int i = 0; i < n; i++) {
        const char *s;
        snprintf(key, sizeof key, "image_cfg.token_mixers[%d]", i);
        if ((r = get_string(p, &v->items[i], key, &s))) return r;
        if (!strcmp(s, "attention")) c->attention[i] = 1;
        else if (strcmp(s, "repmixer"))
            return mc_fail(p->e, MC_E_FORMAT, "%s: key '%s': \"%s\" is not \"repmixer\" or \"attention\"", p->src, key, s);
    }
    if (field(img, "pos_embs") && field(img, "pos_embs")->type != MC_JSON_NULL) { /* None = no RepCPE */
        if ((r = stage_list(p, img, "pos_embs", n, &v))) return r;
        for (int i = 0; i < n; i++) {
            const mc_json *x = &v->items[i];
            snprintf(key, sizeof key, "image_cfg.pos_embs[%d]", i);
            if (x->type == MC_JSON_NULL) continue;
            if (x->type != MC_JSON_STRING || strcmp(x->str, "repcpe")) return bad(p, key, "null or \"repcpe\"", x);
            c->repcpe[i] = 1;
        }
    }
    if (field(img, "repmixer_kernel_size") &&
        (r = get_int(p, field(img, "repmixer_kernel_size"), "image_cfg.repmixer_kernel_size", 1, 31, &c->repmixer_kernel)))
        return r;
    if ((r = mc_mci_config_check(c, p->e))) {
        /* "embed_dims[1]: problem" -> "SRC: key 'image_cfg.embed_dims[1]': problem" */
        char msg[sizeof p->e->msg];
        snprintf(msg, sizeof msg, "%s", p->e->msg);
        char *colon = strstr(msg, ": ");
        if (colon) *colon = 0;
        return mc_fail(p->e, MC_E_FORMAT, "%s: key 'image_cfg.%s': %s", p->src, msg, colon ? colon + 2 : "invalid");
    }
    return 0;
}

/* One number for every layer, or a list with one per layer ("text_cfg.<k>"). */
static int per_layer(parser *p, const mc_json *txt, const char *k, int n, int integer, double lo, double hi,
                     double *out) {
    char key[64];
    snprintf(key, sizeof key, "text_cfg.%s", k);
    const mc_json *v = field(txt, k);
    char what[128];
    snprintf(what, sizeof what, "%s in [%g, %g], or a list of one per transformer layer",
             integer ? "an integer" : "a number", lo, hi);
    if (v && v->type == MC_JSON_ARRAY && v->count != n)
        return mc_fail(p->e, MC_E_FORMAT, "%s: key '%s': %d entries for %d transformer layers", p->src, key, v->count, n);
    for (int i = 0; i < n; i++) {
        const mc_json *x = v && v->type == MC_JSON_ARRAY ? &v->items[i] : v;
        if (!x || x->type != MC_JSON_NUMBER || x->number < lo || x->number > hi ||
            (integer && x->number != floor(x->number)))
            return bad(p, key, what, x);
        out[i] = x->number;
    }
    return 0;
}

static int parse_text(parser *p, const mc_json *txt, mc_text_config *t, mc_dropout_rates *rates) {
    static const char *keys[] = {"context_length", "vocab_size", "dim", "ffn_multiplier_per_layer", "n_heads_per_layer",
                                 "n_transformer_layers", "norm_layer", "causal_masking", "model_name",
                                 "no_scale_embedding", "no_pos_embedding", "embed_dropout", "dropout",
                                 "attn_dropout", "ffn_dropout", "stochastic_dropout", NULL};
    int r = only_keys(p, txt, "text_cfg", keys);
    if (r) return r;
    memset(t, 0, sizeof *t);
    const char *s;
    if ((r = get_string(p, field(txt, "model_name"), "text_cfg.model_name", &s))) return r;
    if (!strcmp(s, "mct")) t->mct = 1;
    else if (strcmp(s, "base"))
        return mc_fail(p->e, MC_E_FORMAT, "%s: key 'text_cfg.model_name': \"%s\" is not \"base\" or \"mct\"", p->src, s);
    if ((r = get_int(p, field(txt, "context_length"), "text_cfg.context_length", 1, 4096, &t->context_length)) ||
        (r = get_int(p, field(txt, "vocab_size"), "text_cfg.vocab_size", 1, 1 << 22, &t->vocab_size)) ||
        (r = get_int(p, field(txt, "dim"), "text_cfg.dim", 1, 16384, &t->dim)) ||
        (r = get_int(p, field(txt, "n_transformer_layers"), "text_cfg.n_transformer_layers", 0, MC_TEXT_MAX_LAYERS,
                     &t->n_layers)) ||
        (r = get_bool(p, field(txt, "causal_masking"), "text_cfg.causal_masking", &t->causal)))
        return r;
    if ((r = get_string(p, field(txt, "norm_layer"), "text_cfg.norm_layer", &s))) return r;
    if (strcmp(s, "layer_norm_fp32") && strcmp(s, "layer_norm"))
        return mc_fail(p->e, MC_E_FORMAT, "%s: key 'text_cfg.norm_layer': \"%s\" is not \"layer_norm_fp32\" or "
                       "\"layer_norm\"", p->src, s);
    double v[MC_TEXT_MAX_LAYERS];
    if ((r = per_layer(p, txt, "n_heads_per_layer", t->n_layers, 1, 1, 1024, v))) return r;
    for (int i = 0; i < t->n_layers; i++) {
        t->heads[i] = (int)v[i];
        if (t->dim % t->heads[i])
            return mc_fail(p->e, MC_E_FORMAT, "%s: key 'text_cfg.n_heads_per_layer': %d heads do not divide dim %d",
                           p->src, t->heads[i], t->dim);
    }
    if ((r = per_layer(p, txt, "ffn_multiplier_per_layer", t->n_layers, 0, 1.0 / 64, 64, v))) return r;
    for (int i = 0; i < t->n_layers; i++) {
        t->ffn_multipliers[i] = v[i];
        t->ffn_dims[i] = ffn_dim(t->dim, v[i]);
    }
    int flag;
    if (field(txt, "no_scale_embedding") && /* the reference computes the scale but never applies it */
        (r = get_bool(p, field(txt, "no_scale_embedding"), "text_cfg.no_scale_embedding", &flag)))
        return r;
    if (field(txt, "no_pos_embedding")) {
        if ((r = get_bool(p, field(txt, "no_pos_embedding"), "text_cfg.no_pos_embedding", &flag))) return r;
        if (flag) return mc_fail(p->e, MC_E_UNSUPPORTED, "%s: key 'text_cfg.no_pos_embedding': true is not supported", p->src);
    }
    if ((r = get_rate(p, txt, "text_cfg", "embed_dropout", &rates->embed)) ||
        (r = parse_transformer_rates(p, txt, "text_cfg", rates)))
        return r;
    t->repmixer_kernel = t->mct ? 11 : 0;
    t->repmixer_hidden = t->mct ? 4 * t->dim : 0;
    return 0;
}

static int parse_root(parser *p, const mc_json *root, mc_clip_config *c) {
    if (root->type != MC_JSON_OBJECT) return bad(p, "(top level)", "an object", root);
    static const char *keys[] = {"embed_dim", "image_cfg", "text_cfg", NULL};
    int r = only_keys(p, root, "", keys);
    if (r) return r;
    if ((r = get_int(p, field(root, "embed_dim"), "embed_dim", 1, 1 << 16, &c->embed_dim))) return r;
    const mc_json *img = field(root, "image_cfg"), *txt = field(root, "text_cfg");
    if (!img || img->type != MC_JSON_OBJECT) return bad(p, "image_cfg", "an object", img);
    if ((r = get_int(p, field(img, "image_size"), "image_cfg.image_size", 1, 16384, &c->image_size))) return r;
    const char *model;
    if ((r = get_string(p, field(img, "model_name"), "image_cfg.model_name", &model))) return r;
    snprintf(c->image_model, sizeof c->image_model, "%.15s", model);
    static const char *named[] = {"image_size", "model_name", "drop_rate", "drop_path_rate", NULL};
    static const char *vit_keys[] = {"image_size", "model_name", "dropout", "attn_dropout", "ffn_dropout",
                                     "stochastic_dropout", NULL};
    if (!strcmp(model, "mci")) {
        c->image = MC_IMAGE_MCI;
        if ((r = parse_mci(p, img, &c->mci)) || (r = parse_mci_rates(p, img, &c->image_drop))) return r;
    } else if (!strcmp(model, "vit_b16")) {
        if ((r = only_keys(p, img, "image_cfg", vit_keys)) ||
            (r = parse_transformer_rates(p, img, "image_cfg", &c->image_drop)))
            return r;
        c->image = MC_IMAGE_VIT;
        c->vit = mc_vit_config_b16();
    } else {
        int v = !strcmp(model, "mci0") ? 0 : !strcmp(model, "mci1") ? 1 : !strcmp(model, "mci2") ? 2 : -1;
        if (v < 0)
            return mc_fail(p->e, MC_E_FORMAT,
                           "%s: key 'image_cfg.model_name': \"%s\" is not mci0, mci1, mci2, vit_b16 or mci (custom)",
                           p->src, model);
        if ((r = only_keys(p, img, "image_cfg", named)) || (r = parse_mci_rates(p, img, &c->image_drop))) return r;
        c->image = MC_IMAGE_MCI;
        c->mci = *mc_mci_config_get(v);
    }
    if (!txt || txt->type != MC_JSON_OBJECT) return bad(p, "text_cfg", "an object", txt);
    return parse_text(p, txt, &c->text, &c->text_drop);
}

int mc_clip_config_parse(const char *json, size_t len, const char *source, mc_clip_config *out, mc_err *e) {
    memset(out, 0, sizeof *out);
    const char *src = source ? source : "configuration";
    mc_json *root = mc_json_parse(json, len, e);
    if (!root) return mc_err_prefix(e, "%s", src);
    parser p = {src, e};
    int r = parse_root(&p, root, out);
    mc_json_free(root);
    if (r) {
        memset(out, 0, sizeof *out);
        return r;
    }
    /* the name: the file name without folders and extension */
    const char *base = strrchr(src, '/');
    base = base ? base + 1 : src;
    size_t n = strcspn(base, ".");
    snprintf(out->name, sizeof out->name, "%.*s", (int)(n < sizeof out->name ? n : sizeof out->name - 1), base);
    return 0;
}

int mc_clip_config_load(const char *path, mc_clip_config *out, mc_err *e) {
    char *text;
    size_t len;
    int r = mc_read_file(path, (size_t)1 << 20, &text, &len, e);
    if (r) return r;
    r = mc_clip_config_parse(text, len, path, out, e);
    free(text);
    return r;
}

/* ---------------------------------------------------------------- compare, write */

static int mci_equal(const mc_mci_config *a, const mc_mci_config *b) {
    int n = a->nstages;
    if (n != b->nstages || a->repmixer_kernel != b->repmixer_kernel || a->head_dim != b->head_dim ||
        a->cls_ratio != b->cls_ratio)
        return 0;
    for (int i = 0; i < n; i++)
        if (a->layers[i] != b->layers[i] || a->dims[i] != b->dims[i] || a->mlp_ratios[i] != b->mlp_ratios[i] ||
            !a->downsamples[i] != !b->downsamples[i] || !a->se_downsamples[i] != !b->se_downsamples[i] ||
            !a->attention[i] != !b->attention[i] || !a->repcpe[i] != !b->repcpe[i])
            return 0;
    return 1;
}

int mc_clip_config_equal(const mc_clip_config *a, const mc_clip_config *b) {
    if (a->embed_dim != b->embed_dim || a->image_size != b->image_size || a->image != b->image) return 0;
    if (a->image == MC_IMAGE_MCI && !mci_equal(&a->mci, &b->mci)) return 0;
    if (a->image == MC_IMAGE_VIT && memcmp(&a->vit, &b->vit, sizeof a->vit)) return 0;
    const mc_text_config *s = &a->text, *t = &b->text;
    if (s->mct != t->mct || s->context_length != t->context_length || s->vocab_size != t->vocab_size ||
        s->dim != t->dim || s->n_layers != t->n_layers || !s->causal != !t->causal ||
        s->repmixer_kernel != t->repmixer_kernel || s->repmixer_hidden != t->repmixer_hidden)
        return 0;
    for (int i = 0; i < s->n_layers; i++)
        if (s->heads[i] != t->heads[i] || s->ffn_dims[i] != t->ffn_dims[i]) return 0;
    return 1;
}

static void write_list(FILE *f, const char *key, const int *v, int n, int boolean) {
    fprintf(f, ",\n        \"%s\": [", key);
    for (int i = 0; i < n; i++) {
        if (i) fputs(", ", f);
        if (boolean) fputs(v[i] ? "true" : "false", f);
        else fprintf(f, "%d", v[i]);
    }
    fputc(']', f);
}

/* Rates are written only when on, so a configuration without dropout reads as before. */
static void write_rate(FILE *f, const char *key, float v) {
    if (v > 0) fprintf(f, ",\n        \"%s\": %.9g", key, (double)v);
}

static void write_transformer_rates(FILE *f, const mc_dropout_rates *r) {
    write_rate(f, "dropout", r->drop);
    write_rate(f, "attn_dropout", r->attn);
    write_rate(f, "ffn_dropout", r->ffn);
    write_rate(f, "stochastic_dropout", r->drop_path);
}

int mc_clip_config_write(const mc_clip_config *c, FILE *f) {
    fprintf(f, "{\n    \"embed_dim\": %d,\n    \"image_cfg\": {\n        \"image_size\": %d,\n", c->embed_dim,
            c->image_size);
    fprintf(f, "        \"model_name\": \"%s\"", c->image == MC_IMAGE_VIT ? "vit_b16" : c->mci.name);
    if (c->image == MC_IMAGE_MCI && !strcmp(c->mci.name, "mci")) {
        const mc_mci_config *m = &c->mci;
        int n = m->nstages;
        write_list(f, "layers", m->layers, n, 0);
        write_list(f, "embed_dims", m->dims, n, 0);
        fprintf(f, ",\n        \"mlp_ratios\": [");
        for (int i = 0; i < n; i++) fprintf(f, "%s%.17g", i ? ", " : "", m->mlp_ratios[i]);
        fputc(']', f);
        write_list(f, "downsamples", m->downsamples, n, 1);
        write_list(f, "se_downsamples", m->se_downsamples, n, 1);
        fprintf(f, ",\n        \"token_mixers\": [");
        for (int i = 0; i < n; i++) fprintf(f, "%s\"%s\"", i ? ", " : "", m->attention[i] ? "attention" : "repmixer");
        fprintf(f, "],\n        \"pos_embs\": [");
        for (int i = 0; i < n; i++) fprintf(f, "%s%s", i ? ", " : "", m->repcpe[i] ? "\"repcpe\"" : "null");
        fprintf(f, "],\n        \"repmixer_kernel_size\": %d", m->repmixer_kernel);
    }
    const mc_dropout_rates *ri = &c->image_drop, *rt = &c->text_drop;
    if (c->image == MC_IMAGE_MCI) {
        write_rate(f, "drop_rate", ri->drop);
        write_rate(f, "drop_path_rate", ri->drop_path);
    } else {
        write_transformer_rates(f, ri);
    }
    const mc_text_config *t = &c->text;
    fprintf(f, "\n    },\n    \"text_cfg\": {\n        \"context_length\": %d,\n        \"vocab_size\": %d,\n"
               "        \"dim\": %d,\n        \"ffn_multiplier_per_layer\": [",
            t->context_length, t->vocab_size, t->dim);
    for (int i = 0; i < t->n_layers; i++)
        fprintf(f, "%s%.17g", i ? ", " : "", t->ffn_multipliers[i] > 0 ? t->ffn_multipliers[i] : t->ffn_dims[i] / (double)t->dim);
    fprintf(f, "],\n        \"n_heads_per_layer\": [");
    for (int i = 0; i < t->n_layers; i++) fprintf(f, "%s%d", i ? ", " : "", t->heads[i]);
    fprintf(f, "],\n        \"n_transformer_layers\": %d,\n        \"norm_layer\": \"layer_norm_fp32\",\n"
               "        \"causal_masking\": %s,\n        \"model_name\": \"%s\"",
            t->n_layers, t->causal ? "true" : "false", t->mct ? "mct" : "base");
    write_rate(f, "embed_dropout", rt->embed);
    write_transformer_rates(f, rt);
    fprintf(f, "\n    }\n}\n");
    return ferror(f) ? MC_E_IO : 0;
}
