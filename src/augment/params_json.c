/* params_json.c - the stored form of augmentation parameters: Compose.compress /
 * Compose.decompress as JSON (json.dumps bytes), and DataCompDR's paug.json. See augment.h. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment/augment_internal.h"
#include "io/pyrepr.h"

#define MC_PAUG_MAX_RECORDS 1000000

typedef struct out_buf {
    char *p;
    size_t len, cap;
    int overflow;
} out_buf;

static void put(out_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room) b->overflow = 1;
    b->len += n > 0 ? (size_t)n : 0;
}

/* json.dumps of the compressed list, default separators ", ". */
static void write_record(const mc_augment_config *cfg, const mc_augment_params *p, out_buf *b) {
    put(b, "[[%d, %d, %d, %d]", p->crop_i, p->crop_j, p->crop_h, p->crop_w);
    if (cfg->hflip) put(b, ", %s", p->flip ? "true" : "false");
    if (cfg->rand_augment) {
        if (!p->ra_applied) {
            put(b, ", null");
        } else {
            put(b, ", [");
            for (int k = 0; k < p->num_ops; k++) {
                char num[MC_PYREPR_MAX];
                mc_pyrepr_double(p->ops[k].magnitude, num);
                put(b, "%s[%d, %s]", k ? ", " : "", p->ops[k].op, num);
            }
            put(b, "]");
        }
    }
    put(b, "]");
}

int mc_augment_params_to_json(const mc_augment_config *cfg, const mc_augment_params *p, char *buf, size_t cap,
                              mc_err *e) {
    int r = mc_augment_config_check(cfg, e);
    if (r || (r = mc_augment_params_check(cfg, p, e))) return r;
    out_buf b = {buf, 0, cap, 0};
    write_record(cfg, p, &b);
    if (b.overflow || b.len > (size_t)0x7fffffff)
        return mc_fail(e, MC_E_ARG, "augment: %zu bytes needed for the parameters, buffer has %zu", b.len + 1, cap);
    return (int)b.len;
}

/* An integral JSON number within +-limit. */
static int get_int(const mc_json *v, double limit, int *out) {
    if (!v || v->type != MC_JSON_NUMBER || !(fabs(v->number) <= limit) || v->number != floor(v->number)) return -1;
    *out = (int)v->number;
    return 0;
}

int mc_augment_params_from_node(const mc_augment_config *cfg, const mc_json *node, mc_augment_params *p,
                                mc_err *e) {
    int r = mc_augment_config_check(cfg, e);
    if (r) return r;
    memset(p, 0, sizeof *p);
    int want = 1 + (cfg->hflip != 0) + (cfg->rand_augment != 0);
    if (!node || node->type != MC_JSON_ARRAY)
        return mc_fail(e, MC_E_FORMAT, "augmentation parameters are not a list");
    if (node->count != want)
        return mc_fail(e, MC_E_FORMAT, "augmentation parameters have %d entries, the pipeline needs %d "
                       "(random_resized_crop%s%s)", node->count, want, cfg->hflip ? ", random_horizontal_flip" : "",
                       cfg->rand_augment ? ", rand_augment" : "");
    const mc_json *box = mc_json_at(node, 0);
    if (!box || box->type != MC_JSON_ARRAY || box->count != 4)
        return mc_fail(e, MC_E_FORMAT, "random_resized_crop parameters are not a list of 4 integers [i, j, h, w]");
    int v[4];
    for (int k = 0; k < 4; k++)
        if (get_int(mc_json_at(box, k), MC_IMAGE_MAX_SIDE, &v[k]))
            return mc_fail(e, MC_E_FORMAT, "random_resized_crop value %d is not an integer within +-%d", k,
                           MC_IMAGE_MAX_SIDE);
    p->crop_i = v[0], p->crop_j = v[1], p->crop_h = v[2], p->crop_w = v[3];
    int at = 1;
    if (cfg->hflip) {
        const mc_json *f = mc_json_at(node, at++);
        if (f->type != MC_JSON_BOOL) return mc_fail(e, MC_E_FORMAT, "random_horizontal_flip parameter is not true/false");
        p->flip = f->boolean;
    }
    if (cfg->rand_augment) {
        const mc_json *ra = mc_json_at(node, at++);
        if (ra->type == MC_JSON_NULL) {
            p->ra_applied = 0;
        } else {
            if (ra->type != MC_JSON_ARRAY) return mc_fail(e, MC_E_FORMAT, "rand_augment parameters are neither null nor a list");
            if (ra->count != cfg->num_ops)
                return mc_fail(e, MC_E_FORMAT, "rand_augment has %d ops, the pipeline applies %d", ra->count, cfg->num_ops);
            p->ra_applied = 1;
            p->num_ops = ra->count;
            for (int k = 0; k < ra->count; k++) {
                const mc_json *pair = mc_json_at(ra, k);
                if (pair->type != MC_JSON_ARRAY || pair->count != 2)
                    return mc_fail(e, MC_E_FORMAT, "rand_augment op %d is not a pair [index, magnitude]", k);
                const mc_json *m = mc_json_at(pair, 1);
                if (get_int(mc_json_at(pair, 0), 1e9, &p->ops[k].op))
                    return mc_fail(e, MC_E_FORMAT, "rand_augment op %d: index is not an integer", k);
                if (m->type != MC_JSON_NUMBER) return mc_fail(e, MC_E_FORMAT, "rand_augment op %d: magnitude is not a number", k);
                p->ops[k].magnitude = m->number;
            }
        }
    }
    return mc_augment_params_check(cfg, p, e);
}

int mc_augment_params_from_json(const mc_augment_config *cfg, const char *text, size_t len,
                                mc_augment_params *p, mc_err *e) {
    mc_json *j = mc_json_parse(text, len, e);
    if (!j) return e ? e->code : MC_E_FORMAT;
    int r = mc_augment_params_from_node(cfg, j, p, e);
    mc_json_free(j);
    return r;
}

int mc_augment_paug_parse(const mc_augment_config *cfg, const char *text, size_t len, const char *name,
                          mc_augment_params **out, int *n, mc_err *e) {
    *out = NULL;
    *n = 0;
    if (!name) name = "paug.json";
    mc_json *doc = mc_json_parse(text, len, e), *inner = NULL;
    if (!doc) return mc_err_prefix(e, "%s", name);
    int r = 0;
    const mc_json *list = mc_json_get(doc, "param_aug");
    if (doc->type != MC_JSON_OBJECT || !list) {
        r = mc_fail(e, MC_E_FORMAT, "%s: no \"param_aug\" key", name);
        goto done;
    }
    if (list->type == MC_JSON_STRING) { /* the Hugging Face copy: a JSON string of the list */
        inner = mc_json_parse(list->str, list->len, e);
        if (!inner) { r = mc_err_prefix(e, "%s: param_aug string", name); goto done; }
        list = inner;
    }
    if (list->type != MC_JSON_ARRAY) {
        r = mc_fail(e, MC_E_FORMAT, "%s: param_aug is not a list", name);
        goto done;
    }
    if (list->count < 1 || list->count > MC_PAUG_MAX_RECORDS) {
        r = mc_fail(e, MC_E_FORMAT, "%s: param_aug has %d records (want 1..%d)", name, list->count, MC_PAUG_MAX_RECORDS);
        goto done;
    }
    mc_augment_params *ps = malloc((size_t)list->count * sizeof *ps);
    if (!ps) { r = mc_fail(e, MC_E_NOMEM, "%s: out of memory", name); goto done; }
    for (int k = 0; k < list->count; k++)
        if ((r = mc_augment_params_from_node(cfg, mc_json_at(list, k), &ps[k], e))) {
            free(ps);
            mc_err_prefix(e, "%s: param_aug[%d]", name, k);
            goto done;
        }
    *out = ps;
    *n = list->count;
done:
    mc_json_free(inner);
    mc_json_free(doc);
    return r;
}

int mc_augment_paug_write(const mc_augment_config *cfg, const mc_augment_params *p, int n, char **out,
                          size_t *len, mc_err *e) {
    *out = NULL;
    *len = 0;
    int r = mc_augment_config_check(cfg, e);
    if (r) return r;
    if (n < 1 || n > MC_PAUG_MAX_RECORDS) return mc_fail(e, MC_E_ARG, "paug: %d records (want 1..%d)", n, MC_PAUG_MAX_RECORDS);
    for (int k = 0; k < n; k++)
        if ((r = mc_augment_params_check(cfg, &p[k], e))) return mc_err_prefix(e, "paug record %d", k);
    /* Measure, then write. */
    for (int pass = 0; pass < 2; pass++) {
        out_buf b = {*out, 0, pass ? *len + 1 : 0, 0};
        put(&b, "{\"param_aug\": [");
        for (int k = 0; k < n; k++) {
            if (k) put(&b, ", ");
            write_record(cfg, &p[k], &b);
        }
        put(&b, "]}");
        if (!pass) {
            *len = b.len;
            if (!(*out = malloc(b.len + 1))) return mc_fail(e, MC_E_NOMEM, "paug: out of memory");
        }
    }
    return 0;
}
