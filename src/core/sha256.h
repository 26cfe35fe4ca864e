/* sha256.h - SHA-256 (FIPS 180-4), for content hashes and model identities.
 *
 *   mc_sha256 h; mc_sha256_init(&h); mc_sha256_update(&h, buf, len); ... mc_sha256_final(&h, digest);
 */
#ifndef MC_CORE_SHA256_H
#define MC_CORE_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct mc_sha256 {
    uint32_t state[8];
    uint64_t bytes;     /* total bytes hashed */
    uint8_t block[64];  /* pending partial block */
    size_t fill;
} mc_sha256;

void mc_sha256_init(mc_sha256 *h);
void mc_sha256_update(mc_sha256 *h, const void *data, size_t len);
void mc_sha256_final(mc_sha256 *h, uint8_t digest[32]);
/* One-shot digest of buf[0..len). */
void mc_sha256_buf(const void *buf, size_t len, uint8_t digest[32]);
/* Lower-case hex of a 32-byte digest into out[65]. */
void mc_sha256_hex(const uint8_t digest[32], char out[65]);

#endif
