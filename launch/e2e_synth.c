/* e2e-synth: writes a file of synthetic boosted jets (data/format/FORMAT.md, data/README.md).
 * Run it under mpirun: every rank generates and writes its own slice of the one file
 * with collective parallel-HDF5 writes; the data depends only on the options, not on
 * the number of ranks. */
#include <getopt.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "error.h"
#include "synth.h"
#include "synthfile.h"

static const char USAGE[] =
    "usage: [mpirun -np P] e2e-synth --out FILE [options]\n"
    "Writes synthetic boosted jets (1-3 prongs: QCD-like, W-like, top-like; mass 0-500 GeV\n"
    "with W and top peaks over a falling background) as jet images in the e2e format.\n"
    "\n"
    "  --out FILE          the HDF5 file to write (replaced if it exists)\n"
    "  --samples N         number of jets (default 1000)\n"
    "  --seed S            random seed; jet i depends only on (S, i) (default 1)\n"
    "  --size PIXELS       image height and width (default 125)\n"
    "  --channels C        1 to 8: 3 = track_pt, ecal, hcal; 8 = track_pt, dz, d0, ecal,\n"
    "                      hcal, bpix1, bpix2, bpix3 (default 8)\n"
    "  --dtype TYPE        float32 or float16 (default float32)\n"
    "  --layout L          dense (X_jet a (N, C, H, W) dataset) or sparse (the non-zero\n"
    "                      pixels only, format version 2; bit-exact) (default dense)\n"
    "  --chunk N           dense: jets per HDF5 chunk (default: about 4 MiB, >= 64 chunks)\n"
    "  --pixel-size X      eta-phi size of a pixel (default 0.0174, one ECAL crystal)\n"
    "  --help              this text\n";

/* 0: go on, 1: exit 0 (help), 2: exit with an error (already said on rank 0) */
static int parse(int argc, char **argv, SynthFileOptions *o, int say) {
    static const struct option opts[] = {
        {"out", 1, 0, 'o'},  {"samples", 1, 0, 'n'}, {"seed", 1, 0, 's'},
        {"size", 1, 0, 'z'}, {"channels", 1, 0, 'c'}, {"dtype", 1, 0, 'd'},
        {"chunk", 1, 0, 'k'}, {"pixel-size", 1, 0, 'p'}, {"layout", 1, 0, 'l'}, {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    const char *P = "e2e-synth";
    long long v;
    int c;
    opterr = 0; /* our own messages, on rank 0 only */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'o': o->out = optarg; break;
        case 'n': if (cli_ll(P, "--samples", optarg, 1, 1LL << 40, &o->samples, say)) return 2; break;
        case 's': if (cli_u64(P, "--seed", optarg, &o->seed, say)) return 2; break;
        case 'z': if (cli_ll(P, "--size", optarg, 8, 4096, &v, say)) return 2; o->size = (int)v; break;
        case 'c':
            if (cli_ll(P, "--channels", optarg, 1, SYNTH_MAX_CHANNELS, &v, say)) return 2;
            o->channels = (int)v;
            break;
        case 'd':
            if (!strcmp(optarg, "float32")) o->dtype_bytes = 4;
            else if (!strcmp(optarg, "float16")) o->dtype_bytes = 2;
            else {
                if (say) fprintf(stderr, "%s: --dtype expects float32 or float16, got '%s'\n", P, optarg);
                return 2;
            }
            break;
        case 'l':
            if (!strcmp(optarg, "dense") || !strcmp(optarg, "sparse")) o->sparse = optarg[0] == 's';
            else {
                if (say) fprintf(stderr, "%s: --layout expects dense or sparse, got '%s'\n", P, optarg);
                return 2;
            }
            break;
        case 'k': if (cli_ll(P, "--chunk", optarg, 1, 1LL << 40, &o->chunk, say)) return 2; break;
        case 'p': if (cli_double(P, "--pixel-size", optarg, 1e-6, 1.0, &o->pixel_size, say)) return 2; break;
        case 'h': if (say) fputs(USAGE, stdout); return 1;
        default:
            if (say) fprintf(stderr, "%s: unknown option or missing value: '%s' (try --help)\n", P, argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        if (say) fprintf(stderr, "%s: unexpected argument '%s' (try --help)\n", P, argv[optind]);
        return 2;
    }
    if (!o->out) {
        if (say) fprintf(stderr, "%s: --out FILE is required (try --help)\n", P);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, nranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    char command[2048] = "e2e-synth";
    for (int i = 1; i < argc; i++) {
        size_t used = strlen(command);
        snprintf(command + used, sizeof command - used, " %s", argv[i]);
    }
    SynthFileOptions o;
    synth_file_defaults(&o);
    o.command = command;
    int p = parse(argc, argv, &o, rank == 0);
    if (p) {
        MPI_Finalize();
        return p == 1 ? 0 : 2;
    }
    double t0 = MPI_Wtime();
    int rc = synth_write_file(&o, MPI_COMM_WORLD);
    double dt = MPI_Wtime() - t0;
    if (rank == 0) {
        if (rc) fprintf(stderr, "e2e-synth: %s\n", e2e_error());
        else
            printf("e2e-synth: wrote %lld jets (%d x %d x %d, %s, %s) to %s in %.2f s with %d rank%s "
                   "(%.0f jets/s)\n",
                   o.samples, o.channels, o.size, o.size, o.dtype_bytes == 2 ? "float16" : "float32",
                   o.sparse ? "sparse" : "dense",
                   o.out, dt, nranks, nranks > 1 ? "s" : "", (double)o.samples / dt);
    }
    MPI_Finalize();
    return rc ? 1 : 0;
}
