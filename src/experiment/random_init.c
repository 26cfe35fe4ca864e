/* random_init.c - the experiment's random baseline weights: the trainer's initialisation. */
#include "experiment/random_init.h"

#include "models/clip.h"
#include "train/init.h"

void mc_experiment_random_init(mc_param_store *s, uint64_t seed) { mc_train_init_params(s, seed); }

int mc_experiment_write_random_checkpoint(const mc_clip_config *cfg, uint64_t seed, const char *path, mc_err *e) {
    mc_clip c;
    int r = mc_clip_init_config(&c, cfg, NULL, 1, 1, 0, e);
    if (r) return r;
    mc_train_init_params(&c.store, seed);
    r = mc_param_store_save(&c.store, path, e);
    mc_clip_free(&c);
    return r;
}
