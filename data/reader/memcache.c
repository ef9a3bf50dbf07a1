#include "memcache.h"

#include <stdio.h>
#include <string.h>

long long mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return -1;
    char line[256];
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1) break;
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

void cache_limit(MPI_Comm comm, long long given, long long *limit, char *how, size_t len) {
    MPI_Comm node;
    int local, on_node;
    MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &local);
    MPI_Comm_size(node, &on_node);
    long long avail = local == 0 ? mem_available() : 0; /* one reading a node: the same share for all */
    MPI_Bcast(&avail, 1, MPI_LONG_LONG, 0, node);
    MPI_Comm_free(&node);
    if (given > 0) {
        *limit = given;
        snprintf(how, len, "the limit given (--cache-limit %.3g GB)", given / 1e9);
    } else if (avail < 0) {
        *limit = -1;
        snprintf(how, len, "no limit (/proc/meminfo unreadable)");
    } else {
        *limit = (long long)(0.9 * (double)avail / on_node);
        snprintf(how, len, "its share of the node's memory (90%% of MemAvailable %.3g GB over %d rank%s on the "
                 "node: %.3g GB; --cache-limit sets it)", avail / 1e9, on_node, on_node == 1 ? "" : "s", *limit / 1e9);
    }
}
