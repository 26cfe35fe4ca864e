#include "core/tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static const struct { size_t size; const char *name; } dtype_info[MC_DTYPE_COUNT] = {
    [MC_DTYPE_F32] = {4, "float32"}, [MC_DTYPE_F16] = {2, "float16"},
    [MC_DTYPE_BF16] = {2, "bfloat16"}, [MC_DTYPE_F64] = {8, "float64"},
    [MC_DTYPE_I64] = {8, "int64"}, [MC_DTYPE_I32] = {4, "int32"},
    [MC_DTYPE_I16] = {2, "int16"}, [MC_DTYPE_I8] = {1, "int8"},
    [MC_DTYPE_U8] = {1, "uint8"}, [MC_DTYPE_BOOL] = {1, "bool"},
};

size_t mc_dtype_size(mc_dtype t) { return (unsigned)t < MC_DTYPE_COUNT ? dtype_info[t].size : 0; }
const char *mc_dtype_name(mc_dtype t) { return (unsigned)t < MC_DTYPE_COUNT ? dtype_info[t].name : "?"; }

int64_t mc_tensor_numel(const mc_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

int mc_tensor_is_contiguous(const mc_tensor *t) {
    int64_t expect = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != expect) return 0;
        expect *= t->shape[i];
    }
    return 1;
}

float mc_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else { /* subnormal: value = man * 2^-24 */
            float f = (float)man * 0x1p-24f;
            memcpy(&bits, &f, 4);
            bits |= sign;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float mc_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t mc_f32_to_bf16(float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40); /* quiet NaN */
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

uint16_t mc_f32_to_f16(float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000u);
    uint32_t a = bits & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);  /* quiet NaN */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to >= 65520: infinity */
    if (a < 0x38800000u) {                                  /* below 2^-14: subnormal or zero */
        float m;
        memcpy(&m, &a, 4);
        /* m * 2^24 rounded to nearest even by the FPU's default rounding (exact in float) */
        float r = m * 0x1p24f;
        uint32_t q = (uint32_t)r;
        float frac = r - (float)q;
        if (frac > 0.5f || (frac == 0.5f && (q & 1u))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t rounded = a + 0xfffu + ((a >> 13) & 1u); /* round mantissa to 10 bits, ties to even */
    return (uint16_t)(sign | ((rounded - 0x38000000u) >> 13));
}

static double load_f64(mc_dtype t, const void *p) {
    switch (t) {
    case MC_DTYPE_F32: { float v; memcpy(&v, p, 4); return v; }
    case MC_DTYPE_F16: { uint16_t v; memcpy(&v, p, 2); return mc_f16_to_f32(v); }
    case MC_DTYPE_BF16: { uint16_t v; memcpy(&v, p, 2); return mc_bf16_to_f32(v); }
    case MC_DTYPE_F64: { double v; memcpy(&v, p, 8); return v; }
    case MC_DTYPE_I64: { int64_t v; memcpy(&v, p, 8); return (double)v; }
    case MC_DTYPE_I32: { int32_t v; memcpy(&v, p, 4); return v; }
    case MC_DTYPE_I16: { int16_t v; memcpy(&v, p, 2); return v; }
    case MC_DTYPE_I8: return *(const int8_t *)p;
    case MC_DTYPE_U8: return *(const uint8_t *)p;
    case MC_DTYPE_BOOL: return *(const uint8_t *)p != 0;
    default: return NAN;
    }
}

/* Offset in elements of logical row-major element i. */
static int64_t strided_offset(const mc_tensor *t, int64_t i) {
    int64_t off = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        int64_t n = t->shape[d];
        off += (i % n) * t->stride[d];
        i /= n;
    }
    return off;
}

double mc_tensor_get_f64(const mc_tensor *t, int64_t i) {
    size_t es = mc_dtype_size(t->dtype);
    return load_f64(t->dtype, (const char *)t->data + strided_offset(t, i) * (int64_t)es);
}

void mc_tensor_to_f32(const mc_tensor *t, float *dst) {
    int64_t n = mc_tensor_numel(t);
    if (t->dtype == MC_DTYPE_F32 && mc_tensor_is_contiguous(t)) {
        if (n) memcpy(dst, t->data, (size_t)n * 4);
        return;
    }
    for (int64_t i = 0; i < n; i++) dst[i] = (float)mc_tensor_get_f64(t, i);
}

const char *mc_shape_str(const int64_t *shape, int ndim, char *buf, size_t n) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

void mc_tensor_map_init(mc_tensor_map *m) { memset(m, 0, sizeof *m); }

void mc_tensor_map_free(mc_tensor_map *m) {
    if (!m) return;
    for (int i = 0; i < m->count; i++) free(m->items[i].name);
    free(m->items);
    for (int i = 0; i < m->nbuffers; i++) free(m->buffers[i]);
    free(m->buffers);
    if (m->map_addr) munmap(m->map_addr, m->map_len);
    free(m->source);
    memset(m, 0, sizeof *m);
}

int mc_tensor_map_add(mc_tensor_map *m, const char *name, const mc_tensor *t, mc_err *e) {
    if (m->count == m->cap) {
        int cap = m->cap ? m->cap * 2 : 64;
        mc_named_tensor *p = realloc(m->items, (size_t)cap * sizeof *p);
        if (!p) return mc_fail(e, MC_E_NOMEM, "out of memory");
        m->items = p;
        m->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) return mc_fail(e, MC_E_NOMEM, "out of memory");
    m->items[m->count].name = copy;
    m->items[m->count].t = *t;
    m->items[m->count].used = 0;
    m->count++;
    return 0;
}

void *mc_tensor_map_own(mc_tensor_map *m, void *buf) {
    if (!buf) return NULL;
    if (m->nbuffers == m->capbuffers) {
        int cap = m->capbuffers ? m->capbuffers * 2 : 16;
        void **p = realloc(m->buffers, (size_t)cap * sizeof *p);
        if (!p) { free(buf); return NULL; }
        m->buffers = p;
        m->capbuffers = cap;
    }
    m->buffers[m->nbuffers++] = buf;
    return buf;
}

const mc_tensor *mc_tensor_map_find(const mc_tensor_map *m, const char *name) {
    for (int i = 0; i < m->count; i++)
        if (strcmp(m->items[i].name, name) == 0) return &m->items[i].t;
    return NULL;
}

void mc_tensor_map_mark_used(mc_tensor_map *m, const char *name) {
    for (int i = 0; i < m->count; i++)
        if (strcmp(m->items[i].name, name) == 0) m->items[i].used = 1;
}

const char *mc_tensor_map_first_unused(const mc_tensor_map *m, const char *prefix) {
    size_t pl = strlen(prefix), nl = strlen("num_batches_tracked");
    for (int i = 0; i < m->count; i++) {
        const char *n = m->items[i].name;
        size_t l = strlen(n);
        if (m->items[i].used || strncmp(n, prefix, pl) != 0) continue;
        if (l >= nl && strcmp(n + l - nl, "num_batches_tracked") == 0) continue;
        return n;
    }
    return NULL;
}

int mc_tensor_map_has_prefix(const mc_tensor_map *m, const char *prefix) {
    size_t pl = strlen(prefix);
    for (int i = 0; i < m->count; i++)
        if (strncmp(m->items[i].name, prefix, pl) == 0) return 1;
    return 0;
}

mc_tensor mc_tensor_view(mc_dtype dt, const void *data, int ndim, const int64_t *shape) {
    mc_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dt;
    t.ndim = ndim;
    t.storage_id = -1;
    int64_t st = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        t.shape[d] = shape[d];
        t.stride[d] = st;
        st *= shape[d];
    }
    t.data = data;
    return t;
}

int mc_tensor_map_add_zero(mc_tensor_map *m, const char *name, mc_dtype dt, int ndim, const int64_t *shape, void **data,
                           mc_err *e) {
    int64_t n = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        if (shape[i] < 0 || shape[i] > ((int64_t)1 << 40) || (n && shape[i] > ((int64_t)1 << 40) / n))
            return mc_fail(e, MC_E_MODEL, "declaring '%s': implausible shape", name);
        n *= shape[i];
    }
    void *buf;
    if (m->declare_zero) { /* a view of the shared zero region */
        if ((size_t)n > m->declare_zero_bytes / mc_dtype_size(dt))
            return mc_fail(e, MC_E_MODEL, "declaring '%s': larger than the zero region", name);
        buf = (void *)m->declare_zero;
    } else { /* calloc: large zero buffers are untouched pages until written */
        buf = mc_tensor_map_own(m, calloc((size_t)(n ? n : 1), mc_dtype_size(dt)));
        if (!buf) return mc_fail(e, MC_E_NOMEM, "out of memory declaring '%s'", name);
    }
    mc_tensor t = mc_tensor_view(dt, buf, ndim, shape);
    t.storage_numel = n;
    int r = mc_tensor_map_add(m, name, &t, e);
    if (r) return r;
    m->items[m->count - 1].used = 1;
    if (data) *data = buf;
    return 0;
}

static int declare_f32(mc_tensor_map *m, const char *name, int ndim, const int64_t *shape, const float **out,
                       mc_err *e) {
    void *p;
    int r = mc_tensor_map_add_zero(m, name, MC_DTYPE_F32, ndim, shape, &p, e);
    if (r) return r;
    *out = p;
    static const char rv[] = "running_var";
    size_t l = strlen(name), k = sizeof rv - 1;
    if (l > k && !strcmp(name + l - k, rv)) { /* BatchNorm's counter, a buffer no binder reads */
        char counter[512];
        if (l - k + sizeof "num_batches_tracked" > sizeof counter) return 0;
        memcpy(counter, name, l - k);
        strcpy(counter + l - k, "num_batches_tracked");
        if (!mc_tensor_map_find(m, counter)) return mc_tensor_map_add_zero(m, counter, MC_DTYPE_I64, 0, NULL, NULL, e);
    }
    return 0;
}

int mc_tensor_map_f32(mc_tensor_map *m, const char *name, int ndim, const int64_t *shape,
                      const float **out, mc_err *e) {
    const char *src = m->source ? m->source : "checkpoint";
    const mc_tensor *t = NULL;
    for (int i = 0; i < m->count; i++)
        if (strcmp(m->items[i].name, name) == 0) {
            t = &m->items[i].t;
            m->items[i].used = 1;
            break;
        }
    if (!t && m->declare) return declare_f32(m, name, ndim, shape, out, e);
    if (!t) return mc_fail(e, MC_E_MODEL, "%s: missing tensor '%s'", src, name);
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char a[128], b[128];
        return mc_fail(e, MC_E_MODEL, "%s: tensor '%s' has shape %s, expected %s", src, name,
                       mc_shape_str(t->shape, t->ndim, a, sizeof a), mc_shape_str(shape, ndim, b, sizeof b));
    }
    switch (t->dtype) {
    case MC_DTYPE_F32: case MC_DTYPE_F16: case MC_DTYPE_BF16: case MC_DTYPE_F64: break;
    default:
        return mc_fail(e, MC_E_MODEL, "%s: tensor '%s' has dtype %s, expected a floating-point type", src,
                       name, mc_dtype_name(t->dtype));
    }
    if (t->dtype == MC_DTYPE_F32 && mc_tensor_is_contiguous(t) && ((uintptr_t)t->data % 4) == 0) {
        *out = t->data;
        return 0;
    }
    int64_t n = mc_tensor_numel(t);
    float *buf = mc_tensor_map_own(m, malloc((size_t)(n ? n : 1) * sizeof(float)));
    if (!buf) return mc_fail(e, MC_E_NOMEM, "%s: out of memory converting '%s'", src, name);
    mc_tensor_to_f32(t, buf);
    *out = buf;
    return 0;
}
