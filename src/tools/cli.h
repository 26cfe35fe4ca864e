/* cli.h - shared pieces of the `mobileclip` command-line tool.
 *
 * Every subcommand is `int mc_cmd_<name>(int argc, char **argv)` with argv[0] the
 * subcommand name; it returns the process exit status (0 ok, 1 failure, 2 usage error)
 * and reports failures as one line on stderr: "mobileclip <cmd>: <reason>".
 * Exit statuses (README "Exit codes"): 0 ok, 1 failure, 2 usage error, 3 (MC_EXIT_SKIPPED) the
 * run completed but some inputs were skipped (--skip-errors).
 */
#ifndef MC_TOOLS_CLI_H
#define MC_TOOLS_CLI_H

#include <stdio.h>

#include "mobileclip.h"

#define MC_EXIT_SKIPPED 3

int mc_cmd_embed(int argc, char **argv);
int mc_cmd_classify(int argc, char **argv);
int mc_cmd_tokenize(int argc, char **argv);
int mc_cmd_index(int argc, char **argv);
int mc_cmd_search(int argc, char **argv);
int mc_cmd_eval(int argc, char **argv);
int mc_cmd_reinforce(int argc, char **argv);
int mc_cmd_experiment(int argc, char **argv);
int mc_cmd_train(int argc, char **argv);
int mc_cmd_caption(int argc, char **argv);

/* Prints the version, compiler and CPU features (mobileclip --version). */
int mc_cmd_version(FILE *f);
/* argv with every option "--name=value" split into "--name" "value" (so each command parses one
 * form), except the value of a value-taking option and anything after "--". NULL when out of
 * memory; free() the array (its strings are argv's). */
char **mc_cli_split_equals(int argc, char **argv, int *out_argc);
int mc_cmd_bench(int argc, char **argv);
int mc_cmd_convert(int argc, char **argv);

/* Options shared by the model-loading subcommands. */
typedef struct mc_model_opts {
    const char *checkpoint;
    const char *vocab;
    int arch;          /* MOBILECLIP_ARCH_* */
    const char *config; /* --config FILE: model configuration (JSON, reference schema) */
    int threads;
    int training_form; /* --training-form: run without reparameterization */
    int precision;     /* --precision f32|bf16|int8: MOBILECLIP_PRECISION_* (default f32) */
    int precision_given; /* --precision was given (else a converted model runs at its own precision) */
} mc_model_opts;

/* If argv[*i] is one of --checkpoint/--arch/--config/--threads/--vocab/--precision/--training-form, consumes it (and
 * its value) and returns 1; returns -1 after printing an error for a bad value; 0 otherwise. */
int mc_cli_model_opt(const char *cmd, int argc, char **argv, int *i, mc_model_opts *o);
/* The value of option argv[*i] (advancing *i), or NULL after printing "missing value". */
const char *mc_cli_value(const char *cmd, int argc, char **argv, int *i);
/* Checks the options every model command needs (--checkpoint; the vocabulary is built in);
 * prints a usage error and returns 2 if one is missing, else 0. */
int mc_cli_check_model_opts(const char *cmd, const mc_model_opts *o, int need_text);
/* Flushes stdout; returns 0, or prints "cannot write the output" and returns 1. */
int mc_cli_finish_output(const char *cmd);
/* Loads the model described by o (vocab optional); prints the error and returns NULL on failure. */
mobileclip_ctx *mc_cli_load(const char *cmd, const mc_model_opts *o, int need_image, int need_text);
/* Prints s as a JSON string literal (quotes and escapes). A byte that is not part of valid
 * UTF-8 is written as the lone surrogate \udcXX (XX the byte, always >= 0x80), as Python's
 * surrogateescape does, so the original bytes can be recovered: valid UTF-8 never encodes
 * U+DC80..U+DCFF, hence no other string prints the same. */
void mc_json_print_string(FILE *f, const char *s);
/* Prints v with `digits` significant digits, or null when not finite (JSON has no NaN). */
void mc_json_print_number(FILE *f, float v, int digits);
/* Prints "[v0,v1,...]" with round-trip float precision. */
void mc_json_print_floats(FILE *f, const float *v, int n);
/* Reads the lines of a UTF-8 text file into a NULL-terminated array: a leading byte-order
 * mark is dropped, each line is trimmed of surrounding whitespace (CR included) and blank
 * lines are skipped. NULL with a message on failure. Free with mc_cli_free_lines. */
char **mc_cli_read_lines(const char *cmd, const char *path, int *count);
void mc_cli_free_lines(char **lines);
/* The prompt templates named by a --templates value: "imagenet" (CLIP's 80), "simple"
 * ("a photo of a {}."), or a file with one template per line (kept in *owned, free it with
 * mc_cli_free_lines). NULL after printing the reason. */
const char *const *mc_cli_templates(const char *cmd, const char *arg, int *count, char ***owned);

#define MC_CLI_MODEL_OPTS_HELP                                                                   \
    "  --checkpoint FILE   model checkpoint (.pt from torch.save, or .safetensors), or a model\n" \
    "                      converted by `mobileclip convert` (used in place, mapped)\n"          \
    "  --arch A            s0 | s1 | s2 | b | auto (default: recognised from the checkpoint)\n" \
    "  --config FILE       model configuration (JSON, the reference's schema) instead of --arch\n" \
    "  --threads N         worker threads (default: $OMP_NUM_THREADS, else all cores)\n"         \
    "  --vocab V           BPE vocabulary override (default: the built-in bpe_simple_vocab_16e6;\n" \
    "                      also merges.txt, vocab.json + merges.txt, or a folder holding them)\n" \
    "  --training-form     run the training-form model (slower; for checking)\n"              \
    "  --precision P       f32 (default; a converted model: its own), bf16 or int8 matrix\n"     \
    "                      products (docs/BENCHMARKS.md)\n"

#endif
