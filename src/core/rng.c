/* rng.c - xoshiro256** seeded by splitmix64 (see rng.h). */
#include "core/rng.h"

void mc_rng_init(mc_rng *r, uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0x9E3779B97F4A7C15ull);
    for (int k = 0; k < 4; k++, x += 0x9E3779B97F4A7C15ull) r->s[k] = mc_splitmix64(x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t mc_rng_next(mc_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double mc_rng_double(mc_rng *r) { return (double)(mc_rng_next(r) >> 11) * 0x1.0p-53; }

float mc_rng_uniform(mc_rng *r) { return (float)(mc_rng_next(r) >> 40) * 0x1.0p-24f; }

int64_t mc_rng_below(mc_rng *r, int64_t n) {
    if (n <= 1) return 0;
    uint64_t un = (uint64_t)n, limit = UINT64_MAX - UINT64_MAX % un; /* a multiple of n */
    for (;;) {
        uint64_t x = mc_rng_next(r);
        if (x < limit) return (int64_t)(x % un);
    }
}
