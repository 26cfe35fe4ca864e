/* libFuzzer target for the search-index reader: every accepted file must be safe to walk. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "index/index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* the reader expects the 8-byte alignment of a mapping */
    void *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    /* Recompute both CRC-32s (body at 108, header at 124) so that mutations reach the structural
     * checks behind them; unpatched inputs still exercise the checksum path. */
    if (size >= MC_INDEX_HEADER_SIZE && (data[size - 1] & 1)) {
        uint8_t *b = buf;
        uint32_t body = (uint32_t)crc32(0, b + MC_INDEX_HEADER_SIZE, (uInt)(size - MC_INDEX_HEADER_SIZE));
        memcpy(b + 108, &body, 4);
        uint32_t head = (uint32_t)crc32(0, b, 124);
        memcpy(b + 124, &head, 4);
    }
    mc_index ix;
    mc_err e = {0};
    if (mc_index_parse(buf, size, "fuzz.mci", &ix, &e) == 0) {
        size_t esz = mc_index_dtype_size(ix.meta.dtype), sum = 0;
        for (uint64_t i = 0; i < ix.count; i++) {
            mc_index_item it;
            mc_index_get(&ix, i, &it);
            sum += strlen(it.path) + ((const uint8_t *)it.row)[ix.meta.dim * esz - 1];
            if (mc_index_find(&ix, it.path) != (int64_t)i) abort();
        }
        volatile size_t sink = sum;
        (void)sink;
    }
    free(buf);
    return 0;
}
