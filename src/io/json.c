#include "io/json.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const char *s;
    size_t n, i;
    mc_err *e;
} parser;

static int fail(parser *p, const char *what) {
    return mc_fail(p->e, MC_E_FORMAT, "invalid JSON at byte %zu: %s", p->i, what);
}

static void skip_ws(parser *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static void free_value(mc_json *j) {
    if (j->type == MC_JSON_STRING) free(j->str);
    if (j->type == MC_JSON_ARRAY || j->type == MC_JSON_OBJECT) {
        for (int k = 0; k < j->count; k++) {
            free_value(&j->items[k]);
            if (j->keys) free(j->keys[k]);
        }
        free(j->items);
        free(j->keys);
    }
}

static int hex4(parser *p, unsigned *out) {
    if (p->n - p->i < 4) return fail(p, "truncated \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p->s[p->i++];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return fail(p, "bad \\u escape");
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xc0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f)); return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[3] = (char)(0x80 | (cp & 0x3f)); return 4;
}

/* p->i is just past the opening quote. Output is never longer than the input. */
static int parse_string(parser *p, char **out, size_t *out_len) {
    size_t start = p->i, end = start;
    while (end < p->n && p->s[end] != '"') end += (p->s[end] == '\\') ? 2 : 1;
    if (end >= p->n) return fail(p, "unterminated string");
    char *buf = malloc(end - start + 1), *o = buf;
    if (!buf) return mc_fail(p->e, MC_E_NOMEM, "out of memory");
    while (p->i < end) {
        unsigned char c = (unsigned char)p->s[p->i++];
        if (c < 0x20) { free(buf); return fail(p, "control character in string"); }
        if (c != '\\') { *o++ = (char)c; continue; }
        char x = p->s[p->i++];
        switch (x) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp;
            if (hex4(p, &cp)) { free(buf); return p->e ? p->e->code : MC_E_FORMAT; }
            if (cp >= 0xd800 && cp < 0xdc00 && p->n - p->i >= 6 && p->s[p->i] == '\\' && p->s[p->i + 1] == 'u') {
                size_t save = p->i;
                unsigned lo;
                p->i += 2;
                if (hex4(p, &lo)) { free(buf); return MC_E_FORMAT; }
                if (lo >= 0xdc00 && lo < 0xe000) cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                else p->i = save;
            }
            o += put_utf8(o, cp); /* lone surrogates are kept as 3-byte sequences */
            break;
        }
        default: free(buf); return fail(p, "bad escape");
        }
    }
    if (p->i != end) { free(buf); return fail(p, "bad escape at end of string"); }
    p->i++;
    *o = 0;
    *out = buf;
    *out_len = (size_t)(o - buf);
    return 0;
}

static int parse_value(parser *p, mc_json *j, int depth);

static int push(parser *p, mc_json *j, int *cap, char *key) {
    if (j->count == *cap) {
        int nc = *cap ? *cap * 2 : 4;
        mc_json *it = realloc(j->items, (size_t)nc * sizeof *it);
        if (!it) { free(key); return mc_fail(p->e, MC_E_NOMEM, "out of memory"); }
        j->items = it;
        if (j->type == MC_JSON_OBJECT) {
            char **ks = realloc(j->keys, (size_t)nc * sizeof *ks);
            if (!ks) { free(key); return mc_fail(p->e, MC_E_NOMEM, "out of memory"); }
            j->keys = ks;
        }
        *cap = nc;
    }
    memset(&j->items[j->count], 0, sizeof(mc_json));
    if (j->type == MC_JSON_OBJECT) j->keys[j->count] = key;
    j->count++;
    return 0;
}

static int parse_container(parser *p, mc_json *j, int depth) {
    int is_obj = p->s[p->i] == '{';
    char close = is_obj ? '}' : ']';
    j->type = is_obj ? MC_JSON_OBJECT : MC_JSON_ARRAY;
    p->i++;
    int cap = 0;
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == close) { p->i++; return 0; }
    for (;;) {
        char *key = NULL;
        skip_ws(p);
        if (is_obj) {
            size_t kl;
            if (p->i >= p->n || p->s[p->i] != '"') return fail(p, "expected object key");
            p->i++;
            if (parse_string(p, &key, &kl)) return MC_E_FORMAT;
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':') { free(key); return fail(p, "expected ':'"); }
            p->i++;
        }
        if (push(p, j, &cap, key)) return MC_E_NOMEM;
        if (parse_value(p, &j->items[j->count - 1], depth + 1)) return MC_E_FORMAT;
        skip_ws(p);
        if (p->i >= p->n) return fail(p, "unterminated container");
        if (p->s[p->i] == ',') { p->i++; continue; }
        if (p->s[p->i] == close) { p->i++; return 0; }
        return fail(p, "expected ',' or closing bracket");
    }
}

static int parse_number(parser *p, mc_json *j) {
    size_t st = p->i;
    if (p->s[p->i] == '-') p->i++;
    if (p->i >= p->n || !(p->s[p->i] >= '0' && p->s[p->i] <= '9')) return fail(p, "bad number");
    while (p->i < p->n && ((p->s[p->i] >= '0' && p->s[p->i] <= '9') || p->s[p->i] == '.' || p->s[p->i] == 'e' ||
                           p->s[p->i] == 'E' || p->s[p->i] == '+' || p->s[p->i] == '-'))
        p->i++;
    char tmp[64];
    size_t len = p->i - st;
    if (len >= sizeof tmp) return fail(p, "number too long");
    memcpy(tmp, p->s + st, len);
    tmp[len] = 0;
    char *endp;
    j->type = MC_JSON_NUMBER;
    j->number = strtod(tmp, &endp);
    if (*endp) { p->i = st; return fail(p, "bad number"); }
    return 0;
}

static int match_word(parser *p, const char *w) {
    size_t l = strlen(w);
    if (p->n - p->i < l || memcmp(p->s + p->i, w, l) != 0) return 0;
    p->i += l;
    return 1;
}

static int parse_value(parser *p, mc_json *j, int depth) {
    if (depth > MC_JSON_MAX_DEPTH) return fail(p, "nesting too deep");
    skip_ws(p);
    if (p->i >= p->n) return fail(p, "unexpected end of input");
    char c = p->s[p->i];
    if (c == '{' || c == '[') return parse_container(p, j, depth);
    if (c == '"') {
        p->i++;
        j->type = MC_JSON_STRING;
        return parse_string(p, &j->str, &j->len);
    }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, j);
    if (match_word(p, "true")) { j->type = MC_JSON_BOOL; j->boolean = 1; return 0; }
    if (match_word(p, "false")) { j->type = MC_JSON_BOOL; return 0; }
    if (match_word(p, "null")) { j->type = MC_JSON_NULL; return 0; }
    return fail(p, "unexpected character");
}

mc_json *mc_json_parse(const char *text, size_t len, mc_err *e) {
    parser p = {text, len, 0, e};
    mc_json *j = calloc(1, sizeof *j);
    if (!j) { mc_fail(e, MC_E_NOMEM, "out of memory"); return NULL; }
    if (parse_value(&p, j, 0) == 0) {
        skip_ws(&p);
        if (p.i == p.n) return j;
        fail(&p, "trailing characters");
    }
    mc_json_free(j);
    return NULL;
}

void mc_json_free(mc_json *j) {
    if (!j) return;
    free_value(j);
    free(j);
}

const mc_json *mc_json_get(const mc_json *obj, const char *key) {
    if (!obj || obj->type != MC_JSON_OBJECT) return NULL;
    for (int k = 0; k < obj->count; k++)
        if (strcmp(obj->keys[k], key) == 0) return &obj->items[k];
    return NULL;
}

const mc_json *mc_json_at(const mc_json *arr, int i) {
    if (!arr || arr->type != MC_JSON_ARRAY || i < 0 || i >= arr->count) return NULL;
    return &arr->items[i];
}
