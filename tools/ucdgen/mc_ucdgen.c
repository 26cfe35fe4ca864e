/* mc_ucdgen.c - build-time generator of the Unicode tables used by src/text/.
 *
 * Usage: mc_ucdgen <ucd-dir> <out.h>
 *   <ucd-dir> is Debian's unicode-data package (/usr/share/unicode, Unicode 15.0.0).
 *
 * Why generate instead of linking a Unicode library: the tokenizer must reproduce
 * Python 3.11's str methods (full lower case with SpecialCasing and Final_Sigma,
 * isspace from the bidi class, \w, NFC) *and* the `regex` module's view of \p{L},
 * \p{N}, \s and case-insensitive sets.  No Debian library exposes all of that
 * (utf8proc has only simple case mappings, no Cased/Case_Ignorable, no bidi-based
 * isspace, and no way to ask for an older Unicode version), and Python's side is
 * Unicode 14.0 while the data we can install is 15.0.  From the raw UCD files we can
 * mark every code point first assigned in 15.0 (DerivedAge.txt) and give it the
 * properties of an unassigned code point on the Python side, while the regex side
 * (regex >= 2022.9, Unicode 15.0) keeps its 15.0 category.
 *
 * Output: a header of static const tables (see the struct in src/text/unicode.c):
 *   mc_ucd_records[]      distinct property records
 *   mc_ucd_stage1/2[]     two-stage lookup: stage2[stage1[cp >> 7] * 128 + (cp & 127)]
 *   mc_ucd_seq[]          multi-code-point sequences (decompositions, SpecialCasing)
 *   mc_ucd_comp[]         canonical composition pairs (first, second, composite), sorted
 * No Python, no network: plain C reading text files.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NCP 0x110000

/* Flags; keep in sync with src/text/unicode.h (MC_UF_*). */
enum {
    F_NEW15 = 1 << 0,     /* first assigned in Unicode 15.0: unassigned for Python 3.11 */
    F_PYSPACE = 1 << 1,   /* Python str.isspace (bidi WS/B/S or Zs) */
    F_WSPACE = 1 << 2,    /* White_Space (regex \s) */
    F_PYALNUM = 1 << 3,   /* Python str.isalnum (sre \w without '_') */
    F_PYDECIMAL = 1 << 4, /* Python str.isdecimal (sre \d) */
    F_CASED = 1 << 5,     /* Cased (DerivedCoreProperties), Python view */
    F_CASEIGN = 1 << 6,   /* Case_Ignorable, Python view */
    F_CI_LNS = 1 << 7,    /* regex IGNORECASE: some case variant is L, N or White_Space */
    F_COMPAT = 1 << 8,    /* decomposition is a compatibility one */
    F_LOWER_SEQ = 1 << 9, /* lower = (len << 24) | index into seq, else delta */
    F_UPPER_SEQ = 1 << 10,
};

/* General categories, in the order of the enum in src/text/unicode.h. */
static const char *GC_NAMES[] = {"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl",
                                 "No", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc",
                                 "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn"};
enum { GC_CN = 29, GC_ZS = 22 };

typedef struct {
    uint8_t gc, ccc;
    uint16_t flags;
    int32_t lower, upper, fold;
    uint32_t decomp; /* (len << 24) | seq index, 0 = none */
} rec;

static uint8_t *gc, *ccc, *bidi_space, *has_numeric, *has_decimal;
static uint8_t *wspace, *cased, *caseign, *new15, *excluded;
static int32_t *slower, *supper, *sfold; /* simple mappings as absolute code points */
static uint32_t **dec; static uint8_t *dec_len, *dec_compat;
static uint32_t **lower_full, **upper_full; static uint8_t *lower_full_len, *upper_full_len;

static uint32_t *seq; static size_t nseq = 1, capseq = 0;

static void die(const char *m, const char *f) {
    fprintf(stderr, "mc_ucdgen: %s%s%s\n", m, f ? ": " : "", f ? f : "");
    exit(1);
}
static void *xcalloc(size_t n, size_t s) {
    void *p = calloc(n, s);
    if (!p) die("out of memory", NULL);
    return p;
}
static FILE *open_ucd(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) die("cannot open (install the Debian package unicode-data)", path);
    return f;
}
/* Splits a UCD line (comment removed) at ';' into trimmed fields; returns count. */
static int fields(char *line, char **fld, int maxf) {
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    int n = 0;
    char *p = line;
    for (;;) {
        char *semi = strchr(p, ';');
        if (semi) *semi = 0;
        while (*p && isspace((unsigned char)*p)) p++;
        char *end = p + strlen(p);
        while (end > p && isspace((unsigned char)end[-1])) *--end = 0;
        if (n < maxf) fld[n++] = p;
        if (!semi) break;
        p = semi + 1;
    }
    return n;
}
static int parse_cps(const char *s, uint32_t *out, int max) {
    int n = 0;
    while (*s) {
        while (*s == ' ') s++;
        if (!*s) break;
        char *end;
        unsigned long v = strtoul(s, &end, 16);
        if (end == s) die("bad code point list", s);
        if (n < max) out[n++] = (uint32_t)v;
        s = end;
    }
    return n;
}
/* "XXXX" or "XXXX..YYYY" */
static void parse_range(const char *s, uint32_t *lo, uint32_t *hi) {
    char *end;
    *lo = (uint32_t)strtoul(s, &end, 16);
    *hi = *lo;
    if (end[0] == '.' && end[1] == '.') *hi = (uint32_t)strtoul(end + 2, NULL, 16);
    if (*hi >= NCP || *lo > *hi) die("bad range", s);
}
static uint32_t seq_add(const uint32_t *cps, int n) {
    if (nseq + (size_t)n > capseq) {
        capseq = (capseq + (size_t)n) * 2 + 1024;
        seq = realloc(seq, capseq * sizeof *seq);
        if (!seq) die("out of memory", NULL);
    }
    uint32_t idx = (uint32_t)nseq;
    memcpy(seq + nseq, cps, (size_t)n * sizeof *cps);
    nseq += (size_t)n;
    return ((uint32_t)n << 24) | idx;
}

static void read_unicodedata(const char *dir) {
    FILE *f = open_ucd(dir, "UnicodeData.txt");
    char line[1024];
    uint32_t range_first = 0;
    int in_range = 0;
    while (fgets(line, sizeof line, f)) {
        char *fld[16];
        int n = fields(line, fld, 16);
        if (n < 15) continue;
        uint32_t cp = (uint32_t)strtoul(fld[0], NULL, 16);
        if (cp >= NCP) die("code point out of range", fld[0]);
        int g = -1;
        for (int i = 0; i < 30; i++)
            if (!strcmp(fld[2], GC_NAMES[i])) g = i;
        if (g < 0) die("unknown general category", fld[2]);
        int bspace = !strcmp(fld[4], "WS") || !strcmp(fld[4], "B") || !strcmp(fld[4], "S");
        uint32_t lo = cp, hi = cp;
        size_t nl = strlen(fld[1]);
        if (nl > 8 && !strcmp(fld[1] + nl - 8, ", First>")) { range_first = cp; in_range = 1; continue; }
        if (nl > 7 && !strcmp(fld[1] + nl - 7, ", Last>")) {
            if (!in_range) die("Last without First", fld[0]);
            lo = range_first; in_range = 0;
        }
        for (uint32_t c = lo; c <= hi; c++) {
            gc[c] = (uint8_t)g;
            ccc[c] = (uint8_t)atoi(fld[3]);
            bidi_space[c] = (uint8_t)bspace;
            has_decimal[c] = fld[6][0] != 0;
            has_numeric[c] = fld[8][0] != 0;
            if (fld[12][0]) supper[c] = (int32_t)strtoul(fld[12], NULL, 16);
            if (fld[13][0]) slower[c] = (int32_t)strtoul(fld[13], NULL, 16);
        }
        if (fld[5][0]) {
            const char *d = fld[5];
            if (d[0] == '<') { dec_compat[cp] = 1; d = strchr(d, '>'); if (!d) die("bad decomposition", fld[5]); d++; }
            uint32_t tmp[32];
            int k = parse_cps(d, tmp, 32);
            dec[cp] = xcalloc((size_t)k, sizeof(uint32_t));
            memcpy(dec[cp], tmp, (size_t)k * sizeof(uint32_t));
            dec_len[cp] = (uint8_t)k;
        }
    }
    fclose(f);
}

static void read_binary_prop(const char *dir, const char *file, const char *prop, uint8_t *out) {
    FILE *f = open_ucd(dir, file);
    char line[1024];
    int seen = 0;
    while (fgets(line, sizeof line, f)) {
        char *fld[4];
        if (fields(line, fld, 4) < 2 || !fld[0][0]) continue;
        if (strcmp(fld[1], prop)) continue;
        uint32_t lo, hi;
        parse_range(fld[0], &lo, &hi);
        for (uint32_t c = lo; c <= hi; c++) out[c] = 1;
        seen = 1;
    }
    fclose(f);
    if (!seen) die("property not found", prop);
}

static void read_age(const char *dir) {
    FILE *f = open_ucd(dir, "DerivedAge.txt");
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char *fld[4];
        if (fields(line, fld, 4) < 2 || !fld[0][0]) continue;
        /* Everything newer than Python 3.11's Unicode 14.0. */
        double age = atof(fld[1]);
        if (age <= 14.0) continue;
        uint32_t lo, hi;
        parse_range(fld[0], &lo, &hi);
        for (uint32_t c = lo; c <= hi; c++) new15[c] = 1;
    }
    fclose(f);
}

static void read_special_casing(const char *dir) {
    FILE *f = open_ucd(dir, "SpecialCasing.txt");
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char *fld[8];
        int n = fields(line, fld, 8);
        if (n < 4 || !fld[0][0]) continue;
        if (n >= 5 && fld[4][0]) continue; /* conditional (Final_Sigma handled in code; languages ignored, as Python) */
        uint32_t cp = (uint32_t)strtoul(fld[0], NULL, 16), tmp[8];
        int k = parse_cps(fld[1], tmp, 8);
        lower_full[cp] = xcalloc((size_t)k, 4); memcpy(lower_full[cp], tmp, (size_t)k * 4); lower_full_len[cp] = (uint8_t)k;
        k = parse_cps(fld[3], tmp, 8);
        upper_full[cp] = xcalloc((size_t)k, 4); memcpy(upper_full[cp], tmp, (size_t)k * 4); upper_full_len[cp] = (uint8_t)k;
    }
    fclose(f);
}

static void read_case_folding(const char *dir) {
    FILE *f = open_ucd(dir, "CaseFolding.txt");
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char *fld[4];
        if (fields(line, fld, 4) < 3 || !fld[0][0]) continue;
        /* The regex module's case-equivalence classes use statuses C, S and T. */
        if (strcmp(fld[1], "C") && strcmp(fld[1], "S") && strcmp(fld[1], "T")) continue;
        uint32_t cp = (uint32_t)strtoul(fld[0], NULL, 16);
        sfold[cp] = (int32_t)strtoul(fld[2], NULL, 16);
    }
    fclose(f);
}

static void read_exclusions(const char *dir) {
    FILE *f = open_ucd(dir, "CompositionExclusions.txt");
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char *fld[2];
        if (fields(line, fld, 2) < 1 || !fld[0][0]) continue;
        uint32_t lo, hi;
        parse_range(fld[0], &lo, &hi);
        for (uint32_t c = lo; c <= hi; c++) excluded[c] = 1;
    }
    fclose(f);
}

static int is_L(int g) { return g <= 4; }
static int is_N(int g) { return g >= 8 && g <= 10; }

/* Record dedup via open addressing. */
static rec *recs; static size_t nrec = 0, caprec = 0;
static uint32_t *rh; static size_t rhcap = 1 << 16;
static uint32_t rec_hash(const rec *r) {
    const unsigned char *p = (const unsigned char *)r;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < sizeof *r; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}
static uint16_t rec_index(const rec *r) {
    uint32_t h = rec_hash(r) & (uint32_t)(rhcap - 1);
    while (rh[h]) {
        if (!memcmp(&recs[rh[h] - 1], r, sizeof *r)) return (uint16_t)(rh[h] - 1);
        h = (h + 1) & (uint32_t)(rhcap - 1);
    }
    if (nrec >= 60000) die("too many records", NULL);
    if (nrec == caprec) { caprec = caprec * 2 + 256; recs = realloc(recs, caprec * sizeof *recs); if (!recs) die("out of memory", NULL); }
    recs[nrec] = *r;
    rh[h] = (uint32_t)++nrec;
    return (uint16_t)(nrec - 1);
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: mc_ucdgen <ucd-dir> <out.h>\n"); return 2; }
    const char *dir = argv[1];
    gc = xcalloc(NCP, 1); ccc = xcalloc(NCP, 1); bidi_space = xcalloc(NCP, 1);
    has_numeric = xcalloc(NCP, 1); has_decimal = xcalloc(NCP, 1); wspace = xcalloc(NCP, 1);
    cased = xcalloc(NCP, 1); caseign = xcalloc(NCP, 1); new15 = xcalloc(NCP, 1); excluded = xcalloc(NCP, 1);
    slower = xcalloc(NCP, 4); supper = xcalloc(NCP, 4); sfold = xcalloc(NCP, 4);
    dec = xcalloc(NCP, sizeof *dec); dec_len = xcalloc(NCP, 1); dec_compat = xcalloc(NCP, 1);
    lower_full = xcalloc(NCP, sizeof *lower_full); upper_full = xcalloc(NCP, sizeof *upper_full);
    lower_full_len = xcalloc(NCP, 1); upper_full_len = xcalloc(NCP, 1);
    for (uint32_t c = 0; c < NCP; c++) { gc[c] = GC_CN; slower[c] = supper[c] = sfold[c] = (int32_t)c; }

    read_unicodedata(dir);
    read_binary_prop(dir, "PropList.txt", "White_Space", wspace);
    read_binary_prop(dir, "DerivedCoreProperties.txt", "Cased", cased);
    read_binary_prop(dir, "DerivedCoreProperties.txt", "Case_Ignorable", caseign);
    read_age(dir);
    read_special_casing(dir);
    read_case_folding(dir);
    read_exclusions(dir);

    /* regex's case-equivalence classes ("all cases"): code points sharing a simple
     * fold target, plus its hard-coded I/i overrides.  CI_LNS: any member is L/N/space. */
    uint8_t *cls_lns = xcalloc(NCP, 1); /* indexed by fold target */
    for (uint32_t c = 0; c < NCP; c++)
        if (is_L(gc[c]) || is_N(gc[c]) || wspace[c]) cls_lns[sfold[c]] = 1;
    FILE *out = fopen(argv[2], "w");
    if (!out) die("cannot write", argv[2]);
    fprintf(out, "/* Generated by tools/ucdgen/mc_ucdgen.c from %s (Unicode 15.0.0 in Debian 12's\n"
                 " * unicode-data package). Do not edit. */\n", dir);
    fprintf(out, "#define MC_UCD_NCP 0x%X\n\n", NCP);

    rh = xcalloc(rhcap, sizeof *rh);
    uint16_t *cprec = xcalloc(NCP, 2);
    for (uint32_t c = 0; c < NCP; c++) {
        rec r;
        memset(&r, 0, sizeof r);
        int py = !new15[c]; /* Python 3.11 sees this code point as assigned */
        r.gc = gc[c];
        uint16_t fl = 0;
        if (new15[c]) fl |= F_NEW15;
        if (wspace[c]) fl |= F_WSPACE;
        {
            int lns = cls_lns[sfold[c]];
            if (c == 0x49 || c == 0x69 || c == 0x130 || c == 0x131) lns = 1; /* overrides: all letters */
            if (lns) fl |= F_CI_LNS;
        }
        r.fold = sfold[c] - (int32_t)c;
        r.lower = 0; r.upper = 0;
        if (py) {
            r.ccc = ccc[c];
            if (bidi_space[c] || gc[c] == GC_ZS) fl |= F_PYSPACE;
            if (is_L(gc[c]) || has_numeric[c] || has_decimal[c]) fl |= F_PYALNUM;
            if (has_decimal[c]) fl |= F_PYDECIMAL;
            if (cased[c]) fl |= F_CASED;
            if (caseign[c]) fl |= F_CASEIGN;
            if (lower_full[c]) { fl |= F_LOWER_SEQ; r.lower = (int32_t)seq_add(lower_full[c], lower_full_len[c]); }
            else r.lower = slower[c] - (int32_t)c;
            if (upper_full[c]) { fl |= F_UPPER_SEQ; r.upper = (int32_t)seq_add(upper_full[c], upper_full_len[c]); }
            else r.upper = supper[c] - (int32_t)c;
            if (dec[c]) {
                if (dec_compat[c]) fl |= F_COMPAT;
                r.decomp = seq_add(dec[c], dec_len[c]);
            }
        }
        r.flags = fl;
        cprec[c] = rec_index(&r);
    }

    /* Two-stage table with 128-entry blocks. */
    enum { SHIFT = 7, BLK = 1 << SHIFT };
    uint32_t nblk_cp = NCP >> SHIFT;
    uint16_t *stage1 = xcalloc(nblk_cp, 2);
    uint16_t *blocks = xcalloc((size_t)nblk_cp * BLK, 2);
    uint32_t nblocks = 0;
    for (uint32_t b = 0; b < nblk_cp; b++) {
        const uint16_t *blk = cprec + (size_t)b * BLK;
        uint32_t k;
        for (k = 0; k < nblocks; k++)
            if (!memcmp(blocks + (size_t)k * BLK, blk, BLK * 2)) break;
        if (k == nblocks) { memcpy(blocks + (size_t)k * BLK, blk, BLK * 2); nblocks++; }
        stage1[b] = (uint16_t)k;
    }

    fprintf(out, "static const mc_ucd_record mc_ucd_records[%zu] = {\n", nrec);
    for (size_t i = 0; i < nrec; i++) {
        const rec *r = &recs[i];
        fprintf(out, "  {%u, %u, 0x%x, %d, %d, %d, 0x%x},\n", r->gc, r->ccc, r->flags, r->lower, r->upper,
                r->fold, r->decomp);
    }
    fprintf(out, "};\n\nstatic const uint16_t mc_ucd_stage1[%u] = {\n", nblk_cp);
    for (uint32_t b = 0; b < nblk_cp; b++) fprintf(out, "%u,%s", stage1[b], (b % 16 == 15) ? "\n" : "");
    fprintf(out, "};\n\nstatic const uint16_t mc_ucd_stage2[%u] = {\n", nblocks * BLK);
    for (uint32_t i = 0; i < nblocks * BLK; i++) fprintf(out, "%u,%s", blocks[i], (i % 16 == 15) ? "\n" : "");
    fprintf(out, "};\n\nstatic const uint32_t mc_ucd_seq[%zu] = {\n", nseq);
    for (size_t i = 0; i < nseq; i++) fprintf(out, "0x%X,%s", i ? seq[i] : 0, (i % 12 == 11) ? "\n" : "");
    fprintf(out, "};\n\n");

    /* Canonical composition pairs, by Python's makeunicodedata rule: canonical
     * decomposition of length 2, not in CompositionExclusions.txt, first component
     * a starter; all three known to Python 3.11 (Unicode 14). */
    size_t npairs = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass) fprintf(out, "static const uint32_t mc_ucd_comp[%zu][3] = {\n", npairs);
        /* emit sorted by (first, second): collect then sort */
        if (!pass) {
            for (uint32_t c = 0; c < NCP; c++)
                if (dec[c] && !dec_compat[c] && dec_len[c] == 2 && !excluded[c] && !new15[c] &&
                    ccc[dec[c][0]] == 0 && !new15[dec[c][0]] && !new15[dec[c][1]])
                    npairs++;
        } else {
            uint64_t *keys = xcalloc(npairs, 8);
            uint32_t *vals = xcalloc(NCP, 4);
            size_t k = 0;
            for (uint32_t c = 0; c < NCP; c++)
                if (dec[c] && !dec_compat[c] && dec_len[c] == 2 && !excluded[c] && !new15[c] &&
                    ccc[dec[c][0]] == 0 && !new15[dec[c][0]] && !new15[dec[c][1]]) {
                    keys[k++] = ((uint64_t)dec[c][0] << 21 | dec[c][1]) << 21 | c;
                }
            for (size_t i = 1; i < npairs; i++) { /* insertion sort, ~1000 items */
                uint64_t v = keys[i];
                size_t j = i;
                while (j > 0 && keys[j - 1] > v) { keys[j] = keys[j - 1]; j--; }
                keys[j] = v;
            }
            for (size_t i = 0; i < npairs; i++) {
                uint64_t v = keys[i];
                fprintf(out, "  {0x%X, 0x%X, 0x%X},\n", (unsigned)(v >> 42), (unsigned)((v >> 21) & 0x1FFFFF),
                        (unsigned)(v & 0x1FFFFF));
            }
            free(keys); free(vals);
        }
    }
    fprintf(out, "};\n");
    if (fclose(out)) die("write failed", argv[2]);
    fprintf(stderr, "mc_ucdgen: %zu records, %u blocks, %zu seq, %zu composition pairs\n", nrec, nblocks, nseq, npairs);
    return 0;
}
