/* What a dataset's model inputs are made of (data/format/FORMAT.md): the per-jet scalars (the
 * names of (N,) datasets, in the model's order, with the scale each is divided by) and
 * each channel's kind (prep_pixel.h). A jet file declares them in its root attributes
 * `scalars`, `scalar_scale` and `channel_kinds`; a file without them means the format's
 * default (iphi / 360, ieta / 170, every channel energy-like). A checkpoint stores them
 * under the same attribute names (on its /data group), so evaluation and resume can
 * refuse a dataset whose inputs differ. A plain struct: it is broadcast as bytes. */
#ifndef E2E_DATA_JET_INPUTS_H
#define E2E_DATA_JET_INPUTS_H

#include <hdf5.h>
#include <stddef.h>

#include "prep_pixel.h"

#define JET_MAX_SCALARS 16
#define JET_SCALAR_NAME_LEN 64     /* a scalar's name, NUL included */
#define JET_INPUTS_MAX_CHANNELS 64 /* = JET_MAX_CHANNELS of jetfile.h */

#define ATTR_SCALARS "scalars"             /* strings: the scalars' dataset names */
#define ATTR_SCALAR_SCALE "scalar_scale"   /* float64 array: model input = value / scale */
#define ATTR_CHANNEL_KINDS "channel_kinds" /* strings: "energy" or "signed" per channel */

typedef struct JetInputs {
    int declared;   /* 1: the object has a `scalars` attribute; 0: the format's default */
    int n_scalars;
    char scalar[JET_MAX_SCALARS][JET_SCALAR_NAME_LEN];
    double scale[JET_MAX_SCALARS];
    int channels;
    unsigned char kind[JET_INPUTS_MAX_CHANNELS]; /* ChannelKind */
} JetInputs;

/* The format's default: iphi / 360, ieta / 170; every channel energy-like. */
void jet_inputs_default(JetInputs *in, int channels);
/* The declarations of obj (a jet file's root, a checkpoint's /data group), the default
 * where an attribute is absent; refuses, naming path and the attribute, a malformed
 * declaration (not strings, a scale missing or not positive and finite, a length that
 * differs, a name that is empty, repeated, `m` or `X_jet`, an unknown kind). 0 or -1
 * (e2e_error()). */
int jet_inputs_read(JetInputs *in, hid_t obj, const char *path, int channels);
/* The three attributes onto obj: 0, or -1. */
int jet_inputs_write(hid_t obj, const JetInputs *in);
/* 1 when a and b give the model the same inputs (names, scales, kinds). */
int jet_inputs_equal(const JetInputs *a, const JetInputs *b);
/* For messages: "scalars iphi/360, ieta/170; channel kinds energy x8", "scalars none;
 * channel kinds energy, signed x2, energy x5" (runs of one kind). Returns buf. */
const char *jet_inputs_describe(const JetInputs *in, char *buf, size_t len);
/* "energy" or "signed" */
const char *channel_kind_name(int kind);

#endif
