/* CoCa caption generation (sampling and grouped beam search); see generate.h. */
#include "caption/generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "caption/logits.h"
#include "core/parallel.h"

void mc_caption_params_default(mc_caption_params *p, const mc_coca *m) {
    *p = (mc_caption_params){.method = MC_CAPTION_BEAM, .seq_len = 30, .min_seq_len = 5, .temperature = 1.f,
                             .top_p = 0.1f, .top_k = 1, .repetition_penalty = 1.f, .num_beams = 6,
                             .num_beam_groups = 3, .sot = 49406, .eot = 49407, .pad = m ? m->clip.cfg.pad_id : 0};
}

static int check_params(const mc_coca *m, const mc_caption_params *p, mc_err *e) {
    int V = m->dec.vocab;
    int limit = m->clip.text->context < m->dec.context ? m->clip.text->context : m->dec.context;
    if (p->seq_len <= p->min_seq_len)
        return mc_fail(e, MC_E_ARG, "caption: seq_len %d must be larger than min_seq_len %d", p->seq_len, p->min_seq_len);
    if (p->seq_len < 2 || p->seq_len - 1 > limit)
        return mc_fail(e, MC_E_ARG, "caption: seq_len %d outside [2, %d] (the model's context)", p->seq_len, limit + 1);
    if (p->sot < 0 || p->sot >= V || p->eot < 0 || p->eot >= V || p->pad < 0 || p->pad >= V)
        return mc_fail(e, MC_E_ARG, "caption: sot %d / eot %d / pad %d outside the vocabulary of %d", p->sot, p->eot,
                       p->pad, V);
    if (!(p->repetition_penalty > 0) || !(p->temperature > 0))
        return mc_fail(e, MC_E_ARG, "caption: repetition penalty and temperature must be positive");
    if (p->method == MC_CAPTION_TOP_P && !(p->top_p >= 0 && p->top_p <= 1))
        return mc_fail(e, MC_E_ARG, "caption: top_p %g outside [0, 1]", p->top_p);
    if (p->method == MC_CAPTION_TOP_K && p->top_k < 1) return mc_fail(e, MC_E_ARG, "caption: top_k %d < 1", p->top_k);
    if (p->method == MC_CAPTION_BEAM &&
        (p->num_beams < 2 || p->num_beam_groups < 1 || p->num_beam_groups > p->num_beams ||
         p->num_beams % p->num_beam_groups))
        return mc_fail(e, MC_E_ARG, "caption: %d beams cannot form %d equal groups (need > 1 beam)", p->num_beams,
                       p->num_beam_groups);
    if (p->method == MC_CAPTION_BEAM && 2 * (p->num_beams / p->num_beam_groups) > V)
        return mc_fail(e, MC_E_ARG, "caption: vocabulary too small for %d beams per group",
                       p->num_beams / p->num_beam_groups);
    return 0;
}

/* ---- sampling ---- */

/* One step's processing of the live rows: row i is sequence seq[i] (out row), its logits row i.
 * Rows are independent, so they are split over the threads, each chunk with its own top-p /
 * top-k scratch (chunk = begin / grain). */
typedef struct sample_job {
    const mc_caption_params *p;
    const uint64_t *stream;
    const int *seq;
    int32_t *out;
    float *logits;
    char *scratch;
    size_t scratch_size;
    int V, cur, grain;
} sample_job;

static void sample_rows(void *arg, int begin, int end) {
    const sample_job *j = arg;
    const mc_caption_params *p = j->p;
    int V = j->V, cur = j->cur, S = p->seq_len;
    void *scratch = j->scratch + (size_t)(begin / j->grain) * j->scratch_size;
    for (int i = begin; i < end; i++) {
        int b = j->seq[i];
        int32_t *seq = j->out + (size_t)b * S;
        float *s = j->logits + (size_t)i * V;
        if (cur + 1 == S) { /* the last position is eot, whatever the scores */
            seq[cur] = p->eot;
            continue;
        }
        mc_logits_min_length(s, V, cur, p->min_seq_len, p->eot);
        mc_logits_repetition_penalty(s, V, seq, cur, p->repetition_penalty);
        if (p->method == MC_CAPTION_TOP_P) mc_logits_top_p(s, V, p->top_p, scratch);
        else mc_logits_top_k(s, V, p->top_k, scratch);
        double u = mc_caption_uniform(p->seed, j->stream ? j->stream[b] : (uint64_t)b, (uint64_t)cur);
        seq[cur] = mc_logits_sample(s, V, p->temperature, u);
    }
}

/* Only the unfinished sequences are decoded: after each step the rows whose new id is eot leave
 * the state (mc_coca_state_keep; so do rows whose new id is pad, which open_clip also treats as
 * finished), and their remaining ids stay pad, as open_clip pads a finished
 * sequence. A row's logits do not depend on the other rows, so this changes no id. */
static int sample(const mc_coca *m, const float *img_tok, int B, const mc_caption_params *p, const uint64_t *stream,
                  int32_t *out, mc_err *e) {
    int V = m->dec.vocab, S = p->seq_len;
    int grain = mc_parallel_grain(B, 1), chunks = (B + grain - 1) / grain;
    size_t ss = mc_logits_top_p_scratch(V);
    if (ss < sizeof(float) * (size_t)V) ss = sizeof(float) * (size_t)V; /* top_k's */
    ss = (ss + 63) & ~(size_t)63;
    int *seq = malloc(sizeof(int) * (size_t)B * 2);
    int32_t *last = malloc(sizeof(int32_t) * (size_t)B);
    float *logits = malloc(sizeof(float) * (size_t)B * V);
    char *scratch = malloc(ss * (size_t)chunks);
    if (!seq || !last || !logits || !scratch) {
        free(seq), free(last), free(logits), free(scratch);
        return mc_fail(e, MC_E_NOMEM, "caption: out of memory for %d images", B);
    }
    int *keep = seq + B;
    for (int b = 0; b < B; b++) seq[b] = b;
    mc_coca_state st;
    int r = mc_coca_state_init(&st, m, img_tok, B, seq, B, S - 1, e);
    for (size_t i = 0; i < (size_t)B * S; i++) out[i] = p->pad;
    for (int b = 0; b < B; b++) out[(size_t)b * S] = p->sot;
    int n = B; /* live rows: row i is sequence seq[i] */
    for (int cur = 1; !r && n && cur < S; cur++) {
        for (int i = 0; i < n; i++) last[i] = out[(size_t)seq[i] * S + cur - 1];
        if ((r = mc_coca_state_step(&st, last, logits, e))) break;
        sample_job job = {.p = p, .stream = stream, .seq = seq, .out = out, .logits = logits, .scratch = scratch,
                          .scratch_size = ss, .V = V, .cur = cur, .grain = grain};
        mc_parallel_for(n, grain, sample_rows, &job);
        int k = 0;
        for (int i = 0; i < n; i++)
            if (out[(size_t)seq[i] * S + cur] != p->eot && out[(size_t)seq[i] * S + cur] != p->pad) keep[k] = i, seq[k++] = seq[i];
        if (k < n && k > 0) r = mc_coca_state_keep(&st, keep, k, e);
        n = k;
    }
    mc_coca_state_free(&st);
    free(seq), free(last), free(logits), free(scratch);
    return r;
}

/* ---- grouped beam search ---- */

typedef struct hyp {
    double score;
    int len;
    int32_t *ids; /* [seq_len] */
} hyp;

typedef struct hyps { /* BeamHypotheses of one (image, group) */
    hyp *h;           /* [n] in insertion order (deletions keep the order of the rest) */
    int n, cap;
    double worst;
    int done;
} hyps;

static void hyps_add(hyps *H, const int32_t *ids, int len, double sum, int gen_len) {
    double score = sum / (double)gen_len; /* length_penalty 1 */
    if (!(H->n < H->cap || score > H->worst)) return;
    /* H->h has room for cap + 1 entries */
    hyp *x = &H->h[H->n++];
    int32_t *keep = x->ids;
    memcpy(keep, ids, sizeof(int32_t) * (size_t)len);
    x->score = score;
    x->len = len;
    if (H->n > H->cap) {
        /* sorted((s, idx)): drop the lowest (lowest idx among equal), worst = the second lowest */
        int lo = 0;
        for (int i = 1; i < H->n; i++)
            if (H->h[i].score < H->h[lo].score) lo = i;
        double second = INFINITY;
        for (int i = 0; i < H->n; i++)
            if (i != lo && (H->h[i].score < second)) second = H->h[i].score;
        hyp gone = H->h[lo];
        memmove(&H->h[lo], &H->h[lo + 1], sizeof(hyp) * (size_t)(H->n - lo - 1));
        H->h[--H->n] = gone; /* its buffer is reused by the next add */
        H->worst = second;
    } else if (score < H->worst) {
        H->worst = score;
    }
}

static int hyps_is_done(const hyps *H, double best_sum, int cur_len) {
    if (H->n < H->cap) return 0;
    return H->worst >= best_sum / (double)cur_len;
}

typedef struct cand {
    float score;
    int flat; /* beam * V + id */
} cand;

/* the k best of n scores, descending, ties by lower index (torch.topk sorted=True) */
static void topk(const float *s, int n, int k, cand *best) {
    int have = 0;
    for (int i = 0; i < n; i++) {
        float v = s[i];
        if (have == k && !(v > best[k - 1].score)) continue;
        int j = have < k ? have++ : k - 1;
        while (j > 0 && v > best[j - 1].score) {
            best[j] = best[j - 1];
            j--;
        }
        best[j] = (cand){v, i};
    }
}

static int beam(const mc_coca *m, const float *img_tok, int B, const mc_caption_params *p, int32_t *out, mc_err *e) {
    int V = m->dec.vocab, S = p->seq_len, nb = p->num_beams, G = p->num_beam_groups, gs = nb / G, R = B * nb;
    size_t n_ids = (size_t)R * S, n_hyp = (size_t)B * G * (gs + 1);
    int *img = malloc(sizeof(int) * (size_t)R * 2);
    int32_t *ids = malloc(sizeof(int32_t) * (n_ids * 2 + (size_t)R + n_hyp * S));
    float *logits = malloc(sizeof(float) * ((size_t)R * V + (size_t)R * 2 + (size_t)gs * V));
    cand *best = malloc(sizeof(cand) * (size_t)2 * gs);
    hyps *H = calloc((size_t)B * G, sizeof *H);
    hyp *hs = calloc(n_hyp, sizeof *hs);
    if (!img || !ids || !logits || !best || !H || !hs) {
        free(img), free(ids), free(logits), free(best), free(H), free(hs);
        return mc_fail(e, MC_E_NOMEM, "caption: out of memory for %d images x %d beams", B, nb);
    }
    int *src = img + R;
    int32_t *ids2 = ids + n_ids, *last = ids2 + n_ids, *hbuf = last + R;
    float *scores = logits + (size_t)R * V, *next_scores = scores + R, *cs = next_scores + R;
    for (int i = 0; i < B * G; i++) {
        H[i].h = hs + (size_t)i * (gs + 1);
        H[i].cap = gs;
        H[i].worst = 1e9;
        for (int k = 0; k <= gs; k++) H[i].h[k].ids = hbuf + ((size_t)i * (gs + 1) + k) * S;
    }
    for (int r = 0; r < R; r++) {
        img[r] = r / nb;
        ids[(size_t)r * S] = p->sot;
        scores[r] = (r % nb) % gs == 0 ? 0.f : -1e9f;
    }
    mc_coca_state st;
    int rc = mc_coca_state_init(&st, m, img_tok, B, img, R, S - 1, e);
    int cur = 1;
    while (!rc) {
        for (int r = 0; r < R; r++) last[r] = ids[(size_t)r * S + cur - 1];
        if ((rc = mc_coca_state_step(&st, last, logits, e))) break;
        for (int g = 0; g < G; g++)
            for (int b = 0; b < B; b++) {
                int base = b * nb + g * gs;
                hyps *hb = &H[b * G + g];
                if (hb->done) { /* HF: score 0, pad; the rows are never read again */
                    for (int k = 0; k < gs; k++) {
                        next_scores[base + k] = 0.f;
                        src[base + k] = base + k;
                        ids2[(size_t)(base + k) * S + cur] = p->pad;
                    }
                    continue;
                }
                for (int k = 0; k < gs; k++) {
                    float *s = logits + (size_t)(base + k) * V, *c = cs + (size_t)k * V;
                    mc_logits_min_length(s, V, cur, p->min_seq_len, p->eot);
                    mc_logits_repetition_penalty(s, V, ids + (size_t)(base + k) * S, cur, p->repetition_penalty);
                    for (int v = 0; v < V; v++) c[v] = s[v] + scores[base + k];
                }
                topk(cs, gs * V, 2 * gs, best);
                int j = 0;
                for (int rank = 0; rank < 2 * gs && j < gs; rank++) {
                    int k = best[rank].flat / V, tok = best[rank].flat % V;
                    if (tok == p->eot) {
                        if (rank >= gs) continue;
                        hyps_add(hb, ids + (size_t)(base + k) * S, cur, (double)best[rank].score, cur + 1);
                    } else {
                        next_scores[base + j] = best[rank].score;
                        src[base + j] = base + k;
                        ids2[(size_t)(base + j) * S + cur] = tok;
                        j++;
                    }
                }
                if (j < gs) {
                    rc = mc_fail(e, MC_E_MODEL, "caption: beam search found %d of %d continuations", j, gs);
                    break;
                }
                hb->done = hyps_is_done(hb, (double)best[0].score, cur + 1);
            }
        if (rc) break;
        /* the beams continue from their sources: ids, scores and the decoder caches */
        for (int r = 0; r < R; r++) {
            int32_t tok = ids2[(size_t)r * S + cur];
            memcpy(ids2 + (size_t)r * S, ids + (size_t)src[r] * S, sizeof(int32_t) * (size_t)cur);
            ids2[(size_t)r * S + cur] = tok;
        }
        memcpy(ids, ids2, sizeof(int32_t) * n_ids);
        memcpy(scores, next_scores, sizeof(float) * (size_t)R);
        cur++;
        int all_done = 1;
        for (int i = 0; i < B * G; i++) all_done &= H[i].done;
        if (all_done || cur >= S) break;
        if ((rc = mc_coca_state_reorder(&st, src, e))) break;
    }
    if (!rc) {
        /* finalize: open beams join their group's hypotheses; the best of all groups wins */
        for (int b = 0; b < B; b++)
            for (int g = 0; g < G; g++) {
                hyps *hb = &H[b * G + g];
                if (hb->done) continue;
                for (int k = 0; k < gs; k++) {
                    int r = b * nb + g * gs + k;
                    hyps_add(hb, ids + (size_t)r * S, cur, (double)scores[r], cur);
                }
            }
        for (int b = 0; b < B; b++) {
            const hyp *w = NULL;
            for (int g = 0; g < G; g++)
                for (int k = 0; k < H[b * G + g].n; k++) {
                    const hyp *x = &H[b * G + g].h[k];
                    if (!w || x->score >= w->score) w = x; /* sorted(...).pop(): the last maximum */
                }
            int32_t *o = out + (size_t)b * S;
            for (int i = 0; i < S; i++) o[i] = p->pad;
            memcpy(o, w->ids, sizeof(int32_t) * (size_t)w->len);
            if (w->len < S) o[w->len] = p->eot;
        }
    }
    mc_coca_state_free(&st);
    free(img), free(ids), free(logits), free(best), free(H), free(hs);
    return rc;
}

int mc_coca_generate(const mc_coca *m, const float *img_tok, int B, const mc_caption_params *p,
                     const uint64_t *stream, int32_t *out, mc_err *e) {
    if (B < 1) return mc_fail(e, MC_E_ARG, "caption: %d images", B);
    int r = check_params(m, p, e);
    if (r) return r;
    return p->method == MC_CAPTION_BEAM ? beam(m, img_tok, B, p, out, e) : sample(m, img_tok, B, p, stream, out, e);
}
