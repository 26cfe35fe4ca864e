/* bpe.c - vocabulary, merge ranks and the BPE merge loop (see bpe.h).
 *
 * open_clip's bpe() repeats: take the adjacent pair of lowest merge rank, merge
 * all its occurrences left to right (non-overlapping), until no pair has a rank.
 * Done naively that is O(n^2) per word.  Here each adjacent pair sits in a heap
 * keyed by (rank, position); one round pops every entry of the lowest rank first,
 * then applies them in position order, skipping entries made stale by an earlier
 * merge of the round (exactly the reference's left-to-right scan), and pushes the
 * pairs the merges create for later rounds.  Same result, O(n log n).
 */
#include "text/bpe.h"

#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "io/json.h"
#include "text/unicode.h"

typedef struct {
    uint32_t off, len; /* into strs */
    int32_t id;
} str_slot;

typedef struct {
    uint64_t key; /* (left id << 32 | right id) + 1, 0 = empty */
    int32_t rank, merged;
} pair_slot;

struct mc_bpe {
    char *strs; /* all vocabulary strings, UTF-8 */
    size_t strs_len;
    uint32_t str_off[MC_BPE_VOCAB], str_len[MC_BPE_VOCAB];
    str_slot *smap; size_t smap_cap;   /* string -> id (last definition wins, as a dict) */
    pair_slot *pmap; size_t pmap_cap;  /* (id, id) -> rank, merged id */
    int32_t byte_id[256], byte_w_id[256];
};

/* open_clip's bytes_to_unicode: printable Latin-1 bytes map to themselves, the
 * other 68 bytes to U+0100.. in byte order.  order[i] = byte of vocabulary id i. */
static void byte_alphabet(uint32_t cp_of_byte[256], uint8_t order[256]) {
    int k = 0, extra = 0;
    for (int b = '!'; b <= '~'; b++) order[k++] = (uint8_t)b;
    for (int b = 0xA1; b <= 0xAC; b++) order[k++] = (uint8_t)b;
    for (int b = 0xAE; b <= 0xFF; b++) order[k++] = (uint8_t)b;
    for (int b = 0; b < 256; b++) cp_of_byte[b] = (uint32_t)b;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        if (!printable) { order[k++] = (uint8_t)b; cp_of_byte[b] = 256u + (uint32_t)extra++; }
    }
}

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

static str_slot *smap_find(const mc_bpe *b, const char *s, size_t n) {
    size_t mask = b->smap_cap - 1, i = (size_t)hash_bytes(s, n) & mask;
    for (;;) {
        str_slot *sl = &b->smap[i];
        if (sl->id < 0) return sl;
        if (sl->len == n && !memcmp(b->strs + sl->off, s, n)) return sl;
        i = (i + 1) & mask;
    }
}

int32_t mc_bpe_token_id(const mc_bpe *b, const char *s, size_t len) {
    const str_slot *sl = smap_find(b, s, len);
    return sl->id;
}

static pair_slot *pmap_find(const mc_bpe *b, uint64_t key) {
    size_t mask = b->pmap_cap - 1, i = (size_t)mc_mix64(key) & mask;
    for (;;) {
        pair_slot *p = &b->pmap[i];
        if (p->key == 0 || p->key == key) return p;
        i = (i + 1) & mask;
    }
}

static const pair_slot *pair_lookup(const mc_bpe *b, int32_t l, int32_t r) {
    const pair_slot *p = pmap_find(b, (((uint64_t)(uint32_t)l << 32) | (uint32_t)r) + 1);
    return p->key ? p : NULL;
}

void mc_bpe_free(mc_bpe *b) {
    if (!b) return;
    free(b->strs);
    free(b->smap);
    free(b->pmap);
    free(b);
}

/* Python str.split() of one line into exactly two fields; returns 0 or -1. */
static int split2(const uint32_t *cp, size_t n, size_t f[2][2]) {
    int k = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && mc_uc_py_isspace(cp[i])) i++;
        if (i == n) break;
        size_t s = i;
        while (i < n && !mc_uc_py_isspace(cp[i])) i++;
        if (k == 2) return -1;
        f[k][0] = s;
        f[k][1] = i;
        k++;
    }
    return k == 2 ? 0 : -1;
}

mc_bpe *mc_bpe_load(const char *text, size_t len, const char *what, mc_err *e) {
    mc_u32buf cps = {0};
    mc_bpe *b = NULL;
    if (mc_utf8_decode(text, len, &cps, e)) { mc_err_prefix(e, "%s", what); goto fail; }
    b = calloc(1, sizeof *b);
    if (!b) { mc_fail(e, MC_E_NOMEM, "%s: out of memory", what); goto fail; }

    /* Line starts: line 0 is the header, merges are lines 1..48894. */
    size_t line_start = 0, line = 0;
    size_t *starts = malloc((MC_BPE_NMERGES + 2) * sizeof *starts);
    if (!starts) { mc_fail(e, MC_E_NOMEM, "%s: out of memory", what); goto fail; }
    for (size_t i = 0; i <= cps.n && line <= MC_BPE_NMERGES + 1; i++) {
        if (i == cps.n || cps.v[i] == '\n') {
            starts[line++] = line_start;
            line_start = i + 1;
        }
    }
    if (line < MC_BPE_NMERGES + 1) {
        mc_fail(e, MC_E_FORMAT, "%s: truncated merges file: %zu merge lines, expected %d", what,
                line ? line - 1 : 0, MC_BPE_NMERGES);
        free(starts);
        goto fail;
    }

    /* Vocabulary strings: bytes, bytes + "</w>", merges, specials. */
    uint32_t cp_of_byte[256];
    uint8_t order[256];
    byte_alphabet(cp_of_byte, order);
    size_t cap = 256 * 3 + 256 * 7 + 64;
    for (int r = 0; r < MC_BPE_NMERGES; r++) {
        size_t s = starts[r + 1], en = s;
        while (en < cps.n && cps.v[en] != '\n') en++;
        cap += (en - s) * 4;
    }
    b->strs = malloc(cap);
    if (!b->strs) { mc_fail(e, MC_E_NOMEM, "%s: out of memory", what); free(starts); goto fail; }
    size_t o = 0;
    unsigned char u8[4];
    for (int i = 0; i < 512; i++) {
        b->str_off[i] = (uint32_t)o;
        int nb = mc_utf8_put(cp_of_byte[order[i & 255]], u8);
        memcpy(b->strs + o, u8, (size_t)nb);
        o += (size_t)nb;
        if (i >= 256) { memcpy(b->strs + o, "</w>", 4); o += 4; }
        b->str_len[i] = (uint32_t)(o - b->str_off[i]);
    }
    for (int r = 0; r < MC_BPE_NMERGES; r++) {
        size_t s = starts[r + 1], en = s;
        while (en < cps.n && cps.v[en] != '\n') en++;
        size_t f[2][2];
        if (split2(cps.v + s, en - s, f)) {
            mc_fail(e, MC_E_FORMAT, "%s: line %d: expected two merge symbols", what, r + 2);
            free(starts);
            goto fail;
        }
        b->str_off[512 + r] = (uint32_t)o;
        for (int k = 0; k < 2; k++)
            for (size_t i = s + f[k][0]; i < s + f[k][1]; i++) o += (size_t)mc_utf8_put(cps.v[i], (unsigned char *)b->strs + o);
        b->str_len[512 + r] = (uint32_t)(o - b->str_off[512 + r]);
    }
    static const char *const specials[2] = {"<start_of_text>", "<end_of_text>"};
    for (int k = 0; k < 2; k++) {
        b->str_off[MC_BPE_SOT + k] = (uint32_t)o;
        memcpy(b->strs + o, specials[k], strlen(specials[k]));
        o += strlen(specials[k]);
        b->str_len[MC_BPE_SOT + k] = (uint32_t)strlen(specials[k]);
    }
    b->strs_len = o;

    /* string -> id */
    b->smap_cap = 1 << 17;
    b->smap = malloc(b->smap_cap * sizeof *b->smap);
    if (!b->smap) { mc_fail(e, MC_E_NOMEM, "%s: out of memory", what); free(starts); goto fail; }
    for (size_t i = 0; i < b->smap_cap; i++) b->smap[i].id = -1;
    for (int32_t id = 0; id < MC_BPE_VOCAB; id++) {
        str_slot *sl = smap_find(b, b->strs + b->str_off[id], b->str_len[id]);
        sl->off = b->str_off[id];
        sl->len = b->str_len[id];
        sl->id = id;
    }
    for (int i = 0; i < 256; i++) {
        b->byte_id[order[i]] = mc_bpe_token_id(b, b->strs + b->str_off[i], b->str_len[i]);
        b->byte_w_id[order[i]] = mc_bpe_token_id(b, b->strs + b->str_off[256 + i], b->str_len[256 + i]);
    }

    /* (left, right) -> rank, merged id; a repeated pair keeps its last rank (dict). */
    b->pmap_cap = 1 << 17;
    b->pmap = calloc(b->pmap_cap, sizeof *b->pmap);
    if (!b->pmap) { mc_fail(e, MC_E_NOMEM, "%s: out of memory", what); free(starts); goto fail; }
    char tmp[1024];
    for (int r = 0; r < MC_BPE_NMERGES; r++) {
        size_t s = starts[r + 1], en = s;
        while (en < cps.n && cps.v[en] != '\n') en++;
        size_t f[2][2];
        split2(cps.v + s, en - s, f);
        int32_t ids[2];
        for (int k = 0; k < 2; k++) {
            size_t tl = 0;
            for (size_t i = s + f[k][0]; i < s + f[k][1] && tl + 4 < sizeof tmp; i++)
                tl += (size_t)mc_utf8_put(cps.v[i], (unsigned char *)tmp + tl);
            ids[k] = tl + 4 < sizeof tmp ? mc_bpe_token_id(b, tmp, tl) : -1;
        }
        if (ids[0] < 0 || ids[1] < 0) {
            /* A symbol that is not a vocabulary string can never occur in a word. */
            mc_fail(e, MC_E_FORMAT, "%s: line %d: merge symbol is not in the vocabulary built so far "
                    "(not a CLIP merges file?)", what, r + 2);
            free(starts);
            goto fail;
        }
        int32_t merged = mc_bpe_token_id(b, b->strs + b->str_off[512 + r], b->str_len[512 + r]);
        pair_slot *p = pmap_find(b, (((uint64_t)(uint32_t)ids[0] << 32) | (uint32_t)ids[1]) + 1);
        p->key = (((uint64_t)(uint32_t)ids[0] << 32) | (uint32_t)ids[1]) + 1;
        p->rank = r;
        p->merged = merged;
    }
    free(starts);
    mc_u32buf_free(&cps);
    return b;
fail:
    mc_u32buf_free(&cps);
    mc_bpe_free(b);
    return NULL;
}

int mc_bpe_check_vocab_json(const mc_bpe *b, const char *json, size_t len, const char *what, mc_err *e) {
    mc_json *j = mc_json_parse(json, len, e);
    if (!j) return mc_err_prefix(e, "%s", what);
    int rc = 0;
    if (j->type != MC_JSON_OBJECT) { rc = mc_fail(e, MC_E_FORMAT, "%s: expected a JSON object", what); goto out; }
    uint8_t *seen = calloc(MC_BPE_VOCAB, 1);
    if (!seen) { rc = mc_fail(e, MC_E_NOMEM, "%s: out of memory", what); goto out; }
    for (int i = 0; i < j->count && !rc; i++) {
        const char *key = j->keys[i];
        const mc_json *v = &j->items[i];
        if (v->type != MC_JSON_NUMBER || v->number < 0 || v->number >= MC_BPE_VOCAB || v->number != (int)v->number) {
            rc = mc_fail(e, MC_E_FORMAT, "%s: token \"%.40s\": id is not an integer in [0, %d)", what, key, MC_BPE_VOCAB);
            break;
        }
        int id = (int)v->number, want;
        if (!strcmp(key, "<|startoftext|>")) want = MC_BPE_SOT;
        else if (!strcmp(key, "<|endoftext|>")) want = MC_BPE_EOT;
        else want = mc_bpe_token_id(b, key, strlen(key));
        if (want != id) {
            rc = mc_fail(e, MC_E_FORMAT, "%s: token \"%.40s\" has id %d but the merges give %d", what, key, id, want);
            break;
        }
        seen[id] = 1;
    }
    for (int id = 0; id < MC_BPE_VOCAB && !rc; id++)
        if (!seen[id]) rc = mc_fail(e, MC_E_FORMAT, "%s: id %d is missing", what, id);
    free(seen);
out:
    mc_json_free(j);
    return rc;
}

/* ---------------- the merge loop ---------------- */

typedef struct {
    int32_t rank;
    uint32_t pos;        /* left symbol position */
    int32_t left, right; /* ids when pushed (staleness check) */
} heap_ent;

static int ent_less(const heap_ent *a, const heap_ent *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(heap_ent *h, size_t *n, heap_ent x) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ent_less(&x, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static heap_ent heap_pop(heap_ent *h, size_t *n) {
    heap_ent top = h[0], x = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && ent_less(&h[c + 1], &h[c])) c++;
        if (!ent_less(&h[c], &x)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = x;
    return top;
}

long mc_bpe_encode(const mc_bpe *b, const uint8_t *bytes, size_t n, int32_t *ids, size_t max, mc_err *e) {
    if (n == 0) return mc_fail(e, MC_E_ARG, "bpe: empty piece");
    if (n == 1) {
        if (max) ids[0] = b->byte_w_id[bytes[0]];
        return 1;
    }
    if (n > 0x7FFFFFFFu) return mc_fail(e, MC_E_ARG, "bpe: piece too long");
    int32_t *sym = malloc(n * sizeof *sym);
    int32_t *next = malloc(n * sizeof *next), *prev = malloc(n * sizeof *prev);
    size_t hcap = 3 * n + 4, hn = 0, bn = 0;
    heap_ent *heap = malloc(hcap * sizeof *heap), *batch = malloc(hcap * sizeof *batch);
    long count = 0;
    if (!sym || !next || !prev || !heap || !batch) { count = mc_fail(e, MC_E_NOMEM, "bpe: out of memory for a %zu-byte word", n); goto out; }
    for (size_t i = 0; i < n; i++) {
        sym[i] = i + 1 < n ? b->byte_id[bytes[i]] : b->byte_w_id[bytes[i]];
        next[i] = i + 1 < n ? (int32_t)(i + 1) : -1;
        prev[i] = (int32_t)i - 1;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        const pair_slot *p = pair_lookup(b, sym[i], sym[i + 1]);
        if (p) heap_push(heap, &hn, (heap_ent){p->rank, (uint32_t)i, sym[i], sym[i + 1]});
    }
    while (hn) {
        int32_t rank = heap[0].rank;
        bn = 0;
        while (hn && heap[0].rank == rank) batch[bn++] = heap_pop(heap, &hn);
        for (size_t k = 0; k < bn; k++) {
            uint32_t l = batch[k].pos;
            int32_t r = next[l];
            if (sym[l] != batch[k].left || r < 0 || sym[r] != batch[k].right) continue; /* stale */
            const pair_slot *p = pair_lookup(b, sym[l], sym[r]);
            sym[l] = p->merged;
            sym[r] = -1;
            next[l] = next[r];
            if (next[r] >= 0) prev[next[r]] = (int32_t)l;
            if (prev[l] >= 0) {
                const pair_slot *q = pair_lookup(b, sym[prev[l]], sym[l]);
                if (q) heap_push(heap, &hn, (heap_ent){q->rank, (uint32_t)prev[l], sym[prev[l]], sym[l]});
            }
            if (next[l] >= 0) {
                const pair_slot *q = pair_lookup(b, sym[l], sym[next[l]]);
                if (q) heap_push(heap, &hn, (heap_ent){q->rank, l, sym[l], sym[next[l]]});
            }
        }
    }
    for (int32_t i = 0; i >= 0; i = next[i]) {
        if ((size_t)count < max) ids[count] = sym[i];
        count++;
    }
out:
    free(sym); free(next); free(prev); free(heap); free(batch);
    return count;
}

/* Appends the Python bytes.decode('utf-8', errors='replace') of b[0..n) to out: every maximal
 * subpart of an ill-formed sequence becomes one U+FFFD (Unicode's recommended practice, which
 * CPython follows). out needs 3 * n bytes. Returns the bytes written. */
static size_t utf8_replace(const unsigned char *b, size_t n, char *out) {
    size_t i = 0, o = 0;
    while (i < n) {
        unsigned c = b[i];
        int need = 0;
        unsigned lo = 0x80, hi = 0xBF; /* range of the first continuation byte */
        if (c < 0x80) {
            out[o++] = (char)c;
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c >= 0xE0 && c <= 0xEF) need = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        else if (c >= 0xF0 && c <= 0xF4) need = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        size_t j = i + 1;
        int ok = need > 0;
        for (int k = 0; ok && k < need; k++, j++) {
            unsigned l = k == 0 ? lo : 0x80, h = k == 0 ? hi : 0xBF;
            if (j >= n || b[j] < l || b[j] > h) ok = 0;
            if (!ok) break;
        }
        if (ok) {
            memcpy(out + o, b + i, j - i);
            o += j - i;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
        }
        i = j;
    }
    return o;
}

int mc_bpe_decode(const mc_bpe *b, const int32_t *ids, int n, char **out, size_t *out_len, mc_err *e) {
    uint32_t cp_of_byte[256];
    uint8_t order[256];
    byte_alphabet(cp_of_byte, order);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= MC_BPE_VOCAB)
            return mc_fail(e, MC_E_ARG, "decode: token id %d at position %d is outside [0, %d)", (int)ids[i], i,
                           MC_BPE_VOCAB);
        total += b->str_len[ids[i]];
    }
    /* each vocabulary character is one byte; "</w>" becomes " " */
    unsigned char *bytes = malloc(total + 1);
    char *text = malloc(3 * total + 1);
    if (!bytes || !text) {
        free(bytes), free(text);
        return mc_fail(e, MC_E_NOMEM, "decode: out of memory for %d tokens", n);
    }
    size_t nb = 0;
    for (int i = 0; i < n; i++) {
        const char *s = b->strs + b->str_off[ids[i]];
        size_t len = b->str_len[ids[i]];
        for (size_t k = 0; k < len;) {
            /* the vocabulary strings are valid UTF-8 of the byte alphabet (checked at load) */
            unsigned char c = (unsigned char)s[k];
            uint32_t cp = c;
            int w = c < 0x80 ? 1 : c < 0xE0 ? 2 : 3;
            if (w == 2) cp = ((c & 0x1Fu) << 6) | ((unsigned char)s[k + 1] & 0x3Fu);
            else if (w == 3)
                cp = ((c & 0x0Fu) << 12) | (((unsigned char)s[k + 1] & 0x3Fu) << 6) | ((unsigned char)s[k + 2] & 0x3Fu);
            k += (size_t)w;
            int byte = -1;
            for (int x = 0; x < 256 && byte < 0; x++)
                if (cp_of_byte[x] == cp) byte = x;
            bytes[nb++] = (unsigned char)(byte < 0 ? '?' : byte);
            if (nb >= 4 && !memcmp(bytes + nb - 4, "</w>", 4)) {
                nb -= 4;
                bytes[nb++] = ' ';
            }
        }
    }
    size_t o = utf8_replace(bytes, nb, text);
    text[o] = 0;
    free(bytes);
    *out = text;
    if (out_len) *out_len = o;
    return 0;
}
