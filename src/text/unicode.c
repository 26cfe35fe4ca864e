/* unicode.c - property lookup, case mapping, UTF-8 and NFC/NFKC (see unicode.h). */
#include "text/unicode.h"

#include <stdlib.h>
#include <string.h>

/* mc_ucd_records, mc_ucd_stage1/2, mc_ucd_seq, mc_ucd_comp: generated at build time. */
#include "mc_ucd_tables.h"

const mc_ucd_record *mc_uc_rec(uint32_t cp) {
    if (cp >= MC_UCD_NCP) cp = 0x10FFFF; /* noncharacter: unassigned, no properties */
    return &mc_ucd_records[mc_ucd_stage2[(size_t)mc_ucd_stage1[cp >> 7] * 128 + (cp & 127)]];
}

static int case_map(uint32_t cp, int32_t v, int is_seq, uint32_t out[3]) {
    if (!is_seq) {
        out[0] = (uint32_t)((int32_t)cp + v);
        return 1;
    }
    uint32_t len = (uint32_t)v >> 24, idx = (uint32_t)v & 0xFFFFFF;
    if (len > 3) len = 3; /* SpecialCasing mappings are at most 3 code points */
    for (uint32_t i = 0; i < len; i++) out[i] = mc_ucd_seq[idx + i];
    return (int)len;
}

int mc_uc_py_lower(uint32_t cp, uint32_t out[3]) {
    const mc_ucd_record *r = mc_uc_rec(cp);
    return case_map(cp, r->lower, (r->flags & MC_UF_LOWER_SEQ) != 0, out);
}

int mc_uc_py_upper(uint32_t cp, uint32_t out[3]) {
    const mc_ucd_record *r = mc_uc_rec(cp);
    return case_map(cp, r->upper, (r->flags & MC_UF_UPPER_SEQ) != 0, out);
}

/* ---------------- buffers ---------------- */

int mc_u32buf_reserve(mc_u32buf *b, size_t need, mc_err *e) {
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > ((size_t)-1 / sizeof(uint32_t)) / 2) return mc_fail(e, MC_E_NOMEM, "text buffer too large");
        cap *= 2;
    }
    uint32_t *v = realloc(b->v, cap * sizeof *v);
    if (!v) return mc_fail(e, MC_E_NOMEM, "out of memory for a text buffer of %zu code points", cap);
    b->v = v;
    b->cap = cap;
    return 0;
}

int mc_u32buf_append(mc_u32buf *b, const uint32_t *src, size_t n, mc_err *e) {
    if (mc_u32buf_reserve(b, b->n + n, e)) return e ? e->code : MC_E_NOMEM;
    if (n) memcpy(b->v + b->n, src, n * sizeof *src);
    b->n += n;
    return 0;
}

void mc_u32buf_free(mc_u32buf *b) {
    free(b->v);
    b->v = NULL;
    b->n = b->cap = 0;
}

/* ---------------- UTF-8 ---------------- */

int mc_utf8_decode(const char *str, size_t len, mc_u32buf *out, mc_err *e) {
    const unsigned char *s = (const unsigned char *)str;
    if (mc_u32buf_reserve(out, out->n + len, e)) return e ? e->code : MC_E_NOMEM;
    size_t i = 0;
    while (i < len) {
        uint32_t c = s[i];
        if (c < 0x80) { out->v[out->n++] = c; i++; continue; }
        int n;
        uint32_t min;
        if (c >= 0xC2 && c <= 0xDF) { n = 1; c &= 0x1F; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { n = 2; c &= 0x0F; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { n = 3; c &= 0x07; min = 0x10000; }
        else return mc_fail(e, MC_E_ARG, "invalid UTF-8: byte 0x%02X at offset %zu", s[i], i);
        if (len - i <= (size_t)n) return mc_fail(e, MC_E_ARG, "invalid UTF-8: truncated sequence at offset %zu", i);
        for (int k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return mc_fail(e, MC_E_ARG, "invalid UTF-8: bad continuation byte at offset %zu", i + k);
            c = (c << 6) | (s[i + k] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return mc_fail(e, MC_E_ARG, "invalid UTF-8: overlong, surrogate or out-of-range sequence at offset %zu", i);
        out->v[out->n++] = c;
        i += (size_t)n + 1;
    }
    return 0;
}

int mc_utf8_put(uint32_t c, unsigned char o[4]) {
    if (c < 0x80) { o[0] = (unsigned char)c; return 1; }
    if (c < 0x800) { o[0] = (unsigned char)(0xC0 | (c >> 6)); o[1] = (unsigned char)(0x80 | (c & 0x3F)); return 2; }
    if (c < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (c >> 12)); o[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (c >> 18)); o[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F)); o[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

/* ---------------- normalization ---------------- */

enum { S_BASE = 0xAC00, L_BASE = 0x1100, V_BASE = 0x1161, T_BASE = 0x11A7,
       L_COUNT = 19, V_COUNT = 21, T_COUNT = 28, N_COUNT = V_COUNT * T_COUNT, S_COUNT = L_COUNT * N_COUNT };

/* Appends the full (recursive) decomposition of cp. Depth is bounded by the data (<= 4). */
static int decompose(uint32_t cp, int compat, mc_u32buf *out, int depth, mc_err *e) {
    if (cp >= S_BASE && cp < S_BASE + S_COUNT) {
        uint32_t si = cp - S_BASE;
        if (mc_u32buf_push(out, L_BASE + si / N_COUNT, e)) return e ? e->code : MC_E_NOMEM;
        if (mc_u32buf_push(out, V_BASE + (si % N_COUNT) / T_COUNT, e)) return e ? e->code : MC_E_NOMEM;
        if (si % T_COUNT && mc_u32buf_push(out, T_BASE + si % T_COUNT, e)) return e ? e->code : MC_E_NOMEM;
        return 0;
    }
    const mc_ucd_record *r = mc_uc_rec(cp);
    if (r->decomp && depth < 16 && (compat || !(r->flags & MC_UF_COMPAT))) {
        uint32_t len = r->decomp >> 24, idx = r->decomp & 0xFFFFFF;
        for (uint32_t i = 0; i < len; i++)
            if (decompose(mc_ucd_seq[idx + i], compat, out, depth + 1, e)) return e ? e->code : MC_E_NOMEM;
        return 0;
    }
    return mc_u32buf_push(out, cp, e);
}

/* Stable sort of a run of non-starters by combining class.  Insertion sort for the
 * usual short runs, counting sort (O(n + 256)) for long ones so that a megabyte of
 * combining marks stays linear. */
static int sort_run(uint32_t *v, size_t n, mc_err *e) {
    if (n < 32) {
        for (size_t i = 1; i < n; i++) {
            uint32_t c = v[i];
            int cc = mc_uc_py_ccc(c);
            size_t j = i;
            while (j > 0 && mc_uc_py_ccc(v[j - 1]) > cc) { v[j] = v[j - 1]; j--; }
            v[j] = c;
        }
        return 0;
    }
    size_t count[257] = {0};
    uint32_t *tmp = malloc(n * sizeof *tmp);
    if (!tmp) return mc_fail(e, MC_E_NOMEM, "out of memory while normalizing");
    for (size_t i = 0; i < n; i++) count[mc_uc_py_ccc(v[i]) + 1]++;
    for (int k = 1; k < 257; k++) count[k] += count[k - 1];
    for (size_t i = 0; i < n; i++) tmp[count[mc_uc_py_ccc(v[i])]++] = v[i];
    memcpy(v, tmp, n * sizeof *v);
    free(tmp);
    return 0;
}

/* Primary composite of (a, b) or 0. */
static uint32_t compose_pair(uint32_t a, uint32_t b) {
    if (a >= L_BASE && a < L_BASE + L_COUNT && b >= V_BASE && b < V_BASE + V_COUNT)
        return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT;
    if (a >= S_BASE && a < S_BASE + S_COUNT && (a - S_BASE) % T_COUNT == 0 && b > T_BASE && b < T_BASE + T_COUNT)
        return a + (b - T_BASE);
    size_t lo = 0, hi = sizeof mc_ucd_comp / sizeof mc_ucd_comp[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const uint32_t *p = mc_ucd_comp[mid];
        if (p[0] < a || (p[0] == a && p[1] < b)) lo = mid + 1;
        else hi = mid;
    }
    if (lo < sizeof mc_ucd_comp / sizeof mc_ucd_comp[0] && mc_ucd_comp[lo][0] == a && mc_ucd_comp[lo][1] == b)
        return mc_ucd_comp[lo][2];
    return 0;
}

int mc_uc_normalize(const uint32_t *in, size_t n, int compat, mc_u32buf *out, mc_err *e) {
    out->n = 0;
    /* 1. full decomposition */
    for (size_t i = 0; i < n; i++)
        if (decompose(in[i], compat, out, 0, e)) return e ? e->code : MC_E_NOMEM;
    /* 2. canonical ordering of every run of non-starters */
    uint32_t *v = out->v;
    size_t m = out->n;
    for (size_t i = 0; i < m;) {
        if (mc_uc_py_ccc(v[i]) == 0) { i++; continue; }
        size_t j = i;
        while (j < m && mc_uc_py_ccc(v[j]) != 0) j++;
        if (j - i > 1 && sort_run(v + i, j - i, e)) return e ? e->code : MC_E_NOMEM;
        i = j;
    }
    /* 3. canonical composition, in place (UAX #15): a character composes with the
     * last starter unless blocked by an uncombined character of class 0 or >= its own. */
    size_t o = 0, starter = (size_t)-1;
    int last_cc = -1; /* class of the last kept character after the starter; -1: none */
    for (size_t i = 0; i < m; i++) {
        uint32_t c = v[i];
        int cc = mc_uc_py_ccc(c);
        if (starter != (size_t)-1 && (last_cc == -1 || (last_cc != 0 && last_cc < cc))) {
            uint32_t comp = compose_pair(v[starter], c);
            if (comp) { v[starter] = comp; continue; }
        }
        if (cc == 0) { starter = o; last_cc = -1; }
        else last_cc = cc;
        v[o++] = c;
    }
    out->n = o;
    return 0;
}
