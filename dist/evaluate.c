/* A split's metrics, sharded over the ranks (evaluate.h): the regression's sums agreed
 * over the ranks, a classifier's outputs gathered to rank 0 for its exact metrics. */
#include "evaluate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "watchdog.h"

/* This rank's share of split s: the sums {L1 loss, |error| GeV, relative error, count,
 * relative count} (regression), and its predictions in preds when not NULL (a classifier
 * always gives one); 0, or -1 with e2e_error(). */
static int local_sums(Model *m, Dataset *d, Split s, double mre_min_mass, double sums[5],
                      Predictions *preds) {
    int batch = model_config(m)->max_batch;
    double mass_scale = dataset_info(d)->mass_scale;
    float *pred = malloc(sizeof(float) * batch);
    if (!pred) return e2e_fail("out of host memory for %d predictions", batch);
    int rc = dataset_begin_epoch(d, s, 0, 0) ? -1 : 0;
    Batch b;
    while (!rc) {
        int got = dataset_next(d, &b);
        if (got <= 0) {
            rc = got < 0 ? -1 : 0;
            break;
        }
        if (model_predict(m, &b, pred) || (preds && predictions_add(preds, &b, pred, mass_scale))) rc = -1;
        watchdog_progress();
        for (int i = 0; !rc && i < b.n; i++) {
            double mp = pred[i] * mass_scale, mt = b.mass[i], err = fabs(mp - mt);
            sums[0] += fabs((double)pred[i] - b.target[i]);
            sums[1] += err;
            sums[3] += 1;
            if (mt > mre_min_mass) {
                sums[2] += err / mt;
                sums[4] += 1;
            }
        }
    }
    free(pred);
    return rc;
}

/* A classifier's metrics: every rank's logits and labels on rank 0, its exact metrics
 * over the whole split to every rank. */
static int classifier_metrics(Comm *c, const Predictions *mine, Split s, EvalResult *out) {
    Predictions all;
    if (predictions_gather(c, mine, &all)) return -1;
    int failed = c->rank == 0 && class_metrics(all.logit, all.label, all.n, &out->cls) != 0;
    if (failed) e2e_fail("the %s split: %s", dataset_split_name(s), e2e_error());
    predictions_free(&all);
    if (comm_fail_together(c, failed)) return -1;
    comm_bcast_bytes(c, &out->cls, sizeof out->cls);
    out->loss = out->cls.loss;
    return 0;
}

int evaluate_split(Comm *c, Model *m, Dataset *d, Split s, double mre_min_mass, EvalResult *out,
                   Predictions *preds) {
    memset(out, 0, sizeof *out);
    out->classify = model_config(m)->loss == MODEL_LOSS_BCE;
    Predictions own = {.classify = 1};
    if (preds) preds->classify = out->classify, preds->no_mass = !dataset_info(d)->has_mass;
    if (out->classify && !preds) preds = &own;  /* a classifier's metrics need every jet's output */
    double sums[5] = {0};
    int failed = local_sums(m, d, s, mre_min_mass, sums, preds) != 0;
    Agreement a;
    int rc = comm_agree(c, failed ? AGREE_ERROR : 0, sums, 5, &a);
    out->count = (long long)a.sum[3];
    if (!rc && out->count == 0) rc = e2e_fail("the %s split is empty", dataset_split_name(s));
    if (!rc && out->classify) rc = classifier_metrics(c, preds, s, out);
    predictions_free(&own);
    if (rc) return -1;
    if (out->classify)
        return isfinite(out->loss) ? 0 : e2e_fail("non-finite predictions on the %s split", dataset_split_name(s));
    out->mre_count = (long long)a.sum[4];
    out->loss = a.sum[0] / a.sum[3];
    out->mae = a.sum[1] / a.sum[3];
    out->mre = a.sum[4] > 0 ? a.sum[2] / a.sum[4] : NAN;
    if (!isfinite(out->loss)) return e2e_fail("non-finite predictions on the %s split", dataset_split_name(s));
    return 0;
}
