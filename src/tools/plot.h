/* plot.h - the PNG charts of the command-line tools (cairo): confusion matrices for `eval`,
 * line plots for loss and accuracy curves (training, experiments). Files are written
 * atomically (temporary file, then rename). */
#ifndef MC_TOOLS_PLOT_H
#define MC_TOOLS_PLOT_H

#include <stdint.h>

#include "core/error.h"

/* counts[n][n]: row = true class, column = predicted class. Cells are shaded by the row's
 * fraction (recall per class); counts are printed when the cells are large enough. */
int mc_plot_confusion_png(const char *path, const int64_t *counts, int n, const char *const *labels,
                          const char *title, mc_err *e);

typedef struct mc_plot_series {
    const char *name;      /* legend entry (NULL: none) */
    const double *x, *y;   /* n points; non-finite points are skipped */
    int n;
} mc_plot_series;

/* Line plot of several series on shared axes (log10 x axis when log_x). */
int mc_plot_lines_png(const char *path, const mc_plot_series *series, int n_series, const char *title,
                      const char *xlabel, const char *ylabel, int log_x, mc_err *e);

/* Frees cairo's and fontconfig's process-wide font caches. Programs that plot call it once when
 * they are done drawing (no plot function may run afterwards in the process): fontconfig keeps
 * its caches behind encoded pointers that leak checkers report as lost. */
void mc_plot_release(void);

#endif
