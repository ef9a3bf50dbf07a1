/* The names of the jet-image format (data/format/FORMAT.md is the specification). */
#ifndef E2E_DATA_FORMAT_H
#define E2E_DATA_FORMAT_H

#define FORMAT_NAME "e2e-jet-images"
#define FORMAT_VERSION 1        /* dense files (X_jet a dataset) */
#define FORMAT_VERSION_SPARSE 2 /* sparse files (X_jet a group); readers take both */

#define DSET_X "X_jet" /* (N, C, H, W) float32 | float16, chunked along N */
#define DSET_M "m"     /* (N,) jet mass, GeV: the target */
#define DSET_PT "pt"   /* (N,) jet pT, GeV */
#define DSET_IETA "ieta"
#define DSET_IPHI "iphi"
#define DSET_LABEL "y" /* (N,) a classifier's label, 0 or 1, any integer or float type: the
                          default --label (the quark-gluon files' name) */

/* The sparse layout: X_jet is a group of four datasets (data/format/sparse.h for one jet) */
#define SPARSE_OFFSETS "offsets" /* (N+1,) int64: jet i's entries are [offsets[i], offsets[i+1]) */
#define SPARSE_COUNTS "counts"   /* (N, C) uint32: entries of each channel plane */
#define SPARSE_POS "pos"         /* (nnz,) uint16 | uint32: y * W + x inside the plane */
#define SPARSE_VALUE "value"     /* (nnz,) float32 | float16: the value as stored */
#define ATTR_LAYOUT "layout"     /* X_jet group's string: "sparse" */
#define ATTR_SHAPE "shape"       /* X_jet group's int64[4]: N, C, H, W */
#define LAYOUT_SPARSE "sparse"

/* attributes of the root group */
#define ATTR_FORMAT "format"                 /* string FORMAT_NAME */
#define ATTR_FORMAT_VERSION "format_version" /* int */
#define ATTR_CHANNELS "channels"             /* C strings: the channel names */
#define ATTR_PIXEL_SIZE "pixel_size"         /* double: eta-phi units per pixel */
#define ATTR_SOURCE "source"                 /* string: "synthetic" or where it came from */
#define ATTR_GENERATOR "generator"           /* string: program and version */
#define ATTR_SEED "seed"                     /* uint64 */
#define ATTR_COMMAND "command"               /* string: the options it ran with */

/* The E2E code's normalisations (data/README.md): the target is m / 500 GeV (the
 * reader's default DatasetOptions.mass_scale, the one place it is set), the scalars
 * iphi / 360 and ieta / 170. */
#define MASS_SCALE_GEV 500.0f
#define IPHI_SCALE 360.0f
#define IETA_SCALE 170.0f

#endif
