/* make_reinforce_fixture DIR: writes the dataset-reinforcement test fixture
 * (tests/common/reinforce_fixture.h) into the existing directory DIR, for cli_reinforce.sh. */
#include <stdio.h>

#include "common/reinforce_fixture.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: make_reinforce_fixture DIR\n");
        return 2;
    }
    mc_fix_write(argv[1]);
    return 0;
}
