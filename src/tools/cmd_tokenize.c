/* cmd_tokenize.c - `mobileclip tokenize [--vocab V] "text" ["text" ...]`.
 *
 * Prints one JSON array of token ids per text and line, e.g.
 *   [49406,320,1125,539,320,2368,49407,0,...]
 * exactly what open_clip's tokenizer (as MobileCLIP uses it) returns.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/tokenizer.h"
#include "tools/cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: mobileclip tokenize [--vocab PATH] [--context N] [--] TEXT [TEXT ...]\n"
            "\n"
            "Prints the CLIP token ids of each TEXT as one JSON array per line (SOT 49406,\n"
            "EOT 49407, zero padding), as open_clip's SimpleTokenizer computes them.\n"
            "\n"
            "  --vocab PATH   vocabulary override (default: the built-in copy of open_clip's\n"
            "                 bpe_simple_vocab_16e6.txt.gz): that file or its unpacked text, a\n"
            "                 model hub merges.txt or vocab.json (merges.txt next to it), or a\n"
            "                 directory holding either\n"
            "  --context N    context length (default 77)\n"
            "  --help         this text\n");
}

/* Prints the reason and returns `status` (1: failure, 2: usage error). */
static int fail(int status, const char *fmt, const char *arg) {
    fprintf(stderr, "mobileclip tokenize: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return status;
}

int mc_cmd_tokenize(int argc, char **argv) {
    const char *vocab = NULL;
    int context = MC_TOKENIZER_CONTEXT, first_text = argc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        if (!strcmp(a, "--")) { first_text = i + 1; break; }
        if (!strcmp(a, "--vocab") || !strcmp(a, "--context")) {
            if (i + 1 >= argc) return fail(2, "%s needs a value", a);
            const char *v = argv[++i];
            if (a[2] == 'v') vocab = v;
            else {
                char *end;
                long c = strtol(v, &end, 10);
                if (*v == 0 || *end || c < 2 || c > 1000000) return fail(2, "bad --context value '%s' (2..1000000)", v);
                context = (int)c;
            }
            continue;
        }
        if (!strncmp(a, "--vocab=", 8)) { vocab = a + 8; continue; }
        if (!strncmp(a, "--", 2)) return fail(2, "unknown option '%s' (see --help)", a);
        first_text = i;
        break;
    }
    if (first_text >= argc) return fail(2, "%s", "no text given (see --help)");
    mc_err e = {0};
    mc_tokenizer *tok = vocab ? mc_tokenizer_load(vocab, &e) : mc_tokenizer_load_builtin(&e);
    if (!tok) return fail(1, "%s", e.msg);
    /* every text is tokenized before anything is printed: a failure leaves no partial output */
    int n = argc - first_text;
    int32_t *ids = malloc((size_t)context * (size_t)n * sizeof *ids);
    if (!ids) { mc_tokenizer_free(tok); return fail(1, "%s", "out of memory"); }
    int rc = 0;
    for (int i = 0; i < n && !rc; i++)
        if (mc_tokenizer_encode_ctx(tok, argv[first_text + i], strlen(argv[first_text + i]), ids + (size_t)i * context,
                                    context, &e) < 0) {
            if (n > 1) mc_err_prefix(&e, "text %d", i + 1);
            rc = fail(1, "%s", e.msg);
        }
    for (int i = 0; i < n && !rc; i++) {
        putchar('[');
        for (int k = 0; k < context; k++) printf(k ? ",%d" : "%d", ids[(size_t)i * context + k]);
        fputs("]\n", stdout);
    }
    if (!rc && (fflush(stdout) || ferror(stdout))) rc = fail(1, "%s", "cannot write the output");
    free(ids);
    mc_tokenizer_free(tok);
    return rc;
}
