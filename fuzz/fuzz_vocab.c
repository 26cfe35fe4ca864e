/* fuzz_vocab.c - libFuzzer target for the vocabulary loader: gzip unpacking and the
 * merges parser (mc_tokenizer_load_buffer).  Inputs are mutated from a small seed;
 * most are refused (a full vocabulary has 48894 merges), which must never crash or
 * leak. */
#include <stdint.h>
#include <stdlib.h>

#include "text/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mc_err e = {0};
    mc_tokenizer *t = mc_tokenizer_load_buffer(data, size, &e);
    if (!t && !e.msg[0]) abort();
    if (t) {
        int32_t ids[77];
        if (mc_tokenizer_encode(t, "a photo of a cat", 16, ids, &e) < 2) abort();
        mc_tokenizer_free(t);
    }
    return 0;
}
