/* The reader's memory cache (DatasetOptions.cache = DATA_CACHE_MEMORY): this rank's
 * rows of every split read into memory at open (sparse files only) when they fit in
 * the limit: the limit given, or the rank's share of what its node has available.
 * Internal to the reader (data/README.md: memory cache). */
#ifndef E2E_DATA_MEMCACHE_H
#define E2E_DATA_MEMCACHE_H

#include <mpi.h>

#include "dataset.h"
#include "rows.h"
#include "split.h"

/* Collective over comm (the limit: o->cache_limit, or 90% of MemAvailable, read by each
 * node's first rank, over the ranks on the node); then the rank's rows of sp read into
 * memory, checked (a dense file, a slice over the limit or a bad row refused, naming
 * the file). *bytes: the cache's size. A progress mark (progress.h) after each file.
 * Local result. */
int cache_load(RowFiles *rf, const SplitRows *sp, const DatasetOptions *o, MPI_Comm comm, long long *bytes);

#endif
