/* mobileclip embed: image and text embeddings, streamed in input order as each batch finishes.
 *
 * Inputs come from the command line (--image, --text), list files (--image-list, --text-list;
 * - is stdin) and directories (--image-dir, recursive, images recognised by content); see
 * tools/inputs.h. Each batch of --batch inputs is loaded/tokenized, embedded, and written
 * (tools/embed_writer.h) before the next is read. A bad input stops the run with status 1,
 * or with --skip-errors is reported and left out, and the run ends with status 3. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/cli.h"
#include "tools/embed_writer.h"
#include "tools/inputs.h"
#include "tools/progress.h"

static const char *help =
    "usage: mobileclip embed --checkpoint FILE [--arch A | --config FILE] [--threads N] [--vocab V] [--training-form]\n"
    "                        [--precision P]\n"
    "                        [--image PATH] [--text TEXT] [--image-list FILE] [--text-list FILE]\n"
    "                        [--image-dir DIR] [--batch N] [--format jsonl|npy|f32] [--out FILE]\n"
    "                        [--skip-errors] [--progress | --no-progress] [--raw]\n"
    "\n"
    "Embeds every input, in the order given, writing each batch as soon as it is done.\n"
    "jsonl (default) is one line per input:\n"
    "  {\"kind\":\"image\",\"input\":\"PATH\",\"embedding\":[...]}  or  {\"kind\":\"text\",...}\n"
    "Embeddings are L2-normalized unless --raw is given.\n"
    "\n"
    "options:\n" MC_CLI_MODEL_OPTS_HELP
    "  --image PATH        a JPEG, PNG or WebP image (repeatable)\n"
    "  --text TEXT         a text (repeatable)\n"
    "  --image-list FILE   image paths, one per line (- reads stdin as it arrives)\n"
    "  --text-list FILE    texts, one per line (- reads stdin)\n"
    "  --image-dir DIR     every JPEG/PNG file under DIR, recursively, by content not by name,\n"
    "                      in byte order of the paths\n"
    "  --batch N           inputs embedded together (default 8, at most 256)\n"
    "  --format F          jsonl (default, or from the --out name), npy (float32 (rows, dim)), or\n"
    "                      f32 (raw little-endian float32 rows); npy and f32 need --out and also\n"
    "                      write OUT.names.jsonl: {\"kind\":..,\"input\":..} for each row in order\n"
    "  --out FILE          write to FILE (default: stdout) atomically: FILE appears only when\n"
    "                      the run succeeds (a failed run leaves no FILE and no sidecar)\n"
    "  --skip-errors       report each bad input on stderr and go on; exit status 3 if any was\n"
    "                      skipped (every good input is written)\n"
    "  --progress          progress (items/s, ETA) on stderr even when it is not a terminal\n"
    "  --no-progress       no progress display (default when stderr is not a terminal)\n"
    "  --raw               write the unnormalized projection output\n"
    "\n"
    "Input names that are not valid UTF-8 are written with each undecodable byte as \\udcXX\n"
    "(Python's surrogateescape): os.fsencode(json.loads(line)[\"input\"]) gives the bytes back.\n"
    "Warnings: a text longer than 77 tokens (cut), an embedding that is zero (PyTorch would give\n"
    "NaN; written as zeros) or not finite (null in JSON).\n"
    "exit status: 0 done, 1 failure, 2 usage error, 3 done but inputs were skipped\n";

typedef struct embed_run {
    mobileclip_ctx *ctx;
    mc_progress progress;
    int skip, raw, skipped, dim;
    long texts; /* texts seen, to name command-line texts "text K" */
} embed_run;

/* Prints "mobileclip embed: <msg>" (clearing the progress line first). */
static void report(embed_run *run, const char *prefix, const char *msg) {
    mc_progress_clear(&run->progress);
    fprintf(stderr, "mobileclip embed: %s%s\n", prefix, msg);
}

/* A name for a text in messages: "text K", or "LIST:LINE" for one from a list. */
static void text_label(const mc_input *it, long k, char *buf, size_t n) {
    if (it->list) snprintf(buf, n, "%s:%ld", it->list, it->line);
    else snprintf(buf, n, "text %ld", k);
}

/* Warns about an embedding row the user should not trust silently. */
static void check_row(embed_run *run, const mc_input *it, const char *label, const float *v) {
    double s = 0;
    for (int d = 0; d < run->dim; d++) s += (double)v[d] * v[d];
    char msg[1200];
    const char *name = it->kind == MC_INPUT_IMAGE ? it->value : label;
    if (!isfinite(s)) snprintf(msg, sizeof msg, "%.900s: the embedding has non-finite values (written as null in JSON)", name);
    else if (s == 0 && !run->raw)
        snprintf(msg, sizeof msg, "%.900s: the embedding is zero and cannot be normalized; written as zeros "
                 "(PyTorch would give NaN)", name);
    else return;
    report(run, "warning: ", msg);
}

/* Buffers for one batch of up to `batch` inputs. */
typedef struct batch_buf {
    mc_input *items;
    float *chw, *img_out, *txt_out; /* [batch,3,R,R], [batch,dim] x 2 */
    int32_t *ids;                   /* [batch, T] */
    int *slot;                      /* item -> its row in img_out/txt_out, -1: failed */
    int *status;                    /* image j's load result */
    const char **paths;             /* image j's path */
} batch_buf;

/* Reports a bad input; returns 1 if that ends the run (no --skip-errors). */
static int bad_input(embed_run *run, const char *label) {
    char prefix[1104] = "";
    if (label[0]) snprintf(prefix, sizeof prefix, "%s: ", label);
    if (run->skip) strcat(prefix, "skipped: ");
    report(run, prefix, mobileclip_last_error(run->ctx));
    run->skipped += run->skip;
    return !run->skip;
}

/* One batch of n items: images loaded together (in parallel), texts tokenized, bad inputs
 * handled in input order, everything embedded and written in order. Returns 0, or 1 on a
 * failure that ends the run (already reported). */
static int run_batch(embed_run *run, batch_buf *b, int n, mc_embed_writer *w) {
    int R = mobileclip_image_size(run->ctx), n_img = 0, ni = 0, nt = 0;
    size_t chw_size = (size_t)3 * R * R;
    char label[1100];
    for (int k = 0; k < n; k++)
        if (b->items[k].kind == MC_INPUT_IMAGE) b->paths[n_img++] = b->items[k].value;
    if (n_img) mobileclip_load_images(run->ctx, b->paths, n_img, b->chw, b->status);
    long first_text = run->texts;
    for (int k = 0, j = 0; k < n; k++) {
        mc_input *it = &b->items[k];
        b->slot[k] = -1;
        label[0] = 0;
        if (it->kind == MC_INPUT_IMAGE) {
            float *own = b->chw + (size_t)j * chw_size;
            if (b->status[j++] == 0) { /* move the good images together for the encoder */
                if (ni != j - 1) memmove(b->chw + (size_t)ni * chw_size, own, sizeof(float) * chw_size);
                b->slot[k] = ni++;
                continue;
            }
            mobileclip_load_image(run->ctx, it->value, own); /* again, for its message (failures are rare) */
        } else {
            text_label(it, ++run->texts, label, sizeof label);
            if (!mobileclip_tokenize(run->ctx, it->value, b->ids + (size_t)nt * mobileclip_context_length(run->ctx))) {
                b->slot[k] = nt++;
                if (mobileclip_text_truncated(run->ctx, it->value) == 1) {
                    char msg[1200];
                    snprintf(msg, sizeof msg, "%.1000s: longer than %d tokens; the model sees it cut", label,
                             mobileclip_context_length(run->ctx));
                    report(run, "warning: ", msg);
                }
                continue;
            }
        }
        if (bad_input(run, label)) return 1;
    }
    if ((ni && mobileclip_encode_images(run->ctx, b->chw, ni, b->img_out, !run->raw)) ||
        (nt && mobileclip_encode_tokens(run->ctx, b->ids, nt, b->txt_out, !run->raw))) {
        report(run, "", mobileclip_last_error(run->ctx));
        return 1;
    }
    mc_err e = {0};
    long t = first_text;
    for (int k = 0; k < n; k++) {
        int text = b->items[k].kind == MC_INPUT_TEXT;
        if (text) text_label(&b->items[k], ++t, label, sizeof label);
        if (b->slot[k] < 0) continue;
        const float *v = (text ? b->txt_out : b->img_out) + (size_t)b->slot[k] * run->dim;
        check_row(run, &b->items[k], label, v);
        if (mc_embed_writer_row(w, text ? "text" : "image", b->items[k].value, v, &e)) break;
    }
    if (!e.code) mc_embed_writer_flush(w, &e);
    if (e.code) report(run, "", e.msg);
    return e.code ? 1 : 0;
}

static int parse_batch(const char *v, int *out) {
    char *end;
    errno = 0;
    long b = strtol(v, &end, 10);
    if (!*v || *end || errno || b < 1 || b > 256) {
        fprintf(stderr, "mobileclip embed: --batch expects a number from 1 to 256, got '%s'\n", v);
        return -1;
    }
    *out = (int)b;
    return 0;
}

int mc_cmd_embed(int argc, char **argv) {
    mc_model_opts o = {.arch = MOBILECLIP_ARCH_AUTO};
    embed_run run = {0};
    int batch = 8, format = -1, progress = -1, n_sources = 0, status = 2;
    const char *out = NULL;
    mc_inputs in;
    mc_inputs_init(&in);
    mc_embed_writer w = {0};
    batch_buf b = {0};
    mc_err e = {0};
    for (int i = 1; i < argc; i++) {
        int r = mc_cli_model_opt("embed", argc, argv, &i, &o);
        if (r < 0) goto done;
        if (r > 0) continue;
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            status = 0;
            goto done;
        } else if (!strcmp(a, "--raw")) {
            run.raw = 1;
        } else if (!strcmp(a, "--skip-errors")) {
            run.skip = 1;
        } else if (!strcmp(a, "--progress") || !strcmp(a, "--no-progress")) {
            progress = a[2] == 'p';
        } else if (!strcmp(a, "--image") || !strcmp(a, "--text") || !strcmp(a, "--image-list") ||
                   !strcmp(a, "--text-list") || !strcmp(a, "--image-dir")) {
            if (!(v = mc_cli_value("embed", argc, argv, &i))) goto done;
            int kind = a[2] == 't' ? MC_INPUT_TEXT : MC_INPUT_IMAGE;
            r = strstr(a, "-list") ? mc_inputs_add_list(&in, kind, v, &e)
              : strstr(a, "-dir")  ? mc_inputs_add_dir(&in, v, &e)
                                   : mc_inputs_add_value(&in, kind, v, &e);
            if (r) {
                fprintf(stderr, "mobileclip embed: %s\n", e.msg);
                status = r == MC_E_ARG ? 2 : 1;
                goto done;
            }
            n_sources++;
        } else if (!strcmp(a, "--batch") || !strcmp(a, "--format") || !strcmp(a, "--out")) {
            if (!(v = mc_cli_value("embed", argc, argv, &i))) goto done;
            if (a[2] == 'b' && parse_batch(v, &batch)) goto done;
            if (a[2] == 'o') out = v;
            if (a[2] == 'f' && (format = mc_embed_format_from_name(v)) < 0) {
                fprintf(stderr, "mobileclip embed: unknown --format '%s' (expected jsonl, npy or f32)\n", v);
                goto done;
            }
        } else {
            fprintf(stderr, "mobileclip embed: unknown option '%s' (see --help)\n", a);
            goto done;
        }
    }
    if (!n_sources) {
        fprintf(stderr, "mobileclip embed: nothing to embed: give --image, --text, --image-list, --text-list "
                        "or --image-dir\n");
        goto done;
    }
    if (format < 0) {
        size_t l = out ? strlen(out) : 0;
        format = l > 4 && !strcmp(out + l - 4, ".npy") ? MC_EMBED_NPY
               : l > 4 && !strcmp(out + l - 4, ".f32") ? MC_EMBED_F32 : MC_EMBED_JSONL;
    }
    if (format != MC_EMBED_JSONL && !out) {
        fprintf(stderr, "mobileclip embed: --format %s needs --out FILE\n", format == MC_EMBED_NPY ? "npy" : "f32");
        goto done;
    }
    if ((status = mc_cli_check_model_opts("embed", &o, in.has_kind[MC_INPUT_TEXT]))) goto done;
    status = 1;
    if (!(run.ctx = mc_cli_load("embed", &o, in.has_kind[MC_INPUT_IMAGE], in.has_kind[MC_INPUT_TEXT]))) goto done;
    run.dim = mobileclip_embed_dim(run.ctx);
    size_t R = (size_t)mobileclip_image_size(run.ctx);
    size_t nb = (size_t)batch;
    b.items = calloc(nb, sizeof *b.items);
    b.slot = calloc(nb, sizeof *b.slot);
    b.status = calloc(nb, sizeof *b.status);
    b.paths = calloc(nb, sizeof *b.paths);
    b.chw = in.has_kind[MC_INPUT_IMAGE] ? malloc(sizeof(float) * 3 * R * R * nb) : NULL;
    b.img_out = malloc(sizeof(float) * (size_t)run.dim * nb);
    b.txt_out = malloc(sizeof(float) * (size_t)run.dim * nb);
    b.ids = malloc(sizeof(int32_t) * (size_t)mobileclip_context_length(run.ctx) * nb);
    if (!b.items || !b.slot || !b.status || !b.paths || (in.has_kind[MC_INPUT_IMAGE] && !b.chw) || !b.img_out ||
        !b.txt_out || !b.ids) {
        fprintf(stderr, "mobileclip embed: out of memory\n");
        goto done;
    }
    if (mc_embed_writer_open(&w, (mc_embed_format)format, out, run.dim, &e)) {
        fprintf(stderr, "mobileclip embed: %s\n", e.msg);
        goto done;
    }
    mc_progress_start(&run.progress, progress < 0 ? isatty(2) : progress, in.total);
    long long done_items = 0;
    for (;;) {
        int n = 0, r = 0;
        while (n < batch && (r = mc_inputs_next(&in, &b.items[n], &e)) > 0) n++;
        int failed = r < 0;
        if (failed) report(&run, "", e.msg);
        else if (n) failed = run_batch(&run, &b, n, &w);
        for (int k = 0; k < n; k++) free(b.items[k].value);
        if (failed) {
            mc_progress_clear(&run.progress);
            mc_embed_writer_abort(&w);
            goto done;
        }
        if (!n) break;
        mc_progress_update(&run.progress, done_items += n);
    }
    mc_progress_finish(&run.progress);
    if (mc_embed_writer_commit(&w, &e)) {
        fprintf(stderr, "mobileclip embed: %s\n", e.msg);
        goto done;
    }
    status = run.skipped ? MC_EXIT_SKIPPED : 0;
    if (run.skipped) fprintf(stderr, "mobileclip embed: %d input%s skipped\n", run.skipped, run.skipped > 1 ? "s" : "");
done:
    mobileclip_free(run.ctx);
    mc_inputs_free(&in);
    free(b.items);
    free(b.slot);
    free(b.status);
    free(b.paths);
    free(b.chw);
    free(b.img_out);
    free(b.txt_out);
    free(b.ids);
    return status;
}
