#include "io/weight_rule.h"

#include "models/param_store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

uint64_t mc_fnv1a64(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    return h;
}

float mc_weight_rule_value(uint64_t name_hash, uint64_t i, double lo, double hi) {
    uint64_t x = mc_splitmix64(name_hash + i);
    double u = (double)(x >> 40) * (1.0 / 16777216.0);
    return (float)(lo + (hi - lo) * u);
}

static int has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

void mc_weight_rule_range(const char *name, int ndim, const int64_t *shape, double *lo, double *hi) {
    if (!strcmp(name, "logit_scale")) {
        *lo = *hi = log(1 / 0.07);
    } else if (strstr(name, "layer_scale")) {
        *lo = 0.05, *hi = 0.2;
    } else if (has_suffix(name, "running_var") || (ndim == 1 && has_suffix(name, "weight"))) {
        *lo = 0.5, *hi = 1.5;
    } else if (ndim <= 1) {
        *lo = -0.1, *hi = 0.1;
    } else {
        /* stored x @ P projections [in, out] have fan-in shape[0]; others numel / shape[0] */
        int64_t numel = 1;
        for (int d = 0; d < ndim; d++) numel *= shape[d];
        double fan = has_suffix(name, "proj") || has_suffix(name, "projection_layer") ? (double)shape[0]
                                                                                     : (double)(numel / shape[0]);
        double b = sqrt(3.0 / (fan > 0 ? fan : 1));
        *hi = b < 1 ? b : 1;
        *lo = -*hi;
    }
}

void mc_weight_rule_fill_store(mc_param_store *s) {
    for (int i = 0; i < s->count; i++) {
        const mc_param *p = &s->params[i];
        if (p->flags & MC_PARAM_COUNTER) continue;
        double lo, hi;
        mc_weight_rule_range(p->name, p->ndim, p->shape, &lo, &hi);
        uint64_t h = mc_fnv1a64(p->name);
        for (size_t k = 0; k < p->numel; k++) s->data[p->offset + k] = mc_weight_rule_value(h, k, lo, hi);
    }
}

int mc_weights_from_tsv(const char *tsv_path, mc_tensor_map *m, uint64_t *checksum, mc_err *e) {
    return mc_weights_from_tsv_prefix(tsv_path, NULL, m, checksum, e);
}

int mc_weights_from_tsv_prefix(const char *tsv_path, const char *prefix, mc_tensor_map *m, uint64_t *checksum,
                               mc_err *e) {
    FILE *f = fopen(tsv_path, "r");
    if (!f) return mc_fail(e, MC_E_IO, "%s: cannot open", tsv_path);
    char line[4096];
    uint64_t sum = 0, j = 0;
    int lineno = 0, r = 0;
    while (fgets(line, sizeof line, f)) {
        if (lineno++ == 0) continue; /* header */
        line[strcspn(line, "\r\n")] = 0;
        char *fields[5], *save = NULL, *p = line;
        int nf = 0;
        /* strsep keeps empty fields (0-dim shapes) */
        while (nf < 5 && (fields[nf] = strsep(&p, "\t")) != NULL) nf++;
        (void)save;
        if (nf != 5) { r = mc_fail(e, MC_E_FORMAT, "%s:%d: expected 5 fields", tsv_path, lineno); break; }
        if (prefix && strncmp(fields[0], prefix, strlen(prefix)) != 0) continue;
        mc_tensor t = {0};
        t.storage_id = -1;
        t.dtype = strcmp(fields[1], "i64") == 0 ? MC_DTYPE_I64 : MC_DTYPE_F32;
        for (char *s = fields[2]; *s;) {
            t.shape[t.ndim++] = strtoll(s, &s, 10);
            if (*s == ',') s++;
        }
        int64_t n = mc_tensor_numel(&t), st = 1;
        for (int d = t.ndim - 1; d >= 0; d--) { t.stride[d] = st; st *= t.shape[d]; }
        void *buf = mc_tensor_map_own(m, calloc((size_t)(n ? n : 1), mc_dtype_size(t.dtype)));
        if (!buf) { r = mc_fail(e, MC_E_NOMEM, "out of memory"); break; }
        if (t.dtype == MC_DTYPE_F32) {
            double lo = strtod(fields[3], NULL), hi = strtod(fields[4], NULL);
            uint64_t h = mc_fnv1a64(fields[0]);
            float *v = buf;
            for (int64_t i = 0; i < n; i++) {
                v[i] = mc_weight_rule_value(h, (uint64_t)i, lo, hi);
                uint32_t bits;
                memcpy(&bits, &v[i], 4);
                sum += (uint64_t)bits * (j + (uint64_t)i + 1);
            }
        }
        j += (uint64_t)n;
        t.data = buf;
        t.storage_numel = n;
        if ((r = mc_tensor_map_add(m, fields[0], &t, e))) break;
    }
    fclose(f);
    if (!r && !m->source) m->source = strdup(tsv_path);
    if (checksum) *checksum = sum;
    return r;
}

