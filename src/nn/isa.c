/* Run-time choice of the kernel instruction set (see isa.h). */
#include "nn/isa.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const mc_kernels mc_kernels_portable;
#if defined(__x86_64__) && defined(__GNUC__)
#define MC_HAVE_X86_KERNELS 1
extern const mc_kernels mc_kernels_avx2, mc_kernels_avx512;
#endif

static const char *const isa_names[MC_ISA_COUNT] = {"portable", "avx2", "avx512"};

const char *mc_isa_name(mc_isa isa) { return (unsigned)isa < MC_ISA_COUNT ? isa_names[isa] : "?"; }

int mc_isa_parse(const char *name) {
    for (int i = 0; i < MC_ISA_COUNT; i++)
        if (name && !strcmp(name, isa_names[i])) return i;
    return -1;
}

static const mc_kernels *table(mc_isa isa) {
#ifdef MC_HAVE_X86_KERNELS
    if (isa == MC_ISA_AVX512) return &mc_kernels_avx512;
    if (isa == MC_ISA_AVX2) return &mc_kernels_avx2;
#endif
    return isa == MC_ISA_PORTABLE ? &mc_kernels_portable : NULL;
}

int mc_isa_supported(mc_isa isa) {
    if (isa == MC_ISA_PORTABLE) return 1;
#ifdef MC_HAVE_X86_KERNELS
    __builtin_cpu_init();
    if (isa == MC_ISA_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == MC_ISA_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
#endif
    return 0;
}

mc_isa mc_isa_detect(void) {
    for (int i = MC_ISA_COUNT - 1; i > 0; i--)
        if (mc_isa_supported((mc_isa)i)) return (mc_isa)i;
    return MC_ISA_PORTABLE;
}

/* The one process-wide choice (like the CPU it describes). Racing first calls store the same
 * pointer. */
static _Atomic(const mc_kernels *) active;

const mc_kernels *mc_kernels_get(void) {
    const mc_kernels *k = atomic_load_explicit(&active, memory_order_acquire);
    if (k) return k;
    mc_isa isa = mc_isa_detect();
    const char *env = getenv("MC_ISA");
    if (env && *env) {
        int want = mc_isa_parse(env);
        if (want < 0)
            fprintf(stderr, "mobileclip: MC_ISA=%s is not one of portable, avx2, avx512; using %s\n", env,
                    mc_isa_name(isa));
        else if (!mc_isa_supported((mc_isa)want))
            fprintf(stderr, "mobileclip: MC_ISA=%s is not supported by this CPU or build; using %s\n", env,
                    mc_isa_name(isa));
        else
            isa = (mc_isa)want;
    }
    k = table(isa);
    atomic_store_explicit(&active, k, memory_order_release);
    return k;
}

int mc_isa_force(mc_isa isa, mc_err *e) {
    if ((unsigned)isa >= MC_ISA_COUNT || !mc_isa_supported(isa))
        return mc_fail(e, MC_E_UNSUPPORTED, "instruction set %s is not supported by this CPU or build",
                       mc_isa_name(isa));
    atomic_store_explicit(&active, table(isa), memory_order_release);
    return 0;
}

static _Thread_local uint64_t macs; /* statistics only: never changes a result */

void mc_macs_add(uint64_t n) { macs += n; }
uint64_t mc_macs_get(void) { return macs; }
