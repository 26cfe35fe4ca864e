/* caption_quality.c - caption quality over WebDataset shards (real or synthetic captions). */
#include <stdlib.h>
#include <string.h>

#include "experiment/fmnist.h"
#include "io/json.h"
#include "io/wds.h"

static int is_json_ext(const char *ext) {
    size_t n = strlen(ext);
    return !strcmp(ext, "json") || (n > 5 && !strcmp(ext + n - 5, ".json"));
}

/* Counts the strings of j (a string or an array of strings). */
static int add_json(mc_caption_quality *q, const mc_json *j, int label) {
    if (j && j->type == MC_JSON_STRING) {
        mc_caption_quality_add(q, j->str, j->len, label);
        return 0;
    }
    if (!j || j->type != MC_JSON_ARRAY) return -1;
    for (int i = 0; i < j->count; i++) {
        const mc_json *s = mc_json_at(j, i);
        if (s->type != MC_JSON_STRING) return -1;
        mc_caption_quality_add(q, s->str, s->len, label);
    }
    return 0;
}

static int add_member(mc_caption_quality *q, const mc_wds_sample *s, const char *ext, const mc_wds_member *t, int label,
                      mc_err *e) {
    if (is_json_ext(ext)) {
        mc_err je = {0};
        mc_json *j = mc_json_parse((const char *)t->data, t->size, &je);
        if (!j) return mc_fail(e, MC_E_FORMAT, "%s: sample '%s': .%s: %s", s->shard, s->key, ext, je.msg);
        const mc_json *v = j->type == MC_JSON_OBJECT ? mc_json_get(j, "syn_text") : j;
        int r = add_json(q, v, label);
        mc_json_free(j);
        if (r)
            return mc_fail(e, MC_E_FORMAT, "%s: sample '%s': .%s is not a caption, a list of captions or {\"syn_text\": ...}",
                           s->shard, s->key, ext);
        return 0;
    }
    for (const char *p = (const char *)t->data, *stop = p + t->size; p < stop;) {
        const char *nl = memchr(p, '\n', (size_t)(stop - p)), *end = nl ? nl : stop;
        if (end > p) mc_caption_quality_add(q, p, (size_t)(end - p), label);
        p = nl ? nl + 1 : stop;
    }
    return 0;
}

int mc_caption_quality_shards(const char *spec, const char *ext, mc_caption_quality *q, mc_err *e) {
    mc_wds_reader rd;
    memset(q, 0, sizeof *q);
    int r = mc_wds_open_spec(&rd, spec, NULL, e), got;
    if (r) return r;
    mc_wds_sample s;
    while (!r && (got = mc_wds_next(&rd, &s, e)) != 0) {
        if (got < 0) {
            r = got;
            break;
        }
        const mc_wds_member *c = mc_wds_sample_find(&s, "cls"), *t = mc_wds_sample_find(&s, ext);
        char *end = NULL;
        long label = c ? strtol((const char *)c->data, &end, 10) : -1;
        if (!c || end == (const char *)c->data || label < 0 || label >= MC_FMNIST_CLASSES)
            r = mc_fail(e, MC_E_FORMAT, "%s: sample '%s' has no class number (.cls 0..9)", s.shard, s.key);
        else if (!t) r = mc_fail(e, MC_E_FORMAT, "%s: sample '%s' has no .%s member", s.shard, s.key, ext);
        else r = add_member(q, &s, ext, t, (int)label, e);
    }
    mc_wds_close(&rd);
    return r;
}
