/* Progress and skip lines on stderr for batch embedding (see cli_report.h). */
#include "tools/cli_report.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void mc_cli_report_start(mc_cli_report *r, const char *cmd, const char *what, int progress_flag) {
    r->cmd = cmd;
    r->what = what;
    r->enabled = progress_flag || isatty(2);
    r->t0 = now_s();
    r->skipped = 0;
}

static void on_skip(void *user, int i, const char *reason) {
    mc_cli_report *r = user;
    r->skipped++;
    fprintf(stderr, "%smobileclip %s: skipped: %s\n", r->enabled ? "\r\033[K" : "", r->cmd, reason);
}

static void on_progress(void *user, long long done, long long total) {
    mc_cli_report *r = user;
    if (!r->enabled) return;
    double dt = now_s() - r->t0, rate = dt > 0 ? (double)done / dt : 0;
    fprintf(stderr, "\r\033[Kmobileclip %s: %s %lld/%lld  %.1f/s  ETA %.0fs", r->cmd, r->what, done, total, rate,
            rate > 0 ? (double)(total - done) / rate : 0.0);
    if (done == total) fputc('\n', stderr);
}

mc_batch_hooks mc_cli_report_hooks(mc_cli_report *r) { return (mc_batch_hooks){r, on_skip, on_progress}; }
