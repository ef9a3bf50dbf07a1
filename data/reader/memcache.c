/* The reader's memory cache (memcache.h): the limit a rank may take, and the rank's
 * rows of every split loaded into each sparse file's cache (sparsefile_cache_load), after
 * which reads of them touch no file. */
#include "memcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "progress.h"
#include "sparsefile.h"

/* MemAvailable of /proc/meminfo in bytes, or -1 where it cannot be read */
static long long mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return -1;
    char line[256];
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1) break;
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

/* Collective over comm. given > 0: that; else 90% of MemAvailable (read by each node's
 * first rank) over the ranks on the node (MPI_COMM_TYPE_SHARED). *limit in bytes (-1:
 * no limit known) and how it came about, for messages. */
static void cache_limit(MPI_Comm comm, long long given, long long *limit, char *how, size_t len) {
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

/* rows[0..n) (increasing dataset rows) that lie in file i, as file rows in place;
 * returns how many */
static long long to_file_rows(const RowFiles *rf, int i, long long *rows, long long n) {
    long long k = 0;
    while (k < n && rows[k] < rf->start[i + 1]) rows[k++] -= rf->start[i];
    return k;
}

static int refuse_dense(const RowFiles *rf) {
    for (int i = 0; i < rf->n; i++)
        if (!rf->file[i].sparse)
            return e2e_fail("%s: --cache memory holds sparse files only, and this one is dense (%lld jets of %.0f KB); "
                            "make a sparse copy with e2e-data convert --layout sparse", rf->file[i].path,
                            rf->file[i].n, rf->file[i].row_bytes / 1e3);
    return 0;
}

int cache_load(RowFiles *rf, const SplitRows *sp, const DatasetOptions *o, MPI_Comm comm, long long *bytes) {
    long long limit, n;
    char how[256];
    int rank;
    MPI_Comm_rank(comm, &rank);
    cache_limit(comm, o->cache_limit, &limit, how, sizeof how);
    *bytes = 0;
    if (refuse_dense(rf)) return -1;
    long long *rows = split_rank_rows(sp, &n), *frows = rows, left = n;
    if (!rows) return e2e_fail("%s: out of memory", o->path);
    long long *count = calloc((size_t)rf->n, sizeof *count);
    for (int i = 0; count && i < rf->n; i++) {
        count[i] = to_file_rows(rf, i, frows, left);
        *bytes += sparsefile_cache_bytes(&rf->file[i], frows, count[i]);
        frows += count[i], left -= count[i];
    }
    int rc = count ? 0 : e2e_fail("%s: out of memory", o->path);
    if (!rc && limit >= 0 && *bytes > limit)
        rc = e2e_fail("%s: --cache memory: rank %d's %lld jets need %.3g GB, more than %s", o->path, rank, n,
                      *bytes / 1e9, how);
    frows = rows;
    for (int i = 0; !rc && i < rf->n; frows += count[i], i++) {
        rc = sparsefile_cache_load(&rf->file[i], frows, count[i], rf->dxpl_ind);
        progress_mark();
    }
    free(count);
    free(rows);
    return rc;
}
