#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int mc_fail(mc_err *e, int code, const char *fmt, ...) {
    if (!e) return code;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

int mc_err_prefix(mc_err *e, const char *fmt, ...) {
    if (!e) return MC_E_ARG;
    char prefix[256], old[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    size_t k = strlen(prefix);
    if (k > sizeof e->msg - 3) k = sizeof e->msg - 3;
    memcpy(e->msg, prefix, k);
    e->msg[k] = ':';
    e->msg[k + 1] = ' ';
    size_t rest = strnlen(old, sizeof old - 1);
    if (rest > sizeof e->msg - k - 3) rest = sizeof e->msg - k - 3;
    memcpy(e->msg + k + 2, old, rest);
    e->msg[k + 2 + rest] = 0;
    return e->code;
}
