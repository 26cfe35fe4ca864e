/* The logits processors and warpers of CoCa.generate (caption/logits.h) against independent
 * brute-force computations, and caption post-processing (decode, DataCompDR's cuts) against
 * open_clip's SimpleTokenizer.decode + scripts/gen.py (tests/data/coca/decode_cases.json,
 * written by tools/reference/gen_coca_ref.py). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caption/caption_text.h"
#include "caption/logits.h"
#include "common/test_util.h"
#include "io/json.h"
#include "io/mapped_file.h"

static void test_min_length(void) {
    float s[4] = {1, 2, 3, 4};
    mc_logits_min_length(s, 4, 4, 5, 2);
    CHECK(s[2] == -INFINITY && s[0] == 1 && s[1] == 2 && s[3] == 4, "min length: eot not masked below min");
    float t[4] = {1, 2, 3, 4};
    mc_logits_min_length(t, 4, 5, 5, 2);
    CHECK(t[2] == 3, "min length: eot masked at the minimum length");
}

static void test_repetition(void) {
    float s[8] = {0.5f, 0, 0, 2.0f, 0, -1.0f, 0, 0.f};
    int32_t ids[5] = {3, 5, 3, 7, 3};
    mc_logits_repetition_penalty(s, 8, ids, 5, 1.5f);
    CHECK(s[3] == 2.0f / 1.5f, "repetition: positive score %g (penalised once: %g)", s[3], 2.0f / 1.5f);
    CHECK(s[5] == -1.5f, "repetition: negative score %g", s[5]);
    CHECK(s[7] == 0.f && s[0] == 0.5f, "repetition: others changed");
}

static void test_top_k(void) {
    float tmp[5];
    float a[5] = {1, 5, 3, 5, 2};
    mc_logits_top_k(a, 5, 2, tmp);
    CHECK(a[1] == 5 && a[3] == 5 && a[0] == -INFINITY && a[2] == -INFINITY && a[4] == -INFINITY, "top_k 2 with a tie");
    float b[5] = {1, 5, 3, 5, 2};
    mc_logits_top_k(b, 5, 3, tmp);
    CHECK(b[2] == 3 && b[0] == -INFINITY && b[4] == -INFINITY && b[1] == 5, "top_k 3");
    float c[5] = {1, 5, 3, 5, 2};
    mc_logits_top_k(c, 5, 9, tmp);
    CHECK(c[0] == 1 && c[4] == 2, "top_k larger than the vocabulary removes nothing");
}

/* Nucleus by definition, in double: a token is removed when the probability of itself and every
 * token ranked below it (ascending (score, id)) is <= 1 - top_p, except the top token.
 * Rows of V scores uniform in [-4, 4) * spread (trial % 3 + 1); quant > 0 rounds them to
 * multiples of quant (ties), every masked-th id starts at -inf (masked > 0). */
static void check_top_p(int V, int trials, double spread, double quant, int masked, unsigned long long x) {
    const float ps[] = {0.f, 0.1f, 0.5f, 0.73f, 0.9f, 0.99f, 1.f};
    void *scratch = malloc(mc_logits_top_p_scratch(V));
    float *s = malloc(sizeof(float) * (size_t)V * 2), *orig = s + V;
    for (int trial = 0; trial < trials; trial++) {
        for (int i = 0; i < V; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            double v = ((double)(x >> 11) / 9007199254740992.0 * 8.0 - 4.0) * spread * (trial % 3 + 1);
            s[i] = (float)(quant > 0 ? quant * floor(v / quant) : v);
            if (masked && i % masked == 1) s[i] = -INFINITY;
        }
        memcpy(orig, s, sizeof(float) * (size_t)V);
        for (size_t k = 0; k < sizeof ps / sizeof *ps; k++) {
            memcpy(s, orig, sizeof(float) * (size_t)V);
            mc_logits_top_p(s, V, ps[k], scratch);
            double m = -INFINITY, z = 0;
            for (int i = 0; i < V; i++) m = orig[i] > m ? orig[i] : m;
            for (int i = 0; i < V; i++) z += exp((double)orig[i] - m);
            int top = 0;
            for (int i = 1; i < V; i++)
                if (orig[i] >= orig[top]) top = i; /* the last maximum: the top of (score, id) */
            double kept_mass = 0;
            int bad = 0;
            for (int i = 0; i < V; i++) {
                double below = 0;
                for (int j = 0; j < V; j++)
                    if (orig[j] < orig[i] || (orig[j] == orig[i] && j <= i)) below += exp((double)orig[j] - m) / z;
                int removed = orig[i] == -INFINITY || (i != top && below <= 1.0 - ps[k] + 1e-12);
                if (removed != (s[i] == -INFINITY) && fabs(below - (1.0 - ps[k])) > 1e-5) bad++;
                if (s[i] != -INFINITY) {
                    kept_mass += exp((double)orig[i] - m) / z;
                    if (s[i] != orig[i]) bad++;
                }
            }
            CHECK(!bad, "top_p %g V %d trial %d: %d tokens differ from the definition", ps[k], V, trial, bad);
            CHECK(kept_mass >= ps[k] - 1e-5, "top_p %g V %d: kept mass %g", ps[k], V, kept_mass);
        }
    }
    free(s);
    free(scratch);
}

static void test_top_p(void) {
    check_top_p(50, 20, 1.0, 0, 0, 12345);
    printf("ok   top_p against the nucleus definition (20 rows x 7 values)\n");
    /* a vocabulary-sized spread as a trained model's (scores over ~50 nats, the tail far below
     * the nucleus), with ties and -inf ids: the binned filter's every branch */
    check_top_p(2000, 4, 3.0, 0, 0, 777);
    check_top_p(2000, 3, 0.5, 1.0 / 8, 7, 4242);
    check_top_p(2000, 2, 0.02, 0, 0, 99); /* nearly flat: thousands of ids in the crossing bin */
    printf("ok   top_p against the definition: 2000 ids, wide, tied / masked and flat rows\n");
}

static void test_sample(void) {
    float s[4] = {0.f, logf(2.f), -INFINITY, logf(3.f)};
    int count[4] = {0};
    for (int i = 0; i < 6000; i++) count[mc_logits_sample(s, 4, 1.f, (i + 0.5) / 6000.0)]++;
    CHECK(abs(count[0] - 1000) <= 1 && abs(count[1] - 2000) <= 1 && count[2] == 0 && abs(count[3] - 3000) <= 1,
          "sample: inverse CDF counts %d %d %d %d", count[0], count[1], count[2], count[3]);
    /* temperature 2: probabilities as sqrt(1), sqrt(2), 0, sqrt(3) */
    memset(count, 0, sizeof count);
    double z = 1 + sqrt(2) + sqrt(3);
    for (int i = 0; i < 100000; i++) count[mc_logits_sample(s, 4, 2.f, (i + 0.5) / 100000.0)]++;
    CHECK(fabs(count[1] / 100000.0 - sqrt(2) / z) < 1e-4 && fabs(count[3] / 100000.0 - sqrt(3) / z) < 1e-4,
          "sample: temperature 2 frequencies %d %d", count[1], count[3]);
    double mean = 0;
    for (int i = 0; i < 20000; i++) {
        double u = mc_caption_uniform(42, (uint64_t)i % 7, (uint64_t)i);
        CHECK(u >= 0 && u < 1, "uniform out of [0, 1): %g", u);
        mean += u / 20000;
    }
    CHECK(fabs(mean - 0.5) < 0.01, "uniform mean %g", mean);
    CHECK(mc_caption_uniform(1, 2, 3) == mc_caption_uniform(1, 2, 3) &&
              mc_caption_uniform(1, 2, 3) != mc_caption_uniform(1, 3, 3) &&
              mc_caption_uniform(1, 2, 3) != mc_caption_uniform(2, 2, 3),
          "uniform: not a function of (seed, stream, step)");
}

static void test_decode(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/coca/decode_cases.json", MC_TEST_DATA_DIR);
    mc_err e = {0};
    char *text = NULL;
    size_t len = 0;
    if (mc_read_file(path, 1 << 20, &text, &len, &e)) mc_test_fatal("%s", e.msg);
    mc_json *cases = mc_json_parse(text, len, &e);
    free(text);
    if (!cases || cases->type != MC_JSON_ARRAY) mc_test_fatal("%s: %s", path, e.msg);
    mc_tokenizer *t = mc_tokenizer_load_builtin(&e);
    if (!t) mc_test_fatal("tokenizer: %s", e.msg);
    int ok = 0;
    for (int c = 0; c < cases->count; c++) {
        const mc_json *k = &cases->items[c], *ids = mc_json_get(k, "ids");
        int32_t v[128];
        int n = ids->count;
        for (int i = 0; i < n; i++) v[i] = (int32_t)ids->items[i].number;
        char *dec = NULL, *cap = NULL;
        int r = mc_tokenizer_decode(t, v, n, &dec, &e) | mc_caption_text(t, v, n, &cap, &e);
        const char *want_dec = mc_json_get(k, "decoded")->str, *want_cap = mc_json_get(k, "caption")->str;
        int good = !r && !strcmp(dec, want_dec) && !strcmp(cap, want_cap);
        CHECK(good, "case %d: decoded '%s' (want '%s'), caption '%s' (want '%s')", c, dec ? dec : "", want_dec,
              cap ? cap : "", want_cap);
        ok += good;
        free(dec);
        free(cap);
    }
    int32_t badid = 49408;
    char *dec = NULL;
    CHECK(mc_tokenizer_decode(t, &badid, 1, &dec, &e) != 0 && strstr(e.msg, "49408"), "bad id: '%s'", e.msg);
    printf("%-4s decode + DataCompDR caption cut: %d/%d cases as open_clip\n", ok == cases->count ? "ok" : "FAIL", ok,
           cases->count);
    mc_tokenizer_free(t);
    mc_json_free(cases);
}

int main(void) {
    test_min_length();
    test_repetition();
    test_top_k();
    test_top_p();
    test_sample();
    test_decode();
    return mc_test_finish("caption_logits");
}
