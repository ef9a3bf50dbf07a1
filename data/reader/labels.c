/* The classes of every split (labels.h): counted on each rank's share, summed, checked. */
#include "labels.h"

#include "error.h"

void labels_count(const float *label, const SplitRows *sp, MPI_Comm comm, long long count[DATA_SPLITS][2]) {
    long long mine[DATA_SPLITS][2] = {{0}};
    for (int s = 0; s < DATA_SPLITS; s++)
        for (long long i = 0; i < sp->nlocal[s]; i++) mine[s][label[sp->local[s][i]] != 0.0f]++;
    MPI_Allreduce(mine, count, 2 * DATA_SPLITS, MPI_LONG_LONG, MPI_SUM, comm);
}

int labels_check(const long long count[DATA_SPLITS][2], const char *path, const char *label) {
    for (int s = 0; s < DATA_SPLITS; s++) {
        long long n0 = count[s][0], n1 = count[s][1];
        if (n0 + n1 > 0 && (n0 == 0 || n1 == 0))
            return e2e_fail("%s: the %s split holds one class only (%lld jets of label '%s' = %d, none of %d): a "
                            "classifier needs both; give files of both classes (a list may mix them) or more jets",
                            path, dataset_split_name(s), n0 + n1, label, n1 > 0, n1 == 0);
    }
    return 0;
}
