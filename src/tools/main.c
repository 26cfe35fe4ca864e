/* mobileclip - command-line front end: one executable, one subcommand per task. */
#include <stdio.h>
#include <string.h>

#include "tools/cli.h"

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *summary;
} commands[] = {
    {"embed", mc_cmd_embed, "image and text embeddings as JSON lines"},
    {"classify", mc_cmd_classify, "zero-shot classification of images against labels"},
    {"tokenize", mc_cmd_tokenize, "CLIP BPE token ids of texts"},
    {"bench", mc_cmd_bench, "latency, throughput and efficiency of the encoders"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: mobileclip <command> [options]   (mobileclip <command> --help for details)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "mobileclip: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
