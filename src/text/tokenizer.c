/* tokenizer.c - loading the vocabulary and the encode pipeline (see tokenizer.h). */
#include "text/tokenizer.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "io/mapped_file.h"
#include "text/bpe.h"
#include "text/ftfy.h"
#include "text/html.h"
#include "text/unicode.h"

#define MAX_VOCAB_FILE ((size_t)256 << 20) /* the real files are 1-4 MB */

struct mc_tokenizer {
    mc_bpe *bpe;
    mc_ftfy *ftfy;
};

/* ---------------- loading ---------------- */

/* Inflates gzip data (all members). */
static int gunzip(const unsigned char *src, size_t len, char **out, size_t *out_len, const char *what, mc_err *e) {
    size_t cap = len * 4 + 4096, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) return mc_fail(e, MC_E_NOMEM, "%s: out of memory", what);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) { free(buf); return mc_fail(e, MC_E_NOMEM, "%s: zlib init failed", what); }
    size_t pos = 0;
    int rc = 0;
    for (;;) {
        if (n == cap) {
            if (cap >= MAX_VOCAB_FILE) { rc = mc_fail(e, MC_E_FORMAT, "%s: gzip data unpacks to more than %zu bytes", what, MAX_VOCAB_FILE); break; }
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) { rc = mc_fail(e, MC_E_NOMEM, "%s: out of memory", what); break; }
            buf = nb;
        }
        size_t in_chunk = len - pos > UINT_MAX ? UINT_MAX : len - pos;
        size_t out_chunk = cap - n > UINT_MAX ? UINT_MAX : cap - n;
        zs.next_in = (unsigned char *)src + pos;
        zs.avail_in = (unsigned)in_chunk;
        zs.next_out = (unsigned char *)buf + n;
        zs.avail_out = (unsigned)out_chunk;
        int z = inflate(&zs, Z_NO_FLUSH);
        pos += in_chunk - zs.avail_in;
        n += out_chunk - zs.avail_out;
        if (z == Z_STREAM_END) {
            /* another member follows? (gzip.open reads them all) */
            if (pos < len && len - pos >= 2 && src[pos] == 0x1f && src[pos + 1] == 0x8b) {
                inflateReset(&zs);
                continue;
            }
            if (pos < len) rc = mc_fail(e, MC_E_FORMAT, "%s: %zu bytes of garbage after the gzip data", what, len - pos);
            break;
        }
        if (z == Z_OK) {
            if (pos == len && zs.avail_out != 0) { rc = mc_fail(e, MC_E_FORMAT, "%s: gzip data is truncated", what); break; }
            continue;
        }
        if (z == Z_BUF_ERROR && pos == len) { rc = mc_fail(e, MC_E_FORMAT, "%s: gzip data is truncated", what); break; }
        rc = mc_fail(e, MC_E_FORMAT, "%s: corrupt gzip data (zlib: %s)", what, zs.msg ? zs.msg : "error");
        break;
    }
    inflateEnd(&zs);
    if (rc) { free(buf); return rc; }
    buf[n] = 0;
    *out = buf;
    *out_len = n;
    return 0;
}

static mc_tokenizer *tokenizer_new(const char *merges, size_t len, const char *what, mc_err *e) {
    mc_tokenizer *t = calloc(1, sizeof *t);
    if (!t) { mc_fail(e, MC_E_NOMEM, "%s: out of memory", what); return NULL; }
    t->bpe = mc_bpe_load(merges, len, what, e);
    if (t->bpe) t->ftfy = mc_ftfy_new(e);
    if (!t->bpe || !t->ftfy) { mc_tokenizer_free(t); return NULL; }
    return t;
}

static mc_tokenizer *load_merges_data(const unsigned char *buf, size_t len, const char *what, mc_err *e) {
    if (len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b) {
        char *text;
        size_t tl;
        if (gunzip(buf, len, &text, &tl, what, e)) return NULL;
        mc_tokenizer *t = tokenizer_new(text, tl, what, e);
        free(text);
        return t;
    }
    return tokenizer_new((const char *)buf, len, what, e);
}

mc_tokenizer *mc_tokenizer_load_buffer(const void *buf, size_t len, mc_err *e) {
    mc_err local;
    if (!e) e = &local;
    if (!buf || !len) { mc_fail(e, MC_E_ARG, "tokenizer buffer is empty"); return NULL; }
    return load_merges_data(buf, len, "tokenizer buffer", e);
}

/* generated from data/bpe_simple_vocab_16e6.txt.gz by tools/bin2c (CMakeLists.txt) */
extern const unsigned char mc_builtin_vocab_gz[];
extern const size_t mc_builtin_vocab_gz_size;

const unsigned char *mc_tokenizer_builtin_vocab(size_t *len) {
    if (len) *len = mc_builtin_vocab_gz_size;
    return mc_builtin_vocab_gz;
}

mc_tokenizer *mc_tokenizer_load_builtin(mc_err *e) {
    mc_err local;
    if (!e) e = &local;
    return load_merges_data(mc_builtin_vocab_gz, mc_builtin_vocab_gz_size, "built-in vocabulary", e);
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}
static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

mc_tokenizer *mc_tokenizer_load(const char *path, mc_err *e) {
    mc_err local;
    if (!e) e = &local;
    if (!path || !*path) { mc_fail(e, MC_E_ARG, "tokenizer: no vocabulary path given"); return NULL; }
    char merges[4096], vocab[4096];
    merges[0] = vocab[0] = 0;
    size_t pl = strlen(path);
    if (pl + 40 > sizeof merges) { mc_fail(e, MC_E_ARG, "tokenizer: path too long"); return NULL; }
    if (is_dir(path)) {
        const char *cands[] = {"merges.txt", "bpe_simple_vocab_16e6.txt.gz", "bpe_simple_vocab_16e6.txt"};
        for (int i = 0; i < 3 && !merges[0]; i++) {
            snprintf(merges, sizeof merges, "%s/%s", path, cands[i]);
            if (!is_file(merges)) merges[0] = 0;
        }
        if (!merges[0]) {
            mc_fail(e, MC_E_IO, "%s: directory holds no merges.txt or bpe_simple_vocab_16e6.txt.gz", path);
            return NULL;
        }
    } else {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (!strcmp(base, "vocab.json")) {
            snprintf(merges, sizeof merges, "%.*smerges.txt", (int)(base - path), path);
            snprintf(vocab, sizeof vocab, "%s", path);
            if (!is_file(merges)) {
                mc_fail(e, MC_E_IO, "%s: vocab.json needs merges.txt next to it (%s not found)", path, merges);
                return NULL;
            }
        } else {
            snprintf(merges, sizeof merges, "%s", path);
        }
    }
    /* A hub merges.txt is checked against its vocab.json when one is next to it. */
    if (!vocab[0]) {
        const char *base = strrchr(merges, '/');
        base = base ? base + 1 : merges;
        if (!strcmp(base, "merges.txt")) {
            snprintf(vocab, sizeof vocab, "%.*svocab.json", (int)(base - merges), merges);
            if (!is_file(vocab)) vocab[0] = 0;
        }
    }
    char *data;
    size_t len;
    if (mc_read_file(merges, MAX_VOCAB_FILE, &data, &len, e)) return NULL;
    mc_tokenizer *t = load_merges_data((const unsigned char *)data, len, merges, e);
    free(data);
    if (t && vocab[0]) {
        if (mc_read_file(vocab, MAX_VOCAB_FILE, &data, &len, e)) { mc_tokenizer_free(t); return NULL; }
        int rc = mc_bpe_check_vocab_json(t->bpe, data, len, vocab, e);
        free(data);
        if (rc) { mc_tokenizer_free(t); return NULL; }
    }
    return t;
}

void mc_tokenizer_free(mc_tokenizer *t) {
    if (!t) return;
    mc_bpe_free(t->bpe);
    mc_ftfy_free(t->ftfy);
    free(t);
}

/* ---------------- cleaning ---------------- */

/* Python's str.lower() on the whole string, with the Final_Sigma rule of
 * CPython's handle_capital_sigma. */
static int py_lower(const uint32_t *s, size_t n, mc_u32buf *out, mc_err *e) {
    out->n = 0;
    if (mc_u32buf_reserve(out, n, e)) return e->code;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = s[i], m[3];
        int k;
        if (c == 0x3A3) {
            size_t j = i;
            while (j > 0 && mc_uc_flag(s[j - 1], MC_UF_CASEIGN)) j--;
            int final = j > 0 && mc_uc_flag(s[j - 1], MC_UF_CASED);
            if (final && i + 1 < n) {
                j = i + 1;
                while (j < n && mc_uc_flag(s[j], MC_UF_CASEIGN)) j++;
                final = j == n || !mc_uc_flag(s[j], MC_UF_CASED);
            }
            m[0] = final ? 0x3C2 : 0x3C3;
            k = 1;
        } else {
            k = mc_uc_py_lower(c, m);
        }
        if (mc_u32buf_append(out, m, (size_t)k, e)) return e->code;
    }
    return 0;
}

/* ftfy.fix_text -> html.unescape x2 -> strip -> " ".join(split()) -> lower, into out. */
static int clean_text(const mc_tokenizer *t, const char *utf8, size_t len, mc_u32buf *out, mc_err *e) {
    /* NUL bytes are text like any other (a golden case holds one): ftfy's
     * remove_control_chars deletes U+0000, as in Python. */
    mc_u32buf a = {0}, b = {0};
    int rc;
    if ((rc = mc_utf8_decode(utf8, len, &a, e))) goto done;
    if ((rc = mc_ftfy_fix_text(t->ftfy, a.v, a.n, &b, e))) goto done;
    a.n = 0;
    if ((rc = mc_html_unescape(b.v, b.n, &a, e))) goto done;
    b.n = 0;
    if ((rc = mc_html_unescape(a.v, a.n, &b, e))) goto done;
    /* strip + collapse: words separated by runs of Python white space */
    a.n = 0;
    for (size_t i = 0; i < b.n;) {
        while (i < b.n && mc_uc_py_isspace(b.v[i])) i++;
        if (i == b.n) break;
        if (a.n && (rc = mc_u32buf_push(&a, ' ', e))) goto done;
        while (i < b.n && !mc_uc_py_isspace(b.v[i]))
            if ((rc = mc_u32buf_push(&a, b.v[i++], e))) goto done;
    }
    rc = py_lower(a.v, a.n, out, e);
done:
    mc_u32buf_free(&a);
    mc_u32buf_free(&b);
    return rc;
}

int mc_tokenizer_clean(const mc_tokenizer *t, const char *utf8, size_t len, char **out, size_t *out_len, mc_err *e) {
    mc_err local;
    if (!e) e = &local;
    if (!t || (!utf8 && len) || !out) return mc_fail(e, MC_E_ARG, "mc_tokenizer_clean: bad arguments");
    mc_u32buf c = {0};
    int rc = clean_text(t, utf8 ? utf8 : "", len, &c, e);
    if (rc) { mc_u32buf_free(&c); return rc; }
    char *s = malloc(c.n * 4 + 1);
    if (!s) { mc_u32buf_free(&c); return mc_fail(e, MC_E_NOMEM, "out of memory"); }
    size_t o = 0;
    for (size_t i = 0; i < c.n; i++) o += (size_t)mc_utf8_put(c.v[i], (unsigned char *)s + o);
    s[o] = 0;
    mc_u32buf_free(&c);
    *out = s;
    if (out_len) *out_len = o;
    return 0;
}

/* ---------------- pre-tokenizer ---------------- */

/* Literal match under regex IGNORECASE (simple case folding). */
static size_t match_literal_ci(const uint32_t *s, size_t n, size_t i, const char *lit) {
    size_t k = 0;
    for (; lit[k]; k++) {
        if (i + k >= n) return 0;
        uint32_t c = s[i + k], l = (unsigned char)lit[k];
        if (c != l && mc_uc_re_fold(c) != mc_uc_re_fold(l)) return 0;
    }
    return k;
}

/* Length of the pattern's match at i (0 = the character is skipped by findall). */
static size_t piece_at(const uint32_t *s, size_t n, size_t i) {
    static const char *const lits[] = {"<start_of_text>", "<end_of_text>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    uint32_t c = s[i];
    if (c == '<' || c == '\'') {
        for (size_t k = 0; k < sizeof lits / sizeof lits[0]; k++) {
            size_t m = match_literal_ci(s, n, i, lits[k]);
            if (m) return m;
        }
    }
    if (mc_uc_re_is_letter(c)) { /* [\p{L}]+ */
        size_t j = i + 1;
        while (j < n && mc_uc_re_is_letter(s[j])) j++;
        return j - i;
    }
    if (mc_uc_re_is_number(c)) return 1; /* [\p{N}] */
    /* [^\s\p{L}\p{N}]+ with IGNORECASE: no case variant of the character may be
     * white space, a letter or a number (U+0345 folds to iota: it matches nothing). */
    size_t j = i;
    while (j < n && !mc_uc_flag(s[j], MC_UF_CI_LNS)) j++;
    return j - i;
}

static int is_special(const uint32_t *s, size_t n, const char *name) {
    size_t k = strlen(name);
    if (n != k) return 0;
    for (size_t i = 0; i < k; i++)
        if (s[i] != (unsigned char)name[i]) return 0;
    return 1;
}

int mc_tokenizer_encode_ctx(const mc_tokenizer *t, const char *utf8, size_t len, int32_t *ids, int context,
                            mc_err *e) {
    mc_err local;
    if (!e) e = &local;
    if (!t || !ids || (!utf8 && len)) return mc_fail(e, MC_E_ARG, "mc_tokenizer_encode: bad arguments");
    if (context < 2) return mc_fail(e, MC_E_ARG, "mc_tokenizer_encode: context length %d < 2", context);
    for (int i = 0; i < context; i++) ids[i] = 0;
    mc_u32buf text = {0};
    uint8_t *bytes = NULL;
    int rc = clean_text(t, utf8 ? utf8 : "", len, &text, e);
    if (rc) goto done;

    size_t want = (size_t)context - 2, have = 0; /* content ids that can appear */
    size_t bcap = 0;
    for (size_t i = 0; i < text.n && have < want;) {
        size_t m = piece_at(text.v, text.n, i);
        if (!m) { i++; continue; }
        const uint32_t *p = text.v + i;
        i += m;
        if (is_special(p, m, "<start_of_text>")) { ids[1 + have++] = MC_TOKEN_SOT; continue; }
        if (is_special(p, m, "<end_of_text>")) { ids[1 + have++] = MC_TOKEN_EOT; continue; }
        if (m * 4 > bcap) {
            bcap = m * 4 + 64;
            uint8_t *nb = realloc(bytes, bcap);
            if (!nb) { rc = mc_fail(e, MC_E_NOMEM, "out of memory for a %zu-character word", m); goto done; }
            bytes = nb;
        }
        size_t nb = 0;
        for (size_t k = 0; k < m; k++) nb += (size_t)mc_utf8_put(p[k], bytes + nb);
        long got = mc_bpe_encode(t->bpe, bytes, nb, ids + 1 + have, want - have, e);
        if (got < 0) { rc = (int)got; goto done; }
        have += (size_t)got < want - have ? (size_t)got : want - have;
    }
    ids[0] = MC_TOKEN_SOT;
    ids[1 + have] = MC_TOKEN_EOT;
    rc = (int)have + 2;
done:
    if (rc < 0)
        for (int i = 0; i < context; i++) ids[i] = 0;
    mc_u32buf_free(&text);
    free(bytes);
    return rc;
}

int mc_tokenizer_encode(const mc_tokenizer *t, const char *utf8, size_t len, int32_t ids[MC_TOKENIZER_CONTEXT],
                        mc_err *e) {
    return mc_tokenizer_encode_ctx(t, utf8, len, ids, MC_TOKENIZER_CONTEXT, e);
}

int mc_tokenizer_decode(const mc_tokenizer *t, const int32_t *ids, int n, char **out, mc_err *e) {
    return mc_bpe_decode(t->bpe, ids, n, out, NULL, e);
}
