/* json.h - a small strict JSON reader (RFC 8259) producing a DOM.
 *
 * Used for safetensors headers, vocab files, test expectations and configs.
 * Strings are decoded to UTF-8 (\uXXXX with surrogate pairs); nesting is limited to
 * MC_JSON_MAX_DEPTH so hostile input cannot exhaust the stack.
 */
#ifndef MC_IO_JSON_H
#define MC_IO_JSON_H

#include <stddef.h>

#include "core/error.h"

#define MC_JSON_MAX_DEPTH 128

typedef enum mc_json_type {
    MC_JSON_NULL, MC_JSON_BOOL, MC_JSON_NUMBER, MC_JSON_STRING, MC_JSON_ARRAY, MC_JSON_OBJECT
} mc_json_type;

typedef struct mc_json {
    mc_json_type type;
    int boolean;
    double number;
    char *str;               /* STRING: UTF-8, NUL-terminated (may contain NUL: use len) */
    size_t len;
    int count;               /* ARRAY/OBJECT: number of items */
    struct mc_json *items;   /* ARRAY/OBJECT values */
    char **keys;             /* OBJECT keys (NUL-terminated) */
} mc_json;

/* Parses text[0..len). Returns NULL with a reason (byte offset included) on error. */
mc_json *mc_json_parse(const char *text, size_t len, mc_err *e);
void mc_json_free(mc_json *j);

const mc_json *mc_json_get(const mc_json *obj, const char *key);  /* NULL if absent */
const mc_json *mc_json_at(const mc_json *arr, int i);             /* NULL if out of range */

#endif
