/* braceexpand.c - a port of braceexpand 0.1.7's parse_pattern / parse_expression /
 * parse_sequence (same scanning state machine, so unusual inputs such as "}{" behave the
 * same), with size limits. Lists are materialised (mc_strlist) instead of generated. */
#include "io/braceexpand.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bx {
    const char *pattern; /* the whole pattern, for messages */
    mc_err *e;
    int depth;
} bx;

static int too_many(bx *b) {
    return mc_fail(b->e, MC_E_ARG, "shard pattern '%.200s': expands to more than %d names or %zu bytes", b->pattern,
                   MC_BRACE_MAX_RESULTS, MC_BRACE_MAX_BYTES);
}

static int push(bx *b, mc_strlist *l, const char *s, size_t n) {
    if (l->count >= MC_BRACE_MAX_RESULTS || l->bytes + n > MC_BRACE_MAX_BYTES) return too_many(b);
    return mc_strlist_push(l, s, n, b->e);
}

static int parse_pattern(bx *b, const char *s, size_t n, mc_strlist *out);

/* out = product(out, item): every string of out followed by every string of item. */
static int product(bx *b, mc_strlist *acc, const mc_strlist *item) {
    if (item->count == 1 && item->items[0][0] == 0) return 0;
    uint64_t cnt = (uint64_t)acc->count * (uint64_t)item->count;
    uint64_t bytes = (uint64_t)acc->bytes * (uint64_t)item->count + (uint64_t)item->bytes * (uint64_t)acc->count;
    if (cnt > MC_BRACE_MAX_RESULTS || bytes > MC_BRACE_MAX_BYTES) return too_many(b);
    mc_strlist r;
    mc_strlist_init(&r);
    for (int i = 0; i < acc->count; i++) {
        size_t la = strlen(acc->items[i]);
        for (int j = 0; j < item->count; j++) {
            size_t lb = strlen(item->items[j]);
            char *c = malloc(la + lb + 1);
            if (!c) {
                mc_strlist_free(&r);
                return mc_fail(b->e, MC_E_NOMEM, "out of memory expanding '%.200s'", b->pattern);
            }
            memcpy(c, acc->items[i], la);
            memcpy(c + la, item->items[j], lb + 1);
            if (mc_strlist_take(&r, c, b->e)) {
                mc_strlist_free(&r);
                return MC_E_NOMEM;
            }
        }
    }
    mc_strlist_free(acc);
    *acc = r;
    return 0;
}

static int product_literal(bx *b, mc_strlist *acc, const char *s, size_t n) {
    mc_strlist one;
    mc_strlist_init(&one);
    int rc = push(b, &one, s, n);
    if (!rc) rc = product(b, acc, &one);
    mc_strlist_free(&one);
    return rc;
}

/* Parses an optionally negative decimal; returns its length or 0. More than 18 digits set
 * *big (an error for the caller: braceexpand would take any length). */
static size_t parse_int(const char *s, size_t n, long long *v, int *big) {
    size_t i = 0;
    int neg = 0;
    if (i < n && s[i] == '-') neg = 1, i++;
    size_t d0 = i;
    long long x = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (i - d0 >= 18) *big = 1;
        else x = x * 10 + (s[i] - '0');
        i++;
    }
    if (i == d0) return 0;
    *v = neg ? -x : x;
    return i;
}

static int is_letter(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
static int alpha_index(char c) { return c >= 'a' ? 26 + (c - 'a') : c - 'A'; }
static char alpha_char(int i) { return (char)(i < 26 ? 'A' + i : 'a' + (i - 26)); }

/* The optional "..[-]digits" tail of a range; returns 1 if s[i..n) is empty or such a tail. */
static int parse_step(const char *s, size_t i, size_t n, long long *step, int *big) {
    *step = 1;
    if (i == n) return 1;
    if (n - i < 3 || s[i] != '.' || s[i + 1] != '.') return 0;
    i += 2;
    if (s[i] == '-') i++;
    long long v;
    size_t k = parse_int(s + i, n - i, &v, big);
    if (!k || s[i] == '-' || i + k != n) return 0;
    *step = v ? v : 1; /* int(incr) or 1 */
    return 1;
}

/* int_range_re / char_range_re; returns 1 and fills out if expr is a range, 0 if not, <0 on error. */
static int parse_range(bx *b, const char *s, size_t n, mc_strlist *out) {
    if (n && s[n - 1] == '\n') n--; /* '$' also matches before a final newline */
    long long lo, hi, step;
    int big = 0;
    size_t k1 = parse_int(s, n, &lo, &big);
    if (k1 && n - k1 >= 3 && s[k1] == '.' && s[k1 + 1] == '.') {
        size_t k2 = parse_int(s + k1 + 2, n - k1 - 2, &hi, &big);
        if (k2 && parse_step(s, k1 + 2 + k2, n, &step, &big)) {
            if (big) return mc_fail(b->e, MC_E_ARG, "shard pattern '%.200s': range bound of more than 18 digits", b->pattern);
            const char *l = s, *r = s + k1 + 2;
            int pad = 0;
            const char *ends[2] = {l, r};
            size_t lens[2] = {k1, k2};
            for (int t = 0; t < 2; t++) {
                int is_zero = (lens[t] == 1 && ends[t][0] == '0') || (lens[t] == 2 && ends[t][0] == '-' && ends[t][1] == '0');
                int lead0 = ends[t][0] == '0' || (lens[t] >= 2 && ends[t][0] == '-' && ends[t][1] == '0');
                if (!is_zero && lead0) pad = 1;
            }
            int width = pad ? (int)(k1 > k2 ? k1 : k2) : 0;
            uint64_t span = lo < hi ? (uint64_t)(hi - lo) : (uint64_t)(lo - hi);
            uint64_t count = span / (uint64_t)step + 1;
            if (count > MC_BRACE_MAX_RESULTS) return too_many(b);
            for (uint64_t i = 0; i < count; i++) {
                long long v = lo < hi ? lo + (long long)i * step : lo - (long long)i * step;
                char buf[48];
                int len = snprintf(buf, sizeof buf, "%0*lld", width, v);
                int r = push(b, out, buf, (size_t)len);
                if (r) return r;
            }
            return 1;
        }
    }
    if (n >= 4 && is_letter(s[0]) && s[1] == '.' && s[2] == '.' && is_letter(s[3]) && parse_step(s, 4, n, &step, &big)) {
        if (big) return mc_fail(b->e, MC_E_ARG, "shard pattern '%.200s': range step of more than 18 digits", b->pattern);
        int a = alpha_index(s[0]), z = alpha_index(s[3]);
        if (a < z) {
            for (int i = a; i <= z; i += (int)(step > 52 ? 52 : step)) {
                char c = alpha_char(i);
                int r = push(b, out, &c, 1);
                if (r) return r;
            }
        } else { /* alphabet[start:end-1:-step], with end 0 reaching the first letter */
            for (int i = a; i >= z; i -= (int)(step > 52 ? 52 : step)) {
                char c = alpha_char(i);
                int r = push(b, out, &c, 1);
                if (r) return r;
            }
        }
        return 1;
    }
    return 0;
}

/* parse_sequence: 1 and out filled if s has a top-level comma, 0 if not, <0 on error. */
static int parse_sequence(bx *b, const char *s, size_t n, mc_strlist *out) {
    size_t start = 0, pos = 0;
    int depth = 0, commas = 0;
    for (; pos < n; pos++) {
        if (s[pos] == '\\') { pos++; continue; }
        if (s[pos] == '{') depth++;
        else if (s[pos] == '}') depth--;
        else if (s[pos] == ',' && depth == 0) commas++;
    }
    if (depth != 0) return mc_fail(b->e, MC_E_ARG, "shard pattern '%.200s': unbalanced braces", b->pattern);
    if (!commas) return 0;
    depth = 0;
    for (pos = 0; pos <= n; pos++) {
        if (pos < n && s[pos] == '\\') { pos++; continue; }
        int cut = pos >= n;
        if (!cut) {
            if (s[pos] == '{') depth++;
            else if (s[pos] == '}') depth--;
            else if (s[pos] == ',' && depth == 0) cut = 1;
        }
        if (cut) {
            size_t end = pos > n ? n : pos;
            mc_strlist part;
            mc_strlist_init(&part);
            int rc = parse_pattern(b, s + start, end - start, &part);
            for (int i = 0; !rc && i < part.count; i++) rc = push(b, out, part.items[i], strlen(part.items[i]));
            mc_strlist_free(&part);
            if (rc) return rc;
            start = pos + 1;
        }
    }
    return 1;
}

static int parse_expression(bx *b, const char *s, size_t n, mc_strlist *out) {
    int r = parse_range(b, s, n, out);
    if (r) return r;
    return parse_sequence(b, s, n, out);
}

static int parse_pattern(bx *b, const char *s, size_t n, mc_strlist *out) {
    if (++b->depth > 64) return mc_fail(b->e, MC_E_ARG, "shard pattern '%.200s': braces nested too deeply", b->pattern);
    mc_strlist acc;
    mc_strlist_init(&acc);
    int rc = push(b, &acc, "", 0);
    size_t start = 0, pos = 0;
    int depth = 0;
    while (!rc && pos < n) {
        if (s[pos] == '\\') {
            pos += 2;
            continue;
        }
        if (s[pos] == '{') {
            if (depth == 0 && pos > start) {
                rc = product_literal(b, &acc, s + start, pos - start);
                start = pos;
            }
            depth++;
        } else if (s[pos] == '}') {
            depth--;
            if (depth == 0) {
                const char *ex = s + start + 1;
                size_t exn = pos - start - 1;
                mc_strlist item;
                mc_strlist_init(&item);
                int r = parse_expression(b, ex, exn, &item);
                if (r < 0) rc = r;
                else if (r == 1) rc = product(b, &acc, &item);
                else {
                    rc = product_literal(b, &acc, "{", 1);
                    mc_strlist inner;
                    mc_strlist_init(&inner);
                    if (!rc) rc = parse_pattern(b, ex, exn, &inner);
                    if (!rc) rc = product(b, &acc, &inner);
                    mc_strlist_free(&inner);
                    if (!rc) rc = product_literal(b, &acc, "}", 1);
                }
                mc_strlist_free(&item);
                start = pos + 1;
            }
        }
        pos++;
    }
    if (!rc && depth != 0) rc = mc_fail(b->e, MC_E_ARG, "shard pattern '%.200s': unbalanced braces", b->pattern);
    if (pos > n) pos = n;
    if (!rc && start < pos) rc = product_literal(b, &acc, s + start, pos - start);
    b->depth--;
    if (rc) {
        mc_strlist_free(&acc);
        return rc;
    }
    for (int i = 0; i < acc.count && !rc; i++) rc = push(b, out, acc.items[i], strlen(acc.items[i]));
    mc_strlist_free(&acc);
    return rc;
}

/* escape_re.sub(r'\1'): a backslash and the next character (not a newline) -> that character. */
static void unescape(char *s) {
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] && r[1] != '\n') r++;
        *w++ = *r;
    }
    *w = 0;
}

int mc_brace_expand(const char *pattern, mc_strlist *out, mc_err *e) {
    if (!pattern || !out) return mc_fail(e, MC_E_ARG, "mc_brace_expand: NULL argument");
    bx b = {.pattern = pattern, .e = e};
    mc_strlist res;
    mc_strlist_init(&res);
    int before = out->count;
    int rc = parse_pattern(&b, pattern, strlen(pattern), &res);
    if (!rc && (uint64_t)out->count + (uint64_t)res.count > MC_BRACE_MAX_RESULTS) rc = too_many(&b);
    for (int i = 0; !rc && i < res.count; i++) {
        unescape(res.items[i]);
        rc = mc_strlist_push(out, res.items[i], strlen(res.items[i]), e);
    }
    while (rc && out->count > before) { /* leave out as it was */
        out->count--;
        out->bytes -= strlen(out->items[out->count]);
        free(out->items[out->count]);
    }
    mc_strlist_free(&res);
    return rc;
}

int mc_shard_list_expand(const char *spec, mc_strlist *out, mc_err *e) {
    if (!spec || !out) return mc_fail(e, MC_E_ARG, "mc_shard_list_expand: NULL argument");
    int before = out->count, rc = 0;
    const char *p = spec;
    for (;;) {
        const char *q = strstr(p, "::");
        size_t n = q ? (size_t)(q - p) : strlen(p);
        char *part = malloc(n + 1);
        if (!part) { rc = mc_fail(e, MC_E_NOMEM, "out of memory"); break; }
        memcpy(part, p, n);
        part[n] = 0;
        rc = mc_brace_expand(part, out, e);
        free(part);
        if (rc || !q) break;
        p = q + 2;
    }
    while (rc && out->count > before) {
        out->count--;
        out->bytes -= strlen(out->items[out->count]);
        free(out->items[out->count]);
    }
    return rc;
}
