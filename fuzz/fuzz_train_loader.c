/* fuzz_train_loader.c - libFuzzer target: the training data loader (train/loader.h) over one
 * hostile shard: tar grouping, image decoding, paug.json / syn.json / npz parsing, the choice
 * of the teacher rows, tokenisation and augmentation, on the loader's threads.
 *
 * The first byte picks reinforced (odd) or plain (even) samples; the rest is the shard, placed
 * in a memfd (64 KiB member limit). One batch of one sample is asked for: it must come back
 * or fail with a message (an epoch without a usable sample is an error, never a hang).
 * Seeds (fuzz/seeds/loader): a one-sample shard of tests/common/dr_shards.h.
 * Run: build-fuzz/fuzz_train_loader -max_total_time=60 corpus fuzz/seeds/loader
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "text/tokenizer.h"
#include "train/loader.h"

static mc_tokenizer *tok;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    mc_err e = {0};
    if (!tok && !(tok = mc_tokenizer_load_builtin(&e))) abort();
    int fd = memfd_create("fuzz_loader", 0);
    if (fd < 0) return 0;
    if (size > 1 && write(fd, data + 1, size - 1) != (ssize_t)(size - 1)) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    mc_loader_config c = {.spec = path, .reinforced = data[0] & 1, .teacher_dim = 16, .batch = 1, .image_size = 16,
                          .context = 8, .tokenizer = tok, .threads = 1, .queue = 2, .max_member = 1 << 16,
                          .seed = 1, .rank = 0, .world = 1};
    mc_loader *l;
    if (mc_loader_open(&l, &c, &e) == 0) {
        mc_batch b;
        if (mc_batch_alloc(&b, l, &e) == 0) {
            if (mc_loader_next(l, &b, &e) != 0 && !e.msg[0]) abort();
            mc_batch_free(&b);
        }
        mc_loader_close(l);
    }
    close(fd);
    return 0;
}
