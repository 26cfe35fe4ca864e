/* Synthetic-caption store; see syn.h. */
#include "reinforce/syn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/dr_sample.h"
#include "io/json.h"

uint64_t mc_key_hash(const char *s) {
    uint64_t h = 14695981039346656037ull;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) h = (h ^ *p) * 1099511628211ull;
    return h;
}

void mc_syn_init(mc_syn_store *s) {
    memset(s, 0, sizeof *s);
    mc_strlist_init(&s->captions);
}

void mc_syn_free(mc_syn_store *s) {
    if (!s) return;
    for (size_t i = 0; i < s->cap; i++) free(s->slots[i].key);
    free(s->slots);
    mc_strlist_free(&s->captions);
    mc_syn_init(s);
}

static mc_syn_entry *slot_of(const mc_syn_store *s, const char *key) {
    size_t mask = s->cap - 1, i = (size_t)mc_key_hash(key) & mask;
    while (s->slots[i].key && strcmp(s->slots[i].key, key)) i = (i + 1) & mask;
    return &s->slots[i];
}

static int grow(mc_syn_store *s, mc_err *e) {
    size_t cap = s->cap ? s->cap * 2 : 1024;
    mc_syn_entry *old = s->slots;
    size_t old_cap = s->cap;
    s->slots = calloc(cap, sizeof *s->slots);
    if (!s->slots) {
        s->slots = old;
        return mc_fail(e, MC_E_NOMEM, "synthetic captions: out of memory");
    }
    s->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].key) *slot_of(s, old[i].key) = old[i];
    free(old);
    return 0;
}

int mc_syn_add_line(mc_syn_store *s, const char *line, size_t len, const char *where, mc_err *e) {
    if (!mc_utf8_valid(line, len)) {
        mc_fail(e, MC_E_FORMAT, "%s: not valid UTF-8", where);
        return 1;
    }
    mc_err je = {0};
    mc_json *j = mc_json_parse(line, len, &je);
    if (!j) {
        mc_fail(e, MC_E_FORMAT, "%s: %s", where, je.msg);
        return 1;
    }
    const char *why = NULL;
    const mc_json *key = NULL, *caps = NULL;
    if (j->type != MC_JSON_OBJECT) why = "not a JSON object";
    else {
        key = mc_json_get(j, "key");
        caps = mc_json_get(j, "syn_text");
        if (!key || key->type != MC_JSON_STRING || key->len == 0 || strlen(key->str) != key->len)
            why = "\"key\" must be a non-empty string";
        else if (!caps || caps->type != MC_JSON_ARRAY || caps->count == 0)
            why = "\"syn_text\" must be a non-empty list of captions";
        else
            for (int i = 0; i < caps->count && !why; i++)
                if (caps->items[i].type != MC_JSON_STRING) why = "\"syn_text\" holds a non-string item";
                else if (strlen(caps->items[i].str) != caps->items[i].len) why = "a caption holds a NUL character";
                else if (!mc_utf8_valid(caps->items[i].str, caps->items[i].len))
                    why = "a caption is not valid UTF-8 (a lone surrogate escape)";
    }
    if (why) {
        mc_json_free(j);
        mc_fail(e, MC_E_FORMAT, "%s: %s", where, why);
        return 1;
    }
    for (int i = 0; i < j->count; i++)
        if (strcmp(j->keys[i], "key") && strcmp(j->keys[i], "syn_text")) s->unknown_keys++;
    int r = 0;
    if ((s->used + 1) * 2 > s->cap) r = grow(s, e);
    int first = s->captions.count;
    for (int i = 0; i < caps->count && !r; i++) r = mc_strlist_push(&s->captions, caps->items[i].str, caps->items[i].len, e);
    if (!r) {
        mc_syn_entry *slot = slot_of(s, key->str);
        if (slot->key) s->duplicates++; /* the earlier captions stay in the list, unreferenced */
        else if (!(slot->key = strdup(key->str))) r = mc_fail(e, MC_E_NOMEM, "synthetic captions: out of memory");
        else s->used++;
        if (!r) {
            slot->first = first;
            slot->count = caps->count;
        }
    }
    mc_json_free(j);
    return r;
}

int mc_syn_load(mc_syn_store *s, const char *path, mc_err *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return mc_fail(e, MC_E_IO, "%s: cannot open", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int r = 0;
    char where[600];
    while (!r && (n = getline(&line, &cap, f)) >= 0) {
        s->lines++;
        size_t len = (size_t)n;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        size_t k = 0;
        while (k < len && (line[k] == ' ' || line[k] == '\t')) k++;
        if (k == len) continue;
        snprintf(where, sizeof where, "%s:%lld", path, s->lines);
        mc_err le = {0};
        int q = mc_syn_add_line(s, line, len, where, &le);
        if (q == 1) {
            if (!s->bad_lines++) snprintf(s->first_bad, sizeof s->first_bad, "%s", le.msg);
        } else if (q < 0) {
            r = q;
            if (e) *e = le;
        }
    }
    if (!r && ferror(f)) r = mc_fail(e, MC_E_IO, "%s: read error", path);
    free(line);
    fclose(f);
    return r;
}

int mc_syn_find(const mc_syn_store *s, const char *key, char *const **caps) {
    if (!s->cap) return 0;
    const mc_syn_entry *slot = slot_of(s, key);
    if (!slot->key) return 0;
    *caps = s->captions.items + slot->first;
    return slot->count;
}

/* ---- json.dumps ---- */

static int put(char *buf, size_t cap, size_t *n, const char *s, size_t k) {
    if (*n + k + 1 > cap) return MC_E_ARG;
    memcpy(buf + *n, s, k);
    *n += k;
    buf[*n] = 0;
    return 0;
}

int mc_pyjson_dump_string(const char *s, size_t len, char *buf, size_t cap, size_t *n) {
    if (!mc_utf8_valid(s, len)) return MC_E_ARG;
    const unsigned char *p = (const unsigned char *)s;
    if (put(buf, cap, n, "\"", 1)) return MC_E_ARG;
    for (size_t i = 0; i < len;) {
        unsigned c = p[i];
        char esc[16];
        int k;
        if (c < 0x80) {
            i++;
            switch (c) {
            case '"': k = snprintf(esc, sizeof esc, "\\\""); break;
            case '\\': k = snprintf(esc, sizeof esc, "\\\\"); break;
            case '\n': k = snprintf(esc, sizeof esc, "\\n"); break;
            case '\r': k = snprintf(esc, sizeof esc, "\\r"); break;
            case '\t': k = snprintf(esc, sizeof esc, "\\t"); break;
            case '\b': k = snprintf(esc, sizeof esc, "\\b"); break;
            case '\f': k = snprintf(esc, sizeof esc, "\\f"); break;
            default:
                if (c < 0x20) k = snprintf(esc, sizeof esc, "\\u%04x", c);
                else {
                    esc[0] = (char)c;
                    k = 1;
                }
            }
        } else {
            int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : 1; /* valid UTF-8 checked above */
            unsigned cp = c & (0x3F >> extra);
            for (int t = 1; t <= extra; t++) cp = (cp << 6) | (p[i + t] & 0x3F);
            i += (size_t)extra + 1;
            if (cp >= 0x10000) {
                cp -= 0x10000;
                k = snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
            } else
                k = snprintf(esc, sizeof esc, "\\u%04x", cp);
        }
        if (put(buf, cap, n, esc, (size_t)k)) return MC_E_ARG;
    }
    return put(buf, cap, n, "\"", 1);
}

int mc_syn_json_write(char *const *caps, int n, char **out, size_t *len, mc_err *e) {
    size_t cap = 32;
    for (int i = 0; i < n; i++) cap += 12 * strlen(caps[i]) + 8; /* \uXXXX\uXXXX per 4 bytes at most */
    char *buf = malloc(cap);
    if (!buf) return mc_fail(e, MC_E_NOMEM, "syn.json: out of memory");
    size_t k = 0;
    int r = put(buf, cap, &k, "{\"syn_text\": [", 14);
    for (int i = 0; i < n && !r; i++) {
        if (i) r = put(buf, cap, &k, ", ", 2);
        if (!r) r = mc_pyjson_dump_string(caps[i], strlen(caps[i]), buf, cap, &k);
    }
    if (!r) r = put(buf, cap, &k, "]}", 2);
    if (r) {
        free(buf);
        return mc_fail(e, MC_E_ARG, "syn.json: a caption is not valid UTF-8");
    }
    *out = buf;
    *len = k;
    return 0;
}
