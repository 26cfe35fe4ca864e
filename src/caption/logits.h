/* logits.h - the logits processors and warpers open_clip's CoCa.generate applies (Hugging Face
 * transformers 4.49 semantics), on one row of float32 scores over V ids.
 *
 *   min length  (MinLengthLogitsProcessor): while the sequence has fewer than min_len ids, the
 *               end id's score is -inf.
 *   repetition  (RepetitionPenaltyLogitsProcessor): every id present in the sequence (once, however
 *               often it occurs) gets s < 0 ? s * penalty : s / penalty (float32).
 *   top-k       (TopKLogitsWarper): scores below the k-th largest become -inf (ties kept).
 *   top-p       (TopPLogitsWarper, nucleus): sort ascending, softmax, running sum (accumulated in
 *               double, stored float32 as torch's CPU cumsum); ids whose running sum is
 *               <= float32(1 - top_p) become -inf; the largest score is always kept.
 * Sampling then draws from softmax(scores / temperature).
 */
#ifndef MC_CAPTION_LOGITS_H
#define MC_CAPTION_LOGITS_H

#include <stddef.h>
#include <stdint.h>

void mc_logits_min_length(float *scores, int V, int cur_len, int min_len, int eot);
void mc_logits_repetition_penalty(float *scores, int V, const int32_t *ids, int n, float penalty);
void mc_logits_top_k(float *scores, int V, int k, float *scratch /* [V] */);
/* scratch: V floats + V ints (mc_logits_top_p_scratch bytes). */
void mc_logits_top_p(float *scores, int V, float top_p, void *scratch);
size_t mc_logits_top_p_scratch(int V);

/* Index drawn from softmax(scores / temperature) with u in [0, 1) (inverse CDF in double); the
 * first maximum when temperature <= 0 or the row is degenerate. -inf scores are never drawn. */
int mc_logits_sample(const float *scores, int V, float temperature, double u);

/* Counter-based uniform in [0, 1): the same (seed, stream, step) gives the same number on any
 * thread and batch layout. */
double mc_caption_uniform(uint64_t seed, uint64_t stream, uint64_t step);

#endif
