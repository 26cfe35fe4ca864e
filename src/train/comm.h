/* comm.h - the data-parallel transport of `mobileclip train` (step.h's mc_comm).
 *
 * Built only when CMake finds MPI (src/mpi/comm_mpi.c, Debian's OpenMPI): then
 * MC_HAVE_MPI is defined for the tool. mc_comm_mpi_init starts MPI when the process was
 * launched by mpirun (world > 1) and fills c; a plain launch gives world 1 and no MPI calls.
 * Collectives: MPI_Allgather for the features, one MPI_Allreduce (sum) over the whole
 * gradient arena per step. */
#ifndef MC_TRAIN_COMM_H
#define MC_TRAIN_COMM_H

#include "train/step.h"

int mc_comm_mpi_init(mc_comm *c, int *argc, char ***argv, mc_err *e);
/* A barrier (rank 0 writes checkpoints; the others wait). */
void mc_comm_mpi_barrier(const mc_comm *c);
void mc_comm_mpi_finish(mc_comm *c);

#endif
