/* strlist.h - a growable list of owned NUL-terminated strings (shard lists, captions). */
#ifndef MC_CORE_STRLIST_H
#define MC_CORE_STRLIST_H

#include <stddef.h>

#include "core/error.h"

typedef struct mc_strlist {
    char **items;
    int count, cap;
    size_t bytes;            /* sum of the string lengths */
} mc_strlist;

static inline void mc_strlist_init(mc_strlist *l) { l->items = NULL; l->count = l->cap = 0; l->bytes = 0; }
void mc_strlist_free(mc_strlist *l);
/* Appends a copy of s[0..n) (NUL added); 0 or MC_E_NOMEM. */
int mc_strlist_push(mc_strlist *l, const char *s, size_t n, mc_err *e);
/* Appends and takes ownership of s (malloc'd, NUL-terminated); frees it on failure. */
int mc_strlist_take(mc_strlist *l, char *s, mc_err *e);
/* Sorts by strcmp and removes duplicates. */
void mc_strlist_sort_unique(mc_strlist *l);

#endif
