/* reinforce_fixture.h - a small dataset-reinforcement world for the tests (test_reinforce.c,
 * cli_reinforce.sh through tests/tools/make_reinforce_fixture.c):
 *   DIR/teacher_a.json + .safetensors   open_clip GELU ViT, 64 px, embed 96 (weight rule)
 *   DIR/teacher_b.json + .safetensors   open_clip QuickGELU ViT, 32 px, embed 64, own mean/std
 *   DIR/in/00000..00002.tar             good shards (3 samples each, PNG images of varied sizes)
 *   DIR/in/00003.tar                    one good sample + one of each bad case: caption without
 *                                       image, undecodable image, invalid UTF-8 caption, no
 *                                       synthetic captions, malformed synthetic captions
 *   DIR/in/00004.tar                    two good samples, then a third cut in its image data
 *   DIR/syn.jsonl                       captions of every key but "nosyn"; one line for
 *                                       "badsyn" malformed, one invalid UTF-8 line, one with an
 *                                       unknown key
 * The numbers the tests expect are the defines below. */
#ifndef MC_TEST_REINFORCE_FIXTURE_H
#define MC_TEST_REINFORCE_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#define MC_FIX_SHARDS 5
#define MC_FIX_GOOD 12              /* samples every run writes */
#define MC_FIX_SKIP_READ 1          /* the cut sample */
#define MC_FIX_SKIP_NO_IMAGE 1
#define MC_FIX_SKIP_IMAGE 1
#define MC_FIX_SKIP_CAPTION 1
#define MC_FIX_SKIP_SYN 2           /* nosyn, badsyn */
#define MC_FIX_SYN_BAD_LINES 2
#define MC_FIX_SYN_UNKNOWN_KEYS 1

/* Writes the fixture into dir (existing). Dies on failure. */
void mc_fix_write(const char *dir);
/* A w x h RGB PNG of a deterministic pattern (seeded), malloc'd. */
unsigned char *mc_fix_png(int w, int h, uint32_t seed, size_t *len);

#endif
