/* WebDataset shards: tar reading/writing, grouping, brace expansion.
 *
 * 1. Tars written by webdataset's TarWriter and by Python's tarfile (GNU long names, pax
 *    headers, global pax header, directories, links, meta names, keys coming back) read
 *    into exactly the samples webdataset itself yields (tests/data/shards/X.expected.json,
 *    tools/shards/gen_shard_refs.py).
 * 2. base_plus_ext / skip_meta on tricky names and braceexpand on tricky patterns agree
 *    with the Python packages.
 * 3. Our writer reproduces webdataset's TarWriter(mtime=0) output byte for byte.
 * 4. Hand-built headers: pax size/path overrides, 'g' path, base-256 size, signed checksum,
 *    prefix field; corrupt checksum, truncation at every length, oversize members, missing
 *    shards, duplicate members: a one-line error naming the file (and offset), the
 *    iteration goes on with the next sample or shard.
 * 5. gzip'd shards read transparently; a writer round trip of many samples.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/files.h"
#include "common/test_util.h"
#include "io/braceexpand.h"
#include "io/tar.h"
#include "io/wds.h"

#define DATA MC_TEST_DATA_DIR "/shards/"

static const char *tmp;

/* ---- 1. reference shards ---- */

static void check_reference(const char *tarname) {
    char path[512], jpath[512];
    snprintf(path, sizeof path, DATA "%s", tarname);
    snprintf(jpath, sizeof jpath, DATA "%s.expected.json", tarname);
    mc_json *exp = mc_test_json(jpath);
    const char *paths[1] = {path};
    mc_wds_reader r;
    mc_err e;
    CHECK(mc_wds_open(&r, paths, 1, NULL, &e) == 0, "open %s", tarname);
    int i = 0, rc;
    mc_wds_sample s;
    while ((rc = mc_wds_next(&r, &s, &e)) != 0) {
        CHECK(rc == 1, "%s: unexpected error %s", tarname, e.msg);
        if (rc != 1) break;
        const mc_json *x = mc_json_at(exp, i++);
        CHECK(x != NULL, "%s: more samples than webdataset (extra key '%s')", tarname, s.key);
        if (!x) break;
        const mc_json *key = mc_json_get(x, "key"), *mem = mc_json_get(x, "members");
        CHECK(!strcmp(key->str, s.key), "%s: key '%s', webdataset '%s'", tarname, s.key, key->str);
        CHECK(mem->count == s.count, "%s: key %s: %d members, webdataset %d", tarname, s.key, s.count, mem->count);
        for (int k = 0; k < mem->count; k++) {
            const mc_wds_member *m = mc_wds_sample_find(&s, mem->keys[k]);
            CHECK(m != NULL, "%s: key %s: no member '%s'", tarname, s.key, mem->keys[k]);
            if (!m) continue;
            size_t n;
            unsigned char *want = mc_test_unhex(mem->items[k].str, &n);
            CHECK(n == m->size && !memcmp(want, m->data, n), "%s: key %s ext %s: bytes differ", tarname, s.key, m->ext);
            free(want);
        }
    }
    CHECK(i == exp->count, "%s: %d samples, webdataset %d", tarname, i, exp->count);
    CHECK(r.tar.clean_end || r.cur_shard < 0, "%s: end", tarname);
    mc_wds_close(&r);
    mc_json_free(exp);
    printf("  %-24s %d samples as webdataset\n", tarname, i);
}

/* ---- 2. names and brace patterns ---- */

static void check_names(void) {
    mc_json *j = mc_test_json(DATA "names.json");
    for (int i = 0; i < j->count; i++) {
        const mc_json *x = &j->items[i];
        const mc_json *nm = mc_json_get(x, "name"), *key = mc_json_get(x, "key"), *ext = mc_json_get(x, "ext");
        size_t kl = 0;
        int ok = mc_wds_split_name(nm->str, nm->len, &kl);
        if (key->type == MC_JSON_NULL) CHECK(!ok, "name '%s': split, python does not", nm->str);
        else {
            CHECK(ok && kl == key->len && !memcmp(nm->str, key->str, kl), "name '%s': key differs", nm->str);
            CHECK(ok && !strcmp(nm->str + kl + 1, ext->str), "name '%s': ext differs", nm->str);
        }
        CHECK(mc_wds_is_meta(nm->str, nm->len) == mc_json_get(x, "meta")->boolean, "name '%s': meta differs", nm->str);
    }
    printf("  %d names split as base_plus_ext\n", j->count);
    mc_json_free(j);
}

static void check_brace(void) {
    mc_json *j = mc_test_json(DATA "brace.json");
    for (int i = 0; i < j->count; i++) {
        const mc_json *pat = mc_json_get(&j->items[i], "pattern"), *res = mc_json_get(&j->items[i], "result");
        mc_strlist l;
        mc_strlist_init(&l);
        mc_err e;
        int rc = mc_brace_expand(pat->str, &l, &e);
        if (res->type == MC_JSON_STRING) {
            CHECK(rc < 0 && l.count == 0, "pattern '%s': python fails, we expand", pat->str);
            CHECK(rc >= 0 || strstr(e.msg, "unbalanced"), "pattern '%s': message '%s'", pat->str, e.msg);
        } else {
            CHECK(rc == 0, "pattern '%s': %s", pat->str, e.msg);
            CHECK(l.count == res->count, "pattern '%s': %d names, python %d", pat->str, l.count, res->count);
            for (int k = 0; k < l.count && k < res->count; k++)
                CHECK(!strcmp(l.items[k], res->items[k].str), "pattern '%s' [%d]: '%s', python '%s'", pat->str, k,
                      l.items[k], res->items[k].str);
        }
        mc_strlist_free(&l);
    }
    printf("  %d brace patterns as braceexpand\n", j->count);
    mc_json_free(j);
    /* absurd ranges are refused before any allocation */
    const char *absurd[] = {"{0..999999999999}", "{1..1000}{1..1000}{1..1000}", "{a..z}{a..z}{a..z}{a..z}{a..z}",
                            "{0000000000000000001..2}"};
    for (int i = 0; i < 4; i++) {
        mc_strlist l;
        mc_strlist_init(&l);
        mc_err e;
        CHECK(mc_brace_expand(absurd[i], &l, &e) < 0 && l.count == 0, "absurd pattern '%s' accepted", absurd[i]);
        mc_strlist_free(&l);
    }
    mc_strlist l;
    mc_strlist_init(&l);
    mc_err e;
    CHECK(mc_shard_list_expand("a{0..1}.tar::b.tar", &l, &e) == 0 && l.count == 3 && !strcmp(l.items[2], "b.tar"),
          "'::' lists");
    mc_strlist_free(&l);
}

/* ---- 3. byte-exact writer ---- */

static void check_writer_bytes(void) {
    size_t n;
    unsigned char *want = mc_test_read(DATA "wds_writer_mtime0.tar", &n);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    mc_tar_writer w;
    mc_err e;
    mc_tar_writer_init_fp(&w, f, "mem", &e);
    static unsigned char npz[768];
    for (int i = 0; i < 768; i++) npz[i] = (unsigned char)i;
    mc_wds_member s0[] = {{"txt", (const unsigned char *)"a cat", 5}, {"json", (const unsigned char *)"{\"uid\": \"0\"}", 12},
                          {"syn.json", (const unsigned char *)"{\"syn_text\": [\"x\", \"y\"]}", 24}};
    mc_wds_member s1[] = {{"url.txt", (const unsigned char *)"http://x/y.jpg", 14}, {"txt", (const unsigned char *)"caf\xc3\xa9", 5}};
    mc_wds_member s2[] = {{"txt", (const unsigned char *)"long key", 8}};
    mc_wds_member s3[] = {{"txt", (const unsigned char *)"non-ASCII key", 13}, {"npz", npz, 768}};
    char longkey[128] = "d/";
    memset(longkey + 2, 'k', 120);
    longkey[122] = 0;
    int rc = mc_wds_write_sample(&w, "000000", s0, 3, &e);
    rc |= mc_wds_write_sample(&w, "dir.v1/000001", s1, 2, &e);
    rc |= mc_wds_write_sample(&w, longkey, s2, 1, &e);
    rc |= mc_wds_write_sample(&w, "\xc3\xbc/000003", s3, 2, &e);
    rc |= mc_tar_writer_finish(&w, &e);
    fclose(f);
    CHECK(rc == 0, "writer: %s", e.msg);
    CHECK(len == n, "writer: %zu bytes, webdataset %zu", len, n);
    size_t first = 0;
    while (first < len && first < n && (unsigned char)buf[first] == want[first]) first++;
    CHECK(len == n && first == n, "writer: first difference from webdataset's TarWriter at byte %zu", first);
    if (first < n) {
        FILE *d = fopen("/tmp/mc_test_wds_writer.tar", "wb");
        fwrite(buf, 1, len, d);
        fclose(d);
    }
    printf("  writer output identical to webdataset TarWriter(mtime=0): %s (%zu bytes)\n", first == n ? "yes" : "NO", n);
    /* bad keys and extensions are refused */
    free(buf);
    f = open_memstream(&buf, &len);
    mc_tar_writer_init_fp(&w, f, "mem", &e);
    mc_wds_member up[] = {{"TXT", (const unsigned char *)"x", 1}};
    mc_wds_member dup[] = {{"txt", (const unsigned char *)"x", 1}, {"txt", (const unsigned char *)"y", 1}};
    CHECK(mc_wds_write_sample(&w, "a.b", s2, 1, &e) < 0 && strstr(e.msg, "dot"), "key with a dot: %s", e.msg);
    CHECK(mc_wds_write_sample(&w, "", s2, 1, &e) < 0, "empty key");
    CHECK(mc_wds_write_sample(&w, "k", up, 1, &e) < 0, "upper-case extension");
    CHECK(mc_wds_write_sample(&w, "k", dup, 2, &e) < 0 && strstr(e.msg, "duplicate"), "duplicate extension: %s", e.msg);
    mc_tar_writer_abort(&w);
    fclose(f);
    free(buf);
    free(want);
}

/* ---- 4. hand-built archives ---- */

typedef struct tarbuf {
    unsigned char *p;
    size_t n, cap;
} tarbuf;

static void tb_put(tarbuf *t, const void *d, size_t n) {
    if (t->n + n > t->cap) {
        t->cap = (t->n + n) * 2 + 4096;
        t->p = realloc(t->p, t->cap);
    }
    memcpy(t->p + t->n, d, n);
    t->n += n;
}

static void tb_pad(tarbuf *t) {
    static const unsigned char z[512];
    tb_put(t, z, (512 - t->n % 512) % 512);
}

/* A header block; size_field NULL: octal of size. chk: 0 unsigned sum, 1 signed, 2 wrong. */
static void tb_header(tarbuf *t, const char *name, char type, uint64_t size, const char *prefix, int chk, int b256) {
    unsigned char h[512] = {0};
    memcpy(h, name, strlen(name) > 100 ? 100 : strlen(name));
    memcpy(h + 100, "0000644", 8);
    if (b256) {
        h[124] = 0x80;
        for (int i = 0; i < 8; i++) h[135 - i] = (unsigned char)(size >> (8 * i));
    } else {
        snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)(size & 077777777777ull));
    }
    memcpy(h + 136, "00000000000", 12);
    h[156] = (unsigned char)type;
    memcpy(h + 257, "ustar\0" "00", 8);
    if (prefix) memcpy(h + 345, prefix, strlen(prefix));
    memset(h + 148, ' ', 8);
    if (chk == 1) h[300] = 0xe9; /* a high byte makes the signed sum differ */
    long us = 0, ss = 0;
    for (int i = 0; i < 512; i++) us += h[i], ss += (signed char)h[i];
    snprintf((char *)h + 148, 8, "%06lo", (chk == 1 ? ss : us) + (chk == 2 ? 1 : 0));
    tb_put(t, h, 512);
}

static void tb_file(tarbuf *t, const char *name, const char *data) {
    tb_header(t, name, '0', strlen(data), NULL, 0, 0);
    tb_put(t, data, strlen(data));
    tb_pad(t);
}

static void tb_ext(tarbuf *t, char type, const char *data) {
    tb_header(t, type == 'L' ? "././@LongLink" : "././@PaxHeader", type, strlen(data), NULL, 0, 0);
    tb_put(t, data, strlen(data));
    tb_pad(t);
}

static void tb_end(tarbuf *t) {
    static const unsigned char z[1024];
    tb_put(t, z, 1024);
}

/* Reads all samples of one shard into a "key:ext=data;..." transcript ("!" marks errors). */
static void transcript(const char *path, char *out, size_t cap, size_t max_member) {
    const char *paths[1] = {path};
    mc_wds_reader r;
    mc_err e;
    mc_wds_options opt = {.max_member = max_member};
    out[0] = 0;
    if (mc_wds_open(&r, paths, 1, &opt, &e)) return;
    mc_wds_sample s;
    int rc;
    size_t k = 0;
    while ((rc = mc_wds_next(&r, &s, &e)) != 0) {
        if (rc < 0) {
            k += (size_t)snprintf(out + k, cap - k, "!%s|", strstr(e.msg, "offset") ? strstr(e.msg, "offset") : e.msg);
            continue;
        }
        k += (size_t)snprintf(out + k, cap - k, "%s:", s.key);
        for (int i = 0; i < s.count; i++)
            k += (size_t)snprintf(out + k, cap - k, "%s=%.*s%s", s.members[i].ext, (int)s.members[i].size,
                                  (const char *)s.members[i].data, i + 1 < s.count ? "," : "");
        k += (size_t)snprintf(out + k, cap - k, "|");
    }
    mc_wds_close(&r);
}

static void check_handmade(void) {
    char got[4096];
    tarbuf t = {0};
    /* GNU long name, pax path + size override (header size says 99), 'g' path for later
     * members without their own name... but tarfile applies 'g' path to every later member,
     * so a 'g' path is tested last. Prefix field, base-256 size, signed checksum. */
    char longname[300] = "long/";
    memset(longname + 5, 'n', 200);
    strcpy(longname + 205, ".TXT");
    tb_ext(&t, 'L', longname);
    tb_file(&t, "ignored-short-name", "L");
    tb_ext(&t, 'x', "18 path=pax/a.b.c\n10 size=2\n");
    tb_header(&t, "hdr.txt", '0', 99, NULL, 0, 0);
    tb_put(&t, "xy", 2);
    tb_pad(&t);
    tb_header(&t, "p.txt", '0', 1, "pre", 0, 0);
    tb_put(&t, "P", 1);
    tb_pad(&t);
    tb_header(&t, "b256.txt", '0', 3, NULL, 0, 1);
    tb_put(&t, "256", 3);
    tb_pad(&t);
    tb_header(&t, "signed.txt", '0', 1, NULL, 1, 0);
    tb_put(&t, "s", 1);
    tb_pad(&t);
    tb_header(&t, "dir/", 0, 0, NULL, 0, 0);       /* old-style directory: skipped */
    tb_header(&t, "fifo", '6', 0, NULL, 0, 0);
    tb_header(&t, "unknown.bin", 'V', 5, NULL, 0, 0); /* unknown type: its data is skipped */
    tb_put(&t, "VVVVV", 5);
    tb_pad(&t);
    tb_ext(&t, 'g', "16 path=g/k.txt\n");
    tb_file(&t, "any-name", "G");
    tb_end(&t);
    const char *p = mc_test_write(tmp, "hand.tar", t.p, t.n);
    transcript(p, got, sizeof got, 0);
    char want[1024];
    snprintf(want, sizeof want, "%.*s:txt=L|pax/a:b.c=xy|pre/p:txt=P|b256:txt=256|signed:txt=s|g/k:txt=G|", 205, longname);
    CHECK(!strcmp(got, want), "hand-made archive:\n got  %s\n want %s", got, want);

    /* grouping: key changes back, duplicate members, meta names, dots in directories */
    tarbuf g = {0};
    tb_file(&g, "a.jpg", "1");
    tb_file(&g, "a.txt", "2");
    tb_file(&g, "b.txt", "3");
    tb_file(&g, "a.json", "4");
    tb_file(&g, "__skip__", "x");
    tb_file(&g, "c.txt", "5");
    tb_file(&g, "c.TXT", "6");
    tb_file(&g, "c.json", "7");
    tb_file(&g, "d.e/f.g.h", "8");
    tb_file(&g, "d.e/f.i", "9");
    tb_file(&g, "nodot", "10");
    tb_end(&g);
    p = mc_test_write(tmp, "group.tar", g.p, g.n);
    transcript(p, got, sizeof got, 0);
    const char *want_g = "a:jpg=1,txt=2|b:txt=3|a:json=4|!offset 6144: sample 'c': duplicate member 'c.TXT'|d.e/f:g.h=8,i=9|";
    CHECK(!strcmp(got, want_g), "grouping:\n got  %s\n want %s", got, want_g);

    /* oversize member: that sample is reported, the others come through */
    tarbuf o = {0};
    tb_file(&o, "a.txt", "small");
    tb_file(&o, "b.txt", "this member is too large");
    tb_file(&o, "b.json", "b");
    tb_file(&o, "c.txt", "ok");
    tb_end(&o);
    p = mc_test_write(tmp, "over.tar", o.p, o.n);
    transcript(p, got, sizeof got, 8);
    CHECK(strstr(got, "a:txt=small|!offset 1024: member 'b.txt' has 24 bytes, more than the limit of 8") == got &&
              strstr(got, "|c:txt=ok|"),
          "oversize member: %s", got);

    /* corrupt checksum in the third header: two samples, then an error naming the offset */
    tarbuf c = {0};
    tb_file(&c, "a.txt", "1");
    tb_file(&c, "b.txt", "2");
    tb_header(&c, "b.json", '0', 1, NULL, 2, 0);
    tb_put(&c, "3", 1);
    tb_pad(&c);
    tb_end(&c);
    p = mc_test_write(tmp, "chk.tar", c.p, c.n);
    transcript(p, got, sizeof got, 0);
    CHECK(!strcmp(got, "a:txt=1|!offset 2048: bad tar header checksum (sample 'b' dropped)|"), "bad checksum: %s", got);

    /* every truncation of the grouping archive: an error or a clean shorter read, no crash;
     * at a header boundary tarfile stops quietly, anywhere else it is an error */
    int errors = 0, clean = 0;
    for (size_t cut = 0; cut < g.n + 1024; cut += cut % 97 == 0 && cut % 1024 ? 1024 - cut % 1024 : 97) {
        if (cut > g.n) break;
        p = mc_test_write(tmp, "cut.tar", g.p, cut);
        transcript(p, got, sizeof got, 0);
        int err = strstr(got, "truncated") || strstr(got, "empty");
        errors += err;
        clean += !err;
        if ((cut % 1024 == 0 && cut > 0) || cut >= 11 * 1024 + 512) /* header boundary, or end block read */
            CHECK(!err, "cut at %zu: %s", cut, got);
        else
            CHECK(cut ? strstr(got, "truncated") != NULL : strstr(got, "empty") != NULL, "cut at %zu not reported: %s", cut, got);
    }
    printf("  truncations: %d reported, %d clean ends (at block boundaries or in the trailer)\n", errors, clean);

    /* several shards: a missing one is reported and skipped, a sample never spans shards,
     * a corrupt shard stops only itself */
    const char *s1 = mc_test_write(tmp, "s1.tar", g.p, 2048);                /* a.jpg a.txt then cut */
    char s1p[512];
    snprintf(s1p, sizeof s1p, "%s", s1);
    tarbuf h = {0};
    tb_file(&h, "a.json", "X");
    tb_end(&h);
    char s3p[512];
    snprintf(s3p, sizeof s3p, "%s", mc_test_write(tmp, "s3.tar", h.p, h.n));
    char s2p[512];
    snprintf(s2p, sizeof s2p, "%s", mc_test_write(tmp, "chk2.tar", c.p, c.n));
    const char *list[4] = {s1p, "/nonexistent/shard.tar", s2p, s3p};
    mc_wds_reader r;
    mc_err e;
    CHECK(mc_wds_open(&r, list, 4, NULL, &e) == 0, "open list");
    mc_wds_sample s;
    int rc, n = 0;
    size_t k = 0;
    got[0] = 0;
    while ((rc = mc_wds_next(&r, &s, &e)) != 0 && n++ < 20)
        k += (size_t)snprintf(got + k, sizeof got - k, "%s|", rc < 0 ? (strstr(e.msg, "cannot open") ? "!open" : "!err")
                                                                        : s.key);
    CHECK(!strcmp(got, "a|!open|a|!err|a|"), "shard list: %s", got);
    CHECK(r.samples == 3 && r.errors == 2, "counters %lld %lld", r.samples, r.errors);
    mc_wds_close(&r);
    const char *dir[1] = {tmp};
    CHECK(mc_wds_open(&r, dir, 1, NULL, &e) == 0 && mc_wds_next(&r, &s, &e) < 0 && strstr(e.msg, "is a directory") &&
              mc_wds_next(&r, &s, &e) == 0,
          "a directory as a shard: %s", e.msg);
    mc_wds_close(&r);
    free(t.p);
    free(g.p);
    free(o.p);
    free(c.p);
    free(h.p);
}

/* ---- 5. gzip and a larger round trip ---- */

static void check_roundtrip(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/big.tar", tmp);
    mc_tar_writer w;
    mc_err e;
    CHECK(mc_tar_writer_open(&w, path, &e) == 0, "create: %s", e.msg);
    unsigned char *blob = malloc(70000);
    for (int i = 0; i < 70000; i++) blob[i] = (unsigned char)(i * 31 + 7);
    int N = 300;
    for (int i = 0; i < N; i++) {
        char key[64], txt[64];
        snprintf(key, sizeof key, "part%d/%08d", i % 3, i);
        snprintf(txt, sizeof txt, "caption %d", i);
        mc_wds_member m[3] = {{"txt", (const unsigned char *)txt, strlen(txt)}, {"jpg", blob, (size_t)(i * 233) % 70000},
                              {"syn.json", (const unsigned char *)"{}", 2}};
        if (mc_wds_write_sample(&w, key, m, 3, &e)) break;
    }
    CHECK(mc_tar_writer_finish(&w, &e) == 0, "finish: %s", e.msg);
    /* the same file gzip'd */
    size_t n;
    unsigned char *raw = mc_test_read(path, &n);
    char gzpath[512];
    snprintf(gzpath, sizeof gzpath, "%s/big.tar.gz", tmp);
    gzFile gz = gzopen(gzpath, "wb");
    gzwrite(gz, raw, (unsigned)n);
    gzclose(gz);
    const char *paths[2] = {path, gzpath};
    for (int f = 0; f < 2; f++) {
        mc_wds_reader r;
        CHECK(mc_wds_open(&r, paths + f, 1, NULL, &e) == 0, "open");
        mc_wds_sample s;
        int i = 0, rc, bad = 0;
        while ((rc = mc_wds_next(&r, &s, &e)) == 1) {
            char key[64], txt[64];
            snprintf(key, sizeof key, "part%d/%08d", i % 3, i);
            snprintf(txt, sizeof txt, "caption %d", i);
            const mc_wds_member *t = mc_wds_sample_find(&s, "txt"), *j = mc_wds_sample_find(&s, "jpg");
            if (strcmp(s.key, key) || s.count != 3 || !t || !j || t->size != strlen(txt) || memcmp(t->data, txt, t->size) ||
                j->size != (size_t)(i * 233) % 70000 || memcmp(j->data, blob, j->size))
                bad++;
            i++;
        }
        CHECK(rc == 0 && i == N && bad == 0, "%s: %d samples, %d bad, rc %d %s", paths[f], i, bad, rc, rc ? e.msg : "");
        CHECK(r.cur_shard < 0, "closed at end");
        mc_wds_close(&r);
    }
    printf("  %d samples written and read back (plain and gzip'd, %zu bytes)\n", N, n);
    /* atomic writer: nothing under the final name until finish; abort leaves nothing */
    char apath[512];
    snprintf(apath, sizeof apath, "%s/atomic.tar", tmp);
    mc_wds_member one[1] = {{"txt", (const unsigned char *)"x", 1}};
    CHECK(mc_tar_writer_open_atomic(&w, apath, &e) == 0 && mc_wds_write_sample(&w, "k", one, 1, &e) == 0, "atomic open");
    FILE *probe = fopen(apath, "rb");
    CHECK(probe == NULL, "atomic: final name exists before finish");
    if (probe) fclose(probe);
    CHECK(mc_tar_writer_finish(&w, &e) == 0 && (probe = fopen(apath, "rb")) != NULL, "atomic finish: %s", e.msg);
    if (probe) fclose(probe);
    char bpath[512];
    snprintf(bpath, sizeof bpath, "%s/aborted.tar", tmp);
    CHECK(mc_tar_writer_open_atomic(&w, bpath, &e) == 0, "atomic open 2");
    mc_tar_writer_abort(&w);
    int left = 0;
    DIR *dd = opendir(tmp);
    for (struct dirent *de; dd && (de = readdir(dd));) left += strstr(de->d_name, "aborted") != NULL;
    if (dd) closedir(dd);
    CHECK(left == 0, "abort left a temporary file");
    snprintf(bpath, sizeof bpath, "%s/no/such/dir/x.tar", tmp);
    CHECK(mc_tar_writer_open_atomic(&w, bpath, &e) < 0 && strstr(e.msg, "x.tar"), "unwritable directory: %s", e.msg);
    free(raw);
    free(blob);
}

int main(void) {
    tmp = mc_test_tmpdir("mc_test_wds");
    printf("reference shards\n");
    check_reference("wds_writer.tar");
    check_reference("wds_writer_mtime0.tar");
    check_reference("wds_gnu.tar");
    check_reference("wds_pax.tar");
    check_names();
    check_brace();
    check_writer_bytes();
    check_handmade();
    check_roundtrip();
    return mc_test_finish("test_wds");
}
