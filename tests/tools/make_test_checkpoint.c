/* make_test_checkpoint ARCH OUT [--zero TENSOR]...: writes the deterministic-weight test model of
 * shared/golden/ARCH.params.tsv (or a teacher params file given as a path) to OUT, as a
 * torch.save-style zip when OUT ends in .pt, else as safetensors. --zero sets every element of
 * a float tensor to 0 (e.g. text_encoder.projection_layer: all text embeddings are zero).
 * ARCH may also be a model configuration (a .json file): its tensors are declared from the
 * configuration and filled by the weight rule with mc_weight_rule_range's ranges.
 * Used by the CLI tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/test_util.h"
#include "common/weight_rule.h"
#include "io/safetensors.h"
#include "io/torch_writer.h"
#include "models/clip.h"

/* The declared tensors of a configuration, filled by the weight rule, into m. */
static int weights_from_config(const char *path, mc_tensor_map *m, mc_err *e) {
    mc_clip_config cfg;
    mc_clip c;
    int r = mc_clip_config_load(path, &cfg, e);
    if (!r) r = mc_clip_init_config(&c, &cfg, NULL, 1, 1, 0, e);
    if (r) return r;
    mc_weight_rule_fill_store(&c.store);
    mc_tensor_map views;
    r = mc_param_store_as_map(&c.store, &views, e);
    /* copy the views into m (it outlives the model) */
    for (int i = 0; !r && i < views.count; i++) {
        mc_tensor t = views.items[i].t;
        size_t bytes = (size_t)mc_tensor_numel(&t) * mc_dtype_size(t.dtype);
        void *buf = mc_tensor_map_own(m, malloc(bytes ? bytes : 1));
        if (!buf) r = mc_fail(e, MC_E_NOMEM, "out of memory");
        else {
            memcpy(buf, t.data, bytes);
            t.data = buf;
            r = mc_tensor_map_add(m, views.items[i].name, &t, e);
        }
    }
    mc_tensor_map_free(&views);
    mc_clip_free(&c);
    return r;
}

int main(int argc, char **argv) {
    if (argc < 3 || (argc - 3) % 2) {
        fprintf(stderr, "usage: make_test_checkpoint ARCH|PARAMS.tsv OUT(.pt|.safetensors) [--zero TENSOR]...\n");
        return 2;
    }
    char rel[256];
    const char *tsv = argv[1];
    size_t la = strlen(tsv);
    int json = la > 5 && strcmp(tsv + la - 5, ".json") == 0;
    if (!json && !strstr(tsv, ".tsv")) {
        snprintf(rel, sizeof rel, "golden/%s.params.tsv", argv[1]);
        tsv = mc_test_path(rel);
    }
    mc_tensor_map m;
    mc_tensor_map_init(&m);
    mc_err e = {0};
    size_t l = strlen(argv[2]);
    int r = json ? weights_from_config(tsv, &m, &e) : mc_weights_from_tsv(tsv, &m, NULL, &e);
    for (int i = 3; !r && i < argc; i += 2) {
        mc_named_tensor *t = strcmp(argv[i], "--zero") ? NULL : mc_test_entry(&m, argv[i + 1]);
        if (!t || t->t.dtype != MC_DTYPE_F32 || !mc_tensor_is_contiguous(&t->t)) {
            fprintf(stderr, "make_test_checkpoint: expected --zero F32_TENSOR, got %s %s\n", argv[i], argv[i + 1]);
            mc_tensor_map_free(&m);
            return 2;
        }
        memset((void *)t->t.data, 0, sizeof(float) * (size_t)mc_tensor_numel(&t->t));
    }
    if (!r) r = (l > 3 && strcmp(argv[2] + l - 3, ".pt") == 0) ? mc_torch_save(argv[2], &m, &e)
                                                               : mc_safetensors_save(argv[2], &m, &e);
    if (r) fprintf(stderr, "make_test_checkpoint: %s\n", e.msg);
    mc_tensor_map_free(&m);
    return r ? 1 : 0;
}
