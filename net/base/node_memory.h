/* Each rank's share of its node's host memory (host_memory.h), for the limits that
 * ranks sharing a node must divide: the reader's memory cache, the CPU model's buffers.
 * Needs MPI: built into e2e_base_mpi. */
#ifndef E2E_BASE_NODE_MEMORY_H
#define E2E_BASE_NODE_MEMORY_H

#include <mpi.h>
#include <stddef.h>

/* Collective over comm: host_memory_available(), read once a node by its first rank
 * (MPI_COMM_TYPE_SHARED), over the node's ranks in *share (bytes; -1 where it cannot be
 * read). `how` (len bytes) says what the share is, for messages: "1.2 GB: MemAvailable
 * 4.8 GB over 4 ranks on the node". */
void node_memory_share(MPI_Comm comm, long long *share, char *how, size_t len);

#endif
