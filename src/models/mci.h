/* mci.h - MCi0/MCi1/MCi2, the FastViT-style image encoders of MobileCLIP S0/S1/S2.
 *
 * Two forms of the same network:
 *   training form: the multi-branch layout the official checkpoints store (MobileOne
 *     conv/scale/skip branches, RepMixer mixer-minus-norm, conv+BN pairs), BatchNorm in eval
 *     mode. Parameters are pointers into the caller's mc_tensor_map.
 *   reparameterized form (mc_mci_reparameterize): every linear branch sum folded into one
 *     convolution with bias, as the reference's reparameterize_model does; the
 *     squeeze-excite blocks, the attention and the attention block's BatchNorm stay.
 *
 * Network (NCHW, R x R input, C = dims):
 *   patch_embed: MobileOne 3x3/2 (3->C0), 3x3/2 depthwise, 1x1            -> [C0, R/4]
 *   network.0 stage0 RepMixer blocks, .1 PatchEmbed(C0->C1, /2), .2 stage1, .3 PatchEmbed+SE,
 *   .4 stage2, .5 PatchEmbed+SE, .6 RepCPE 7x7, .7 stage3 attention blocks  -> [C3, R/32]
 *   conv_exp: MobileOne 3x3 depthwise C3 -> 2*C3 with SE, GELU
 *   head: mean over H,W, then x @ head.proj [2*C3, E]                    -> [E] (E = 512)
 * A custom configuration (mc_mci_config: FastViT's arguments) changes the stage count, depths,
 * widths, FFN ratios, where the downsamplers, SE and RepCPEs are, and the token mixers.
 *
 * The struct layout is public (and per block explicit) so that backward passes and
 * training-mode BatchNorm can be added next to the forward code later.
 */
#ifndef MC_MODELS_MCI_H
#define MC_MODELS_MCI_H

#include "core/tensor.h"
#include "models/reparameterize.h"
#include "models/trace.h"
#include "nn/ops.h"

#define MC_MCI_STAGES 4      /* stages of the official variants */
#define MC_MCI_MAX_STAGES 8  /* a custom configuration may have 1..8 */

/* Architecture hyper-parameters, as data: the keyword arguments of the reference's FastViT
 * constructor (mobileclip/models/mci.py), per stage i < nstages. */
typedef struct mc_mci_config {
    const char *name;                     /* "mci0", "mci1", "mci2", or "mci" for a custom tower */
    int nstages;
    int layers[MC_MCI_MAX_STAGES];        /* blocks per stage */
    int dims[MC_MCI_MAX_STAGES];          /* embed_dims: channels per stage */
    double mlp_ratios[MC_MCI_MAX_STAGES]; /* ConvFFN hidden = int(C * ratio), in double as Python */
    int downsamples[MC_MCI_MAX_STAGES];   /* PatchEmbed after stage i when set or the width changes */
    int se_downsamples[MC_MCI_MAX_STAGES];/* the PatchEmbed into stage i has squeeze-excite */
    int attention[MC_MCI_MAX_STAGES];     /* token_mixers: 1 "attention", 0 "repmixer" */
    int repcpe[MC_MCI_MAX_STAGES];        /* pos_embs: a 7x7 RepCPE before stage i */
    int repmixer_kernel;                  /* repmixer_kernel_size (3) */
    int head_dim;                         /* MHSA head width (32, fixed by the reference) */
    double cls_ratio;                     /* conv_exp output = int(dims[last] * cls_ratio) (2) */
} mc_mci_config;

/* variant 0..2 -> config; NULL otherwise. */
const mc_mci_config *mc_mci_config_get(int variant);
/* Validates a (custom) configuration; the message names the FastViT argument at fault. */
int mc_mci_config_check(const mc_mci_config *c, mc_err *e);

/* conv (no bias) followed by BatchNorm, weights [cout, cin/groups, k, k] */
typedef struct mc_mci_convbn {
    const float *w;
    mc_bn_params bn; /* [cout] each */
} mc_mci_convbn;

/* Squeeze-excite: x * sigmoid(W2 relu(W1 mean_hw(x) + b1) + b2). Both the MobileOne
 * SEBlock (reduce/expand, C/16) and timm's SqueezeExcite (fc1/fc2, C/4) compute this. */
typedef struct mc_mci_se {
    int C, rd;
    const float *w1, *b1; /* [rd, C], [rd] */
    const float *w2, *b2; /* [C, rd], [C] */
} mc_mci_se;

/* MobileOneBlock with one conv branch: act(se(conv_bn(x) + scale_bn(x) + skip_bn(x))) */
typedef struct mc_mci_mobileone {
    mc_conv2d_shape s;  /* k x k geometry (padding k/2) */
    int has_conv;       /* k x k conv + BN (rbr_conv.0) */
    int has_scale;      /* 1 x 1 conv + BN, same stride/groups (rbr_scale), when k > 1 */
    int has_skip;       /* BN only (rbr_skip), when cin == cout and stride 1 */
    int has_se, act;    /* act: GELU after the SE */
    mc_mci_convbn conv, scale;
    mc_bn_params skip;
    mc_mci_se se;
    float *rep_w, *rep_b; /* reparameterized [cout, cin/groups, k, k], [cout] (owned) */
} mc_mci_mobileone;

/* ConvFFN: fc2(gelu(fc1(bn(dwconv7x7(x))))) */
typedef struct mc_mci_convffn {
    int C, hidden, k;
    mc_mci_convbn dw;           /* [C, 1, k, k] */
    const float *fc1_w, *fc1_b; /* [hidden, C(,1,1)], [hidden] */
    const float *fc2_w, *fc2_b; /* [C, hidden(,1,1)], [C] */
    float *rep_dw_w, *rep_dw_b; /* reparameterized depthwise conv (owned) */
} mc_mci_convffn;

/* RepMixerBlock: x = x + ls_mix * (mixer(x) - norm(x));  x = x + ls * ffn(x) */
typedef struct mc_mci_repmixer_block {
    int C, k;
    mc_mci_mobileone mixer; /* depthwise k x k: conv + scale + skip, no activation */
    mc_mci_mobileone norm;  /* skip BN only */
    const float *mix_ls;    /* token_mixer.layer_scale [C] */
    mc_mci_convffn ffn;
    const float *ls;        /* layer_scale [C] */
    float *rep_w, *rep_b;   /* reparameterized token mixer [C, 1, k, k], [C] (owned) */
} mc_mci_repmixer_block;

/* AttentionBlock: x = x + ls1 * proj(mhsa(qkv(bn(x)))); x = x + ls2 * ffn(x) */
typedef struct mc_mci_attention_block {
    int C, heads, head_dim;
    mc_bn_params norm;
    const float *qkv_w;             /* [3C, C], no bias */
    const float *proj_w, *proj_b;   /* [C, C], [C] */
    const float *ls1, *ls2;         /* [C] */
    mc_mci_convffn ffn;
} mc_mci_attention_block;

/* PatchEmbed: pw(gelu(se(bn(conv7x7/2(x)) + bn(conv3x3/2(x))))); both depthwise with
 * cout = 2 * cin (groups = cin); pw = 1x1 MobileOne (conv + skip, GELU). */
typedef struct mc_mci_patch_embed {
    int cin, cout;
    mc_conv2d_shape lk_s, small_s;
    mc_mci_convbn lk, small;
    int has_se;
    mc_mci_se se;
    mc_mci_mobileone pw;
    float *rep_lk_w, *rep_lk_b; /* reparameterized [cout, 1, 7, 7], [cout] (owned) */
} mc_mci_patch_embed;

/* RepCPE: x + dwconv7x7(x) with bias */
typedef struct mc_mci_repcpe {
    int C, k;
    const float *w, *b; /* [C, 1, k, k], [C] */
    float *rep_w;       /* reparameterized: w + identity (owned); bias stays b */
} mc_mci_repcpe;

typedef enum mc_mci_kind {
    MC_MCI_REPMIXER_STAGE,
    MC_MCI_ATTENTION_STAGE,
    MC_MCI_PATCH_EMBED,
    MC_MCI_REPCPE,
} mc_mci_kind;

/* One element of image_encoder.model.network */
typedef struct mc_mci_element {
    mc_mci_kind kind;
    int cin, cout, stride;           /* stride 2 for PatchEmbed, else 1 */
    int nblocks;
    mc_mci_repmixer_block *rep;      /* [nblocks] (owned array) */
    mc_mci_attention_block *attn;    /* [nblocks] (owned array) */
    mc_mci_patch_embed pe;
    mc_mci_repcpe cpe;
} mc_mci_element;

#define MC_MCI_MAX_ELEMENTS (3 * MC_MCI_MAX_STAGES)

typedef struct mc_mci {
    int variant;                    /* 0..2, or -1 for a custom configuration */
    mc_mci_config config;           /* a copy; cfg points here */
    const mc_mci_config *cfg;
    int embed_dim;                  /* head output width (512) */
    mc_mci_mobileone stem[3];
    int nelements;
    mc_mci_element net[MC_MCI_MAX_ELEMENTS];
    mc_mci_mobileone conv_exp;
    const float *head_proj;         /* [2*C3, embed_dim], used as x @ P */
    int reparameterized;                     /* mc_mci_reparameterize done */
} mc_mci;

/* Binds every tensor under "image_encoder.model." of `weights` (official state-dict names)
 * for MCi<variant> (0, 1, 2; -1 = recognise from the weights). Shapes are checked; the
 * error names the first missing or mis-shaped tensor. After binding, any "image_encoder."
 * tensor that was not consumed (other than BatchNorm num_batches_tracked) is an error
 * "unexpected tensor 'X'". `weights` must outlive the model (parameters point into it).
 * Returns 0 or a negative MC_E_* code; *out is NULL on failure. */
int mc_mci_init(mc_mci **out, mc_tensor_map *weights, int variant, mc_err *e);
/* The same for any configuration, with the projection width embed_dim. */
int mc_mci_init_config(mc_mci **out, mc_tensor_map *weights, const mc_mci_config *cfg, int embed_dim, mc_err *e);

/* Builds (or rebuilds, from the current parameter values) the reparameterized inference form
 * (owned buffers, the previous ones freed). */
int mc_mci_reparameterize(mc_mci *m, mc_err *e);

/* images [B,3,R,R] NCHW (pixels in [0,1], no normalisation) -> embed [B, embed_dim], not
 * normalised. reparameterized = 0 runs the training form, 1 the reparameterized form (needs
 * mc_mci_reparameterize first). Any R >= 1 works (the usual one is 256).
 * Activations are allocated once per call; concurrent calls on one model are safe.
 * trace (may be NULL) receives "patch_embed", "network.<i>", "conv_exp" ([B,C,H,W]),
 * "pooled" ([B,2*C3]) and "embed" ([B,E]) for the whole batch. */
int mc_mci_forward(mc_mci *m, const float *images, int B, int R, int reparameterized, float *embed,
                   const mc_trace *trace, mc_err *e);

void mc_mci_free(mc_mci *m);

/* 0, 1 or 2 when the map holds an MCi0/1/2 image encoder (recognised from the stem width
 * and the stage depths), -1 otherwise. */
int mc_mci_variant_from_weights(const mc_tensor_map *w);

/* ---- blocks (mci_blocks.c); used by mci.c, exposed for tests and future backward ---- */

/* Binding context: the map, a name prefix scratch and the error sink. */
typedef struct mc_mci_binder {
    mc_tensor_map *map;
    mc_err *e;
} mc_mci_binder;

int mc_mci_bind_mobileone(mc_mci_binder *b, mc_mci_mobileone *blk, const char *prefix, int cin, int cout, int k,
                          int stride, int groups, int use_scale_branch, int use_conv, int use_se, int act);
/* ConvFFN hidden width = int(C * mlp_ratio), as the reference. */
int mc_mci_bind_repmixer_block(mc_mci_binder *b, mc_mci_repmixer_block *blk, const char *prefix, int C, int k,
                               double mlp_ratio);
int mc_mci_bind_attention_block(mc_mci_binder *b, mc_mci_attention_block *blk, const char *prefix, int C,
                                int head_dim, double mlp_ratio);
int mc_mci_bind_patch_embed(mc_mci_binder *b, mc_mci_patch_embed *pe, const char *prefix, int cin, int cout,
                            int use_se);
int mc_mci_bind_repcpe(mc_mci_binder *b, mc_mci_repcpe *cpe, const char *prefix, int C);

int mc_mci_mobileone_reparameterize(mc_mci_mobileone *blk);
int mc_mci_repmixer_block_reparameterize(mc_mci_repmixer_block *blk);
int mc_mci_attention_block_reparameterize(mc_mci_attention_block *blk);
int mc_mci_patch_embed_reparameterize(mc_mci_patch_embed *pe);
int mc_mci_repcpe_reparameterize(mc_mci_repcpe *cpe);
void mc_mci_free_mobileone(mc_mci_mobileone *blk);
void mc_mci_free_repmixer_block(mc_mci_repmixer_block *blk);
void mc_mci_free_attention_block(mc_mci_attention_block *blk);
void mc_mci_free_patch_embed(mc_mci_patch_embed *pe);
void mc_mci_free_repcpe(mc_mci_repcpe *cpe);

/* Scratch for block forwards: three activation buffers of `cap` floats each (every
 * intermediate of a block fits), a hidden buffer of `hcap` floats, and a small vector
 * scratch of `vcap` floats (BN coefficients, SE gates). */
typedef struct mc_mci_ws {
    float *t0, *t1, *t2, *h, *v;
    size_t cap, hcap, vcap;
} mc_mci_ws;

/* out = block(in); out must not alias in. H, W are the input size. Output size for
 * strided blocks is mc_conv_out(H, k, stride, k/2). */
void mc_mci_mobileone_forward(const mc_mci_mobileone *blk, float *out, const float *in, int B, int H, int W,
                              int reparameterized, mc_mci_ws *ws);
/* In place on x[B,C,H,W]. */
void mc_mci_repmixer_block_forward(const mc_mci_repmixer_block *blk, float *x, int B, int H, int W, int reparameterized,
                                   mc_mci_ws *ws);
/* Returns 0, or MC_E_NOMEM when the attention scratch cannot be allocated. */
int mc_mci_attention_block_forward(const mc_mci_attention_block *blk, float *x, int B, int H, int W, int reparameterized,
                                    mc_mci_ws *ws);
void mc_mci_repcpe_forward(const mc_mci_repcpe *cpe, float *x, int B, int H, int W, int reparameterized, mc_mci_ws *ws);
/* out[B,cout,H/2,W/2] = pe(in[B,cin,H,W]) */
void mc_mci_patch_embed_forward(const mc_mci_patch_embed *pe, float *out, const float *in, int B, int H, int W,
                                int reparameterized, mc_mci_ws *ws);

#endif
