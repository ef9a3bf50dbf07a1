/* e2e-data: look at a jet dataset, or convert a jet file to another layout or dtype.
 *   e2e-data info FILE [--rows N] [--label COLUMN]
 *   [mpirun -np P] e2e-data convert [--layout L] [--dtype T] [--chunk N] [--rows A:B] IN OUT
 * FILE is an HDF5 jet file or a text file listing them (data/format/FORMAT.md). */
#include <getopt.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "convert.h"
#include "error.h"
#include "inspect.h"

static const char USAGE[] =
    "usage: e2e-data info FILE [--rows N] [--label COLUMN]\n"
    "       [mpirun -np P] e2e-data convert [--layout L] [--dtype T] [--chunk N] [--rows A:B] IN OUT\n"
    "\n"
    "info: a jet dataset's files, N, channels, layout (dense or sparse), dtype, chunking, bytes\n"
    "a jet, provenance attributes, the model's inputs (the scalars with their scales, each\n"
    "channel's kind: energy or signed), the per-jet columns (m, those of pt, ieta, iphi\n"
    "present, the scalars), a mass histogram, a classifier's class counts (the label y, or\n"
    "--label) and per-channel pixel statistics (min, mean, max, fraction non-zero, 99.9%\n"
    "quantile of the positive pixels, of |x| for a signed channel: the reader's default\n"
    "scale statistic).\n"
    "  FILE        an HDF5 jet file, or a text file listing them, one a line\n"
    "  --rows N    pixel statistics over N evenly spaced jets (default: all)\n"
    "  --label C   the class counts of the label column C (default: y, where it exists)\n"
    "\n"
    "convert: writes the jet file IN as OUT in another layout or dtype, every rank its own\n"
    "rows; every per-jet column and attribute comes along. dense <-> sparse is exact, bit for\n"
    "bit; float32 -> float16 rounds to nearest even. OUT is written under a temporary name and\n"
    "renamed when complete (replaced if it exists; never IN).\n"
    "  --layout L  dense or sparse (the non-zero pixels only: data/format/FORMAT.md) (default sparse)\n"
    "  --dtype T   float32 or float16 (default: IN's)\n"
    "  --chunk N   dense OUT: jets per HDF5 chunk (default: about 4 MiB, >= 64 chunks)\n"
    "  --rows A:B  only IN's rows A to B-1 (default: all)\n"
    "\n"
    "  --help      this text\n";

static int fail(const char *msg, int say) {
    if (say) fprintf(stderr, "e2e-data: %s (try --help)\n", msg);
    return 2;
}

/* --rows A:B of convert */
static int parse_range(char *s, long long *first, long long *count, int say) {
    char *colon = strchr(s, ':');
    if (!colon) return fail("--rows expects A:B (rows A to B-1)", say);
    *colon = '\0';
    long long a, b;
    int bad = cli_ll("e2e-data", "--rows", s, 0, 1LL << 40, &a, say) || cli_ll("e2e-data", "--rows", colon + 1, 1, 1LL << 40, &b, say);
    *colon = ':';
    if (bad) return 2;
    if (b <= a) return fail("--rows A:B needs A < B", say);
    *first = a;
    *count = b - a;
    return 0;
}

/* 0 parsed, 1 --help, 2 bad command line (said on rank 0) */
static int parse(int argc, char **argv, ConvertOptions *o, long long *rows, const char **label, int say) {
    static const struct option opts[] = {{"rows", 1, 0, 'r'}, {"layout", 1, 0, 'l'}, {"dtype", 1, 0, 'd'},
                                         {"chunk", 1, 0, 'k'}, {"label", 1, 0, 'y'}, {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c, convert = argc > 1 && !strcmp(argv[1], "convert");
    opterr = 0;
    o->sparse = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int rc = 0;
        if (c == 'h') return 1;
        if (c == 'r' && convert) rc = parse_range(optarg, &o->first, &o->count, say);
        else if (c == 'r') rc = cli_ll("e2e-data", "--rows", optarg, 1, 1LL << 40, rows, say) ? 2 : 0;
        else if (c == 'l' && (!strcmp(optarg, "dense") || !strcmp(optarg, "sparse"))) o->sparse = optarg[0] == 's';
        else if (c == 'd' && (!strcmp(optarg, "float32") || !strcmp(optarg, "float16"))) o->dtype_bytes = optarg[5] == '3' ? 4 : 2;
        else if (c == 'k') rc = cli_ll("e2e-data", "--chunk", optarg, 1, 1LL << 40, &o->chunk, say) ? 2 : 0;
        else if (c == 'y' && !convert) *label = optarg;
        else {
            if (say) fprintf(stderr, "e2e-data: unknown option, missing or bad value: '%s' (try --help)\n", argv[optind - 1]);
            rc = 2;
        }
        if (rc) return 2;
    }
    int args = argc - optind;
    if (convert && args == 3) {
        o->in = argv[optind + 1];
        o->out = argv[optind + 2];
        return 0;
    }
    if (!convert && args == 2 && !strcmp(argv[optind], "info")) return 0;
    return fail(convert ? "expected: convert IN OUT" : "expected: info FILE, or convert IN OUT", say);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv); /* the HDF5 library is the MPI build */
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    ConvertOptions o;
    convert_defaults(&o);
    long long rows = 0;
    const char *label = NULL;
    char command[2048] = "e2e-data";
    for (int i = 1; i < argc; i++)
        snprintf(command + strlen(command), sizeof command - strlen(command), " %s", argv[i]);
    o.command = command;
    int rc = parse(argc, argv, &o, &rows, &label, rank == 0);
    if (rc == 1 && rank == 0) fputs(USAGE, stdout);
    if (rc == 1) rc = 0;
    else if (!rc && o.in) {
        double t0 = MPI_Wtime();
        rc = data_convert(&o, MPI_COMM_WORLD) ? 1 : 0;
        if (rank == 0 && rc) fprintf(stderr, "e2e-data: %s\n", e2e_error());
        if (rank == 0 && !rc) printf("e2e-data: wrote %s (%s) in %.2f s\n", o.out, o.sparse ? "sparse" : "dense", MPI_Wtime() - t0);
    } else if (!rc && data_inspect(argv[optind + 1], stdout, rows, label)) {
        fprintf(stderr, "e2e-data: %s\n", e2e_error());
        rc = 1;
    }
    MPI_Finalize();
    return rc;
}
