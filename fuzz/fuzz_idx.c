/* libFuzzer target for the IDX reader (plain and gzip'd). */
#include <stddef.h>
#include <stdint.h>

#include "io/idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mc_idx x;
    mc_err e = {0};
    if (mc_idx_parse(data, size, "fuzz.idx", (size_t)64 << 20, &x, &e) == 0) {
        volatile uint8_t sink = x.size ? x.data[x.size - 1] : 0;
        (void)sink;
        mc_idx_free(&x);
    }
    return 0;
}
