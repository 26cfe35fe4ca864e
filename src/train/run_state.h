/* run_state.h - state.json, the commit point of a `mobileclip train` save (CLIP and CoCa runs):
 *
 *   {"step": S, "seed": N, "samples": N, "bad": N, "batch": B, "world": W, "groups": G,
 *    "model": "model-S.pt", "optim": "optim-S.pt", "positions": [epoch, index, ...] (one pair per
 *    data stream: W * G of them, stream rank * G + g), "kind": "coca" (CoCa runs only)}
 *
 * Written atomically, last (after the model and optimizer files it names), so a run killed at any
 * moment resumes from a complete save. Reading checks every field ("world" and "groups" default
 * to 1 when absent) and that the file names stay inside the folder. Saving (the checkpoint files,
 * then this as the commit point) is tools/train_files.h's mc_run_state_save.
 */
#ifndef MC_TRAIN_RUN_STATE_H
#define MC_TRAIN_RUN_STATE_H

#include "core/error.h"
#include "models/param_store.h"
#include "train/loader.h"
#include "train/optim.h"

#define MC_RUN_MAX_STREAMS 1024 /* data streams: processes x BatchNorm groups */

typedef struct mc_run_state {
    long long step;
    unsigned long long seed;
    long long samples, bad;
    int batch, world, groups;
    int n_pos;                             /* world * groups */
    mc_loader_pos pos[MC_RUN_MAX_STREAMS]; /* where each stream's next batch starts */
    char model[64], optim[64];
    const char *kind;                      /* written when not NULL ("coca"); not read back */
} mc_run_state;

int mc_run_state_write(const char *path, const mc_run_state *s, mc_err *e);
int mc_run_state_read(const char *path, mc_run_state *s, mc_err *e);
/* The same from text (`path` names it in messages). */
int mc_run_state_parse(const char *text, size_t len, const char *path, mc_run_state *s, mc_err *e);

/* --resume: the optimizer state of the save s names (DIR/s->optim) into opt, whose step must be
 * s->step (else MC_E_FORMAT naming the file). */
int mc_run_state_load_optim(const char *out, const mc_run_state *s, mc_adamw *opt, mc_param_store *store, mc_err *e);

#endif
