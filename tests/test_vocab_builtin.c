/* The built-in vocabulary:
 *  - its bytes are open_clip's bpe_simple_vocab_16e6.txt.gz exactly (the shared copy the other
 *    tests read; sha256 924691ac... in data/README.md);
 *  - the tokenizer built from it gives open_clip's ids for every golden tokenizer case;
 *  - through the API with no vocabulary given, texts embed exactly as with the file given, and
 *    mobileclip_text_truncated tells 75 content tokens (fits) from 76 (cut). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/test_util.h"
#include "common/weight_rule.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "mobileclip.h"
#include "text/tokenizer.h"

static void check_bytes(void) {
    char *file;
    size_t len, blen;
    mc_err e = {0};
    if (mc_read_file(mc_test_path("vocab/bpe_simple_vocab_16e6.txt.gz"), 1 << 24, &file, &len, &e))
        mc_test_fatal("%s", e.msg);
    const unsigned char *b = mc_tokenizer_builtin_vocab(&blen);
    CHECK(blen == len && memcmp(b, file, len) == 0, "built-in vocabulary (%zu bytes) differs from shared/vocab (%zu)",
          blen, len);
    printf("%-4s built-in vocabulary: %zu bytes, identical to shared/vocab\n", blen == len ? "ok" : "FAIL", blen);
    free(file);
}

static void check_cases(void) {
    char *data;
    size_t len;
    mc_err e = {0};
    if (mc_read_file(mc_test_path("golden/tokenizer_cases.jsonl"), 1 << 26, &data, &len, &e)) mc_test_fatal("%s", e.msg);
    mc_tokenizer *t = mc_tokenizer_load_builtin(&e);
    if (!t) mc_test_fatal("built-in vocabulary: %s", e.msg);
    int n = 0, bad = 0;
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        mc_json *j = mc_json_parse(line, strlen(line), &e);
        const mc_json *text = mc_json_get(j, "text"), *tokens = mc_json_get(j, "tokens");
        if (!text || !tokens || tokens->count != MC_TOKENIZER_CONTEXT) { mc_json_free(j); continue; }
        int32_t ids[MC_TOKENIZER_CONTEXT];
        int r = mc_tokenizer_encode(t, text->str, text->len, ids, &e);
        int same = r > 0;
        for (int k = 0; k < MC_TOKENIZER_CONTEXT && same; k++) same = ids[k] == (int32_t)tokens->items[k].number;
        bad += !same;
        n++;
        mc_json_free(j);
    }
    CHECK(n > 100 && bad == 0, "built-in tokenizer: %d of %d golden cases differ", bad, n);
    printf("%-4s built-in tokenizer: %d golden cases, %d differ\n", bad ? "FAIL" : "ok", n, bad);
    mc_tokenizer_free(t);
    free(data);
}

static void check_api(const char *tmpdir) {
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/s0.safetensors", tmpdir);
    mc_weights_save_test_model("s0", path);
    mobileclip_params p = mobileclip_default_params();
    p.load_image = 0;
    mobileclip_ctx *builtin = mobileclip_init_from_file(path, &p, err, sizeof err);
    if (!builtin) mc_test_fatal("%s", err);
    p.vocab_path = mc_test_path("vocab/bpe_simple_vocab_16e6.txt.gz");
    mobileclip_ctx *file = mobileclip_init_from_file(path, &p, err, sizeof err);
    if (!file) mc_test_fatal("%s", err);
    const char *texts[2] = {"a photo of a cat", "an astronaut riding a horse"};
    float a[2 * 512], b[2 * 512];
    CHECK(mobileclip_encode_texts(builtin, texts, 2, a, 1) == 0, "built-in: %s", mobileclip_last_error(builtin));
    CHECK(mobileclip_encode_texts(file, texts, 2, b, 1) == 0, "file: %s", mobileclip_last_error(file));
    CHECK(memcmp(a, b, sizeof a) == 0, "text embeddings differ between built-in and file vocabulary");

    /* "a" is one token: 75 of them fill the context exactly, 76 are cut */
    char text[400] = "";
    for (int k = 0; k < 75; k++) strcat(text, "a ");
    CHECK(mobileclip_text_truncated(builtin, text) == 0, "75 tokens reported as truncated");
    strcat(text, "a");
    CHECK(mobileclip_text_truncated(builtin, text) == 1, "76 tokens not reported as truncated");
    CHECK(mobileclip_text_truncated(builtin, "a cat") == 0, "short text reported as truncated");
    CHECK(mobileclip_text_truncated(builtin, "bad \xff") < 0, "invalid UTF-8 not reported");
    printf("ok   API: NULL vocabulary embeds as the file does; truncation at 75 content tokens detected\n");
    mobileclip_free(builtin);
    mobileclip_free(file);
    remove(path);
}

int main(void) {
    char tmpdir[] = "/tmp/mc_vocab_XXXXXX";
    if (!mkdtemp(tmpdir)) mc_test_fatal("mkdtemp failed");
    check_bytes();
    check_cases();
    check_api(tmpdir);
    rmdir(tmpdir);
    return mc_test_finish("vocab_builtin");
}
