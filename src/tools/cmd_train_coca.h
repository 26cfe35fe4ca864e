/* cmd_train_coca.h - `mobileclip train` for an open_clip CoCa configuration (cmd_train_coca.c). */
#ifndef MC_TOOLS_CMD_TRAIN_COCA_H
#define MC_TOOLS_CMD_TRAIN_COCA_H

/* 1 when --config names a JSON file with "multimodal_cfg" (a CoCa captioner). */
int mc_cmd_train_is_coca(int argc, char **argv);
int mc_cmd_train_coca(int argc, char **argv);

#endif
