/* A benchmark agent lighter than `true`: records the wall-clock time at which it started
 * in <workspace>/stamps/<input's file name>, then exits. The workspace and input come from
 * $BATON_WORKSPACE and $BATON_INPUT (as baton starts it), else from the current folder
 * and argv[1] (as `xargs` starts it in the baseline), so both run the same work.
 * Built static by bench/dispatch.sh: no dynamic loader at each start. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    const char *input = getenv("BATON_INPUT");
    const char *ws = getenv("BATON_WORKSPACE");
    if (!input && argc > 1) input = argv[1];
    if (!ws) ws = ".";
    if (!input) return 2;
    const char *base = strrchr(input, '/');
    char path[4096];
    snprintf(path, sizeof path, "%s/stamps/%s", ws, base ? base + 1 : input);
    FILE *f = fopen(path, "w");
    if (!f) return 1;
    fprintf(f, "%lld\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    return fclose(f) == 0 ? 0 : 1;
}
