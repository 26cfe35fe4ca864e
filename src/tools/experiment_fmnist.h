/* experiment_fmnist.h - the `experiment fmnist` driver and helpers shared with cmd_experiment.c. */
#ifndef MC_TOOLS_EXPERIMENT_FMNIST_H
#define MC_TOOLS_EXPERIMENT_FMNIST_H

#include <stdint.h>

#include "core/error.h"
#include "experiment/fmnist.h"

typedef struct mc_fmnist_run_opts {
    const char *out, *data, *student; /* output folder, IDX folder, built-in student configuration */
    uint64_t seed;
    int quick, limit, threads;        /* limit: samples per split (0: all, or 2000 with quick) */
    int reuse;                        /* keep the shards of an identical earlier conversion */
} mc_fmnist_run_opts;

/* Runs the stages that exist (see docs/EXPERIMENT.md); returns the process exit status. */
int mc_experiment_fmnist_run(const mc_fmnist_run_opts *o);

/* OpenMP threads for the commands that call models directly (n > 0). */
void mc_experiment_set_threads(int n);

#endif
