/* GET /__test/hang?ms=N: a test-only handler that blocks its worker in C
 * for N ms (0 or absent: for good), as a bug or a script stuck in C would.
 * It exists only in builds configured with -DWXGATE_TEST_HOOKS=ON (the
 * test builds of scripts/build), so that the watchdog and the SIGTERM
 * deadline can be tested against a real hang. */
#include "http.h"
#include "log.h"
#include "server.h"

#include <stdlib.h>
#include <time.h>

#ifdef WXGATE_TEST_HOOKS
void handle_test_hang(struct worker *w, struct http_req *r)
{
    const char *arg = http_req_arg(r, "ms");
    long ms = arg ? strtol(arg, NULL, 10) : 0;
    log_msg(LOG_INFO, http_req_id(r), "test hook: worker %d hangs for %ld ms (0: for good)", w->id,
            ms);
    struct timespec start, now, nap = {0, 10 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        nanosleep(&nap, NULL);
        clock_gettime(CLOCK_MONOTONIC, &now);
        long spent = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (ms > 0 && spent >= ms)
            break;
    }
    http_reply(r, 200, "text/plain", "woke\n", 5);
}
#endif
