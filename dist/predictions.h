/* Per-jet predictions of a split: kept by each rank as it evaluates its share (evaluate.c),
 * gathered to rank 0 (a classifier's exact metrics; e2e-eval's prediction file) and
 * written there sorted by dataset index. The regression's file holds index, m_true,
 * m_pred (GeV); a classifier's index, label, score (the sigmoid of the logit), logit and
 * m (the jet's mass, GeV; left out where the data has none). */
#ifndef E2E_DIST_PREDICTIONS_H
#define E2E_DIST_PREDICTIONS_H

#include "batch.h"
#include "comm.h"

/* The root attribute "format" of a prediction file. */
#define PREDICTIONS_FORMAT "e2e-ddp predictions"

typedef struct {
    long long n, cap;
    int classify;         /* 0: the regression's columns; 1: a classifier's (set before the
                             first predictions_add) */
    int no_mass;          /* classify: the data has no masses (DatasetInfo.has_mass 0): the
                             file leaves out m */
    long long *index;     /* each jet's dataset row */
    float *m_true;        /* the jet's mass, GeV */
    float *m_pred;        /* regression: the predicted mass, GeV */
    float *label, *logit; /* classification: the jet's class (0 or 1), the model's logit */
} Predictions;

/* Appends the batch's jets: their index, mass and (classify) label, and the model's
 * outputs pred (regression: times mass_scale, a mass in GeV; classification: the
 * logits). 0, or -1 when memory runs out. */
int predictions_add(Predictions *p, const Batch *b, const float *pred, double mass_scale);
/* Collective: every rank's predictions into *all on rank 0, in rank order (all stays empty
 * on the other ranks). 0, or -1 on every rank (rank 0 out of memory). */
int predictions_gather(Comm *c, const Predictions *p, Predictions *all);
/* Collective: gathers every rank's predictions and writes them on rank 0, sorted by
 * index, with the attribute format = PREDICTIONS_FORMAT (and task = "classification"
 * for a classifier); written whole (net/base/outfile.h): a failed write leaves no file
 * and the previous one, if any, as it was. */
int predictions_write(Comm *c, const Predictions *p, const char *path);
void predictions_free(Predictions *p);
/* 1 when path may be replaced by a prediction file: it does not exist, or it is one
 * (its format attribute, or an older one's index, m_true, m_pred); else 0 with the
 * reason in e2e_error() (a checkpoint, a jet file, anything else). */
int predictions_replaceable(const char *path);

#endif
