/* fuzz_config.c - libFuzzer target for model configurations (mc_clip_config_parse: the JSON
 * reader and the schema checks). A configuration that parses must also validate as a tower
 * configuration and survive write -> parse unchanged; failures must say why.
 * Seeds: the JSON files of tests/data/configs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "models/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mc_clip_config c, again;
    mc_err e = {0};
    if (mc_clip_config_parse((const char *)data, size, "fuzz.json", &c, &e) != 0) {
        if (!e.msg[0]) abort();
        return 0;
    }
    if (c.image == MC_IMAGE_MCI && mc_mci_config_check(&c.mci, &e)) abort();
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return 0;
    if (mc_clip_config_write(&c, f)) abort();
    fclose(f);
    if (mc_clip_config_parse(buf, len, "written.json", &again, &e) || !mc_clip_config_equal(&c, &again)) abort();
    free(buf);
    return 0;
}
