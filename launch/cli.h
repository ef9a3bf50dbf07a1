/* Strict command-line number parsing for the launch/ programs: the whole argument must
 * be a number in range, or the program says which option was wrong. */
#ifndef E2E_LAUNCH_CLI_H
#define E2E_LAUNCH_CLI_H

#include <stdint.h>

/* 0, or -1 after printing "<prog>: <opt> expects ..." on stderr when `say` is set */
int cli_ll(const char *prog, const char *opt, const char *s, long long lo, long long hi,
           long long *out, int say);
int cli_u64(const char *prog, const char *opt, const char *s, uint64_t *out, int say);
int cli_double(const char *prog, const char *opt, const char *s, double lo, double hi,
               double *out, int say);

#endif
