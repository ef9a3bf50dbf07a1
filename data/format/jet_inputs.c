/* A dataset's model inputs (jet_inputs.h): the declared scalars, their scales and the
 * channel kinds read from a file's attributes (or the default), checked, compared. */
#include "jet_inputs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "format.h"
#include "h5util.h"

const char *channel_kind_name(int kind) { return kind == CHANNEL_SIGNED ? "signed" : "energy"; }

void jet_inputs_default(JetInputs *in, int channels) {
    memset(in, 0, sizeof *in);
    in->n_scalars = 2;
    snprintf(in->scalar[0], JET_SCALAR_NAME_LEN, "%s", DSET_IPHI);
    snprintf(in->scalar[1], JET_SCALAR_NAME_LEN, "%s", DSET_IETA);
    in->scale[0] = IPHI_SCALE;
    in->scale[1] = IETA_SCALE;
    in->channels = channels;
}

/* The strings of attribute name (absent: *n = -1), checked to be a 0- or 1-D array. */
static int read_names(hid_t obj, const char *path, const char *name, char ***out, int *n) {
    *out = NULL;
    *n = -1;
    if (H5Aexists(obj, name) <= 0) return 0;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), s = H5Aget_space(a);
    int rank = H5Sget_simple_extent_ndims(s);
    H5Sclose(s);
    *n = rank <= 1 ? h5_attr_strs(a, out) : -1;
    H5Aclose(a);
    return *n < 0 ? e2e_fail("%s: attribute '%s' must be a list of strings (data/format/FORMAT.md)", path, name) : 0;
}

static int check_scalar_names(JetInputs *in, const char *path, char **names, int n) {
    if (n > JET_MAX_SCALARS)
        return e2e_fail("%s: attribute '%s' names %d scalars, at most %d are supported", path, ATTR_SCALARS, n,
                         JET_MAX_SCALARS);
    for (int k = 0; k < n; k++) {
        const char *s = names[k];
        if (!s[0] || strlen(s) >= JET_SCALAR_NAME_LEN)
            return e2e_fail("%s: attribute '%s' entry %d is %s", path, ATTR_SCALARS, k,
                             s[0] ? "too long a name" : "empty");
        if (!strcmp(s, DSET_M) || !strcmp(s, DSET_X))
            return e2e_fail("%s: attribute '%s' names '%s', which cannot be a per-jet scalar input (%s)", path,
                             ATTR_SCALARS, s, !strcmp(s, DSET_M) ? "m is the target" : "X_jet is the image");
        for (int j = 0; j < k; j++)
            if (!strcmp(s, names[j]))
                return e2e_fail("%s: attribute '%s' names '%s' twice", path, ATTR_SCALARS, s);
        snprintf(in->scalar[k], JET_SCALAR_NAME_LEN, "%s", s);
    }
    in->n_scalars = n;
    in->declared = 1;
    return 0;
}

/* scalar_scale: a float array of n positive, finite values */
static int read_scales(JetInputs *in, hid_t obj, const char *path, int n) {
    if (H5Aexists(obj, ATTR_SCALAR_SCALE) <= 0)
        return e2e_fail("%s: attribute '%s' names %d scalar%s but there is no '%s' (data/format/FORMAT.md)", path,
                         ATTR_SCALARS, n, n == 1 ? "" : "s", ATTR_SCALAR_SCALE);
    hid_t a = H5Aopen(obj, ATTR_SCALAR_SCALE, H5P_DEFAULT), t = H5Aget_type(a), s = H5Aget_space(a);
    hssize_t got = H5Sget_simple_extent_npoints(s);
    int rc = 0;
    if (H5Tget_class(t) != H5T_FLOAT || H5Sget_simple_extent_ndims(s) > 1)
        rc = e2e_fail("%s: attribute '%s' must be a list of numbers", path, ATTR_SCALAR_SCALE);
    else if (got != n)
        rc = e2e_fail("%s: attribute '%s' holds %lld values but '%s' names %d scalars", path, ATTR_SCALAR_SCALE,
                       (long long)got, ATTR_SCALARS, n);
    else if (n && H5Aread(a, H5T_NATIVE_DOUBLE, in->scale) < 0)
        rc = h5_fail(path, "cannot read attribute 'scalar_scale'");
    for (int k = 0; !rc && k < n; k++)
        if (!(in->scale[k] > 0.0) || !isfinite(in->scale[k]))
            rc = e2e_fail("%s: attribute '%s' gives scalar '%s' the scale %g; scales must be positive and finite",
                           path, ATTR_SCALAR_SCALE, in->scalar[k], in->scale[k]);
    H5Sclose(s);
    H5Tclose(t);
    H5Aclose(a);
    return rc;
}

static int read_kinds(JetInputs *in, hid_t obj, const char *path) {
    char **kinds = NULL;
    int n = -1, rc = read_names(obj, path, ATTR_CHANNEL_KINDS, &kinds, &n);
    if (!rc && n >= 0 && n != in->channels)
        rc = e2e_fail("%s: attribute '%s' gives %d kinds but X_jet has %d channels", path, ATTR_CHANNEL_KINDS, n,
                       in->channels);
    for (int c = 0; !rc && c < n; c++) {
        if (!strcmp(kinds[c], "energy")) in->kind[c] = CHANNEL_ENERGY;
        else if (!strcmp(kinds[c], "signed")) in->kind[c] = CHANNEL_SIGNED;
        else
            rc = e2e_fail("%s: attribute '%s' gives channel %d the kind '%s'; kinds are 'energy' or 'signed'", path,
                           ATTR_CHANNEL_KINDS, c, kinds[c]);
    }
    h5_strs_free(kinds, n > 0 ? n : 0);
    return rc;
}

int jet_inputs_read(JetInputs *in, hid_t obj, const char *path, int channels) {
    if (channels < 1 || channels > JET_INPUTS_MAX_CHANNELS)
        return e2e_fail("%s: %d channels; 1 to %d are supported", path, channels, JET_INPUTS_MAX_CHANNELS);
    jet_inputs_default(in, channels);
    char **names = NULL;
    int n = -1, rc = read_names(obj, path, ATTR_SCALARS, &names, &n);
    if (!rc && n >= 0) rc = check_scalar_names(in, path, names, n);
    h5_strs_free(names, n > 0 ? n : 0);
    if (!rc && in->declared) rc = read_scales(in, obj, path, n);
    else if (!rc && H5Aexists(obj, ATTR_SCALAR_SCALE) > 0)
        rc = e2e_fail("%s: attribute '%s' without '%s' (data/format/FORMAT.md)", path, ATTR_SCALAR_SCALE, ATTR_SCALARS);
    return rc ? rc : read_kinds(in, obj, path);
}

int jet_inputs_write(hid_t obj, const JetInputs *in) {
    const char *names[JET_MAX_SCALARS], *kinds[JET_INPUTS_MAX_CHANNELS];
    for (int k = 0; k < in->n_scalars; k++) names[k] = in->scalar[k];
    for (int c = 0; c < in->channels; c++) kinds[c] = channel_kind_name(in->kind[c]);
    hsize_t n = (hsize_t)in->n_scalars;
    hid_t s = H5Screate_simple(1, &n, NULL);
    hid_t a = H5Acreate2(obj, ATTR_SCALAR_SCALE, H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a < 0 || H5Awrite(a, H5T_NATIVE_DOUBLE, in->scale) < 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    rc |= h5_attr_write_strs(obj, ATTR_SCALARS, names, in->n_scalars) != 0;
    rc |= h5_attr_write_strs(obj, ATTR_CHANNEL_KINDS, kinds, in->channels) != 0;
    return rc ? -1 : 0;
}

int jet_inputs_equal(const JetInputs *a, const JetInputs *b) {
    if (a->n_scalars != b->n_scalars || a->channels != b->channels) return 0;
    for (int k = 0; k < a->n_scalars; k++)
        if (strcmp(a->scalar[k], b->scalar[k]) || a->scale[k] != b->scale[k]) return 0;
    return memcmp(a->kind, b->kind, (size_t)a->channels) == 0;
}

const char *jet_inputs_describe(const JetInputs *in, char *buf, size_t len) {
    size_t at = 0;
#define PUT(...) at += (size_t)snprintf(buf + (at < len ? at : len), at < len ? len - at : 0, __VA_ARGS__)
    PUT("scalars ");
    if (!in->n_scalars) PUT("none");
    for (int k = 0; k < in->n_scalars; k++) PUT("%s%s/%g", k ? ", " : "", in->scalar[k], in->scale[k]);
    PUT("; channel kinds ");
    for (int c = 0, run; c < in->channels; c += run) { /* runs of one kind: "energy, signed x2, energy x5" */
        for (run = 1; c + run < in->channels && in->kind[c + run] == in->kind[c]; run++) {
        }
        PUT("%s%s", c ? ", " : "", channel_kind_name(in->kind[c]));
        if (run > 1) PUT(" x%d", run);
    }
#undef PUT
    return buf;
}
