/* A benchmark agent: records the wall-clock time at which it started, in
 * $BATON_WORKSPACE/stamps/<input's file name>, then exits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    const char *input = getenv("BATON_INPUT");
    const char *ws = getenv("BATON_WORKSPACE");
    if (!input || !ws) return 2;
    const char *base = strrchr(input, '/');
    char path[4096];
    snprintf(path, sizeof path, "%s/stamps/%s", ws, base ? base + 1 : input);
    FILE *f = fopen(path, "w");
    if (!f) return 1;
    fprintf(f, "%lld\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    return fclose(f) == 0 ? 0 : 1;
}
