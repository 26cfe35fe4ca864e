/* AdamW, gradient clipping, the learning-rate schedule and the logit-scale clamp; see optim.h. */
#include "train/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "io/checkpoint.h"
#include "io/torch_writer.h"

/* The loops over the arenas run on the library's pool (core/parallel.h) in spans of at least
 * MIN_SPAN floats (a smaller tensor is updated in the caller); every element's update is its
 * own, and the squared norm is summed in blocks fixed by the tensor size, so no result depends
 * on the thread count. */
#define MIN_SPAN 65536

typedef struct adamw_job {
    float *x, *m, *v;
    const float *g;
    float decay, b1, b2, a1, a2, bc2_sqrt, eps, step_size;
} adamw_job;

static void adamw_span(void *arg, size_t b, size_t e) {
    const adamw_job *j = arg;
    float *x = j->x, *m = j->m, *v = j->v;
    const float *g = j->g;
    /* locals: stores to x, m, v could alias the job's floats */
    const float decay = j->decay, b1 = j->b1, b2 = j->b2, a1 = j->a1, a2 = j->a2, bc2_sqrt = j->bc2_sqrt;
    const float eps = j->eps, step_size = j->step_size;
    /* vectorised (omp simd; sqrtf without errno, CMakeLists.txt): each element's operations and
     * their order are the scalar loop's, so the bytes do not change */
#pragma omp simd
    for (size_t k = b; k < e; k++) {
        x[k] *= decay;
        m[k] = m[k] * b1 + a1 * g[k];
        v[k] = v[k] * b2 + a2 * g[k] * g[k];
        float denom = sqrtf(v[k]) / bc2_sqrt + eps;
        x[k] += -step_size * (m[k] / denom);
    }
}

typedef struct scale_job {
    float *g;
    float factor;
} scale_job;

static void scale_span(void *arg, size_t b, size_t e) {
    const scale_job *j = arg;
    float *g = j->g, f = j->factor;
    for (size_t k = b; k < e; k++) g[k] *= f;
}

static double sumsq_block(void *arg, size_t b, size_t e) {
    const float *g = arg;
    double ss = 0;
    for (size_t k = b; k < e; k++) ss += (double)g[k] * g[k];
    return ss;
}

mc_adamw_config mc_adamw_config_default(int vit) {
    mc_adamw_config c = {0.9f, vit ? 0.98f : 0.999f, vit ? 1e-6f : 1e-8f, 0.2f};
    return c;
}

void mc_adamw_init(mc_adamw *o, const mc_adamw_config *cfg) {
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
}

int mc_adamw_step(mc_adamw *o, mc_param_store *s, float lr, mc_err *e) {
    if (!s->data || !s->grad || !s->m || !s->v)
        return mc_fail(e, MC_E_ARG, "AdamW: the store has no gradient or moment arenas");
    o->step++;
    const mc_adamw_config *c = &o->cfg;
    /* torch computes these scalars in Python doubles, then the tensor ops round them to float */
    double t = (double)o->step, bc1 = 1.0 - pow(c->beta1, t), bc2 = 1.0 - pow(c->beta2, t);
    const float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2), b1 = c->beta1, b2 = c->beta2;
    const float a1 = (float)(1.0 - (double)c->beta1), a2 = (float)(1.0 - (double)c->beta2), eps = c->eps;
    for (int i = 0; i < s->count; i++) {
        const mc_param *p = &s->params[i];
        if (p->flags & MC_PARAM_BUFFER) continue;
        const float decay = (float)(1.0 - (double)lr * (p->flags & MC_PARAM_NO_DECAY ? 0.0 : (double)c->weight_decay));
        float *x = s->data + p->offset, *m = s->m + p->offset, *v = s->v + p->offset;
        const float *g = s->grad + p->offset;
        adamw_job j = {x, m, v, g, decay, b1, b2, a1, a2, bc2_sqrt, eps, step_size};
        mc_parallel_span(p->numel, MIN_SPAN, adamw_span, &j);
    }
    return 0;
}

void mc_grad_zero(mc_param_store *s) {
    if (s->grad) memset(s->grad, 0, s->total * sizeof(float));
}

void mc_grad_scale(mc_param_store *s, float factor) {
    if (!s->grad) return;
    size_t n = s->total;
    scale_job j = {s->grad, factor};
    mc_parallel_span(n, MIN_SPAN, scale_span, &j);
}

double mc_grad_global_norm(const mc_param_store *s) {
    if (!s->grad) return 0;
    double total = 0;
    for (int i = 0; i < s->count; i++) {
        const mc_param *p = &s->params[i];
        if (p->flags & MC_PARAM_BUFFER) continue;
        const float *g = s->grad + p->offset;
        total += mc_parallel_sum(p->numel, MIN_SPAN, sumsq_block, (void *)g);
    }
    return sqrt(total);
}

double mc_clip_grad_norm(mc_param_store *s, float max_norm) {
    double n = mc_grad_global_norm(s);
    double coef = (double)max_norm / (n + 1e-6);
    if (coef < 1.0) {
        /* only trainable entries carry gradients; the padding and buffer slots stay zero */
        float f = (float)coef;
        for (int i = 0; i < s->count; i++) {
            const mc_param *p = &s->params[i];
            if (p->flags & MC_PARAM_BUFFER) continue;
            float *g = s->grad + p->offset;
            for (size_t k = 0; k < p->numel; k++) g[k] *= f;
        }
    }
    return n;
}

double mc_cosine_lr(double base_lr, int64_t warmup, int64_t steps, int64_t step) {
    if (step < warmup) return base_lr * (double)(step + 1) / (double)warmup;
    double e = (double)(step - warmup), es = (double)(steps - warmup);
    if (es <= 0) es = 1; /* the reference divides by zero here; a run without decay steps stays at base_lr */
    return 0.5 * (1.0 + cos(M_PI * e / es)) * base_lr;
}

void mc_logit_scale_clamp(float *t) {
    const float hi = (float)log(100.0);
    if (*t < 0.f) *t = 0.f;
    if (*t > hi) *t = hi; /* NaN stays NaN, as torch.clamp_ */
}

/* ---- optimizer state files ---- */

static const char *const hyper_names[4] = {"beta1", "beta2", "eps", "weight_decay"};

int mc_adamw_save(const mc_adamw *o, const mc_param_store *s, const char *path, mc_err *e) {
    if (!s->m || !s->v) return mc_fail(e, MC_E_ARG, "%s: the store has no AdamW moments to save", path);
    mc_tensor_map m;
    mc_tensor_map_init(&m);
    float hyper[4] = {o->cfg.beta1, o->cfg.beta2, o->cfg.eps, o->cfg.weight_decay};
    mc_tensor t = mc_tensor_view(MC_DTYPE_I64, &o->step, 0, NULL);
    int r = mc_tensor_map_add(&m, "step", &t, e);
    for (int i = 0; i < 4 && !r; i++) {
        t = mc_tensor_view(MC_DTYPE_F32, &hyper[i], 0, NULL);
        r = mc_tensor_map_add(&m, hyper_names[i], &t, e);
    }
    char name[600];
    for (int k = 0; k < 2 && !r; k++)
        for (int i = 0; i < s->count && !r; i++) {
            const mc_param *p = &s->params[i];
            if (p->flags & MC_PARAM_BUFFER) continue;
            snprintf(name, sizeof name, "%s.%s", k ? "exp_avg_sq" : "exp_avg", p->name);
            t = mc_tensor_view(MC_DTYPE_F32, (k ? s->v : s->m) + p->offset, p->ndim, p->shape);
            r = mc_tensor_map_add(&m, name, &t, e);
        }
    if (!r) r = mc_torch_save(path, &m, e);
    mc_tensor_map_free(&m);
    return r;
}

/* The float32 tensor `name` of exactly numel elements with p's shape (NULL p: a scalar). */
static const float *state_tensor(const mc_tensor_map *m, const char *name, const mc_param *p, const char *path,
                                 mc_err *e) {
    const mc_tensor *t = mc_tensor_map_find(m, name);
    if (!t) {
        mc_fail(e, MC_E_FORMAT, "%s: missing tensor '%s'", path, name);
        return NULL;
    }
    int ok = t->dtype == MC_DTYPE_F32 && mc_tensor_is_contiguous(t) && t->ndim == (p ? p->ndim : 0);
    for (int d = 0; ok && p && d < p->ndim; d++) ok = t->shape[d] == p->shape[d];
    if (!ok) {
        mc_fail(e, MC_E_FORMAT, "%s: tensor '%s' is not a contiguous float32 tensor of the parameter's shape", path,
                name);
        return NULL;
    }
    return t->data;
}

int mc_adamw_load(mc_adamw *o, mc_param_store *s, const char *path, mc_err *e) {
    int r = mc_param_store_alloc_adam(s, e);
    if (r) return r;
    mc_tensor_map m;
    mc_tensor_map_init(&m);
    if ((r = mc_checkpoint_load(path, &m, e))) return r;
    const mc_tensor *st = mc_tensor_map_find(&m, "step");
    if (!st || st->dtype != MC_DTYPE_I64 || st->ndim != 0) {
        r = mc_fail(e, MC_E_FORMAT, "%s: no int64 scalar 'step' (not an optimizer state file)", path);
        goto done;
    }
    mc_tensor_map_mark_used(&m, "step");
    float want[4] = {o->cfg.beta1, o->cfg.beta2, o->cfg.eps, o->cfg.weight_decay};
    for (int i = 0; i < 4; i++) {
        const float *h = state_tensor(&m, hyper_names[i], NULL, path, e);
        if (!h) { r = e->code; goto done; }
        if (*h != want[i]) {
            r = mc_fail(e, MC_E_ARG, "%s: the state was saved with %s = %g, this run uses %g", path, hyper_names[i],
                        *h, want[i]);
            goto done;
        }
        mc_tensor_map_mark_used(&m, hyper_names[i]);
    }
    char name[600];
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < s->count; i++) {
            const mc_param *p = &s->params[i];
            if (p->flags & MC_PARAM_BUFFER) continue;
            snprintf(name, sizeof name, "%s.%s", k ? "exp_avg_sq" : "exp_avg", p->name);
            const float *x = state_tensor(&m, name, p, path, e);
            if (!x) { r = e->code; goto done; }
            memcpy((k ? s->v : s->m) + p->offset, x, p->numel * sizeof(float));
            mc_tensor_map_mark_used(&m, name);
        }
    for (int i = 0; i < m.count; i++)
        if (!m.items[i].used) {
            r = mc_fail(e, MC_E_FORMAT, "%s: unexpected tensor '%s'", path, m.items[i].name);
            goto done;
        }
    memcpy(&o->step, st->data, sizeof o->step);
done:
    mc_tensor_map_free(&m);
    return r;
}
