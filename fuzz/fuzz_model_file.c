/* libFuzzer target for converted model files (io/model_file.h, models/clip_convert.c). The
 * input is a file's metadata - header, configuration, tensor and packed tables - and the data
 * section up to the header's file size is zero-filled (at most 64 MiB), so seeds stay small
 * (fuzz/seed_model_file.sh cuts real files at their data offset), and the header checksum is
 * recomputed for most inputs so that mutations reach the checks behind it. Checked: the format parser
 * over the bytes, then, when it accepts them, the model-level open of the same bytes as a file
 * (configuration, towers, plan names and shapes, packed weights). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/sha256.h"
#include "io/model_file.h"
#include "models/clip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint64_t fsize = size;
    if (size >= MC_MODEL_FILE_HEADER) memcpy(&fsize, data + 168, 8);
    if (fsize < size || fsize > ((uint64_t)64 << 20)) fsize = size;
    uint8_t *buf = calloc(1, fsize ? (size_t)fsize : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    /* re-sign the header (unless the checksum's first byte is odd) so that mutations get past
     * the checksum to the checks behind it */
    uint64_t doff = 0;
    if (fsize >= MC_MODEL_FILE_HEADER) memcpy(&doff, buf + 160, 8);
    if (fsize >= MC_MODEL_FILE_HEADER && !(buf[224] & 1) && doff >= MC_MODEL_FILE_HEADER && doff <= fsize) {
        mc_sha256 h;
        mc_sha256_init(&h);
        mc_sha256_update(&h, buf, 224);
        mc_sha256_update(&h, buf + MC_MODEL_FILE_HEADER, (size_t)(doff - MC_MODEL_FILE_HEADER));
        mc_sha256_final(&h, buf + 224);
    }
    mc_model_file f;
    mc_err e = {0};
    int ok = mc_model_file_parse(&f, buf, (size_t)fsize, "fuzz.mcm", &e) == 0;
    if (ok) {
        volatile uint8_t sink = 0;
        for (int i = 0; i < f.n_tensors; i++)
            if (f.tensors[i].size) sink ^= ((const uint8_t *)f.tensors[i].data)[f.tensors[i].size - 1];
        (void)sink;
        mc_model_file_close(&f);
        int fd = memfd_create("fuzz.mcm", 0);
        if (fd >= 0 && write(fd, buf, (size_t)fsize) == (ssize_t)fsize) {
            char path[64];
            snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
            mc_clip c;
            if (mc_clip_open_converted(&c, path, 1, 1, &e) == 0) mc_clip_free(&c);
        }
        if (fd >= 0) close(fd);
    }
    free(buf);
    return 0;
}
