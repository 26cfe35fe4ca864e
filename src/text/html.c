/* html.c - Python-compatible html.unescape (see html.h). */
#include "text/html.h"

#include <string.h>

#include "text/html_entities.inc"

#define N_ENTITIES (sizeof mc_html5_entities / sizeof mc_html5_entities[0])

int mc_html_entity(const uint32_t *name, size_t len, uint32_t out[2]) {
    char key[40];
    if (len == 0 || len >= sizeof key) return 0;
    for (size_t i = 0; i < len; i++) {
        if (name[i] == 0 || name[i] > 0x7E) return 0; /* all names are printable ASCII */
        key[i] = (char)name[i];
    }
    key[len] = 0;
    size_t lo = 0, hi = N_ENTITIES;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(mc_html5_entities[mid].name, key);
        if (c == 0) {
            out[0] = mc_html5_entities[mid].cp[0];
            out[1] = mc_html5_entities[mid].cp[1];
            return out[1] ? 2 : 1;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

static int is_digit(uint32_t c) { return c >= '0' && c <= '9'; }
static int is_hex(uint32_t c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
static uint32_t hex_val(uint32_t c) { return is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10; }

/* Python's html._invalid_charrefs for 0x80..0x9F: Windows-1252, holes kept as is. */
static const uint16_t charref_c1[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

/* Code point for a numeric reference, following html._replace_charref:
 * returns 0 to emit nothing. */
static uint32_t numeric_ref(uint32_t num) {
    if (num == 0x00) return 0xFFFD;
    if (num == 0x0D) return 0x0D;
    if (num >= 0x80 && num <= 0x9F) return charref_c1[num - 0x80];
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return 0xFFFD;
    if ((num >= 0x01 && num <= 0x08) || num == 0x0B || (num >= 0x0E && num <= 0x1F) || num == 0x7F ||
        (num >= 0xFDD0 && num <= 0xFDEF) || (num & 0xFFFE) == 0xFFFE)
        return 0;
    return num;
}

/* Characters that end a named reference in html.unescape's pattern [^\t\n\f <&#;]. */
static int name_char(uint32_t c) {
    return c != '\t' && c != '\n' && c != '\f' && c != ' ' && c != '<' && c != '&' && c != '#' && c != ';';
}

int mc_html_unescape(const uint32_t *in, size_t n, mc_u32buf *out, mc_err *e) {
    if (mc_u32buf_reserve(out, out->n + n, e)) return e ? e->code : MC_E_NOMEM;
    size_t i = 0;
    while (i < n) {
        uint32_t c = in[i];
        if (c != '&' || i + 1 >= n) {
            if (mc_u32buf_push(out, c, e)) return e ? e->code : MC_E_NOMEM;
            i++;
            continue;
        }
        size_t j = i + 1;
        if (in[j] == '#') {
            /* numeric: #[0-9]+;? or #[xX][0-9a-fA-F]+;? */
            size_t k = j + 1;
            uint32_t num = 0;
            int over = 0;
            if (k < n && is_digit(in[k])) {
                size_t start = k;
                for (; k < n && is_digit(in[k]); k++) {
                    if (!over) num = num * 10 + (in[k] - '0');
                    if (num > 0x10FFFF) over = 1;
                }
                if (k - start > 4300)
                    return mc_fail(e, MC_E_ARG, "numeric character reference with %zu digits (Python's "
                                   "html.unescape refuses more than 4300)", k - start);
            } else if (k + 1 < n && (in[k] == 'x' || in[k] == 'X') && is_hex(in[k + 1])) {
                for (k++; k < n && is_hex(in[k]); k++) {
                    if (!over) num = num * 16 + hex_val(in[k]);
                    if (num > 0x10FFFF) over = 1;
                }
            } else {
                /* "&#" not followed by a number: literal '&' (names cannot start with '#') */
                if (mc_u32buf_push(out, c, e)) return e ? e->code : MC_E_NOMEM;
                i++;
                continue;
            }
            if (k < n && in[k] == ';') k++;
            uint32_t cp = over ? 0xFFFD : numeric_ref(num);
            if (cp && mc_u32buf_push(out, cp, e)) return e ? e->code : MC_E_NOMEM;
            i = k;
            continue;
        }
        /* named: [^\t\n\f <&#;]{1,32};? */
        size_t k = j;
        while (k < n && k - j < 32 && name_char(in[k])) k++;
        if (k == j) {
            if (mc_u32buf_push(out, c, e)) return e ? e->code : MC_E_NOMEM;
            i++;
            continue;
        }
        if (k < n && in[k] == ';') k++;
        size_t len = k - j; /* s = in[j..k) */
        uint32_t val[2];
        int nv = mc_html_entity(in + j, len, val);
        if (nv) {
            if (mc_u32buf_append(out, val, (size_t)nv, e)) return e ? e->code : MC_E_NOMEM;
            i = k;
            continue;
        }
        /* longest prefix s[:x], x = len-1 .. 2, that is a (legacy) name */
        size_t x;
        for (x = len - 1; x >= 2 && x < len; x--) {
            nv = mc_html_entity(in + j, x, val);
            if (nv) break;
        }
        if (nv) {
            if (mc_u32buf_append(out, val, (size_t)nv, e)) return e ? e->code : MC_E_NOMEM;
            if (mc_u32buf_append(out, in + j + x, len - x, e)) return e ? e->code : MC_E_NOMEM;
        } else {
            if (mc_u32buf_append(out, in + i, k - i, e)) return e ? e->code : MC_E_NOMEM; /* '&' + s */
        }
        i = k;
    }
    return 0;
}
