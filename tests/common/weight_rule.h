/* weight_rule.h - the deterministic weight rule of shared/golden/README.md section 1 for the
 * tests: the rule itself lives in the library (io/weight_rule.h, `mobileclip bench` builds its
 * models with it too); the test-only helpers are here. */
#ifndef MC_TEST_WEIGHT_RULE_H
#define MC_TEST_WEIGHT_RULE_H

#include "io/weight_rule.h"

/* Writes the test model of shared/golden/ARCH.params.tsv to `path` as safetensors; dies on failure. */
void mc_weights_save_test_model(const char *arch, const char *path);

#endif
