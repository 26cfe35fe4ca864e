/* mobileclip reinforce: multi-modal dataset reinforcement (paper section 3.1) of WebDataset
 * shards into DataCompDR-layout shards; see src/reinforce/job.h. */
#include <errno.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "caption/captioner.h"
#include "io/braceexpand.h"
#include "io/json.h"
#include "io/mapped_file.h"
#include "reinforce/job.h"
#include "tools/cli.h"
#include "tools/progress.h"

static const char *help =
    "usage: mobileclip reinforce --input 'DIR/{00000..00009}.tar' --teacher FILE:ARCH [--teacher FILE:ARCH ...]\n"
    "                            --num-aug N --out DIR [--syn captions.jsonl | --captioner FILE --num-syn M]\n"
    "                            [--dtype f32|bf16] [--seed S] [--keep-images] [--shard-index i --num-shards n]\n"
    "                            [--threads N] [--batch B] [--aug-config FILE] [--vocab V] [--progress]\n"
    "\n"
    "For every sample of the input shards: N augmentation parameter sets (seeded per sample key),\n"
    "the teacher-ensemble embeddings of the N augmented images, of the real caption (txt) and of\n"
    "every synthetic caption; written as DataCompDR shards (same shard names and keys) to DIR.\n"
    "Finished output shards are verified and skipped, so a killed job resumes where it stopped.\n"
    "Bad samples are skipped and summarised at the end.\n"
    "\n"
    "options:\n"
    "  --input SPEC        input shards, brace-expanded ('a/{000..009}.tar', '::' joins lists)\n"
    "  --teacher FILE:ARCH teacher checkpoint and architecture (repeatable, in ensemble order): an\n"
    "                      open_clip name (ViT-L-14, ViT-L-14-quickgelu, ViT-B-16, ViT-B-32, ...), an\n"
    "                      open_clip model config .json, a MobileCLIP arch (s0, s1, s2, b, auto) or\n"
    "                      a MobileCLIP configuration .json (the reference's schema, as train --config)\n"
    "  --num-aug N         augmentations per sample (DataCompDR-12M: 30)\n"
    "  --vocab V           BPE vocabulary override (default: the built-in bpe_simple_vocab_16e6)\n"
    "  --out DIR           output directory (created)\n"
    "  --syn FILE          synthetic captions, JSON lines {\"key\": K, \"syn_text\": [...]} (default:\n"
    "                      the input's syn.json members when present)\n"
    "  --captioner FILE[:ARCH]  generate the synthetic captions in-process with an open_clip CoCa\n"
    "                      model (ARCH: coca_ViT-L-14, the default, coca_ViT-B-32 or a config .json),\n"
    "                      --num-syn M per sample (default 5), top_p 0.9 as DataCompDR, --seed S\n"
    "  --dtype T           f32: npz (default); bf16: pth.gz as DataCompDR-12M-bf16\n"
    "  --seed S            augmentation seed (default 0)\n"
    "  --keep-images       also store the image members (DataCompDR stores url.txt only)\n"
    "  --shard-index i     this process's part: shards k with k % n == i (job arrays, MPI ranks)\n"
    "  --num-shards n      number of parts (default 1)\n"
    "  --threads N         worker threads (default: $OMP_NUM_THREADS, else all cores)\n"
    "  --batch B           augmented images per teacher batch (default 32)\n"
    "  --aug-config FILE   the reference's augmentation config (training/configs/datacompdr12m.json);\n"
    "                      default: DataCompDR's with the crop size of the largest teacher\n"
    "  --progress          progress line on stderr even when it is not a terminal\n";

static int parse_int(const char *opt, const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long k = strtol(v, &end, 10);
    if (!*v || *end || errno || k < lo || k > hi) {
        fprintf(stderr, "mobileclip reinforce: %s expects a number from %ld to %ld, got '%s'\n", opt, lo, hi, v);
        return -1;
    }
    *out = k;
    return 0;
}

static int load_aug_config(const char *path, mc_augment_config *cfg) {
    void *addr;
    size_t len;
    mc_err e = {0};
    if (mc_map_file(path, &addr, &len, &e)) {
        fprintf(stderr, "mobileclip reinforce: %s\n", e.msg);
        return -1;
    }
    mc_json *j = mc_json_parse(addr, len, &e);
    munmap(addr, len);
    int r = j ? mc_augment_config_from_json(j, cfg, &e) : -1;
    if (!r) r = mc_augment_config_check(cfg, &e);
    mc_json_free(j);
    if (r) fprintf(stderr, "mobileclip reinforce: %s: %s\n", path, e.msg);
    return r ? -1 : 0;
}

/* ---- --captioner: synthetic captions generated in-process (caption/captioner.h) ---- */

typedef struct syn_sink {
    mc_syn_store *syn;
    mc_progress pr;
    long long skipped;
} syn_sink;

/* {"key": K, "syn_text": [...]} as one store line, the format of `mobileclip caption` */
static int syn_emit(void *user, const char *key, char *const *caps, int num, mc_err *e) {
    syn_sink *s = user;
    char *body = NULL;
    size_t blen = 0, klen = strlen(key), n = 0, cap = 6 * klen + 16;
    int r = mc_syn_json_write(caps, num, &body, &blen, e);
    char *line = r ? NULL : malloc(cap + blen + 16);
    if (!r && !line) r = mc_fail(e, MC_E_NOMEM, "out of memory");
    if (!r) {
        memcpy(line, "{\"key\": ", 8);
        n = 8;
        if (mc_pyjson_dump_string(key, klen, line, cap, &n))
            r = mc_fail(e, MC_E_ARG, "captioner: sample key '%s' is not UTF-8", key);
    }
    if (!r) {
        line[n++] = ',';
        line[n++] = ' ';
        memcpy(line + n, body + 1, blen - 1); /* the body without its '{' */
        n += blen - 1;
        int k = mc_syn_add_line(s->syn, line, n, "captioner", e);
        r = k < 0 ? k : 0;
    }
    free(line);
    free(body);
    return r;
}

static void syn_skip(void *user, const char *reason) {
    syn_sink *s = user;
    (void)reason; /* the reinforcement pass reports the same samples with its reasons */
    s->skipped++;
}

static void syn_progress(void *user, long long done) { mc_progress_update(&((syn_sink *)user)->pr, done); }

/* spec "FILE[:ARCH]" (ARCH a built-in name or a .json; default coca_ViT-L-14, the paper's): captions
 * of this process's shards (k % num_shards == shard_index) into syn. */
static int caption_inputs(const char *spec, const char *vocab, int num, const mc_reinforce_opts *o, mc_syn_store *syn,
                          mc_err *e) {
    char file[4096];
    const char *arch = "coca_ViT-L-14", *colon = strrchr(spec, ':');
    snprintf(file, sizeof file, "%s", spec);
    if (colon && (mc_oc_cfg_is_builtin(colon + 1) || strstr(colon + 1, ".json"))) {
        arch = colon + 1;
        file[colon - spec < (long)sizeof file ? colon - spec : (long)sizeof file - 1] = 0;
    }
    mc_captioner c;
    int r = mc_captioner_load(&c, file, arch, vocab, e);
    if (r) return r;
    c.num = num;
    c.params.method = MC_CAPTION_TOP_P; /* DataCompDR's generate(top_p=0.9, fixed_output_length=True) */
    c.params.top_p = 0.9f;
    c.params.seed = o->seed;
    mc_strlist all, mine;
    mc_strlist_init(&all);
    mc_strlist_init(&mine);
    r = mc_shard_list_expand(o->input, &all, e);
    for (int k = 0; !r && k < all.count; k++)
        if (k % o->num_shards == o->shard_index) r = mc_strlist_push(&mine, all.items[k], strlen(all.items[k]), e);
    syn_sink s = {syn, {0}, 0};
    mc_progress_start(&s.pr, o->progress, -1);
    mc_caption_sink sink = {&s, syn_emit, syn_skip, syn_progress};
    if (!r) r = mc_captioner_run_shards(&c, (const char *const *)mine.items, mine.count, 8, &sink, e);
    mc_progress_finish(&s.pr);
    mc_strlist_free(&all);
    mc_strlist_free(&mine);
    mc_captioner_free(&c);
    return r;
}

int mc_cmd_reinforce(int argc, char **argv) {
    const char *cmd = "reinforce";
    mc_reinforce_opts o;
    mc_reinforce_opts_init(&o);
    const char *teachers[64], *vocab = NULL, *syn_path = NULL, *captioner = NULL, *aug_path = NULL;
    int nteach = 0, have_aug = 0, have_idx = 0, progress = 0;
    long v, threads = 0, num_syn = 0;
    o.num_aug = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return 0;
        }
        if (!strcmp(a, "--keep-images")) {
            o.keep_images = 1;
            continue;
        }
        if (!strcmp(a, "--progress")) {
            progress = 1;
            continue;
        }
        static const char *valued[] = {"--input", "--teacher", "--num-aug", "--vocab", "--out", "--syn", "--captioner",
                                       "--num-syn", "--dtype", "--seed", "--shard-index", "--num-shards", "--threads",
                                       "--batch", "--aug-config"};
        int known = 0;
        for (size_t k = 0; k < sizeof valued / sizeof *valued; k++) known |= !strcmp(a, valued[k]);
        if (!known) {
            fprintf(stderr, "mobileclip reinforce: unknown option '%s' (see --help)\n", a);
            return 2;
        }
        if (!(val = mc_cli_value(cmd, argc, argv, &i))) return 2;
        if (!strcmp(a, "--input")) o.input = val;
        else if (!strcmp(a, "--teacher")) {
            if (nteach == 64) {
                fprintf(stderr, "mobileclip reinforce: at most 64 teachers\n");
                return 2;
            }
            teachers[nteach++] = val;
        } else if (!strcmp(a, "--num-aug")) {
            if (parse_int(a, val, 1, 10000, &v)) return 2;
            o.num_aug = (int)v;
        } else if (!strcmp(a, "--vocab")) vocab = val;
        else if (!strcmp(a, "--out")) o.out_dir = val;
        else if (!strcmp(a, "--syn")) syn_path = val;
        else if (!strcmp(a, "--captioner")) captioner = val;
        else if (!strcmp(a, "--num-syn")) {
            if (parse_int(a, val, 1, 1000, &num_syn)) return 2;
        } else if (!strcmp(a, "--dtype")) {
            if (strcmp(val, "f32") && strcmp(val, "bf16")) {
                fprintf(stderr, "mobileclip reinforce: --dtype expects f32 or bf16, got '%s'\n", val);
                return 2;
            }
            o.bf16 = !strcmp(val, "bf16");
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(val, &end, 10);
            if (!*val || *end || errno || val[0] == '-') {
                fprintf(stderr, "mobileclip reinforce: --seed expects a non-negative integer, got '%s'\n", val);
                return 2;
            }
            o.seed = s;
        } else if (!strcmp(a, "--shard-index")) {
            if (parse_int(a, val, 0, 1 << 30, &v)) return 2;
            o.shard_index = (int)v;
            have_idx = 1;
        } else if (!strcmp(a, "--num-shards")) {
            if (parse_int(a, val, 1, 1 << 30, &v)) return 2;
            o.num_shards = (int)v;
        } else if (!strcmp(a, "--threads")) {
            if (parse_int(a, val, 1, 1024, &threads)) return 2;
        } else if (!strcmp(a, "--batch")) {
            if (parse_int(a, val, 1, 4096, &v)) return 2;
            o.batch_images = (int)v;
        } else if (!strcmp(a, "--aug-config")) {
            aug_path = val;
            have_aug = 1;
        }
    }
    const char *missing = !o.input ? "--input SPEC" : !nteach ? "--teacher FILE:ARCH" : !o.num_aug ? "--num-aug N"
                        : !o.out_dir ? "--out DIR" : NULL;
    if (missing) {
        fprintf(stderr, "mobileclip reinforce: %s is required (see --help)\n", missing);
        return 2;
    }
    if (syn_path && captioner) {
        fprintf(stderr, "mobileclip reinforce: --syn and --captioner exclude each other\n");
        return 2;
    }
    if (num_syn && !captioner) {
        fprintf(stderr, "mobileclip reinforce: --num-syn goes with --captioner\n");
        return 2;
    }
    if (o.shard_index >= o.num_shards || (have_idx && o.num_shards < 1)) {
        fprintf(stderr, "mobileclip reinforce: --shard-index %d must be below --num-shards %d\n", o.shard_index,
                o.num_shards);
        return 2;
    }
    if (have_aug && load_aug_config(aug_path, &o.aug)) return 1;
    if (threads) omp_set_num_threads((int)threads);
    o.progress = progress || isatty(2);

    mc_err e = {0};
    if (mc_reinforce_check_out_dir(o.out_dir, &e)) {
        fprintf(stderr, "mobileclip reinforce: %s\n", e.msg);
        return 1;
    }
    mc_teacher_ensemble ens;
    mc_teacher_ensemble_init(&ens);
    mc_tokenizer *tok = NULL;
    mc_syn_store syn;
    mc_syn_init(&syn);
    int status = 1;
    for (int k = 0; k < nteach; k++)
        if (mc_teacher_ensemble_add_spec(&ens, teachers[k], &e)) goto fail;
    int rmax = 0;
    for (int k = 0; k < ens.count; k++)
        if (ens.teachers[k].image_size > rmax) rmax = ens.teachers[k].image_size;
    if (!have_aug) o.aug.size_w = o.aug.size_h = rmax; /* the reference: "Set crop size to max of all models." */
    else if (o.aug.size_w != o.aug.size_h || o.aug.size_w < rmax) {
        mc_fail(&e, MC_E_ARG, "%s: the crop size %dx%d must be square and at least the largest teacher's %d", aug_path,
                o.aug.size_w, o.aug.size_h, rmax);
        goto fail;
    }
    if (!(tok = vocab ? mc_tokenizer_load(vocab, &e) : mc_tokenizer_load_builtin(&e))) goto fail;
    if (syn_path) {
        if (mc_syn_load(&syn, syn_path, &e)) goto fail;
        if (syn.bad_lines || syn.unknown_keys || syn.duplicates)
            fprintf(stderr, "mobileclip reinforce: %s: %lld malformed lines (their samples are skipped; first: %s), "
                            "%lld unknown keys ignored, %lld repeated keys\n",
                    syn_path, syn.bad_lines, syn.bad_lines ? syn.first_bad : "-", syn.unknown_keys, syn.duplicates);
        o.syn = &syn;
    } else if (captioner) {
        if (caption_inputs(captioner, vocab, num_syn ? (int)num_syn : 5, &o, &syn, &e)) goto fail;
        o.syn = &syn;
    }
    mc_reinforce_stats st;
    int r = mc_reinforce_run(&o, &ens, tok, &st, &e);
    if (r < 0) goto fail;
    mc_reinforce_print_summary(stderr, &st);
    status = r ? 1 : 0;
    goto done;
fail:
    fprintf(stderr, "mobileclip reinforce: %s\n", e.msg);
done:
    mc_syn_free(&syn);
    mc_tokenizer_free(tok);
    mc_teacher_ensemble_free(&ens);
    return status;
}
