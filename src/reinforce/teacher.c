/* Teacher ensemble; see teacher.h. */
#include "reinforce/teacher.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment/augment.h"
#include "core/parallel.h"
#include "image/preprocess.h"
#include "io/checkpoint.h"
#include "nn/ops.h"

/* MobileCLIP architecture by name ("s0", "mobileclip_s0", "auto"); -2 if it is none. */
static int mobileclip_arch(const char *arch) {
    if (strcmp(arch, "auto") == 0) return MC_ARCH_AUTO;
    for (int a = 0; a < MC_ARCH_COUNT; a++) {
        const mc_arch_config *c = mc_arch_get((mc_arch)a);
        if (strcmp(arch, c->name) == 0 || strcmp(arch, c->model_name) == 0) return a;
    }
    return -2;
}

int mc_teacher_load(mc_teacher *t, const char *path, const char *arch, mc_err *e) {
    memset(t, 0, sizeof *t);
    if (!path || !arch || !*path || !*arch) return mc_fail(e, MC_E_ARG, "teacher: a checkpoint and an architecture are needed");
    snprintf(t->name, sizeof t->name, "%s:%s", path, arch);
    int ma = mobileclip_arch(arch);
    /* a MobileCLIP configuration file (the reference's schema, e.g. data/configs/fmnist_teacher_mci.json) */
    mc_clip_config mcfg;
    size_t alen = strlen(arch);
    int custom = ma == -2 && alen > 5 && strcmp(arch + alen - 5, ".json") == 0 && mc_clip_config_load(arch, &mcfg, NULL) == 0;
    if (ma == -2 && !custom) {
        mc_oc_cfg cfg;
        int r = mc_oc_cfg_load(arch, &cfg, e);
        if (r) {
            if (r == MC_E_ARG) /* neither family: say both */
                mc_fail(e, MC_E_ARG, "teacher %s: unknown architecture '%s' (open_clip: %s, or a model config .json; "
                        "MobileCLIP: s0, s1, s2, b, auto)", t->name, arch, mc_oc_cfg_builtin_names());
            return r;
        }
        t->kind = MC_TEACHER_OPENCLIP;
        if ((r = mc_openclip_load(&t->oc, path, &cfg, e))) return r;
        t->dim = cfg.embed_dim;
        t->image_size = cfg.vision.image_size;
        t->context = t->oc.text->context;
        return 0;
    }
    t->kind = MC_TEACHER_MOBILECLIP;
    mc_tensor_map w;
    mc_tensor_map_init(&w);
    int r = mc_checkpoint_load(path, &w, e);
    if (r) {
        mc_tensor_map_free(&w);
        return r;
    }
    r = custom ? mc_clip_init_config(&t->mc, &mcfg, &w, 1, 1, 1, e) : mc_clip_init(&t->mc, &w, (mc_arch)ma, 1, 1, 1, e);
    mc_tensor_map_free(&w);
    if (r) {
        mc_clip_free(&t->mc);
        return r;
    }
    t->dim = t->mc.config.embed_dim;
    t->image_size = t->mc.config.image_size;
    t->context = t->mc.config.text.context_length;
    return 0;
}

void mc_teacher_free(mc_teacher *t) {
    if (!t) return;
    if (t->kind == MC_TEACHER_OPENCLIP) mc_openclip_free(&t->oc);
    else mc_clip_free(&t->mc);
    memset(t, 0, sizeof *t);
}

int mc_teacher_preprocess(const mc_teacher *t, const mc_image *im, float *chw, mc_err *e) {
    if (t->kind == MC_TEACHER_OPENCLIP) return mc_openclip_preprocess(&t->oc.cfg, im, chw, e);
    return mc_image_preprocess(im, t->image_size, chw, e);
}

/* torch's cubic convolution weights (upsample_bicubic2d: A = -0.75) for fraction t */
static void cubic_weights(float t, float w[4]) {
    const float A = -0.75f;
    float x1 = t + 1.f, x2 = 1.f - t, x3 = 2.f - t;
    w[0] = ((A * x1 - 5.f * A) * x1 + 8.f * A) * x1 - 4.f * A;
    w[1] = ((A + 2.f) * t - (A + 3.f)) * t * t + 1.f;
    w[2] = ((A + 2.f) * x2 - (A + 3.f)) * x2 * x2 + 1.f;
    w[3] = ((A * x3 - 5.f * A) * x3 + 8.f * A) * x3 - 4.f * A;
}

static int clampi(int v, int hi) { return v < 0 ? 0 : v > hi ? hi : v; }

void mc_interpolate_bicubic(const float *x, int C, int h, int w, float *out, int oh, int ow) {
    /* align_corners=False: src = (dst + 0.5) * in / out - 0.5, not clamped at 0 for cubic */
    float sy = (float)h / (float)oh, sx = (float)w / (float)ow;
    for (int c = 0; c < C; c++) {
        const float *xc = x + (size_t)c * h * w;
        for (int oy = 0; oy < oh; oy++) {
            float fy = ((float)oy + 0.5f) * sy - 0.5f;
            int iy = (int)floorf(fy);
            float wy[4];
            cubic_weights(fy - (float)iy, wy);
            for (int ox = 0; ox < ow; ox++) {
                float fx = ((float)ox + 0.5f) * sx - 0.5f;
                int ix = (int)floorf(fx);
                float wx[4], rows[4];
                cubic_weights(fx - (float)ix, wx);
                for (int k = 0; k < 4; k++) {
                    const float *row = xc + (size_t)clampi(iy - 1 + k, h - 1) * w;
                    rows[k] = row[clampi(ix - 1, w - 1)] * wx[0] + row[clampi(ix, w - 1)] * wx[1] +
                              row[clampi(ix + 1, w - 1)] * wx[2] + row[clampi(ix + 2, w - 1)] * wx[3];
                }
                out[((size_t)c * oh + oy) * ow + ox] = rows[0] * wy[0] + rows[1] * wy[1] + rows[2] * wy[2] + rows[3] * wy[3];
            }
        }
    }
}

int mc_teacher_preprocess_augmented(const mc_teacher *t, const mc_image *aug, float *chw, float *scratch, mc_err *e) {
    int S = aug->w, R = t->image_size;
    if (aug->w != aug->h || S < 1) return mc_fail(e, MC_E_ARG, "teacher %s: augmented image %dx%d is not square", t->name, aug->w, aug->h);
    float *x = S == R ? chw : scratch;
    mc_image_to_tensor(aug, x);
    if (t->kind == MC_TEACHER_OPENCLIP) mc_augment_normalize(x, (size_t)S * S, t->oc.cfg.mean, t->oc.cfg.std);
    if (S != R) mc_interpolate_bicubic(x, 3, S, S, chw, R, R);
    return 0;
}

int mc_teacher_encode_images(mc_teacher *t, const float *chw, int B, float *out, mc_err *e) {
    if (t->kind == MC_TEACHER_OPENCLIP) return mc_openclip_encode_image(&t->oc, chw, B, out, NULL, e);
    return mc_clip_encode_image(&t->mc, chw, B, out, NULL, e);
}

int mc_teacher_encode_tokens(mc_teacher *t, const int32_t *tokens, int N, float *out, mc_err *e) {
    if (t->kind == MC_TEACHER_OPENCLIP) return mc_openclip_encode_text(&t->oc, tokens, N, out, NULL, e);
    return mc_clip_encode_text(&t->mc, tokens, N, out, NULL, e);
}

/* ---- ensemble ---- */

void mc_teacher_ensemble_init(mc_teacher_ensemble *ens) { memset(ens, 0, sizeof *ens); }

void mc_teacher_ensemble_free(mc_teacher_ensemble *ens) {
    if (!ens) return;
    for (int i = 0; i < ens->count; i++) mc_teacher_free(&ens->teachers[i]);
    free(ens->teachers);
    memset(ens, 0, sizeof *ens);
}

int mc_teacher_ensemble_add(mc_teacher_ensemble *ens, const char *path, const char *arch, mc_err *e) {
    mc_teacher *grown = realloc(ens->teachers, sizeof *grown * (size_t)(ens->count + 1));
    if (!grown) return mc_fail(e, MC_E_NOMEM, "out of memory");
    ens->teachers = grown;
    int r = mc_teacher_load(&grown[ens->count], path, arch, e);
    if (r) return r;
    ens->dim += grown[ens->count].dim;
    ens->count++;
    return 0;
}

int mc_teacher_ensemble_add_spec(mc_teacher_ensemble *ens, const char *spec, mc_err *e) {
    const char *colon = spec ? strrchr(spec, ':') : NULL;
    if (!colon || colon == spec || !colon[1])
        return mc_fail(e, MC_E_ARG, "teacher '%s': expected FILE:ARCH (e.g. ViT-L-14.pt:ViT-L-14-quickgelu)",
                       spec ? spec : "(null)");
    char *path = strndup(spec, (size_t)(colon - spec));
    if (!path) return mc_fail(e, MC_E_NOMEM, "out of memory");
    int r = mc_teacher_ensemble_add(ens, path, colon + 1, e);
    free(path);
    return r;
}

int mc_teacher_ensemble_offset(const mc_teacher_ensemble *ens, int i) {
    int off = 0;
    for (int k = 0; k < i && k < ens->count; k++) off += ens->teachers[k].dim;
    return off;
}

/* block [n, d] -> normalised rows into out (row stride ld) */
static void put_block(float *out, int ld, float *block, int n, int d) {
    mc_l2_normalize_rows(block, n, d);
    for (int i = 0; i < n; i++) memcpy(out + (size_t)i * ld, block + (size_t)i * d, sizeof(float) * (size_t)d);
}

/* One block's preprocessing as tasks on the library's pool (core/parallel.h): image j into
 * its own plane, scratch, code and error. */
typedef struct prep_job {
    const mc_teacher *t;
    const mc_image *images;
    int augmented;
    float *chw;
    size_t plane;
    float *scratch;
    size_t scratch_len;
    mc_err *errs;
    int *rs;
} prep_job;

static void prep_items(void *arg, int j0, int j1) {
    const prep_job *p = arg;
    for (int j = j0; j < j1; j++) {
        mc_err_clear(&p->errs[j]);
        float *out = p->chw + (size_t)j * p->plane;
        p->rs[j] = p->augmented ? mc_teacher_preprocess_augmented(p->t, &p->images[j], out,
                                                                  p->scratch + (size_t)j * p->scratch_len, &p->errs[j])
                                : mc_teacher_preprocess(p->t, &p->images[j], out, &p->errs[j]);
    }
}

/* images -> ensemble rows; augmented: mc_teacher_preprocess_augmented instead of the eval transform */
static int embed_images(mc_teacher_ensemble *ens, const mc_image *images, int n, int augmented, float *out, mc_err *e) {
    if (ens->count < 1) return mc_fail(e, MC_E_ARG, "teacher ensemble: no teachers");
    if (n < 0 || (n > 0 && (!images || !out))) return mc_fail(e, MC_E_ARG, "teacher ensemble: bad arguments");
    size_t chw_max = 0;
    int dmax = 0;
    for (int k = 0; k < ens->count; k++) {
        size_t s = (size_t)3 * ens->teachers[k].image_size * ens->teachers[k].image_size;
        if (s > chw_max) chw_max = s;
        if (ens->teachers[k].dim > dmax) dmax = ens->teachers[k].dim;
    }
    size_t scratch_len = 0; /* per image, for augmented images of another size than a teacher's */
    for (int j = 0; augmented && j < n; j++) {
        size_t s = (size_t)3 * images[j].w * images[j].h;
        if (s > scratch_len) scratch_len = s;
    }
    float *chw = malloc(sizeof(float) * chw_max * MC_TEACHER_BATCH);
    float *scratch = scratch_len ? malloc(sizeof(float) * scratch_len * MC_TEACHER_BATCH) : NULL;
    float *feat = malloc(sizeof(float) * (size_t)dmax * MC_TEACHER_BATCH);
    mc_err errs[MC_TEACHER_BATCH];
    int rs[MC_TEACHER_BATCH];
    int r = 0;
    if (!chw || !feat || (scratch_len && !scratch)) r = mc_fail(e, MC_E_NOMEM, "teacher ensemble: out of memory");
    for (int i0 = 0; i0 < n && !r; i0 += MC_TEACHER_BATCH) {
        int b = n - i0 < MC_TEACHER_BATCH ? n - i0 : MC_TEACHER_BATCH;
        for (int k = 0, off = 0; k < ens->count && !r; off += ens->teachers[k].dim, k++) {
            mc_teacher *t = &ens->teachers[k];
            size_t s = (size_t)3 * t->image_size * t->image_size;
            prep_job pj = {t, images + i0, augmented, chw, s, scratch, scratch_len, errs, rs};
            mc_parallel_for(b, 1, prep_items, &pj);
            for (int j = 0; j < b && !r; j++)
                if (rs[j]) {
                    r = rs[j];
                    if (e) {
                        *e = errs[j];
                        mc_err_prefix(e, "teacher %s, image %d", t->name, i0 + j);
                    }
                }
            if (!r && (r = mc_teacher_encode_images(t, chw, b, feat, e))) mc_err_prefix(e, "teacher %s", t->name);
            if (!r) put_block(out + (size_t)i0 * ens->dim + off, ens->dim, feat, b, t->dim);
        }
    }
    free(chw);
    free(scratch);
    free(feat);
    return r;
}

int mc_teacher_ensemble_embed_images(mc_teacher_ensemble *ens, const mc_image *images, int n, float *out, mc_err *e) {
    return embed_images(ens, images, n, 0, out, e);
}

int mc_teacher_ensemble_embed_augmented(mc_teacher_ensemble *ens, const mc_image *images, int n, float *out, mc_err *e) {
    return embed_images(ens, images, n, 1, out, e);
}

int mc_teacher_ensemble_embed_texts(mc_teacher_ensemble *ens, const mc_tokenizer *tok, const char *const *texts,
                                    int n, float *out, mc_err *e) {
    enum { TB = 64 };
    if (ens->count < 1) return mc_fail(e, MC_E_ARG, "teacher ensemble: no teachers");
    if (n < 0 || (n > 0 && (!texts || !out || !tok))) return mc_fail(e, MC_E_ARG, "teacher ensemble: bad arguments");
    int cmax = 0, dmax = 0;
    for (int k = 0; k < ens->count; k++) {
        if (ens->teachers[k].context > cmax) cmax = ens->teachers[k].context;
        if (ens->teachers[k].dim > dmax) dmax = ens->teachers[k].dim;
    }
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)cmax * TB);
    float *feat = malloc(sizeof(float) * (size_t)dmax * TB);
    int r = 0;
    if (!ids || !feat) r = mc_fail(e, MC_E_NOMEM, "teacher ensemble: out of memory");
    for (int i0 = 0; i0 < n && !r; i0 += TB) {
        int b = n - i0 < TB ? n - i0 : TB;
        for (int k = 0, off = 0; k < ens->count && !r; off += ens->teachers[k].dim, k++) {
            mc_teacher *t = &ens->teachers[k];
            /* the same tokens for every teacher of one context length: tokenise once per change */
            if (k == 0 || t->context != ens->teachers[k - 1].context)
                for (int j = 0; j < b && !r; j++) {
                    const char *s = texts[i0 + j] ? texts[i0 + j] : "";
                    int nt = mc_tokenizer_encode_ctx(tok, s, strlen(s), ids + (size_t)j * t->context, t->context, e);
                    if (nt < 0) r = mc_err_prefix(e, "text %d", i0 + j);
                }
            if (!r && (r = mc_teacher_encode_tokens(t, ids, b, feat, e))) mc_err_prefix(e, "teacher %s", t->name);
            if (!r) put_block(out + (size_t)i0 * ens->dim + off, ens->dim, feat, b, t->dim);
        }
    }
    free(ids);
    free(feat);
    return r;
}
