/* unicode.h - the Unicode character properties the CLIP tokenizer needs.
 *
 * Tables are generated at build time by tools/ucdgen/mc_ucdgen.c from Debian's
 * `unicode-data` package (Unicode 15.0.0); see the comment there for why this and
 * not a library.  Two views of the data are kept apart on purpose:
 *
 *   mc_uc_py_*   Python 3.11's str methods and `re` module (ftfy, html.unescape,
 *                str.split/strip/lower).  Python 3.11 ships Unicode 14.0.0, so code
 *                points first assigned in 15.0 behave as unassigned here.
 *   mc_uc_re_*   the `regex` module used by open_clip's pre-tokenizer pattern
 *                (Unicode 15.0 since regex 2022.9).
 *
 * Checked for all 1,112,064 code points (ad hoc) against Python 3.11.7 (category,
 * isspace, \w, \d, combining class, lower(), upper(), NFC and NFKC) and regex
 * 2022.10.31 (\p{L}, \p{N}, \s, the IGNORECASE negated set): identical.  Newer
 * regex releases (Unicode 15.1+) would differ only on code points unassigned in
 * 15.0 (e.g. CJK Extension I), for which nobody can know the golden generator's
 * version; we follow 15.0.
 *
 * Text is handled as arrays of code points (mc_u32buf) between the UTF-8 edges.
 */
#ifndef MC_TEXT_UNICODE_H
#define MC_TEXT_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* General categories (order fixed by the generator). */
enum {
    MC_GC_LU, MC_GC_LL, MC_GC_LT, MC_GC_LM, MC_GC_LO, MC_GC_MN, MC_GC_MC, MC_GC_ME,
    MC_GC_ND, MC_GC_NL, MC_GC_NO, MC_GC_PC, MC_GC_PD, MC_GC_PS, MC_GC_PE, MC_GC_PI,
    MC_GC_PF, MC_GC_PO, MC_GC_SM, MC_GC_SC, MC_GC_SK, MC_GC_SO, MC_GC_ZS, MC_GC_ZL,
    MC_GC_ZP, MC_GC_CC, MC_GC_CF, MC_GC_CS, MC_GC_CO, MC_GC_CN
};

/* Property flags (same values as the generator's F_*). */
enum {
    MC_UF_NEW15 = 1 << 0, MC_UF_PYSPACE = 1 << 1, MC_UF_WSPACE = 1 << 2, MC_UF_PYALNUM = 1 << 3,
    MC_UF_PYDECIMAL = 1 << 4, MC_UF_CASED = 1 << 5, MC_UF_CASEIGN = 1 << 6, MC_UF_CI_LNS = 1 << 7,
    MC_UF_COMPAT = 1 << 8, MC_UF_LOWER_SEQ = 1 << 9, MC_UF_UPPER_SEQ = 1 << 10,
};

typedef struct mc_ucd_record {
    uint8_t gc;       /* general category, Unicode 15.0 (regex view) */
    uint8_t ccc;      /* canonical combining class, Python view */
    uint16_t flags;   /* MC_UF_* */
    int32_t lower;    /* full lower case: delta, or (len << 24 | seq index) with LOWER_SEQ */
    int32_t upper;    /* full upper case, same encoding */
    int32_t fold;     /* simple case folding delta (CaseFolding C+S+T) */
    uint32_t decomp;  /* one-level decomposition (len << 24 | seq index), 0 = none */
} mc_ucd_record;

const mc_ucd_record *mc_uc_rec(uint32_t cp);

static inline int mc_uc_flag(uint32_t cp, unsigned f) { return (mc_uc_rec(cp)->flags & f) != 0; }

/* --- regex-module view (Unicode 15.0) --- */
static inline int mc_uc_re_gc(uint32_t cp) { return mc_uc_rec(cp)->gc; }
static inline int mc_uc_re_is_letter(uint32_t cp) { return mc_uc_re_gc(cp) <= MC_GC_LO; }
static inline int mc_uc_re_is_number(uint32_t cp) {
    int g = mc_uc_re_gc(cp);
    return g >= MC_GC_ND && g <= MC_GC_NO;
}
static inline int mc_uc_re_is_space(uint32_t cp) { return mc_uc_flag(cp, MC_UF_WSPACE); }
/* Simple case folding (what regex's IGNORECASE compares for literals). */
static inline uint32_t mc_uc_re_fold(uint32_t cp) { return (uint32_t)((int32_t)cp + mc_uc_rec(cp)->fold); }

/* --- Python 3.11 view (Unicode 14.0) --- */
static inline int mc_uc_py_gc(uint32_t cp) {
    const mc_ucd_record *r = mc_uc_rec(cp);
    return (r->flags & MC_UF_NEW15) ? MC_GC_CN : r->gc;
}
static inline int mc_uc_py_isspace(uint32_t cp) { return mc_uc_flag(cp, MC_UF_PYSPACE); }
static inline int mc_uc_py_isword(uint32_t cp) { return cp == '_' || mc_uc_flag(cp, MC_UF_PYALNUM); }
static inline int mc_uc_py_isdecimal(uint32_t cp) { return mc_uc_flag(cp, MC_UF_PYDECIMAL); }
static inline int mc_uc_py_ccc(uint32_t cp) { return mc_uc_rec(cp)->ccc; }

/* Full case mappings as Python's str.lower()/str.upper() apply them per code point
 * (SpecialCasing unconditional entries, else UnicodeData simple mapping).  Writes up
 * to 3 code points to out, returns the count.  Final sigma is the caller's job. */
int mc_uc_py_lower(uint32_t cp, uint32_t out[3]);
int mc_uc_py_upper(uint32_t cp, uint32_t out[3]);

/* --- growable code point buffer --- */
typedef struct mc_u32buf {
    uint32_t *v;
    size_t n, cap;
} mc_u32buf;

int mc_u32buf_reserve(mc_u32buf *b, size_t need, mc_err *e); /* capacity >= need */
static inline int mc_u32buf_push(mc_u32buf *b, uint32_t c, mc_err *e) {
    if (b->n == b->cap && mc_u32buf_reserve(b, b->n + 1, e)) return e ? e->code : MC_E_NOMEM;
    b->v[b->n++] = c;
    return 0;
}
int mc_u32buf_append(mc_u32buf *b, const uint32_t *src, size_t n, mc_err *e);
void mc_u32buf_free(mc_u32buf *b);
static inline void mc_u32buf_swap(mc_u32buf *a, mc_u32buf *b) { mc_u32buf t = *a; *a = *b; *b = t; }

/* Strict UTF-8 -> code points (no overlongs, surrogates or > U+10FFFF).  Appends to out.
 * On invalid input returns MC_E_ARG with the byte offset in the reason. */
int mc_utf8_decode(const char *s, size_t len, mc_u32buf *out, mc_err *e);
/* Code point -> UTF-8 bytes (1..4), returns the count. cp must be a scalar value. */
int mc_utf8_put(uint32_t cp, unsigned char out[4]);

/* Unicode normalization NFC (compat = 0) or NFKC (compat = 1) with Python 3.11's data:
 * out receives the normalized form of in[0..n) (out must not alias in). */
int mc_uc_normalize(const uint32_t *in, size_t n, int compat, mc_u32buf *out, mc_err *e);

#endif
