/* Prints what MPI says this process is and where that came from: under
 * `srun --mpi=pmix` the rank and size must come from Slurm's PMIx server. The sum of
 * (rank + 1) over the ranks proves that the ranks really talk to each other. Also the
 * node as MPI sees it: the processor name (host) and the rank within the node's shared-
 * memory communicator (MPI_Comm_split_type, as dist/comm/comm.c computes the local rank). */
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
    MPI_Comm node;
    int local_rank, local_size, len;
    char host[MPI_MAX_PROCESSOR_NAME];
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &local_rank);
    MPI_Comm_size(node, &local_size);
    MPI_Comm_free(&node);
    MPI_Get_processor_name(host, &len);
    printf("mpi_hello rank=%d size=%d sum=%d PMIX_RANK=%s PMIX_NAMESPACE=%s SLURM_PROCID=%s "
           "SLURM_STEP_ID=%s SLURM_MPI_TYPE=%s host=%s local_rank=%d local_size=%d SLURM_LOCALID=%s\n",
           rank, size, sum, env("PMIX_RANK"), env("PMIX_NAMESPACE"), env("SLURM_PROCID"),
           env("SLURM_STEP_ID"), env("SLURM_MPI_TYPE"), host, local_rank, local_size,
           env("SLURM_LOCALID"));
    MPI_Finalize();
    return 0;
}
