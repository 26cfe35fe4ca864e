/* mobileclip --version: the version, the compiler, the instruction sets the build was allowed
 * to use (the compiler's target macros) and those this CPU has (__builtin_cpu_supports), with
 * a warning when the binary needs one the CPU lacks. */
#include <stdio.h>
#include <string.h>

#include "tools/cli.h"

#ifndef MC_VERSION
#define MC_VERSION "unknown"
#endif

typedef struct { const char *name; int built; } feature;

/* What the compiler targeted: the predefined macros of -march/-m flags. */
static const feature built_features[] = {
#if defined(__x86_64__) || defined(__i386__)
    {"sse2", 1},
#ifdef __SSE3__
    {"sse3", 1},
#endif
#ifdef __SSSE3__
    {"ssse3", 1},
#endif
#ifdef __SSE4_1__
    {"sse4.1", 1},
#endif
#ifdef __SSE4_2__
    {"sse4.2", 1},
#endif
#ifdef __AVX__
    {"avx", 1},
#endif
#ifdef __AVX2__
    {"avx2", 1},
#endif
#ifdef __FMA__
    {"fma", 1},
#endif
#ifdef __F16C__
    {"f16c", 1},
#endif
#ifdef __AVX512F__
    {"avx512f", 1},
#endif
#ifdef __AVX512BW__
    {"avx512bw", 1},
#endif
#ifdef __AVX512VL__
    {"avx512vl", 1},
#endif
#ifdef __AVX512VNNI__
    {"avx512vnni", 1},
#endif
#ifdef __AVX512BF16__
    {"avx512bf16", 1},
#endif
#endif
#if defined(__ARM_NEON)
    {"neon", 1},
#endif
    {NULL, 0},
};

#if defined(__x86_64__) || defined(__i386__)
/* __builtin_cpu_supports needs a string literal, hence one line per feature: > 0 present, 0 absent,
 * -1 unknown to this compiler. */
static int cpu_has(const char *f) {
    if (!strcmp(f, "sse2")) return __builtin_cpu_supports("sse2");
    if (!strcmp(f, "sse3")) return __builtin_cpu_supports("sse3");
    if (!strcmp(f, "ssse3")) return __builtin_cpu_supports("ssse3");
    if (!strcmp(f, "sse4.1")) return __builtin_cpu_supports("sse4.1");
    if (!strcmp(f, "sse4.2")) return __builtin_cpu_supports("sse4.2");
    if (!strcmp(f, "avx")) return __builtin_cpu_supports("avx");
    if (!strcmp(f, "avx2")) return __builtin_cpu_supports("avx2");
    if (!strcmp(f, "fma")) return __builtin_cpu_supports("fma");
#if !defined(__clang__) /* clang 14 cannot test f16c */
    if (!strcmp(f, "f16c")) return __builtin_cpu_supports("f16c");
#endif
    if (!strcmp(f, "avx512f")) return __builtin_cpu_supports("avx512f");
    if (!strcmp(f, "avx512bw")) return __builtin_cpu_supports("avx512bw");
    if (!strcmp(f, "avx512vl")) return __builtin_cpu_supports("avx512vl");
    if (!strcmp(f, "avx512vnni")) return __builtin_cpu_supports("avx512vnni");
    if (!strcmp(f, "avx512bf16")) return __builtin_cpu_supports("avx512bf16");
    return -1; /* this compiler cannot tell */
}
static const char *const cpu_features[] = {"sse2", "sse3", "ssse3", "sse4.1", "sse4.2", "avx", "avx2", "fma", "f16c",
                                           "avx512f", "avx512bw", "avx512vl", "avx512vnni", "avx512bf16", NULL};
#endif

int mc_cmd_version(FILE *f) {
    fprintf(f, "mobileclip %s\n", MC_VERSION);
#if defined(__clang__)
    fprintf(f, "compiler: clang %d.%d.%d, C%ld\n", __clang_major__, __clang_minor__, __clang_patchlevel__,
            (long)__STDC_VERSION__ / 100 % 100);
#elif defined(__GNUC__)
    fprintf(f, "compiler: gcc %d.%d.%d, C%ld\n", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__,
            (long)__STDC_VERSION__ / 100 % 100);
#endif
    fprintf(f, "built for:");
    for (const feature *b = built_features; b->name; b++) fprintf(f, " %s", b->name);
    fprintf(f, "%s\n", built_features[0].name ? "" : " (generic)");
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    fprintf(f, "this cpu:");
    for (const char *const *c = cpu_features; *c; c++)
        if (cpu_has(*c) > 0) fprintf(f, " %s", *c);
    fputc('\n', f);
    for (const feature *b = built_features; b->name; b++)
        if (cpu_has(b->name) == 0) fprintf(f, "warning: this binary uses %s, which this CPU lacks\n", b->name);
#endif
    return 0;
}
