/* random_init.h - a seeded random initialisation of a whole CLIP model, for the experiment's
 * untrained baseline (the pipeline check of `experiment fmnist` before any training).
 *
 * Rules by tensor name and rank (PyTorch's module defaults, plus the reference's own inits):
 *   logit_scale                        log(1 / 0.07)                       (open_clip)
 *   *.running_mean / *.running_var     0 / 1; BatchNorm counters 0
 *   *layer_scale*                      1e-5                                (MCi layer_scale_init_value)
 *   text embedding, positional embedding, projections (head.proj, projection_layer)
 *                                      N(0, width^-1/2)                   (the reference's text encoder)
 *   other weights of rank >= 2         U(-1/sqrt(fan_in), 1/sqrt(fan_in))  (kaiming_uniform(a=sqrt 5))
 *   rank-1 *.weight (norms)            1;  *.bias and anything else 0
 * Each tensor draws from its own stream (seed, tensor number), so the values do not depend on
 * threads. Not the training command's initialisation: only a random baseline.
 */
#ifndef MC_EXPERIMENT_RANDOM_INIT_H
#define MC_EXPERIMENT_RANDOM_INIT_H

#include <stdint.h>

#include "core/error.h"
#include "models/config.h"
#include "models/param_store.h"

void mc_experiment_random_init(mc_param_store *s, uint64_t seed);
/* Declares cfg's model, initialises it with `seed` and writes it to path as a torch.save state
 * dict (mc_param_store_save: official names, atomic), loadable with --config. */
int mc_experiment_write_random_checkpoint(const mc_clip_config *cfg, uint64_t seed, const char *path, mc_err *e);

#endif
