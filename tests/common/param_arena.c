/* One float arena for a map's float32 tensors; see param_arena.h. */
#include "common/param_arena.h"

#include <stdlib.h>
#include <string.h>

#include "common/test_util.h"

void mc_test_param_arena(mc_tensor_map *m, mc_grad_map *g) {
    size_t total = 0;
    for (int i = 0; i < m->count; i++)
        if (m->items[i].t.dtype == MC_DTYPE_F32) total += ((size_t)mc_tensor_numel(&m->items[i].t) + 15) & ~(size_t)15;
    float *data = mc_tensor_map_own(m, calloc(total ? total : 1, sizeof(float)));
    float *grad = mc_tensor_map_own(m, calloc(total ? total : 1, sizeof(float)));
    if (!data || !grad) mc_test_fatal("out of memory for a %zu-float parameter arena", total);
    size_t off = 0;
    for (int i = 0; i < m->count; i++) {
        mc_tensor *t = &m->items[i].t;
        if (t->dtype != MC_DTYPE_F32) continue;
        size_t n = (size_t)mc_tensor_numel(t);
        mc_tensor_to_f32(t, data + off);
        t->data = data + off;
        int64_t st = 1; /* contiguous strides */
        for (int d = t->ndim - 1; d >= 0; d--) {
            t->stride[d] = st;
            st *= t->shape[d];
        }
        off += (n + 15) & ~(size_t)15;
    }
    *g = (mc_grad_map){data, grad, total};
}

float *mc_test_param(const mc_tensor_map *m, const char *name) {
    const mc_tensor *t = mc_test_tensor(m, name);
    return (float *)t->data;
}
