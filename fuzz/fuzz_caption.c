/* libFuzzer target for the caption matcher (experiment/fmnist.h): any bytes, no crash, no
 * read past the input; the result does not depend on ASCII case. */
#include <stdlib.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "experiment/fmnist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *t = malloc(size ? size : 1);
    if (!t) return 0;
    for (size_t i = 0; i < size; i++) t[i] = (char)(data[i] >= 'a' && data[i] <= 'z' ? data[i] - 32 : data[i]);
    uint32_t a = mc_fmnist_caption_classes((const char *)data, size), b = mc_fmnist_caption_classes(t, size);
    if (a != b || a >= (1u << MC_FMNIST_CLASSES)) abort();
    mc_caption_quality q = {0};
    mc_caption_quality_add(&q, (const char *)data, size, 3);
    free(t);
    return 0;
}
