/* Output-folder pieces of `mobileclip train` (see train_files.h). */
#include "tools/train_files.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/atomic_file.h"

int mc_train_curve_push(mc_train_curve *c, double x, double y0, double y1, double y2) {
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 256;
        double **arr[4] = {&c->x, &c->y[0], &c->y[1], &c->y[2]};
        for (int k = 0; k < 4; k++) {
            double *p = realloc(*arr[k], sizeof(double) * (size_t)cap);
            if (!p) return -1;
            *arr[k] = p;
        }
        c->cap = cap;
    }
    c->x[c->n] = x, c->y[0][c->n] = y0, c->y[1][c->n] = y1, c->y[2][c->n] = y2;
    c->n++;
    return 0;
}

void mc_train_curve_free(mc_train_curve *c) {
    free(c->x);
    for (int k = 0; k < 3; k++) free(c->y[k]);
    memset(c, 0, sizeof *c);
}

int mc_train_curve_row(void *curve, const char *line) {
    long long s, n;
    double lr, t, a, b;
    if (sscanf(line, "%lld,%lld,%lf,%lf,%lf,%lf", &s, &n, &lr, &t, &a, &b) != 6) return 0;
    return mc_train_curve_push(curve, (double)s, t, a, b);
}

int mc_train_csv_truncate(const char *path, const char *header, long long step, int (*on_row)(void *, const char *),
                          void *user, mc_err *e) {
    FILE *f = fopen(path, "r");
    if (!f) return 0; /* no log yet */
    mc_atomic_file af;
    int rc = mc_atomic_open(&af, path, e);
    if (rc) {
        fclose(f);
        return rc;
    }
    fputs(header, af.f);
    char line[1024];
    int first = 1;
    while (fgets(line, sizeof line, f)) {
        long long s;
        if (first) {
            first = 0;
            continue;
        }
        if (sscanf(line, "%lld,", &s) != 1 || s > step) continue;
        fputs(line, af.f);
        if (on_row && !rc && on_row(user, line)) rc = mc_fail(e, MC_E_NOMEM, "out of memory");
    }
    fclose(f);
    if (rc) {
        mc_atomic_abort(&af);
        return rc;
    }
    return mc_atomic_commit(&af, e);
}

void mc_train_path(char *buf, size_t n, const char *dir, const char *name) { snprintf(buf, n, "%s/%s", dir, name); }

int mc_train_save_checkpoint(const char *out, long long step, const mc_adamw *opt, const mc_param_store *store,
                             char model[64], char optim[64], const char *prev_model, const char *prev_optim,
                             int (*commit)(void *user, mc_err *e), void *user, mc_err *e) {
    char p[4096], q[4096], fin[4096];
    snprintf(model, 64, "model-%lld.pt", step);
    snprintf(optim, 64, "optim-%lld.pt", step);
    mc_train_path(p, sizeof p, out, optim);
    int rc = mc_adamw_save(opt, store, p, e);
    mc_train_path(p, sizeof p, out, model);
    if (!rc) rc = mc_param_store_save(store, p, e);
    if (!rc) rc = commit(user, e); /* the commit point */
    if (rc) return rc;
    /* model.pt: the latest model under a fixed name (link, then rename over: atomic) */
    mc_train_path(q, sizeof q, out, "model.pt.tmp-link");
    mc_train_path(fin, sizeof fin, out, "model.pt");
    unlink(q);
    if (link(p, q) || rename(q, fin)) {
        unlink(q);
        return mc_fail(e, MC_E_IO, "%s: %s", fin, strerror(errno));
    }
    if (prev_model && strcmp(prev_model, model)) {
        mc_train_path(p, sizeof p, out, prev_model);
        unlink(p);
    }
    if (prev_optim && strcmp(prev_optim, optim)) {
        mc_train_path(p, sizeof p, out, prev_optim);
        unlink(p);
    }
    return 0;
}

typedef struct state_commit {
    const char *path;
    const mc_run_state *st;
} state_commit;

static int commit_state(void *user, mc_err *e) {
    const state_commit *c = user;
    return mc_run_state_write(c->path, c->st, e);
}

int mc_run_state_save(const char *out, mc_run_state *s, const mc_adamw *opt, const mc_param_store *store, mc_err *e) {
    char p[4096];
    static mc_run_state prev; /* (large: the positions) */
    mc_train_path(p, sizeof p, out, "state.json");
    int had_prev = mc_run_state_read(p, &prev, NULL) == 0;
    state_commit sc = {p, s};
    return mc_train_save_checkpoint(out, s->step, opt, store, s->model, s->optim, had_prev ? prev.model : NULL,
                                    had_prev ? prev.optim : NULL, commit_state, &sc, e);
}
