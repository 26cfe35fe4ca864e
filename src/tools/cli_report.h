/* cli_report.h - the batch embedder's reports (eval/batch.h) for `index` and `eval`: the shared
 * progress line (tools/progress.h) when enabled, and one stderr line per skipped input. */
#ifndef MC_TOOLS_CLI_REPORT_H
#define MC_TOOLS_CLI_REPORT_H

#include "eval/batch.h"
#include "tools/progress.h"

typedef struct mc_cli_report {
    const char *cmd;   /* "index" */
    int enabled;       /* draw the progress line */
    int started;
    mc_progress progress;
    int skipped;       /* on_skip calls */
} mc_cli_report;

/* enabled: --progress, or stderr is a terminal. */
void mc_cli_report_start(mc_cli_report *r, const char *cmd, int progress_flag);
/* Hooks reporting into r (the progress line starts with the first report). */
mc_batch_hooks mc_cli_report_hooks(mc_cli_report *r);

#endif
