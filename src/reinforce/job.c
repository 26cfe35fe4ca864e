/* The dataset reinforcement job; see job.h. */
#include "reinforce/job.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/parallel.h"
#include "io/braceexpand.h"
#include "io/dr_sample.h"
#include "io/wds.h"

static const char *skip_names[MC_RSKIP_COUNT] = {
    "unreadable tar data (corrupt or truncated member, oversize or duplicate member)",
    "no image member",
    "undecodable image",
    "missing or invalid caption (txt)",
    "missing or malformed synthetic captions",
};

const char *mc_reinforce_skip_name(int reason) {
    return reason >= 0 && reason < MC_RSKIP_COUNT ? skip_names[reason] : "?";
}

void mc_reinforce_opts_init(mc_reinforce_opts *o) {
    memset(o, 0, sizeof *o);
    o->num_aug = 1;
    o->num_shards = 1;
    o->batch_images = 32;
    mc_augment_config_datacompdr(&o->aug);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int mkdir_p(const char *dir) {
    char buf[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof buf) return -1;
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++)
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0777) && errno != EEXIST) return -1;
            buf[i] = c;
        }
    return 0;
}

int mc_reinforce_check_out_dir(const char *dir, mc_err *e) {
    struct stat sb;
    if (mkdir_p(dir) || stat(dir, &sb) || !S_ISDIR(sb.st_mode))
        return mc_fail(e, MC_E_IO, "output directory %s: cannot create it (%s)", dir, strerror(errno ? errno : ENOTDIR));
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/.mc_write_probe.XXXXXX", dir);
    int fd = mkstemp(probe);
    if (fd < 0) return mc_fail(e, MC_E_IO, "output directory %s: not writable (%s)", dir, strerror(errno));
    close(fd);
    unlink(probe);
    return 0;
}

static void note_skip(mc_reinforce_stats *st, int reason, const char *msg) {
    if (st->skipped[reason]++) return;
    size_t n = strlen(msg), cap = sizeof st->first[reason];
    if (n >= cap) n = cap - 1; /* a long message is cut */
    memcpy(st->first[reason], msg, n);
    st->first[reason][n] = 0;
}

/* ---- the samples of a batch ---- */

typedef struct pending {
    char *key;
    mc_wds_member *members; /* copies (ext and data owned) */
    int count;
    int image;              /* index of the image member */
    int ntext;              /* 1 + synthetic captions */
    char **texts;           /* [ntext], owned */
    mc_image img;
    int bad;                /* MC_RSKIP_IMAGE after decoding */
    mc_err err;
    mc_augment_params *params; /* [num_aug] */
} pending;

static void pending_free(pending *p) {
    free(p->key);
    for (int i = 0; i < p->count; i++) {
        free((char *)p->members[i].ext);
        free((void *)p->members[i].data);
    }
    free(p->members);
    for (int i = 0; i < p->ntext; i++) free(p->texts[i]);
    free(p->texts);
    mc_image_free(&p->img);
    free(p->params);
    memset(p, 0, sizeof *p);
}

static int is_image_ext(const char *x) {
    return !strcmp(x, "jpg") || !strcmp(x, "jpeg") || !strcmp(x, "png") || !strcmp(x, "webp");
}

/* members the job writes itself */
static int is_output_ext(const char *x) {
    return !strcmp(x, "syn.json") || !strcmp(x, "paug.json") || !strcmp(x, "npz") || !strcmp(x, "pth.gz");
}

/* Copies sample s into p after the per-sample checks; 1 = skipped (counted), 0 = kept, < 0 fatal. */
static int take_sample(const mc_reinforce_opts *o, const mc_wds_sample *s, pending *p, mc_reinforce_stats *st,
                       mc_err *e) {
    char name[700], msg[1200];
    snprintf(name, sizeof name, "%s: sample '%s'", s->shard, s->key);
    memset(p, 0, sizeof *p);
    const mc_wds_member *im = mc_dr_sample_image(s);
    if (!im) {
        snprintf(msg, sizeof msg, "%s: no image member (jpg, png, jpeg or webp)", name);
        note_skip(st, MC_RSKIP_NO_IMAGE, msg);
        return 1;
    }
    const mc_wds_member *txt = mc_wds_sample_find(s, "txt");
    char *caption = NULL;
    mc_err le = {0};
    if (!txt) {
        snprintf(msg, sizeof msg, "%s: no txt member (the caption)", name);
        note_skip(st, MC_RSKIP_CAPTION, msg);
        return 1;
    }
    char tname[760];
    snprintf(tname, sizeof tname, "%s: txt", name);
    if (mc_dr_parse_text(txt->data, txt->size, tname, &caption, &le)) {
        note_skip(st, MC_RSKIP_CAPTION, le.msg);
        return 1;
    }
    mc_strlist syn;
    mc_strlist_init(&syn);
    int r = 0;
    if (o->syn) {
        char *const *caps;
        int n = mc_syn_find(o->syn, s->key, &caps);
        if (n == 0) {
            snprintf(msg, sizeof msg, "%s: no synthetic captions for this key", name);
            note_skip(st, MC_RSKIP_SYN, msg);
            r = 1;
        }
        for (int i = 0; i < n && !r; i++) r = mc_strlist_push(&syn, caps[i], strlen(caps[i]), e);
    } else {
        const mc_wds_member *sj = mc_wds_sample_find(s, "syn.json");
        snprintf(tname, sizeof tname, "%s: syn.json", name);
        if (sj && mc_dr_parse_syn(sj->data, sj->size, tname, NULL, &syn, &le)) {
            note_skip(st, MC_RSKIP_SYN, le.msg);
            r = 1;
        }
        for (int i = 0; i < syn.count && !r; i++)
            if (!mc_utf8_valid(syn.items[i], strlen(syn.items[i]))) { /* a lone surrogate escape */
                snprintf(msg, sizeof msg, "%s: caption %d is not valid UTF-8", tname, i);
                note_skip(st, MC_RSKIP_SYN, msg);
                r = 1;
            }
    }
    if (r) {
        free(caption);
        mc_strlist_free(&syn);
        return r;
    }
    p->ntext = 1 + syn.count;
    p->texts = malloc(sizeof(char *) * (size_t)p->ntext);
    p->key = strdup(s->key);
    p->members = calloc((size_t)s->count, sizeof *p->members);
    if (!p->texts || !p->key || !p->members) {
        free(caption);
        mc_strlist_free(&syn);
        p->ntext = 0;
        pending_free(p);
        return mc_fail(e, MC_E_NOMEM, "out of memory");
    }
    p->texts[0] = caption;
    for (int i = 0; i < syn.count; i++) p->texts[1 + i] = syn.items[i];
    free(syn.items); /* the strings now belong to p->texts */
    for (int i = 0; i < s->count; i++) {
        const mc_wds_member *m = &s->members[i];
        char *ext = strdup(m->ext);
        unsigned char *d = malloc(m->size + 1);
        if (!ext || !d) {
            free(ext);
            free(d);
            pending_free(p);
            return mc_fail(e, MC_E_NOMEM, "out of memory");
        }
        memcpy(d, m->data, m->size);
        d[m->size] = 0;
        p->members[i] = (mc_wds_member){ext, d, m->size};
        p->count++;
        if (m == im) p->image = i;
    }
    return 0;
}

/* The members written for p: the kept input members plus syn.json, paug.json and the embeddings. */
static int write_pending(const mc_reinforce_opts *o, mc_tar_writer *w, const pending *p, const mc_teacher_ensemble *ens,
                         const float *img_emb, const float *txt_emb, mc_reinforce_stats *st, mc_err *e) {
    mc_wds_member out[MC_WDS_MAX_MEMBERS + 3];
    int n = 0;
    for (int i = 0; i < p->count && n < MC_WDS_MAX_MEMBERS; i++) {
        const char *x = p->members[i].ext;
        if (is_output_ext(x) || (!o->keep_images && is_image_ext(x))) continue;
        out[n++] = p->members[i];
    }
    char *syn = NULL, *paug = NULL;
    size_t syn_len = 0, paug_len = 0, emb_len = 0;
    unsigned char *emb = NULL;
    int r = 0;
    if (p->ntext > 1 && !(r = mc_syn_json_write(p->texts + 1, p->ntext - 1, &syn, &syn_len, e)))
        out[n++] = (mc_wds_member){"syn.json", (unsigned char *)syn, syn_len};
    if (!r && !(r = mc_augment_paug_write(&o->aug, p->params, o->num_aug, &paug, &paug_len, e)))
        out[n++] = (mc_wds_member){"paug.json", (unsigned char *)paug, paug_len};
    if (!r) {
        mc_dr_emb m = {.dim = ens->dim, .n_image = o->num_aug, .image_emb = (float *)img_emb, .n_text = p->ntext,
                       .text_emb = (float *)txt_emb};
        r = o->bf16 ? mc_dr_encode_pth_gz(&m, &emb, &emb_len, e) : mc_dr_encode_npz(&m, &emb, &emb_len, e);
        if (!r) out[n++] = (mc_wds_member){o->bf16 ? "pth.gz" : "npz", emb, emb_len};
    }
    if (!r) {
        uint64_t before = w->offset;
        r = mc_wds_write_sample(w, p->key, out, n, e);
        st->bytes_written += (long long)(w->offset - before);
    }
    free(syn);
    free(paug);
    free(emb);
    return r;
}

/* The batch's decoding and augmentation, as tasks on the library's pool (core/parallel.h):
 * item j decodes sample j into its own slot; item i augments image i (sample idx[i / num_aug]). */
typedef struct decode_job {
    pending *b;
    const char *shard;
} decode_job;

static void decode_items(void *arg, int j0, int j1) {
    const decode_job *d = arg;
    for (int j = j0; j < j1; j++) {
        pending *p = &d->b[j];
        mc_err_clear(&p->err);
        const mc_wds_member *m = &p->members[p->image];
        char name[1200];
        snprintf(name, sizeof name, "%s: sample '%s': %s", d->shard, p->key, m->ext);
        if (mc_image_decode(m->data, m->size, name, &p->img, &p->err)) p->bad = 1;
    }
}

typedef struct augment_job {
    const mc_reinforce_opts *o;
    pending *b;
    const int *idx;
    mc_image *aug;
} augment_job;

static int augment_item(void *arg, int i, mc_err *e) {
    const augment_job *a = arg;
    pending *p = &a->b[a->idx[i / a->o->num_aug]];
    return mc_augment_apply_u8(&a->o->aug, &p->params[i % a->o->num_aug], &p->img, 0, 0, &a->aug[i], e);
}

/* Decodes, augments, embeds and writes the batch; frees its samples. */
static int run_batch(const mc_reinforce_opts *o, mc_teacher_ensemble *ens, const mc_tokenizer *tok, const char *shard,
                     pending *b, int nb, mc_tar_writer *w, mc_reinforce_stats *st, mc_err *e) {
    int r = 0;
    decode_job dj = {b, shard};
    mc_parallel_for(nb, 1, decode_items, &dj);
    int good = 0, ntext = 0;
    for (int j = 0; j < nb && !r; j++) {
        if (b[j].bad) {
            note_skip(st, MC_RSKIP_IMAGE, b[j].err.msg);
            continue;
        }
        b[j].params = malloc(sizeof(mc_augment_params) * (size_t)o->num_aug);
        if (!b[j].params) {
            r = mc_fail(e, MC_E_NOMEM, "out of memory");
            break;
        }
        mc_rng rng;
        mc_rng_init(&rng, o->seed, mc_key_hash(b[j].key));
        for (int a = 0; a < o->num_aug && !r; a++)
            r = mc_augment_sample(&rng, &o->aug, b[j].img.w, b[j].img.h, &b[j].params[a], e);
        good++;
        ntext += b[j].ntext;
    }
    int nimg = good * o->num_aug, D = ens->dim;
    mc_image *aug = calloc((size_t)(nimg ? nimg : 1), sizeof *aug);
    float *img_emb = malloc(sizeof(float) * (size_t)(nimg ? nimg : 1) * (size_t)D);
    float *txt_emb = malloc(sizeof(float) * (size_t)(ntext ? ntext : 1) * (size_t)D);
    const char **texts = malloc(sizeof(char *) * (size_t)(ntext ? ntext : 1));
    int *idx = malloc(sizeof(int) * (size_t)(nb ? nb : 1));
    if (!r && (!aug || !img_emb || !txt_emb || !texts || !idx)) r = mc_fail(e, MC_E_NOMEM, "out of memory");
    if (!r) {
        int g = 0, t = 0;
        for (int j = 0; j < nb; j++) {
            if (b[j].bad) continue;
            idx[g++] = j;
            for (int k = 0; k < b[j].ntext; k++) texts[t++] = b[j].texts[k];
        }
        augment_job aj = {o, b, idx, aug};
        mc_err aerr = {0};
        if (mc_parallel_items(nimg, augment_item, &aj, &aerr)) {
            r = aerr.code ? aerr.code : MC_E_ARG;
            if (e) *e = aerr;
        }
    }
    if (!r && nimg && !(r = mc_teacher_ensemble_embed_augmented(ens, aug, nimg, img_emb, e))) st->images_embedded += nimg;
    if (!r && ntext && !(r = mc_teacher_ensemble_embed_texts(ens, tok, texts, ntext, txt_emb, e))) st->texts_embedded += ntext;
    for (int g = 0, t = 0; !r && g < good; g++) {
        pending *p = &b[idx[g]];
        r = write_pending(o, w, p, ens, img_emb + (size_t)g * o->num_aug * D, txt_emb + (size_t)t * D, st, e);
        t += p->ntext;
        if (!r) st->samples_written++;
    }
    for (int i = 0; aug && i < nimg; i++) mc_image_free(&aug[i]);
    for (int j = 0; j < nb; j++) pending_free(&b[j]);
    free(aug);
    free(img_emb);
    free(txt_emb);
    free(texts);
    free(idx);
    return r;
}

/* ---- verification (resume) ---- */

int mc_reinforce_verify_shard(const char *path, int num_aug, int dim, long long *samples, mc_err *e) {
    struct stat sb;
    *samples = 0;
    if (stat(path, &sb)) return mc_fail(e, MC_E_IO, "%s: missing", path), 0;
    if (sb.st_size == 0 || sb.st_size % MC_TAR_RECORD) return mc_fail(e, MC_E_FORMAT, "%s: not a whole tar archive", path), 0;
    mc_wds_reader rd;
    if (mc_wds_open(&rd, &path, 1, NULL, e)) return 0;
    mc_wds_sample s;
    int r, ok = 1;
    while (ok && (r = mc_wds_next(&rd, &s, e)) != 0) {
        if (r < 0) {
            ok = 0;
            break;
        }
        const mc_wds_member *pa = mc_wds_sample_find(&s, "paug.json");
        mc_dr_paug pg;
        mc_dr_emb m;
        if (!pa || mc_dr_parse_paug(pa->data, pa->size, "paug.json", &pg, e)) {
            if (!pa) mc_fail(e, MC_E_FORMAT, "%s: sample '%s' has no paug.json", path, s.key);
            ok = 0;
            break;
        }
        int cnt = pg.count;
        mc_dr_paug_free(&pg);
        if (mc_dr_sample_emb(&s, &m, e)) {
            ok = 0;
            break;
        }
        if (cnt != num_aug || m.n_image != num_aug || m.dim != dim || m.n_text < 1) {
            mc_fail(e, MC_E_FORMAT, "%s: sample '%s' holds %d augmentations of width %d, not %d of %d", path, s.key,
                    m.n_image, m.dim, num_aug, dim);
            ok = 0;
        }
        mc_dr_emb_free(&m);
        if (ok) (*samples)++;
    }
    mc_wds_close(&rd);
    return ok;
}

/* ---- progress ---- */

typedef struct progress {
    int on;
    double t0, last;
    int todo;            /* shards to process in this run */
} progress;

static void progress_show(progress *pg, const mc_reinforce_stats *st, int shard_pos, double frac, int final) {
    if (!pg->on) return;
    double t = now_s();
    if (!final && t - pg->last < 0.5) return;
    pg->last = t;
    double el = t - pg->t0, rate = el > 0.2 ? (double)st->samples_read / el : 0;
    double done = pg->todo ? ((double)shard_pos + frac) / pg->todo : 1;
    char eta[32] = "--:--:--";
    if (done > 0 && done <= 1) {
        long s = (long)(el * (1 - done) / done + 0.5);
        snprintf(eta, sizeof eta, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    }
    fprintf(stderr, "\rreinforce: shard %d/%d  %lld samples  %.2f samples/s  ETA %s   ", shard_pos + (final ? 0 : 1),
            pg->todo, st->samples_read, rate, eta);
    if (final) fputc('\n', stderr);
    fflush(stderr);
}

/* Removes DIR/<name>.tmp.* left by a killed run. */
static void remove_stale(const char *dir, const char *name) {
    DIR *d = opendir(dir);
    if (!d) return;
    size_t n = strlen(name);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, name, n) || strncmp(de->d_name + n, ".tmp.", 5)) continue;
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
    }
    closedir(d);
}

/* One input shard -> one output shard. 0 ok, 1 input unreadable (counted), < 0 fatal. */
static int run_shard(const mc_reinforce_opts *o, mc_teacher_ensemble *ens, const mc_tokenizer *tok, const char *in,
                     const char *out_path, mc_reinforce_stats *st, progress *pg, int pos, mc_err *e) {
    struct stat sb;
    if (stat(in, &sb) || !S_ISREG(sb.st_mode)) {
        st->shards_failed++;
        if (!st->first_shard_error[0])
            snprintf(st->first_shard_error, sizeof st->first_shard_error, "%s: cannot open (%s)", in,
                     errno ? strerror(errno) : "not a regular file");
        return 1;
    }
    mc_wds_reader rd;
    if (mc_wds_open(&rd, &in, 1, NULL, e)) return -1;
    mc_tar_writer w;
    int r = mc_tar_writer_open_atomic(&w, out_path, e);
    if (r) {
        mc_wds_close(&rd);
        return r;
    }
    int cap = o->batch_images / o->num_aug;
    if (cap < 1) cap = 1;
    pending *b = calloc((size_t)cap, sizeof *b);
    if (!b) r = mc_fail(e, MC_E_NOMEM, "out of memory");
    int nb = 0;
    mc_wds_sample s;
    while (!r) {
        mc_err le = {0};
        int q = mc_wds_next(&rd, &s, &le);
        if (q < 0) {
            st->samples_read++;
            note_skip(st, MC_RSKIP_READ, le.msg);
            continue;
        }
        if (q == 1) {
            st->samples_read++;
            int t = take_sample(o, &s, &b[nb], st, e);
            if (t < 0) r = t;
            else if (t == 0) nb++;
            progress_show(pg, st, pos, sb.st_size ? (double)s.offset / (double)sb.st_size : 0, 0);
        }
        if (!r && nb && (nb == cap || q == 0)) {
            r = run_batch(o, ens, tok, in, b, nb, &w, st, e);
            nb = 0;
        }
        if (q == 0) break;
    }
    for (int j = 0; j < nb; j++) pending_free(&b[j]);
    free(b);
    mc_wds_close(&rd);
    if (r) {
        mc_tar_writer_abort(&w);
        return r;
    }
    return mc_tar_writer_finish(&w, e);
}

static const char *shard_base(const char *path) {
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

int mc_reinforce_run(const mc_reinforce_opts *o, mc_teacher_ensemble *ens, const mc_tokenizer *tok,
                     mc_reinforce_stats *st, mc_err *e) {
    memset(st, 0, sizeof *st);
    if (!o->input || !o->out_dir || o->num_aug < 1 || o->num_shards < 1 || o->shard_index < 0 ||
        o->shard_index >= o->num_shards || o->batch_images < 1 || ens->count < 1 || !tok)
        return mc_fail(e, MC_E_ARG, "reinforce: bad options");
    int r = mc_augment_config_check(&o->aug, e);
    if (r) return r;
    mc_strlist shards;
    mc_strlist_init(&shards);
    if ((r = mc_shard_list_expand(o->input, &shards, e))) return r;
    double t0 = now_s();
    progress pg = {o->progress, t0, 0, 0};
    /* this process's shards; verified ones first so the progress counts only real work */
    int *todo = malloc(sizeof(int) * (size_t)(shards.count ? shards.count : 1));
    char **outs = calloc((size_t)(shards.count ? shards.count : 1), sizeof(char *));
    if (!todo || !outs) r = mc_fail(e, MC_E_NOMEM, "out of memory");
    /* two inputs of one file name would write the same output shard */
    for (int k = 0; k < shards.count && !r; k++)
        for (int j = 0; j < k && !r; j++)
            if (!strcmp(shard_base(shards.items[j]), shard_base(shards.items[k])))
                r = mc_fail(e, MC_E_ARG, "input shards %s and %s would both write %s/%s", shards.items[j],
                            shards.items[k], o->out_dir, shard_base(shards.items[k]));
    int ntodo = 0;
    for (int k = 0; k < shards.count && !r; k++) {
        if (k % o->num_shards != o->shard_index) continue;
        st->shards_assigned++;
        const char *base = shard_base(shards.items[k]);
        size_t n = strlen(o->out_dir) + strlen(base) + 2;
        if (!(outs[k] = malloc(n))) {
            r = mc_fail(e, MC_E_NOMEM, "out of memory");
            break;
        }
        snprintf(outs[k], n, "%s/%s", o->out_dir, base);
        long long ns = 0;
        mc_err ve = {0};
        if (mc_reinforce_verify_shard(outs[k], o->num_aug, ens->dim, &ns, &ve)) {
            st->shards_resumed++;
            st->samples_resumed += ns;
            continue;
        }
        remove_stale(o->out_dir, base);
        todo[ntodo++] = k;
    }
    pg.todo = ntodo;
    for (int i = 0; i < ntodo && !r; i++) {
        int k = todo[i];
        int q = run_shard(o, ens, tok, shards.items[k], outs[k], st, &pg, i, e);
        if (q < 0) r = q;
        else if (q == 0) st->shards_done++;
    }
    if (!r) progress_show(&pg, st, ntodo, 0, 1);
    for (int k = 0; k < shards.count; k++) free(outs[k]);
    free(outs);
    free(todo);
    mc_strlist_free(&shards);
    st->seconds = now_s() - t0;
    if (r) return r;
    return st->shards_failed ? 1 : 0;
}

void mc_reinforce_print_summary(FILE *f, const mc_reinforce_stats *st) {
    long long skipped = 0;
    for (int k = 0; k < MC_RSKIP_COUNT; k++) skipped += st->skipped[k];
    fprintf(f, "reinforce: %d of %d shards written, %d already complete (%lld samples), %d unreadable; "
               "%lld samples read, %lld written, %lld skipped; %.1f s (%.2f samples/s)\n",
            st->shards_done, st->shards_assigned, st->shards_resumed, st->samples_resumed, st->shards_failed,
            st->samples_read, st->samples_written, skipped, st->seconds,
            st->seconds > 0 ? (double)st->samples_read / st->seconds : 0.0);
    for (int k = 0; k < MC_RSKIP_COUNT; k++)
        if (st->skipped[k]) fprintf(f, "  skipped %lld: %s (first: %s)\n", st->skipped[k], skip_names[k], st->first[k]);
    if (st->shards_failed) fprintf(f, "  unreadable shards %d (first: %s)\n", st->shards_failed, st->first_shard_error);
}
