/* The watchdog (watchdog.h): the main thread's marks, the heartbeat thread and its
 * checks, ending the job. It sits below the communicator: comm.c marks its waits here,
 * and the watchdog agrees through net/base/agree.h, calling nothing of comm.c. */
#include "watchdog.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"
#include "agree.h"
#include "clock.h"
#include "error.h"

#define TAG_BEAT 0x5744
#define HOST_LEN 64
#define WAIT_LEN 48
#define RANK0_GRACE_S 10.0   /* ranks other than 1 wait this much longer for a silent rank 0 */
#define TICK_MAX_S 1.0       /* a heartbeat at least every second */
#define MAX_NAMED 8          /* silent ranks named in one message */
#define LAUNCHER_POLL_S 0.05 /* how often a rank looks for its launcher */

static const char *const PHASE_NAME[WD_PHASES] = {
    "setup (opening the data and the model)", "reading a batch", "a training step",
    "the first training step", "evaluating a split", "writing a checkpoint or the run's files"};

/* One heartbeat: where the sender is and how long it has made no progress. */
typedef struct {
    int phase;
    int waiting;                  /* in a collective (wait names the collective) */
    long epoch, step;
    double idle;                  /* seconds without progress, on the sender's clock */
    char wait[WAIT_LEN];
} Beat;

typedef struct {
    double arrived;               /* local time of its last heartbeat (at start: the start) */
    int seen;
    Beat last;
} Peer;

static struct {
    int on;
    double limit, silence, tick, t0; /* progress and silence limits (0: off) */
    MPI_Comm comm;
    MPI_Comm world;               /* the main thread's (the end barrier) */
    pid_t launcher;               /* the process that started this rank (mpirun, orted,
                                     slurmstepd), or 0 when none did */
    int rank, size, mpi_ok;
    char (*hosts)[HOST_LEN];      /* every rank's host */
    pthread_t thread;
    atomic_int stop;
    atomic_int phase;             /* the main thread's marks */
    _Atomic(const char *) wait;   /* NULL: not in a collective */
    atomic_long epoch, step;
    Peer *peers;                  /* rank 0: every rank's; the others: [0], rank 0's */
    MPI_Request *req;             /* one outstanding heartbeat a destination */
    Beat *out;
} W;

/* ---- the main thread's marks ---- */

void watchdog_progress(void) {
    if (W.on) progress_mark();
}

void watchdog_phase(WatchdogPhase p) {
    if (!W.on) return;
    atomic_store(&W.phase, (int)p);
    watchdog_progress();
}

void watchdog_position(long epoch, long step) {
    if (!W.on) return;
    atomic_store(&W.epoch, epoch);
    atomic_store(&W.step, step);
}

void watchdog_wait(const char *name) {
    if (!W.on) return;
    atomic_store(&W.wait, name);
    watchdog_progress();
}

void watchdog_wait_end(void) {
    if (!W.on) return;
    atomic_store(&W.wait, (const char *)NULL);
    watchdog_progress();
}

/* ---- ending the job ---- */

/* the progress limit of a phase (0: off) */
static double limit_of(int phase) {
    return phase == WD_SETUP || phase == WD_FIRST_STEP || phase == WD_CHECKPOINT ? WATCHDOG_LONG_FACTOR * W.limit
                                                                                  : W.limit;
}

static void where(char *out, size_t size, const Beat *b) {
    if (b->epoch >= 0)
        snprintf(out, size, "%s, epoch %ld, step %ld", b->waiting ? b->wait : PHASE_NAME[b->phase], b->epoch + 1,
                 b->step + 1);
    else snprintf(out, size, "%s", b->waiting ? b->wait : PHASE_NAME[b->phase]);
}

/* the line, then every process of the job ends with code */
static void fire(const char *what, int code) {
    fprintf(stderr, "watchdog: %s; reported by rank %d (host %s), ending every rank (exit %d)\n", what, W.rank,
            W.hosts[W.rank], code);
    fflush(stderr);
    fflush(stdout);
    alarm(30);  /* should the abort itself hang: SIGALRM ends this process */
    if (W.mpi_ok) MPI_Abort(W.comm, code);
    _exit(code);
}

static Beat my_beat(double t) {
    Beat b = {.phase = atomic_load(&W.phase), .epoch = atomic_load(&W.epoch), .step = atomic_load(&W.step),
              .idle = t - progress_last()};
    const char *w = atomic_load(&W.wait);
    b.waiting = w != NULL;
    if (w) snprintf(b.wait, sizeof b.wait, "%s", w);
    return b;
}

/* ---- heartbeats ---- */

static void send_to(int dest, const Beat *b) {
    int done = 1;
    if (W.req[dest] != MPI_REQUEST_NULL) MPI_Test(&W.req[dest], &done, MPI_STATUS_IGNORE);
    if (!done) return;  /* the last one is not taken yet: that peer is not listening */
    W.out[dest] = *b;
    MPI_Isend(&W.out[dest], (int)sizeof *b, MPI_BYTE, dest, TAG_BEAT, W.comm, &W.req[dest]);
}

static void exchange(double t) {
    Beat b = my_beat(t);
    if (W.rank != 0) send_to(0, &b);
    else
        for (int r = 1; r < W.size; r++) send_to(r, &b);
    for (;;) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_BEAT, W.comm, &flag, &st);
        if (!flag) break;
        Beat in;
        MPI_Recv(&in, (int)sizeof in, MPI_BYTE, st.MPI_SOURCE, TAG_BEAT, W.comm, MPI_STATUS_IGNORE);
        Peer *p = &W.peers[W.rank == 0 ? st.MPI_SOURCE : 0];
        p->last = in;
        p->seen = 1;
        p->arrived = t;
    }
}

/* ---- the checks ---- */

/* this rank, outside a collective, without progress for its phase's limit: exit 3 */
static void check_self(double t) {
    Beat b = my_beat(t);
    if (!W.limit || b.waiting || b.idle <= limit_of(b.phase)) return;
    char msg[512], at[256];
    where(at, sizeof at, &b);
    snprintf(msg, sizeof msg, "rank %d made no progress for %.0f s in %s (host %s): stuck in its own work", W.rank,
             b.idle, at, W.hosts[W.rank]);
    fire(msg, WATCHDOG_EXIT_STUCK);
}

/* Peers [from, to) silent for more than limit: stopped, gone or unreachable: exit 76,
 * naming the first and listing the others (the ranks of a lost node). */
static void check_silent(double t, int from, int to, double limit) {
    int first = -1, more = 0;
    char others[MAX_NAMED * (HOST_LEN + 24)] = "";
    for (int r = from; r < to; r++) {
        if (t - W.peers[W.rank == 0 ? r : 0].arrived <= limit) continue;
        if (first < 0) first = r;
        else if (more++ < MAX_NAMED)
            snprintf(others + strlen(others), sizeof others - strlen(others), "%srank %d (host %s)",
                     more > 1 ? ", " : "; also silent: ", r, W.hosts[r]);
    }
    if (first < 0) return;
    const Peer *p = &W.peers[W.rank == 0 ? first : 0];
    char msg[1536], at[256] = "no heartbeat ever arrived";
    if (p->seen) {
        char w[200];
        where(w, sizeof w, &p->last);
        snprintf(at, sizeof at, "last seen in %s", w);
    }
    snprintf(msg, sizeof msg, "rank %d stopped answering: no heartbeat for %.0f s, %s (host %s): its process is "
             "stopped or gone, or its node is down or cut off%s%s", first, t - p->arrived, at, W.hosts[first], others,
             more > MAX_NAMED ? ", ..." : "");
    fire(msg, WATCHDOG_EXIT_LOST);
}

/* rank 0: every rank in a collective, none progressing (MPI or the network is stuck):
 * exit 3 */
static void check_all_waiting(double t) {
    Beat b = my_beat(t);
    if (!W.limit || !b.waiting || b.idle <= W.limit) return;
    for (int r = 1; r < W.size; r++) {
        const Peer *p = &W.peers[r];
        if (!p->seen || !p->last.waiting || p->last.idle + (t - p->arrived) <= W.limit) return;
    }
    char msg[512], at[256];
    where(at, sizeof at, &b);
    snprintf(msg, sizeof msg, "rank 0 and every other rank have waited in collectives for %.0f s (rank 0 in %s, "
             "host %s): MPI or the network is stuck", b.idle, at, W.hosts[0]);
    fire(msg, WATCHDOG_EXIT_STUCK);
}

static void check(double t) {
    check_self(t);
    if (!W.mpi_ok) return;
    if (W.rank == 0) {
        if (W.silence) check_silent(t, 1, W.size, W.silence);
        check_all_waiting(t);
    } else if (W.silence) {
        check_silent(t, 0, 1, W.silence + (W.rank == 1 ? 0 : RANK0_GRACE_S));
    }
}

/* The launcher (mpirun, its daemon, slurmstepd) gone: the job was killed (SIGKILL to
 * mpirun: no time for a checkpoint), and nothing will collect this rank's output or
 * end it. Training on would write into a run folder that a requeued job may want (its
 * lock held by a process of a dead job). The rank ends at once. */
static void check_launcher(void) {
    if (!W.launcher || getppid() == W.launcher) return;
    signal(SIGPIPE, SIG_IGN); /* the launcher held our stderr: the line may go nowhere */
    fprintf(stderr, "watchdog: rank %d (host %s): its launcher (pid %ld) is gone, the job was killed: ending this "
            "rank now, writing nothing more (exit %d)\n", W.rank, W.hosts[W.rank], (long)W.launcher,
            WATCHDOG_EXIT_LOST);
    _exit(WATCHDOG_EXIT_LOST);
}

/* this rank's launcher, when one started it (Open MPI, PMIx or PMI say so in the
 * environment; a program started by hand has a shell, whose end must not end it) */
static pid_t launcher_of_this_rank(void) {
    if (!getenv("OMPI_COMM_WORLD_RANK") && !getenv("PMIX_RANK") && !getenv("PMI_RANK")) return 0;
    pid_t p = getppid();
    return p > 1 ? p : 0;
}

/* This whole process was suspended (SIGSTOP and SIGCONT, as mpirun sends before it
 * kills; a paused machine): no one is judged across that gap, this rank included. */
static void resumed(double t) {
    progress_mark_at(t);
    for (int r = 0; r < W.size; r++) W.peers[r].arrived = t;
}

static double shortest_limit(void) {
    return W.limit && W.silence ? (W.limit < W.silence ? W.limit : W.silence) : W.limit ? W.limit : W.silence;
}

/* sleeps a tick, looking for the launcher every LAUNCHER_POLL_S */
static void sleep_tick(void) {
    for (double left = W.tick; left > 0 && !atomic_load(&W.stop); left -= LAUNCHER_POLL_S) {
        double d = left < LAUNCHER_POLL_S ? left : LAUNCHER_POLL_S;
        struct timespec ts = {(time_t)d, (long)((d - (time_t)d) * 1e9)};
        nanosleep(&ts, NULL);
        check_launcher();
    }
}

static void *watch(void *arg) {
    (void)arg;
    double last = monotonic_seconds();
    while (!atomic_load(&W.stop)) {
        sleep_tick();
        double t = monotonic_seconds();
        if (t - last > W.tick + shortest_limit() / 2) resumed(t);
        last = t;
        if (W.mpi_ok) exchange(t);
        check(t);
    }
    return NULL;
}

/* ---- start and stop ---- */

/* 0 on every rank, or -1 on every rank with the lowest failing rank's message, named by
 * rank when there are several (as comm_fail_together names it). */
static int fail_together(const Comm *c, int failed) {
    if (failed && c->size > 1) {
        char named[AGREE_MESSAGE_LEN];
        snprintf(named, sizeof named, "rank %d: %s", c->rank, e2e_error());
        e2e_fail("%s", named);
    }
    return agree_fail_together(c->world, failed ? -1 : 0);
}

static void join_thread(void) {
    atomic_store(&W.stop, 1);
    pthread_join(W.thread, NULL);
    W.on = 0;
}

static void release(void) {
    free(W.hosts);
    free(W.peers);
    free(W.req);
    free(W.out);
    W.hosts = NULL;
    W.peers = NULL;
    W.req = NULL;
    W.out = NULL;
}

int watchdog_start(Comm *c, double progress_s, double peer_timeout_s) {
    memset(&W, 0, sizeof W);
    W.limit = progress_s > 0 ? progress_s : 0;
    W.silence = peer_timeout_s > 0 ? peer_timeout_s : 0;
    if (!W.limit && !W.silence) return 0;
    double tick = shortest_limit() / 8;
    W.tick = tick < 0.02 ? 0.02 : tick > TICK_MAX_S ? TICK_MAX_S : tick;
    W.world = c->world;
    W.launcher = launcher_of_this_rank();
    W.rank = c->rank;
    W.size = c->size;
    W.mpi_ok = c->thread_level >= MPI_THREAD_MULTIPLE;
    W.hosts = calloc((size_t)c->size, HOST_LEN);
    W.peers = calloc((size_t)c->size, sizeof *W.peers);
    W.req = malloc(sizeof *W.req * (size_t)c->size);
    W.out = calloc((size_t)c->size, sizeof *W.out);
    int failed = !W.hosts || !W.peers || !W.req || !W.out;
    if (fail_together(c, failed ? e2e_fail("watchdog: out of memory") : 0)) return release(), -1;
    char host[HOST_LEN] = "?";
    gethostname(host, sizeof host);
    host[HOST_LEN - 1] = '\0';
    MPI_Allgather(host, HOST_LEN, MPI_CHAR, W.hosts, HOST_LEN, MPI_CHAR, c->world);
    MPI_Comm_dup(c->world, &W.comm);
    W.t0 = monotonic_seconds();
    for (int r = 0; r < c->size; r++) {
        W.req[r] = MPI_REQUEST_NULL;
        W.peers[r].arrived = W.t0;
    }
    progress_mark_at(W.t0);
    atomic_store(&W.epoch, -1L);
    atomic_store(&W.phase, (int)WD_SETUP);
    W.on = 1;
    int err = pthread_create(&W.thread, NULL, watch, NULL);
    failed = err != 0;
    if (failed) W.on = 0;
    if (fail_together(c, failed ? e2e_fail("watchdog: cannot start its thread (%s; a process or memory limit of the "
                                            "node?); --watchdog 0 --peer-timeout 0 runs without it", strerror(err))
                                 : 0)) {
        if (!failed) join_thread();  /* not watchdog_stop: the failed rank has no thread */
        MPI_Comm_free(&W.comm);
        release();
        return -1;
    }
    return 0;
}

void watchdog_stop(void) {
    if (!W.on) return;
    /* heartbeats go on while the ranks gather: one that finished first is not silent */
    watchdog_wait("the end of the run");
    MPI_Barrier(W.world);
    join_thread();
    if (W.mpi_ok) MPI_Barrier(W.comm);  /* every rank's thread has stopped sending */
    /* heartbeats still on their way: wait a moment for ours, then let MPI keep them */
    double t0 = monotonic_seconds();
    for (int r = 0; r < W.size; r++) {
        int done = W.req[r] == MPI_REQUEST_NULL;
        while (!done && monotonic_seconds() - t0 < 1.0) MPI_Test(&W.req[r], &done, MPI_STATUS_IGNORE);
        if (!done) MPI_Request_free(&W.req[r]);
    }
    for (int flag = 1; flag;) {  /* theirs that arrived */
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_BEAT, W.comm, &flag, &st);
        Beat in;
        if (flag) MPI_Recv(&in, (int)sizeof in, MPI_BYTE, st.MPI_SOURCE, TAG_BEAT, W.comm, MPI_STATUS_IGNORE);
    }
    MPI_Comm_free(&W.comm);
    release();
}
