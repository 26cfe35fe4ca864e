/* rng.h - the project's one seeded random generator, and the splitmix64 hash it starts from.
 *
 * mc_splitmix64(x) is splitmix64's output function applied to the counter value x + golden
 * gamma (Steele, Lea & Flood 2014): a stateless 64-bit hash. The golden data's weight rule
 * (shared/golden/README.md: u_i = splitmix64(fnv1a64(name) + i) >> 40) and the caption
 * sampler's uniforms are defined by it, so it must stay bit-exact.
 *
 * mc_rng is xoshiro256** (Blackman & Vigna 2018) seeded from (seed, stream): its 256-bit state
 * is four outputs of a splitmix64 stream started at seed ^ (stream * 0x9E3779B97F4A7C15) (a
 * zero state is impossible: four consecutive outputs of a bijective counter are never all
 * zero). One stream per item (a sample's index, a parameter's index) makes parallel workers
 * draw what a serial run draws. It is not torch's generator and does not need to be: what is
 * drawn (augmentation parameters, shuffles, caption choices, initial weights, dropout masks)
 * is either stored (DR shards) or only needs to be reproducible from its seed, on every
 * machine, compiler and thread count. Its sequence is pinned by tests/test_augment.c, because
 * DataCompDR-style shards store what it drew: changing it changes every reinforced dataset.
 */
#ifndef MC_CORE_RNG_H
#define MC_CORE_RNG_H

#include <stdint.h>

/* splitmix64's output for counter value x (a hash of x). */
static inline uint64_t mc_splitmix64(uint64_t x) {
    uint64_t z = x + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct mc_rng {
    uint64_t s[4];
} mc_rng;

void mc_rng_init(mc_rng *r, uint64_t seed, uint64_t stream);
/* The generator for (seed, stream 0), by value: mc_rng r = mc_rng_seed(42). */
static inline mc_rng mc_rng_seed(uint64_t seed) {
    mc_rng r;
    mc_rng_init(&r, seed, 0);
    return r;
}
uint64_t mc_rng_next(mc_rng *r);
double mc_rng_double(mc_rng *r);          /* [0, 1), the top 53 bits */
float mc_rng_uniform(mc_rng *r);          /* [0, 1), the top 24 bits (exact in float) */
int64_t mc_rng_below(mc_rng *r, int64_t n); /* [0, n), unbiased (rejection); n <= 1 gives 0 */

#endif
