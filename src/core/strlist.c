#include "core/strlist.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void mc_strlist_free(mc_strlist *l) {
    for (int i = 0; i < l->count; i++) free(l->items[i]);
    free(l->items);
    mc_strlist_init(l);
}

int mc_strlist_take(mc_strlist *l, char *s, mc_err *e) {
    if (l->count == l->cap) {
        int c = l->cap ? l->cap * 2 : 8;
        char **p = c > 0 && (size_t)c < SIZE_MAX / sizeof *p ? realloc(l->items, (size_t)c * sizeof *p) : NULL;
        if (!p) {
            free(s);
            return mc_fail(e, MC_E_NOMEM, "out of memory (string list)");
        }
        l->items = p;
        l->cap = c;
    }
    l->items[l->count++] = s;
    l->bytes += strlen(s);
    return 0;
}

int mc_strlist_push(mc_strlist *l, const char *s, size_t n, mc_err *e) {
    char *c = malloc(n + 1);
    if (!c) return mc_fail(e, MC_E_NOMEM, "out of memory (string list)");
    memcpy(c, s, n);
    c[n] = 0;
    return mc_strlist_take(l, c, e);
}

static int by_strcmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void mc_strlist_sort_unique(mc_strlist *l) {
    if (l->count < 2) return;
    qsort(l->items, (size_t)l->count, sizeof *l->items, by_strcmp);
    int k = 1;
    for (int i = 1; i < l->count; i++) {
        if (strcmp(l->items[i], l->items[k - 1])) l->items[k++] = l->items[i];
        else {
            l->bytes -= strlen(l->items[i]);
            free(l->items[i]);
        }
    }
    l->count = k;
}
