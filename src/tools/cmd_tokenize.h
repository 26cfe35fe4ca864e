/* cmd_tokenize.h - `mobileclip tokenize`: print CLIP token ids of texts. */
#ifndef MC_TOOLS_CMD_TOKENIZE_H
#define MC_TOOLS_CMD_TOKENIZE_H

/* argv[0] is the subcommand name ("tokenize"), argv[1..argc-1] its arguments.
 * Returns the process exit status (0, or 1 after one "mobileclip tokenize: ..."
 * line on stderr). */
int mc_cmd_tokenize(int argc, char **argv);

#endif
