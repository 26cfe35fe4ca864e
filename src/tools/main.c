/* mobileclip - command-line front end: one executable, one subcommand per task. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *summary;
} commands[] = {
    {"embed", mc_cmd_embed, "image and text embeddings (JSON lines, .npy or raw f32)"},
    {"classify", mc_cmd_classify, "zero-shot classification of images against labels"},
    {"tokenize", mc_cmd_tokenize, "CLIP BPE token ids of texts"},
    {"index", mc_cmd_index, "build or update a search index of an image collection"},
    {"search", mc_cmd_search, "nearest images in an index to a text or image query"},
    {"eval", mc_cmd_eval, "zero-shot accuracy and image-text retrieval recall on a dataset"},
    {"reinforce", mc_cmd_reinforce, "dataset reinforcement: DataCompDR shards with teacher embeddings"},
    {"bench", mc_cmd_bench, "latency, throughput and efficiency of the encoders"},
    {"convert", mc_cmd_convert, "a model's inference plan as a file for instant mapped loading"},
    {"experiment", mc_cmd_experiment, "the Fashion-MNIST experiment: data, caption quality, configurations"},
    {"train", mc_cmd_train, "train a model (reinforced DR loss or plain CLIP) on WebDataset shards"},
    {"caption", mc_cmd_caption, "synthetic captions of images or shards with a CoCa captioner"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: mobileclip <command> [options]   (mobileclip <command> --help for details)\n"
               "       mobileclip --version | --help\n"
               "Options are --name VALUE or --name=VALUE. Exit status: 0 ok, 1 failure, 2 usage error,\n"
               "3 done with skipped inputs (embed --skip-errors).\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

static int run(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) return mc_cmd_version(stdout);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "mobileclip: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}

int main(int argc, char **argv) {
    int n;
    char **args = mc_cli_split_equals(argc, argv, &n); /* --opt=value as --opt value, everywhere */
    if (!args) {
        fprintf(stderr, "mobileclip: out of memory\n");
        return 1;
    }
    int status = run(n, args);
    free(args);
    return status;
}
