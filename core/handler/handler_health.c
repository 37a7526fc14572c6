/* GET /healthz: liveness of this worker and of its store connection. With a
 * Redis store that is down it answers 503 {"status":"degraded"}, so a load
 * balancer can take the instance out while new logins would fail anyway. */
#include "config.h"
#include "http.h"
#include "server.h"
#include "store.h"

#include <stdio.h>

void handle_health(struct worker *w, struct http_req *r)
{
    char body[200];
    int ok = store_healthy(w->store);
    int n = snprintf(body, sizeof(body),
                     "{\"status\":\"%s\",\"worker\":%d,\"store\":\"%s\",\"connections\":%d}\n",
                     ok ? "ok" : "degraded", w->id, ok ? "ok" : "unavailable",
                     http_server_connections(w->http));
    http_req_add_header(r, "Cache-Control", "no-store");
    http_reply(r, ok ? 200 : 503, "application/json", body, (size_t)n);
}
