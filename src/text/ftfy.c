/* ftfy.c - port of ftfy 6.3.1 fix_text (default TextFixerConfig); see ftfy.h.
 *
 * ftfy is written with Python regular expressions; each one is re-expressed here as
 * a small hand-written matcher with the same leftmost-first semantics, named after
 * the ftfy object it replaces.  Text is an array of code points throughout; the
 * re-encoding steps work on byte arrays.
 */
#include "text/ftfy.h"

#include <stdlib.h>
#include <string.h>

#include "text/html.h"
#include "text/ftfy_data.inc"

#define WIDTH_LO 0xFF01u /* ftfy's WIDTH_MAP: U+FF01..U+FFEF by NFKC, plus U+3000 */
#define WIDTH_HI 0xFFEFu
#define MAX_SEGMENT 1000000u /* TextFixerConfig.max_decode_length */
#define MAX_DEPTH 48         /* fix_encoding -> decode_inconsistent_utf8 recursion */

struct mc_ftfy {
    struct { uint32_t cp; uint8_t byte; } enc[MC_FT_NENC][129]; /* sorted by cp */
    int nenc[MC_FT_NENC];
    uint32_t width[WIDTH_HI - WIDTH_LO + 1][3];
    uint8_t width_len[WIDTH_HI - WIDTH_LO + 1]; /* 0: unchanged */
};

typedef struct {
    const mc_ftfy *f;
    mc_err *e;
    size_t budget; /* code points the fixing loops may still process */
    int depth;
} ft_run;

static int ft_charge(ft_run *r, size_t n) {
    n += 16;
    if (n > r->budget)
        return mc_fail(r->e, MC_E_ARG, "text needs too many ftfy repair passes (deeply nested HTML "
                       "escapes or mojibake); refusing instead of taking quadratic time");
    r->budget -= n;
    return 0;
}

#define TRY(x) do { int rc_ = (x); if (rc_ < 0) return rc_; } while (0)

/* ---------------- character classes ---------------- */

static uint32_t ft_bits(uint32_t c) {
    if (c < 0x80 && c != 0x20) return 0;
    size_t lo = 0, hi = sizeof mc_ft_class_table / sizeof mc_ft_class_table[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (mc_ft_class_table[mid].cp < c) lo = mid + 1;
        else hi = mid;
    }
    if (lo < sizeof mc_ft_class_table / sizeof mc_ft_class_table[0] && mc_ft_class_table[lo].cp == c)
        return mc_ft_class_table[lo].bits;
    return 0;
}

static int in_list(uint32_t c, const uint32_t *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (list[i] == c) return 1;
    return 0;
}
#define IN(c, ...) in_list((c), (const uint32_t[]){__VA_ARGS__}, sizeof((const uint32_t[]){__VA_ARGS__}) / sizeof(uint32_t))

static int az(uint32_t c) { return c >= 'a' && c <= 'z'; }
static int azAZ(uint32_t c) { return az(c) || (c >= 'A' && c <= 'Z'); }

/* ---------------- badness (ftfy.badness.BADNESS_RE) ---------------- */

#define NONE 0xFFFFFFFFu

/* Does one of BADNESS_RE's alternatives match at position i? */
static int bad_at(const uint32_t *t, size_t n, size_t i) {
    uint32_t c0 = t[i], c1 = i + 1 < n ? t[i + 1] : NONE, c2 = i + 2 < n ? t[i + 2] : NONE;
    uint32_t c3 = i + 3 < n ? t[i + 3] : NONE;
    uint32_t b0 = ft_bits(c0);
    uint32_t b1 = c1 != NONE ? ft_bits(c1) : 0;
    uint32_t b2 = c2 != NONE ? ft_bits(c2) : 0;
    const uint32_t X = MC_FT_BAD | MC_FT_LA | MC_FT_UA | MC_FT_BOX | MC_FT_SP | MC_FT_EP | MC_FT_CUR |
                       MC_FT_NUM | MC_FT_LAW;

    if (b0 & MC_FT_C1) return 1;                                                  /* [c1] */
    if ((b0 & X) && (b1 & MC_FT_BAD)) return 1;                                   /* [..][bad] */
    if (azAZ(c0) && (b1 & (MC_FT_LC | MC_FT_UC)) && (b2 & MC_FT_BAD)) return 1;
    if ((b0 & MC_FT_BAD) && (b1 & X)) return 1;
    if ((b0 & (MC_FT_LA | MC_FT_LC | MC_FT_BOX | MC_FT_EP | MC_FT_CUR | MC_FT_NUM)) && (b1 & MC_FT_UA)) return 1;
    if ((b0 & (MC_FT_BOX | MC_FT_EP | MC_FT_CUR | MC_FT_NUM)) && (b1 & MC_FT_LA)) return 1;
    if ((b0 & (MC_FT_LA | MC_FT_BOX | MC_FT_EP)) && (b1 & MC_FT_CUR)) return 1;
    if (mc_uc_py_isspace(c0) && (b1 & MC_FT_UA) && (b2 & MC_FT_CUR)) return 1;
    if ((b0 & (MC_FT_UA | MC_FT_BOX)) && (b1 & (MC_FT_NUM | MC_FT_LAW))) return 1;
    if ((b0 & (MC_FT_LA | MC_FT_UA | MC_FT_BOX | MC_FT_CUR | MC_FT_EP)) && (b1 & MC_FT_SP) && (b2 & MC_FT_NUM)) return 1;
    if ((b0 & (MC_FT_LA | MC_FT_UA | MC_FT_CUR | MC_FT_NUM | MC_FT_BOX | MC_FT_LAW)) && (b1 & MC_FT_EP) &&
        (b2 & MC_FT_SP))
        return 1;
    if ((b0 & (MC_FT_CUR | MC_FT_NUM | MC_FT_BOX)) && (b1 & MC_FT_SP)) return 1;
    if (az(c0) && (b1 & MC_FT_UA) && (b2 & (MC_FT_SP | MC_FT_CUR))) return 1;
    if ((b0 & MC_FT_BOX) && (b1 & MC_FT_KAO)) return 1;
    if ((b0 & (MC_FT_LA | MC_FT_UA | MC_FT_CUR | MC_FT_NUM | MC_FT_SP | MC_FT_EP | MC_FT_LAW)) && (b1 & MC_FT_BOX))
        return 1;
    if ((b0 & MC_FT_BOX) && (b1 & MC_FT_EP)) return 1;
    if ((b0 & (MC_FT_LA | MC_FT_UA)) && (b1 & (MC_FT_SP | MC_FT_EP)) && c2 != NONE && mc_uc_py_isword(c2)) return 1;
    if ((c0 == 0x152 || c0 == 0x153) && c1 != NONE && !azAZ(c1)) return 1;       /* [Œœ][^A-Za-z] */
    if ((b0 & MC_FT_UA) && c1 == 0xB0) return 1;                                  /* [ua]° */
    if (IN(c0, 0xC2, 0xC3, 0xCE, 0xD0) &&
        ((b1 & (MC_FT_SP | MC_FT_EP)) || IN(c1, 0x20AC, 0x153, 0x160, 0x161, 0xA2, 0xA3, 0x178, 0x17E, 0xA0,
                                           0xAD, 0xAE, 0xA9, 0xB0, 0xB7, 0xBB, 0x2013, 0x2014, 0xB4)))
        return 1;
    if (c0 == 0xD7 && (c1 == 0xB2 || c1 == 0xB3)) return 1;                       /* × [²³] */
    if ((c0 == 0xD8 || c0 == 0xD9) && (c2 == 0xD8 || c2 == 0xD9)) {               /* Arabic in 1252 */
        const uint32_t A = MC_FT_COMMON | MC_FT_CUR | MC_FT_BAD | MC_FT_NUM | MC_FT_SP;
        int a1 = (b1 & A) || IN(c1, 0x178, 0x160, 0xAE, 0xB0, 0xB5, 0xBB);
        uint32_t b3 = c3 != NONE ? ft_bits(c3) : 0;
        int a3 = c3 != NONE && ((b3 & A) || IN(c3, 0x178, 0x160, 0xAE, 0xB0, 0xB5, 0xBB));
        if (a1 && a3) return 1;
    }
    if (c0 == 0xE0 && IN(c1, 0xB2, 0xB5, 0xB9, 0xBC, 0xBD, 0xBE)) return 1;
    if (c0 == 0x221A && IN(c1, 0xB1, 0x2202, 0x2020, 0x2260, 0xAE, 0x2122, 0xB4, 0x2264, 0x2265, 0xA5, 0xB5, 0xF8))
        return 1;
    if (c0 == 0x2248 && (c1 == 0xB0 || c1 == 0xA2)) return 1;
    if (c0 == 0x201A && c1 == 0xC4 &&
        IN(c2, 0xEC, 0xEE, 0xEF, 0xF2, 0xF4, 0xFA, 0xF9, 0xFB, 0x2020, 0xB0, 0xA2, 0x3C0))
        return 1;
    if (c0 == 0x201A && (c1 == 0xE2 || c1 == 0xF3) && IN(c2, 0xE0, 0xE4, 0xB0, 0xEA)) return 1;
    if (c0 == 0x432 && c1 == 0x402) return 1;                                     /* вЂ */
    if (IN(c0, 0x412, 0x413, 0x420, 0x421) && IN(c2, 0x412, 0x413, 0x420, 0x421) &&
        ((b1 & (MC_FT_C1 | MC_FT_BAD | MC_FT_SP | MC_FT_EP | MC_FT_CUR)) || c1 == 0xB0 || c1 == 0xB5))
        return 1;
    if (c0 == 0x413 && c1 == 0x45E && c2 == 0x412 && c3 == 0x402 && i + 6 < n && t[i + 4] == 0x412 &&
        t[i + 5] != '\n' && (azAZ(t[i + 6]) || t[i + 6] == ' '))
        return 1;                                                                 /* ГўВЂВ.[A-Za-z ] */
    if (c0 == 0xC3 && (c1 == 0xA0 || c1 == 0xA1)) return 1;                       /* Ã[\xa0¡] */
    if (az(c0)) {                                                                 /* [a-z]\s?[ÃÂ][ ] */
        if ((c1 == 0xC3 || c1 == 0xC2) && c2 == ' ') return 1;
        if (c1 != NONE && mc_uc_py_isspace(c1) && (c2 == 0xC3 || c2 == 0xC2) && c3 == ' ') return 1;
    }
    if (i == 0 && (c0 == 0xC3 || c0 == 0xC2) && c1 == ' ') return 1;              /* ^[ÃÂ][ ] */
    if ((az(c0) || c0 == '.' || c0 == ',' || c0 == '?' || c0 == '!' || (b0 & MC_FT_EP)) && c1 == 0xC2 &&
        (c2 == ' ' || (b2 & (MC_FT_SP | MC_FT_EP))))
        return 1;
    if (c0 == 0x3B2 && c1 == 0x20AC && IN(c2, 0x2122, 0xA0, 0x386, 0xAD, 0xAE, 0xB0)) return 1;
    if (IN(c0, 0x392, 0x393, 0x39E, 0x39F) && IN(c2, 0x392, 0x393, 0x39E, 0x39F) &&
        ((b1 & (MC_FT_C1 | MC_FT_BAD | MC_FT_SP | MC_FT_EP | MC_FT_CUR)) || c1 == 0xB0))
        return 1;
    if (c0 == 0x101 && c1 == 0x20AC) return 1;                                    /* ā€ */
    return 0;
}

int mc_ftfy_is_bad(const uint32_t *t, size_t n) {
    for (size_t i = 0; i < n; i++) {
        /* Every alternative starts with a non-ASCII character, an ASCII letter,
         * white space or one of ".,?!": skip the rest quickly. */
        uint32_t c = t[i];
        if (c < 0x80 && !azAZ(c) && !mc_uc_py_isspace(c) && c != '.' && c != ',' && c != '?' && c != '!') continue;
        if (bad_at(t, n, i)) return 1;
    }
    return 0;
}

/* ---------------- single-byte codecs ---------------- */

static int ft_can_encode(const mc_ftfy *f, int k, uint32_t c, uint8_t *byte) {
    if (c < 0x80) {
        if (c == 0x1A && mc_ft_enc_sloppy[k]) return 0;
        *byte = (uint8_t)c;
        return 1;
    }
    int lo = 0, hi = f->nenc[k];
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (f->enc[k][mid].cp < c) lo = mid + 1;
        else hi = mid;
    }
    if (lo < f->nenc[k] && f->enc[k][lo].cp == c) { *byte = f->enc[k][lo].byte; return 1; }
    return 0;
}

/* text.encode(encoding k) into bytes; 0 if some character is not in the charset
 * (chardata.possible_encoding is exactly "encodable"). */
static int ft_encode(const mc_ftfy *f, int k, const uint32_t *t, size_t n, uint8_t *out) {
    for (size_t i = 0; i < n; i++)
        if (!ft_can_encode(f, k, t[i], &out[i])) return 0;
    return 1;
}

/* ---------------- byte-level transcoders ---------------- */

static int cont(uint8_t b) { return b >= 0x80 && b <= 0xBF; }
static int cont_nb(uint8_t b) { return (b >= 0x80 && b <= 0x84) || (b >= 0x86 && b <= 0x9F) || (b >= 0xA1 && b <= 0xBF); }

/* chardata.ALTERED_UTF8_RE at p: match length or 0. */
static size_t altered_at(const uint8_t *b, size_t m, size_t p) {
    uint8_t c = b[p];
    if ((c == 0xC2 || c == 0xC3 || c == 0xC5 || c == 0xCE || c == 0xD0 || c == 0xD9) && p + 1 < m && b[p + 1] == 0x20)
        return 2;
    if ((c == 0xE2 || c == 0xE3) && p + 2 < m && b[p + 1] == 0x20 && cont_nb(b[p + 2])) return 3;
    if (c >= 0xE0 && c <= 0xE3 && p + 2 < m && cont_nb(b[p + 1]) && b[p + 2] == 0x20) return 3;
    if (c == 0xF0 && p + 3 < m) {
        if (b[p + 1] == 0x20 && cont(b[p + 2]) && cont(b[p + 3])) return 4;
        if (cont(b[p + 1]) && b[p + 2] == 0x20 && cont(b[p + 3])) return 4;
        if (cont(b[p + 1]) && cont(b[p + 2]) && b[p + 3] == 0x20) return 4;
    }
    return 0;
}

/* fixes.restore_byte_a0: A_GRAVE_WORD_RE then ALTERED_UTF8_RE. in -> out; out and
 * tmp each have room for 3m/2 + 1 bytes. Returns the new length. */
static size_t restore_byte_a0(const uint8_t *in, size_t m, uint8_t *out, uint8_t *tmp) {
    /* b"\xc3 (?! |quele|quela|quilo|s )" -> b"\xc3\xa0 " */
    size_t o = 0;
    for (size_t p = 0; p < m;) {
        if (in[p] == 0xC3 && p + 1 < m && in[p + 1] == 0x20) {
            const uint8_t *q = in + p + 2;
            size_t left = m - p - 2;
            int blocked = (left >= 1 && q[0] == ' ') ||
                          (left >= 5 && (!memcmp(q, "quele", 5) || !memcmp(q, "quela", 5) || !memcmp(q, "quilo", 5))) ||
                          (left >= 2 && q[0] == 's' && q[1] == ' ');
            if (!blocked) {
                tmp[o++] = 0xC3; tmp[o++] = 0xA0; tmp[o++] = 0x20;
                p += 2;
                continue;
            }
        }
        tmp[o++] = in[p++];
    }
    size_t m2 = o;
    o = 0;
    for (size_t p = 0; p < m2;) {
        size_t len = altered_at(tmp, m2, p);
        if (len) {
            for (size_t k = 0; k < len; k++) out[o++] = tmp[p + k] == 0x20 ? 0xA0 : tmp[p + k];
            p += len;
        } else {
            out[o++] = tmp[p++];
        }
    }
    return o;
}

static int is_1a_q(uint8_t b) { return b == 0x1A || b == '?'; }
static int is_1a_c(uint8_t b) { return b == 0x1A || cont(b); }
static int is_1a_q_c(uint8_t b) { return b == 0x1A || b == '?' || cont(b); }

/* chardata.LOSSY_UTF8_RE at p: match length or 0. */
static size_t lossy_at(const uint8_t *b, size_t m, size_t p) {
    uint8_t c = b[p];
    size_t left = m - p;
    if (c >= 0xC2 && c <= 0xDF && left >= 2 && b[p + 1] == 0x1A) return 2;
    if ((c == 0xC2 || c == 0xC3) && left >= 2 && b[p + 1] == '?') return 2;
    if (c == 0xED && left >= 6 && b[p + 1] >= 0xA0 && b[p + 1] <= 0xAF && b[p + 3] == 0xED && b[p + 4] >= 0xB0 &&
        b[p + 4] <= 0xBF) {
        if (is_1a_q(b[p + 2]) && is_1a_q_c(b[p + 5])) return 6;
        if (is_1a_q_c(b[p + 2]) && is_1a_q(b[p + 5])) return 6;
    }
    if (c >= 0xE0 && c <= 0xEF && left >= 3) {
        if (is_1a_q(b[p + 1]) && is_1a_c(b[p + 2])) return 3;
        if (is_1a_c(b[p + 1]) && is_1a_q(b[p + 2])) return 3;
    }
    if (c >= 0xF0 && c <= 0xF4 && left >= 4) {
        if (is_1a_q(b[p + 1]) && is_1a_c(b[p + 2]) && is_1a_c(b[p + 3])) return 4;
        if (is_1a_c(b[p + 1]) && is_1a_q(b[p + 2]) && is_1a_c(b[p + 3])) return 4;
        if (is_1a_c(b[p + 1]) && is_1a_c(b[p + 2]) && is_1a_q(b[p + 3])) return 4;
    }
    if (c == 0x1A) return 1;
    return 0;
}

/* fixes.replace_lossy_sequences: each match -> EF BF BD. out has room for 3m. */
static size_t replace_lossy(const uint8_t *in, size_t m, uint8_t *out) {
    size_t o = 0;
    for (size_t p = 0; p < m;) {
        size_t len = lossy_at(in, m, p);
        if (len) { out[o++] = 0xEF; out[o++] = 0xBF; out[o++] = 0xBD; p += len; }
        else out[o++] = in[p++];
    }
    return o;
}

/* Strict UTF-8 decoding of one character at p (Python's codec); 0 on error. */
static size_t utf8_char(const uint8_t *b, size_t m, size_t p, uint32_t *cp) {
    uint8_t c = b[p];
    if (c < 0x80) { *cp = c; return 1; }
    size_t n;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) { n = 1; v = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 2; v = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 3; v = c & 0x07; min = 0x10000; }
    else return 0;
    if (m - p <= n) return 0;
    for (size_t k = 1; k <= n; k++) {
        if (!cont(b[p + k])) return 0;
        v = (v << 6) | (b[p + k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return n + 1;
}

/* Strict UTF-8 decoding of b[s..e) appended to out (room reserved): 0, or 1 on error. */
static int strict_append(const uint8_t *b, size_t s, size_t e, mc_u32buf *out) {
    for (size_t p = s; p < e;) {
        uint32_t cp;
        size_t len = utf8_char(b, e, p, &cp);
        if (!len) return 1;
        out->v[out->n++] = cp;
        p += len;
    }
    return 0;
}

/* Python's `$` (no MULTILINE) at p: the end, or just before a final "\n". */
static int py_dollar(const uint8_t *b, size_t m, size_t p) { return p == m || (p + 1 == m && b[p] == '\n'); }

/* Does utf8_variants.SPECIAL_BYTES_RE match at p?  (NULL_EXPR | CESU8_EXPR |
 * SURROGATE_EXPR; a CESU-8 match implies a SURROGATE_EXPR match at the same place.) */
static int special_at(const uint8_t *b, size_t m, size_t p) {
    if (b[p] == 0xC0) return (p + 1 < m && b[p + 1] == 0x80) || py_dollar(b, m, p + 1);
    if (b[p] != 0xED) return 0;
    size_t q = p + 1;
    if (q < m && b[q] >= 0xA0 && b[q] <= 0xBF) q++;
    else if (!py_dollar(b, m, q)) return 0;
    return (q < m && cont(b[q])) || py_dollar(b, m, q);
}

/* bytes.decode("utf-8") or, when variants != 0, ftfy's "utf-8-variants" codec,
 * replayed step by step as its IncrementalDecoder runs (final=True): standard
 * UTF-8 up to each special sequence; C0 80 -> U+0000; a CESU-8 surrogate pair ->
 * one code point; anything else there fails.  The regexes' `$` also matches before
 * a final newline, which this codec then swallows ("C0\n" at the end -> U+0000);
 * replayed as is.  0 = decoded into out, 1 = UnicodeDecodeError, < 0 = error. */
static int ft_decode_utf8(const uint8_t *b, size_t m, int variants, mc_u32buf *out, mc_err *e) {
    out->n = 0;
    if (mc_u32buf_reserve(out, m, e)) return e ? e->code : MC_E_NOMEM;
    if (!variants) return strict_append(b, 0, m, out);
    size_t pos = 0;
    while (pos < m) {
        size_t cut = pos;
        while (cut < m && !special_at(b, m, cut)) cut++;
        if (cut > pos) {
            if (strict_append(b, pos, cut, out)) return 1;
            pos = cut;
            continue;
        }
        if (b[pos] == 0xC0) {
            if (m - pos < 2) return 1;
            out->v[out->n++] = 0;
            pos += 2;
            continue;
        }
        if (m - pos < 6) return strict_append(b, pos, m, out); /* fails: ED A0.. is no UTF-8 */
        const uint8_t *c = b + pos;
        if (c[1] >= 0xA0 && c[1] <= 0xAF && cont(c[2]) && c[3] == 0xED && c[4] >= 0xB0 && c[4] <= 0xBF &&
            (cont(c[5]) || py_dollar(b, m, pos + 5))) {
            out->v[out->n++] = (((uint32_t)c[1] & 0x0F) << 16) + (((uint32_t)c[2] & 0x3F) << 10) +
                               (((uint32_t)c[4] & 0x0F) << 6) + ((uint32_t)c[5] & 0x3F) + 0x10000;
            pos += 6;
            continue;
        }
        return 1;
    }
    return 0;
}

/* ---------------- UTF8_DETECTOR_RE and decode_inconsistent_utf8 ---------------- */

static size_t detector_at(const uint32_t *t, size_t n, size_t i) {
    if (i > 0 && (ft_bits(t[i - 1]) & MC_FT_STRICT)) return 0; /* (?<![strict]) */
    size_t p = i;
    for (;;) {
        uint32_t b = p < n ? ft_bits(t[p]) : 0;
        size_t need = 0;
        if ((b & MC_FT_F2) && p + 1 < n && (ft_bits(t[p + 1]) & MC_FT_CONT)) need = 1;
        else if ((b & MC_FT_F3) && p + 2 < n && (ft_bits(t[p + 1]) & MC_FT_CONT) && (ft_bits(t[p + 2]) & MC_FT_CONT))
            need = 2;
        else if ((b & MC_FT_F4) && p + 3 < n && (ft_bits(t[p + 1]) & MC_FT_CONT) &&
                 (ft_bits(t[p + 2]) & MC_FT_CONT) && (ft_bits(t[p + 3]) & MC_FT_CONT))
            need = 3;
        if (!need) break;
        p += need + 1;
    }
    return p - i;
}

static int fix_encoding(ft_run *r, mc_u32buf *text);

static int decode_inconsistent_utf8(ft_run *r, const uint32_t *t, size_t n, mc_u32buf *out) {
    mc_err *e = r->e;
    out->n = 0;
    mc_u32buf sub = {0};
    int rc = 0;
    for (size_t i = 0; i < n;) {
        size_t len = detector_at(t, n, i);
        if (!len) {
            if ((rc = mc_u32buf_push(out, t[i], e))) goto done;
            i++;
            continue;
        }
        if (len < n && mc_ftfy_is_bad(t + i, len)) {
            sub.n = 0;
            if ((rc = mc_u32buf_append(&sub, t + i, len, e))) goto done;
            if ((rc = fix_encoding(r, &sub)) < 0) goto done;
            if ((rc = mc_u32buf_append(out, sub.v, sub.n, e))) goto done;
        } else if ((rc = mc_u32buf_append(out, t + i, len, e))) {
            goto done;
        }
        i += len;
    }
done:
    mc_u32buf_free(&sub);
    return rc < 0 ? rc : 0;
}

static int same(const uint32_t *a, size_t na, const uint32_t *b, size_t nb) {
    return na == nb && (na == 0 || !memcmp(a, b, na * sizeof *a));
}

/* _fix_encoding_one_step_and_explain: 1 = changed (result in out), 0 = unchanged. */
static int fix_encoding_step(ft_run *r, const uint32_t *t, size_t n, mc_u32buf *out) {
    const mc_ftfy *f = r->f;
    mc_err *e = r->e;
    if (n == 0) return 0;
    TRY(ft_charge(r, n));
    int ascii = 1;
    for (size_t i = 0; i < n && ascii; i++) ascii = t[i] < 0x80;
    if (ascii || !mc_ftfy_is_bad(t, n)) return 0;

    int rc = 0, possible[MC_FT_NENC] = {0};
    /* encoded bytes (n), restore_byte_a0 output and scratch (each < 1.5n + 1),
     * replace_lossy_sequences output (< 3x its input) */
    size_t cap_a0 = 2 * n + 2;
    uint8_t *enc = malloc(n + 1), *a0 = malloc(cap_a0), *a0_tmp = malloc(cap_a0), *lossy = malloc(3 * cap_a0);
    if (!enc || !a0 || !a0_tmp || !lossy) { rc = mc_fail(e, MC_E_NOMEM, "out of memory in ftfy"); goto done; }
    for (int k = 0; k < MC_FT_NENC; k++) {
        if (!ft_encode(f, k, t, n, enc)) continue;
        possible[k] = 1;
        const uint8_t *bytes = enc;
        size_t m = n;
        if (strcmp(mc_ft_enc_names[k], "macroman") != 0) {
            int altered = 0;
            for (size_t p = 0; p < m && !altered; p++) altered = altered_at(bytes, m, p) != 0;
            if (altered) {
                m = restore_byte_a0(bytes, m, a0, a0_tmp);
                bytes = a0;
            }
        }
        if (mc_ft_enc_sloppy[k]) {
            m = replace_lossy(bytes, m, lossy);
            bytes = lossy;
        }
        int variants = memchr(bytes, 0xED, m) != NULL || memchr(bytes, 0xC0, m) != NULL;
        rc = ft_decode_utf8(bytes, m, variants, out, e);
        if (rc < 0) goto done;
        if (rc == 0) { rc = !same(out->v, out->n, t, n); goto done; } /* may re-decode to itself */
        rc = 0;
    }
    /* decode_inconsistent_utf8 */
    {
        int any = 0;
        for (size_t i = 0; i < n && !any; i++) any = detector_at(t, n, i) != 0;
        if (any) {
            if (r->depth >= MAX_DEPTH) { rc = mc_fail(e, MC_E_ARG, "ftfy: mojibake nested too deeply"); goto done; }
            r->depth++;
            rc = decode_inconsistent_utf8(r, t, n, out);
            r->depth--;
            if (rc < 0) goto done;
            if (!same(out->v, out->n, t, n)) { rc = 1; goto done; }
            rc = 0;
        }
    }
    /* "latin-1" possible: C1 controls meant as windows-1252 (strict: its five
     * unassigned bytes fail).  ftfy's test for "windows-1252" being possible too
     * can never succeed (its list holds "sloppy-windows-1252"), so it is omitted. */
    if (possible[0]) {
        int ok = 1;
        out->n = 0;
        if ((rc = mc_u32buf_reserve(out, n, e))) goto done;
        for (size_t i = 0; i < n && ok; i++) {
            uint32_t c = t[i];
            if (c == 0x81 || c == 0x8D || c == 0x8F || c == 0x90 || c == 0x9D) ok = 0;
            else if (c >= 0x80 && c <= 0x9F) c = mc_ft_enc_high[1][c - 0x80];
            out->v[out->n++] = c;
        }
        if (ok && !same(out->v, out->n, t, n)) { rc = 1; goto done; }
    }
    /* fix_c1_controls */
    {
        int c1 = 0;
        for (size_t i = 0; i < n && !c1; i++) c1 = t[i] >= 0x80 && t[i] <= 0x9F;
        if (c1) {
            out->n = 0;
            if ((rc = mc_u32buf_reserve(out, n, e))) goto done;
            for (size_t i = 0; i < n; i++) {
                uint32_t c = t[i];
                out->v[out->n++] = (c >= 0x80 && c <= 0x9F) ? mc_ft_enc_high[1][c - 0x80] : c;
            }
            rc = !same(out->v, out->n, t, n);
            goto done;
        }
    }
    rc = 0;
done:
    free(enc);
    free(a0);
    free(a0_tmp);
    free(lossy);
    return rc;
}

/* ftfy.fix_encoding: repeat one step until the text stops changing. */
static int fix_encoding(ft_run *r, mc_u32buf *text) {
    mc_u32buf tmp = {0};
    int rc;
    for (;;) {
        rc = fix_encoding_step(r, text->v, text->n, &tmp);
        if (rc <= 0) break;
        mc_u32buf_swap(text, &tmp);
    }
    mc_u32buf_free(&tmp);
    return rc < 0 ? rc : 0;
}

/* ---------------- fixes.unescape_html ---------------- */

static int alnum(uint32_t c) { return azAZ(c) || (c >= '0' && c <= '9'); }

/* HTML_ENTITIES lookup for "&" + s (s = name + ";", all ASCII alnum + ';').
 * Returns the number of code points in val (0: not an ftfy entity). */
static int ftfy_entity(const uint32_t *s, size_t len, uint32_t val[6], mc_err *e, int *err) {
    uint32_t v[2];
    int nv = mc_html_entity(s, len, v);
    if (nv) { memcpy(val, v, (size_t)nv * sizeof *v); return nv; }
    /* all-caps variant of an all-lower-case name, if html.unescape leaves it alone */
    uint32_t low[32];
    int has_upper = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] >= 'a' && s[i] <= 'z') return 0;
        if (s[i] >= 'A' && s[i] <= 'Z') has_upper = 1;
        low[i] = (s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i];
    }
    if (!has_upper) return 0;
    low[len - 1] = ';';
    nv = mc_html_entity(low, len, v);
    if (!nv) return 0;
    uint32_t amp[34];
    amp[0] = '&';
    memcpy(amp + 1, s, len * sizeof *s);
    mc_u32buf un = {0};
    if (mc_html_unescape(amp, len + 1, &un, e)) { *err = e ? e->code : MC_E_NOMEM; mc_u32buf_free(&un); return 0; }
    int unchanged = same(un.v, un.n, amp, len + 1);
    mc_u32buf_free(&un);
    if (!unchanged) return 0;
    int k = 0;
    for (int i = 0; i < nv; i++) k += mc_uc_py_upper(v[i], val + k);
    return k;
}

static int unescape_html(const uint32_t *t, size_t n, mc_u32buf *out, mc_err *e) {
    out->n = 0;
    if (mc_u32buf_reserve(out, n, e)) return e ? e->code : MC_E_NOMEM;
    for (size_t i = 0; i < n;) {
        /* HTML_ENTITY_RE = &#?[0-9A-Za-z]{1,24}; */
        if (t[i] == '&') {
            size_t j = i + 1, k;
            int hash = j < n && t[j] == '#';
            if (hash) j++;
            for (k = j; k < n && k - j < 24 && alnum(t[k]); k++) {}
            if (k > j && k < n && t[k] == ';') {
                size_t end = k + 1; /* match t[i..end) */
                uint32_t val[6];
                int nv = 0, err = 0;
                if (!hash) {
                    nv = ftfy_entity(t + i + 1, end - i - 1, val, e, &err);
                    if (err) return err;
                    if (nv) {
                        if (mc_u32buf_append(out, val, (size_t)nv, e)) return e ? e->code : MC_E_NOMEM;
                        i = end;
                        continue;
                    }
                } else {
                    mc_u32buf un = {0};
                    if (mc_html_unescape(t + i, end - i, &un, e)) { mc_u32buf_free(&un); return e ? e->code : MC_E_NOMEM; }
                    int semi = 0;
                    for (size_t q = 0; q < un.n; q++) semi |= un.v[q] == ';';
                    int rc = mc_u32buf_append(out, semi ? t + i : un.v, semi ? end - i : un.n, e);
                    mc_u32buf_free(&un);
                    if (rc) return rc;
                    i = end;
                    continue;
                }
                if (mc_u32buf_append(out, t + i, end - i, e)) return e ? e->code : MC_E_NOMEM;
                i = end;
                continue;
            }
        }
        if (mc_u32buf_push(out, t[i], e)) return e ? e->code : MC_E_NOMEM;
        i++;
    }
    return 0;
}

/* ---------------- the per-character fixers ---------------- */

static int lig_lookup(uint32_t c, const uint32_t **to) {
    for (size_t i = 0; i < sizeof mc_ft_ligatures / sizeof mc_ft_ligatures[0]; i++)
        if (mc_ft_ligatures[i].cp == c) { *to = mc_ft_ligatures[i].to; return 1; }
    return 0;
}

static int width_map(const mc_ftfy *f, uint32_t c, uint32_t out[3]) {
    if (c == 0x3000) { out[0] = ' '; return 1; }
    if (c >= WIDTH_LO && c <= WIDTH_HI && f->width_len[c - WIDTH_LO]) {
        memcpy(out, f->width[c - WIDTH_LO], sizeof f->width[0]);
        return f->width_len[c - WIDTH_LO];
    }
    out[0] = c;
    return 1;
}

static uint32_t uncurl(uint32_t c) {
    if (c == 0x2BC || (c >= 0x2018 && c <= 0x201B)) return '\'';
    if (c >= 0x201C && c <= 0x201F) return '"';
    return c;
}

/* fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes, in this
 * order.  Each is a per-character map, so one pass composes them: every output of
 * a stage goes through the later stages. */
static int fix_chars(const mc_ftfy *f, const uint32_t *t, size_t n, mc_u32buf *out, mc_err *e) {
    out->n = 0;
    if (mc_u32buf_reserve(out, n, e)) return e ? e->code : MC_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = t[i];
        if (c >= 0x80 && c <= 0x9F) c = mc_ft_enc_high[1][c - 0x80]; /* latin-1 -> sloppy-windows-1252 */
        uint32_t lig[3] = {c, 0, 0};
        int nlig = 1; /* counted: U+0000 is a character here, not a terminator */
        const uint32_t *l;
        if (c >= 0x132 && c <= 0xFB06 && lig_lookup(c, &l)) {
            memcpy(lig, l, sizeof lig);
            nlig = lig[2] ? 3 : lig[1] ? 2 : 1;
        }
        for (int a = 0; a < nlig; a++) {
            uint32_t w[3];
            int nw = width_map(f, lig[a], w);
            for (int b = 0; b < nw; b++)
                if (mc_u32buf_push(out, uncurl(w[b]), e)) return e ? e->code : MC_E_NOMEM;
        }
    }
    return 0;
}

/* fix_line_breaks, remove_terminal_escapes, remove_control_chars (in this order). */
static int fix_lines_controls(const uint32_t *t, size_t n, mc_u32buf *out, mc_u32buf *tmp, mc_err *e) {
    tmp->n = 0;
    if (mc_u32buf_reserve(tmp, n, e)) return e ? e->code : MC_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = t[i];
        if (c == '\r' && i + 1 < n && t[i + 1] == '\n') { tmp->v[tmp->n++] = '\n'; i++; continue; }
        if (c == '\r' || c == 0x2028 || c == 0x2029 || c == 0x85) c = '\n';
        tmp->v[tmp->n++] = c;
    }
    out->n = 0;
    if (mc_u32buf_reserve(out, tmp->n, e)) return e ? e->code : MC_E_NOMEM;
    const uint32_t *s = tmp->v;
    size_t m = tmp->n;
    for (size_t i = 0; i < m; i++) {
        uint32_t c = s[i];
        if (c == 0x1B && i + 1 < m && s[i + 1] == '[') { /* ANSI_RE = \033\[((?:\d|;)*)([a-zA-Z]) */
            size_t k = i + 2;
            while (k < m && (s[k] == ';' || mc_uc_py_isdecimal(s[k]))) k++;
            if (k < m && azAZ(s[k])) { i = k; continue; }
        }
        if (c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
            c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC))
            continue;
        out->v[out->n++] = c;
    }
    return 0;
}

/* fix_and_explain: the loop of fixers for one segment. */
static int fix_segment(ft_run *r, mc_u32buf *text, int unescape) {
    mc_err *e = r->e;
    mc_u32buf orig = {0}, a = {0}, b = {0};
    int rc = 0;
    for (;;) {
        if ((rc = ft_charge(r, text->n))) break;
        orig.n = 0;
        if ((rc = mc_u32buf_append(&orig, text->v, text->n, e))) break;
        if (unescape) {
            if ((rc = unescape_html(text->v, text->n, &a, e))) break;
            mc_u32buf_swap(text, &a);
        }
        if ((rc = fix_encoding(r, text)) < 0) break;
        if ((rc = fix_chars(r->f, text->v, text->n, &a, e))) break;
        if ((rc = fix_lines_controls(a.v, a.n, text, &b, e))) break;
        if ((rc = mc_uc_normalize(text->v, text->n, 0, &a, e))) break;
        mc_u32buf_swap(text, &a);
        if (same(text->v, text->n, orig.v, orig.n)) break;
    }
    mc_u32buf_free(&orig);
    mc_u32buf_free(&a);
    mc_u32buf_free(&b);
    return rc < 0 ? rc : 0;
}

int mc_ftfy_fix_text(const mc_ftfy *f, const uint32_t *in, size_t n, mc_u32buf *out, mc_err *e) {
    mc_err local;
    if (!e) e = &local;
    ft_run r = {f, e, 24 * n + ((size_t)1 << 20), 0};
    out->n = 0;
    int unescape = 1, rc = 0;
    mc_u32buf seg = {0};
    for (size_t pos = 0; pos < n;) {
        size_t lim = n - pos > MAX_SEGMENT ? pos + MAX_SEGMENT : n, end = pos;
        while (end < lim && in[end] != '\n') end++;
        end = end < lim ? end + 1 : lim; /* through the '\n', at most MAX_SEGMENT */
        for (size_t i = pos; i < end && unescape; i++)
            if (in[i] == '<') unescape = 0;
        seg.n = 0;
        if ((rc = mc_u32buf_append(&seg, in + pos, end - pos, e))) break;
        if ((rc = fix_segment(&r, &seg, unescape))) break;
        if ((rc = mc_u32buf_append(out, seg.v, seg.n, e))) break;
        pos = end;
    }
    mc_u32buf_free(&seg);
    return rc;
}

/* ---------------- setup ---------------- */

mc_ftfy *mc_ftfy_new(mc_err *e) {
    mc_err local;
    if (!e) e = &local;
    mc_ftfy *f = calloc(1, sizeof *f);
    if (!f) { mc_fail(e, MC_E_NOMEM, "out of memory for ftfy tables"); return NULL; }
    for (int k = 0; k < MC_FT_NENC; k++) {
        int m = 0;
        for (int b = 0; b < 128; b++) {
            f->enc[k][m].cp = mc_ft_enc_high[k][b];
            f->enc[k][m].byte = (uint8_t)(0x80 + b);
            m++;
        }
        if (mc_ft_enc_sloppy[k]) { f->enc[k][m].cp = 0xFFFD; f->enc[k][m].byte = 0x1A; m++; }
        for (int i = 1; i < m; i++) { /* insertion sort by code point */
            uint32_t cp = f->enc[k][i].cp;
            uint8_t by = f->enc[k][i].byte;
            int j = i;
            while (j > 0 && f->enc[k][j - 1].cp > cp) { f->enc[k][j] = f->enc[k][j - 1]; j--; }
            f->enc[k][j].cp = cp;
            f->enc[k][j].byte = by;
        }
        f->nenc[k] = m;
    }
    mc_u32buf nf = {0};
    for (uint32_t c = WIDTH_LO; c <= WIDTH_HI; c++) {
        if (mc_uc_normalize(&c, 1, 1, &nf, e)) { mc_u32buf_free(&nf); free(f); return NULL; }
        if (!(nf.n == 1 && nf.v[0] == c) && nf.n <= 3) {
            memcpy(f->width[c - WIDTH_LO], nf.v, nf.n * sizeof *nf.v);
            f->width_len[c - WIDTH_LO] = (uint8_t)nf.n;
        }
    }
    mc_u32buf_free(&nf);
    return f;
}

void mc_ftfy_free(mc_ftfy *f) { free(f); }
