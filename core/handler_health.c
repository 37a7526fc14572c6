/* GET /healthz: liveness of this worker (and later the store). */
#include "http.h"
#include "server.h"

#include <stdio.h>

void handle_health(struct worker *w, struct http_req *r)
{
    char body[128];
    int n = snprintf(body, sizeof(body), "{\"status\":\"ok\",\"worker\":%d}\n", w->id);
    http_req_add_header(r, "Cache-Control", "no-store");
    http_reply(r, 200, "application/json", body, (size_t)n);
}
