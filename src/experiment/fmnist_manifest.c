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

static int num(const mc_json *obj, const char *key, double *out) {
    const mc_json *v = obj ? mc_json_get(obj, key) : NULL;
    if (!v || v->type != MC_JSON_NUMBER) return -1;
    *out = v->number;
    return 0;
}

int mc_fmnist_read_manifest(const mc_fmnist_shards_opts *o, mc_fmnist_shards_stats *st, mc_err *e) {
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", o->out_dir);
    struct stat ms;
    if (stat(path, &ms) != 0) return 0;
    char *text;
    size_t len;
    int r = mc_read_file(path, 1 << 20, &text, &len, e);
    if (r) return r;
    mc_err je = {0};
    mc_json *j = mc_json_parse(text, len, &je);
    free(text);
    if (!j) return mc_fail(e, MC_E_FORMAT, "%s: %s", path, je.msg);
    memset(st, 0, sizeof *st);
    double v, limit, per, held;
    const mc_json *dd = mc_json_get(j, "data_dir"), *seed = mc_json_get(j, "seed");
    char seed_s[32];
    snprintf(seed_s, sizeof seed_s, "%llu", (unsigned long long)o->seed);
    int same = !num(j, "version", &v) && v == MANIFEST_VERSION && dd && dd->type == MC_JSON_STRING &&
               !strcmp(dd->str, o->data_dir) && seed && seed->type == MC_JSON_STRING && !strcmp(seed->str, seed_s) &&
               !num(j, "limit", &limit) && limit == o->limit && !num(j, "per_shard", &per) && per == o->per_shard &&
               !num(j, "heldout_size", &held) && held == o->heldout;
    for (int k = 0; k < 3 && same; k++) {
        const mc_json *s = mc_json_get(j, split_names[k]), *q = s ? mc_json_get(s, "quality") : NULL,
                      *sb = s ? mc_json_get(s, "shard_bytes") : NULL;
        mc_fmnist_split_stats *d = (mc_fmnist_split_stats *)split_of(st, k);
        double a, b, c;
        if (num(s, "samples", &a) || num(s, "shards", &b) || num(s, "bytes", &c) || !q || q->type != MC_JSON_ARRAY ||
            q->count != 5 || !sb || sb->type != MC_JSON_ARRAY || sb->count != (int)b) {
            same = 0;
            break;
        }
        d->samples = (int)a, d->shards = (int)b, d->bytes = (long long)c;
        d->quality.n = (long long)mc_json_at(q, 0)->number;
        for (int i = 0; i < 4; i++) d->quality.kind[i] = (long long)mc_json_at(q, i + 1)->number;
        for (int i = 0; i < d->shards && same; i++) {
            char sp[4200];
            struct stat fs;
            snprintf(sp, sizeof sp, "%s/%s-%05d.tar", o->out_dir, split_names[k], i);
            same = stat(sp, &fs) == 0 && (double)fs.st_size == mc_json_at(sb, i)->number;
        }
    }
    mc_json_free(j);
    return same;
}
