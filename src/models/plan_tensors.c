/* The inference plan's tensors by name (plan_tensors.h): one walk over the towers' plan fields. */
#include "models/plan_tensors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "models/mci.h"
#include "models/text_encoder.h"
#include "models/vit.h"

typedef struct walk {
    mc_plan_visit_fn fn;
    void *user;
} walk;

/* One tensor: prefix + "." + leaf, ndim dims from the variadic list. */
static int visit(walk *w, const char *prefix, const char *leaf, void *slot, int ndim, ...) {
    char name[MC_PLAN_NAME_MAX];
    int64_t shape[MC_PLAN_MAX_DIMS] = {0};
    va_list ap;
    va_start(ap, ndim);
    for (int i = 0; i < ndim; i++) shape[i] = va_arg(ap, int);
    va_end(ap);
    int n = snprintf(name, sizeof name, "%s%s%s", prefix, *prefix && *leaf ? "." : "", leaf);
    if (n < 0 || n >= (int)sizeof name) return -1; /* names are short by construction */
    return w->fn(w->user, name, slot, ndim, shape);
}

#define V(w, p, leaf, slot, ...)                                                     \
    do {                                                                             \
        int r_ = visit(w, p, leaf, (void *)(slot), __VA_ARGS__);                     \
        if (r_) return r_;                                                           \
    } while (0)

static void subname(char *dst, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- MCi */

static int walk_se(walk *w, const char *p, mc_mci_se *se) {
    char q[MC_PLAN_NAME_MAX];
    subname(q, sizeof q, "%s.se", p);
    V(w, q, "w1", &se->w1, 2, se->rd, se->C);
    V(w, q, "b1", &se->b1, 1, se->rd);
    V(w, q, "w2", &se->w2, 2, se->C, se->rd);
    V(w, q, "b2", &se->b2, 1, se->C);
    return 0;
}

static int walk_mobileone(walk *w, const char *p, mc_mci_mobileone *m) {
    const mc_conv2d_shape *s = &m->s;
    V(w, p, "rep_w", &m->rep_w, 4, s->cout, s->cin / s->groups, s->kh, s->kw);
    V(w, p, "rep_b", &m->rep_b, 1, s->cout);
    return m->has_se ? walk_se(w, p, &m->se) : 0;
}

static int walk_convffn(walk *w, const char *p, mc_mci_convffn *f) {
    char q[MC_PLAN_NAME_MAX];
    subname(q, sizeof q, "%s.ffn", p);
    V(w, q, "rep_dw_w", &f->rep_dw_w, 4, f->C, 1, f->k, f->k);
    V(w, q, "rep_dw_b", &f->rep_dw_b, 1, f->C);
    V(w, q, "fc1_w", &f->fc1_w, 2, f->hidden, f->C);
    V(w, q, "fc1_b", &f->fc1_b, 1, f->hidden);
    V(w, q, "fc2_w", &f->fc2_w, 2, f->C, f->hidden);
    V(w, q, "fc2_b", &f->fc2_b, 1, f->C);
    return 0;
}

static int walk_mci(walk *w, mc_mci *m) {
    char p[MC_PLAN_NAME_MAX];
    int r;
    for (int i = 0; i < 3; i++) {
        subname(p, sizeof p, "image.stem.%d", i);
        if ((r = walk_mobileone(w, p, &m->stem[i]))) return r;
    }
    for (int k = 0; k < m->nelements; k++) {
        mc_mci_element *el = &m->net[k];
        switch (el->kind) {
        case MC_MCI_REPMIXER_STAGE:
            for (int i = 0; i < el->nblocks; i++) {
                mc_mci_repmixer_block *b = &el->rep[i];
                subname(p, sizeof p, "image.net.%d.blocks.%d", k, i);
                V(w, p, "rep_w", &b->rep_w, 4, b->C, 1, b->k, b->k);
                V(w, p, "rep_b", &b->rep_b, 1, b->C);
                if ((r = walk_convffn(w, p, &b->ffn))) return r;
                V(w, p, "ls", &b->ls, 1, b->C);
            }
            break;
        case MC_MCI_ATTENTION_STAGE:
            for (int i = 0; i < el->nblocks; i++) {
                mc_mci_attention_block *b = &el->attn[i];
                subname(p, sizeof p, "image.net.%d.blocks.%d", k, i);
                V(w, p, "norm.weight", &b->norm.weight, 1, b->C);
                V(w, p, "norm.bias", &b->norm.bias, 1, b->C);
                V(w, p, "norm.mean", &b->norm.mean, 1, b->C);
                V(w, p, "norm.var", &b->norm.var, 1, b->C);
                V(w, p, "qkv_w", &b->qkv_w, 2, 3 * b->C, b->C);
                V(w, p, "proj_w", &b->proj_w, 2, b->C, b->C);
                V(w, p, "proj_b", &b->proj_b, 1, b->C);
                V(w, p, "ls1", &b->ls1, 1, b->C);
                V(w, p, "ls2", &b->ls2, 1, b->C);
                if ((r = walk_convffn(w, p, &b->ffn))) return r;
            }
            break;
        case MC_MCI_PATCH_EMBED: {
            mc_mci_patch_embed *pe = &el->pe;
            subname(p, sizeof p, "image.net.%d", k);
            V(w, p, "rep_lk_w", &pe->rep_lk_w, 4, pe->cout, 1, 7, 7);
            V(w, p, "rep_lk_b", &pe->rep_lk_b, 1, pe->cout);
            if (pe->has_se && (r = walk_se(w, p, &pe->se))) return r;
            subname(p, sizeof p, "image.net.%d.pw", k);
            if ((r = walk_mobileone(w, p, &pe->pw))) return r;
            break;
        }
        case MC_MCI_REPCPE: {
            mc_mci_repcpe *cpe = &el->cpe;
            subname(p, sizeof p, "image.net.%d", k);
            V(w, p, "rep_w", &cpe->rep_w, 4, cpe->C, 1, cpe->k, cpe->k);
            V(w, p, "b", &cpe->b, 1, cpe->C);
            break;
        }
        }
    }
    if ((r = walk_mobileone(w, "image.conv_exp", &m->conv_exp))) return r;
    V(w, "image", "head_proj", &m->head_proj, 2, m->conv_exp.s.cout, m->embed_dim);
    return 0;
}

/* ---------------------------------------------------------------- transformer layers */

static int walk_layer(walk *w, const char *p, mc_transformer_layer *l) {
    int C = l->dim, F = l->ffn_dim;
    V(w, p, "ln1_w", &l->ln1_w, 1, C);
    V(w, p, "ln1_b", &l->ln1_b, 1, C);
    V(w, p, "qkv_w", &l->qkv_w, 2, 3 * C, C);
    V(w, p, "qkv_b", &l->qkv_b, 1, 3 * C);
    V(w, p, "out_w", &l->out_w, 2, C, C);
    V(w, p, "out_b", &l->out_b, 1, C);
    V(w, p, "ln2_w", &l->ln2_w, 1, C);
    V(w, p, "ln2_b", &l->ln2_b, 1, C);
    V(w, p, "fc1_w", &l->fc1_w, 2, F, C);
    V(w, p, "fc1_b", &l->fc1_b, 1, F);
    V(w, p, "fc2_w", &l->fc2_w, 2, C, F);
    V(w, p, "fc2_b", &l->fc2_b, 1, C);
    return 0;
}

/* ---------------------------------------------------------------- ViT */

static int walk_vit(walk *w, mc_vit *m) {
    char p[MC_PLAN_NAME_MAX];
    int S = m->stem_dim, C = m->width, r;
    for (int i = 0; i < 2; i++) {
        subname(p, sizeof p, "image.stem.%d", i);
        V(w, p, "rep_w", &m->rep_w[i], 4, S, i ? S : 3, m->k[i], m->k[i]);
        V(w, p, "rep_b", &m->rep_b[i], 1, S);
    }
    V(w, "image.stem.2", "w", &m->stem_w[2], 4, C, S, m->k[2], m->k[2]);
    V(w, "image.stem.2", "b", &m->stem_b2, 1, C);
    V(w, "image", "cls", &m->cls, 1, C);
    V(w, "image", "pos", &m->pos, 2, m->n_pos, C);
    for (int i = 0; i < m->depth; i++) {
        subname(p, sizeof p, "image.layers.%d", i);
        if ((r = walk_layer(w, p, &m->layers[i]))) return r;
    }
    V(w, "image", "post_ln_w", &m->post_ln_w, 1, C);
    V(w, "image", "post_ln_b", &m->post_ln_b, 1, C);
    V(w, "image", "proj", &m->proj, 2, C, m->proj_dim);
    return 0;
}

/* ---------------------------------------------------------------- text */

static int walk_text(walk *w, mc_text_encoder *m) {
    char p[MC_PLAN_NAME_MAX];
    int C = m->dim, r;
    V(w, "text", "tok_emb", &m->tok_emb, 2, m->vocab, C);
    V(w, "text", "pos_emb", &m->pos_emb, 2, m->context, C);
    for (int i = 0; i < m->n_blocks; i++) {
        subname(p, sizeof p, "text.blocks.%d", i);
        mc_text_block *b = &m->blocks[i];
        if (!b->is_repmixer) {
            if ((r = walk_layer(w, p, &b->tf))) return r;
            continue;
        }
        mc_text_repmixer *x = &b->rm;
        int K = x->kernel, F = x->hidden;
        V(w, p, "rm_w", &x->rm_w, 2, K, C);
        V(w, p, "rm_b", &x->rm_b, 1, C);
        V(w, p, "rf_w", &x->rf_w, 2, K, C);
        V(w, p, "rf_b", &x->rf_b, 1, C);
        V(w, p, "fc1_w", &x->fc1_w, 2, F, C);
        V(w, p, "fc1_b", &x->fc1_b, 1, F);
        V(w, p, "fc2_w", &x->fc2_w, 2, C, F);
        V(w, p, "fc2_b", &x->fc2_b, 1, C);
        V(w, p, "ls", &x->ls, 1, C);
    }
    V(w, "text", "ln_w", &m->ln_w, 1, C);
    V(w, "text", "ln_b", &m->ln_b, 1, C);
    V(w, "text", "proj", &m->proj, 2, C, m->proj_dim);
    return 0;
}

int mc_clip_plan_walk(mc_clip *c, mc_plan_visit_fn fn, void *user) {
    walk w = {fn, user};
    int r;
    V(&w, "", "logit_scale", &c->logit_scale, 0, 0);
    if (c->mci && (r = walk_mci(&w, c->mci))) return r;
    if (c->vit && (r = walk_vit(&w, c->vit))) return r;
    if (c->text && (r = walk_text(&w, c->text))) return r;
    return 0;
}

void mc_clip_plan_mark_built(mc_clip *c) {
    if (c->mci) c->mci->reparameterized = 1;
    if (c->vit) c->vit->reparameterized = 1;
    if (c->text) {
        c->text->reparameterized = 1;
        for (int i = 0; i < c->text->n_blocks; i++)
            if (c->text->blocks[i].is_repmixer) c->text->blocks[i].rm.reparameterized = 1;
    }
    c->reparameterized = 1;
    c->planned = 1;
}

static int set_null(void *user, const char *name, void *slot, int ndim, const int64_t *shape) {
    (void)user, (void)name, (void)ndim, (void)shape;
    void *null = NULL;
    memcpy(slot, &null, sizeof null);
    return 0;
}

void mc_clip_plan_detach(mc_clip *c) { mc_clip_plan_walk(c, set_null, NULL); }

static int add_bytes(void *user, const char *name, void *slot, int ndim, const int64_t *shape) {
    (void)name, (void)slot;
    size_t n = 4;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    *(size_t *)user += n;
    return 0;
}

size_t mc_clip_plan_bytes(mc_clip *c) {
    size_t n = 0;
    mc_clip_plan_walk(c, add_bytes, &n);
    return n;
}
