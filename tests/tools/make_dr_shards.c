/* make_dr_shards DIR N_SHARDS PER_SHARD HALF AUG_SIZE BAD_EVERY - writes the test shards of
 * tests/common/dr_shards.h (for the CLI training tests). */
#include <stdio.h>
#include <stdlib.h>

#include "common/dr_shards.h"

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: make_dr_shards DIR N_SHARDS PER_SHARD HALF AUG_SIZE BAD_EVERY\n");
        return 2;
    }
    mc_test_write_dr_shards(argv[1], atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]));
    return 0;
}
