/* pickle.h - a safe interpreter for the pickle subset that torch.save emits.
 *
 * Nothing is ever imported or called: the result is an inert object graph. Globals stay
 * names (module, name); REDUCE / NEWOBJ / BUILD become MC_PK_CALL nodes (callable, args,
 * state) that the caller interprets, except that the dict constructors
 * collections.OrderedDict, collections.defaultdict and builtins.dict yield real dicts so
 * that SETITEMS can fill them. BINPERSID yields MC_PK_PERSID nodes (the torch storage
 * references). Opcodes of protocols 2..5 are accepted (no text protocol-0 opcodes and no
 * out-of-band buffers); anything else is an error naming the opcode and its offset.
 *
 * Strings and bytes point into the input buffer (not copied, not NUL-terminated), so the
 * input must outlive the graph. Objects can be shared (memo references) and even form
 * cycles (a list appended to itself): walkers must bound their depth and total work.
 *
 * Hostile input: the interpreter is iterative (no recursion), every object costs at least
 * one input byte (memory stays proportional to the input, ~150 bytes per byte at worst),
 * and objects, stack depth and memo indices are capped at 16M each (a real state dict
 * needs ~30 objects per tensor).
 */
#ifndef MC_IO_PICKLE_H
#define MC_IO_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef enum mc_pk_type {
    MC_PK_NONE,
    MC_PK_BOOL,     /* i = 0/1 */
    MC_PK_INT,      /* i; integers beyond int64 become MC_PK_BIGINT */
    MC_PK_BIGINT,   /* too large for int64: s/len = the little-endian two's complement bytes */
    MC_PK_FLOAT,    /* f */
    MC_PK_STR,      /* s, len: UTF-8 as stored */
    MC_PK_BYTES,    /* s, len */
    MC_PK_TUPLE,    /* items[count] */
    MC_PK_LIST,     /* items[count] */
    MC_PK_DICT,     /* items[2*k] = key, items[2*k+1] = value; count = number of pairs */
    MC_PK_GLOBAL,   /* s/len = module, s2/len2 = name */
    MC_PK_CALL,     /* REDUCE/NEWOBJ: func, args (a tuple or anything); state set by BUILD (or NULL) */
    MC_PK_PERSID,   /* persistent id: pid */
} mc_pk_type;

typedef struct mc_pk_obj mc_pk_obj;
struct mc_pk_obj {
    mc_pk_type type;
    int64_t i;
    double f;
    const char *s, *s2;
    size_t len, len2;
    mc_pk_obj **items;
    int count, cap;
    mc_pk_obj *func, *args, *state; /* CALL; PERSID uses args for the pid */
};

typedef struct mc_pk_chunk mc_pk_chunk;

typedef struct mc_pickle {
    mc_pk_obj *root;     /* the object returned by STOP */
    size_t end;          /* offset just past STOP (pickles can be concatenated) */
    size_t nobjects;
    mc_pk_obj **persids; /* every MC_PK_PERSID node, in creation order */
    int npersids;
    mc_pk_chunk *chunks; /* owned object storage */
} mc_pickle;

/* Runs the pickle at buf[0..len) up to its STOP. `name` is used in messages
 * ("<name>: pickle: ... at offset N"). On failure p is left empty. */
int mc_pickle_parse(const void *buf, size_t len, const char *name, mc_pickle *p, mc_err *e);
void mc_pickle_free(mc_pickle *p);

/* Helpers for walkers. */
int mc_pk_is_str(const mc_pk_obj *o, const char *s);                      /* STR equal to s */
int mc_pk_is_global(const mc_pk_obj *o, const char *module, const char *name);
const mc_pk_obj *mc_pk_dict_get(const mc_pk_obj *dict, const char *key);   /* first STR key match */

#endif
