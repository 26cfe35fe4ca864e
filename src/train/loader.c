/* loader.c - see loader.h. One reader thread walks the stream and copies each raw sample of
 * this rank into the next free slot of a ring; worker threads decode slots in sequence order
 * (any worker may take any slot); mc_loader_next consumes slots strictly in sequence order.
 * The ring is bounded, so memory is `queue` raw samples plus their decoded tensors. */
#include "train/loader.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strlist.h"
#include "image/image.h"
#include "io/braceexpand.h"
#include "io/dr_sample.h"
#include "io/wds.h"
#include "text/tokenizer.h"

enum { SLOT_EMPTY, SLOT_RAW, SLOT_BUSY, SLOT_READY, SLOT_BAD, SLOT_END };

typedef struct slot {
    int state;
    mc_loader_pos pos;
    /* raw copy of the sample */
    char *key, *shard;
    int count;
    mc_wds_member *members;   /* ext/data point into buf */
    unsigned char *buf;
    size_t buf_len, buf_cap;
    int members_cap;
    /* decoded */
    float *image;             /* [3,R,R] */
    int32_t *tokens;          /* [n_sets,T] */
    float *t_image, *t_text;  /* [D], [n_sets,D] */
    char msg[512];
} slot;

struct mc_loader {
    mc_loader_config cfg;
    int n_sets;
    mc_augment_config aug;
    mc_strlist shards;
    int cap;
    slot *slots;
    pthread_mutex_t mu;
    pthread_cond_t c_free, c_raw, c_done;
    int64_t tail;             /* slots filled by the reader */
    int64_t next_work;        /* next slot a worker takes */
    int64_t head;             /* next slot the consumer takes */
    int stop;
    pthread_t reader;
    pthread_t *workers;
    int n_workers;
    mc_loader_stats stats;
    int64_t good_this_epoch;  /* usable samples consumed in the consumer's current epoch */
    int64_t epoch_seen;
    char last_bad[512];       /* the latest skip reason, for the no-usable-sample error */
};

static uint64_t epoch_seed(uint64_t seed, int64_t epoch) {
    return seed ^ ((uint64_t)(epoch + 1) * 0xD1B54A32D192ED03ull);
}

/* ---- reader ---- */

static int slot_copy(slot *s, const mc_wds_sample *w, mc_err *e) {
    size_t need = strlen(w->key) + 1 + strlen(w->shard) + 1;
    for (int i = 0; i < w->count; i++) need += strlen(w->members[i].ext) + 1 + w->members[i].size + 1;
    if (need > s->buf_cap) {
        unsigned char *nb = realloc(s->buf, need);
        if (!nb) return mc_fail(e, MC_E_NOMEM, "%s: sample '%s': out of memory", w->shard, w->key);
        s->buf = nb;
        s->buf_cap = need;
    }
    if (w->count > s->members_cap) {
        mc_wds_member *nm = realloc(s->members, sizeof *nm * (size_t)w->count);
        if (!nm) return mc_fail(e, MC_E_NOMEM, "%s: sample '%s': out of memory", w->shard, w->key);
        s->members = nm;
        s->members_cap = w->count;
    }
    size_t at = 0;
#define PUT(p, n) (memcpy(s->buf + at, (p), (n)), s->buf[at + (n)] = 0, at += (n) + 1, (char *)s->buf + at - (n) - 1)
    s->key = PUT(w->key, strlen(w->key));
    s->shard = PUT(w->shard, strlen(w->shard));
    for (int i = 0; i < w->count; i++) {
        s->members[i].ext = PUT(w->members[i].ext, strlen(w->members[i].ext));
        s->members[i].data = (unsigned char *)PUT(w->members[i].data, w->members[i].size);
        s->members[i].size = w->members[i].size;
    }
#undef PUT
    s->count = w->count;
    s->buf_len = at;
    return 0;
}

/* Waits for the slot of sequence `tail` to be free; NULL when stopping. Called locked. */
static slot *reader_wait_slot(mc_loader *l) {
    while (!l->stop && l->tail - l->head >= l->cap) pthread_cond_wait(&l->c_free, &l->mu);
    return l->stop ? NULL : &l->slots[l->tail % l->cap];
}

static void reader_publish(mc_loader *l, slot *s, int state) {
    s->state = state;
    l->tail++;
    pthread_cond_broadcast(&l->c_raw);
    pthread_cond_broadcast(&l->c_done);
}

/* The shard order of an epoch: a Fisher-Yates permutation drawn from (seed, epoch). */
static void epoch_order(const mc_loader *l, int64_t epoch, const char **order) {
    int n = l->shards.count;
    for (int i = 0; i < n; i++) order[i] = l->shards.items[i];
    mc_augment_rng rng;
    mc_augment_rng_seed(&rng, epoch_seed(l->cfg.seed, epoch), UINT64_MAX);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)mc_augment_rng_below(&rng, i + 1);
        const char *t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

static void *reader_main(void *arg) {
    mc_loader *l = arg;
    const char **order = malloc(sizeof *order * (size_t)l->shards.count);
    int64_t epoch = l->cfg.start.epoch, skip_below = l->cfg.start.index;
    mc_err e;
    for (;;) {
        int64_t index = 0, produced = 0;
        mc_wds_reader r;
        int rc = order ? 0 : mc_fail(&e, MC_E_NOMEM, "loader: out of memory");
        if (!rc) {
            epoch_order(l, epoch, order);
            mc_wds_options wo = {.max_member = l->cfg.max_member};
            rc = mc_wds_open(&r, order, l->shards.count, &wo, &e);
        }
        if (rc) {
            pthread_mutex_lock(&l->mu);
            slot *s = reader_wait_slot(l);
            if (s) {
                snprintf(s->msg, sizeof s->msg, "%s", e.msg);
                reader_publish(l, s, SLOT_END);
            }
            pthread_mutex_unlock(&l->mu);
            break;
        }
        int stopping = 0;
        for (;;) {
            mc_wds_sample w;
            rc = mc_wds_next(&r, &w, &e);
            if (rc == 0) break;
            int64_t at = index++;
            if (at % l->cfg.world != l->cfg.rank || at < skip_below) continue;
            pthread_mutex_lock(&l->mu);
            slot *s = reader_wait_slot(l);
            if (!s) {
                pthread_mutex_unlock(&l->mu);
                stopping = 1;
                break;
            }
            pthread_mutex_unlock(&l->mu);
            /* the slot is ours until published: the consumer and workers never touch it */
            s->pos = (mc_loader_pos){epoch, at};
            int st = SLOT_RAW;
            if (rc < 0) {
                snprintf(s->msg, sizeof s->msg, "%s", e.msg);
                st = SLOT_BAD;
            } else if (slot_copy(s, &w, &e)) {
                snprintf(s->msg, sizeof s->msg, "%s", e.msg);
                st = SLOT_BAD;
            }
            produced++;
            pthread_mutex_lock(&l->mu);
            reader_publish(l, s, st);
            pthread_mutex_unlock(&l->mu);
        }
        mc_wds_close(&r);
        if (stopping) break;
        if (produced == 0 && skip_below == 0) {
            pthread_mutex_lock(&l->mu);
            slot *s = reader_wait_slot(l);
            if (s) {
                snprintf(s->msg, sizeof s->msg, "%s: no sample for rank %d of %d in a whole epoch", l->cfg.spec,
                         l->cfg.rank, l->cfg.world);
                reader_publish(l, s, SLOT_END);
            }
            pthread_mutex_unlock(&l->mu);
            break;
        }
        epoch++;
        skip_below = 0;
    }
    free(order);
    return NULL;
}

/* ---- decoding ---- */

static int member_text(const mc_wds_sample *w, const char *ext, char **out, mc_err *e) {
    const mc_wds_member *m = mc_wds_sample_find(w, ext);
    char name[700];
    snprintf(name, sizeof name, "%s: sample '%s': %s", w->shard, w->key, ext);
    if (!m) return mc_fail(e, MC_E_FORMAT, "%s: missing member", name);
    return mc_dr_parse_text(m->data, m->size, name, out, e);
}

static int check_dim(const mc_wds_sample *w, int got, int want, mc_err *e) {
    if (got == want) return 0;
    return mc_fail(e, MC_E_FORMAT, "%s: sample '%s': teacher embeddings are %d wide, expected %d", w->shard, w->key,
                   got, want);
}

static int decode_slot(const mc_loader *l, slot *s, mc_err *e) {
    const mc_loader_config *c = &l->cfg;
    mc_wds_sample w = {.key = s->key, .shard = s->shard, .count = s->count, .members = s->members};
    mc_augment_rng rng;
    mc_augment_rng_seed(&rng, epoch_seed(c->seed, s->pos.epoch), (uint64_t)s->pos.index);
    mc_image img = {0};
    mc_augment_params *paug = NULL, fresh;
    mc_dr_emb emb = {0};
    mc_strlist syn = {0};
    char *txt = NULL, name[700];
    int rc;
    const mc_wds_member *im = mc_dr_sample_image(&w);
    if (!im) {
        rc = mc_fail(e, MC_E_FORMAT, "%s: sample '%s': no image member (jpg, png, jpeg, webp)", w.shard, w.key);
        goto done;
    }
    snprintf(name, sizeof name, "%s: sample '%s': image", w.shard, w.key);
    if ((rc = mc_image_decode(im->data, im->size, name, &img, e))) goto done;
    if ((rc = member_text(&w, "txt", &txt, e))) goto done;
    const mc_augment_params *p = &fresh;
    if (c->reinforced) {
        const mc_wds_member *pm = mc_wds_sample_find(&w, "paug.json");
        const mc_wds_member *sm = mc_wds_sample_find(&w, "syn.json");
        if (!pm || !sm) {
            rc = mc_fail(e, MC_E_FORMAT, "%s: sample '%s': missing member %s", w.shard, w.key,
                         pm ? "syn.json" : "paug.json");
            goto done;
        }
        int n_aug = 0;
        snprintf(name, sizeof name, "%s: sample '%s': paug.json", w.shard, w.key);
        if ((rc = mc_augment_paug_parse(&l->aug, (const char *)pm->data, pm->size, name, &paug, &n_aug, e))) goto done;
        if ((rc = mc_dr_sample_emb(&w, &emb, e))) goto done;
        if ((rc = check_dim(&w, emb.dim, c->teacher_dim, e))) goto done;
        int aug_idx = (int)mc_augment_rng_below(&rng, n_aug);
        if (aug_idx >= emb.n_image || emb.n_text < 1) {
            rc = mc_fail(e, MC_E_FORMAT, "%s: sample '%s': %d augmentations but %d image / %d text embeddings", w.shard,
                         w.key, n_aug, emb.n_image, emb.n_text);
            goto done;
        }
        snprintf(name, sizeof name, "%s: sample '%s': syn.json", w.shard, w.key);
        if ((rc = mc_dr_parse_syn(sm->data, sm->size, name, NULL, &syn, e))) goto done;
        int scapi = (int)mc_augment_rng_below(&rng, syn.count);
        const float *syn_row = emb.n_text > 1 ? (1 + scapi < emb.n_text ? emb.text_emb + (size_t)(1 + scapi) * emb.dim : NULL)
                                              : (scapi < emb.n_syn ? emb.syn_text_emb + (size_t)scapi * emb.dim : NULL);
        if (!syn_row) {
            rc = mc_fail(e, MC_E_FORMAT, "%s: sample '%s': no teacher embedding for synthetic caption %d", w.shard,
                         w.key, scapi);
            goto done;
        }
        size_t D = (size_t)c->teacher_dim;
        memcpy(s->t_image, emb.image_emb + (size_t)aug_idx * D, D * sizeof(float));
        memcpy(s->t_text, emb.text_emb, D * sizeof(float));
        memcpy(s->t_text + D, syn_row, D * sizeof(float));
        if ((rc = mc_tokenizer_encode_ctx(c->tokenizer, syn.items[scapi], strlen(syn.items[scapi]), s->tokens + c->context,
                                          c->context, e)) < 0) {
            mc_err_prefix(e, "%s: sample '%s': synthetic caption", w.shard, w.key);
            goto done;
        }
        p = &paug[aug_idx];
    } else if ((rc = mc_augment_sample(&rng, &l->aug, img.w, img.h, &fresh, e))) {
        goto done;
    }
    if ((rc = mc_tokenizer_encode_ctx(c->tokenizer, txt, strlen(txt), s->tokens, c->context, e)) < 0) {
        mc_err_prefix(e, "%s: sample '%s': caption", w.shard, w.key);
        goto done;
    }
    rc = mc_augment_apply(&l->aug, p, &img, c->image_size, c->image_size, s->image, e);
    if (rc) mc_err_prefix(e, "%s: sample '%s'", w.shard, w.key);
done:
    mc_image_free(&img);
    free(paug);
    mc_dr_emb_free(&emb);
    mc_strlist_free(&syn);
    free(txt);
    return rc < 0 ? rc : 0;
}

static void *worker_main(void *arg) {
    mc_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && !(l->next_work < l->tail)) pthread_cond_wait(&l->c_raw, &l->mu);
        if (l->stop) break;
        slot *s = &l->slots[l->next_work % l->cap];
        l->next_work++;
        if (s->state != SLOT_RAW) continue; /* BAD or END from the reader: nothing to decode */
        s->state = SLOT_BUSY;
        pthread_mutex_unlock(&l->mu);
        mc_err e = {0};
        int rc = decode_slot(l, s, &e);
        if (rc) snprintf(s->msg, sizeof s->msg, "%s", e.msg);
        pthread_mutex_lock(&l->mu);
        s->state = rc ? SLOT_BAD : SLOT_READY;
        pthread_cond_broadcast(&l->c_done);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* ---- public ---- */

int mc_loader_open(mc_loader **out, const mc_loader_config *cfg, mc_err *e) {
    *out = NULL;
    if (!cfg->spec || cfg->batch < 1 || cfg->image_size < 1 || cfg->context < 2 || !cfg->tokenizer ||
        cfg->threads < 1 || cfg->world < 1 || cfg->rank < 0 || cfg->rank >= cfg->world ||
        (cfg->reinforced && cfg->teacher_dim < 1) || cfg->start.epoch < 0 || cfg->start.index < 0)
        return mc_fail(e, MC_E_ARG, "loader: invalid configuration");
    mc_loader *l = calloc(1, sizeof *l);
    if (!l) return mc_fail(e, MC_E_NOMEM, "loader: out of memory");
    l->cfg = *cfg;
    l->n_sets = cfg->reinforced ? 2 : 1;
    mc_augment_config_datacompdr(&l->aug);
    l->aug.size_w = l->aug.size_h = cfg->image_size;
    l->aug.normalize = 0;
    if (!cfg->reinforced) { /* open_clip's training transform */
        l->aug.rand_augment = 0;
        l->aug.scale[0] = 0.9;
        l->aug.scale[1] = 1.0;
    }
    int rc = mc_shard_list_expand(cfg->spec, &l->shards, e);
    if (!rc && l->shards.count == 0) rc = mc_fail(e, MC_E_ARG, "%s: no shard", cfg->spec);
    l->cap = cfg->queue > 0 ? cfg->queue : 4 * cfg->batch;
    if (l->cap < cfg->batch) l->cap = cfg->batch;
    if (!rc && !(l->slots = calloc((size_t)l->cap, sizeof *l->slots))) rc = mc_fail(e, MC_E_NOMEM, "loader: out of memory");
    size_t img = (size_t)3 * cfg->image_size * cfg->image_size, D = cfg->reinforced ? (size_t)cfg->teacher_dim : 0;
    for (int i = 0; !rc && i < l->cap; i++) {
        slot *s = &l->slots[i];
        s->image = malloc(img * sizeof(float));
        s->tokens = malloc(sizeof(int32_t) * (size_t)cfg->context * (size_t)l->n_sets);
        s->t_image = malloc(sizeof(float) * (D ? D : 1));
        s->t_text = malloc(sizeof(float) * (D ? D * 2 : 1));
        if (!s->image || !s->tokens || !s->t_image || !s->t_text) rc = mc_fail(e, MC_E_NOMEM, "loader: out of memory");
    }
    if (rc) {
        mc_loader_close(l);
        return rc;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->c_free, NULL);
    pthread_cond_init(&l->c_raw, NULL);
    pthread_cond_init(&l->c_done, NULL);
    l->stats.epoch = cfg->start.epoch;
    l->epoch_seen = cfg->start.epoch;
    l->good_this_epoch = cfg->start.index > 0; /* a resumed epoch already had samples */
    l->workers = calloc((size_t)cfg->threads, sizeof *l->workers);
    if (!l->workers || pthread_create(&l->reader, NULL, reader_main, l)) {
        free(l->workers);
        l->workers = NULL;
        l->n_workers = -1; /* no reader to join */
        mc_loader_close(l);
        return mc_fail(e, MC_E_NOMEM, "loader: cannot start threads");
    }
    for (int i = 0; i < cfg->threads; i++) {
        if (pthread_create(&l->workers[i], NULL, worker_main, l)) break;
        l->n_workers++;
    }
    if (l->n_workers == 0) {
        mc_loader_close(l);
        return mc_fail(e, MC_E_NOMEM, "loader: cannot start threads");
    }
    *out = l;
    return 0;
}

int mc_batch_alloc(mc_batch *b, const mc_loader *l, mc_err *e) { return mc_batch_alloc_n(b, l, l->cfg.batch, e); }

void mc_batch_copy_group(mc_batch *dst, const mc_batch *src, int g) {
    size_t B = (size_t)src->B, img = (size_t)3 * src->R * src->R, T = (size_t)src->T, D = (size_t)src->D;
    memcpy(dst->images + g * B * img, src->images, sizeof(float) * B * img);
    for (int s = 0; s < src->n_sets; s++) {
        memcpy(dst->tokens + ((size_t)s * dst->B + g * B) * T, src->tokens + s * B * T, sizeof(int32_t) * B * T);
        if (D)
            memcpy(dst->teacher_text + ((size_t)s * dst->B + g * B) * D, src->teacher_text + s * B * D,
                   sizeof(float) * B * D);
    }
    if (D) memcpy(dst->teacher_image + g * B * D, src->teacher_image, sizeof(float) * B * D);
}

int mc_batch_alloc_n(mc_batch *b, const mc_loader *l, int B_, mc_err *e) {
    memset(b, 0, sizeof *b);
    const mc_loader_config *c = &l->cfg;
    b->B = B_;
    b->R = c->image_size;
    b->T = c->context;
    b->n_sets = l->n_sets;
    b->D = c->reinforced ? c->teacher_dim : 0;
    size_t B = (size_t)b->B;
    b->images = malloc(sizeof(float) * B * 3 * (size_t)b->R * (size_t)b->R);
    b->tokens = malloc(sizeof(int32_t) * B * (size_t)b->n_sets * (size_t)b->T);
    if (b->D) {
        b->teacher_image = malloc(sizeof(float) * B * (size_t)b->D);
        b->teacher_text = malloc(sizeof(float) * B * 2 * (size_t)b->D);
    }
    if (!b->images || !b->tokens || (b->D && (!b->teacher_image || !b->teacher_text))) {
        mc_batch_free(b);
        return mc_fail(e, MC_E_NOMEM, "loader: out of memory for a batch of %d", B_);
    }
    return 0;
}

void mc_batch_free(mc_batch *b) {
    free(b->images);
    free(b->tokens);
    free(b->teacher_image);
    free(b->teacher_text);
    memset(b, 0, sizeof *b);
}

int mc_loader_next(mc_loader *l, mc_batch *b, mc_err *e) {
    const mc_loader_config *c = &l->cfg;
    if (b->B != c->batch || b->n_sets != l->n_sets) return mc_fail(e, MC_E_ARG, "loader: batch of another shape");
    size_t R2 = (size_t)3 * c->image_size * c->image_size, T = (size_t)c->context, D = (size_t)b->D;
    int got = 0;
    pthread_mutex_lock(&l->mu);
    while (got < b->B) {
        slot *s = &l->slots[l->head % l->cap];
        while (!(l->head < l->tail && (s->state == SLOT_READY || s->state == SLOT_BAD || s->state == SLOT_END)))
            pthread_cond_wait(&l->c_done, &l->mu);
        if (s->state == SLOT_END) {
            pthread_mutex_unlock(&l->mu);
            return mc_fail(e, MC_E_FORMAT, "%s", s->msg);
        }
        if (s->pos.epoch != l->epoch_seen) { /* the consumer crossed into a new epoch */
            if (l->good_this_epoch == 0) {
                pthread_mutex_unlock(&l->mu);
                return mc_fail(e, MC_E_FORMAT, "%s: no usable sample in a whole epoch (last problem: %s)", c->spec,
                               l->last_bad[0] ? l->last_bad : "none");
            }
            l->epoch_seen = s->pos.epoch;
            l->good_this_epoch = 0;
            l->stats.epoch = s->pos.epoch;
        }
        if (got == 0) b->first = s->pos;
        b->next = (mc_loader_pos){s->pos.epoch, s->pos.index + 1};
        if (s->state == SLOT_BAD) {
            l->stats.bad++;
            snprintf(l->last_bad, sizeof l->last_bad, "%s", s->msg);
            if (c->on_bad) c->on_bad(c->user, s->msg);
        } else {
            memcpy(b->images + (size_t)got * R2, s->image, R2 * sizeof(float));
            for (int k = 0; k < l->n_sets; k++) {
                memcpy(b->tokens + ((size_t)k * b->B + got) * T, s->tokens + k * T, T * sizeof(int32_t));
                if (D) memcpy(b->teacher_text + ((size_t)k * b->B + got) * D, s->t_text + k * D, D * sizeof(float));
            }
            if (D) memcpy(b->teacher_image + (size_t)got * D, s->t_image, D * sizeof(float));
            got++;
            l->good_this_epoch++;
            l->stats.samples++;
        }
        s->state = SLOT_EMPTY;
        l->head++;
        pthread_cond_broadcast(&l->c_free);
    }
    pthread_mutex_unlock(&l->mu);
    return 0;
}

mc_loader_stats mc_loader_get_stats(const mc_loader *l) { return l->stats; }

void mc_loader_close(mc_loader *l) {
    if (!l) return;
    if (l->n_workers >= 0 && l->workers) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_broadcast(&l->c_free);
        pthread_cond_broadcast(&l->c_raw);
        pthread_cond_broadcast(&l->c_done);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->reader, NULL);
        for (int i = 0; i < l->n_workers; i++) pthread_join(l->workers[i], NULL);
    }
    if (l->workers || l->n_workers < 0) {
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->c_free);
        pthread_cond_destroy(&l->c_raw);
        pthread_cond_destroy(&l->c_done);
    }
    free(l->workers);
    for (int i = 0; l->slots && i < l->cap; i++) {
        slot *s = &l->slots[i];
        free(s->buf);
        free(s->members);
        free(s->image);
        free(s->tokens);
        free(s->t_image);
        free(s->t_text);
    }
    free(l->slots);
    mc_strlist_free(&l->shards);
    free(l);
}
