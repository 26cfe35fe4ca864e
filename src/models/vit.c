/* MobileCLIP ViT image tower; see vit.h. */
#include "models/vit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/image_batch.h"
#include "models/reparameterize.h"
#include "nn/ops.h"

#define PREFIX "image_encoder.model."
#define MAX_LAYERS 4096

static const char *src_name(const mc_tensor_map *w) { return w->source ? w->source : "checkpoint"; }

int mc_vit_detect(const mc_tensor_map *w) {
    return mc_tensor_map_find(w, PREFIX "patch_emb.0.block.conv.weight") != NULL &&
           mc_tensor_map_has_prefix(w, PREFIX "transformer.0.");
}

static const mc_tensor *need(const mc_tensor_map *w, const char *name, int ndim, mc_err *e) {
    const mc_tensor *t = mc_tensor_map_find(w, name);
    if (!t) {
        mc_fail(e, MC_E_MODEL, "%s: missing tensor '%s'", src_name(w), name);
        return NULL;
    }
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] >= 1 && t->shape[i] <= (1 << 24);
    if (!ok) {
        char s[128];
        mc_fail(e, MC_E_MODEL, "%s: tensor '%s' has unexpected shape %s (%d dimensions expected)", src_name(w),
                name, mc_shape_str(t->shape, t->ndim, s, sizeof s), ndim);
        return NULL;
    }
    return t;
}

void mc_vit_free(mc_vit *m) {
    if (!m) return;
    free(m->layers);
    free(m->bn_coef);
    free(m->rep_w[0]);
    free(m);
}

static int bind_bn(mc_tensor_map *w, int i, int S, const float **out4, mc_err *e) {
    static const char *parts[4] = {"weight", "bias", "running_mean", "running_var"};
    int64_t shape[1] = {S};
    for (int j = 0; j < 4; j++) {
        char name[128];
        snprintf(name, sizeof name, PREFIX "patch_emb.%d.block.norm.%s", i, parts[j]);
        int r = mc_tensor_map_f32(w, name, 1, shape, &out4[j], e);
        if (r) return r;
    }
    return 0;
}

/* Eval-mode BatchNorm scale/shift of the two stem norms, from the current parameters. */
static void bn_coefficients(mc_vit *m) {
    int S = m->stem_dim;
    for (int i = 0; i < 2; i++)
        mc_batchnorm_eval_coeffs(m->bn_coef + (size_t)(2 * i) * S, m->bn_coef + (size_t)(2 * i + 1) * S, m->bn[i][0],
                                 m->bn[i][1], m->bn[i][2], m->bn[i][3], 1e-5f, S);
}

mc_vit_config mc_vit_config_b16(void) {
    mc_vit_config c = {768, 12, 12, 4 * 768, 768 / 4 > 32 ? 768 / 4 : 32, (224 / 16) * (224 / 16), {4, 2, 2}};
    return c;
}

/* The configuration a checkpoint implies: widths, kernels, position count and depth from the
 * tensors, heads = width / 64, FFN width read by the layer binder (0). */
static int infer_config(const mc_tensor_map *w, mc_vit_config *c, int *proj, mc_err *e) {
    memset(c, 0, sizeof *c);
    const mc_tensor *t0, *t1, *t2, *t;
    if (!(t0 = need(w, PREFIX "patch_emb.0.block.conv.weight", 4, e)) ||
        !(t1 = need(w, PREFIX "patch_emb.1.block.conv.weight", 4, e)) ||
        !(t2 = need(w, PREFIX "patch_emb.2.block.conv.weight", 4, e)))
        return MC_E_MODEL;
    c->stem_dim = (int)t0->shape[0];
    c->width = (int)t2->shape[0];
    c->k[0] = (int)t0->shape[2];
    c->k[1] = (int)t1->shape[2];
    c->k[2] = (int)t2->shape[2];
    if (!(t = need(w, PREFIX "pos_embed.pos_embed.pos_embed", 4, e))) return MC_E_MODEL;
    c->n_pos = (int)t->shape[2];
    if (!(t = need(w, PREFIX "classifier.proj", 2, e))) return MC_E_MODEL;
    *proj = (int)t->shape[1];
    c->heads = c->width / 64;
    if (c->heads < 1 || c->width % 64)
        return mc_fail(e, MC_E_MODEL, "%s: ViT width %d is not a multiple of the 64-wide heads", src_name(w), c->width);
    int n = 0;
    char prefix[128];
    for (;; n++) {
        snprintf(prefix, sizeof prefix, PREFIX "transformer.%d.", n);
        if (!mc_tensor_map_has_prefix(w, prefix)) break;
        if (n == MAX_LAYERS) return mc_fail(e, MC_E_MODEL, "%s: more than %d ViT layers", src_name(w), MAX_LAYERS);
    }
    if (n == 0) return mc_fail(e, MC_E_MODEL, "%s: no tensors under '" PREFIX "transformer.0.'", src_name(w));
    c->depth = n;
    return 0;
}

static int init(mc_vit *m, mc_tensor_map *w, const mc_vit_config *c, int proj, mc_err *e) {
    int S = m->stem_dim = c->stem_dim;
    int C = m->width = c->width;
    for (int i = 0; i < 3; i++) m->k[i] = c->k[i];
    m->n_pos = c->n_pos;
    m->proj_dim = proj;
    m->heads = c->heads;
    if (S < 1 || C < 1 || c->heads < 1 || C % c->heads || c->n_pos < 1 || proj < 1 || c->depth < 1 ||
        c->depth > MAX_LAYERS || c->k[0] < 1 || c->k[1] < 1 || c->k[2] < 1)
        return mc_fail(e, MC_E_MODEL, "%s: bad ViT configuration", src_name(w));

    int r;
    const int64_t s_w0[4] = {S, 3, m->k[0], m->k[0]}, s_w1[4] = {S, S, m->k[1], m->k[1]},
                  s_w2[4] = {C, S, m->k[2], m->k[2]}, s_c[1] = {C}, s_cls[3] = {1, 1, C},
                  s_pos[4] = {1, 1, m->n_pos, C}, s_proj[2] = {C, m->proj_dim};
    if ((r = mc_tensor_map_f32(w, PREFIX "patch_emb.0.block.conv.weight", 4, s_w0, &m->stem_w[0], e)) ||
        (r = bind_bn(w, 0, S, m->bn[0], e)) ||
        (r = mc_tensor_map_f32(w, PREFIX "patch_emb.1.block.conv.weight", 4, s_w1, &m->stem_w[1], e)) ||
        (r = bind_bn(w, 1, S, m->bn[1], e)) ||
        (r = mc_tensor_map_f32(w, PREFIX "patch_emb.2.block.conv.weight", 4, s_w2, &m->stem_w[2], e)) ||
        (r = mc_tensor_map_f32(w, PREFIX "patch_emb.2.block.conv.bias", 1, s_c, &m->stem_b2, e)) ||
        (r = mc_tensor_map_f32(w, PREFIX "pos_embed.pos_embed.pos_embed", 4, s_pos, &m->pos, e)) ||
        (r = mc_tensor_map_f32(w, PREFIX "post_transformer_norm.weight", 1, s_c, &m->post_ln_w, e)) ||
        (r = mc_tensor_map_f32(w, PREFIX "post_transformer_norm.bias", 1, s_c, &m->post_ln_b, e)) ||
        (r = mc_tensor_map_f32(w, PREFIX "classifier.proj", 2, s_proj, &m->proj, e)))
        return r;
    /* the reference also has a cls-less variant (mean pooling), but no MobileCLIP model uses it:
     * a checkpoint without the token is treated as broken rather than silently re-pooled */
    if ((r = mc_tensor_map_f32(w, PREFIX "cls_token", 3, s_cls, &m->cls, e))) return r;

    int n = m->depth = c->depth;
    m->layers = calloc((size_t)n, sizeof *m->layers);
    if (!m->layers) return mc_fail(e, MC_E_NOMEM, "out of memory");
    char prefix[128];
    for (int i = 0; i < n; i++) {
        snprintf(prefix, sizeof prefix, PREFIX "transformer.%d.", i);
        if ((r = mc_transformer_layer_bind_dims(&m->layers[i], w, prefix, C, m->heads, c->ffn_dim, e))) return r;
    }
    const char *extra = mc_tensor_map_first_unused(w, "image_encoder.");
    if (extra) return mc_fail(e, MC_E_MODEL, "%s: unexpected tensor '%s' in the ViT image encoder", src_name(w), extra);

    m->bn_coef = malloc(sizeof(float) * 4 * (size_t)S);
    if (!m->bn_coef) return mc_fail(e, MC_E_NOMEM, "out of memory");
    bn_coefficients(m);
    return 0;
}

int mc_vit_init_config(mc_vit **out, mc_tensor_map *w, const mc_vit_config *cfg, int proj_dim, mc_err *e) {
    *out = NULL;
    mc_vit *m = calloc(1, sizeof *m);
    if (!m) return mc_fail(e, MC_E_NOMEM, "out of memory");
    int r = init(m, w, cfg, proj_dim, e);
    if (r) {
        if (e && !e->code) mc_fail(e, r, "ViT init failed");
        mc_vit_free(m);
        return r;
    }
    *out = m;
    return 0;
}

int mc_vit_init(mc_vit **out, mc_tensor_map *w, mc_err *e) {
    *out = NULL;
    mc_vit_config c;
    int proj = 0, r = infer_config(w, &c, &proj, e);
    return r ? r : mc_vit_init_config(out, w, &c, proj, e);
}

int mc_vit_reparameterize(mc_vit *m, mc_err *e) {
    /* rebuilt from the current parameters on every call */
    bn_coefficients(m);
    free(m->rep_w[0]);
    m->rep_w[0] = NULL;
    m->reparameterized = 0;
    int S = m->stem_dim;
    size_t n0 = (size_t)S * 3 * m->k[0] * m->k[0], n1 = (size_t)S * S * m->k[1] * m->k[1];
    float *p = calloc(n0 + n1 + 2 * (size_t)S, sizeof(float));
    if (!p) return mc_fail(e, MC_E_NOMEM, "out of memory reparameterizing the ViT stem");
    m->rep_w[0] = p;
    m->rep_w[1] = p + n0;
    m->rep_b[0] = p + n0 + n1;
    m->rep_b[1] = m->rep_b[0] + S;
    int cin[2] = {3, S};
    for (int i = 0; i < 2; i++) {
        mc_bn_params bn = {m->bn[i][0], m->bn[i][1], m->bn[i][2], m->bn[i][3], 1e-5f};
        mc_reparameterize_add_conv_bn(m->rep_w[i], m->rep_b[i], S, cin[i], m->k[i], m->k[i], m->stem_w[i], NULL, m->k[i],
                               m->k[i], &bn);
    }
    m->reparameterized = 1;
    return 0;
}

/* Positional embeddings for P tokens: the stored [n_pos, C] table, or (P != n_pos) its
 * linear resampling along the sequence with half-pixel centres, clamped at the ends, which
 * is what the reference's bilinear F.interpolate of [1, 1, n_pos, C] to (P, C) computes. */
static void resample_pos(float *dst, const float *pos, int n_pos, int P, int C) {
    double scale = (double)n_pos / P;
    for (int i = 0; i < P; i++) {
        double s = (i + 0.5) * scale - 0.5;
        if (s < 0) s = 0;
        int i0 = (int)s;
        if (i0 > n_pos - 1) i0 = n_pos - 1;
        int i1 = i0 + 1 < n_pos ? i0 + 1 : n_pos - 1;
        float l1 = (float)(s - i0), l0 = 1.f - l1;
        for (int c = 0; c < C; c++) dst[(size_t)i * C + c] = l0 * pos[(size_t)i0 * C + c] + l1 * pos[(size_t)i1 * C + c];
    }
}

static int vit_forward(mc_vit *m, const float *images, int B, int R, int reparameterized, float *embed, const mc_trace *trace,
                       mc_err *e);

/* one image, as image_batch.h runs each task */
static int vit_one(void *m, const float *image, int R, int reparameterized, float *embed, mc_err *e) {
    return vit_forward(m, image, 1, R, reparameterized, embed, NULL, e);
}

int mc_vit_forward(mc_vit *m, const float *images, int B, int R, int reparameterized, float *embed, const mc_trace *trace,
                   mc_err *e) {
    if (B < 1) return mc_fail(e, MC_E_ARG, "ViT: batch size %d", B);
    /* a batch: one image per thread at a time (the same results as one by one) */
    if (B > 1 && !(trace && trace->fn))
        return mc_image_batch_forward(vit_one, m, images, B, R, reparameterized, embed, m->proj_dim, e);
    return vit_forward(m, images, B, R, reparameterized, embed, trace, e);
}

static int vit_forward(mc_vit *m, const float *images, int B, int R, int reparameterized, float *embed, const mc_trace *trace,
                       mc_err *e) {
    if (reparameterized && !m->reparameterized)
        return mc_fail(e, MC_E_ARG, "ViT: reparameterized forward requested before reparameterization");
    int S = m->stem_dim, C = m->width, Pd = m->proj_dim;
    mc_conv2d_shape cs[3];
    int h[4];
    h[0] = R;
    for (int i = 0; i < 3; i++) {
        int k = m->k[i], pad = (k - 1) / 2; /* the reference's default padding */
        cs[i] = (mc_conv2d_shape){i ? S : 3, i == 2 ? C : S, k, k, k, pad, pad, 1};
        h[i + 1] = h[i] + 2 * pad >= k ? mc_conv_out(h[i], k, k, pad) : 0;
    }
    if (h[3] < 1) return mc_fail(e, MC_E_ARG, "ViT: input resolution %d is too small for the %d-pixel patch stem", R,
                                  m->k[0] * m->k[1] * m->k[2]);
    if (R > 16384) return mc_fail(e, MC_E_ARG, "ViT: input resolution %d is larger than 16384", R);
    int P = h[3] * h[3], T = P + 1;
    size_t s1 = (size_t)B * S * h[1] * h[1], s2 = (size_t)B * S * h[2] * h[2], s3 = (size_t)B * C * P;
    size_t M = (size_t)B * T, scratch = mc_transformer_stack_scratch(m->layers, m->depth, B, T);
    /* buf: the stem activations, later the layer scratch and the pooled tokens;
     * x: the token stream [B, T, C], followed by the resampled positions when P != n_pos */
    size_t stem = s1 + s2 + s3, body = scratch + (size_t)B * C, npos = P != m->n_pos ? (size_t)P * C : 0;
    float *buf = malloc(sizeof(float) * (stem > body ? stem : body));
    float *x = malloc(sizeof(float) * (M * C + npos));
    if (!buf || !x) {
        free(buf);
        free(x);
        return mc_fail(e, MC_E_NOMEM, "ViT: out of memory for %d images of %dx%d", B, R, R);
    }

    /* stem: [B,3,R,R] -> [B,S,h1,h1] -> [B,S,h2,h2] -> [B,C,h3,h3] */
    float *a1 = buf, *a2 = a1 + s1, *a3 = a2 + s2;
    const float *in = images;
    float *outs[2] = {a1, a2};
    for (int i = 0; i < 2; i++) {
        size_t n = i ? s2 : s1;
        int hw = h[i + 1] * h[i + 1];
        if (reparameterized) { /* the GELU fused into the convolution */
            mc_conv2d_forward_ep(outs[i], in, m->rep_w[i], m->rep_b[i], &cs[i], B, h[i], h[i],
                                 &(mc_conv_epilogue){1, NULL, NULL});
            in = outs[i];
            continue;
        }
        mc_conv2d_forward(outs[i], in, m->stem_w[i], NULL, &cs[i], B, h[i], h[i]);
        mc_channel_affine_forward(outs[i], outs[i], m->bn_coef + (size_t)(2 * i) * S,
                                  m->bn_coef + (size_t)(2 * i + 1) * S, B, S, hw);
        mc_gelu_forward(outs[i], outs[i], n);
        in = outs[i];
    }
    mc_conv2d_forward(a3, a2, m->stem_w[2], m->stem_b2, &cs[2], B, h[2], h[2]);
    int64_t pshape[4] = {B, C, h[3], h[3]};
    mc_trace_emit(trace, "patch_emb", a3, 4, pshape);

    /* tokens: [cls | patches + pos] */
    const float *pos = m->pos;
    if (npos) {
        resample_pos(x + M * C, m->pos, m->n_pos, P, C);
        pos = x + M * C;
    }
    for (int b = 0; b < B; b++)
        for (int p = 0; p < P; p++) {
            float *xt = x + ((size_t)b * T + 1 + p) * C;
            const float *pe = pos + (size_t)p * C, *src = a3 + (size_t)b * C * P + p;
            for (int c = 0; c < C; c++) xt[c] = src[(size_t)c * P] + pe[c];
        }
    for (int b = 0; b < B; b++) memcpy(x + (size_t)b * T * C, m->cls, sizeof(float) * C);
    int64_t tshape[3] = {B, T, C};
    mc_trace_emit(trace, "transformer_input", x, 3, tshape);

    float *work = buf, *pooled = buf + scratch;
    if (mc_transformer_stack_forward(m->layers, m->depth, x, B, T, 0, work, trace, "transformer.%d")) {
        free(buf);
        free(x);
        return mc_fail(e, MC_E_NOMEM, "ViT: out of memory in the transformer layers");
    }
    mc_layernorm_forward(x, x, m->post_ln_w, m->post_ln_b, (int)M, C, 1e-5f);
    mc_trace_emit(trace, "post_transformer_norm", x, 3, tshape);

    for (int b = 0; b < B; b++) memcpy(pooled + (size_t)b * C, x + (size_t)b * T * C, sizeof(float) * C);
    int64_t cshape[2] = {B, C}, eshape[2] = {B, Pd};
    mc_trace_emit(trace, "cls_pooled", pooled, 2, cshape);
    mc_matmul_forward(embed, pooled, m->proj, B, C, Pd);
    mc_trace_emit(trace, "embed", embed, 2, eshape);
    free(buf);
    free(x);
    return 0;
}
