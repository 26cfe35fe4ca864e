/* mobileclip embed: one JSON object per input, in command-line order.
 *   {"kind":"image","input":"PATH","embedding":[512 floats]}
 *   {"kind":"text","input":"TEXT","embedding":[512 floats]}
 * All inputs are embedded before anything is printed, so a failure leaves no partial output. */
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

static const char *help =
    "usage: mobileclip embed --checkpoint FILE [--arch A] [--vocab V] (--image PATH | --text TEXT)... [--raw]\n"
    "\n"
    "Prints one JSON line per input, in command-line order:\n"
    "  {\"kind\":\"image\",\"input\":\"PATH\",\"embedding\":[...]}  or  {\"kind\":\"text\",...}\n"
    "Embeddings are L2-normalized unless --raw is given.\n"
    "\n"
    "options:\n" MC_CLI_MODEL_OPTS_HELP
    "  --vocab V           BPE vocabulary (bpe_simple_vocab_16e6.txt.gz, or merges.txt + vocab.json);\n"
    "                      required with --text\n"
    "  --image PATH        a JPEG, PNG or WebP image (repeatable)\n"
    "  --text TEXT         a text (repeatable)\n"
    "  --raw               print the unnormalized projection output\n";

int mc_cmd_embed(int argc, char **argv) {
    mc_model_opts o = {.arch = MOBILECLIP_ARCH_AUTO};
    int raw = 0, n = 0, n_img = 0, n_txt = 0;
    const char **inputs = calloc((size_t)argc, sizeof *inputs);
    char *is_text = calloc((size_t)argc, 1);
    int status = 2;
    float *img_emb = NULL, *txt_emb = NULL;
    const char **imgs = NULL, **txts = NULL;
    mobileclip_ctx *ctx = NULL;
    if (!inputs || !is_text) { fprintf(stderr, "mobileclip embed: out of memory\n"); status = 1; goto done; }
    for (int i = 1; i < argc; i++) {
        int r = mc_cli_model_opt("embed", argc, argv, &i, &o);
        if (r < 0) goto done;
        if (r > 0) continue;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(help, stdout);
            status = 0;
            goto done;
        } else if (strcmp(argv[i], "--raw") == 0) {
            raw = 1;
        } else if (strcmp(argv[i], "--image") == 0 || strcmp(argv[i], "--text") == 0) {
            int text = argv[i][2] == 't';
            const char *v = mc_cli_value("embed", argc, argv, &i);
            if (!v) goto done;
            is_text[n] = (char)text;
            inputs[n++] = v;
            if (text) n_txt++; else n_img++;
        } else {
            fprintf(stderr, "mobileclip embed: unknown option '%s' (see --help)\n", argv[i]);
            goto done;
        }
    }
    if (n == 0) {
        fprintf(stderr, "mobileclip embed: nothing to embed: give --image PATH and/or --text TEXT\n");
        goto done;
    }
    if ((status = mc_cli_check_model_opts("embed", &o, n_txt > 0))) goto done;
    status = 1;
    if (!(ctx = mc_cli_load("embed", &o, n_img > 0, n_txt > 0))) goto done;
    int dim = mobileclip_embed_dim(ctx);
    imgs = calloc((size_t)n_img + 1, sizeof *imgs);
    txts = calloc((size_t)n_txt + 1, sizeof *txts);
    img_emb = malloc(sizeof(float) * (size_t)dim * (size_t)(n_img + 1));
    txt_emb = malloc(sizeof(float) * (size_t)dim * (size_t)(n_txt + 1));
    if (!imgs || !txts || !img_emb || !txt_emb) { fprintf(stderr, "mobileclip embed: out of memory\n"); goto done; }
    for (int k = 0, a = 0, b = 0; k < n; k++) {
        if (is_text[k]) txts[b++] = inputs[k];
        else imgs[a++] = inputs[k];
    }
    if ((n_img && mobileclip_encode_image_files(ctx, imgs, n_img, img_emb, !raw)) ||
        (n_txt && mobileclip_encode_texts(ctx, txts, n_txt, txt_emb, !raw))) {
        fprintf(stderr, "mobileclip embed: %s\n", mobileclip_last_error(ctx));
        goto done;
    }
    for (int k = 0, a = 0, b = 0; k < n; k++) {
        const float *v = is_text[k] ? txt_emb + (size_t)(b++) * dim : img_emb + (size_t)(a++) * dim;
        printf("{\"kind\":\"%s\",\"input\":", is_text[k] ? "text" : "image");
        mc_json_print_string(stdout, inputs[k]);
        printf(",\"embedding\":");
        mc_json_print_floats(stdout, v, dim);
        printf("}\n");
    }
    status = mc_cli_finish_output("embed");
done:
    mobileclip_free(ctx);
    free(inputs);
    free(is_text);
    free(imgs);
    free(txts);
    free(img_emb);
    free(txt_emb);
    return status;
}
