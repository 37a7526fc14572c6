/* GET /healthz: liveness of this worker and of its store connection. With a
 * Redis store that is down it answers 503 {"status":"degraded"}, so a load
 * balancer can take the instance out while new logins would fail anyway. */
#include "config.h"
#include "http.h"
#include "server.h"
#include "store.h"

#include "strbuf.h"

/* Load balancers poll this often: the body is built without printf. */
void handle_health(struct worker *w, struct http_req *r)
{
    char body[800], node[256];
    int ok = store_healthy(w->store);
    struct strbuf b = strbuf_init(body, sizeof(body));
    strbuf_put(&b, ok ? "{\"status\":\"ok\",\"worker\":" : "{\"status\":\"degraded\",\"worker\":");
    strbuf_num(&b, w->id);
    strbuf_put(&b, ok ? ",\"store\":\"ok\",\"connections\":"
                      : ",\"store\":\"unavailable\",\"connections\":");
    strbuf_num(&b, http_server_connections(w->http));
    /* Which Redis node(s) this worker talks to: numeric addresses only. */
    const char *where = store_node(w->store, node, sizeof(node));
    if (where) {
        strbuf_put(&b, ",\"store_node\":\"");
        strbuf_put(&b, where);
        strbuf_put(&b, "\"");
    }
    const char *warning = store_warning(w->store); /* a fixed text: no escaping needed */
    if (warning) {
        strbuf_put(&b, ",\"warning\":\"");
        strbuf_put(&b, warning);
        strbuf_put(&b, "\"");
    }
    strbuf_put(&b, "}\n");
    http_req_add_header(r, "Cache-Control", "no-store");
    http_reply(r, ok ? 200 : 503, "application/json", body, (size_t)strbuf_done(&b, body));
}
