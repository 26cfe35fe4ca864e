/* The CLIP tokenizer reproduces open_clip's SimpleTokenizer (with ftfy 6.3.1 and
 * Python 3.11) on every case of shared/golden/tokenizer_cases.jsonl, loads the
 * vocabulary in all its forms, and rejects bad input with clear errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "common/test_util.h"
#include "io/json.h"
#include "io/mapped_file.h"
#include "text/ftfy.h"
#include "text/tokenizer.h"
#include "text/unicode.h"


static void print_text(const char *s, size_t n) {
    fputc('"', stderr);
    for (size_t i = 0; i < n && i < 200; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '\\') fprintf(stderr, "\\x%02x", c);
        else fputc(c, stderr);
    }
    fputs(n > 200 ? "...\"" : "\"", stderr);
}

/* Every golden case, exactly. */
static void golden_cases(const mc_tokenizer *tok) {
    char *data;
    size_t len;
    mc_err e = {0};
    const char *path = mc_test_path("golden/tokenizer_cases.jsonl");
    if (mc_read_file(path, 64 << 20, &data, &len, &e)) mc_test_fatal("golden data missing: %s", e.msg);
    int total = 0, passed = 0;
    for (char *line = data; line < data + len;) {
        char *nl = memchr(line, '\n', (size_t)(data + len - line));
        size_t ll = nl ? (size_t)(nl - line) : (size_t)(data + len - line);
        if (ll == 0) { line += 1; continue; }
        mc_json *j = mc_json_parse(line, ll, &e);
        if (!j) mc_test_fatal("%s: line %d: %s", path, total + 1, e.msg);
        const mc_json *cat = mc_json_get(j, "category"), *text = mc_json_get(j, "text"), *toks = mc_json_get(j, "tokens");
        if (!cat || !text || !toks || text->type != MC_JSON_STRING || toks->type != MC_JSON_ARRAY || toks->count != 77)
            mc_test_fatal("%s: line %d: unexpected layout", path, total + 1);
        total++;
        int32_t ids[77];
        int n = mc_tokenizer_encode(tok, text->str, text->len, ids, &e);
        int first_diff = -1;
        if (n < 0) first_diff = 0;
        for (int i = 0; i < 77 && first_diff < 0; i++)
            if (ids[i] != (int32_t)mc_json_at(toks, i)->number) first_diff = i;
        if (first_diff < 0) {
            passed++;
        } else {
            fprintf(stderr, "case %d [%s] ", total, cat->str);
            print_text(text->str, text->len);
            if (n < 0) fprintf(stderr, ": error: %s\n", e.msg);
            else fprintf(stderr, ": first difference at position %d: got %d, expected %d\n", first_diff, ids[first_diff],
                         (int)mc_json_at(toks, first_diff)->number);
        }
        CHECK(first_diff < 0, "golden case %d (%s) differs", total, cat->str);
        mc_json_free(j);
        line += ll + 1;
    }
    free(data);
    printf("golden tokenizer cases: %d/%d match exactly\n", passed, total);
    CHECK(total == 352, "expected 352 golden cases, found %d", total);
}

static int encode_str(const mc_tokenizer *t, const char *s, int32_t ids[77], mc_err *e) {
    return mc_tokenizer_encode(t, s, strlen(s), ids, e);
}

/* ftfy.fix_text on its own: outputs of ftfy 6.3.1 (regressions found by
 * differential fuzzing included). */
static void ftfy_cases(void) {
    static const struct { const char *in; size_t in_len; const char *out; size_t out_len; const char *what; } cases[] = {
        {"\x00\x00\x0a\x00\x00\x0d\x00\x0a\x00", 9, "\x0a\x0a\x0a", 3, "NUL between CR and LF"},
        {"\xc4\x8f\xc5\xbc\xcb\x9d\xc4\x82\xe2\x82\xac\x0a", 12, "\xef\xbf\xbd", 3, "\"C0\n\" at the end in utf-8-variants"},
        {"\xc3\x83\x20\x6c\x61\x20\x6d\x6f\x64\x65", 10, "\xc3\xa0\x20\x6c\x61\x20\x6d\x6f\x64\x65", 10, "restore_byte_a0"},
        {"\xc3\x83\x20\x73\x20\x76\x65\x7a\x65\x73", 10, "\xc3\xa0\x73\x20\x76\x65\x7a\x65\x73", 9, "A_GRAVE_WORD exception"},
        {"\x66\xc3\x83\x20\x63\x69\x6c", 7, "\x66\xc3\xa0\x20\x63\x69\x6c", 7, "A_GRAVE_WORD"},
        {"\xc3\xb0\xc5\xb8\xcb\x9c\xe2\x82\xac", 9, "\xf0\x9f\x98\x80", 4, "4-byte mojibake"},
        {"\xc3\xad\xc2\xa0\xc2\xbd\xc3\xad\xc2\xb8\xc2\x80", 12, "\xf0\x9f\x98\x80", 4, "CESU-8"},
        {"\x50\x26\x45\x41\x43\x55\x54\x45\x3b\x52\x45\x5a\x20\x26\x6c\x74\x3b\x62\x26\x67\x74\x3b", 22, "\x50\xc3\x89\x52\x45\x5a\x20\x3c\x62\x3e", 10, "upper-case entity"},
        {"\x3c\x62\x3e\x26\x61\x6d\x70\x3b\x3c\x2f\x62\x3e\x0a\x26\x61\x6d\x70\x3b", 18, "\x3c\x62\x3e\x26\x61\x6d\x70\x3b\x3c\x2f\x62\x3e\x0a\x26\x61\x6d\x70\x3b", 18, "no unescaping after a '<'"},
        {"\x6c\xe2\x80\x99\x68\x75\x6d\x61\x6e\x69\x74\xc3\x83\xc2\xa9\x0d\x0a\xc3\x8e\xc2\xb1\xc3\x8e\xc2\xb2\xc3\x8e\xc2\xb3", 29, "\x6c\x27\x68\x75\x6d\x61\x6e\x69\x74\xc3\xa9\x0a\xce\xb1\xce\xb2\xce\xb3", 18, "mixed"},
        {"\x1b\x5b\x31\x3b\x33\x31\x6d\x72\x65\x64\x1b\x5b\x30\x6d\x20\xe2\x80\xa8\x78", 19, "\x72\x65\x64\x20\x0a\x78", 6, "terminal escapes"},
        {"\xef\xac\x82\x75\xef\xac\x83\x65\xef\xac\x86\x20\xef\xbc\xac\xef\xbc\xaf\xef\xbc\xb5\xef\xbc\xa4\xe3\x80\x80\xef\xbd\xb6\xef\xbe\x9e", 33, "\x66\x6c\x75\x66\x66\x69\x65\x73\x74\x20\x4c\x4f\x55\x44\x20\xe3\x82\xac", 18, "ligatures and width"},
        {"\xc3\xa2\xe2\x82\xac\xef\xbf\xbd\x20\x78", 10, "\xef\xbf\xbd\x20\x78", 5, "replace_lossy_sequences"},
        {"\xc3\x83\xc2\xa2\xc3\xa2\xe2\x80\x9a\xc2\xac\xc3\xa2\xe2\x80\x9e\xc2\xa2", 18, "\x27", 1, "double mojibake"},
        {"\xc3\x83\xc2\xa0\x20\x62\x69\x65\x6e\x74\xc3\x83\xc2\xb4\x74", 15, "\xc3\xa0\x20\x62\x69\x65\x6e\x74\xc3\xb4\x74", 11, "a-grave NBSP"},
    };
    mc_err e = {0};
    mc_ftfy *f = mc_ftfy_new(&e);
    if (!f) mc_test_fatal("ftfy tables: %s", e.msg);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mc_u32buf in = {0}, got = {0}, want = {0};
        int ok = !mc_utf8_decode(cases[i].in, cases[i].in_len, &in, &e) &&
                 !mc_utf8_decode(cases[i].out, cases[i].out_len, &want, &e) &&
                 !mc_ftfy_fix_text(f, in.v, in.n, &got, &e) && got.n == want.n &&
                 (got.n == 0 || !memcmp(got.v, want.v, got.n * sizeof *got.v));
        CHECK(ok, "ftfy case %zu (%s)", i, cases[i].what);
        mc_u32buf_free(&in);
        mc_u32buf_free(&got);
        mc_u32buf_free(&want);
    }
    mc_ftfy_free(f);
}

/* regex IGNORECASE corners of the pre-tokenizer, final sigma, upper-case entities. */
static void pretokenizer_cases(const mc_tokenizer *tok) {
    static const struct { const char *text; int n; int32_t ids[12]; } cases[] = {
        {"it'\xc5\xbf", 6, {49406, 585, 6, 129, 379, 49407}},                 /* 's matches 'ſ */
        {"<\xc5\xbftart_of_text>", 11, {49406, 27, 129, 123, 16707, 62, 684, 62, 18169, 285, 49407}},
        {"a\xcd\x85" "b", 4, {49406, 320, 321, 49407}},                        /* U+0345 matches nothing */
        {"&NTILDE; &SZLIG; &nTILDE;", 10, {49406, 127, 365, 632, 261, 77, 6124, 654, 282, 49407}},
        {"\xef\xac\x85 \xc5\x89", 7, {49406, 129, 123, 339, 262, 333, 49407}}, /* ligatures, ʼ uncurled */
        {"\xc4\x8f\xc5\xbc\xcb\x9d\xc4\x82\xe2\x82\xac\n", 3, {49406, 39802, 49407}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t ids[77];
        mc_err e = {0};
        int n = encode_str(tok, cases[i].text, ids, &e);
        CHECK(n == cases[i].n && !memcmp(ids, cases[i].ids, (size_t)cases[i].n * sizeof(int32_t)) && ids[n] == 0,
              "pre-tokenizer case %zu", i);
    }
}

/* Bad or extreme text. */
static void bad_text(const mc_tokenizer *tok) {
    mc_err e = {0};
    int32_t ids[77];
    static const struct { const char *s; size_t n; size_t off; } invalid[] = {
        {"abc\xff", 4, 3}, {"\xc3", 1, 0}, {"a\xc0\x80", 3, 1}, {"\xed\xa0\x80", 3, 0},
        {"\xf4\x90\x80\x80", 4, 0}, {"ok \xe2\x82", 5, 3}, {"\x80", 1, 0},
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        int rc = mc_tokenizer_encode(tok, invalid[i].s, invalid[i].n, ids, &e);
        char want[64];
        snprintf(want, sizeof want, "offset %zu", invalid[i].off);
        CHECK(rc == MC_E_ARG && strstr(e.msg, "invalid UTF-8") && strstr(e.msg, want),
              "invalid UTF-8 #%zu: rc %d, '%s'", i, rc, e.msg);
        CHECK(ids[0] == 0 && ids[1] == 0, "ids zeroed on error");
    }
    /* NUL bytes are text (the API is counted): ftfy removes U+0000, as in Python. */
    int32_t ref[77];
    int n1 = mc_tokenizer_encode(tok, "ctrl\0char", 9, ids, &e);
    int n2 = encode_str(tok, "ctrlchar", ref, &e);
    CHECK(n1 == 5 && n1 == n2 && !memcmp(ids, ref, sizeof ids), "NUL inside text: %d %d", n1, n2);
    CHECK(mc_tokenizer_encode(tok, "\0\0\0", 3, ids, &e) == 2 && ids[0] == MC_TOKEN_SOT && ids[1] == MC_TOKEN_EOT,
          "only NULs -> SOT EOT");
    CHECK(mc_tokenizer_encode(tok, NULL, 0, ids, &e) == 2 && ids[1] == MC_TOKEN_EOT && ids[2] == 0, "empty text");

    /* 1 MB: one huge word (BPE must not be quadratic), and mojibake-heavy text.
     * Expected ids from the reference implementation. */
    size_t big = 1000000;
    char *s = malloc(big * 2);
    memset(s, 'a', big);
    double t0 = mc_test_now();
    int n = mc_tokenizer_encode(tok, s, big, ids, &e);
    double dt = mc_test_now() - t0;
    int ok = n == 77 && ids[0] == MC_TOKEN_SOT && ids[76] == MC_TOKEN_EOT;
    for (int i = 1; i < 76; i++) ok &= ids[i] == 23126;
    printf("1 MB single word: %.2f s\n", dt);
    CHECK(ok, "1 MB of 'a': n=%d (%s)", n, n < 0 ? e.msg : "");
    const char *unit = "the caf\xc3\x83\xc2\xa9 in Z\xc3\x83\xc2\xbcrich said "; /* "cafÃ©", "ZÃ¼rich" */
    size_t ul = strlen(unit), m = 0;
    while (m + ul <= big * 2 - 1) { memcpy(s + m, unit, ul); m += ul; }
    t0 = mc_test_now();
    n = mc_tokenizer_encode(tok, s, m, ids, &e);
    dt = mc_test_now() - t0;
    static const int32_t expect7[7] = {518, 15304, 530, 89, 6522, 4021, 1946}; /* the café in zürich said */
    ok = n == 77 && ids[0] == MC_TOKEN_SOT && ids[76] == MC_TOKEN_EOT;
    for (int i = 1; i < 76; i++) ok &= ids[i] == expect7[(i - 1) % 7];
    printf("%.1f MB of mojibake: %.2f s\n", m / 1e6, dt);
    CHECK(ok, "2 MB of mojibake: n=%d (%s)", n, n < 0 ? e.msg : "");
    /* HTML escaped 250000 times over: refused (ftfy would take quadratic time). */
    s[0] = '&';
    for (size_t i = 0; i < 250000; i++) memcpy(s + 1 + 4 * i, "amp;", 4);
    t0 = mc_test_now();
    n = mc_tokenizer_encode(tok, s, 1 + 4 * 250000, ids, &e);
    dt = mc_test_now() - t0;
    printf("1 MB nested HTML escapes: refused in %.2f s\n", dt);
    CHECK(n == MC_E_ARG && strstr(e.msg, "too many ftfy repair passes"), "nested escapes: %d %s", n, e.msg);
    free(s);

    /* Context lengths other than 77: the last id is always EOT when cut. */
    int32_t small[10];
    const char *cut = "a photo of a cat and a dog and a bird";
    n = mc_tokenizer_encode_ctx(tok, cut, strlen(cut), small, 10, &e);
    static const int32_t want10[10] = {49406, 320, 1125, 539, 320, 2368, 537, 320, 1929, 49407};
    CHECK(n == 10 && !memcmp(small, want10, sizeof want10), "context 10 truncation");
    CHECK(mc_tokenizer_encode_ctx(tok, "x", 1, small, 1, &e) == MC_E_ARG, "context 1 refused");
}

/* Thread safety: concurrent encodes agree with serial ones. */
static void threads(const mc_tokenizer *tok) {
    static const char *texts[] = {"a photo of a cat", "caf\xc3\x83\xc2\xa9 &amp; cr\xc3\xa8me", "\xce\x9f\xce\x94\xce\x9f\xce\xa3",
                                  "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd thumbs", "\xef\xac\x81sh &EACUTE;cole", "<end_of_text> x"};
    enum { NT = 6, REP = 200 };
    int32_t ref[NT][77];
    mc_err e = {0};
    for (int i = 0; i < NT; i++) encode_str(tok, texts[i], ref[i], &e);
    int bad = 0;
#pragma omp parallel for reduction(+ : bad) schedule(dynamic)
    for (int k = 0; k < NT * REP; k++) {
        int32_t ids[77];
        mc_err le = {0};
        encode_str(tok, texts[k % NT], ids, &le);
        bad += memcmp(ids, ref[k % NT], sizeof ids) != 0;
    }
    CHECK(bad == 0, "%d concurrent encodes differ", bad);
}

/* Reads and unpacks the shared gzip vocabulary (for the plain-text forms). */
static char *plain_merges(size_t *len) {
    char *gz;
    size_t gl;
    mc_err e = {0};
    if (mc_read_file(mc_test_path("vocab/bpe_simple_vocab_16e6.txt.gz"), 64 << 20, &gz, &gl, &e))
        mc_test_fatal("vocab missing: %s", e.msg);
    size_t cap = 16 << 20;
    char *out = malloc(cap);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    inflateInit2(&zs, 16 + MAX_WBITS);
    zs.next_in = (unsigned char *)gz;
    zs.avail_in = (unsigned)gl;
    zs.next_out = (unsigned char *)out;
    zs.avail_out = (unsigned)cap;
    int z = inflate(&zs, Z_FINISH);
    if (z != Z_STREAM_END) mc_test_fatal("cannot unpack the vocabulary (zlib %d)", z);
    *len = cap - zs.avail_out;
    inflateEnd(&zs);
    free(gz);
    return out;
}

static void write_file(const char *path, const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f)) mc_test_fatal("cannot write %s", path);
}

/* JSON string of the byte-level vocabulary string of a merge field/byte token. */
static void json_str(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\') fputc('\\', f);
        fputc(s[i], f);
    }
    fputc('"', f);
}

/* Writes a model hub vocab.json for the merges (ids as open_clip assigns them). */
static void write_vocab_json(const char *path, const char *merges, size_t len, int corrupt) {
    FILE *f = fopen(path, "wb");
    if (!f) mc_test_fatal("cannot write %s", path);
    int order[256], k = 0, extra = 0;
    unsigned cp[256];
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        cp[b] = printable ? (unsigned)b : 256u + (unsigned)extra++;
    }
    for (int b = '!'; b <= '~'; b++) order[k++] = b;
    for (int b = 0xA1; b <= 0xAC; b++) order[k++] = b;
    for (int b = 0xAE; b <= 0xFF; b++) order[k++] = b;
    for (int b = 0; b < 256; b++)
        if (cp[b] >= 256) order[k++] = b;
    fputc('{', f);
    int id = 0;
    for (int w = 0; w < 2; w++)
        for (int i = 0; i < 256; i++) {
            char u[8];
            unsigned c = cp[order[i]];
            int n = c < 0x80 ? (u[0] = (char)c, 1) : (u[0] = (char)(0xC0 | (c >> 6)), u[1] = (char)(0x80 | (c & 0x3F)), 2);
            if (w) { memcpy(u + n, "</w>", 4); n += 4; }
            json_str(f, u, (size_t)n);
            fprintf(f, ":%d,", corrupt && id == 300 ? 301 : id);
            id++;
        }
    const char *p = memchr(merges, '\n', len) + 1;
    for (int r = 0; r < 48894; r++) {
        const char *nl = memchr(p, '\n', (size_t)(merges + len - p));
        const char *sp = memchr(p, ' ', (size_t)(nl - p));
        char buf[256];
        size_t a = (size_t)(sp - p), b = (size_t)(nl - sp - 1);
        memcpy(buf, p, a);
        memcpy(buf + a, sp + 1, b);
        json_str(f, buf, a + b);
        fprintf(f, ":%d,", id++);
        p = nl + 1;
    }
    fprintf(f, "\"<|startoftext|>\":49406,\"<|endoftext|>\":49407}");
    fclose(f);
}

static int same_ids(const mc_tokenizer *a, const mc_tokenizer *b) {
    static const char *texts[] = {"a photo of a cat", "caf\xc3\xa9 \xe2\x80\x94 3.14 \xe2\x82\xac, it's", "\xe4\xb8\xad\xe6\x96\x87 OOVxqzv"};
    for (int i = 0; i < 3; i++) {
        int32_t x[77], y[77];
        mc_err e = {0};
        if (encode_str(a, texts[i], x, &e) < 0 || encode_str(b, texts[i], y, &e) < 0 || memcmp(x, y, sizeof x)) return 0;
    }
    return 1;
}

static void loading(const mc_tokenizer *ref) {
    mc_err e = {0};
    mc_tokenizer *t;
    /* missing file / directory without vocabulary */
    t = mc_tokenizer_load("/nonexistent/bpe_simple_vocab_16e6.txt.gz", &e);
    CHECK(!t && e.code == MC_E_IO && strstr(e.msg, "/nonexistent/bpe_simple_vocab_16e6.txt.gz"), "missing file: %s", e.msg);
    char dir[] = "/tmp/mc_tok_testXXXXXX";
    if (!mkdtemp(dir)) mc_test_fatal("mkdtemp failed");
    t = mc_tokenizer_load(dir, &e);
    CHECK(!t && e.code == MC_E_IO && strstr(e.msg, "no merges.txt"), "empty dir: %s", e.msg);

    size_t plen;
    char *plain = plain_merges(&plen);
    char path[512], vpath[512];

    /* plain text, from memory and from a file */
    t = mc_tokenizer_load_buffer(plain, plen, &e);
    CHECK(t && same_ids(t, ref), "plain merges from memory: %s", t ? "" : e.msg);
    mc_tokenizer_free(t);

    /* hub layout: merges.txt (+ vocab.json), via dir, merges.txt or vocab.json */
    const char *nl = plain;
    for (int i = 0; i < 48895; i++) nl = memchr(nl, '\n', (size_t)(plain + plen - nl)) + 1;
    size_t hub_len = (size_t)(nl - plain);
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    write_file(path, plain, hub_len);
    t = mc_tokenizer_load(path, &e);
    CHECK(t && same_ids(t, ref), "merges.txt alone: %s", t ? "" : e.msg);
    mc_tokenizer_free(t);
    snprintf(vpath, sizeof vpath, "%s/vocab.json", dir);
    write_vocab_json(vpath, plain, plen, 0);
    t = mc_tokenizer_load(dir, &e);
    CHECK(t && same_ids(t, ref), "hub directory: %s", t ? "" : e.msg);
    mc_tokenizer_free(t);
    t = mc_tokenizer_load(vpath, &e);
    CHECK(t && same_ids(t, ref), "hub vocab.json path: %s", t ? "" : e.msg);
    mc_tokenizer_free(t);
    write_vocab_json(vpath, plain, plen, 1);
    t = mc_tokenizer_load(dir, &e);
    CHECK(!t && e.code == MC_E_FORMAT && strstr(e.msg, "vocab.json") && strstr(e.msg, "has id 301"),
          "inconsistent vocab.json: %s", e.msg);
    unlink(vpath);

    /* truncated merges file */
    write_file(path, plain, 100000);
    t = mc_tokenizer_load(path, &e);
    CHECK(!t && e.code == MC_E_FORMAT && strstr(e.msg, "truncated merges file") && strstr(e.msg, path),
          "truncated merges: %s", e.msg);
    /* a line that is not a pair */
    char *broken = malloc(hub_len);
    memcpy(broken, plain, hub_len);
    char *l3 = memchr(memchr(broken, '\n', hub_len) + 1, '\n', hub_len) + 1; /* line 3 */
    *(char *)memchr(l3, ' ', 64) = 'x';
    write_file(path, broken, hub_len);
    t = mc_tokenizer_load(path, &e);
    CHECK(!t && e.code == MC_E_FORMAT && strstr(e.msg, "line 3: expected two merge symbols"), "bad line: %s", e.msg);
    /* invalid UTF-8 */
    l3[0] = (char)0xff;
    write_file(path, broken, hub_len);
    t = mc_tokenizer_load(path, &e);
    CHECK(!t && e.code == MC_E_ARG && strstr(e.msg, "invalid UTF-8"), "merges not UTF-8: %s", e.msg);
    free(broken);
    /* empty file */
    write_file(path, "", 0);
    t = mc_tokenizer_load(path, &e);
    CHECK(!t && strstr(e.msg, "empty"), "empty merges file: %s", e.msg);
    unlink(path);

    /* corrupt and truncated gzip */
    char *gz;
    size_t gl;
    if (mc_read_file(mc_test_path("vocab/bpe_simple_vocab_16e6.txt.gz"), 64 << 20, &gz, &gl, &e))
        mc_test_fatal("vocab missing: %s", e.msg);
    for (size_t i = gl / 2; i < gl / 2 + 64; i++) gz[i] ^= 0x5A;
    t = mc_tokenizer_load_buffer(gz, gl, &e);
    CHECK(!t && e.code == MC_E_FORMAT && strstr(e.msg, "gzip"), "corrupt gzip: %s", e.msg);
    for (size_t i = gl / 2; i < gl / 2 + 64; i++) gz[i] ^= 0x5A;
    snprintf(path, sizeof path, "%s/bpe_simple_vocab_16e6.txt.gz", dir);
    write_file(path, gz, gl / 3);
    t = mc_tokenizer_load(path, &e);
    CHECK(!t && e.code == MC_E_FORMAT && strstr(e.msg, "truncated") && strstr(e.msg, path), "truncated gzip: %s", e.msg);
    write_file(path, gz, gl);
    t = mc_tokenizer_load(dir, &e); /* directory holding the .gz */
    CHECK(t && same_ids(t, ref), "directory with the gzip vocabulary: %s", t ? "" : e.msg);
    mc_tokenizer_free(t);
    unlink(path);
    free(gz);
    free(plain);
    rmdir(dir);
}

int main(void) {
    mc_err e = {0};
    double t0 = mc_test_now();
    mc_tokenizer *tok = mc_tokenizer_load(mc_test_path("vocab/bpe_simple_vocab_16e6.txt.gz"), &e);
    if (!tok) mc_test_fatal("cannot load the vocabulary: %s", e.msg);
    printf("vocabulary loaded in %.3f s\n", mc_test_now() - t0);
    golden_cases(tok);
    ftfy_cases();
    pretokenizer_cases(tok);
    bad_text(tok);
    threads(tok);
    loading(tok);
    mc_tokenizer_free(tok);
    return mc_test_finish("test_tokenizer");
}
