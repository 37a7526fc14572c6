/* GET /metrics: Prometheus text exposition of metrics.c. */
#include "fetch.h"
#include "http.h"
#include "metrics.h"
#include "server.h"

#include <stdlib.h>

void handle_metrics(struct worker *w, struct http_req *r)
{
    size_t len = 0;
    metrics_set("wxgate_upstream_in_flight", (double)fetch_in_flight(), NULL);
    char *text = metrics_render(&len);
    http_req_add_header(r, "Cache-Control", "no-store");
    http_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", text ? text : "", len);
    free(text);
}
