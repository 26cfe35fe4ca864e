/* fuzz_run_state.c - libFuzzer target for a training run's state.json (mc_run_state_parse: the
 * JSON reader and the field checks). A state that parses must be consistent (one position pair
 * per data stream, file names inside the folder, counts in range); failures must say why.
 * Seeds: fuzz/seeds/run_state (a CLIP run of 2 processes x 2 BatchNorm groups, a CoCa run). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "train/run_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static mc_run_state s;
    mc_err e = {0};
    if (mc_run_state_parse((const char *)data, size, "state.json", &s, &e) != 0) {
        if (!e.msg[0]) abort();
        return 0;
    }
    if (s.n_pos != s.world * s.groups || s.n_pos < 1 || s.n_pos > MC_RUN_MAX_STREAMS || s.step < 0 || s.batch < 0 ||
        strchr(s.model, '/') || strchr(s.optim, '/') || strlen(s.model) >= sizeof s.model)
        abort();
    for (int i = 0; i < s.n_pos; i++)
        if (s.pos[i].epoch < 0 || s.pos[i].index < 0) abort();
    return 0;
}
