/* progress.h - a one-line progress display on stderr for long CLI runs:
 *   "  1200/5000  24%  [#####...............]  38.1 items/s  ETA 1:39"
 * (count and rate only when the total is unknown, e.g. a list read from stdin). Redrawn at
 * most 5 times a second; messages printed meanwhile go through mc_progress_clear first. */
#ifndef MC_TOOLS_PROGRESS_H
#define MC_TOOLS_PROGRESS_H

typedef struct mc_progress {
    int enabled;
    long long total; /* < 0: unknown */
    long long done;
    double t0, last;
    int shown;       /* a line is on screen */
} mc_progress;

void mc_progress_start(mc_progress *p, int enabled, long long total);
void mc_progress_update(mc_progress *p, long long done);
/* Erases the line (if shown) so that a message can be printed. */
void mc_progress_clear(mc_progress *p);
/* Draws the final state and ends the line. */
void mc_progress_finish(mc_progress *p);

#endif
