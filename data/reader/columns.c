/* The per-jet columns (columns.h): the mass (a classifier's file may lack it), the declared
 * scalars and the class labels of every file, read whole on every rank, checked finite and
 * plausible (labels 0 or 1), agreed. */
#include "columns.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agree.h"
#include "error.h"
#include "format.h"
#include "plausible.h"
#include "preprocess.h"

/* column `name` of file f into v[f->n], checked finite */
static int read_finite(JetFile *f, const char *name, float *v, hid_t dxpl) {
    int rc = jetfile_read_column(f, name, v, dxpl);
    long long first;
    if (!rc && count_nonfinite(v, f->n, &first))
        rc = e2e_fail("%s: %s row %lld is %s: non-finite %s are rejected", f->path, name, first,
                       isnan(v[first]) ? "NaN" : "infinite", strcmp(name, DSET_M) ? "values" : "targets");
    return rc;
}

/* the mass of file f into m (its rows), checked finite and plausible; negatives counted.
 * A classifier's file (label: its label column) may have none: its rows' masses are NaN
 * and c->has_mass drops to 0; a regression's is refused. */
static int read_mass(Columns *c, JetFile *f, float *m, const char *label, hid_t dxpl, MPI_Comm comm, int rank) {
    if (H5Lexists(f->file, DSET_M, H5P_DEFAULT) <= 0) {
        if (!label)
            return agree_fail_together(comm, e2e_fail(
                "%s: no mass column '%s': the regression's target is the jet mass; a file without one can train "
                "a classifier only (e2e-train --task classification --label COLUMN)", f->path, DSET_M));
        for (long long r = 0; r < f->n; r++) m[r] = NAN;
        c->has_mass = 0;
        return 0;
    }
    if (agree_fail_together(comm, read_finite(f, DSET_M, m, dxpl))) return -1;
    return agree_fail_together(comm, plausible_masses(m, f->n, f->path, rank == 0, &c->negative_mass));
}

/* file f's declared scalars (or, declaring none, the default ones and pt, checked as
 * before) into rows [row0, row0 + f->n) of c->scalars; tmp holds f->n floats */
static int read_scalars(Columns *c, JetFile *f, long long row0, float *tmp, hid_t dxpl, MPI_Comm comm) {
    const JetInputs *in = &c->inputs;
    const int S = in->n_scalars;
    for (int k = 0; k < S; k++) {
        int rc = in->declared && H5Lexists(f->file, in->scalar[k], H5P_DEFAULT) <= 0
                     ? e2e_fail("%s: no dataset '%s', which its attribute '%s' names as a scalar input",
                                 f->path, in->scalar[k], ATTR_SCALARS)
                     : read_finite(f, in->scalar[k], tmp, dxpl);
        if (agree_fail_together(comm, rc)) return -1;
        const float scale = (float)in->scale[k];
        for (long long r = 0; r < f->n; r++) c->scalars[(row0 + r) * S + k] = tmp[r] / scale;
    }
    /* a file that declares nothing holds pt too, as it always had to */
    return in->declared ? 0 : agree_fail_together(comm, read_finite(f, DSET_PT, tmp, dxpl));
}

/* file f's class labels (column `name`, any number type) into label (its rows), each 0 or
 * 1; tmp holds f->n doubles */
static int read_label(JetFile *f, const char *name, float *label, double *tmp, hid_t dxpl) {
    if (H5Lexists(f->file, name, H5P_DEFAULT) <= 0)
        return e2e_fail("%s: no label column '%s' (the class of each jet, 0 or 1): name it with --label, or give "
                        "a file with one (e2e-convert --label-value stamps one on a file of one class)", f->path, name);
    if (jetfile_read_numbers(f, name, tmp, dxpl)) return -1;
    for (long long r = 0; r < f->n; r++) {
        if (tmp[r] != 0.0 && tmp[r] != 1.0)
            return e2e_fail("%s: label '%s' row %lld is %.9g: a class label must be 0 or 1 (background or signal)",
                            f->path, name, r, tmp[r]);
        label[r] = (float)tmp[r];
    }
    return 0;
}

/* file i's declarations, which must equal the first file's */
static int read_inputs(Columns *c, JetFile *files, int i) {
    JetInputs in;
    if (jet_inputs_read(&in, files[i].file, files[i].path, files[i].c)) return -1;
    if (i == 0) {
        c->inputs = in;
        return 0;
    }
    if (jet_inputs_equal(&in, &c->inputs)) return 0;
    char mine[512], first[512];
    return e2e_fail("%s: %s, but %s has %s: the files of a dataset must give the model the same inputs",
                     files[i].path, jet_inputs_describe(&in, mine, sizeof mine), files[0].path,
                     jet_inputs_describe(&c->inputs, first, sizeof first));
}

int columns_read(Columns *c, JetFile *files, int nfiles, const long long *start, const char *label, hid_t dxpl,
                 MPI_Comm comm) {
    memset(c, 0, sizeof *c);
    c->has_mass = 1;
    int rank;
    MPI_Comm_rank(comm, &rank);
    for (int i = 0; i < nfiles; i++)
        if (agree_fail_together(comm, read_inputs(c, files, i))) return -1;
    const long long N = start[nfiles], S = c->inputs.n_scalars;
    long long most = 1;
    for (int i = 0; i < nfiles; i++) most = files[i].n > most ? files[i].n : most;
    c->m = malloc((size_t)N * sizeof *c->m);
    c->scalars = S ? malloc((size_t)(N * S) * sizeof *c->scalars) : NULL;
    c->label = label ? malloc((size_t)N * sizeof *c->label) : NULL;
    double *tmp = malloc((size_t)most * sizeof *tmp); /* a column as doubles, or as floats */
    int rc = c->m && (c->scalars || !S) && (c->label || !label) && tmp
                 ? 0 : e2e_fail("%s: out of memory for %lld rows", files[0].path, N);
    rc = agree_fail_together(comm, rc);
    for (int i = 0; !rc && i < nfiles; i++) {
        rc = read_mass(c, &files[i], c->m + start[i], label, dxpl, comm, rank);
        if (!rc) rc = read_scalars(c, &files[i], start[i], (float *)tmp, dxpl, comm);
        if (!rc && label) rc = agree_fail_together(comm, read_label(&files[i], label, c->label + start[i], tmp, dxpl));
    }
    free(tmp);
    return rc;
}

void columns_free(Columns *c) {
    free(c->m);
    free(c->scalars);
    free(c->label);
    c->m = c->scalars = c->label = NULL;
}
