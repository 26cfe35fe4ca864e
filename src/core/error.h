/* error.h - failure reasons as values.
 *
 * Every fallible internal function returns 0 on success or a negative MC_E_* code,
 * and writes a one-line human-readable reason (naming the file and the problem)
 * into a caller-owned mc_err. No global state: each thread/context owns its mc_err.
 */
#ifndef MC_CORE_ERROR_H
#define MC_CORE_ERROR_H

#include <stddef.h>

enum {
    MC_OK = 0,
    MC_E_IO = -1,        /* open/read/mmap failed, missing file, directory */
    MC_E_FORMAT = -2,    /* corrupt or unsupported file contents */
    MC_E_NOMEM = -3,     /* allocation failed or size absurd */
    MC_E_MODEL = -4,     /* checkpoint does not fit the architecture */
    MC_E_ARG = -5,       /* invalid argument from the caller */
    MC_E_UNSUPPORTED = -6,
};

typedef struct mc_err {
    int code;
    char msg[512];
} mc_err;

/* Records code and a printf-style reason in e (if non-NULL); returns code. */
int mc_fail(mc_err *e, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prefixes the existing reason with "prefix: " (e.g. a file name). Returns e->code. */
int mc_err_prefix(mc_err *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static inline void mc_err_clear(mc_err *e) { if (e) { e->code = 0; e->msg[0] = 0; } }

#endif
