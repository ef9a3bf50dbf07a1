/* Prints what MPI says this process is and where that came from: under
 * `srun --mpi=pmix` the rank and size must come from Slurm's PMIx server. The sum of
 * (rank + 1) over the ranks proves that the ranks really talk to each other. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v ? v : "-";
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size, sum;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int mine = rank + 1;
    MPI_Allreduce(&mine, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    printf("mpi_hello rank=%d size=%d sum=%d PMIX_RANK=%s PMIX_NAMESPACE=%s SLURM_PROCID=%s "
           "SLURM_STEP_ID=%s SLURM_MPI_TYPE=%s\n",
           rank, size, sum, env("PMIX_RANK"), env("PMIX_NAMESPACE"), env("SLURM_PROCID"),
           env("SLURM_STEP_ID"), env("SLURM_MPI_TYPE"));
    MPI_Finalize();
    return 0;
}
