/* Progress and skip lines on stderr for batch embedding (see cli_report.h). */
#include "tools/cli_report.h"

#include <stdio.h>
#include <unistd.h>

void mc_cli_report_start(mc_cli_report *r, const char *cmd, int progress_flag) {
    r->cmd = cmd;
    r->enabled = progress_flag || isatty(2);
    r->started = 0;
    r->skipped = 0;
}

static void on_skip(void *user, int i, const char *reason) {
    mc_cli_report *r = user;
    r->skipped++;
    if (r->started) mc_progress_clear(&r->progress);
    fprintf(stderr, "mobileclip %s: skipped: %s\n", r->cmd, reason);
}

static void on_progress(void *user, long long done, long long total) {
    mc_cli_report *r = user;
    if (!r->started) {
        mc_progress_start(&r->progress, r->enabled, total);
        r->started = 1;
    }
    mc_progress_update(&r->progress, done);
    if (done == total) {
        mc_progress_finish(&r->progress);
        r->started = 0;
    }
}

mc_batch_hooks mc_cli_report_hooks(mc_cli_report *r) { return (mc_batch_hooks){r, on_skip, on_progress}; }
