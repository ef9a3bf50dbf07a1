/* SIGUSR1/SIGTERM set a flag the training loop reads at its next agreement point
 * (stop_signal.h). */
#include "stop_signal.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t received;

static void on_signal(int signo) { received = signo; }

void stop_signal_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;  /* a signal must not break MPI or file I/O calls */
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int stop_signal_received(void) { return received; }

void stop_signal_raise(int signo) { received = signo; }
