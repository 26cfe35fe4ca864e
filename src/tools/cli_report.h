/* cli_report.h - stderr reports of the batch embedder (eval/batch.h) for `index` and `eval`:
 * a progress line ("mobileclip index: images 120/1000  38.1/s  ETA 23s") when enabled, and
 * one line per skipped input. */
#ifndef MC_TOOLS_CLI_REPORT_H
#define MC_TOOLS_CLI_REPORT_H

#include "eval/batch.h"

typedef struct mc_cli_report {
    const char *cmd;   /* "index" */
    const char *what;  /* "images", "captions" */
    int enabled;       /* draw progress lines */
    double t0;
    int skipped;       /* on_skip calls */
} mc_cli_report;

/* enabled: --progress, or stderr is a terminal. */
void mc_cli_report_start(mc_cli_report *r, const char *cmd, const char *what, int progress_flag);
/* Hooks reporting into r. */
mc_batch_hooks mc_cli_report_hooks(mc_cli_report *r);

#endif
