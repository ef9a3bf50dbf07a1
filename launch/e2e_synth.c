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
    "  --task T            regression (the mass spectrum above) or classification: labelled\n"
    "                      jets, top (y = 1, signal) against QCD (y = 0, background), the\n"
    "                      label in the column y (default regression)\n"
    "  --signal-fraction F classification: the share of top jets (default 0.5)\n"
    "  --overlap F         classification: the share of QCD jets that fake a top (a hard\n"
    "                      three-prong splitting at the top mass, drawn as a top jet is): no\n"
    "                      classifier tells them apart, so the best AUC is 1 - F/2 (default 0.2)\n"
    "  --help              this text\n";

static const struct option OPTS[] = {
    {"out", 1, 0, 'o'},  {"samples", 1, 0, 'n'}, {"seed", 1, 0, 's'},
    {"size", 1, 0, 'z'}, {"channels", 1, 0, 'c'}, {"dtype", 1, 0, 'd'},
    {"chunk", 1, 0, 'k'}, {"pixel-size", 1, 0, 'p'}, {"layout", 1, 0, 'l'}, {"task", 1, 0, 't'},
    {"signal-fraction", 1, 0, 'f'}, {"overlap", 1, 0, 'v'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};

/* --name: a or b (*out = 0 or 1); -1 (said when `say`) otherwise */
static int one_of(const char *name, const char *arg, const char *a, const char *b, int *out, int say) {
    if (strcmp(arg, a) && strcmp(arg, b)) {
        if (say) fprintf(stderr, "e2e-synth: --%s expects %s or %s, got '%s'\n", name, a, b, arg);
        return -1;
    }
    *out = strcmp(arg, a) != 0;
    return 0;
}

/* One option (its code c, its value arg) into o: 0, or -1 (said when `say`). */
static int parse_option(int c, const char *arg, SynthFileOptions *o, int say) {
    const char *P = "e2e-synth";
    long long v = 0;
    int k = 0, rc = 0;
    switch (c) {
    case 'o': o->out = arg; break;
    case 'n': rc = cli_ll(P, "--samples", arg, 1, 1LL << 40, &o->samples, say); break;
    case 's': rc = cli_u64(P, "--seed", arg, &o->seed, say); break;
    case 'z': rc = cli_ll(P, "--size", arg, 8, 4096, &v, say); o->size = (int)v; break;
    case 'c': rc = cli_ll(P, "--channels", arg, 1, SYNTH_MAX_CHANNELS, &v, say); o->channels = (int)v; break;
    case 'd': rc = one_of("dtype", arg, "float32", "float16", &k, say); o->dtype_bytes = k ? 2 : 4; break;
    case 'l': rc = one_of("layout", arg, "dense", "sparse", &o->sparse, say); break;
    case 't': rc = one_of("task", arg, "regression", "classification", &o->classify, say); break;
    case 'k': rc = cli_ll(P, "--chunk", arg, 1, 1LL << 40, &o->chunk, say); break;
    case 'p': rc = cli_double(P, "--pixel-size", arg, 1e-6, 1.0, &o->pixel_size, say); break;
    case 'f': rc = cli_double(P, "--signal-fraction", arg, 1e-9, 1.0 - 1e-9, &o->signal_fraction, say); break;
    case 'v': rc = cli_double(P, "--overlap", arg, 0.0, 1.0, &o->overlap, say); break;
    default: return -1;
    }
    return rc ? -1 : 0;
}

/* 0: go on, 1: exit 0 (help), 2: exit with an error (already said on rank 0) */
static int parse(int argc, char **argv, SynthFileOptions *o, int say) {
    const char *P = "e2e-synth";
    int c;
    opterr = 0; /* our own messages, on rank 0 only */
    while ((c = getopt_long(argc, argv, "", OPTS, NULL)) != -1) {
        if (c == 'h') {
            if (say) fputs(USAGE, stdout);
            return 1;
        }
        if (c == '?' || c == ':') {
            if (say) fprintf(stderr, "%s: unknown option or missing value: '%s' (try --help)\n", P, argv[optind - 1]);
            return 2;
        }
        if (parse_option(c, optarg, o, say)) return 2;
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
            printf("e2e-synth: wrote %lld %sjets (%d x %d x %d, %s, %s) to %s in %.2f s with %d rank%s "
                   "(%.0f jets/s)\n",
                   o.samples, o.classify ? "labelled " : "", o.channels, o.size, o.size,
                   o.dtype_bytes == 2 ? "float16" : "float32", o.sparse ? "sparse" : "dense",
                   o.out, dt, nranks, nranks > 1 ? "s" : "", (double)o.samples / dt);
    }
    MPI_Finalize();
    return rc ? 1 : 0;
}
