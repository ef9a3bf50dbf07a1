/* net/base/error.h: the one error channel: a message recorded and returned as -1, a
 * message that quotes the previous one, a cleared channel, and a message longer than
 * the channel holds keeping its beginning (the file) and its end (the cause). */
#include <string.h>

#include "check.h"
#include "error.h"

int main(void) {
    CHECK(e2e_fail("%s: %s", "a.h5", "no such file") == -1 && !strcmp(e2e_error(), "a.h5: no such file"),
          "a message recorded: %s", e2e_error());
    e2e_fail("list.txt: %s", e2e_error());
    CHECK(!strcmp(e2e_error(), "list.txt: a.h5: no such file"), "a message quoting the previous one: %s", e2e_error());
    e2e_clear_error();
    CHECK(e2e_error()[0] == '\0', "cleared");
    char path[3000] = "lists/";
    while (strlen(path) < 2500) strcat(path, "./");
    strcat(path, "jets.h5");
    e2e_fail("%s: the path is too long for MPI-IO", path);
    const char *m = e2e_error();
    size_t len = strlen(m);
    CHECK(len == E2E_ERROR_LEN - 1, "a long message fills the channel (%zu characters)", len);
    CHECK(!strncmp(m, "lists/././", 10) && strstr(m, " [...] ") != NULL, "it keeps its beginning, the cut marked");
    const char *end = "./jets.h5: the path is too long for MPI-IO";
    CHECK(len > strlen(end) && !strcmp(m + len - strlen(end), end), "and its end, the cause: ...%s", m + len - 60);
    return check_main_result("test_error");
}
