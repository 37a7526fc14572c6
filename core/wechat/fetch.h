/* HTTP client for upstream calls (WeChat, the sandbox, wx.http): libcurl's
 * multi interface driven by the worker's libevent loop, after curl's
 * multi-event example: one event per socket, one timer, curl_multi_info_read
 * drained after every action, CURLOPT_PRIVATE to find the request.
 * Connections to upstreams are reused; TLS is always verified. */
#ifndef WX_FETCH_H
#define WX_FETCH_H
#include <stddef.h>

struct event_base;
struct fetch_loop;
struct fetch;

struct fetch_header {
    const char *name;
    const char *value;
};

struct fetch_request {
    const char *method; /* "GET" when NULL */
    const char *url;
    const struct fetch_header *headers;
    size_t n_headers;
    const char *body;
    size_t body_len;
    long connect_timeout_ms; /* 0: 2000 */
    long timeout_ms;         /* 0: 5000; whole transfer */
    const char *ca_file;     /* NULL: the system's CA store */
    size_t max_body;         /* 0: 4 MiB; a larger reply is an error */
};

struct fetch_response {
    int ok;      /* 1: a complete HTTP reply arrived */
    long status; /* HTTP status when ok */
    const struct fetch_header *headers;
    size_t n_headers; /* names lowercased */
    const char *body;
    size_t body_len;
    const char *error;  /* !ok: "timeout", "connect", "tls", "too_large", "closed", ... */
    const char *detail; /* !ok: curl's message (never contains the URL's query) */
    double total_ms;
};

/* Called once per request on the loop; the response is valid during the call only. */
typedef void (*fetch_cb)(const struct fetch_response *res, void *arg);

struct fetch_loop *fetch_loop_new(struct event_base *base);
void fetch_loop_free(struct fetch_loop *fl); /* cancels what is in flight, no callbacks */

/* Starts the request; NULL on immediate failure (bad URL, out of memory). */
/* Upstream calls in progress, in every worker of the process. */
long fetch_in_flight(void);

struct fetch *fetch_start(struct fetch_loop *fl, const struct fetch_request *req, fetch_cb cb,
                          void *arg);
/* Stops a request in flight; its callback will not run. */
void fetch_cancel(struct fetch *f);

/* One-time process setup (curl_global_init); call before threads start. */
void fetch_global_init(void);

#endif
