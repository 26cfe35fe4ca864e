#include "io/pickle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_OBJECTS 1024
/* Real state dicts need ~30 objects and a few stack slots per tensor; these bound what a
 * hostile pickle can make us allocate (about 1.7 GB of objects, 128 MB of stack or memo). */
#define MAX_OBJECTS ((size_t)16 << 20)
#define MAX_STACK ((size_t)16 << 20)

struct mc_pk_chunk {
    mc_pk_chunk *next;
    int used;
    mc_pk_obj objs[CHUNK_OBJECTS];
};

typedef struct vm {
    const unsigned char *b;
    size_t len, pos, op_pos;
    const char *name;
    mc_pickle *p;
    mc_err *e;
    mc_pk_obj **stack;
    size_t sp, scap;
    size_t *marks;       /* stack heights saved by MARK */
    size_t nmarks, mcap;
    mc_pk_obj **memo;    /* index -> object (NULL = unset) */
    size_t memo_cap, memo_count;
    int persid_cap;
} vm;

static int fail(vm *v, const char *what) {
    return mc_fail(v->e, MC_E_FORMAT, "%s: pickle: %s at offset %zu", v->name, what, v->op_pos);
}
static int oom(vm *v) {
    if (v->p->nobjects >= MAX_OBJECTS || v->sp >= MAX_STACK)
        return mc_fail(v->e, MC_E_FORMAT, "%s: pickle: too many objects (limit %zu) at offset %zu", v->name, MAX_OBJECTS,
                       v->op_pos);
    return mc_fail(v->e, MC_E_NOMEM, "%s: pickle: out of memory", v->name);
}

static mc_pk_obj *new_obj(vm *v, mc_pk_type t) {
    mc_pickle *p = v->p;
    if (p->nobjects >= MAX_OBJECTS) return NULL;
    if (!p->chunks || p->chunks->used == CHUNK_OBJECTS) {
        mc_pk_chunk *c = malloc(sizeof *c);
        if (!c) return NULL;
        c->next = p->chunks;
        c->used = 0;
        p->chunks = c;
    }
    mc_pk_obj *o = &p->chunks->objs[p->chunks->used++];
    memset(o, 0, sizeof *o);
    o->type = t;
    p->nobjects++;
    return o;
}

static int push(vm *v, mc_pk_obj *o) {
    if (!o || v->sp >= MAX_STACK) return oom(v);
    if (v->sp == v->scap) {
        size_t cap = v->scap ? v->scap * 2 : 256;
        mc_pk_obj **s = realloc(v->stack, cap * sizeof *s);
        if (!s) return oom(v);
        v->stack = s;
        v->scap = cap;
    }
    v->stack[v->sp++] = o;
    return 0;
}

static size_t base(const vm *v) { return v->nmarks ? v->marks[v->nmarks - 1] : 0; }

static mc_pk_obj *pop(vm *v) { return v->sp > base(v) ? v->stack[--v->sp] : NULL; }
static mc_pk_obj *top(vm *v) { return v->sp > base(v) ? v->stack[v->sp - 1] : NULL; }

static int add_item(mc_pk_obj *o, mc_pk_obj *it) {
    if (o->count == o->cap) {
        if (o->cap > (1 << 29)) return -1;
        int cap = o->cap ? o->cap * 2 : 4;
        mc_pk_obj **n = realloc(o->items, (size_t)cap * sizeof *n);
        if (!n) return -1;
        o->items = n;
        o->cap = cap;
    }
    o->items[o->count++] = it;
    return 0;
}

/* A dict stores its pairs flat: count counts pairs, items holds 2*count entries. */
static int dict_set(mc_pk_obj *d, mc_pk_obj *k, mc_pk_obj *val) {
    int pairs = d->count;
    d->count = 2 * pairs;
    int r = add_item(d, k);
    if (!r) r = add_item(d, val);
    d->count = r ? 2 * pairs : d->count;
    d->count /= 2;
    return r;
}

static int need(vm *v, size_t n) { return n <= v->len - v->pos ? 0 : -1; }

static uint64_t rdle(const unsigned char *p, int n) {
    uint64_t x = 0;
    for (int i = n - 1; i >= 0; i--) x = x << 8 | p[i];
    return x;
}

/* Pops everything above the last mark into a new container of type t. */
static mc_pk_obj *pop_mark_items(vm *v, mc_pk_type t, int *err) {
    *err = 0;
    if (!v->nmarks) { *err = fail(v, "no MARK on the stack"); return NULL; }
    size_t b = v->marks[--v->nmarks];
    mc_pk_obj *o = new_obj(v, t);
    if (!o) { *err = oom(v); return NULL; }
    size_t n = v->sp - b;
    if (n) {
        if (n > (1u << 30)) { *err = fail(v, "too many items"); return NULL; }
        o->items = malloc(n * sizeof *o->items);
        if (!o->items) { *err = oom(v); return NULL; }
        memcpy(o->items, v->stack + b, n * sizeof *o->items);
        o->count = o->cap = (int)n;
    }
    v->sp = b;
    return o;
}

static mc_pk_obj *make_tuple(vm *v, int n, int *err) {
    *err = 0;
    if (v->sp < base(v) + (size_t)n) { *err = fail(v, "stack underflow"); return NULL; }
    mc_pk_obj *o = new_obj(v, MC_PK_TUPLE);
    if (!o) { *err = oom(v); return NULL; }
    if (n) {
        o->items = malloc((size_t)n * sizeof *o->items);
        if (!o->items) { *err = oom(v); return NULL; }
        memcpy(o->items, v->stack + v->sp - n, (size_t)n * sizeof *o->items);
        o->count = o->cap = n;
        v->sp -= (size_t)n;
    }
    return o;
}

static int is_dict_ctor(const mc_pk_obj *f) {
    return mc_pk_is_global(f, "collections", "OrderedDict") || mc_pk_is_global(f, "collections", "defaultdict") ||
           mc_pk_is_global(f, "builtins", "dict") || mc_pk_is_global(f, "__builtin__", "dict");
}

/* REDUCE / NEWOBJ: dict constructors give dicts (filled from a list of pairs, as in
 * OrderedDict([(k, v), ...])); every other call stays an inert CALL node. */
static mc_pk_obj *make_call(vm *v, mc_pk_obj *func, mc_pk_obj *args) {
    if (is_dict_ctor(func) && args->type == MC_PK_TUPLE) {
        const mc_pk_obj *src = NULL;
        if (args->count == 1 && args->items[0]->type == MC_PK_LIST) src = args->items[0];
        else if (mc_pk_is_global(func, "collections", "defaultdict") && args->count <= 1) src = NULL;
        else if (args->count != 0) goto opaque;
        if (src)
            for (int i = 0; i < src->count; i++)
                if (src->items[i]->type != MC_PK_TUPLE || src->items[i]->count != 2) goto opaque;
        mc_pk_obj *d = new_obj(v, MC_PK_DICT);
        if (!d) return NULL;
        for (int i = 0; src && i < src->count; i++)
            if (dict_set(d, src->items[i]->items[0], src->items[i]->items[1])) return NULL;
        return d;
    }
opaque:;
    mc_pk_obj *o = new_obj(v, MC_PK_CALL);
    if (!o) return NULL;
    o->func = func;
    o->args = args;
    return o;
}

static int memo_put(vm *v, uint64_t idx, mc_pk_obj *o) {
    if (!o) return fail(v, "memo store from an empty stack");
    /* Picklers number memo entries 0, 1, 2, ...; each takes at least two input bytes. */
    if (idx >= v->len || idx >= MAX_STACK) return fail(v, "memo index out of range");
    if (idx >= v->memo_cap) {
        size_t cap = v->memo_cap ? v->memo_cap : 64;
        while (cap <= idx) cap *= 2;
        mc_pk_obj **m = realloc(v->memo, cap * sizeof *m);
        if (!m) return oom(v);
        memset(m + v->memo_cap, 0, (cap - v->memo_cap) * sizeof *m);
        v->memo = m;
        v->memo_cap = cap;
    }
    if (!v->memo[idx]) v->memo_count++;
    v->memo[idx] = o;
    return 0;
}

static int memo_get(vm *v, uint64_t idx) {
    if (idx >= v->memo_cap || !v->memo[idx]) return fail(v, "memo key not found");
    return push(v, v->memo[idx]);
}

static int push_str(vm *v, mc_pk_type t, uint64_t n) {
    if (need(v, n)) return fail(v, "string or bytes run past the end (truncated?)");
    mc_pk_obj *o = new_obj(v, t);
    if (!o) return oom(v);
    o->s = (const char *)v->b + v->pos;
    o->len = (size_t)n;
    v->pos += (size_t)n;
    return push(v, o);
}

static int push_int(vm *v, int64_t x) {
    mc_pk_obj *o = new_obj(v, MC_PK_INT);
    if (!o) return oom(v);
    o->i = x;
    return push(v, o);
}

/* LONG1/LONG4: little-endian two's complement of n bytes. */
static int push_long(vm *v, uint64_t n) {
    if (need(v, n)) return fail(v, "long integer runs past the end (truncated?)");
    const unsigned char *p = v->b + v->pos;
    v->pos += (size_t)n;
    if (n == 0) return push_int(v, 0);
    int neg = p[n - 1] & 0x80;
    /* bytes above the 8th must be pure sign extension */
    int big = n > 8 && ((p[7] & 0x80) != 0) != (neg != 0);
    for (uint64_t k = 8; k < n && !big; k++) big = p[k] != (neg ? 0xff : 0x00);
    if (big) {
        mc_pk_obj *o = new_obj(v, MC_PK_BIGINT);
        if (!o) return oom(v);
        o->s = (const char *)p;
        o->len = (size_t)n;
        return push(v, o);
    }
    int k = n > 8 ? 8 : (int)n;
    uint64_t x = rdle(p, k);
    if (k < 8 && neg) x |= ~(uint64_t)0 << (8 * k);
    int64_t s;
    memcpy(&s, &x, 8);
    return push_int(v, s);
}

static int run(vm *v) {
    for (;;) {
        if (v->pos >= v->len) return fail(v, "truncated (no STOP opcode)");
        v->op_pos = v->pos;
        unsigned op = v->b[v->pos++];
        const unsigned char *a = v->b + v->pos;
        mc_pk_obj *o, *x, *y;
        int err = 0;
        uint64_t n;
        switch (op) {
        case 0x80: /* PROTO */
            if (need(v, 1)) return fail(v, "truncated");
            if (a[0] > 5) return fail(v, "unsupported pickle protocol");
            v->pos++;
            break;
        case 0x95: /* FRAME: framing is transparent */
            if (need(v, 8)) return fail(v, "truncated");
            v->pos += 8;
            break;
        case '.': /* STOP */
            if (!(o = pop(v))) return fail(v, "STOP with an empty stack");
            v->p->root = o;
            v->p->end = v->pos;
            return 0;
        case '(': /* MARK */
            if (v->nmarks >= MAX_STACK) return fail(v, "too many nested MARKs");
            if (v->nmarks == v->mcap) {
                size_t cap = v->mcap ? v->mcap * 2 : 64;
                size_t *m = realloc(v->marks, cap * sizeof *m);
                if (!m) return oom(v);
                v->marks = m;
                v->mcap = cap;
            }
            v->marks[v->nmarks++] = v->sp;
            break;
        case '0': /* POP */
            if (v->sp > base(v)) v->sp--;
            else if (v->nmarks) v->nmarks--; /* pops a mark, as CPython does */
            else return fail(v, "stack underflow");
            break;
        case '1': /* POP_MARK */
            if (!v->nmarks) return fail(v, "no MARK on the stack");
            v->sp = v->marks[--v->nmarks];
            break;
        case '2': /* DUP */
            if (!(o = top(v))) return fail(v, "stack underflow");
            if ((err = push(v, o))) return err;
            break;
        case 'N': if ((err = push(v, new_obj(v, MC_PK_NONE)))) return err; break;
        case 0x88: case 0x89: /* NEWTRUE, NEWFALSE */
            if (!(o = new_obj(v, MC_PK_BOOL))) return oom(v);
            o->i = op == 0x88;
            if ((err = push(v, o))) return err;
            break;
        case 'J': /* BININT */
            if (need(v, 4)) return fail(v, "truncated");
            v->pos += 4;
            if ((err = push_int(v, (int32_t)(uint32_t)rdle(a, 4)))) return err;
            break;
        case 'K': /* BININT1 */
            if (need(v, 1)) return fail(v, "truncated");
            v->pos += 1;
            if ((err = push_int(v, a[0]))) return err;
            break;
        case 'M': /* BININT2 */
            if (need(v, 2)) return fail(v, "truncated");
            v->pos += 2;
            if ((err = push_int(v, (int64_t)rdle(a, 2)))) return err;
            break;
        case 0x8a: /* LONG1 */
            if (need(v, 1)) return fail(v, "truncated");
            v->pos += 1;
            if ((err = push_long(v, a[0]))) return err;
            break;
        case 0x8b: /* LONG4 */
            if (need(v, 4)) return fail(v, "truncated");
            v->pos += 4;
            n = rdle(a, 4);
            if (n & 0x80000000u) return fail(v, "negative LONG4 length");
            if ((err = push_long(v, n))) return err;
            break;
        case 'G': { /* BINFLOAT: big-endian IEEE double */
            if (need(v, 8)) return fail(v, "truncated");
            uint64_t bits = 0;
            for (int k = 0; k < 8; k++) bits = bits << 8 | a[k];
            v->pos += 8;
            if (!(o = new_obj(v, MC_PK_FLOAT))) return oom(v);
            memcpy(&o->f, &bits, 8);
            if ((err = push(v, o))) return err;
            break;
        }
        case 'X': case 'T': case 'B': /* BINUNICODE, BINSTRING, BINBYTES: u32 length */
            if (need(v, 4)) return fail(v, "truncated");
            v->pos += 4;
            n = rdle(a, 4);
            if (op == 'T' && (n & 0x80000000u)) return fail(v, "negative BINSTRING length");
            if ((err = push_str(v, op == 'B' ? MC_PK_BYTES : MC_PK_STR, n))) return err;
            break;
        case 0x8c: case 'U': case 'C': /* SHORT_BINUNICODE, SHORT_BINSTRING, SHORT_BINBYTES: u8 length */
            if (need(v, 1)) return fail(v, "truncated");
            v->pos += 1;
            if ((err = push_str(v, op == 'C' ? MC_PK_BYTES : MC_PK_STR, a[0]))) return err;
            break;
        case 0x8d: case 0x8e: case 0x96: /* BINUNICODE8, BINBYTES8, BYTEARRAY8: u64 length */
            if (need(v, 8)) return fail(v, "truncated");
            v->pos += 8;
            if ((err = push_str(v, op == 0x8d ? MC_PK_STR : MC_PK_BYTES, rdle(a, 8)))) return err;
            break;
        case '}': if ((err = push(v, new_obj(v, MC_PK_DICT)))) return err; break;
        case ']': case 0x8f: /* EMPTY_LIST, EMPTY_SET (sets are kept as lists) */
            if ((err = push(v, new_obj(v, MC_PK_LIST)))) return err;
            break;
        case ')': if ((err = push(v, new_obj(v, MC_PK_TUPLE)))) return err; break;
        case 't': case 'l': case 0x91: /* TUPLE, LIST, FROZENSET */
            if (!(o = pop_mark_items(v, op == 't' ? MC_PK_TUPLE : MC_PK_LIST, &err))) return err;
            if ((err = push(v, o))) return err;
            break;
        case 0x85: case 0x86: case 0x87: /* TUPLE1..3 */
            if (!(o = make_tuple(v, (int)(op - 0x84), &err))) return err;
            if ((err = push(v, o))) return err;
            break;
        case 'd': { /* DICT */
            if (!(x = pop_mark_items(v, MC_PK_LIST, &err))) return err;
            if (x->count % 2) return fail(v, "odd number of items for DICT");
            if (!(o = new_obj(v, MC_PK_DICT))) return oom(v);
            for (int k = 0; k + 1 < x->count; k += 2)
                if (dict_set(o, x->items[k], x->items[k + 1])) return oom(v);
            if ((err = push(v, o))) return err;
            break;
        }
        case 'a': /* APPEND */
            y = pop(v);
            o = top(v);
            if (!y || !o) return fail(v, "stack underflow");
            if (o->type == MC_PK_LIST) { if (add_item(o, y)) return oom(v); }
            else if (o->type != MC_PK_CALL) return fail(v, "APPEND to a non-list");
            break;
        case 'e': case 0x90: /* APPENDS, ADDITEMS */
            if (!(x = pop_mark_items(v, MC_PK_LIST, &err))) return err;
            if (!(o = top(v))) return fail(v, "stack underflow");
            if (o->type == MC_PK_LIST) {
                for (int k = 0; k < x->count; k++)
                    if (add_item(o, x->items[k])) return oom(v);
            } else if (o->type != MC_PK_CALL) {
                return fail(v, "APPENDS to a non-list");
            }
            break;
        case 's': /* SETITEM */
            y = pop(v);
            x = pop(v);
            o = top(v);
            if (!x || !y || !o) return fail(v, "stack underflow");
            if (o->type == MC_PK_DICT) { if (dict_set(o, x, y)) return oom(v); }
            else if (o->type != MC_PK_CALL) return fail(v, "SETITEM on a non-dict");
            break;
        case 'u': /* SETITEMS */
            if (!(x = pop_mark_items(v, MC_PK_LIST, &err))) return err;
            if (!(o = top(v))) return fail(v, "stack underflow");
            if (x->count % 2) return fail(v, "odd number of items for SETITEMS");
            if (o->type == MC_PK_DICT) {
                for (int k = 0; k + 1 < x->count; k += 2)
                    if (dict_set(o, x->items[k], x->items[k + 1])) return oom(v);
            } else if (o->type != MC_PK_CALL) {
                return fail(v, "SETITEMS on a non-dict");
            }
            break;
        case 'c': { /* GLOBAL "module\nname\n" */
            const unsigned char *nl1 = memchr(a, '\n', v->len - v->pos);
            const unsigned char *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(v->b + v->len - nl1 - 1)) : NULL;
            if (!nl2) return fail(v, "truncated GLOBAL");
            if (!(o = new_obj(v, MC_PK_GLOBAL))) return oom(v);
            o->s = (const char *)a;
            o->len = (size_t)(nl1 - a);
            o->s2 = (const char *)nl1 + 1;
            o->len2 = (size_t)(nl2 - nl1 - 1);
            v->pos = (size_t)(nl2 + 1 - v->b);
            if ((err = push(v, o))) return err;
            break;
        }
        case 0x93: /* STACK_GLOBAL */
            y = pop(v);
            x = pop(v);
            if (!x || !y) return fail(v, "stack underflow");
            if (x->type != MC_PK_STR || y->type != MC_PK_STR) return fail(v, "STACK_GLOBAL needs two strings");
            if (!(o = new_obj(v, MC_PK_GLOBAL))) return oom(v);
            o->s = x->s;
            o->len = x->len;
            o->s2 = y->s;
            o->len2 = y->len;
            if ((err = push(v, o))) return err;
            break;
        case 'R': case 0x81: /* REDUCE (func, args), NEWOBJ (cls, args) */
            y = pop(v);
            x = pop(v);
            if (!x || !y) return fail(v, "stack underflow");
            if (!(o = make_call(v, x, y))) return oom(v);
            if ((err = push(v, o))) return err;
            break;
        case 0x92: /* NEWOBJ_EX (cls, args, kwargs) */
            pop(v);
            y = pop(v);
            x = pop(v);
            if (!x || !y) return fail(v, "stack underflow");
            if (!(o = make_call(v, x, y))) return oom(v);
            if ((err = push(v, o))) return err;
            break;
        case 'b': /* BUILD: obj.__setstate__(state); only CALL nodes keep it */
            y = pop(v);
            o = top(v);
            if (!y || !o) return fail(v, "stack underflow");
            if (o->type == MC_PK_CALL) o->state = y;
            break;
        case 'Q': /* BINPERSID */
            if (!(x = pop(v))) return fail(v, "stack underflow");
            if (!(o = new_obj(v, MC_PK_PERSID))) return oom(v);
            o->args = x;
            if (v->p->npersids == v->persid_cap) {
                int cap = v->persid_cap ? v->persid_cap * 2 : 64;
                mc_pk_obj **l = realloc(v->p->persids, (size_t)cap * sizeof *l);
                if (!l) return oom(v);
                v->p->persids = l;
                v->persid_cap = cap;
            }
            v->p->persids[v->p->npersids++] = o;
            if ((err = push(v, o))) return err;
            break;
        case 'q': /* BINPUT */
            if (need(v, 1)) return fail(v, "truncated");
            v->pos += 1;
            if ((err = memo_put(v, a[0], top(v)))) return err;
            break;
        case 'r': /* LONG_BINPUT */
            if (need(v, 4)) return fail(v, "truncated");
            v->pos += 4;
            if ((err = memo_put(v, rdle(a, 4), top(v)))) return err;
            break;
        case 0x94: /* MEMOIZE */
            if ((err = memo_put(v, v->memo_count, top(v)))) return err;
            break;
        case 'h': /* BINGET */
            if (need(v, 1)) return fail(v, "truncated");
            v->pos += 1;
            if ((err = memo_get(v, a[0]))) return err;
            break;
        case 'j': /* LONG_BINGET */
            if (need(v, 4)) return fail(v, "truncated");
            v->pos += 4;
            if ((err = memo_get(v, rdle(a, 4)))) return err;
            break;
        default: {
            char d[64];
            snprintf(d, sizeof d, "unsupported opcode 0x%02x", op);
            return fail(v, d);
        }
        }
    }
}

int mc_pickle_parse(const void *buf, size_t len, const char *name, mc_pickle *p, mc_err *e) {
    memset(p, 0, sizeof *p);
    vm v = {.b = buf, .len = len, .name = name, .p = p, .e = e};
    int r = run(&v);
    free(v.stack);
    free(v.marks);
    free(v.memo);
    if (r) mc_pickle_free(p);
    return r;
}

void mc_pickle_free(mc_pickle *p) {
    if (!p) return;
    mc_pk_chunk *c = p->chunks;
    while (c) {
        mc_pk_chunk *next = c->next;
        for (int i = 0; i < c->used; i++) free(c->objs[i].items);
        free(c);
        c = next;
    }
    free(p->persids);
    memset(p, 0, sizeof *p);
}

int mc_pk_is_str(const mc_pk_obj *o, const char *s) {
    size_t n = strlen(s);
    return o && o->type == MC_PK_STR && o->len == n && memcmp(o->s, s, n) == 0;
}

int mc_pk_is_global(const mc_pk_obj *o, const char *module, const char *name) {
    size_t a = strlen(module), b = strlen(name);
    return o && o->type == MC_PK_GLOBAL && o->len == a && o->len2 == b && memcmp(o->s, module, a) == 0 &&
           memcmp(o->s2, name, b) == 0;
}

const mc_pk_obj *mc_pk_dict_get(const mc_pk_obj *d, const char *key) {
    if (!d || d->type != MC_PK_DICT) return NULL;
    for (int k = 0; k < d->count; k++)
        if (mc_pk_is_str(d->items[2 * k], key)) return d->items[2 * k + 1];
    return NULL;
}
