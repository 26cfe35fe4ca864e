/* comm_mpi.c - train/comm.h over MPI (compiled only when CMake finds MPI; see comm.h).
 * Float sums use MPI_SUM on MPI_FLOAT: the reduction order is the MPI library's, the same
 * on every rank (all ranks get bit-identical gradients, so their parameters stay equal). */
#include "train/comm.h"

#include <mpi.h>
#include <limits.h>
#include <stdlib.h>

static int gather(void *user, const float *local, float *all, size_t n) {
    (void)user;
    if (n > (size_t)INT_MAX) return -1;
    return MPI_Allgather(local, (int)n, MPI_FLOAT, all, (int)n, MPI_FLOAT, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : -1;
}

/* in place, in chunks (MPI counts are int) */
static int reduce(void *user, float *buf, size_t n) {
    (void)user;
    for (size_t at = 0; at < n;) {
        size_t k = n - at > (size_t)1 << 30 ? (size_t)1 << 30 : n - at;
        if (MPI_Allreduce(MPI_IN_PLACE, buf + at, (int)k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS) return -1;
        at += k;
    }
    return 0;
}

static int reduce_double(void *user, double *buf, size_t n) {
    (void)user;
    return MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : -1;
}

/* Launched by mpirun? (OpenMPI, MPICH / Hydra, PMIx and Slurm set one of these.) */
static int under_mpirun(void) {
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

int mc_comm_mpi_init(mc_comm *c, int *argc, char ***argv, mc_err *e) {
    *c = (mc_comm){.rank = 0, .world = 1};
    if (!under_mpirun()) return 0;
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return mc_fail(e, MC_E_IO, "MPI_Init failed");
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->world);
    c->allgather = gather;
    c->allreduce = reduce;
    c->allreduce_double = reduce_double;
    c->user = c; /* marks MPI as started */
    return 0;
}

void mc_comm_mpi_barrier(const mc_comm *c) {
    if (c->user) MPI_Barrier(MPI_COMM_WORLD);
}

void mc_comm_mpi_finish(mc_comm *c) {
    if (c->user) {
        int bad = 0;
        MPI_Finalized(&bad);
        if (!bad) MPI_Finalize();
    }
    c->user = NULL;
}
