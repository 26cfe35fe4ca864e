/* weight_rule.h - the deterministic weight rule of shared/golden/README.md section 1.
 *
 * Rebuilds every test model (and the benchmark's models) from its params.tsv: element i of tensor `name` is
 * lo + (hi-lo) * u(splitmix64(fnv1a64(name) + i)), computed in double.
 */
#ifndef MC_IO_WEIGHT_RULE_H
#define MC_IO_WEIGHT_RULE_H

#include <stdint.h>

#include "core/rng.h" /* mc_splitmix64 */
#include "core/tensor.h"

uint64_t mc_fnv1a64(const char *s);
float mc_weight_rule_value(uint64_t name_hash, uint64_t i, double lo, double hi);

/* Fills m with every tensor of the params.tsv file (f32 tensors by the rule, i64 zero).
 * If checksum is non-NULL it receives the README's whole-model checksum. */
int mc_weights_from_tsv(const char *tsv_path, mc_tensor_map *m, uint64_t *checksum, mc_err *e);
/* The same restricted to tensors whose name starts with `prefix` (NULL: all); the checksum then
 * covers only those tensors (with element positions counted as if the others were absent). */
int mc_weights_from_tsv_prefix(const char *tsv_path, const char *prefix, mc_tensor_map *m, uint64_t *checksum,
                               mc_err *e);

/* A range for a tensor without a params.tsv entry (custom configurations), in the spirit of the
 * golden ranges: weights +-sqrt(3 / fan_in) (at most 1), biases and running means +-0.1, norm
 * gains and running variances [0.5, 1.5], layer scales [0.05, 0.2], logit_scale ln(1/0.07). */
void mc_weight_rule_range(const char *name, int ndim, const int64_t *shape, double *lo, double *hi);

struct mc_param_store;
/* Fills every float entry of a parameter store by the rule with mc_weight_rule_range's ranges
 * (counters stay as they are). */
void mc_weight_rule_fill_store(struct mc_param_store *s);

#endif
