/* kernel_attr.h - attributes for the innermost compute loops (GEMM micro-kernel,
 * depthwise convolution plane).
 *
 * MC_HOT_KERNEL asks GCC for two things on these functions only:
 *  - fused multiply-add: in ISO C mode (-std=c11) GCC does not contract a*b+c into an FMA
 *    (clang does within an expression by default); results differ by rounding only;
 *  - optimisation in every build type: at -O0 (Debug, sanitizer builds) the register-blocked
 *    accumulators spill to memory on every step and the model tests run ~20x slower.
 *    Sanitizer instrumentation still applies to the optimised code.
 */
#ifndef MC_NN_KERNEL_ATTR_H
#define MC_NN_KERNEL_ATTR_H

#if defined(__GNUC__) && !defined(__clang__)
#define MC_HOT_KERNEL __attribute__((optimize("O2", "fp-contract=fast")))
#else
#define MC_HOT_KERNEL
#endif

#endif
