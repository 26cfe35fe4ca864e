/* fuzz_inputs.c - libFuzzer target for the list-file reader of `mobileclip embed`
 * (src/tools/inputs.c): any bytes as a list (NUL bytes, CR/LF mixes, endless lines) must
 * give items or one error, never a crash or a leak; the items must be the non-empty lines. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The CLI's sources are not part of the library the fuzzers link, so the one file is built here. */
#include "tools/inputs.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    FILE *f = fmemopen((void *)data, size, "r");
    if (!f) return 0;
    mc_inputs in;
    mc_inputs_init(&in);
    mc_err e = {0};
    int r = mc_inputs_add_lines(&in, MC_INPUT_TEXT, f, "fuzz", &e);
    fclose(f);
    mc_input it;
    long long n = 0;
    while (!r && mc_inputs_next(&in, &it, &e) > 0) {
        if (!it.value[0] || strchr(it.value, '\n')) abort(); /* empty lines are skipped, newlines removed */
        free(it.value);
        n++;
    }
    if (!r && n != in.total) abort();
    mc_inputs_free(&in);
    return 0;
}
