/* The timeline's recording on one rank (dist/run/timeline.h): a phase switch ends the
 * span before it (spans back to back, never overlapping), a switch to the phase already
 * open continues it, TL_NONE closes it, the model's hook gives forward and backward,
 * nothing is recorded outside the window, and past its cap a rank drops spans and counts
 * them. (Gathering, the clocks and the file: tests/test_train_features.py trace.) */
#include <string.h>

#include "check.h"
#include "model.h"
#include "timeline.h"

int main(void) {
    Timeline tl;
    memset(&tl, 0, sizeof tl);
    tl.max = 1000;
    timeline_phase(&tl, TL_DATA);
    timeline_phase(&tl, TL_NONE);
    CHECK(tl.n == 0, "outside the window nothing is recorded (%zu spans)", tl.n);

    tl.recording = 1;
    tl.step = 7;
    timeline_micro(&tl, 1);
    timeline_phase(&tl, TL_DATA);
    timeline_model_hook(&tl, MODEL_PHASE_FORWARD);
    timeline_model_hook(&tl, MODEL_PHASE_FORWARD);  /* the same phase: one span */
    timeline_model_hook(&tl, MODEL_PHASE_BACKWARD);
    timeline_phase(&tl, TL_ALLREDUCE);
    timeline_phase(&tl, TL_NONE);
    timeline_phase(&tl, TL_NONE);
    int want[] = {TL_DATA, TL_FORWARD, TL_BACKWARD, TL_ALLREDUCE};
    CHECK(tl.n == 4, "4 spans, got %zu", tl.n);
    for (size_t i = 0; i < tl.n && i < 4; i++) {
        CHECK(tl.ev[i].phase == want[i] && tl.ev[i].step == 7 && tl.ev[i].micro == 1, "span %zu: phase %d", i,
              tl.ev[i].phase);
        CHECK(tl.ev[i].t1 >= tl.ev[i].t0, "span %zu ends after it starts", i);
        if (i) CHECK(tl.ev[i].t0 == tl.ev[i - 1].t1, "span %zu starts where %zu ended", i, i - 1);
    }

    tl.max = 6;
    for (int i = 0; i < 10; i++) timeline_phase(&tl, i % 2 ? TL_CHECK : TL_AGREE);
    timeline_phase(&tl, TL_NONE);
    CHECK(tl.n == 6 && tl.dropped == 8, "past the cap: %zu kept, %ld dropped", tl.n, tl.dropped);
    timeline_free(&tl);
    CHECK(tl.ev == NULL && tl.n == 0, "freed");
    return check_main_result("test_timeline");
}
