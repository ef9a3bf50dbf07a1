/* The synthetic boosted-jet generator (physics only: no MPI, no HDF5). Each jet is a
 * pure function of (seed, jet index), so a file is the same whatever the number of
 * ranks that wrote it. data/README.md describes the model. */
#ifndef E2E_DATA_SYNTH_H
#define E2E_DATA_SYNTH_H

#include <stdint.h>

#define SYNTH_MAX_CHANNELS 8
#define SYNTH_PIXEL_SIZE 0.0174 /* one ECAL crystal in eta and phi */

typedef enum { SYNTH_QCD = 0, SYNTH_W = 1, SYNTH_TOP = 2 } SynthKind;

typedef struct {
    int size;          /* image height = width in pixels */
    int channels;      /* 1 .. SYNTH_MAX_CHANNELS */
    double pixel_size; /* eta-phi units per pixel */
    uint64_t seed;
    /* labelled jets for a classifier (0: the regression's mass spectrum) */
    int classify;      /* 1: top jets (label 1, signal) against QCD jets (label 0) */
    double signal_fraction; /* the share of top jets, in (0, 1) */
    double overlap;    /* the share of QCD jets that fake a top: a hard three-prong splitting
                          at the top mass, drawn as a top jet is, so that no classifier tells
                          them from the signal: the best possible AUC is 1 - overlap / 2 */
} SynthConfig;

typedef struct {
    float m;           /* the true jet mass in GeV: sqrt(sum over particle pairs of
                          pT_a pT_b dR_ab^2), the quantity the image encodes */
    float pt;          /* jet pT in GeV */
    float ieta, iphi;  /* the jet's crystal indices in the barrel: [0, 170), [0, 360) */
    int prongs;        /* 1 .. 3 */
    int kind;          /* SynthKind: how the jet was drawn (a QCD jet faking a top is SYNTH_TOP) */
    int particles;
    int label;         /* classify: 1 a top jet (signal), 0 a QCD jet (background); else 0 */
} SynthJet;

/* -1 (with a message) if the configuration cannot be generated */
int synth_check(const SynthConfig *c);
/* The names of the channels, in file order: 3 channels are the E2E code's (track_pt,
 * ecal, hcal), 8 are the "Top Gun" open data's (track_pt, dz, d0, ecal, hcal, bpix1,
 * bpix2, bpix3), and other counts take the first ones of the list ecal, hcal,
 * track_pt, d0, dz, bpix1, bpix2, bpix3, kept in the Top Gun order. */
void synth_channel_names(int channels, const char **names);
/* Draws jet `index` into img[channels][size][size] (overwritten) and *jet. */
void synth_jet(const SynthConfig *c, uint64_t index, float *img, SynthJet *jet);

#endif
