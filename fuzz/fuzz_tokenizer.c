/* fuzz_tokenizer.c - libFuzzer target for the whole text pipeline (ftfy port,
 * html.unescape, lower-casing, pre-tokenizer, BPE) behind mc_tokenizer_encode.
 *
 * The vocabulary is loaded once from $MC_VOCAB, else from the shared folder next
 * to the source tree.  Input: byte 0 picks the context length (2..77), the rest is
 * the text (any bytes: invalid UTF-8 must be refused cleanly).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/tokenizer.h"

static mc_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    char path[4096];
    const char *env = getenv("MC_VOCAB");
    if (env && *env) {
        snprintf(path, sizeof path, "%s", env);
    } else {
        /* <repo>/fuzz/fuzz_tokenizer.c -> <repo>/../shared/vocab/... */
        snprintf(path, sizeof path, "%s", __FILE__);
        char *slash = strrchr(path, '/');
        if (slash) *slash = 0;
        slash = strrchr(path, '/');
        if (slash) *slash = 0;
        strncat(path, "/../shared/vocab/bpe_simple_vocab_16e6.txt.gz", sizeof path - strlen(path) - 1);
    }
    mc_err e = {0};
    tok = mc_tokenizer_load(path, &e);
    if (!tok) {
        fprintf(stderr, "fuzz_tokenizer: %s (set MC_VOCAB)\n", e.msg);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    int context = 2 + data[0] % 76;
    int32_t ids[77];
    mc_err e = {0};
    int n = mc_tokenizer_encode_ctx(tok, (const char *)data + 1, size - 1, ids, context, &e);
    if (n < 0) {
        if (!e.msg[0]) abort(); /* every failure has a reason */
        for (int i = 0; i < context; i++)
            if (ids[i]) abort();
        return 0;
    }
    if (n < 2 || n > context || ids[0] != MC_TOKEN_SOT || ids[n - 1] != MC_TOKEN_EOT) abort();
    for (int i = 0; i < context; i++) {
        if (ids[i] < 0 || ids[i] > MC_TOKEN_EOT) abort();
        if (i >= n && ids[i] != 0) abort();
    }
    return 0;
}
