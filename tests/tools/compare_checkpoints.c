/* compare_checkpoints A B MAX_ABS MAX_REL - every tensor of two checkpoints with the same names
 * and shapes: prints the largest absolute difference and the largest per-tensor relative L2
 * difference (||a - b|| / ||b||, tensors with ||b|| > 0), integer tensors must be equal; exit 0
 * when both are within the bounds, 1 otherwise (2 on a load error). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "io/checkpoint.h"

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: compare_checkpoints A B MAX_ABS MAX_REL\n");
        return 2;
    }
    mc_tensor_map a, b;
    mc_err e;
    mc_tensor_map_init(&a);
    mc_tensor_map_init(&b);
    if (mc_checkpoint_load(argv[1], &a, &e) || mc_checkpoint_load(argv[2], &b, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 2;
    }
    double max_abs = 0, max_rel = 0, tol_abs = atof(argv[3]), tol_rel = atof(argv[4]);
    const char *wa = "", *wr = "";
    int bad = a.count != b.count;
    for (int i = 0; i < a.count && !bad; i++) {
        const mc_tensor *x = &a.items[i].t;
        const mc_tensor *y = mc_tensor_map_find(&b, a.items[i].name);
        int64_t n = mc_tensor_numel(x);
        if (!y || mc_tensor_numel(y) != n) {
            fprintf(stderr, "%s: missing or of another size in %s\n", a.items[i].name, argv[2]);
            bad = 1;
            break;
        }
        double d2 = 0, n2 = 0, m = 0;
        for (int64_t k = 0; k < n; k++) {
            double u = mc_tensor_get_f64(x, k), v = mc_tensor_get_f64(y, k);
            d2 += (u - v) * (u - v);
            n2 += v * v;
            if (fabs(u - v) > m) m = fabs(u - v);
        }
        if (x->dtype == MC_DTYPE_I64 && m != 0) {
            fprintf(stderr, "%s: integer tensors differ\n", a.items[i].name);
            bad = 1;
        }
        if (m > max_abs) { max_abs = m; wa = a.items[i].name; }
        if (n2 > 0 && sqrt(d2 / n2) > max_rel) { max_rel = sqrt(d2 / n2); wr = a.items[i].name; }
    }
    printf("%d tensors: max abs difference %.3g (%s), max rel-L2 %.3g (%s)\n", a.count, max_abs, wa, max_rel, wr);
    bad |= !(max_abs <= tol_abs && max_rel <= tol_rel);
    mc_tensor_map_free(&a);
    mc_tensor_map_free(&b);
    return bad;
}
