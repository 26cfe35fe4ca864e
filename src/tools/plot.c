/* Charts drawn with cairo's image surface and toy text API (DejaVu Sans when installed). */
#include "tools/plot.h"

#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/atomic_file.h"

#define FONT "DejaVu Sans"

static cairo_status_t png_write(void *closure, const unsigned char *data, unsigned int n) {
    return fwrite(data, 1, n, closure) == n ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

/* Writes the surface to path atomically (io/atomic_file). */
static int save_png(cairo_surface_t *sf, const char *path, mc_err *e) {
    mc_atomic_file af;
    int r = mc_atomic_open(&af, path, e);
    if (r) return r;
    cairo_status_t st = cairo_surface_write_to_png_stream(sf, png_write, af.f);
    if (st != CAIRO_STATUS_SUCCESS) {
        mc_atomic_abort(&af);
        return mc_fail(e, MC_E_IO, "%s: cannot write the PNG: %s", path, cairo_status_to_string(st));
    }
    return mc_atomic_commit(&af, e);
}

/* Draws s with its anchor (ax, ay in [0,1] of the text's extent) at (x, y). */
static void text_at(cairo_t *cr, double x, double y, const char *s, double ax, double ay) {
    cairo_text_extents_t t;
    cairo_text_extents(cr, s, &t);
    cairo_move_to(cr, x - t.x_bearing - ax * t.width, y - t.y_bearing - ay * t.height);
    cairo_show_text(cr, s);
}

static int finish(cairo_surface_t *sf, cairo_t *cr, const char *path, mc_err *e) {
    cairo_status_t st = cairo_status(cr);
    int r = st == CAIRO_STATUS_SUCCESS ? save_png(sf, path, e)
                                       : mc_fail(e, MC_E_NOMEM, "%s: drawing failed: %s", path, cairo_status_to_string(st));
    cairo_destroy(cr);
    cairo_surface_destroy(sf);
    return r;
}

int mc_plot_confusion_png(const char *path, const int64_t *counts, int n, const char *const *labels,
                          const char *title, mc_err *e) {
    if (n < 1 || n > 2000) return mc_fail(e, MC_E_ARG, "%s: cannot plot a confusion matrix of %d classes", path, n);
    double cell = n <= 12 ? 48 : n <= 40 ? 24 : n <= 200 ? 6 : 2;
    int show_counts = cell >= 24, show_labels = cell >= 6;
    double fs = cell >= 48 ? 12 : 9, margin_l = show_labels ? 150 : 30, margin_t = 50, margin_b = show_labels ? 150 : 40;
    int W = (int)(margin_l + n * cell + 30), H = (int)(margin_t + n * cell + margin_b);
    cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    cairo_t *cr = cairo_create(sf);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 14);
    cairo_set_source_rgb(cr, 0, 0, 0);
    if (title) text_at(cr, W / 2.0, 18, title, 0.5, 0.5);
    cairo_set_font_size(cr, fs);
    for (int i = 0; i < n; i++) {
        int64_t row = 0;
        for (int j = 0; j < n; j++) row += counts[(size_t)i * n + j];
        for (int j = 0; j < n; j++) {
            int64_t c = counts[(size_t)i * n + j];
            double f = row ? (double)c / (double)row : 0, x = margin_l + j * cell, y = margin_t + i * cell;
            cairo_set_source_rgb(cr, 1 - 0.85 * f, 1 - 0.6 * f, 1 - 0.25 * f); /* white -> dark blue */
            cairo_rectangle(cr, x, y, cell, cell);
            cairo_fill(cr);
            if (show_counts && c) {
                char s[24];
                snprintf(s, sizeof s, "%lld", (long long)c);
                cairo_set_source_rgb(cr, f > 0.5 ? 1 : 0, f > 0.5 ? 1 : 0, f > 0.5 ? 1 : 0);
                text_at(cr, x + cell / 2, y + cell / 2, s, 0.5, 0.5);
            }
        }
    }
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, margin_l, margin_t, n * cell, n * cell);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    for (int i = 0; show_labels && labels && i < n; i++) {
        double c = margin_t + (i + 0.5) * cell;
        text_at(cr, margin_l - 6, c, labels[i], 1, 0.5);
        cairo_save(cr);
        cairo_translate(cr, margin_l + (i + 0.5) * cell, margin_t + n * cell + 6);
        cairo_rotate(cr, -M_PI / 2);
        text_at(cr, 0, 0, labels[i], 1, 0.5);
        cairo_restore(cr);
    }
    cairo_set_font_size(cr, 12);
    text_at(cr, margin_l + n * cell / 2, H - 8, "predicted class", 0.5, 1);
    cairo_save(cr);
    cairo_translate(cr, 10, margin_t + n * cell / 2);
    cairo_rotate(cr, -M_PI / 2);
    text_at(cr, 0, 0, "true class", 0.5, 0);
    cairo_restore(cr);
    return finish(sf, cr, path, e);
}

/* "Nice" tick step for a span: 1, 2 or 5 times a power of ten, about 5 ticks. */
static double tick_step(double span) {
    double raw = span / 5, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

/* The plot area of a line plot and the data range it shows (x as log10 on a log axis). */
typedef struct plot_frame {
    double L, T, pw, ph, x0, x1, y0, y1;
    int log_x;
} plot_frame;

/* Point (x, y) in pixels; 0 when it has no place on the plot (not finite, or x <= 0 on a log axis). */
static int plot_point(const plot_frame *f, double x, double y, double *px, double *py) {
    if (f->log_x) x = x > 0 ? log10(x) : NAN;
    if (!isfinite(x) || !isfinite(y)) return 0;
    *px = f->L + (x - f->x0) / (f->x1 - f->x0) * f->pw;
    *py = f->T + f->ph - (y - f->y0) / (f->y1 - f->y0) * f->ph;
    return 1;
}

int mc_plot_lines_png(const char *path, const mc_plot_series *series, int n_series, const char *title,
                      const char *xlabel, const char *ylabel, int log_x, mc_err *e) {
    static const double colours[][3] = {{0.12, 0.47, 0.71}, {1.0, 0.5, 0.05}, {0.17, 0.63, 0.17}, {0.84, 0.15, 0.16},
                                        {0.58, 0.40, 0.74}, {0.55, 0.34, 0.29}, {0.89, 0.47, 0.76}, {0.5, 0.5, 0.5}};
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int s = 0; s < n_series; s++)
        for (int i = 0; i < series[s].n; i++) {
            double x = series[s].x[i], y = series[s].y[i];
            if (log_x) x = x > 0 ? log10(x) : NAN;
            if (!isfinite(x) || !isfinite(y)) continue;
            x0 = fmin(x0, x), x1 = fmax(x1, x), y0 = fmin(y0, y), y1 = fmax(y1, y);
        }
    if (!(x0 <= x1)) return mc_fail(e, MC_E_ARG, "%s: nothing to plot (no finite point)", path);
    if (x1 - x0 < 1e-12) x0 -= 0.5, x1 += 0.5;
    if (y1 - y0 < 1e-12) y0 -= 0.5, y1 += 0.5;
    double pad = 0.05 * (y1 - y0);
    y0 -= pad, y1 += pad;
    const int W = 800, H = 500;
    const double L = 80, R = 20, T = 40, B = 60, pw = W - L - R, ph = H - T - B;
    const plot_frame frame = {L, T, pw, ph, x0, x1, y0, y1, log_x};
    cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    cairo_t *cr = cairo_create(sf);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_font_size(cr, 14);
    if (title) text_at(cr, W / 2.0, 18, title, 0.5, 0.5);
    cairo_set_font_size(cr, 11);
    cairo_set_line_width(cr, 1);
    char s[64];
    /* grid and ticks; a log x axis spanning up to 2 decades also gets 2x and 5x ticks, so that
     * a short run's axis is not a single "1000" */
    for (int axis = 0; axis < 2; axis++) {
        double lo = axis ? y0 : x0, hi = axis ? y1 : x1;
        int log_axis = log_x && !axis, sub = log_axis && hi - lo <= 2;
        double step = log_axis ? fmax(1, round(tick_step(hi - lo))) : tick_step(hi - lo);
        for (double d = (log_axis ? floor(lo / step) : ceil(lo / step)) * step; d <= hi + 1e-9 * step; d += step)
            for (int m = 0; m < (sub ? 3 : 1); m++) {
                static const double mult[3] = {1, 2, 5};
                double v = log_axis ? d + log10(mult[m]) : d;
                if (v < lo - 1e-9 || v > hi + 1e-9) continue;
                double px = axis ? L : L + (v - lo) / (hi - lo) * pw, py = axis ? T + ph - (v - lo) / (hi - lo) * ph : T + ph;
                cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
                if (axis) cairo_move_to(cr, L, py), cairo_line_to(cr, L + pw, py);
                else cairo_move_to(cr, px, T), cairo_line_to(cr, px, T + ph);
                cairo_stroke(cr);
                cairo_set_source_rgb(cr, 0, 0, 0);
                if (log_axis) snprintf(s, sizeof s, "%g", mult[m] * pow(10, d));
                else snprintf(s, sizeof s, "%g", fabs(v) < 1e-12 * step ? 0.0 : v);
                if (axis) text_at(cr, L - 6, py, s, 1, 0.5);
                else text_at(cr, px, T + ph + 6, s, 0.5, 0);
            }
    }
    cairo_rectangle(cr, L, T, pw, ph);
    cairo_stroke(cr);
    cairo_set_font_size(cr, 12);
    if (xlabel) text_at(cr, L + pw / 2, H - 8, xlabel, 0.5, 1);
    if (ylabel) {
        cairo_save(cr);
        cairo_translate(cr, 14, T + ph / 2);
        cairo_rotate(cr, -M_PI / 2);
        text_at(cr, 0, 0, ylabel, 0.5, 0);
        cairo_restore(cr);
    }
    /* series and legend */
    cairo_set_line_width(cr, 2);
    cairo_set_font_size(cr, 11);
    for (int k = 0; k < n_series; k++) {
        const double *c = colours[k % 8];
        cairo_set_source_rgb(cr, c[0], c[1], c[2]);
        int pen = 0;
        for (int i = 0; i < series[k].n; i++) {
            double px, py;
            if (!plot_point(&frame, series[k].x[i], series[k].y[i], &px, &py)) { pen = 0; continue; }
            if (pen) cairo_line_to(cr, px, py);
            else cairo_move_to(cr, px, py);
            pen = 1;
            if (series[k].n <= 60) cairo_rectangle(cr, px - 2, py - 2, 4, 4), cairo_move_to(cr, px, py);
        }
        cairo_stroke(cr);
    }
    /* the legend: as wide as its longest name, on a white box in the corner of the plot that
     * covers the fewest points */
    double lw = 0;
    int named = 0;
    for (int k = 0; k < n_series; k++)
        if (series[k].name) {
            cairo_text_extents_t te;
            cairo_text_extents(cr, series[k].name, &te);
            lw = fmax(lw, te.x_advance);
            named++;
        }
    if (named) {
        double bw = lw + 40, bh = 16.0 * named + 8, best_x = L + pw - bw - 6, best_y = T + 6;
        int best = -1;
        for (int corner = 0; corner < 4; corner++) { /* top right, top left, bottom right, bottom left */
            double bx = corner % 2 ? L + 6 : L + pw - bw - 6, by = corner < 2 ? T + 6 : T + ph - bh - 6;
            int covered = 0;
            for (int k = 0; k < n_series; k++)
                for (int i = 0; i < series[k].n; i++) {
                    double px, py;
                    if (plot_point(&frame, series[k].x[i], series[k].y[i], &px, &py))
                        covered += px >= bx && px <= bx + bw && py >= by && py <= by + bh;
                }
            if (best < 0 || covered < best) best = covered, best_x = bx, best_y = by;
        }
        cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
        cairo_rectangle(cr, best_x, best_y, bw, bh);
        cairo_fill_preserve(cr);
        cairo_set_source_rgb(cr, 0.8, 0.8, 0.8);
        cairo_set_line_width(cr, 1);
        cairo_stroke(cr);
        cairo_set_line_width(cr, 2);
        for (int k = 0, row = 0; k < n_series; k++) {
            if (!series[k].name) continue;
            const double *c = colours[k % 8];
            double ly = best_y + 12 + 16 * row++;
            cairo_set_source_rgb(cr, c[0], c[1], c[2]);
            cairo_move_to(cr, best_x + 8, ly), cairo_line_to(cr, best_x + 28, ly);
            cairo_stroke(cr);
            cairo_set_source_rgb(cr, 0, 0, 0);
            text_at(cr, best_x + 34, ly, series[k].name, 0, 0.5);
        }
    }
    return finish(sf, cr, path, e);
}

void mc_plot_release(void) {
    cairo_debug_reset_static_data();
    FcFini();
}
