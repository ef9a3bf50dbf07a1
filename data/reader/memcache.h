/* How much memory the reader's cache (DatasetOptions.cache = DATA_CACHE_MEMORY) may take
 * on a rank: the limit given, or the rank's share of what its node has available. */
#ifndef E2E_DATA_MEMCACHE_H
#define E2E_DATA_MEMCACHE_H

#include <mpi.h>
#include <stddef.h>

/* MemAvailable of /proc/meminfo in bytes, or -1 where it cannot be read */
long long mem_available(void);
/* Collective over comm. given > 0: that; else 90% of MemAvailable (read by each node's
 * first rank) over the ranks on the node (MPI_COMM_TYPE_SHARED). *limit in bytes (-1:
 * no limit known) and how it came about, for messages. */
void cache_limit(MPI_Comm comm, long long given, long long *limit, char *how, size_t len);

#endif
