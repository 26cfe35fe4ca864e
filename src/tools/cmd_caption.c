/* cmd_caption.c - `mobileclip caption`: synthetic captions of images or WebDataset shards with an
 * open_clip CoCa captioner, in the format the reinforcement step ingests:
 *   {"input": "PATH", "syn_text": ["...", ...]}     (images given on the command line)
 *   {"key": "KEY", "syn_text": ["...", ...]}        (samples of --input shards)
 * Without --json and --out, image captions print as "PATH<TAB>caption" (one line per caption).
 * Progress on stderr for shards. */
#include <errno.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "caption/captioner.h"
#include "io/braceexpand.h"
#include "tools/cli.h"
#include "tools/progress.h"

static const char *help =
    "usage: mobileclip caption --checkpoint FILE --arch coca_ViT-L-14|coca_ViT-B-32|CONFIG.json [options]\n"
    "                          (IMAGE... | --input 'DIR/{0000..0009}.tar')\n"
    "\n"
    "Synthetic captions with an open_clip CoCa model, generated as DataCompDR does (open_clip's\n"
    "eval preprocessing, generate(), decode, text up to <end_of_text> and before the first '.').\n"
    "Output: one JSON line per image, {\"input\": PATH, \"syn_text\": [...]}, or per shard sample,\n"
    "{\"key\": KEY, \"syn_text\": [...]}; plain \"PATH<TAB>caption\" lines for images without --json.\n"
    "\n"
    "options:\n"
    "  --checkpoint FILE   open_clip CoCa state dict (.pt from torch.save, or .safetensors)\n"
    "  --arch A            built-in open_clip config name or a model config .json\n"
    "  --num N             captions per image (default 1)\n"
    "  --method M          top_p (default, DataCompDR's), top_k or beam (grouped beam search)\n"
    "  --top-p P           nucleus mass (default 0.9)\n"
    "  --top-k K           tokens kept by top_k (default 1: greedy)\n"
    "  --temperature T     sampling temperature (default 1)\n"
    "  --beams N --groups G  beam search size and groups (default 6 and 3)\n"
    "  --seq-len L         generated length with the start and end tokens (default 30)\n"
    "  --min-len L         shortest sequence before <end_of_text> may come (default 5)\n"
    "  --repetition-penalty R  (default 1)\n"
    "  --seed S            random seed of the sampling methods (default 0)\n"
    "  --sot ID --eot ID   start / end token ids (default 49406 / 49407; the last two ids of a\n"
    "                      smaller vocabulary)\n"
    "  --batch B           images per batch (default 8)\n"
    "  --input SPEC        WebDataset shards ('DIR/{0000..0009}.tar' or a list); images are the\n"
    "                      samples' jpg/jpeg/png/webp members\n"
    "  --out FILE          write the JSON lines to FILE (default stdout)\n"
    "  --json              JSON lines for images too\n"
    "  --vocab V           BPE vocabulary (default: the built-in one)\n"
    "  --threads N         worker threads\n"
    "  --no-progress       no progress line on stderr\n";

typedef struct opts {
    const char *checkpoint, *arch, *vocab, *input, *out;
    int num, batch, threads, json, progress;
} opts;

static int parse_num(const char *opt, const char *v, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (!*v || *end || errno || !(x >= lo && x <= hi)) {
        fprintf(stderr, "mobileclip caption: %s expects a number in [%g, %g], got '%s'\n", opt, lo, hi, v);
        return -1;
    }
    *out = x;
    return 0;
}

/* Writes the result line(s) of one image. */
static void emit(FILE *f, const opts *o, const char *field, const char *name, char **caps, int num) {
    if (!o->json && !o->out && !o->input) {
        for (int k = 0; k < num; k++) fprintf(f, "%s\t%s\n", name, caps[k]);
        return;
    }
    fprintf(f, "{\"%s\":", field);
    mc_json_print_string(f, name);
    fprintf(f, ",\"syn_text\":[");
    for (int k = 0; k < num; k++) {
        if (k) fputc(',', f);
        mc_json_print_string(f, caps[k]);
    }
    fprintf(f, "]}\n");
}

/* One batch: captions of ims[0..n) named names[]; frees the images and names. */
static int flush(mc_captioner *c, const opts *o, FILE *f, const char *field, mc_image *ims, char **names, int n,
                 uint64_t *done, mc_err *e) {
    if (!n) return 0;
    char **caps = calloc((size_t)n * c->num, sizeof *caps);
    int r = caps ? mc_captioner_run(c, ims, n, *done, caps, e) : mc_fail(e, MC_E_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        if (!r) emit(f, o, field, names[i], caps + (size_t)i * c->num, c->num);
        for (int k = 0; caps && k < c->num; k++) free(caps[(size_t)i * c->num + k]);
        mc_image_free(&ims[i]);
        free(names[i]);
    }
    free(caps);
    *done += (uint64_t)n;
    return r;
}

typedef struct file_sink {
    FILE *f;
    const opts *o;
    mc_progress pr;
    long long skipped;
} file_sink;

static int sink_emit(void *user, const char *key, char *const *caps, int num, mc_err *e) {
    file_sink *s = user;
    (void)e;
    emit(s->f, s->o, "key", key, (char **)caps, num);
    return 0;
}

static void sink_skip(void *user, const char *reason) {
    file_sink *s = user;
    /* like gen.py, a sample whose image cannot be read is left out, with a warning */
    mc_progress_clear(&s->pr);
    fprintf(stderr, "mobileclip caption: skipped: %s\n", reason);
    s->skipped++;
}

static void sink_progress(void *user, long long done) { mc_progress_update(&((file_sink *)user)->pr, done); }

static int run_shards(mc_captioner *c, const opts *o, FILE *f, mc_err *e) {
    mc_strlist paths;
    mc_strlist_init(&paths);
    int r = mc_shard_list_expand(o->input, &paths, e);
    if (r) return r;
    file_sink s = {f, o, {0}, 0};
    mc_progress_start(&s.pr, o->progress, -1);
    mc_caption_sink sink = {&s, sink_emit, sink_skip, sink_progress};
    r = mc_captioner_run_shards(c, (const char *const *)paths.items, paths.count, o->batch, &sink, e);
    mc_progress_finish(&s.pr);
    if (!r && s.skipped) fprintf(stderr, "mobileclip caption: %lld sample(s) skipped\n", s.skipped);
    mc_strlist_free(&paths);
    return r;
}

int mc_cmd_caption(int argc, char **argv) {
    opts o = {.num = 1, .batch = 8, .progress = 1};
    const char **images = calloc((size_t)argc, sizeof *images);
    int n_img = 0, status = 2;
    mc_caption_params p;
    mc_caption_params_default(&p, NULL);
    p.method = MC_CAPTION_TOP_P;
    p.top_p = 0.9f;
    p.sot = p.eot = -1; /* the model's (mc_captioner_load) unless given */
    if (!images) return fprintf(stderr, "mobileclip caption: out of memory\n"), 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        double x;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            status = 0;
            goto done;
        } else if (!strcmp(a, "--json")) o.json = 1;
        else if (!strcmp(a, "--no-progress")) o.progress = 0;
        else if (a[0] == '-' && a[1] == '-') {
            if (!(v = mc_cli_value("caption", argc, argv, &i))) goto done;
            if (!strcmp(a, "--checkpoint")) o.checkpoint = v;
            else if (!strcmp(a, "--arch")) o.arch = v;
            else if (!strcmp(a, "--vocab")) o.vocab = v;
            else if (!strcmp(a, "--input")) o.input = v;
            else if (!strcmp(a, "--out")) o.out = v;
            else if (!strcmp(a, "--method")) {
                if (!strcmp(v, "top_p")) p.method = MC_CAPTION_TOP_P;
                else if (!strcmp(v, "top_k")) p.method = MC_CAPTION_TOP_K;
                else if (!strcmp(v, "beam") || !strcmp(v, "beam_search")) p.method = MC_CAPTION_BEAM;
                else {
                    fprintf(stderr, "mobileclip caption: unknown --method '%s' (top_p, top_k or beam)\n", v);
                    goto done;
                }
            } else if (!strcmp(a, "--top-p")) { if (parse_num(a, v, 0, 1, &x)) goto done; p.top_p = (float)x; }
            else if (!strcmp(a, "--temperature")) { if (parse_num(a, v, 1e-6, 1e6, &x)) goto done; p.temperature = (float)x; }
            else if (!strcmp(a, "--repetition-penalty")) { if (parse_num(a, v, 1e-6, 1e6, &x)) goto done; p.repetition_penalty = (float)x; }
            else if (!strcmp(a, "--seed")) { if (parse_num(a, v, 0, 9007199254740992.0, &x)) goto done; p.seed = (uint64_t)x; }
            else {
                static const char *const ints[] = {"--num", "--top-k", "--beams", "--groups", "--seq-len", "--min-len",
                                                   "--sot", "--eot", "--batch", "--threads"};
                int *dst[] = {&o.num, &p.top_k, &p.num_beams, &p.num_beam_groups, &p.seq_len, &p.min_seq_len,
                              &p.sot, &p.eot, &o.batch, &o.threads};
                int found = -1;
                for (int k = 0; k < 10; k++)
                    if (!strcmp(a, ints[k])) found = k;
                if (found < 0) {
                    fprintf(stderr, "mobileclip caption: unknown option '%s' (see --help)\n", a);
                    goto done;
                }
                double lo = found >= 6 && found <= 7 ? 0 : 1, hi = found >= 6 && found <= 7 ? 1 << 24 : 4096;
                if (parse_num(a, v, lo, hi, &x)) goto done;
                if (x != (double)(int)x) {
                    fprintf(stderr, "mobileclip caption: %s expects an integer, got '%s'\n", a, v);
                    goto done;
                }
                *dst[found] = (int)x;
            }
        } else images[n_img++] = a;
    }
    if (!o.checkpoint || !o.arch) {
        fprintf(stderr, "mobileclip caption: --checkpoint FILE and --arch A are required\n");
        goto done;
    }
    if (!n_img == !o.input) {
        fprintf(stderr, "mobileclip caption: give images or --input SHARDS (one of them)\n");
        goto done;
    }
    status = 1;
    mc_err e = {0};
    mc_captioner c;
    if (o.threads) omp_set_num_threads(o.threads);
    if (mc_captioner_load(&c, o.checkpoint, o.arch, o.vocab, &e)) {
        fprintf(stderr, "mobileclip caption: %s\n", e.msg);
        goto done;
    }
    p.pad = c.params.pad; /* the model's pad_id */
    if (p.sot < 0) p.sot = c.params.sot;
    if (p.eot < 0) p.eot = c.params.eot;
    c.params = p;
    c.num = o.num;
    FILE *f = o.out ? fopen(o.out, "w") : stdout;
    mc_image *ims = calloc((size_t)o.batch, sizeof *ims);
    char **names = calloc((size_t)o.batch, sizeof *names);
    int r = 0;
    if (!f) r = mc_fail(&e, MC_E_IO, "%s: cannot open for writing", o.out);
    else if (!ims || !names) r = mc_fail(&e, MC_E_NOMEM, "out of memory");
    else if (o.input) r = run_shards(&c, &o, f, &e);
    else {
        uint64_t done_n = 0;
        int n = 0;
        for (int i = 0; !r && i < n_img; i++) {
            if ((r = mc_image_load(images[i], &ims[n], &e))) break;
            if (!(names[n] = strdup(images[i]))) {
                mc_image_free(&ims[n]);
                r = mc_fail(&e, MC_E_NOMEM, "out of memory");
                break;
            }
            if (++n == o.batch) r = flush(&c, &o, f, "input", ims, names, n, &done_n, &e), n = 0;
        }
        if (!r) r = flush(&c, &o, f, "input", ims, names, n, &done_n, &e);
        else
            for (int i = 0; i < n; i++) mc_image_free(&ims[i]), free(names[i]);
    }
    free(ims);
    free(names);
    if (f && f != stdout && fclose(f) && !r) r = mc_fail(&e, MC_E_IO, "%s: write failed", o.out);
    mc_captioner_free(&c);
    if (r) fprintf(stderr, "mobileclip caption: %s\n", e.msg);
    else status = o.out ? 0 : mc_cli_finish_output("caption");
done:
    free(images);
    return status;
}
