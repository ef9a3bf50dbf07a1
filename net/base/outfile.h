/* Every file the project writes goes through here (checkpoints, prediction and metrics
 * files, the run folder's files, e2e-synth's jet files): it is written under a
 * temporary name in its own folder (DIR/.NAME.partial-PID), every write is checked,
 * the file is fsync'ed, renamed over NAME, and the folder fsync'ed. A failure (a full
 * disk, a quota, an I/O error) is one message naming the file; the temporary file is
 * removed and NAME is left as it was (or absent). Nothing here uses MPI or HDF5; the
 * messages go to e2e_error().
 *
 * Before writing, the checks a writer makes: the path can be a file (its folder
 * exists, it is not a folder), it is none of the command's inputs (compared by device
 * and inode, so another name of the same file, a symbolic or a hard link, counts), and
 * the file system has room for the expected size (statvfs; E2E_SPACE_CHECK=0 skips
 * that check, for file systems whose free space is not the writer's, e.g. quotas). */
#ifndef E2E_DATA_OUTFILE_H
#define E2E_DATA_OUTFILE_H

#include <stddef.h>

#define OUT_PATH_MAX 4096

typedef struct {
    char path[OUT_PATH_MAX];  /* the final name */
    char tmp[OUT_PATH_MAX];   /* the temporary name, in the same folder */
    int fd;
} OutFile;

/* "DIR/.NAME.partial-PID": the temporary name of path for process pid. Also the pattern
 * out_remove_partials recognises. 0, or -1 when the name does not fit. */
int out_partial_name(const char *path, long pid, char *tmp, size_t size);

/* Creates the temporary file of path (this process's). 0, or -1 (e2e_error()). */
int out_open(OutFile *o, const char *path);
/* n bytes at the end of the temporary file, short writes and EINTR handled: 0 or -1
 * (the file is then removed: out_abort need not be called). */
int out_write(OutFile *o, const void *buf, size_t n);
/* fsync, close (both checked), rename over the final name, fsync the folder: 0, or -1
 * with the temporary file removed. */
int out_commit(OutFile *o);
/* Closes and removes the temporary file (after a failure of the caller's own). */
void out_abort(OutFile *o);
/* The four in one, after out_check_space for n bytes. */
int out_write_file(const char *path, const void *buf, size_t n);

/* For writers that create the temporary file themselves (parallel HDF5 over MPI-IO):
 * fsync tmp, rename it over path, fsync the folder. On failure tmp is removed. */
int out_commit_path(const char *tmp, const char *path);
/* Frees the blocks of a failed temporary file (truncates it to 0 bytes): a library that
 * still holds it open (HDF5 flushing on close) can then close it on a full disk, instead
 * of failing the close and leaving its state half torn down. */
void out_release(const char *tmp);

/* Removes the leftovers of writers that died (.NAME.partial-PID) in folder dir; returns
 * how many were removed. Only call it while no live writer can use the folder. */
int out_remove_partials(const char *dir);

/* ---- checks before writing ---- */

typedef struct {
    const char *path;   /* an input of the command */
    const char *what;   /* how the command got it, for the message: "--data", "--checkpoint" */
} OutInput;

/* path can be written as `what` ("--predictions"): its folder exists, path is not a
 * folder, and it is none of the n inputs. 0, or -1 with a message naming path. */
int out_check_path(const char *path, const char *what, const OutInput *inputs, int n);
/* The file system holding path's folder has room for bytes more (free blocks for an
 * unprivileged user, as statvfs tells). Skipped when the environment sets
 * E2E_SPACE_CHECK=0. 0, or -1 naming path, the size and the free space. */
int out_check_space(const char *path, unsigned long long bytes, const char *what);
/* After a failed write: " (the file system of DIR has N bytes free)" when it is
 * (nearly) full, else "" (into buf, returned). */
const char *out_space_hint(const char *path, char *buf, size_t size);
/* "1.2 GB", "340 kB", for messages */
const char *out_bytes_str(unsigned long long bytes, char *buf, size_t size);

#endif
