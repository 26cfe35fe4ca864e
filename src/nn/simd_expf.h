/* simd_expf.h - libmvec's vector expf for `omp simd` loops. glibc >= 2.35 on x86-64 ships
 * 4/8/16-lane variants of expf (accuracy like the scalar one); declaring expf `omp declare simd`
 * lets a loop call the variant of the including file's target. MC_EXPF_SIMD is defined where
 * that holds; elsewhere loops call the scalar expf. */
#ifndef MC_NN_SIMD_EXPF_H
#define MC_NN_SIMD_EXPF_H

#include <math.h>

#if defined(__x86_64__) && defined(__GLIBC__) && defined(__GLIBC_PREREQ) && defined(__GNUC__) && \
    !defined(__clang__) && defined(_OPENMP)
#if __GLIBC_PREREQ(2, 35)
#pragma omp declare simd notinbranch
float expf(float);
#define MC_EXPF_SIMD 1
#endif
#endif

#endif
