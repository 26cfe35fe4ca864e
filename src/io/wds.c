/* wds.c - webdataset grouping of tar members into samples; see wds.h. */
#include "io/wds.h"

#include <stdlib.h>
#include <string.h>

#include "io/braceexpand.h"

/* base_plus_ext: ^((?:.*[/]|)[^.]+)[.]([^/]*)$ without a regex engine. When it matches, the key
 * is always name[0..D) with D the first dot after the last slash; whether it matches depends
 * on a split point i (0, or just after a slash, with no newline before that slash since
 * '.' does not match '\n') such that name[i..D) is non-empty and dot-free. The smallest
 * usable i is 0 (if the directories have no dot) or just after the first slash following
 * the last dot of the directories, so that is the only candidate to check. */
int mc_wds_split_name(const char *s, size_t n, size_t *key_len) {
    long L = -1, F = -1, D = -1;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/') L = (long)i;
    for (size_t i = (size_t)(L + 1); i < n; i++)
        if (s[i] == '.') { D = (long)i; break; }
    if (D < 0) return 0;
    for (long i = 0; i <= L; i++)
        if (s[i] == '.') F = i;
    if (F < 0) {
        if (D == 0) return 0;
    } else {
        long j = F + 1;
        while (s[j] != '/') j++; /* exists: F < L */
        if (j + 1 >= D) return 0;
        if (memchr(s, '\n', (size_t)j)) return 0;
    }
    *key_len = (size_t)D;
    return 1;
}

int mc_wds_is_meta(const char *s, size_t n) {
    const char *slash = memchr(s, '/', n);
    if (!slash && n >= 2 && s[0] == '_' && s[1] == '_' && s[n - 2] == '_' && s[n - 1] == '_') return 1;
    /* re.match(r"__[^/]*__($|/)") */
    size_t seg = slash ? (size_t)(slash - s) : n;
    if (seg < 4 || s[0] != '_' || s[1] != '_') return 0;
    if (s[seg - 1] == '_' && s[seg - 2] == '_') return 1;
    return !slash && seg >= 5 && s[seg - 1] == '\n' && s[seg - 2] == '_' && s[seg - 3] == '_';
}

const mc_wds_member *mc_wds_sample_find(const mc_wds_sample *s, const char *ext) {
    for (int i = 0; i < s->count; i++)
        if (!strcmp(s->members[i].ext, ext)) return &s->members[i];
    return NULL;
}

int mc_wds_open(mc_wds_reader *r, const char *const *paths, int n, const mc_wds_options *opt, mc_err *e) {
    memset(r, 0, sizeof *r);
    mc_strlist_init(&r->shards);
    r->cur_shard = -1;
    if (opt) r->opt = *opt;
    if (!r->opt.max_member) r->opt.max_member = MC_TAR_DEFAULT_MAX_MEMBER;
    if (!r->opt.max_sample) r->opt.max_sample = r->opt.max_member;
    if (n < 0 || (n && !paths)) return mc_fail(e, MC_E_ARG, "mc_wds_open: bad shard list");
    for (int i = 0; i < n; i++) {
        if (!paths[i] || mc_strlist_push(&r->shards, paths[i], strlen(paths[i]), e)) {
            mc_wds_close(r);
            return paths[i] ? MC_E_NOMEM : mc_fail(e, MC_E_ARG, "mc_wds_open: NULL shard path");
        }
    }
    return 0;
}

int mc_wds_open_spec(mc_wds_reader *r, const char *spec, const mc_wds_options *opt, mc_err *e) {
    mc_strlist l;
    mc_strlist_init(&l);
    int rc = mc_shard_list_expand(spec, &l, e);
    if (!rc) rc = mc_wds_open(r, (const char *const *)l.items, l.count, opt, e);
    mc_strlist_free(&l);
    return rc;
}

void mc_wds_close(mc_wds_reader *r) {
    if (r->cur_shard >= 0) mc_tar_reader_close(&r->tar);
    mc_strlist_free(&r->shards);
    free(r->key);
    free(r->ext_off);
    free(r->data_off);
    free(r->sizes);
    free(r->arena);
    free(r->members);
    memset(r, 0, sizeof *r);
    r->cur_shard = -1;
}

static void reset_sample(mc_wds_reader *r) {
    r->count = 0;
    r->arena_len = 0;
    r->bad = 0;
    if (r->key) r->key[0] = 0;
}

static int arena_put(mc_wds_reader *r, const void *p, size_t n, size_t *off) {
    if (r->arena_len + n + 1 > r->arena_cap) {
        size_t c = r->arena_cap ? r->arena_cap : 65536;
        while (c < r->arena_len + n + 1) c *= 2;
        void *q = realloc(r->arena, c);
        if (!q) return -1;
        r->arena = q;
        r->arena_cap = c;
    }
    *off = r->arena_len;
    memcpy(r->arena + r->arena_len, p, n);
    r->arena[r->arena_len + n] = 0;
    r->arena_len += n + 1;
    return 0;
}

static void mark_bad(mc_wds_reader *r, const mc_err *why) {
    if (r->bad) return; /* the first reason is the one reported */
    r->bad = 1;
    r->bad_err = *why;
}

/* Adds member (ext, data) to the sample, or marks the sample bad. */
static int add_member(mc_wds_reader *r, const char *ext, size_t ext_len, const mc_tar_member *m) {
    mc_err why;
    const char *shard = r->shards.items[r->cur_shard];
    char lower[256], *tmp = NULL, *x = lower;
    if (ext_len >= sizeof lower && !(x = tmp = malloc(ext_len + 1))) return -1;
    for (size_t i = 0; i < ext_len; i++) x[i] = (ext[i] >= 'A' && ext[i] <= 'Z') ? (char)(ext[i] + 32) : ext[i];
    x[ext_len] = 0;
    int dup = (ext_len == 7 && (!memcmp(x, "__key__", 7) || !memcmp(x, "__url__", 7)));
    for (int i = 0; i < r->count && !dup; i++) dup = !strcmp((const char *)r->arena + r->ext_off[i], x);
    if (dup) {
        free(tmp);
        mc_fail(&why, MC_E_FORMAT, "%s: offset %llu: sample '%s': duplicate member '%s'", shard,
                (unsigned long long)m->offset, r->key, m->name);
        mark_bad(r, &why);
        return 0;
    }
    if (r->count >= MC_WDS_MAX_MEMBERS || r->arena_len + m->size > r->opt.max_sample) {
        free(tmp);
        mc_fail(&why, MC_E_NOMEM, "%s: offset %llu: sample '%s' exceeds %d members or %zu bytes", shard,
                (unsigned long long)m->offset, r->key, MC_WDS_MAX_MEMBERS, r->opt.max_sample);
        mark_bad(r, &why);
        return 0;
    }
    if (r->count == r->members_cap) {
        int c = r->members_cap ? r->members_cap * 2 : 16;
        size_t *a = realloc(r->ext_off, (size_t)c * sizeof *a);
        if (a) r->ext_off = a;
        size_t *b = realloc(r->data_off, (size_t)c * sizeof *b);
        if (b) r->data_off = b;
        size_t *d = realloc(r->sizes, (size_t)c * sizeof *d);
        if (d) r->sizes = d;
        mc_wds_member *mm = realloc(r->members, (size_t)c * sizeof *mm);
        if (mm) r->members = mm;
        if (!a || !b || !d || !mm) {
            free(tmp);
            return -1;
        }
        r->members_cap = c;
    }
    size_t eo, dofs;
    int rc = arena_put(r, x, ext_len, &eo);
    free(tmp);
    if (rc || arena_put(r, m->data, (size_t)m->size, &dofs)) return -1;
    r->ext_off[r->count] = eo;
    r->data_off[r->count] = dofs;
    r->sizes[r->count] = (size_t)m->size;
    r->count++;
    return 0;
}

static int set_key(mc_wds_reader *r, const char *k, size_t n) {
    if (n + 1 > r->key_cap) {
        char *q = realloc(r->key, n + 64);
        if (!q) return -1;
        r->key = q;
        r->key_cap = n + 64;
    }
    memcpy(r->key, k, n);
    r->key[n] = 0;
    return 0;
}

/* Finishes the sample being assembled: 1 with s filled, or its error. */
static int emit(mc_wds_reader *r, mc_wds_sample *s, mc_err *e) {
    r->yielded = 1;
    if (r->bad) {
        r->errors++;
        if (e) *e = r->bad_err;
        return r->bad_err.code ? r->bad_err.code : MC_E_FORMAT;
    }
    for (int i = 0; i < r->count; i++) {
        r->members[i].ext = (const char *)r->arena + r->ext_off[i];
        r->members[i].data = r->arena + r->data_off[i];
        r->members[i].size = r->sizes[i];
    }
    s->key = r->key;
    s->shard = r->shards.items[r->cur_shard];
    s->shard_index = r->cur_shard;
    s->offset = r->offset;
    s->count = r->count;
    s->members = r->members;
    r->samples++;
    return 1;
}

int mc_wds_next(mc_wds_reader *r, mc_wds_sample *s, mc_err *e) {
    memset(s, 0, sizeof *s);
    if (r->yielded) {
        reset_sample(r);
        r->yielded = 0;
    }
    for (;;) {
        if (r->cur_shard < 0) {
            if (r->next_shard >= r->shards.count) return 0;
            int i = r->next_shard++;
            mc_err oe;
            if (mc_tar_reader_open(&r->tar, r->shards.items[i], r->opt.max_member, &oe)) {
                r->errors++;
                if (e) *e = oe;
                return oe.code;
            }
            r->cur_shard = i;
            r->pending = 0;
        }
        mc_tar_member m;
        mc_err me;
        int rc, bad_member = 0;
        if (r->pending) {
            r->pending = 0;
            rc = 1;
            m = r->pend;
            if (r->pending_bad) me = r->pending_err, bad_member = 1, r->pending_bad = 0;
        } else {
            rc = mc_tar_next(&r->tar, &m, &me);
            if (rc < 0 && r->tar.done == 0) bad_member = 1; /* skipped member: the stream goes on */
            else if (rc < 0) {
                /* the rest of the shard is unreadable: drop the partial sample with it */
                if (r->count || r->bad) {
                    mc_err d = me;
                    mc_fail(&me, d.code, "%s (sample '%.100s' dropped)", d.msg, r->key);
                }
                reset_sample(r);
                mc_tar_reader_close(&r->tar);
                r->cur_shard = -1;
                r->errors++;
                if (e) *e = me;
                return me.code;
            }
            if (rc == 0) {
                int had = r->count || r->bad;
                if (had) {
                    int out = emit(r, s, e);
                    /* the sample refers to the shard name only, which stays in the list */
                    mc_tar_reader_close(&r->tar);
                    r->cur_shard = -1;
                    if (out == 1) s->shard = r->shards.items[s->shard_index];
                    return out;
                }
                mc_tar_reader_close(&r->tar);
                r->cur_shard = -1;
                continue;
            }
        }
        if (mc_wds_is_meta(m.name, m.name_len)) continue;
        size_t kl;
        if (!mc_wds_split_name(m.name, m.name_len, &kl)) {
            if (bad_member) { /* cannot be placed in a sample: report it on its own */
                r->errors++;
                if (e) *e = me;
                return me.code;
            }
            continue;
        }
        if ((r->count || r->bad) && (strlen(r->key) != kl || memcmp(r->key, m.name, kl))) {
            r->pending = 1;
            r->pend = m;
            if (bad_member) r->pending_bad = 1, r->pending_err = me;
            return emit(r, s, e);
        }
        if (!r->count && !r->bad) {
            if (set_key(r, m.name, kl)) return mc_fail(e, MC_E_NOMEM, "out of memory");
            r->offset = m.offset;
        }
        if (bad_member) {
            mark_bad(r, &me);
            continue;
        }
        if (add_member(r, m.name + kl + 1, m.name_len - kl - 1, &m))
            return mc_fail(e, MC_E_NOMEM, "%s: out of memory assembling sample '%s'", r->shards.items[r->cur_shard], r->key);
    }
}

static int cmp_member(const void *a, const void *b) {
    const mc_wds_member *x = *(const mc_wds_member *const *)a, *y = *(const mc_wds_member *const *)b;
    return strcmp(x->ext, y->ext);
}

int mc_wds_write_sample(mc_tar_writer *w, const char *key, const mc_wds_member *members, int n, mc_err *e) {
    size_t kl = key ? strlen(key) : 0;
    const char *base = key ? strrchr(key, '/') : NULL;
    base = base ? base + 1 : key;
    if (!kl || !*base || strchr(base, '.') || strchr(key, '\n'))
        return mc_fail(e, MC_E_ARG, "%s: sample key '%.200s' is empty or has a dot or newline in its file name", w->name,
                       key ? key : "");
    if (n < 0 || n > MC_WDS_MAX_MEMBERS) return mc_fail(e, MC_E_ARG, "%s: sample '%s': bad member count %d", w->name, key, n);
    const mc_wds_member **order = malloc((size_t)(n ? n : 1) * sizeof *order);
    if (!order) return mc_fail(e, MC_E_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) order[i] = &members[i];
    qsort(order, (size_t)n, sizeof *order, cmp_member);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        const char *x = order[i]->ext;
        int okext = x && *x && !strchr(x, '/') && !strchr(x, '\n');
        for (const char *p = x; okext && *p; p++) okext = !(*p >= 'A' && *p <= 'Z');
        if (!okext || (i && !strcmp(x, order[i - 1]->ext))) {
            rc = mc_fail(e, MC_E_ARG, "%s: sample '%s': bad or duplicate extension '%.100s'", w->name, key, x ? x : "");
            break;
        }
        size_t xl = strlen(x);
        char *name = malloc(kl + xl + 2);
        if (!name) {
            rc = mc_fail(e, MC_E_NOMEM, "out of memory");
            break;
        }
        memcpy(name, key, kl);
        name[kl] = '.';
        memcpy(name + kl + 1, x, xl + 1);
        rc = mc_tar_write_member(w, name, order[i]->data, order[i]->size, e);
        free(name);
    }
    free(order);
    return rc;
}
