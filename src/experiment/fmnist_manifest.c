/* fmnist_manifest.c - the record of a shard conversion, for reuse by later runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "experiment/fmnist.h"
#include "io/atomic_file.h"
#include "io/json.h"
#include "io/mapped_file.h"

#define MANIFEST_VERSION 1 /* bump when the caption process or the shard layout changes */

static const char *const split_names[3] = {"train", "heldout", "test"};

static const mc_fmnist_split_stats *split_of(const mc_fmnist_shards_stats *st, int k) {
    return k == 0 ? &st->train : k == 1 ? &st->heldout : &st->test;
}

static void print_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

int mc_fmnist_write_manifest(const mc_fmnist_shards_opts *o, const mc_fmnist_shards_stats *st, mc_err *e) {
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", o->out_dir);
    mc_atomic_file af;
    int r = mc_atomic_open(&af, path, e);
    if (r) return r;
    FILE *f = af.f;
    fprintf(f, "{\"version\": %d, \"data_dir\": ", MANIFEST_VERSION);
    print_string(f, o->data_dir);
    fprintf(f, ", \"seed\": \"%llu\", \"limit\": %d, \"per_shard\": %d, \"heldout_size\": %d", (unsigned long long)o->seed,
            o->limit, o->per_shard, o->heldout);
    for (int k = 0; k < 3; k++) {
        const mc_fmnist_split_stats *s = split_of(st, k);
        fprintf(f, ",\n \"%s\": {\"samples\": %d, \"shards\": %d, \"bytes\": %lld, \"quality\": [%lld, %lld, %lld, %lld, %lld], "
                   "\"shard_bytes\": [",
                split_names[k], s->samples, s->shards, s->bytes, s->quality.n, s->quality.kind[0], s->quality.kind[1],
                s->quality.kind[2], s->quality.kind[3]);
        for (int i = 0; i < s->shards; i++) {
            char sp[4200];
            struct stat fs;
            snprintf(sp, sizeof sp, "%s/%s-%05d.tar", o->out_dir, split_names[k], i);
            fprintf(f, "%s%lld", i ? ", " : "", stat(sp, &fs) == 0 ? (long long)fs.st_size : -1LL);
        }
        fprintf(f, "]}");
    }
    fprintf(f, "}\n");
    return mc_atomic_commit(&af, e);
}

/* An integer field in [0, hi]. */
static int num(const mc_json *obj, const char *key, double hi, double *out) {
    const mc_json *v = obj && obj->type == MC_JSON_OBJECT ? mc_json_get(obj, key) : NULL;
    if (!v || v->type != MC_JSON_NUMBER || !(v->number >= 0 && v->number <= hi) || v->number != (double)(long long)v->number)
        return -1;
    *out = v->number;
    return 0;
}

int mc_fmnist_parse_manifest(const char *text, size_t len, const char *name, const mc_fmnist_shards_opts *o,
                             mc_fmnist_shards_stats *st, mc_err *e) {
    mc_err je = {0};
    mc_json *j = mc_json_parse(text, len, &je);
    if (!j) return mc_fail(e, MC_E_FORMAT, "%s: %s", name, je.msg);
    memset(st, 0, sizeof *st);
    double v, limit, per, held;
    const mc_json *dd = j->type == MC_JSON_OBJECT ? mc_json_get(j, "data_dir") : NULL,
                  *seed = j->type == MC_JSON_OBJECT ? mc_json_get(j, "seed") : NULL;
    char seed_s[32];
    snprintf(seed_s, sizeof seed_s, "%llu", (unsigned long long)o->seed);
    int same = !num(j, "version", 1e6, &v) && v == MANIFEST_VERSION && dd && dd->type == MC_JSON_STRING &&
               !strcmp(dd->str, o->data_dir) && seed && seed->type == MC_JSON_STRING && !strcmp(seed->str, seed_s) &&
               !num(j, "limit", 1e9, &limit) && limit == o->limit && !num(j, "per_shard", 1e9, &per) &&
               per == o->per_shard && !num(j, "heldout_size", 1e9, &held) && held == o->heldout;
    for (int k = 0; k < 3 && same; k++) {
        const mc_json *s = mc_json_get(j, split_names[k]);
        const mc_json *q = s && s->type == MC_JSON_OBJECT ? mc_json_get(s, "quality") : NULL,
                      *sb = s && s->type == MC_JSON_OBJECT ? mc_json_get(s, "shard_bytes") : NULL;
        mc_fmnist_split_stats *d = (mc_fmnist_split_stats *)split_of(st, k);
        double a, b, c, x[5];
        int ok = !num(s, "samples", 1e9, &a) && !num(s, "shards", 1e6, &b) && !num(s, "bytes", 1e15, &c) && q &&
                 q->type == MC_JSON_ARRAY && q->count == 5 && sb && sb->type == MC_JSON_ARRAY && sb->count == (int)b;
        for (int i = 0; ok && i < 5; i++) {
            const mc_json *qi = mc_json_at(q, i);
            ok = qi->type == MC_JSON_NUMBER && qi->number >= 0 && qi->number <= 1e12;
            x[i] = ok ? qi->number : 0;
        }
        if (!ok) {
            same = 0;
            break;
        }
        d->samples = (int)a, d->shards = (int)b, d->bytes = (long long)c;
        d->quality.n = (long long)x[0];
        for (int i = 0; i < 4; i++) d->quality.kind[i] = (long long)x[i + 1];
        for (int i = 0; i < d->shards && same; i++) {
            char sp[4200];
            struct stat fs;
            const mc_json *bi = mc_json_at(sb, i);
            snprintf(sp, sizeof sp, "%s/%s-%05d.tar", o->out_dir, split_names[k], i);
            same = bi->type == MC_JSON_NUMBER && stat(sp, &fs) == 0 && (double)fs.st_size == bi->number;
        }
    }
    mc_json_free(j);
    if (!same) memset(st, 0, sizeof *st);
    return same;
}

int mc_fmnist_read_manifest(const mc_fmnist_shards_opts *o, mc_fmnist_shards_stats *st, mc_err *e) {
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", o->out_dir);
    struct stat ms;
    memset(st, 0, sizeof *st);
    if (stat(path, &ms) != 0) return 0;
    char *text;
    size_t len;
    int r = mc_read_file(path, 1 << 20, &text, &len, e);
    if (r) return r;
    r = mc_fmnist_parse_manifest(text, len, path, o, st, e);
    free(text);
    return r;
}
