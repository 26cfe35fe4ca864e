/* The parameter store (src/models/param_store.h) and the derived inference plan:
 *  - the S0 test weights (golden/train/s0.params.tsv) copied into the store keep every name,
 *    shape and value; entries are aligned; flags follow open_clip's rule: the no-decay set of
 *    the trainable parameters equals golden/train/inputs.json's no_weight_decay_params exactly;
 *  - a torch.save written from the store reads back with the same names, dtypes (float32,
 *    int64 counters), shapes and bytes, and loads strictly into a declared store;
 *  - strict loading names missing, mis-shaped and unexpected tensors;
 *  - mc_clip binds into the store (model pointers are store entries; the mapping is released);
 *  - mc_clip_plan_build after changing parameters: the reparameterized form equals the training form
 *    of the new values again (and differed before the rebuild). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/test_util.h"
#include "common/weight_rule.h"
#include "io/checkpoint.h"
#include "models/clip.h"
#include "models/mci.h"
#include "models/param_store.h"
#include "models/text_encoder.h"

#define REL_TOL 1e-4

static double max_rel(const float *a, const float *b, size_t n) {
    double m = 0, d = 0;
    for (size_t i = 0; i < n; i++) {
        m = fmax(m, fabs(b[i]));
        d = fmax(d, fabs((double)a[i] - b[i]));
        if (isnan(a[i])) d = INFINITY;
    }
    return d / (m > 0 ? m : 1);
}

static void test_layout_and_flags(const mc_tensor_map *w, const mc_param_store *s) {
    CHECK(s->count == w->count, "entries %d, tensors %d", s->count, w->count);
    int bad_values = 0, bad_align = 0, counters = 0, buffers = 0;
    for (int i = 0; i < w->count && i < s->count; i++) {
        const mc_param *p = &s->params[i];
        const mc_tensor *t = &w->items[i].t;
        CHECK(!strcmp(p->name, w->items[i].name), "entry %d is '%s', expected '%s'", i, p->name, w->items[i].name);
        CHECK(mc_param_store_find(s, p->name) == p, "lookup of '%s'", p->name);
        if (p->flags & MC_PARAM_COUNTER) {
            counters++;
            CHECK(t->dtype == MC_DTYPE_I64 && s->counters[p->offset] == 0, "counter %s", p->name);
            continue;
        }
        if (p->flags & MC_PARAM_BUFFER) buffers++;
        if (p->offset % 16) bad_align++;
        if (memcmp(s->data + p->offset, t->data, p->numel * sizeof(float))) bad_values++;
        CHECK(mc_param_store_owner(s, s->data + p->offset + p->numel - 1) == p, "owner of the last float of %s", p->name);
    }
    CHECK(!bad_values && !bad_align, "%d entries with other values, %d unaligned", bad_values, bad_align);
    printf("ok   %d entries, %zu floats, %d counters, %d BN buffers\n", s->count, s->total, counters, buffers);
    CHECK(mc_param_store_find(s, "nope") == NULL && mc_param_store_data(s, "nope") == NULL, "absent name");

    /* no-decay set == inputs.json's list (trainable parameters only; buffers are not parameters) */
    mc_json *in = mc_test_load_json("golden/train/inputs.json");
    const mc_json *list = mc_json_get(in, "no_weight_decay_params");
    if (!list || list->type != MC_JSON_ARRAY) mc_test_fatal("inputs.json: no no_weight_decay_params list");
    int ours = 0, missing = 0, decay = 0;
    for (int i = 0; i < s->count; i++) {
        const mc_param *p = &s->params[i];
        if (p->flags & MC_PARAM_BUFFER) continue;
        if (p->flags & MC_PARAM_NO_DECAY) {
            ours++;
            int found = 0;
            for (int k = 0; k < list->count && !found; k++) found = !strcmp(list->items[k].str, p->name);
            CHECK(found, "'%s' has no weight decay here but decay in the reference", p->name);
        } else decay++;
    }
    for (int k = 0; k < list->count; k++) {
        const mc_param *p = mc_param_store_find(s, list->items[k].str);
        if (!p || !(p->flags & MC_PARAM_NO_DECAY) || (p->flags & MC_PARAM_BUFFER)) {
            missing++;
            CHECK(0, "reference no-decay parameter '%s' is not a no-decay parameter here", list->items[k].str);
        }
    }
    printf("%-4s no weight decay: %d parameters (reference %d), decay: %d (reference 195)\n",
           ours == list->count && !missing ? "ok" : "FAIL", ours, list->count, decay);
    CHECK(ours == list->count && decay == 195, "no-decay %d vs %d, decay %d", ours, list->count, decay);
    mc_json_free(in);
}

/* Writes the store, reads it back with the checkpoint reader: same names, dtypes, shapes, bytes. */
static void test_round_trip(const mc_param_store *s) {
    char path[] = "/tmp/mc_param_store_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) mc_test_fatal("mkstemp");
    close(fd);
    mc_err e = {0};
    mc_param_store copy;
    mc_param_store_init(&copy);
    /* a counter with a value beyond float precision must survive exactly */
    const mc_param *cnt = NULL;
    for (int i = 0; i < s->count && !cnt; i++)
        if (s->params[i].flags & MC_PARAM_COUNTER) cnt = &s->params[i];
    if (!cnt) mc_test_fatal("no counter in the test model");
    s->counters[cnt->offset] = ((int64_t)1 << 53) + 3;
    CHECK(mc_param_store_save(s, path, &e) == 0, "save: %s", e.msg);
    mc_tensor_map back;
    mc_tensor_map_init(&back);
    CHECK(mc_checkpoint_load(path, &back, &e) == 0, "reload: %s", e.msg);
    int same = back.count == s->count;
    for (int i = 0; same && i < s->count; i++) {
        const mc_param *p = &s->params[i];
        const mc_tensor *t = &back.items[i].t;
        same = !strcmp(back.items[i].name, p->name) && t->ndim == p->ndim && mc_tensor_is_contiguous(t);
        for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == p->shape[d];
        if (!same) break;
        if (p->flags & MC_PARAM_COUNTER) same = t->dtype == MC_DTYPE_I64 && !memcmp(t->data, s->counters + p->offset, 8);
        else same = t->dtype == MC_DTYPE_F32 && !memcmp(t->data, s->data + p->offset, p->numel * sizeof(float));
        if (!same) printf("     first difference at '%s'\n", p->name);
    }
    printf("%-4s torch.save round trip: %d tensors, identical names, dtypes, shapes and bytes\n", same ? "ok" : "FAIL",
           back.count);
    CHECK(same, "round trip differs");

    /* strict load into a declared layout */
    for (int i = 0; i < s->count; i++)
        if (mc_param_store_declare(&copy, s->params[i].name, s->params[i].ndim, s->params[i].shape, &e))
            mc_test_fatal("declare: %s", e.msg);
    CHECK(mc_param_store_declare(&copy, s->params[0].name, 0, NULL, &e) != 0 && strstr(e.msg, "twice"),
          "duplicate declaration refused: %s", e.msg);
    if (mc_param_store_alloc(&copy, &e)) mc_test_fatal("alloc: %s", e.msg);
    CHECK(mc_param_store_load_map(&copy, &back, NULL, &e) == 0, "strict load: %s", e.msg);
    CHECK(copy.total == s->total && !memcmp(copy.data, s->data, s->total * sizeof(float)) &&
              !memcmp(copy.counters, s->counters, (size_t)s->ncounters * 8),
          "declared store after strict load differs");
    s->counters[cnt->offset] = 0;

    /* strictness: unexpected, missing, mis-shaped, wrong dtype; each error names the tensor */
    const char *victim = "image_encoder.model.network.4.3.convffn.fc1.bias";
    mc_named_tensor *it = mc_test_entry(&back, victim);
    it->name[0] = 'X';
    int r = mc_param_store_load_map(&copy, &back, NULL, &e);
    printf("     %s\n", e.msg);
    CHECK(r == MC_E_MODEL && strstr(e.msg, "missing") && strstr(e.msg, victim), "%s", e.msg);
    const char *keep[] = {"image_encoder.", NULL};
    it->name[0] = 'i';
    mc_tensor extra = it->t;
    if (mc_tensor_map_add(&back, "image_encoder.model.network.4.3.convffn.fc3.bias", &extra, &e)) mc_test_fatal("%s", e.msg);
    r = mc_param_store_load_map(&copy, &back, NULL, &e);
    printf("     %s\n", e.msg);
    CHECK(r == MC_E_MODEL && strstr(e.msg, "unexpected") && strstr(e.msg, "network.4.3.convffn.fc3.bias"), "%s", e.msg);
    back.items[back.count - 1].name[0] = 't'; /* outside the filter: ignored */
    CHECK(mc_param_store_load_map(&copy, &back, keep, &e) == 0, "filtered load ignores other prefixes: %s", e.msg);
    back.items[back.count - 1].name[0] = 'i';
    CHECK(mc_param_store_load_map(&copy, &back, keep, &e) == MC_E_MODEL, "the filter keeps image tensors strict");
    free(back.items[--back.count].name);
    it->name[0] = 'i';
    it->t.shape[0]--;
    r = mc_param_store_load_map(&copy, &back, NULL, &e);
    printf("     %s\n", e.msg);
    CHECK(r == MC_E_MODEL && strstr(e.msg, "shape") && strstr(e.msg, victim), "%s", e.msg);
    it->t.shape[0]++;
    it->t.dtype = MC_DTYPE_I32;
    r = mc_param_store_load_map(&copy, &back, NULL, &e);
    printf("     %s\n", e.msg);
    CHECK(r == MC_E_MODEL && strstr(e.msg, "dtype") && strstr(e.msg, victim), "%s", e.msg);
    it->t.dtype = MC_DTYPE_F32;
    CHECK(mc_param_store_load_map(&copy, &back, NULL, &e) == 0, "restored map loads again: %s", e.msg);

    mc_tensor_map_free(&back);
    mc_param_store_free(&copy);
    unlink(path);
}

static void test_clip_plan(mc_tensor_map *w) {
    mc_clip c;
    mc_err e = {0};
    if (mc_clip_init(&c, w, MC_ARCH_S0, 1, 1, 1, &e)) mc_test_fatal("clip init: %s", e.msg);
    CHECK(w->count == 0 && w->items == NULL, "the checkpoint map is released by mc_clip_init");
    const mc_param *hp = mc_param_store_owner(&c.store, c.mci->head_proj);
    CHECK(hp && !strcmp(hp->name, "image_encoder.model.head.proj"), "head.proj binds into the store");
    hp = mc_param_store_owner(&c.store, c.text->blocks[0].rm.wm);
    CHECK(hp && !strcmp(hp->name, "text_encoder.transformer.0.token_mixer.mixer.rbr_conv.0.conv.weight"),
          "text RepMixer kernel binds into the store");
    CHECK(c.logit_scale == mc_param_store_data(&c.store, "logit_scale"), "logit scale in the store");

    int R = c.cfg->image_size, E = MC_CLIP_EMBED_DIM;
    float *img = malloc(sizeof(float) * 3 * R * R), out[5][MC_CLIP_EMBED_DIM], txt[5][MC_CLIP_EMBED_DIM];
    for (int i = 0; i < 3 * R * R; i++) img[i] = (float)((i * 2654435761u) % 1000) / 999.f;
    int32_t tok[77] = {49406, 320, 1125, 539, 320, 2368, 269, 49407};
    /* 0: reparameterized, 1: training form, before the change */
    for (int f = 0; f < 2; f++) {
        c.reparameterized = !f;
        if (mc_clip_encode_image(&c, img, 1, out[f], NULL, &e) || mc_clip_encode_text(&c, tok, 1, txt[f], NULL, &e))
            mc_test_fatal("%s", e.msg);
    }
    double d0 = max_rel(out[0], out[1], E), t0 = max_rel(txt[0], txt[1], E);
    CHECK(d0 <= REL_TOL && t0 <= REL_TOL, "forms agree at load: image %.3e text %.3e", d0, t0);

    /* change parameters and buffers folded by the plan: a RepMixer conv, a BN's statistics and
     * gain, a layer scale, the text RepMixer's BN and conv */
    static const char *edits[] = {
        "image_encoder.model.network.0.0.token_mixer.mixer.rbr_conv.0.conv.weight",
        "image_encoder.model.network.2.3.token_mixer.mixer.rbr_conv.0.bn.running_var",
        "image_encoder.model.network.4.1.convffn.conv.bn.weight",
        "image_encoder.model.patch_embed.1.rbr_scale.bn.running_mean",
        "image_encoder.model.network.0.1.token_mixer.layer_scale",
        "text_encoder.transformer.0.token_mixer.mixer.rbr_conv.0.bn.running_var",
        "text_encoder.transformer.5.token_mixer.mixer.rbr_conv.0.conv.weight",
        "text_encoder.transformer.5.convffn.conv.bn.weight",
    };
    for (size_t k = 0; k < sizeof edits / sizeof *edits; k++) {
        const mc_param *p = mc_param_store_find(&c.store, edits[k]);
        if (!p) mc_test_fatal("no %s", edits[k]);
        float *x = c.store.data + p->offset;
        for (size_t i = 0; i < p->numel; i++) x[i] = x[i] * 1.5f + 0.05f * (float)((i % 7) + 1);
    }
    c.reparameterized = 1; /* 2: reparameterized, stale */
    if (mc_clip_encode_image(&c, img, 1, out[2], NULL, &e) || mc_clip_encode_text(&c, tok, 1, txt[2], NULL, &e))
        mc_test_fatal("%s", e.msg);
    if (mc_clip_plan_build(&c, &e)) mc_test_fatal("plan: %s", e.msg);
    if (mc_clip_plan_build(&c, &e)) mc_test_fatal("plan (again): %s", e.msg); /* re-run is safe */
    for (int f = 3; f < 5; f++) { /* 3: reparameterized rebuilt, 4: training form */
        c.reparameterized = f == 3;
        if (mc_clip_encode_image(&c, img, 1, out[f], NULL, &e) || mc_clip_encode_text(&c, tok, 1, txt[f], NULL, &e))
            mc_test_fatal("%s", e.msg);
    }
    double moved = max_rel(out[4], out[1], E), tmoved = max_rel(txt[4], txt[1], E);
    double stale = max_rel(out[2], out[4], E), tstale = max_rel(txt[2], txt[4], E);
    double d1 = max_rel(out[3], out[4], E), t1 = max_rel(txt[3], txt[4], E);
    printf("%-4s plan rebuild: reparameterized vs training form %.3e (image) %.3e (text); the change moved the output "
           "%.3e / %.3e, the stale plan was off by %.3e / %.3e\n",
           d1 <= REL_TOL && t1 <= REL_TOL ? "ok" : "FAIL", d1, t1, moved, tmoved, stale, tstale);
    CHECK(moved > 1e-2 && tmoved > 1e-2, "the edits change the outputs");
    CHECK(stale > 1e-2 && tstale > 1e-2, "a stale plan differs (the check can fail)");
    CHECK(d1 <= REL_TOL && t1 <= REL_TOL, "rebuilt plan equals the training form");
    free(img);
    mc_clip_free(&c);
}

int main(void) {
    mc_tensor_map w;
    mc_tensor_map_init(&w);
    mc_err e = {0};
    if (mc_weights_from_tsv(mc_test_path("golden/train/s0.params.tsv"), &w, NULL, &e)) mc_test_fatal("%s", e.msg);
    mc_param_store s;
    mc_param_store_init(&s);
    if (mc_param_store_from_map(&s, &w, NULL, &e)) mc_test_fatal("from_map: %s", e.msg);
    test_layout_and_flags(&w, &s);
    test_round_trip(&s);

    /* the prefix filter keeps only the asked-for tensors */
    mc_param_store part;
    mc_param_store_init(&part);
    const char *keep[] = {"logit_scale", "text_encoder.", NULL};
    CHECK(mc_param_store_from_map(&part, &w, keep, &e) == 0, "%s", e.msg);
    int others = 0;
    for (int i = 0; i < part.count; i++) others += strncmp(part.params[i].name, "text_encoder.", 13) != 0;
    CHECK(others == 1 && mc_param_store_find(&part, "logit_scale"), "filtered store: %d non-text entries", others);
    mc_param_store_free(&part);
    mc_param_store_free(&s);

    test_clip_plan(&w);
    mc_tensor_map_free(&w);
    return mc_test_finish("test_param_store");
}
