/* progress.c - see progress.h. */
#include "tools/progress.h"

#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

void mc_progress_start(mc_progress *p, int enabled, long long total) {
    *p = (mc_progress){.enabled = enabled, .total = total};
    p->t0 = p->last = now();
}

static void draw(mc_progress *p, double t) {
    double dt = t - p->t0, rate = dt > 0 ? (double)p->done / dt : 0;
    char line[160];
    int n;
    if (p->total >= 0) {
        double f = p->total ? (double)p->done / (double)p->total : 1;
        char bar[21];
        for (int i = 0; i < 20; i++) bar[i] = i < (int)(f * 20 + 1e-9) ? '#' : '.';
        bar[20] = 0;
        n = snprintf(line, sizeof line, "  %lld/%lld  %3.0f%%  [%s]  %.1f items/s", p->done, p->total, f * 100, bar, rate);
        if (rate > 0 && p->done < p->total) {
            long long eta = (long long)((double)(p->total - p->done) / rate + 0.5);
            n += snprintf(line + n, sizeof line - (size_t)n, "  ETA %lld:%02lld", eta / 60, eta % 60);
        }
    } else {
        n = snprintf(line, sizeof line, "  %lld items  %.1f items/s", p->done, rate);
    }
    fprintf(stderr, "\r%-72s", line);
    fflush(stderr);
    p->shown = 1;
    p->last = t;
}

void mc_progress_update(mc_progress *p, long long done) {
    p->done = done;
    if (!p->enabled) return;
    double t = now();
    if (t - p->last >= 0.2 || !p->shown) draw(p, t);
}

void mc_progress_clear(mc_progress *p) {
    if (!p->enabled || !p->shown) return;
    fprintf(stderr, "\r%72s\r", "");
    p->shown = 0;
}

void mc_progress_finish(mc_progress *p) {
    if (!p->enabled) return;
    draw(p, now());
    fputc('\n', stderr);
    p->shown = 0;
}
