/* cli.h - shared pieces of the `mobileclip` command-line tool.
 *
 * Every subcommand is `int mc_cmd_<name>(int argc, char **argv)` with argv[0] the
 * subcommand name; it returns the process exit status (0 ok, 1 failure, 2 usage error)
 * and reports failures as one line on stderr: "mobileclip <cmd>: <reason>".
 */
#ifndef MC_TOOLS_CLI_H
#define MC_TOOLS_CLI_H

#include <stdio.h>

#include "mobileclip.h"

int mc_cmd_embed(int argc, char **argv);
int mc_cmd_classify(int argc, char **argv);
int mc_cmd_tokenize(int argc, char **argv);
int mc_cmd_bench(int argc, char **argv);

/* Options shared by the model-loading subcommands. */
typedef struct mc_model_opts {
    const char *checkpoint;
    const char *vocab;
    int arch;          /* MOBILECLIP_ARCH_* */
    int threads;
    int training_form; /* --training-form: run without reparameterization */
} mc_model_opts;

/* If argv[*i] is one of --checkpoint/--arch/--threads/--vocab/--training-form, consumes it (and
 * its value) and returns 1; returns -1 after printing an error for a bad value; 0 otherwise. */
int mc_cli_model_opt(const char *cmd, int argc, char **argv, int *i, mc_model_opts *o);
/* The value of option argv[*i] (advancing *i), or NULL after printing "missing value". */
const char *mc_cli_value(const char *cmd, int argc, char **argv, int *i);
/* Checks the options every model command needs (--checkpoint, and --vocab when need_text);
 * prints a usage error and returns 2 if one is missing, else 0. */
int mc_cli_check_model_opts(const char *cmd, const mc_model_opts *o, int need_text);
/* Flushes stdout; returns 0, or prints "cannot write the output" and returns 1. */
int mc_cli_finish_output(const char *cmd);
/* Loads the model described by o (vocab optional); prints the error and returns NULL on failure. */
mobileclip_ctx *mc_cli_load(const char *cmd, const mc_model_opts *o, int need_image, int need_text);
/* Prints s as a JSON string literal (quotes and escapes; invalid UTF-8 bytes as U+FFFD). */
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

#define MC_CLI_MODEL_OPTS_HELP                                                                   \
    "  --checkpoint FILE   model checkpoint (.pt from torch.save, or .safetensors)\n"           \
    "  --arch A            s0 | s1 | s2 | b | auto (default: recognised from the checkpoint)\n" \
    "  --threads N         worker threads (default: $OMP_NUM_THREADS, else all cores)\n"                               \
    "  --training-form     run the unfolded training-form model (slower; for checking)\n"

#endif
