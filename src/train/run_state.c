/* state.json of a training run (see run_state.h). */
#include "train/run_state.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"
#include "io/json.h"
#include "io/mapped_file.h"

int mc_run_state_write(const char *path, const mc_run_state *s, mc_err *e) {
    mc_atomic_file af;
    int rc = mc_atomic_open(&af, path, e);
    if (rc) return rc;
    fprintf(af.f,
            "{\"step\": %lld, \"seed\": %llu, \"samples\": %lld, \"bad\": %lld, \"batch\": %d, \"world\": %d, "
            "\"groups\": %d, \"model\": \"%s\", \"optim\": \"%s\", \"positions\": [",
            s->step, s->seed, s->samples, s->bad, s->batch, s->world, s->groups, s->model, s->optim);
    for (int i = 0; i < s->n_pos; i++)
        fprintf(af.f, "%s%lld, %lld", i ? ", " : "", (long long)s->pos[i].epoch, (long long)s->pos[i].index);
    fprintf(af.f, "]%s%s%s}\n", s->kind ? ", \"kind\": \"" : "", s->kind ? s->kind : "", s->kind ? "\"" : "");
    return mc_atomic_commit(&af, e);
}

/* A non-negative integer count under key (absent: *out = dflt when dflt >= 0, else an error). */
static int count_of(const mc_json *j, const char *key, double dflt, double *out) {
    const mc_json *n = mc_json_get(j, key);
    if (!n && dflt >= 0) {
        *out = dflt;
        return 0;
    }
    if (!n || n->type != MC_JSON_NUMBER || !(n->number >= 0) || n->number != floor(n->number) || n->number > 9e15)
        return -1;
    *out = n->number;
    return 0;
}

static int file_name(const mc_json *v) {
    return v && v->type == MC_JSON_STRING && strlen(v->str) < 64 && !strchr(v->str, '/');
}

int mc_run_state_read(const char *path, mc_run_state *s, mc_err *e) {
    char *text;
    size_t len;
    int rc = mc_read_file(path, 1 << 16, &text, &len, e);
    if (rc) return rc;
    rc = mc_run_state_parse(text, len, path, s, e);
    free(text);
    return rc;
}

int mc_run_state_parse(const char *text, size_t len, const char *path, mc_run_state *s, mc_err *e) {
    int rc = 0;
    mc_json *j = mc_json_parse(text, len, e);
    if (!j) return mc_err_prefix(e, "%s", path);
    static const char *keys[] = {"step", "seed", "samples", "bad", "batch", "world", "groups"};
    static const double dflt[] = {-1, -1, -1, -1, -1, 1, 1};
    double v[7];
    for (int k = 0; k < 7 && !rc; k++)
        if (count_of(j, keys[k], dflt[k], &v[k]))
            rc = mc_fail(e, MC_E_FORMAT, "%s: \"%s\" is missing or not a count", path, keys[k]);
    const mc_json *m = mc_json_get(j, "model"), *o = mc_json_get(j, "optim"), *ps = mc_json_get(j, "positions");
    if (!rc && (!file_name(m) || !file_name(o)))
        rc = mc_fail(e, MC_E_FORMAT, "%s: \"model\" / \"optim\" are missing or not file names", path);
    if (!rc && (!ps || ps->type != MC_JSON_ARRAY || ps->count % 2 || ps->count == 0 || ps->count / 2 != v[5] * v[6] ||
                ps->count / 2 > MC_RUN_MAX_STREAMS))
        rc = mc_fail(e, MC_E_FORMAT, "%s: \"positions\" is not one (epoch, index) pair per data stream", path);
    for (int i = 0; !rc && i < ps->count; i++)
        if (ps->items[i].type != MC_JSON_NUMBER || !(ps->items[i].number >= 0) || ps->items[i].number > 9e15)
            rc = mc_fail(e, MC_E_FORMAT, "%s: positions[%d] is not a count", path, i);
    if (!rc) {
        s->step = (long long)v[0];
        s->seed = (unsigned long long)v[1];
        s->samples = (long long)v[2];
        s->bad = (long long)v[3];
        s->batch = (int)v[4];
        s->world = (int)v[5];
        s->groups = (int)v[6];
        s->n_pos = ps->count / 2;
        for (int i = 0; i < s->n_pos; i++)
            s->pos[i] = (mc_loader_pos){(int64_t)ps->items[2 * i].number, (int64_t)ps->items[2 * i + 1].number};
        snprintf(s->model, sizeof s->model, "%s", m->str);
        snprintf(s->optim, sizeof s->optim, "%s", o->str);
        s->kind = NULL;
    }
    mc_json_free(j);
    return rc;
}

int mc_run_state_load_optim(const char *out, const mc_run_state *s, mc_adamw *opt, mc_param_store *store, mc_err *e) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", out, s->optim);
    int rc = mc_adamw_load(opt, store, p, e);
    if (!rc && opt->step != s->step)
        rc = mc_fail(e, MC_E_FORMAT, "%s: optimizer step %lld, state.json step %lld", p, (long long)opt->step, s->step);
    return rc;
}
