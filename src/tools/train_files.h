/* train_files.h - the output-folder pieces `mobileclip train` shares between CLIP and CoCa runs:
 * the loss curves behind loss.png, CSV logs cut back to the last save on resume, and the atomic
 * checkpoint sequence (optimizer and model files, the caller's commit point, model.pt). */
#ifndef MC_TOOLS_TRAIN_FILES_H
#define MC_TOOLS_TRAIN_FILES_H

#include "core/error.h"
#include "models/param_store.h"
#include "train/optim.h"
#include "train/run_state.h"

#include <stddef.h>

/* buf = "dir/name" (truncated to n). */
void mc_train_path(char *buf, size_t n, const char *dir, const char *name);

/* Three loss series over steps (total and two parts). */
typedef struct mc_train_curve {
    double *x, *y[3];
    int n, cap;
} mc_train_curve;

int mc_train_curve_push(mc_train_curve *c, double x, double y0, double y1, double y2);
void mc_train_curve_free(mc_train_curve *c);
/* A log.csv row "step,samples,lr,total,part1,part2,..." back into the curve (an on_row callback). */
int mc_train_curve_row(void *curve, const char *line);

/* Keeps the rows of a CSV log whose step (first field) is at most `step` (a killed run may
 * have logged past its last save); on_row (may be NULL) sees each kept row. Rewritten
 * atomically; a missing file is no error. */
int mc_train_csv_truncate(const char *path, const char *header, long long step, int (*on_row)(void *, const char *),
                          void *user, mc_err *e);

/* The checkpoint of step `step` in folder out: optim-S.pt (mc_adamw_save), model-S.pt
 * (mc_param_store_save), then commit(user) (the caller's state.json, which names them: written
 * last), then model.pt as a hard link to the model (link + rename: atomic); the files of the
 * previous save (prev_model / prev_optim, NULL: none) are removed afterwards. model and optim
 * [64] receive the new names. */
int mc_train_save_checkpoint(const char *out, long long step, const mc_adamw *opt, const mc_param_store *store,
                             char model[64], char optim[64], const char *prev_model, const char *prev_optim,
                             int (*commit)(void *user, mc_err *e), void *user, mc_err *e);

/* The checkpoint of s->step in folder out (mc_train_save_checkpoint: optim-S.pt, model-S.pt,
 * DIR/state.json as the commit point, model.pt), removing the previous save's files; s->model and
 * s->optim receive the new names. */
int mc_run_state_save(const char *out, mc_run_state *s, const mc_adamw *opt, const mc_param_store *store, mc_err *e);

#endif
