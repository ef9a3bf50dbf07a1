/* The step phases' timeline (timeline.h): spans recorded per rank in a window of steps,
 * gathered on rank 0 and written as a Chrome trace; NVTX ranges in a CUDA build. */
#include "timeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "model.h"
#include "outfile.h"

#ifdef E2E_NVTX
#include <nvtx3/nvToolsExt.h>
#endif

static const char *const PHASE_NAMES[TL_PHASES] = {
    "", "data wait", "host-to-device", "forward", "backward", "accumulate", "loss check", "agreement",
    "all-reduce", "optimizer", "validation", "checkpoint"};

#define DEFAULT_WINDOW 20
/* the most spans of a trace, over all ranks (about 80 MB gathered on rank 0, 300 MB of
 * JSON): a longer window keeps each rank's first ones and says so */
#define MAX_SPANS 2000000L

int timeline_open(Timeline *tl, Comm *c, const TrainConfig *cfg, long steps_per_epoch) {
    memset(tl, 0, sizeof *tl);
    tl->path = cfg->trace;
    tl->first = cfg->trace_first >= 0 ? cfg->trace_first : cfg->epochs > 1 ? steps_per_epoch : 0;
    tl->end = cfg->trace_first >= 0 ? cfg->trace_end : tl->first + DEFAULT_WINDOW;
    if (!tl->path) return 0;
    OutInput in = {cfg->data, "--data"};
    int failed = c->rank == 0 && out_check_path(tl->path, "--trace", &in, 1) != 0;
    if (comm_fail_together(c, failed)) return -1;
    tl->max = MAX_SPANS / c->size > 1024 ? MAX_SPANS / c->size : 1024;
    tl->offset = comm_clock_offset(c, monotonic_seconds);
    tl->origin = monotonic_seconds();
    return 0;
}

/* the open span, ended now, into the record */
static void record(Timeline *tl, double now) {
    if (tl->n >= tl->max) {
        tl->dropped++;
        return;
    }
    if (tl->n == tl->cap) {
        size_t cap = tl->cap ? 2 * tl->cap : 4096;
        TraceEvent *ev = realloc(tl->ev, cap * sizeof *ev);
        if (!ev) {  /* the trace misses the rest: memory is the run's */
            tl->dropped++;
            return;
        }
        tl->ev = ev;
        tl->cap = cap;
    }
    tl->ev[tl->n++] = (TraceEvent){.t0 = tl->since + tl->offset, .t1 = now + tl->offset, .step = tl->step,
                                   .micro = tl->micro, .phase = tl->phase};
}

void timeline_phase(Timeline *tl, TracePhase p) {
    if (p == tl->phase) return;
#ifdef E2E_NVTX
    if (tl->phase != TL_NONE) nvtxRangePop();
    if (p != TL_NONE) nvtxRangePushA(PHASE_NAMES[p]);
#else
    if (!tl->recording) return;  /* nothing to record: the phase is not needed either */
#endif
    double now = monotonic_seconds();
    if (tl->recording && tl->phase != TL_NONE) record(tl, now);
    tl->phase = p;
    tl->since = now;
}

void timeline_model_hook(void *timeline, int model_phase) {
    timeline_phase(timeline, model_phase == MODEL_PHASE_FORWARD ? TL_FORWARD : TL_BACKWARD);
}

void timeline_micro(Timeline *tl, int k) { tl->micro = k; }

void timeline_step(Timeline *tl, Comm *c, long step) {
    tl->step = step;
    tl->micro = 0;
    if (!tl->path || tl->done) return;
    if (tl->recording && step >= tl->end) timeline_finish(tl, c);
    else if (!tl->recording && step >= tl->first && step < tl->end) {
        tl->recording = 1;
        tl->phase = TL_NONE;
    }
}

/* What each rank sends rank 0: who it is, then its spans. */
typedef struct {
    int rank;
    char host[64];
    long n, dropped;
} TraceHeader;

/* One rank's part of the gathered bytes as JSON events (rank 0's origin subtracted). */
static int append_rank(FILE *f, const char *part, size_t bytes, double origin, int *first, long *dropped) {
    TraceHeader h;
    if (bytes < sizeof h) return -1;
    memcpy(&h, part, sizeof h);
    *dropped += h.dropped;
    if (bytes != sizeof h + (size_t)h.n * sizeof(TraceEvent)) return -1;
    fprintf(f, "%s{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": %d, \"args\": {\"name\": \"rank %d (%s)\"}},\n"
            "{\"name\": \"process_sort_index\", \"ph\": \"M\", \"pid\": %d, \"args\": {\"sort_index\": %d}}",
            *first ? "" : ",\n", h.rank, h.rank, h.host, h.rank, h.rank);
    *first = 0;
    const TraceEvent *ev = (const TraceEvent *)(part + sizeof h);
    for (long i = 0; i < h.n; i++)
        fprintf(f, ",\n{\"name\": \"%s\", \"cat\": \"step\", \"ph\": \"X\", \"pid\": %d, \"tid\": 0, \"ts\": %.3f, "
                "\"dur\": %.3f, \"args\": {\"step\": %ld, \"micro\": %d}}",
                PHASE_NAMES[ev[i].phase], h.rank, (ev[i].t0 - origin) * 1e6, (ev[i].t1 - ev[i].t0) * 1e6,
                ev[i].step, ev[i].micro);
    return 0;
}

/* Rank 0: the gathered parts as the trace file. */
static int write_trace(const Timeline *tl, int ranks, const char *all, const size_t *counts) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return e2e_fail("%s: out of memory for the trace", tl->path);
    fprintf(f, "{\"displayTimeUnit\": \"ms\", \"otherData\": {\"steps\": \"%ld:%ld\", \"clock\": \"rank 0's "
            "monotonic clock, microseconds from the trace's start\"},\n\"traceEvents\": [\n", tl->first, tl->end);
    int first = 1, bad = 0;
    long dropped = 0;
    for (int r = 0; r < ranks; all += counts[r], r++)
        bad |= append_rank(f, all, counts[r], tl->origin, &first, &dropped);
    if (dropped)
        e2e_warn("--trace %s: %ld spans past the window's first %zu a rank were left out (a shorter --trace-steps "
                 "keeps them all)", tl->path, dropped, tl->max);
    fprintf(f, "\n]}\n");
    if (fclose(f) || bad) {
        free(text);
        return e2e_fail("%s: the ranks' spans did not arrive whole", tl->path);
    }
    int rc = out_write_file(tl->path, text, len);
    free(text);
    return rc;
}

void timeline_finish(Timeline *tl, Comm *c) {
    if (!tl->path || tl->done) return;
    if (!tl->recording) {
        if (c->rank == 0)
            e2e_warn("--trace %s: no step of the window %ld:%ld was run: no trace written", tl->path, tl->first,
                     tl->end);
        tl->done = 1;
        return;
    }
    timeline_phase(tl, TL_NONE);
    tl->recording = 0;
    tl->done = 1;
    size_t bytes = sizeof(TraceHeader) + tl->n * sizeof(TraceEvent);
    char *mine = calloc(1, bytes), *all = NULL;
    size_t *counts = NULL;
    TraceHeader h = {.rank = c->rank, .n = mine ? (long)tl->n : 0, .dropped = tl->dropped};
    gethostname(h.host, sizeof h.host - 1);
    if (mine) {
        memcpy(mine, &h, sizeof h);
        memcpy(mine + sizeof h, tl->ev, tl->n * sizeof(TraceEvent));
    }
    int rc = comm_gather_bytes(c, mine ? mine : (char *)&h, mine ? bytes : sizeof h, &all, &counts);
    if (!rc && c->rank == 0) rc = write_trace(tl, c->size, all, counts);
    if (c->rank == 0 && rc) e2e_warn("--trace: %s", e2e_error());
    else if (c->rank == 0) printf("e2e-train: trace of steps %ld:%ld written to %s\n", tl->first, tl->end, tl->path);
    free(mine);
    free(all);
    free(counts);
}

void timeline_free(Timeline *tl) {
    free(tl->ev);
    tl->ev = NULL;
    tl->n = tl->cap = 0;
}
