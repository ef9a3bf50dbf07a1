/* e2e-data: look at a jet dataset before training on it.
 *   e2e-data info FILE [--rows N]
 * FILE is an HDF5 jet file or a text file listing them (data/FORMAT.md). */
#include <getopt.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "data_error.h"
#include "inspect.h"

static const char USAGE[] =
    "usage: e2e-data info FILE [--rows N]\n"
    "Prints a jet dataset's files, N, channels, dtype, chunking, provenance attributes,\n"
    "the model's inputs (the scalars with their scales, each channel's kind: energy or\n"
    "signed), the per-jet columns (m, those of pt, ieta, iphi present, the scalars), a\n"
    "mass histogram and per-channel pixel statistics (min, mean, max, fraction non-zero,\n"
    "99.9% quantile of the positive pixels, of |x| for a signed channel: the reader's\n"
    "default scale statistic).\n"
    "\n"
    "  FILE        an HDF5 jet file, or a text file listing them, one a line\n"
    "  --rows N    pixel statistics over N evenly spaced jets (default: all)\n"
    "  --help      this text\n";

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv); /* the HDF5 library is the MPI build */
    static const struct option opts[] = {{"rows", 1, 0, 'r'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    long long rows = 0;
    int c, rc = 0;
    opterr = 0;
    while (!rc && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'r') rc = cli_ll("e2e-data", "--rows", optarg, 1, 1LL << 40, &rows, 1) ? 2 : 0;
        else if (c == 'h') {
            fputs(USAGE, stdout);
            MPI_Finalize();
            return 0;
        } else {
            fprintf(stderr, "e2e-data: unknown option or missing value: '%s' (try --help)\n", argv[optind - 1]);
            rc = 2;
        }
    }
    if (!rc && (argc - optind != 2 || strcmp(argv[optind], "info"))) {
        fprintf(stderr, "e2e-data: expected: info FILE (try --help)\n");
        rc = 2;
    }
    if (!rc && data_inspect(argv[optind + 1], stdout, rows)) {
        fprintf(stderr, "e2e-data: %s\n", data_error());
        rc = 1;
    }
    MPI_Finalize();
    return rc;
}
