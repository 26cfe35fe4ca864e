/* make_test_checkpoint ARCH OUT: writes the deterministic-weight test model of
 * shared/golden/ARCH.params.tsv (or a teacher params file given as a path) to OUT, as a
 * torch.save-style zip when OUT ends in .pt, else as safetensors. Used by the CLI tests. */
#include <stdio.h>
#include <string.h>

#include "common/test_util.h"
#include "common/weight_rule.h"
#include "io/safetensors.h"
#include "io/torch_writer.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: make_test_checkpoint ARCH|PARAMS.tsv OUT(.pt|.safetensors)\n");
        return 2;
    }
    char rel[256];
    const char *tsv = argv[1];
    if (!strstr(tsv, ".tsv")) {
        snprintf(rel, sizeof rel, "golden/%s.params.tsv", argv[1]);
        tsv = mc_test_path(rel);
    }
    mc_tensor_map m;
    mc_tensor_map_init(&m);
    mc_err e = {0};
    size_t l = strlen(argv[2]);
    int r = mc_weights_from_tsv(tsv, &m, NULL, &e);
    if (!r) r = (l > 3 && strcmp(argv[2] + l - 3, ".pt") == 0) ? mc_torch_save(argv[2], &m, &e)
                                                               : mc_safetensors_save(argv[2], &m, &e);
    if (r) fprintf(stderr, "make_test_checkpoint: %s\n", e.msg);
    mc_tensor_map_free(&m);
    return r ? 1 : 0;
}
