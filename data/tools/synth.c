/* The synthetic jet model (data/README.md has the physics in words).
 *
 * 1. A class and a target mass: falling QCD background, a broad QCD component, W-like
 *    and top-like resonances; or, for a classifier, a label: top jets (signal) against
 *    QCD jets (background), some of which fake a top.
 * 2. Prongs (1 to 3) with momentum fractions and directions in "unit geometry"
 *    (jet pT = 1, the widest separation about 1); each prong fragments into a few
 *    particles.
 * 3. The unit mass m_u = sqrt(sum_a p_a |r_a - r|^2) (r the pT-weighted centroid; this
 *    equals sqrt(sum over pairs p_a p_b dR_ab^2) for total pT 1) fixes the angular
 *    scale s = m / (pT m_u) that gives the jet exactly the target mass; pT is raised
 *    where needed so the jet fits in the image.
 * 4. Particles deposit channel by channel: narrow ECAL showers, wide HCAL towers,
 *    single-pixel tracks (pT, impact parameters), pixel-detector hits; then noise.
 * The stored mass is recomputed from the particles, so it is what the image shows. */
#include "synth.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "keyed_rng.h"

enum { CH_TRACK_PT, CH_DZ, CH_D0, CH_ECAL, CH_HCAL, CH_BPIX1, CH_BPIX2, CH_BPIX3, CH_KINDS };
static const char *const CHANNEL_NAME[CH_KINDS] = {"track_pt", "dz",    "d0",    "ecal",
                                                   "hcal",     "bpix1", "bpix2", "bpix3"};
static const int CHANNEL_PRIORITY[CH_KINDS] = {CH_ECAL, CH_HCAL,  CH_TRACK_PT, CH_D0,
                                               CH_DZ,   CH_BPIX1, CH_BPIX2,    CH_BPIX3};

#define MAX_PARTICLES 32
#define MAX_PRONGS 3
#define HCAL_TOWER 5          /* an HCAL tower covers 5 x 5 ECAL crystals */
#define ECAL_SIGMA 0.55       /* shower widths in pixels */
#define HCAL_SIGMA 1.2
#define BPIX_RADII {0.029, 0.068, 0.109} /* pixel layer radii in metres */
#define BFIELD 3.8            /* tesla */
#define PT_MAX 3000.0         /* GeV */

int synth_check(const SynthConfig *c) {
    if (c->channels < 1 || c->channels > SYNTH_MAX_CHANNELS)
        return e2e_fail("channels must be 1 to %d (got %d)", SYNTH_MAX_CHANNELS, c->channels);
    if (c->size < 8 || c->size > 4096)
        return e2e_fail("image size must be 8 to 4096 pixels (got %d)", c->size);
    if (!(c->pixel_size > 0.0) || c->pixel_size > 1.0)
        return e2e_fail("pixel size must be in (0, 1] (got %g)", c->pixel_size);
    if (c->classify && !(c->signal_fraction > 0.0 && c->signal_fraction < 1.0))
        return e2e_fail("the signal fraction must be in (0, 1) (got %g)", c->signal_fraction);
    if (c->classify && !(c->overlap >= 0.0 && c->overlap <= 1.0))
        return e2e_fail("the overlap must be in [0, 1] (got %g)", c->overlap);
    return 0;
}

/* slot[kind]: the output channel of each channel kind, or -1 */
static void channel_slots(int channels, int slot[CH_KINDS]) {
    int on[CH_KINDS] = {0};
    for (int i = 0; i < channels; i++) on[CHANNEL_PRIORITY[i]] = 1;
    for (int k = 0, next = 0; k < CH_KINDS; k++) slot[k] = on[k] ? next++ : -1;
}

void synth_channel_names(int channels, const char **names) {
    int slot[CH_KINDS];
    channel_slots(channels, slot);
    for (int k = 0; k < CH_KINDS; k++)
        if (slot[k] >= 0) names[slot[k]] = CHANNEL_NAME[k];
}

typedef struct { double x, y, frac, width; int from_b; } Prong;
typedef struct { double x, y, p, fem; int charged, charge, from_b; } Particle;

static double sample_mass(DRng *r, int *kind) {
    double u = drng_uniform(r), m;
    for (;;) {
        if (u < 0.40) { *kind = SYNTH_QCD; m = 2.0 + drng_exp(r, 70.0); }      /* falling */
        else if (u < 0.60) { *kind = SYNTH_QCD; m = 10.0 + 490.0 * drng_uniform(r); } /* broad */
        else if (u < 0.75) { *kind = SYNTH_W; m = 80.4 + 6.0 * drng_normal(r); }
        else { *kind = SYNTH_TOP; m = 172.5 + 10.0 * drng_normal(r); }
        if (m > 0.5 && m < 499.5) return m;
    }
}

/* A labelled jet's class, kind and mass: a top jet (label 1) with probability
 * signal_fraction, else a QCD jet (label 0) from the falling and the broad spectra in the
 * proportions above, or with probability overlap a QCD jet that fakes a top, drawn as one */
static double sample_class(DRng *r, const SynthConfig *c, int *kind, int *label) {
    *label = drng_uniform(r) < c->signal_fraction;
    int fake = !*label && drng_uniform(r) < c->overlap;
    double m;
    do {
        if (*label || fake) { *kind = SYNTH_TOP; m = 172.5 + 10.0 * drng_normal(r); }
        else if (drng_uniform(r) < 2.0 / 3.0) { *kind = SYNTH_QCD; m = 2.0 + drng_exp(r, 70.0); }
        else { *kind = SYNTH_QCD; m = 10.0 + 490.0 * drng_uniform(r); }
    } while (!(m > 0.5 && m < 499.5));
    return m;
}

static void unit_dir(DRng *r, double *ux, double *uy) {
    double a = 2.0 * M_PI * drng_uniform(r);
    *ux = cos(a);
    *uy = sin(a);
}

/* two prongs with fractions a, 1 - a at separation d along a random direction, around
 * (cx, cy), balanced so their pT-weighted centre is (cx, cy) */
static void two_prongs(DRng *r, double a, double d, double cx, double cy, double frac,
                       Prong *p0, Prong *p1) {
    double ux, uy;
    unit_dir(r, &ux, &uy);
    double b = 1.0 - a;
    *p0 = (Prong){cx - b * d * ux, cy - b * d * uy, frac * a, 0, 0};
    *p1 = (Prong){cx + a * d * ux, cy + a * d * uy, frac * b, 0, 0};
}

/* QCD splittings favour soft fractions: z in [0.05, 0.5] with density ~ 1/z */
static double soft_z(DRng *r) { return 0.05 * exp(drng_uniform(r) * log(10.0)); }

static int make_prongs(DRng *r, int kind, double m, Prong *pr) {
    int n;
    if (kind == SYNTH_W) {
        two_prongs(r, 0.15 + 0.7 * drng_uniform(r), 1.0, 0, 0, 1.0, &pr[0], &pr[1]);
        n = 2;
    } else if (kind == SYNTH_TOP) {
        /* b + W(qq'): with the q q' separation 1, the b-W separation t gives the pair
         * masses the ratio m_W / m (small-angle algebra: m^2 = m_W^2 / p_W + x_b p_W t^2) */
        double xb = 0.2 + 0.3 * drng_uniform(r), pw = 1.0 - xb;
        double z = 0.15 + 0.7 * drng_uniform(r);
        double rho = fmin(80.4 / m, 0.8), mw2 = pw * pw * z * (1.0 - z);
        double t2 = mw2 * (1.0 / (rho * rho) - 1.0 / pw) / (xb * pw);
        double t = t2 > 0.09 ? sqrt(t2) : 0.3;
        Prong w;
        two_prongs(r, xb, t, 0, 0, 1.0, &pr[0], &w); /* pr[0] is the b */
        pr[0].from_b = 1;
        two_prongs(r, z, 1.0, w.x, w.y, w.frac, &pr[1], &pr[2]);
        n = 3;
    } else if (m < 25.0) {
        pr[0] = (Prong){0, 0, 1.0, 0, 0};
        n = 1;
    } else {
        double z = soft_z(r);
        two_prongs(r, 1.0 - z, 1.0, 0, 0, 1.0, &pr[0], &pr[1]);
        n = 2;
        if (drng_uniform(r) < 0.35) { /* a second, narrower splitting of the hard prong */
            Prong hard = pr[0];
            two_prongs(r, 1.0 - soft_z(r), 0.3 + 0.4 * drng_uniform(r), hard.x, hard.y,
                       hard.frac, &pr[0], &pr[2]);
            n = 3;
        }
    }
    for (int i = 0; i < n; i++) pr[i].width = n == 1 ? 1.0 : (kind == SYNTH_QCD ? 0.10 : 0.07);
    return n;
}

/* each prong becomes 2 to 8 particles with exponential weights, softer ones wider,
 * re-centred on the prong */
static int fragment(DRng *r, const Prong *pr, int nprong, Particle *pa) {
    int n = 0;
    for (int i = 0; i < nprong; i++) {
        int k = 2 + drng_poisson(r, 2.5);
        if (k > 8) k = 8;
        double w[8], sum = 0.0, cx = 0.0, cy = 0.0;
        for (int j = 0; j < k; j++) sum += (w[j] = drng_exp(r, 1.0) + 1e-3);
        for (int j = 0; j < k; j++) {
            Particle *q = &pa[n + j];
            double f = w[j] / sum, spread = pr[i].width * (0.4 + (1.0 - f));
            q->p = pr[i].frac * f;
            q->x = spread * drng_normal(r);
            q->y = spread * drng_normal(r);
            cx += f * q->x;
            cy += f * q->y;
            q->from_b = pr[i].from_b;
            q->charged = drng_uniform(r) < 0.62;
            q->charge = drng_uniform(r) < 0.5 ? -1 : 1;
            if (q->charged) q->fem = 0.25 * drng_uniform(r);
            else q->fem = drng_uniform(r) < 0.7 ? 1.0 : 0.15 * drng_uniform(r);
        }
        for (int j = 0; j < k; j++) {
            pa[n + j].x += pr[i].x - cx;
            pa[n + j].y += pr[i].y - cy;
        }
        n += k;
    }
    return n;
}

/* Fractions of a Gaussian (centre x0, width sigma, in pixels) falling in each cell of
 * `cell` pixels along an axis of ncell cells; returns the first cell and the count. */
static int gauss_cells(double x0, double sigma, int cell, int ncell, int *first, double *w) {
    int lo = (int)floor((x0 - 3.5 * sigma) / cell), hi = (int)floor((x0 + 3.5 * sigma) / cell);
    if (lo < 0) lo = 0;
    if (hi > ncell - 1) hi = ncell - 1;
    int n = 0;
    const double k = 1.0 / (sigma * M_SQRT2);
    for (int i = lo; i <= hi; i++) w[n++] = 0.5 * (erf(((i + 1) * cell - x0) * k) - erf((i * cell - x0) * k));
    *first = lo;
    return n;
}

static void deposit_gauss(float *plane, double *tmp, int width, int cell, int ncell, double x,
                          double y, double sigma, double e) {
    double wx[64], wy[64];
    int fx, fy, nx = gauss_cells(x, sigma, cell, ncell, &fx, wx),
                ny = gauss_cells(y, sigma, cell, ncell, &fy, wy);
    for (int j = 0; j < ny; j++)
        for (int i = 0; i < nx; i++) {
            if (plane) plane[(size_t)(fy + j) * width + fx + i] += (float)(e * wy[j] * wx[i]);
            else tmp[(size_t)(fy + j) * ncell + fx + i] += e * wy[j] * wx[i];
        }
}

static inline void add_pixel(float *plane, int size, double x, double y, float v) {
    if (x < 0 || y < 0 || x >= size || y >= size) return;
    plane[(size_t)(int)y * size + (int)x] += v;
}

/* a detector response: e * (1 + N(0, stochastic/sqrt(e) (+) constant)), never negative */
static double smear(DRng *r, double e, double stochastic, double constant) {
    double s = sqrt(stochastic * stochastic / fmax(e, 1e-3) + constant * constant);
    double v = e * (1.0 + s * drng_normal(r));
    return v > 0 ? v : 0;
}

/* The jet's particles in unit geometry, centred: prongs drawn (again, up to 8 times,
 * while fitting the jet in the image would take a pT above PT_MAX) and fragmented.
 * Returns the particle count; *mu is the unit mass, *pt_fit the pT the jet needs to fit
 * in a disc of rfit radians. */
static int draw_particles(DRng *r, int kind, double m, double rfit, Particle *pa, int *nprong,
                          double *mu, double *pt_fit) {
    Prong pr[MAX_PRONGS];
    int np = 0;
    *pt_fit = 0.0;
    for (int attempt = 0; attempt < 8 && (attempt == 0 || *pt_fit > PT_MAX); attempt++) {
        *nprong = make_prongs(r, kind, m, pr);
        np = fragment(r, pr, *nprong, pa);
        /* centre, unit mass, and the pT the jet needs to fit */
        double cx = 0.0, cy = 0.0, mu2 = 0.0, rmax = 0.0;
        for (int a = 0; a < np; a++) {
            cx += pa[a].p * pa[a].x;
            cy += pa[a].p * pa[a].y;
        }
        for (int a = 0; a < np; a++) {
            pa[a].x -= cx;
            pa[a].y -= cy;
            double d2 = pa[a].x * pa[a].x + pa[a].y * pa[a].y;
            mu2 += pa[a].p * d2;
            rmax = fmax(rmax, sqrt(d2));
        }
        *mu = sqrt(mu2);
        *pt_fit = m * rmax / (*mu * rfit);
    }
    return np;
}

/* Where a jet is drawn: its channel planes (NULL where the file has no such channel),
 * the HCAL towers before they are spread over their pixels, the image geometry. */
typedef struct {
    const SynthConfig *c;
    float *ch[CH_KINDS];
    double *hcal;
    int towers;
    double x0, y0;      /* the jet axis, pixels */
} Canvas;

/* One particle's deposits: ECAL and HCAL showers, and when it is a tracked charged
 * particle its track pT, impact parameters and pixel hits. */
static void deposit(DRng *r, Canvas *v, const Particle *q, double ppt, double ex, double ey) {
    const int S = v->c->size;
    static const double radii[3] = BPIX_RADII;
    double X = v->x0 + ex / v->c->pixel_size, Y = v->y0 + ey / v->c->pixel_size;
    double eem = smear(r, q->fem * ppt, 0.03, 0.005);
    double ehad = smear(r, (1.0 - q->fem) * ppt, 0.8, 0.05);
    if (v->ch[CH_ECAL] && eem > 0) deposit_gauss(v->ch[CH_ECAL], NULL, S, 1, S, X, Y, ECAL_SIGMA, eem);
    if (v->ch[CH_HCAL] && ehad > 0)
        deposit_gauss(NULL, v->hcal, S, HCAL_TOWER, v->towers, X, Y, HCAL_SIGMA, ehad);
    if (!q->charged || ppt < 1.0 || drng_uniform(r) > 0.92) return; /* tracking efficiency */
    if (v->ch[CH_TRACK_PT]) add_pixel(v->ch[CH_TRACK_PT], S, X, Y, (float)(ppt * (1.0 + 0.01 * drng_normal(r))));
    double disp = q->from_b ? drng_exp(r, 0.4) : 0.0; /* mm: b hadrons fly */
    if (v->ch[CH_D0]) add_pixel(v->ch[CH_D0], S, X, Y, (float)(fabs(0.02 * drng_normal(r)) + disp));
    if (v->ch[CH_DZ]) add_pixel(v->ch[CH_DZ], S, X, Y, (float)(fabs(0.03 * drng_normal(r)) + disp));
    for (int l = 0; l < 3; l++) {
        if (!v->ch[CH_BPIX1 + l]) continue;
        /* bending in phi by the layer radius: dphi = 0.3 B r q / (2 pT) */
        double dphi = 0.3 * BFIELD * radii[l] * q->charge / (2.0 * ppt);
        add_pixel(v->ch[CH_BPIX1 + l], S, X, Y + dphi / v->c->pixel_size,
                  (float)(1.0 + fabs(0.2 * drng_normal(r))));
    }
}

/* Every particle at angular scale s and jet pT pt; returns the mass they carry: sum_a
 * pT_a |theta_a - centre|^2 times the total pT, squared. */
static double deposit_all(DRng *r, Canvas *v, const Particle *pa, int np, double pt, double s) {
    double m2 = 0.0, sx = 0.0, sy = 0.0, spt = 0.0;
    for (int a = 0; a < np; a++) {
        const Particle *q = &pa[a];
        double ppt = pt * q->p, ex = s * q->x, ey = s * q->y; /* GeV, radians */
        sx += ppt * ex;
        sy += ppt * ey;
        spt += ppt;
        m2 += ppt * (ex * ex + ey * ey);
        deposit(r, v, q, ppt, ex, ey);
    }
    double mx = sx / spt, my = sy / spt;
    return spt * (m2 - spt * (mx * mx + my * my));
}

/* The HCAL towers spread evenly over their pixels. */
static void spread_towers(Canvas *v) {
    const int S = v->c->size, towers = v->towers;
    for (int ty = 0; ty < towers; ty++)
        for (int tx = 0; tx < towers; tx++) {
            double e = v->hcal[ty * towers + tx];
            if (e == 0.0) continue;
            int y1 = ty * HCAL_TOWER, x1 = tx * HCAL_TOWER;
            int y2 = y1 + HCAL_TOWER < S ? y1 + HCAL_TOWER : S, x2 = x1 + HCAL_TOWER < S ? x1 + HCAL_TOWER : S;
            float val = (float)(e / ((y2 - y1) * (x2 - x1)));
            for (int y = y1; y < y2; y++)
                for (int x = x1; x < x2; x++) v->ch[CH_HCAL][(size_t)y * S + x] = val;
        }
}

/* noise: ECAL crystals, HCAL towers, pixel-detector hits, placed at random */
static void add_noise(DRng *r, Canvas *v) {
    const size_t plane = (size_t)v->c->size * v->c->size;
    const int towers = v->towers;
    if (v->ch[CH_ECAL])
        for (int k = drng_poisson(r, 0.012 * (double)plane); k > 0; k--)
            v->ch[CH_ECAL][drng_below(r, plane)] += (float)(0.05 + drng_exp(r, 0.15));
    if (v->ch[CH_HCAL]) {
        for (int k = drng_poisson(r, 0.02 * towers * towers); k > 0; k--)
            v->hcal[drng_below(r, (uint64_t)towers * towers)] += drng_exp(r, 0.4);
        spread_towers(v);
    }
    for (int l = 0; l < 3; l++)
        if (v->ch[CH_BPIX1 + l])
            for (int k = drng_poisson(r, 0.0015 * (double)plane); k > 0; k--)
                v->ch[CH_BPIX1 + l][drng_below(r, plane)] += 1.0f;
}

void synth_jet(const SynthConfig *c, uint64_t index, float *img, SynthJet *jet) {
    const int S = c->size;
    const size_t plane = (size_t)S * S;
    int slot[CH_KINDS];
    channel_slots(c->channels, slot);
    memset(img, 0, plane * (size_t)c->channels * sizeof *img);
    Canvas v = {.c = c, .towers = (S + HCAL_TOWER - 1) / HCAL_TOWER};
    for (int k = 0; k < CH_KINDS; k++) v.ch[k] = slot[k] >= 0 ? img + plane * (size_t)slot[k] : NULL;

    DRng r;
    drng_key(&r, (uint64_t[]){c->seed, index}, 2);
    int kind, nprong = 0, label = 0;
    double m = c->classify ? sample_class(&r, c, &kind, &label) : sample_mass(&r, &kind);
    double pt = 400.0 * pow(1.0 - drng_uniform(&r), -1.0 / 3.0); /* dN/dpT ~ pT^-4 */
    double rfit = 0.8 * 0.5 * S * c->pixel_size;                    /* radians */
    Particle pa[MAX_PARTICLES];
    double mu = 0.0, pt_fit = 0.0;
    int np = draw_particles(&r, kind, m, rfit, pa, &nprong, &mu, &pt_fit);
    if (pt < pt_fit) pt = pt_fit;
    double s = m / (pt * mu); /* the angular scale that gives the target mass */

    /* the jet axis sits within half a pixel of the image centre */
    v.x0 = 0.5 * S + (drng_uniform(&r) - 0.5);
    v.y0 = 0.5 * S + (drng_uniform(&r) - 0.5);
    v.hcal = v.ch[CH_HCAL] ? calloc((size_t)v.towers * v.towers, sizeof *v.hcal) : NULL;
    if (v.ch[CH_HCAL] && !v.hcal) abort(); /* a few kB: out of memory here is fatal */
    double mass2 = deposit_all(&r, &v, pa, np, pt, s);
    add_noise(&r, &v);
    free(v.hcal);

    jet->m = (float)sqrt(fmax(mass2, 0.0));
    jet->pt = (float)pt;
    jet->ieta = (float)drng_below(&r, 170);
    jet->iphi = (float)drng_below(&r, 360);
    jet->prongs = nprong;
    jet->kind = kind;
    jet->particles = np;
    jet->label = label;
}
