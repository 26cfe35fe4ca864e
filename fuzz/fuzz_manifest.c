/* libFuzzer target for the shard manifest reader (experiment/fmnist.h): any bytes parse to 1, 0
 * or an error, without crashing; the shard files it names do not exist here. */
#include <stddef.h>
#include <stdint.h>

#include "experiment/fmnist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mc_fmnist_shards_opts o = {.data_dir = "/usr/share/datasets/fashion-mnist", .out_dir = "/nonexistent-fuzz",
                               .seed = 0, .per_shard = 1000, .heldout = 5000, .limit = 200};
    mc_fmnist_shards_stats st;
    mc_err e = {0};
    int r = mc_fmnist_parse_manifest((const char *)data, size, "fuzz.json", &o, &st, &e);
    (void)r;
    return 0;
}
