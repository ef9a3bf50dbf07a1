/* Evaluation (dist/evaluate.h) and the session it runs in (session_open), under real
 * mpirun -np 2 on the CPU: predictions become masses with the dataset's own mass scale
 * (a reader opened with mass_scale 250 gives exactly half the masses of one with the
 * default 500, and its MAE is that of its own predictions); predictions_write gathers
 * every rank's predictions into one file sorted by dataset index; session_open refuses
 * a checkpoint whose scales do not fit the dataset, naming both files, on every rank. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_mpi.h"
#include "comm.h"
#include "error.h"
#include "evaluate.h"
#include "session.h"
#include "synth_file.h"

static char dir[256];

static SessionOptions options(Comm *c, const char *path, float mass_scale) {
    SessionOptions o = {.backend = {.device = "cpu", .threads = 1}, .blocks = 1};
    dataset_default_options(&o.data);
    o.data.path = path;
    o.data.comm = c->world;
    o.data.batch = 8;
    o.data.seed = 9;
    o.data.mass_scale = mass_scale;
    return o;
}

/* The validation split's metrics and this rank's predictions, with a model initialised
 * from seed 5 (the same parameters whatever the mass scale). */
static int evaluate_with(Comm *c, const char *path, float mass_scale, EvalResult *r, Predictions *p) {
    Session s = {.comm = c};
    SessionOptions o = options(c, path, mass_scale);
    int rc = session_open(&s, &o) || model_init(s.model, 5) ||
             evaluate_split(c, s.model, s.data, SPLIT_VAL, 85.0, r, p);
    session_close(&s);
    return rc ? -1 : 0;
}

/* rank 0: the prediction file's rows; returns the count, or -1 */
static long long read_predictions(const char *path, long long **index, float **m_true, float **m_pred) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return -1;
    hid_t d = H5Dopen2(f, "index", H5P_DEFAULT), sp = H5Dget_space(d);
    long long n = (long long)H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    *index = malloc(sizeof(long long) * n);
    *m_true = malloc(sizeof(float) * n);
    *m_pred = malloc(sizeof(float) * n);
    H5Dread(d, H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, *index);
    H5Dclose(d);
    d = H5Dopen2(f, "m_true", H5P_DEFAULT);
    H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, *m_true);
    H5Dclose(d);
    d = H5Dopen2(f, "m_pred", H5P_DEFAULT);
    H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, *m_pred);
    H5Dclose(d);
    H5Fclose(f);
    return n;
}

static void test_mass_scale(Comm *c, const char *path) {
    EvalResult r500, r250;
    Predictions p500 = {0}, p250 = {0};
    CHECK(evaluate_with(c, path, 500.0f, &r500, &p500) == 0, "evaluate, scale 500: %s", e2e_error());
    CHECK(evaluate_with(c, path, 250.0f, &r250, &p250) == 0, "evaluate, scale 250: %s", e2e_error());
    CHECK(r500.count == r250.count && r500.count > 0 && p500.n == p250.n, "the same validation jets");
    long long off = 0;
    for (long long i = 0; i < p250.n; i++)
        off += p250.index[i] != p500.index[i] || p250.m_true[i] != p500.m_true[i] ||
               p250.m_pred[i] != 0.5f * p500.m_pred[i];
    CHECK(off == 0, "rank %d: %lld of %lld masses are not the prediction times the dataset's scale",
          c->rank, off, p250.n);
    CHECK(fabs(r250.mae - r500.mae) > 1e-3, "the MAE ignores the mass scale: %g and %g", r250.mae, r500.mae);

    char file[600];
    snprintf(file, sizeof file, "%s/pred250.h5", dir);
    CHECK(predictions_write(c, &p250, file) == 0, "predictions_write: %s", e2e_error());
    if (c->rank == 0) {
        long long *ix = NULL;
        float *mt = NULL, *mp = NULL;
        long long n = read_predictions(file, &ix, &mt, &mp);
        CHECK(n == r250.count, "the file holds %lld rows, the split %lld", n, r250.count);
        double mae = 0.0;
        int sorted = 1;
        for (long long i = 0; i < n; i++) {
            mae += fabs((double)mp[i] - mt[i]);
            if (i > 0 && ix[i] <= ix[i - 1]) sorted = 0;
        }
        mae /= n > 0 ? n : 1;
        CHECK(sorted, "the rows are not sorted by dataset index");
        CHECK(fabs(mae - r250.mae) <= 1e-4 * r250.mae, "MAE of the written masses %.6f, reported %.6f",
              mae, r250.mae);
        free(ix), free(mt), free(mp);
    }
    predictions_free(&p500);
    predictions_free(&p250);
}

/* A checkpoint's scales for another channel count: refused on every rank, naming both. */
static void test_scales_mismatch(Comm *c, const char *path) {
    CheckpointState *st = calloc(1, sizeof *st);
    st->n_scales = 8;
    for (int i = 0; i < 8; i++) st->scales[i] = 1.0f;
    Session s = {.comm = c};
    SessionOptions o = options(c, path, 500.0f);
    o.from = st;
    o.from_path = "run/checkpoints/best.h5";
    CHECK(session_open(&s, &o) == -1, "a checkpoint of 8 scales opened a 3-channel dataset");
    CHECK(strstr(e2e_error(), "run/checkpoints/best.h5") && strstr(e2e_error(), path) &&
          strstr(e2e_error(), "has 3 channels") && strstr(e2e_error(), "made for 8"), "rank %d: '%s'", c->rank,
          e2e_error());
    CHECK(!strstr(e2e_error(), "given scale"), "the message is about channels, not a scale: %s", e2e_error());
    session_close(&s);
    free(st);
}

int main(int argc, char **argv) {
    Comm comm;
    if (comm_init(&comm, &argc, &argv)) return 1;
    check_mpi_tmpdir(dir, sizeof dir, "e2e_evaluate");
    char path[512];
    snprintf(path, sizeof path, "%s/jets.h5", dir);
    synth_file_or_abort(path, 800, 16, 3, 4, 0, 6);
    test_mass_scale(&comm, path);
    test_scales_mismatch(&comm, path);
    return check_mpi_finish("test_evaluate", dir);
}
