/* The weight rule reproduces the README's check values and whole-model checksums. */
#include <stdio.h>
#include <string.h>

#include "common/test_util.h"
#include "common/weight_rule.h"

static uint32_t bits_of(float f) { uint32_t b; memcpy(&b, &f, 4); return b; }

int main(void) {
    CHECK(mc_fnv1a64("text_encoder.embedding_layer.weight") == 0x8a2df116baf4f57aull, "fnv1a64");
    CHECK(mc_splitmix64(0x8a2df116baf4f57aull) == 0x53da64ef3192efdbull, "splitmix64");
    uint64_t h = mc_fnv1a64("text_encoder.embedding_layer.weight");
    const uint32_t expect[4] = {0xbe309670, 0xbe775484, 0xbeb37cca, 0xbdc45d80};
    for (int i = 0; i < 4; i++)
        CHECK(bits_of(mc_weight_rule_value(h, (uint64_t)i, -0.5, 0.5)) == expect[i], "embedding value %d", i);

    static const struct { const char *arch; int tensors; long long elements; uint64_t checksum; } models[] = {
        {"s0", 893, 53906683LL, 0x6c38a9be5d535751ull},
        {"s1", 1585, 85058769LL, 0xb6459aaa7d6a093dull},
        {"s2", 1721, 99367525LL, 0xfc252e4bad81203bull},
        {"b", 313, 149777411LL, 0x2b0e2f5b9a5fda1aull},
    };
    for (int k = 0; k < 4; k++) {
        char rel[64];
        snprintf(rel, sizeof rel, "golden/%s.params.tsv", models[k].arch);
        mc_tensor_map m;
        mc_tensor_map_init(&m);
        mc_err e = {0};
        uint64_t sum = 0;
        if (mc_weights_from_tsv(mc_test_path(rel), &m, &sum, &e)) mc_test_fatal("%s", e.msg);
        long long elements = 0;
        for (int i = 0; i < m.count; i++) elements += mc_tensor_numel(&m.items[i].t);
        CHECK(m.count == models[k].tensors, "%s: %d tensors", models[k].arch, m.count);
        CHECK(elements == models[k].elements, "%s: %lld elements", models[k].arch, elements);
        CHECK(sum == models[k].checksum, "%s: checksum %016llx", models[k].arch, (unsigned long long)sum);
        printf("%s: %d tensors, %lld elements, checksum %016llx\n", models[k].arch, m.count, elements,
               (unsigned long long)sum);
        mc_tensor_map_free(&m);
    }
    return mc_test_finish("weight_rule");
}
