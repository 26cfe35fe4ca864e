/* fuzz_tar.c - libFuzzer target: the streaming tar reader and webdataset grouping.
 *
 * The input is a shard (plain or gzip'd tar) placed in a memfd and read through the
 * production path (mc_wds_open on /proc/self/fd/N, 64 KiB member limit so hostile sizes
 * are skipped, not allocated). Every sample is walked; every error must carry a message.
 * Seeds (fuzz/seeds/tar): webdataset/tarfile-written shards (GNU long names, pax 'x' and
 * 'g' headers, links, directories, meta names) and a gzip'd one.
 * Run: build-fuzz/fuzz_tar -max_total_time=60 corpus fuzz/seeds/tar
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "io/wds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = memfd_create("fuzz_tar", 0);
    if (fd < 0) return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    const char *paths[2] = {path, path}; /* twice: state must not leak between shards */
    mc_wds_options opt = {.max_member = 1 << 16, .max_sample = 1 << 18};
    mc_wds_reader r;
    mc_err e = {0};
    if (mc_wds_open(&r, paths, 2, &opt, &e) == 0) {
        mc_wds_sample s;
        int rc, guard = 0;
        while ((rc = mc_wds_next(&r, &s, &e)) != 0 && guard++ < 100000) {
            if (rc < 0) {
                if (!e.msg[0]) abort();
                continue;
            }
            size_t sum = 0;
            for (int i = 0; i < s.count; i++) sum += s.members[i].size + (s.members[i].data[s.members[i].size] == 0);
            if (!s.key || (s.count && sum == 0)) abort();
        }
        mc_wds_close(&r);
    }
    close(fd);
    return 0;
}
