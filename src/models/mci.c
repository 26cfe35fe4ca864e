/* MCi network assembly: configurations, binding, reparameterization and the forward pass. */
#include "models/mci.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/image_batch.h"

/* The reference's registered towers (mci0/mci1/mci2 in mobileclip/models/mci.py): four stages,
 * RepMixer (3x3) in stages 0-2, attention in stage 3 after a RepCPE, a downsampler between
 * every two stages, squeeze-excite in the downsamplers into stages 2 and 3. */
#define OFFICIAL(nm, l0, l1, l2, l3, d0)                                                                  \
    {nm, 4, {l0, l1, l2, l3}, {d0, 2 * d0, 4 * d0, 8 * d0}, {3, 3, 3, 3}, {1, 1, 1, 1}, {0, 0, 1, 1},       \
     {0, 0, 0, 1}, {0, 0, 0, 1}, 3, 32, 2.0}
static const mc_mci_config configs[3] = {
    OFFICIAL("mci0", 2, 6, 10, 2, 64),
    OFFICIAL("mci1", 4, 12, 20, 4, 64),
    OFFICIAL("mci2", 4, 12, 24, 4, 80),
};
#define PREFIX "image_encoder.model."

const mc_mci_config *mc_mci_config_get(int variant) { return variant >= 0 && variant < 3 ? &configs[variant] : NULL; }

/* a PatchEmbed follows stage i (i < n - 1) */
static int has_downsample(const mc_mci_config *c, int i) {
    return c->downsamples[i] || c->dims[i] != c->dims[i + 1];
}

int mc_mci_config_check(const mc_mci_config *c, mc_err *e) {
    if (c->nstages < 1 || c->nstages > MC_MCI_MAX_STAGES)
        return mc_fail(e, MC_E_MODEL, "layers: %d stages (1 to %d)", c->nstages, MC_MCI_MAX_STAGES);
    for (int i = 0; i < c->nstages; i++) {
        if (c->layers[i] < 0 || c->layers[i] > 1024)
            return mc_fail(e, MC_E_MODEL, "layers[%d]: %d blocks (0 to 1024)", i, c->layers[i]);
        if (c->dims[i] < 1 || c->dims[i] > 65536)
            return mc_fail(e, MC_E_MODEL, "embed_dims[%d]: %d channels (1 to 65536)", i, c->dims[i]);
        if (!(c->mlp_ratios[i] > 0) || (int)(c->dims[i] * c->mlp_ratios[i]) < 1 || c->mlp_ratios[i] > 64)
            return mc_fail(e, MC_E_MODEL, "mlp_ratios[%d]: %g gives no FFN channels (must be > 0, at most 64)", i,
                           c->mlp_ratios[i]);
        if (c->attention[i] && c->dims[i] % c->head_dim)
            return mc_fail(e, MC_E_MODEL, "embed_dims[%d]: %d channels are not a multiple of the attention head width %d",
                           i, c->dims[i], c->head_dim);
        if (i + 1 < c->nstages && has_downsample(c, i) && c->dims[i + 1] % c->dims[i])
            return mc_fail(e, MC_E_MODEL,
                           "embed_dims[%d]: %d is not a multiple of embed_dims[%d] = %d (the downsampler is a grouped "
                           "convolution)", i + 1, c->dims[i + 1], i, c->dims[i]);
        if (i + 1 < c->nstages && has_downsample(c, i) && c->se_downsamples[i + 1] && c->dims[i + 1] < 1)
            return mc_fail(e, MC_E_MODEL, "se_downsamples[%d]: no channels", i + 1);
    }
    if (c->repmixer_kernel < 1 || c->repmixer_kernel % 2 == 0 || c->repmixer_kernel > 31)
        return mc_fail(e, MC_E_MODEL, "repmixer_kernel_size: %d (an odd number from 1 to 31)", c->repmixer_kernel);
    int cx = (int)(c->dims[c->nstages - 1] * c->cls_ratio);
    if ((int)(cx * 0.0625) < 1)
        return mc_fail(e, MC_E_MODEL,
                       "embed_dims[%d]: %d channels give a %d-wide head whose squeeze-excite has no channel (the head "
                       "needs at least 16)", c->nstages - 1, c->dims[c->nstages - 1], cx);
    return 0;
}

/* Number of consecutive blocks network.<elem>.<i> that have tensor <leaf>. */
static int count_blocks(const mc_tensor_map *w, int elem, const char *leaf) {
    char name[256];
    int n = 0;
    for (;; n++) {
        snprintf(name, sizeof name, PREFIX "network.%d.%d.%s", elem, n, leaf);
        if (!mc_tensor_map_find(w, name)) return n;
    }
}

int mc_mci_variant_from_weights(const mc_tensor_map *w) {
    const mc_tensor *t = mc_tensor_map_find(w, PREFIX "patch_embed.0.rbr_conv.0.conv.weight");
    if (!t || t->ndim != 4 || t->shape[1] != 3) return -1;
    int n[4] = {count_blocks(w, 0, "layer_scale"), count_blocks(w, 2, "layer_scale"), count_blocks(w, 4, "layer_scale"),
                count_blocks(w, 7, "layer_scale_1")};
    for (int v = 0; v < 3; v++) {
        const mc_mci_config *c = &configs[v];
        if (c->dims[0] == t->shape[0] && !memcmp(c->layers, n, sizeof n)) return v;
    }
    return -1;
}

static int bind_all(mc_mci *m, mc_tensor_map *w, mc_err *e) {
    const mc_mci_config *c = m->cfg;
    mc_mci_binder b = {w, e};
    const int *d = c->dims, n = c->nstages;
    char p[256];
    int r;
    /* stem: 3x3/2 dense, 3x3/2 depthwise, 1x1 */
    if ((r = mc_mci_bind_mobileone(&b, &m->stem[0], PREFIX "patch_embed.0", 3, d[0], 3, 2, 1, 1, 1, 0, 1)) ||
        (r = mc_mci_bind_mobileone(&b, &m->stem[1], PREFIX "patch_embed.1", d[0], d[0], 3, 2, d[0], 1, 1, 0, 1)) ||
        (r = mc_mci_bind_mobileone(&b, &m->stem[2], PREFIX "patch_embed.2", d[0], d[0], 1, 1, 1, 1, 1, 0, 1)))
        return r;
    /* network: per stage [RepCPE], blocks, [PatchEmbed to the next stage], as FastViT.__init__ */
    int k = 0;
    for (int s = 0; s < n; s++) {
        if (c->repcpe[s]) {
            mc_mci_element *el = &m->net[k];
            el->kind = MC_MCI_REPCPE;
            el->cin = el->cout = d[s];
            el->stride = 1;
            snprintf(p, sizeof p, PREFIX "network.%d", k);
            if ((r = mc_mci_bind_repcpe(&b, &el->cpe, p, d[s]))) return r;
            k++;
        }
        int attention = c->attention[s];
        mc_mci_element *el = &m->net[k];
        el->kind = attention ? MC_MCI_ATTENTION_STAGE : MC_MCI_REPMIXER_STAGE;
        el->cin = el->cout = d[s];
        el->stride = 1;
        el->nblocks = c->layers[s];
        size_t nb = el->nblocks ? (size_t)el->nblocks : 1;
        if (attention) el->attn = calloc(nb, sizeof *el->attn);
        else el->rep = calloc(nb, sizeof *el->rep);
        if (!el->attn && !el->rep) return mc_fail(e, MC_E_NOMEM, "out of memory");
        for (int i = 0; i < el->nblocks; i++) {
            snprintf(p, sizeof p, PREFIX "network.%d.%d", k, i);
            r = attention ? mc_mci_bind_attention_block(&b, &el->attn[i], p, d[s], c->head_dim, c->mlp_ratios[s])
                          : mc_mci_bind_repmixer_block(&b, &el->rep[i], p, d[s], c->repmixer_kernel, c->mlp_ratios[s]);
            if (r) return r;
        }
        k++;
        if (s + 1 < n && has_downsample(c, s)) {
            el = &m->net[k];
            el->kind = MC_MCI_PATCH_EMBED;
            el->cin = d[s];
            el->cout = d[s + 1];
            el->stride = 2;
            snprintf(p, sizeof p, PREFIX "network.%d", k);
            if ((r = mc_mci_bind_patch_embed(&b, &el->pe, p, d[s], d[s + 1], c->se_downsamples[s + 1]))) return r;
            k++;
        }
    }
    m->nelements = k;
    int C3 = d[n - 1], Cx = (int)(C3 * c->cls_ratio);
    if ((r = mc_mci_bind_mobileone(&b, &m->conv_exp, PREFIX "conv_exp", C3, Cx, 3, 1, C3, 1, 1, 1, 1))) return r;
    /* head (GlobalPool2D): x @ proj with proj [Cx, E] */
    if ((r = mc_tensor_map_f32(w, PREFIX "head.proj", 2, (const int64_t[]){Cx, m->embed_dim}, &m->head_proj, e)))
        return r;
    const char *extra = mc_tensor_map_first_unused(w, "image_encoder.");
    if (extra)
        return mc_fail(e, MC_E_MODEL, "%s: unexpected tensor '%s' for %s", w->source ? w->source : "checkpoint",
                       extra, c->name);
    return 0;
}

int mc_mci_init_config(mc_mci **out, mc_tensor_map *weights, const mc_mci_config *cfg, int embed_dim, mc_err *e) {
    *out = NULL;
    int r = mc_mci_config_check(cfg, e);
    if (r) return r;
    if (embed_dim < 1 || embed_dim > (1 << 20)) return mc_fail(e, MC_E_MODEL, "MCi: projection width %d", embed_dim);
    mc_mci *m = calloc(1, sizeof *m);
    if (!m) return mc_fail(e, MC_E_NOMEM, "out of memory");
    m->variant = -1;
    for (int v = 0; v < 3; v++)
        if (cfg == &configs[v]) m->variant = v;
    m->config = *cfg;
    m->cfg = &m->config;
    m->embed_dim = embed_dim;
    r = bind_all(m, weights, e);
    if (r) {
        mc_mci_free(m);
        return r;
    }
    *out = m;
    return 0;
}

int mc_mci_init(mc_mci **out, mc_tensor_map *weights, int variant, mc_err *e) {
    *out = NULL;
    if (variant < 0) {
        variant = mc_mci_variant_from_weights(weights);
        if (variant < 0)
            return mc_fail(e, MC_E_MODEL, "%s: no MCi0/MCi1/MCi2 image encoder found",
                           weights->source ? weights->source : "checkpoint");
    }
    const mc_mci_config *cfg = mc_mci_config_get(variant);
    if (!cfg) return mc_fail(e, MC_E_ARG, "unknown MCi variant %d", variant);
    /* E from the checkpoint's projection (an absurd one is reported by the shape check) */
    const mc_tensor *hp = mc_tensor_map_find(weights, PREFIX "head.proj");
    int64_t E = hp && hp->ndim == 2 ? hp->shape[1] : 512;
    if (E <= 0 || E > (1 << 20)) E = 512;
    return mc_mci_init_config(out, weights, cfg, (int)E, e);
}

int mc_mci_reparameterize(mc_mci *m, mc_err *e) {
    /* always recomputed from the current parameters (the reparameterize functions free their old buffers) */
    int r = 0;
    for (int i = 0; i < 3 && !r; i++) r = mc_mci_mobileone_reparameterize(&m->stem[i]);
    for (int k = 0; k < m->nelements && !r; k++) {
        mc_mci_element *el = &m->net[k];
        switch (el->kind) {
        case MC_MCI_REPMIXER_STAGE:
            for (int i = 0; i < el->nblocks && !r; i++) r = mc_mci_repmixer_block_reparameterize(&el->rep[i]);
            break;
        case MC_MCI_ATTENTION_STAGE:
            for (int i = 0; i < el->nblocks && !r; i++) r = mc_mci_attention_block_reparameterize(&el->attn[i]);
            break;
        case MC_MCI_PATCH_EMBED: r = mc_mci_patch_embed_reparameterize(&el->pe); break;
        case MC_MCI_REPCPE: r = mc_mci_repcpe_reparameterize(&el->cpe); break;
        }
    }
    if (!r) r = mc_mci_mobileone_reparameterize(&m->conv_exp);
    if (r) return mc_fail(e, MC_E_NOMEM, "out of memory reparameterizing %s", m->cfg->name);
    m->reparameterized = 1;
    return 0;
}

void mc_mci_free(mc_mci *m) {
    if (!m) return;
    for (int i = 0; i < 3; i++) mc_mci_free_mobileone(&m->stem[i]);
    for (int k = 0; k < MC_MCI_MAX_ELEMENTS; k++) {
        mc_mci_element *el = &m->net[k];
        if (el->rep)
            for (int i = 0; i < el->nblocks; i++) mc_mci_free_repmixer_block(&el->rep[i]);
        if (el->attn)
            for (int i = 0; i < el->nblocks; i++) mc_mci_free_attention_block(&el->attn[i]);
        free(el->rep);
        free(el->attn);
        if (el->kind == MC_MCI_PATCH_EMBED) mc_mci_free_patch_embed(&el->pe);
        if (el->kind == MC_MCI_REPCPE) mc_mci_free_repcpe(&el->cpe);
    }
    mc_mci_free_mobileone(&m->conv_exp);
    free(m);
}

/* ---------------------------------------------------------------- forward */

static size_t zmax(size_t a, size_t b) { return a > b ? a : b; }

/* Per-image sizes (floats) of the largest activation and of the largest hidden tensor. */
static void activation_sizes(const mc_mci *m, int R, size_t *cap, size_t *hcap, int *cmax) {
    const mc_mci_config *c = m->cfg;
    size_t H = (size_t)mc_conv_out(R, 3, 2, 1), a = (size_t)c->dims[0] * H * H, h = 0;
    int cm = m->conv_exp.s.cout;
    for (int s = 0; s < c->nstages; s++)
        if (3 * c->dims[s] > cm) cm = 3 * c->dims[s];
    H = (size_t)mc_conv_out((int)H, 3, 2, 1);
    for (int k = 0; k < m->nelements; k++) {
        const mc_mci_element *el = &m->net[k];
        if (el->stride == 2) H = (size_t)mc_conv_out((int)H, 7, 2, 3);
        a = zmax(a, (size_t)el->cout * H * H);
        int hidden = el->kind == MC_MCI_REPMIXER_STAGE && el->nblocks ? el->rep[0].ffn.hidden
                     : el->kind == MC_MCI_ATTENTION_STAGE && el->nblocks ? el->attn[0].ffn.hidden : 0;
        h = zmax(h, (size_t)hidden * H * H);
        if (el->kind == MC_MCI_ATTENTION_STAGE) h = zmax(h, (size_t)3 * el->cout * H * H);
        if (el->kind == MC_MCI_PATCH_EMBED) a = zmax(a, (size_t)el->cout * H * H);
    }
    a = zmax(a, (size_t)m->conv_exp.s.cout * H * H);
    *cap = a;
    *hcap = h ? h : 1;
    *cmax = cm;
}

static void emit(const mc_trace *t, const char *name, const float *x, int B, int C, int H, int W) {
    if (!t || !t->fn) return;
    int64_t shape[4] = {B, C, H, W};
    mc_trace_emit(t, name, x, 4, shape);
}

static int mci_forward(mc_mci *m, const float *images, int B, int R, int reparameterized, float *embed, const mc_trace *trace,
                       mc_err *e);

/* one image, as image_batch.h runs each task */
static int mci_one(void *m, const float *image, int R, int reparameterized, float *embed, mc_err *e) {
    return mci_forward(m, image, 1, R, reparameterized, embed, NULL, e);
}

int mc_mci_forward(mc_mci *m, const float *images, int B, int R, int reparameterized, float *embed, const mc_trace *trace,
                   mc_err *e) {
    if (B < 1 || R < 1 || R > 16384) return mc_fail(e, MC_E_ARG, "%s: bad input size B=%d R=%d", m->cfg->name, B, R);
    /* a batch: one image per thread at a time (the same results as one by one) */
    if (B > 1 && !(trace && trace->fn))
        return mc_image_batch_forward(mci_one, m, images, B, R, reparameterized, embed, m->embed_dim, e);
    return mci_forward(m, images, B, R, reparameterized, embed, trace, e);
}

static int mci_forward(mc_mci *m, const float *images, int B, int R, int reparameterized, float *embed, const mc_trace *trace,
                       mc_err *e) {
    if (reparameterized && !m->reparameterized)
        return mc_fail(e, MC_E_ARG, "%s: reparameterized form requested before mc_mci_reparameterize", m->cfg->name);
    size_t cap, hcap;
    int cmax;
    activation_sizes(m, R, &cap, &hcap, &cmax);
    cap *= (size_t)B;
    hcap *= (size_t)B;
    size_t vcap = 4 * (size_t)cmax + 3 * (size_t)B * cmax;
    float *mem = malloc((5 * cap + hcap + vcap) * sizeof(float));
    if (!mem) return mc_fail(e, MC_E_NOMEM, "%s: out of memory for activations (B=%d, R=%d)", m->cfg->name, B, R);
    mc_mci_ws ws = {mem + 2 * cap, mem + 3 * cap, mem + 4 * cap, mem + 5 * cap, mem + 5 * cap + hcap, cap, hcap, vcap};
    float *x = mem, *y = mem + cap, *tmp;
    int rep = reparameterized ? 1 : 0, C = m->cfg->dims[0], H = R, W = R;

    /* stem */
    mc_mci_mobileone_forward(&m->stem[0], y, images, B, H, W, rep, &ws);
    H = mc_conv_out(H, 3, 2, 1), W = mc_conv_out(W, 3, 2, 1);
    mc_mci_mobileone_forward(&m->stem[1], x, y, B, H, W, rep, &ws);
    H = mc_conv_out(H, 3, 2, 1), W = mc_conv_out(W, 3, 2, 1);
    mc_mci_mobileone_forward(&m->stem[2], y, x, B, H, W, rep, &ws);
    tmp = x, x = y, y = tmp;
    emit(trace, "patch_embed", x, B, C, H, W);

    for (int k = 0; k < m->nelements; k++) {
        const mc_mci_element *el = &m->net[k];
        switch (el->kind) {
        case MC_MCI_REPMIXER_STAGE:
            for (int i = 0; i < el->nblocks; i++) mc_mci_repmixer_block_forward(&el->rep[i], x, B, H, W, rep, &ws);
            break;
        case MC_MCI_ATTENTION_STAGE:
            for (int i = 0; i < el->nblocks; i++)
                if (mc_mci_attention_block_forward(&el->attn[i], x, B, H, W, rep, &ws)) {
                    free(mem);
                    return mc_fail(e, MC_E_NOMEM, "MCi: out of memory in the attention of stage element %d", k);
                }
            break;
        case MC_MCI_REPCPE: mc_mci_repcpe_forward(&el->cpe, x, B, H, W, rep, &ws); break;
        case MC_MCI_PATCH_EMBED:
            mc_mci_patch_embed_forward(&el->pe, y, x, B, H, W, rep, &ws);
            H = mc_conv_out(H, 7, 2, 3), W = mc_conv_out(W, 7, 2, 3);
            tmp = x, x = y, y = tmp;
            break;
        }
        C = el->cout;
        if (trace && trace->fn) {
            char name[32];
            snprintf(name, sizeof name, "network.%d", k);
            emit(trace, name, x, B, C, H, W);
        }
    }

    mc_mci_mobileone_forward(&m->conv_exp, y, x, B, H, W, rep, &ws);
    C = m->conv_exp.s.cout;
    emit(trace, "conv_exp", y, B, C, H, W);
    float *pooled = x; /* [B, C] */
    mc_mean_hw_forward(pooled, y, B, C, H * W);
    if (trace && trace->fn) mc_trace_emit(trace, "pooled", pooled, 2, (const int64_t[]){B, C});
    mc_matmul_forward(embed, pooled, m->head_proj, B, C, m->embed_dim);
    if (trace && trace->fn) mc_trace_emit(trace, "embed", embed, 2, (const int64_t[]){B, m->embed_dim});
    free(mem);
    return 0;
}
