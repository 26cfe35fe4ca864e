/* generate.h - caption generation with open_clip 7260a46's CoCa.generate semantics, batched over
 * images, on the KV-cached decoder of models/coca.h.
 *
 * Sampling (method TOP_P / TOP_K): every sequence starts with sot. At each step a sequence whose
 * last id is eot or pad is finished and gets pad; the others get min-length and repetition
 * processors, then the top-p or top-k warper, and an id drawn from softmax(scores / temperature)
 * -- except at the last position (length seq_len - 1), which is forced to eot. Generation stops at
 * seq_len ids, or earlier when every sequence is finished (fixed_output_length only pads the rest).
 * Greedy decoding is TOP_K with top_k = 1.
 *
 * Beam search (BEAM): Hugging Face's grouped beam search as open_clip 7260a46 drives it:
 * num_beams beams in num_beam_groups groups, each group scored independently on the RAW
 * processed logits plus the beam's running sum (no log-softmax); at the start only the first beam
 * of each group has score 0 (the others -1e9). Per group the 2 * group_size best (beam, id) pairs;
 * an eot among the first group_size ends a hypothesis (score / (length + 1)); the group is done
 * when it has group_size hypotheses none of which the best running score / (length + 1) can beat.
 * At seq_len (or when all are done) the open beams join the hypotheses (score / length) and the
 * best of all groups wins (the last of equal scores). The result is the hypothesis, then eot when
 * shorter than seq_len.
 *
 * Output: out [B, seq_len], every sequence padded with pad to seq_len (what open_clip returns with
 * fixed_output_length=True; without it, it returns the same rows cut to the batch's longest).
 * Sampling is reproducible: the uniform for image b at step t is mc_caption_uniform(seed,
 * stream[b], t), independent of the thread count and of how images are batched.
 */
#ifndef MC_CAPTION_GENERATE_H
#define MC_CAPTION_GENERATE_H

#include <stdint.h>

#include "models/coca.h"

typedef enum mc_caption_method { MC_CAPTION_TOP_P = 0, MC_CAPTION_TOP_K = 1, MC_CAPTION_BEAM = 2 } mc_caption_method;

typedef struct mc_caption_params {
    mc_caption_method method;
    int seq_len, min_seq_len;          /* 30, 5 */
    float temperature;                 /* 1 */
    float top_p;                       /* 0.1 (open_clip's default; DataCompDR uses 0.9) */
    int top_k;                         /* 1 */
    float repetition_penalty;          /* 1 */
    int num_beams, num_beam_groups;    /* 6, 3 */
    int sot, eot, pad;                 /* 49406, 49407, the model's pad_id (0) */
    uint64_t seed;
} mc_caption_params;

/* open_clip generate()'s defaults (method beam search), pad from the model config. */
void mc_caption_params_default(mc_caption_params *p, const mc_coca *m);

/* img_tok [B, n_img_tok, D] (mc_coca_encode_image) -> out [B, seq_len]. stream: per-image random
 * stream ids (NULL: 0..B-1). */
int mc_coca_generate(const mc_coca *m, const float *img_tok, int B, const mc_caption_params *p,
                     const uint64_t *stream, int32_t *out, mc_err *e);

#endif
