/* The synthetic jet generator's physics (data/tools/synth.h): determinism per (seed, jet),
 * the mass spectrum (0-500 GeV, W and top peaks over a falling background), the mass
 * recoverable from the calorimeter image, and channel character (narrow ECAL, wide
 * HCAL towers, sparse tracks, noise, displaced tracks in top jets); labelled jets for a
 * classifier (the signal's share, top jets against QCD, the QCD jets that fake a top). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "error.h"
#include "synth.h"

enum { TRACK_PT, DZ, D0, ECAL, HCAL }; /* the 8-channel (Top Gun) order */
#define S 125
#define C 8
#define JETS 2500

static long long count_in(const float *m, int n, double lo, double hi) {
    long long k = 0;
    for (int i = 0; i < n; i++) k += m[i] >= lo && m[i] < hi;
    return k;
}

/* classify: labels in the asked proportion; the signal is top jets (3 prongs at the top
 * mass); the background QCD, of which the `overlap` share is drawn as a top jet */
static void test_classes(void) {
    SynthConfig c = {.size = 32, .channels = 3, .pixel_size = SYNTH_PIXEL_SIZE, .seed = 5, .classify = 1,
                     .signal_fraction = 0.3, .overlap = 0.25};
    CHECK(synth_check(&c) == 0, "a labelled configuration: %s", synth_check(&c) ? e2e_error() : "");
    const int n = 4000;
    float *img = malloc((size_t)3 * 32 * 32 * sizeof *img);
    int sig = 0, sig_top3 = 0, bkg = 0, fakes = 0, sig_window = 0, qcd_window = 0;
    for (int i = 0; i < n; i++) {
        SynthJet j;
        synth_jet(&c, (uint64_t)i, img, &j);
        int window = j.m > 150 && j.m < 195; /* the top mass window */
        if (j.label) {
            sig++, sig_window += window;
            sig_top3 += j.kind == SYNTH_TOP && j.prongs == 3;
        } else {
            bkg++;
            if (j.kind == SYNTH_TOP) fakes++;
            else qcd_window += window;
        }
    }
    CHECK(fabs((double)sig / n - 0.3) < 0.03, "signal fraction %.3f, asked 0.3", (double)sig / n);
    CHECK(sig_top3 == sig, "every signal jet is a 3-prong top jet (%d of %d)", sig_top3, sig);
    CHECK(fabs((double)fakes / bkg - 0.25) < 0.04, "QCD jets faking a top: %.3f of the background, asked 0.25",
          (double)fakes / bkg);
    CHECK((double)sig_window / sig > 0.9 && (double)qcd_window / (bkg - fakes) < 0.1,
          "in the top mass window 150-195 GeV: %.3f of the signal, %.3f of the QCD jets that do not fake a top",
          (double)sig_window / sig, (double)qcd_window / (bkg - fakes));
    SynthConfig bad = c;
    bad.signal_fraction = 1.0;
    CHECK(synth_check(&bad) < 0 && strstr(e2e_error(), "signal fraction"), "signal fraction 1 refused");
    bad = c;
    bad.overlap = 1.5;
    CHECK(synth_check(&bad) < 0 && strstr(e2e_error(), "overlap"), "overlap 1.5 refused");
    free(img);
}

int main(void) {
    test_classes();
    const char *names[8];
    synth_channel_names(3, names);
    CHECK(!strcmp(names[0], "track_pt") && !strcmp(names[1], "ecal") && !strcmp(names[2], "hcal"),
          "3 channels: %s %s %s", names[0], names[1], names[2]);
    synth_channel_names(8, names);
    CHECK(!strcmp(names[0], "track_pt") && !strcmp(names[1], "dz") && !strcmp(names[3], "ecal") &&
              !strcmp(names[7], "bpix3"), "8 channels: %s %s %s %s", names[0], names[1], names[3], names[7]);
    synth_channel_names(1, names);
    CHECK(!strcmp(names[0], "ecal"), "1 channel: %s", names[0]);
    CHECK(synth_check(&(SynthConfig){.size = S, .channels = 9, .pixel_size = SYNTH_PIXEL_SIZE, .seed = 1}) < 0, "9 channels rejected");
    CHECK(synth_check(&(SynthConfig){.size = 4, .channels = 3, .pixel_size = SYNTH_PIXEL_SIZE, .seed = 1}) < 0, "4-pixel images rejected");

    const size_t plane = (size_t)S * S, row = plane * C;
    SynthConfig cfg = {.size = S, .channels = C, .pixel_size = SYNTH_PIXEL_SIZE, .seed = 2024};
    float *img = malloc(row * sizeof *img), *again = malloc(row * sizeof *again);
    SynthJet j, j2;
    synth_jet(&cfg, 17, img, &j);
    synth_jet(&cfg, 17, again, &j2);
    CHECK(!memcmp(img, again, row * sizeof *img) && !memcmp(&j, &j2, sizeof j), "jet 17 twice is identical");
    synth_jet(&cfg, 18, again, &j2);
    CHECK(memcmp(img, again, row * sizeof *img) && j.m != j2.m, "jets 17 and 18 differ");
    SynthConfig other = cfg;
    other.seed = 2025;
    synth_jet(&other, 17, again, &j2);
    CHECK(memcmp(img, again, row * sizeof *img) && j.m != j2.m, "another seed gives another jet 17");

    float *m = malloc(JETS * sizeof *m), *mimg = malloc(JETS * sizeof *mimg);
    int kinds[3] = {0}, prongs[4] = {0}, noisy = 0, bad_track = 0;
    double sharp_ecal = 0, sharp_hcal = 0, track_nonzero = 0, d0_top = 0, d0_qcd = 0, n_top = 0, n_qcd = 0;
    double ratio_sum = 0;
    for (int i = 0; i < JETS; i++) {
        synth_jet(&cfg, (uint64_t)i, img, &j);
        m[i] = j.m;
        kinds[j.kind]++;
        prongs[j.prongs]++;
        /* the mass from the calorimeters: sqrt(P sum_a E_a |r_a - r|^2) over pixels above
         * 0.3 GeV (the noise floor), positions in radians */
        double P = 0, X = 0, Y = 0, Q = 0, etot[2] = {0, 0}, emax[2] = {0, 0};
        int outer = 0;
        for (int ch = ECAL; ch <= HCAL; ch++)
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) {
                    double e = img[ch * plane + (size_t)y * S + x];
                    etot[ch - ECAL] += e;
                    emax[ch - ECAL] = fmax(emax[ch - ECAL], e);
                    double dx = x + 0.5 - 0.5 * S, dy = y + 0.5 - 0.5 * S;
                    if (ch == ECAL && e > 0 && dx * dx + dy * dy > 0.81 * 0.25 * S * S) outer++;
                    if (e < 0.3) continue;
                    double px = (x + 0.5) * SYNTH_PIXEL_SIZE, py = (y + 0.5) * SYNTH_PIXEL_SIZE;
                    P += e;
                    X += e * px;
                    Y += e * py;
                    Q += e * (px * px + py * py);
                }
        mimg[i] = (float)sqrt(fmax(P * Q - X * X - Y * Y, 0.0));
        ratio_sum += (etot[0] + etot[1]) / j.pt;
        noisy += outer > 0;
        sharp_ecal += emax[0] / fmax(etot[0], 1e-9);
        sharp_hcal += emax[1] / fmax(etot[1], 1e-9);
        long long nz = 0;
        double d0 = 0;
        int nd0 = 0;
        for (size_t k = 0; k < plane; k++) {
            float t = img[TRACK_PT * plane + k];
            nz += t != 0.0f;
            bad_track += t != 0.0f && t < 0.9f;
            if (img[D0 * plane + k] != 0.0f) {
                d0 += img[D0 * plane + k];
                nd0++;
            }
        }
        track_nonzero += (double)nz / (double)plane;
        if (nd0 && j.kind == SYNTH_TOP) d0_top += d0 / nd0, n_top++;
        if (nd0 && j.kind == SYNTH_QCD) d0_qcd += d0 / nd0, n_qcd++;
    }
    float lo = m[0], hi = m[0];
    for (int i = 0; i < JETS; i++) lo = fminf(lo, m[i]), hi = fmaxf(hi, m[i]);
    CHECK(lo > 0.0f && hi < 500.0f && hi > 400.0f, "masses span (0, 500): %g .. %g", lo, hi);
    CHECK(kinds[0] > JETS / 3 && kinds[1] > JETS / 20 && kinds[2] > JETS / 10, "kinds %d %d %d", kinds[0], kinds[1], kinds[2]);
    CHECK(prongs[1] > JETS / 20 && prongs[2] > JETS / 5 && prongs[3] > JETS / 5, "prongs %d %d %d", prongs[1], prongs[2], prongs[3]);
    /* peaks at W and top over their neighbours, a falling background, a tail to 500 */
    long long w = count_in(m, JETS, 70, 90), top = count_in(m, JETS, 160, 185);
    CHECK(w > 2 * count_in(m, JETS, 40, 60) && w > 2 * count_in(m, JETS, 100, 120), "W peak: %lld", w);
    CHECK(top > 2 * count_in(m, JETS, 120, 145) && top > 2 * count_in(m, JETS, 210, 235), "top peak: %lld", top);
    CHECK(count_in(m, JETS, 0, 50) > 3 * count_in(m, JETS, 250, 300), "falling background");
    CHECK(count_in(m, JETS, 400, 500) > JETS / 200, "tail to 500 GeV: %lld", count_in(m, JETS, 400, 500));
    /* the image carries the mass */
    double sa = 0, sb = 0, sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < JETS; i++) {
        sa += mimg[i];
        sb += m[i];
        sab += (double)mimg[i] * m[i];
        saa += (double)mimg[i] * mimg[i];
        sbb += (double)m[i] * m[i];
    }
    double n = JETS, corr = (sab / n - sa / n * sb / n) / sqrt((saa / n - sa * sa / n / n) * (sbb / n - sb * sb / n / n));
    CHECK(corr > 0.93, "correlation of the calorimeter-image mass with the true mass: %.4f", corr);
    CHECK(fabs(ratio_sum / JETS - 1.0) < 0.15, "calorimeter energy / jet pT = %.3f", ratio_sum / JETS);
    /* channel character */
    CHECK(sharp_ecal > 4 * sharp_hcal, "ECAL narrower than HCAL: hottest-pixel share %.3f vs %.3f",
          sharp_ecal / JETS, sharp_hcal / JETS);
    CHECK(track_nonzero / JETS < 0.005 && bad_track == 0, "sparse tracks: %.4f%% of pixels, %d below 0.9 GeV",
          100 * track_nonzero / JETS, bad_track);
    CHECK(noisy > JETS * 9 / 10, "ECAL noise far from the jet in %d of %d jets", noisy, JETS);
    CHECK(d0_top / n_top > 2 * d0_qcd / n_qcd, "top jets carry displaced tracks: mean d0 %.3f vs QCD %.3f mm",
          d0_top / n_top, d0_qcd / n_qcd);
    free(img);
    free(again);
    free(m);
    free(mimg);
    return check_main_result("test_data_synth");
}
