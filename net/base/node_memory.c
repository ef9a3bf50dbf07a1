/* node_memory.h */
#include "node_memory.h"

#include <stdio.h>

#include "host_memory.h"

void node_memory_share(MPI_Comm comm, long long *share, char *how, size_t len) {
    MPI_Comm shared;
    int local, on_node;
    char what[512] = "";
    MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &shared);
    MPI_Comm_rank(shared, &local);
    MPI_Comm_size(shared, &on_node);
    long long avail = local == 0 ? host_memory_available(what, sizeof what) : 0; /* one reading a node */
    MPI_Bcast(&avail, 1, MPI_LONG_LONG, 0, shared);
    MPI_Bcast(what, sizeof what, MPI_CHAR, 0, shared);
    MPI_Comm_free(&shared);
    *share = avail < 0 ? -1 : avail / on_node;
    if (avail < 0)
        snprintf(how, len, "unknown (/proc/meminfo unreadable)");
    else
        snprintf(how, len, "%.3g GB: %s over %d rank%s on the node", *share / 1e9, what, on_node,
                 on_node == 1 ? "" : "s");
}
