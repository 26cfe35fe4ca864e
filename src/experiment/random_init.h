/* random_init.h - the experiment's untrained baseline weights: the training command's
 * initialisation (train/init.h, the reference's rules), so the untrained student is exactly what
 * `mobileclip train` starts from with the same seed.
 */
#ifndef MC_EXPERIMENT_RANDOM_INIT_H
#define MC_EXPERIMENT_RANDOM_INIT_H

#include <stdint.h>

#include "core/error.h"
#include "models/config.h"
#include "models/param_store.h"

/* mc_train_init_params(s, seed). */
void mc_experiment_random_init(mc_param_store *s, uint64_t seed);
/* Declares cfg's model, initialises it with `seed` and writes it to path as a torch.save state
 * dict (mc_param_store_save: official names, atomic), loadable with --config. */
int mc_experiment_write_random_checkpoint(const mc_clip_config *cfg, uint64_t seed, const char *path, mc_err *e);

#endif
