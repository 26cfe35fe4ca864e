/* The training data loader (src/train/loader.h) over small reinforced shards
 * (tests/common/dr_shards.h):
 * 1. pairing: every delivered image equals the stored augmentation whose teacher row came
 *    with it (reapplied here independently from the shard's paug.json), the real caption's
 *    tokens come with the real teacher row, the synthetic caption j's tokens with row 1 + j;
 * 2. determinism: 1 and 3 decoding threads give identical batches, across an epoch boundary;
 * 3. bad samples (undecodable image, missing syn.json, wrong teacher width) are skipped and
 *    counted, exactly the broken ones;
 * 4. resume: opening at a batch's `next` position gives the batches that followed it;
 * 5. ranks: two ranks' samples are disjoint and together the one-process stream;
 * 6. plain shards (lambda 0): image + caption only;
 * 7. a shard list without a usable sample is an error, not a hang. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment/augment.h"
#include "common/dr_shards.h"
#include "common/files.h"
#include "common/test_util.h"
#include "image/image.h"
#include "io/wds.h"
#include "text/tokenizer.h"
#include "train/loader.h"

#define HALF 8
#define R 32
#define T 24
#define NS 2
#define PER 9
#define BAD_EVERY 3

static mc_tokenizer *tok;
static char spec[600];
static int n_bad_msgs;

static void count_bad(void *user, const char *msg) {
    (void)user;
    (void)msg;
    n_bad_msgs++;
}

static mc_loader *open_loader(int threads, int reinforced, int rank, int world, mc_loader_pos start, int B) {
    mc_loader_config c = {.spec = spec, .reinforced = reinforced, .teacher_dim = 2 * HALF, .batch = B,
                          .image_size = R, .context = T, .tokenizer = tok, .threads = threads, .seed = 42,
                          .rank = rank, .world = world, .start = start, .on_bad = count_bad};
    mc_loader *l;
    mc_err e;
    if (mc_loader_open(&l, &c, &e)) mc_test_fatal("%s", e.msg);
    return l;
}

static int batch_equal(const mc_batch *a, const mc_batch *b) {
    size_t B = (size_t)a->B;
    return !memcmp(a->images, b->images, sizeof(float) * B * 3 * R * R) &&
           !memcmp(a->tokens, b->tokens, sizeof(int32_t) * B * a->n_sets * T) &&
           (!a->D || (!memcmp(a->teacher_image, b->teacher_image, sizeof(float) * B * a->D) &&
                      !memcmp(a->teacher_text, b->teacher_text, sizeof(float) * B * 2 * a->D))) &&
           a->first.epoch == b->first.epoch && a->first.index == b->first.index && a->next.index == b->next.index;
}

/* The sample at stream index idx of an epoch (one shard order): read it back from the tars. */
typedef struct raw {
    mc_image img;
    mc_augment_params p[MC_TEST_DR_N_AUG];
    char txt[128], syn[MC_TEST_DR_N_SYN][128];
} raw;

/* The samples of both shards in file order, keyed by their txt. */
static raw raws[2 * PER];
static int n_raws;

static void read_raws(const char *dir) {
    mc_augment_config acfg;
    mc_augment_config_datacompdr(&acfg);
    for (int s = 0; s < 2; s++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%02d.tar", dir, s);
        const char *paths[1] = {path};
        mc_wds_reader r;
        mc_wds_sample w;
        mc_err e;
        if (mc_wds_open(&r, paths, 1, NULL, &e)) mc_test_fatal("%s", e.msg);
        int k = 0, rc;
        while ((rc = mc_wds_next(&r, &w, &e)) != 0) {
            if (rc < 0) mc_test_fatal("%s", e.msg);
            int bad = mc_test_dr_is_bad(k++, BAD_EVERY);
            if (bad) continue;
            raw *x = &raws[n_raws++];
            const mc_wds_member *m = mc_wds_sample_find(&w, "png");
            if (mc_image_decode(m->data, m->size, "png", &x->img, &e)) mc_test_fatal("%s", e.msg);
            m = mc_wds_sample_find(&w, "txt");
            snprintf(x->txt, sizeof x->txt, "%.*s", (int)m->size, (const char *)m->data);
            m = mc_wds_sample_find(&w, "paug.json");
            mc_augment_params *p;
            int n;
            if (mc_augment_paug_parse(&acfg, (const char *)m->data, m->size, "paug", &p, &n, &e)) mc_test_fatal("%s", e.msg);
            memcpy(x->p, p, sizeof x->p);
            free(p);
            int a, b;
            for (int j = 0; j < MC_TEST_DR_N_SYN; j++) {
                sscanf(w.key, "s%d_%d", &a, &b);
                snprintf(x->syn[j], sizeof x->syn[j], "synthetic caption %d of sample %d %d", j, a, b);
            }
        }
        mc_wds_close(&r);
    }
}

static void tokens_of(const char *s, int32_t *ids) {
    mc_err e;
    if (mc_tokenizer_encode_ctx(tok, s, strlen(s), ids, T, &e) < 0) mc_test_fatal("%s", e.msg);
}

/* 1: every row of a batch checked against the raw samples */
static void check_pairing(const mc_batch *b) {
    mc_augment_config acfg;
    mc_augment_config_datacompdr(&acfg);
    acfg.size_w = acfg.size_h = R;
    acfg.normalize = 0;
    float *chw = malloc(sizeof(float) * 3 * R * R);
    int32_t ids[T];
    for (int i = 0; i < b->B; i++) {
        /* which sample: its real caption's tokens */
        const int32_t *tk = b->tokens + (size_t)i * T;
        const raw *x = NULL;
        for (int k = 0; k < n_raws && !x; k++) {
            tokens_of(raws[k].txt, ids);
            if (!memcmp(ids, tk, sizeof ids)) x = &raws[k];
        }
        CHECK(x != NULL, "row %d: the real caption is no sample's", i);
        if (!x) continue;
        const float *ti = b->teacher_image + (size_t)i * b->D, *tt = b->teacher_text + (size_t)i * b->D,
                    *ts = b->teacher_text + ((size_t)b->B + i) * b->D;
        int a = (int)lrintf(ti[0] * 100) - 1, j = (int)lrintf((ts[0] - 0.2f) * 100) - 1;
        CHECK(a >= 0 && a < MC_TEST_DR_N_AUG && ti[HALF] == ti[0], "row %d: teacher image row tag %g", i, ti[0]);
        CHECK(tt[0] == 0.5f, "row %d: real teacher text row tag %g", i, tt[0]);
        CHECK(j >= 0 && j < MC_TEST_DR_N_SYN, "row %d: synthetic teacher row tag %g", i, ts[0]);
        if (a < 0 || a >= MC_TEST_DR_N_AUG || j < 0 || j >= MC_TEST_DR_N_SYN) continue;
        mc_err e;
        if (mc_augment_apply(&acfg, &x->p[a], &x->img, R, R, chw, &e)) mc_test_fatal("%s", e.msg);
        CHECK(!memcmp(chw, b->images + (size_t)i * 3 * R * R, sizeof(float) * 3 * R * R),
              "row %d (%s): image is not augmentation %d reapplied", i, x->txt, a);
        tokens_of(x->syn[j], ids);
        CHECK(!memcmp(ids, b->tokens + ((size_t)b->B + i) * T, sizeof ids), "row %d: synthetic caption is not %d", i, j);
    }
    free(chw);
}

int main(void) {
    mc_err e;
    if (!(tok = mc_tokenizer_load_builtin(&e))) mc_test_fatal("%s", e.msg);
    const char *dir = mc_test_tmpdir("mc_test_loader");
    mc_test_write_dr_shards(dir, 2, PER, HALF, 48, BAD_EVERY);
    snprintf(spec, sizeof spec, "%s/{00..01}.tar", dir);
    read_raws(dir);
    int good_per_epoch = n_raws, bad_per_epoch = 2 * PER - n_raws;
    printf("  %d usable + %d broken samples per epoch\n", good_per_epoch, bad_per_epoch);

    /* 2: 1 vs 3 threads, 6 batches of 5 = 2 epochs and more */
    const int B = 5, NB = 6;
    mc_loader *l1 = open_loader(1, 1, 0, 1, (mc_loader_pos){0, 0}, B), *l3 = open_loader(3, 1, 0, 1, (mc_loader_pos){0, 0}, B);
    mc_batch b1[NB], b3;
    mc_batch_alloc(&b3, l3, &e);
    int same = 1;
    n_bad_msgs = 0;
    for (int i = 0; i < NB; i++) {
        if (mc_batch_alloc(&b1[i], l1, &e)) mc_test_fatal("%s", e.msg);
        CHECK(mc_loader_next(l1, &b1[i], &e) == 0, "batch %d: %s", i, e.msg);
        CHECK(mc_loader_next(l3, &b3, &e) == 0, "batch %d (3 threads): %s", i, e.msg);
        same &= batch_equal(&b1[i], &b3);
        check_pairing(&b1[i]);
    }
    CHECK(same, "1 and 3 decoding threads gave different batches");
    mc_loader_stats s1 = mc_loader_get_stats(l1);
    /* 3: 30 usable samples delivered; the broken ones met on the way counted */
    int64_t last = b1[NB - 1].next.epoch * 2 * PER + b1[NB - 1].next.index; /* stream positions consumed */
    int64_t expect_bad = 0;
    for (int64_t q = 0; q < last; q++) expect_bad += mc_test_dr_is_bad((int)(q % (2 * PER) % PER), BAD_EVERY) ? 1 : 0;
    /* (positions -> samples depend on the shard order, but both shards break the same k) */
    CHECK(s1.samples == B * NB && s1.bad == expect_bad, "stats: %lld samples, %lld bad (expected %d, %lld)",
          (long long)s1.samples, (long long)s1.bad, B * NB, (long long)expect_bad);
    CHECK(n_bad_msgs == 2 * s1.bad, "%d skip reports for 2 x %lld bad samples", n_bad_msgs, (long long)s1.bad);
    CHECK(s1.epoch >= 1, "6 batches of 5 cross an epoch of %d (epoch %lld)", good_per_epoch, (long long)s1.epoch);
    printf("  %lld samples, %lld skipped, epoch %lld; 1 vs 3 threads identical: %s\n", (long long)s1.samples,
           (long long)s1.bad, (long long)s1.epoch, same ? "yes" : "no");
    /* the epochs differ in their choices (augmentations / captions): batch 0 vs the same samples later */
    mc_loader_close(l1);
    mc_loader_close(l3);
    mc_batch_free(&b3);

    /* 4: resume from batch 2's end position */
    mc_loader *lr = open_loader(2, 1, 0, 1, b1[2].next, B);
    mc_batch br;
    mc_batch_alloc(&br, lr, &e);
    for (int i = 3; i < NB; i++) {
        CHECK(mc_loader_next(lr, &br, &e) == 0, "resumed batch %d: %s", i, e.msg);
        CHECK(batch_equal(&br, &b1[i]), "resumed batch %d differs from the continued run", i);
    }
    mc_loader_close(lr);
    mc_batch_free(&br);

    /* 5: ranks 0 and 1 of 2, batches of 2: positions of opposite parity, the same rows as one process */
    mc_loader *r0 = open_loader(1, 1, 0, 2, (mc_loader_pos){0, 0}, 2), *r1 = open_loader(2, 1, 1, 2, (mc_loader_pos){0, 0}, 2);
    mc_batch q0, q1;
    mc_batch_alloc(&q0, r0, &e);
    mc_batch_alloc(&q1, r1, &e);
    CHECK(mc_loader_next(r0, &q0, &e) == 0 && mc_loader_next(r1, &q1, &e) == 0, "ranks: %s", e.msg);
    CHECK(q0.first.index % 2 == 0 && q1.first.index % 2 == 1, "rank positions %lld, %lld", (long long)q0.first.index,
          (long long)q1.first.index);
    /* every rank row is a row of the one-process stream at the same position (same choices) */
    int found = 0;
    for (int r = 0; r < 2; r++) {
        const mc_batch *q = r ? &q1 : &q0;
        for (int i = 0; i < 2; i++)
            for (int bi = 0; bi < 2; bi++)
                for (int k = 0; k < B; k++)
                    found += !memcmp(q->images + (size_t)i * 3 * R * R, b1[bi].images + (size_t)k * 3 * R * R,
                                     sizeof(float) * 3 * R * R) &&
                             !memcmp(q->teacher_text + ((size_t)2 + i) * 2 * HALF,
                                     b1[bi].teacher_text + ((size_t)B + k) * 2 * HALF, sizeof(float) * 2 * HALF);
    }
    CHECK(found == 4, "%d of the 4 rank rows found in the one-process stream", found);
    mc_loader_close(r0);
    mc_loader_close(r1);
    mc_batch_free(&q0);
    mc_batch_free(&q1);
    for (int i = 0; i < NB; i++) mc_batch_free(&b1[i]);

    /* 6: plain shards */
    mc_loader *lp = open_loader(2, 0, 0, 1, (mc_loader_pos){0, 0}, 4);
    mc_batch bp;
    mc_batch_alloc(&bp, lp, &e);
    CHECK(bp.n_sets == 1 && !bp.teacher_image, "plain batch layout");
    CHECK(mc_loader_next(lp, &bp, &e) == 0, "plain: %s", e.msg);
    int32_t ids[T];
    int ok = 0;
    for (int k = 0; k < n_raws; k++) {
        tokens_of(raws[k].txt, ids);
        ok += !memcmp(ids, bp.tokens, sizeof ids);
    }
    CHECK(ok == 1, "plain: first caption matches %d samples", ok);
    float mn = 1, mx = 0;
    for (size_t i = 0; i < (size_t)4 * 3 * R * R; i++) {
        mn = fminf(mn, bp.images[i]);
        mx = fmaxf(mx, bp.images[i]);
    }
    CHECK(mn >= 0 && mx <= 1 && mx > mn, "plain: pixels in [%g, %g]", mn, mx);
    mc_loader_close(lp);
    mc_batch_free(&bp);

    /* 7: nothing usable (expected teacher width wrong for every sample) -> an error */
    mc_loader_config c = {.spec = spec, .reinforced = 1, .teacher_dim = 3, .batch = 2, .image_size = R, .context = T,
                          .tokenizer = tok, .threads = 2, .seed = 1, .rank = 0, .world = 1};
    mc_loader *lz;
    if (mc_loader_open(&lz, &c, &e)) mc_test_fatal("%s", e.msg);
    mc_batch bz;
    mc_batch_alloc(&bz, lz, &e);
    int rz = mc_loader_next(lz, &bz, &e);
    CHECK(rz < 0 && strstr(e.msg, "no usable sample"), "no usable sample: rc %d, '%s'", rz, e.msg);
    mc_loader_close(lz);
    mc_batch_free(&bz);
    c.spec = "/nonexistent/{0..1}.tar";
    CHECK(mc_loader_open(&lz, &c, &e) == 0, "open of missing shards defers: %s", e.msg);
    mc_batch_alloc(&bz, lz, &e);
    rz = mc_loader_next(lz, &bz, &e);
    CHECK(rz < 0, "missing shards: an error");
    printf("  missing shards: %s\n", e.msg);
    mc_loader_close(lz);
    mc_batch_free(&bz);

    for (int k = 0; k < n_raws; k++) mc_image_free(&raws[k].img);
    mc_tokenizer_free(tok);
    return mc_test_finish("loader");
}
