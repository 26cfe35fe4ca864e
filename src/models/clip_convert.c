/* Converted model files: a model's inference plan written by name (models/plan_tensors.h) and
 * used in place from a read-only mapping (io/model_file.h, docs/MODEL_FORMAT.md).
 *
 * Writing: every plan tensor (f32), then for bf16 / int8 each packed weight's q (and scales, row
 * sums), with a packed-table entry naming the f32 tensor and row offset it replaces.
 * Opening: the configuration's towers are bound on a declaring map whose tensors all view one
 * read-only zero region (no memory: the untouched pages of an anonymous mapping), then the walk
 * points every plan slot at the file's tensor of that name (dtype and shape checked), and the
 * packed weights become the low-precision plan, keyed by the mapped f32 pointers as a packed
 * model's are. Nothing is copied or recomputed; pages are read from the file as the forward
 * touches them (a text tower touches only its tokens' embedding rows). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "io/model_file.h"
#include "models/clip.h"
#include "models/plan_tensors.h"

struct mc_clip_mapping {
    mc_model_file file;
    mc_tensor_map decl; /* the towers' structure (declared parameters view `zero`) */
    void *zero;
    size_t zero_len;
};

/* ---------------------------------------------------------------- writing */

typedef struct save_ctx {
    mc_mf_tensor *t;
    int n, cap;
    const char *path;
    mc_err *e;
} save_ctx;

static mc_mf_tensor *add_tensor(save_ctx *s) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 512;
        mc_mf_tensor *t = realloc(s->t, (size_t)cap * sizeof *t);
        if (!t) return NULL;
        s->t = t;
        s->cap = cap;
    }
    mc_mf_tensor *t = &s->t[s->n++];
    memset(t, 0, sizeof *t);
    return t;
}

static int save_visit(void *user, const char *name, void *slot, int ndim, const int64_t *shape) {
    save_ctx *s = user;
    const float *p;
    memcpy(&p, slot, sizeof p);
    if (!p) return mc_fail(s->e, MC_E_MODEL, "%s: plan tensor '%s' was not built", s->path, name);
    mc_mf_tensor *t = add_tensor(s);
    if (!t) return mc_fail(s->e, MC_E_NOMEM, "out of memory");
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = MC_MF_F32;
    t->ndim = ndim;
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (uint64_t)(t->shape[i] = shape[i]);
    t->size = n * 4;
    t->data = p;
    return 0;
}

/* The f32 tensor among the first n holding src (as a whole row range), or -1. */
static int find_src(const save_ctx *s, int n, const float *src, int M, int K, uint64_t *off) {
    for (int i = 0; i < n; i++) {
        const float *b = s->t[i].data;
        uint64_t numel = s->t[i].size / 4;
        if (src >= b && src < b + numel && (uint64_t)(src - b) + (uint64_t)M * K <= numel) {
            *off = (uint64_t)(src - b);
            return i;
        }
    }
    return -1;
}

static int packed_tensor(save_ctx *s, const char *base, const char *leaf, mc_mf_dtype dt, int64_t rows, int64_t cols,
                         const void *data) {
    mc_mf_tensor *t = add_tensor(s);
    if (!t) return -1;
    snprintf(t->name, sizeof t->name, "%.*s.%s", (int)(sizeof t->name - 8), base, leaf);
    t->dtype = dt;
    t->ndim = cols ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->size = (uint64_t)rows * (uint64_t)(cols ? cols : 1) * mc_mf_dtype_size(dt);
    t->data = data;
    return s->n - 1;
}

int mc_clip_save_converted(mc_clip *c, const char *path, const uint8_t *model_id, mc_err *e) {
    if (!c->reparameterized || !c->planned)
        return mc_fail(e, MC_E_UNSUPPORTED, "%s: converting needs the reparameterized inference form", path);
    if (!(c->mci || c->vit) || !c->text)
        return mc_fail(e, MC_E_UNSUPPORTED, "%s: converting needs both towers loaded", path);
    save_ctx s = {NULL, 0, 0, path, e};
    char *json = NULL;
    size_t json_len = 0;
    mc_mf_packed *pk = NULL;
    int r = mc_clip_plan_walk(c, save_visit, &s);
    int nplan = s.n, np = c->precision != MC_PREC_F32 ? c->lowp.n : 0;
    if (!r && np && !(pk = calloc((size_t)np, sizeof *pk))) r = mc_fail(e, MC_E_NOMEM, "out of memory");
    for (int i = 0; !r && i < np; i++) {
        const mc_lowp_weight *w = &c->lowp.w[i];
        mc_mf_packed *p = &pk[i];
        p->src = find_src(&s, nplan, w->src, w->M, w->K, &p->src_offset);
        if (p->src < 0) {
            r = mc_fail(e, MC_E_MODEL, "%s: a packed %d x %d weight is not inside any plan tensor", path, w->M, w->K);
            break;
        }
        p->M = w->M, p->K = w->K, p->Mp = w->Mp, p->Kp = w->Kp, p->order = w->order;
        char base[MC_MODEL_FILE_NAME];
        snprintf(base, sizeof base, "%s", s.t[p->src].name); /* add_tensor may move s.t */
        if (p->src_offset) snprintf(base + strlen(base), sizeof base - strlen(base), "@%llu",
                                    (unsigned long long)p->src_offset);
        int int8 = c->precision == MC_PREC_INT8;
        p->q = packed_tensor(&s, base, int8 ? "q8" : "bf16", int8 ? MC_MF_I8 : MC_MF_BF16, w->Mp, w->Kp, w->q);
        p->scale = int8 ? packed_tensor(&s, base, "scale", MC_MF_F32, w->Mp, 0, w->scale) : -1;
        p->qsum = int8 ? packed_tensor(&s, base, "qsum", MC_MF_I32, w->Mp, 0, w->qsum) : -1;
        if (p->q < 0 || (int8 && (p->scale < 0 || p->qsum < 0))) r = mc_fail(e, MC_E_NOMEM, "out of memory");
    }
    FILE *mf = r ? NULL : open_memstream(&json, &json_len);
    if (!r && (!mf || mc_clip_config_write(&c->config, mf) || fclose(mf)))
        r = mc_fail(e, MC_E_NOMEM, "%s: cannot serialize the configuration", path);
    if (!r) {
        /* the packed layout is the same on every instruction set (the kernels of each read it):
         * no CPU feature is needed to use the file */
        mc_model_file_spec spec = {c->precision, 0, model_id, json, json_len, s.t, s.n, pk, np};
        r = mc_model_file_write(path, &spec, e);
    }
    free(json);
    free(pk);
    free(s.t);
    return r;
}

/* ---------------------------------------------------------------- opening */

typedef struct open_ctx {
    const mc_model_file *f;
    unsigned char *used;
    int cursor;
    mc_err *e;
} open_ctx;

static int open_visit(void *user, const char *name, void *slot, int ndim, const int64_t *shape) {
    open_ctx *o = user;
    const mc_model_file *f = o->f;
    int at = -1;
    /* the file lists the plan in walk order: search on from the last match */
    for (int k = 0; k < f->n_tensors && at < 0; k++) {
        int i = (o->cursor + k) % f->n_tensors;
        if (!strcmp(f->tensors[i].name, name)) at = i;
    }
    if (at < 0) return mc_fail(o->e, MC_E_FORMAT, "%s: no tensor '%s' (the file does not match its configuration)", f->path, name);
    const mc_mf_tensor *t = &f->tensors[at];
    int same = t->dtype == MC_MF_F32 && t->ndim == ndim && !o->used[at];
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char a[128], b[128];
        return mc_fail(o->e, MC_E_FORMAT, "%s: tensor '%s' is %s %s, the configuration needs f32 %s%s", f->path, name,
                       t->dtype == MC_MF_F32 ? "f32" : "not", mc_shape_str(t->shape, t->ndim, a, sizeof a),
                       mc_shape_str(shape, ndim, b, sizeof b), o->used[at] ? " (listed twice)" : "");
    }
    o->used[at] = 1;
    o->cursor = at + 1;
    const float *p = t->data;
    memcpy(slot, &p, sizeof p);
    return 0;
}

/* The file's packed weights as c->lowp (borrowed arrays); those of an unloaded tower are skipped. */
static int adopt_packed(mc_clip *c, const mc_model_file *f, const unsigned char *used, mc_err *e) {
    mc_lowp_plan *p = &c->lowp;
    mc_lowp_plan_init(p, (mc_precision)f->precision);
    if (!f->n_packed) return 0;
    if (!(p->w = calloc((size_t)f->n_packed, sizeof *p->w))) return mc_fail(e, MC_E_NOMEM, "out of memory");
    p->cap = f->n_packed;
    p->borrowed = 1;
    for (int i = 0; i < f->n_packed; i++) {
        const mc_mf_packed *k = &f->packed[i];
        if (!used[k->src]) continue;
        mc_lowp_weight *w = &p->w[p->n++];
        w->src = (const float *)f->tensors[k->src].data + k->src_offset;
        w->M = k->M, w->K = k->K, w->Mp = k->Mp, w->Kp = k->Kp, w->order = k->order;
        w->q = (void *)f->tensors[k->q].data;
        w->scale = k->scale >= 0 ? (float *)f->tensors[k->scale].data : NULL;
        w->qsum = k->qsum >= 0 ? (int32_t *)f->tensors[k->qsum].data : NULL;
    }
    return mc_lowp_plan_adopt(p, e);
}

int mc_clip_open_converted(mc_clip *c, const char *path, int load_image, int load_text, mc_err *e) {
    memset(c, 0, sizeof *c);
    struct mc_clip_mapping *m = calloc(1, sizeof *m);
    if (!m) return mc_fail(e, MC_E_NOMEM, "out of memory");
    int r = mc_model_file_open(&m->file, path, e);
    const mc_model_file *f = &m->file;
    mc_clip_config cfg;
    if (!r) r = mc_clip_config_parse(f->config, f->config_len, path, &cfg, e);
    /* the zero region: as large as the largest tensor (no declared parameter is larger) */
    uint64_t big = 1 << 20;
    for (int i = 0; !r && i < f->n_tensors; i++)
        if (f->tensors[i].size > big) big = f->tensors[i].size;
    if (!r) {
        m->zero_len = (size_t)big;
        m->zero = mmap(NULL, m->zero_len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m->zero == MAP_FAILED) {
            m->zero = NULL;
            r = mc_fail(e, MC_E_NOMEM, "%s: cannot reserve %zu bytes of address space", path, m->zero_len);
        }
    }
    mc_tensor_map_init(&m->decl);
    m->decl.declare = 1;
    m->decl.declare_zero = m->zero;
    m->decl.declare_zero_bytes = m->zero_len;
    if (!r && !(m->decl.source = strdup(path))) r = mc_fail(e, MC_E_NOMEM, "out of memory");
    if (!r) r = mc_clip_init_structure(c, &cfg, &m->decl, load_image, load_text, e);
    c->mapping = m; /* from here mc_clip_free releases everything */
    unsigned char *used = r ? NULL : calloc((size_t)f->n_tensors, 1);
    if (!r && !used) r = mc_fail(e, MC_E_NOMEM, "out of memory");
    if (!r) {
        open_ctx o = {f, used, 0, e};
        r = mc_clip_plan_walk(c, open_visit, &o);
    }
    /* a full load uses every f32 plan tensor of the file (packed tensors are the others) */
    for (int i = 0; !r && load_image && load_text && i < f->n_tensors; i++) {
        int packed = 0;
        for (int k = 0; k < f->n_packed && !packed; k++)
            packed = f->packed[k].q == i || f->packed[k].scale == i || f->packed[k].qsum == i;
        if (!used[i] && !packed)
            r = mc_fail(e, MC_E_FORMAT, "%s: unexpected tensor '%s' (the file does not match its configuration)", path,
                        f->tensors[i].name);
    }
    if (!r) {
        mc_clip_plan_mark_built(c);
        c->precision = (mc_precision)f->precision;
        r = adopt_packed(c, f, used, e);
    }
    free(used);
    if (r) mc_clip_free(c);
    return r;
}

const char *mc_clip_mapping_path(const mc_clip *c) { return c->mapping ? c->mapping->file.path : NULL; }

const uint8_t *mc_clip_mapping_model_id(const mc_clip *c) {
    return c->mapping && c->mapping->file.has_model_id ? c->mapping->file.model_id : NULL;
}

size_t mc_clip_mapping_bytes(const mc_clip *c) { return c->mapping ? c->mapping->file.map_len : 0; }

void mc_clip_mapping_free(mc_clip *c) {
    struct mc_clip_mapping *m = c->mapping;
    if (!m) return;
    mc_tensor_map_free(&m->decl);
    if (m->zero) munmap(m->zero, m->zero_len);
    mc_model_file_close(&m->file);
    free(m);
    c->mapping = NULL;
}
