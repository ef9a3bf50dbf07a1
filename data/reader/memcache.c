/* The reader's memory cache (memcache.h): the limit a rank may take, and the rank's
 * rows of every split loaded into each sparse file's cache (sparsefile_cache_load), after
 * which reads of them touch no file. */
#include "memcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "node_memory.h"
#include "progress.h"
#include "sparsefile.h"

/* given > 0: that; else 90% of this rank's share of its node's available memory
 * (node_memory_share; collective over comm). *limit in bytes (-1: no limit known) and
 * how it came about, for messages. */
static void cache_limit(MPI_Comm comm, long long given, long long *limit, char *how, size_t len) {
    long long share;
    char what[640];
    node_memory_share(comm, &share, what, sizeof what);
    if (given > 0) {
        *limit = given;
        snprintf(how, len, "the limit given (--cache-limit %.3g GB)", given / 1e9);
    } else if (share < 0) {
        *limit = -1;
        snprintf(how, len, "no limit (/proc/meminfo unreadable)");
    } else {
        *limit = (long long)(0.9 * (double)share);
        snprintf(how, len, "90%% of its share of the node's memory (%s; --cache-limit sets it)", what);
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
    char how[1024];
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
