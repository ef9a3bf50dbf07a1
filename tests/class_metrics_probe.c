/* The classifier's metrics (dist/class_metrics.h) of arrays a test writes: reads FILE (an
 * int64 count n, then n float32 logits and n float32 labels), prints "loss accuracy auc
 * rejection30 rejection50" with 17 digits (nan where undefined: jets of one class), or the
 * refusal on stderr with exit 1; with
 * --roc, the ROC curve's points "eps_s eps_b", one a line. tests/test_class_metrics.py
 * compares them with scikit-learn. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "class_metrics.h"
#include "error.h"

int main(int argc, char **argv) {
    int roc = argc == 3 && !strcmp(argv[1], "--roc");
    FILE *f = argc >= 2 ? fopen(argv[argc - 1], "rb") : NULL;
    long long n = 0;
    if (!f || fread(&n, sizeof n, 1, f) != 1 || n < 0) {
        fprintf(stderr, "usage: class_metrics_probe [--roc] FILE\n");
        return 2;
    }
    float *logit = malloc(sizeof(float) * (size_t)(n + 1)), *label = malloc(sizeof(float) * (size_t)(n + 1));
    if (fread(logit, sizeof(float), (size_t)n, f) != (size_t)n || fread(label, sizeof(float), (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "%s: truncated\n", argv[argc - 1]);
        return 2;
    }
    fclose(f);
    int rc = 0;
    if (roc) {
        double *eps_b, *eps_s;
        long long points;
        eps_s = class_roc(logit, label, n, &eps_b, &points);
        for (long long k = 0; eps_s && k < points; k++) printf("%.17g %.17g\n", eps_s[k], eps_b[k]);
        free(eps_s), free(eps_b);
    } else {
        ClassMetrics m;
        rc = class_metrics(logit, label, n, &m);
        if (rc) fprintf(stderr, "%s\n", e2e_error());
        else printf("%.17g %.17g %.17g %.17g %.17g\n", m.loss, m.accuracy, m.auc, m.rejection30, m.rejection50);
    }
    free(logit), free(label);
    return rc ? 1 : 0;
}
