/* The HTTP surface: wxgate's own HTTP/1.1 server (http.c, with the parser in
 * http_parse.c) is the only code that sees sockets; handlers and the Lua
 * runtime see requests and replies.
 *
 * Each worker owns one http_server per listener on its own event loop. It
 * enforces the limits of struct config_limits (head size and time, field
 * count, URI length, body size, connections per worker, read, write and
 * keep-alive timeouts), gives each request an id and an arena, writes the
 * access log line, and tells a handler that waits on I/O when its client
 * went away (http_req_on_abort). */
#ifndef WX_HTTP_H
#define WX_HTTP_H
#include <stddef.h>

struct arena;
struct event_base;
struct config_limits;
struct http_server;
struct http_req;

typedef void (*http_handler)(struct http_req *r, void *arg);

/* fd: a bound, listening, non-blocking socket (the server takes it over).
 * tls: an SSL_CTX for HTTPS, or NULL for plain HTTP. */
struct http_server *http_server_new(struct event_base *base, int fd,
                                    const struct config_limits *limits, void *tls, http_handler h,
                                    void *arg);
void http_server_set_limits(struct http_server *s, const struct config_limits *limits);
void http_server_stop_accepting(struct http_server *s);
int http_server_active_requests(const struct http_server *s);
/* Requests in handlers plus replies still being written: 0 when a drain
 * may stop the loop without cutting a reply short. */
int http_server_busy(const struct http_server *s);
int http_server_connections(const struct http_server *s);
void http_server_free(struct http_server *s);

/* Opens a listening socket with SO_REUSEPORT (one per worker). Refuses an
 * address that another process already serves ("address already in use").
 * Returns fd or -1 (err set). */
int http_listen(const char *host, int port, int *bound_port, char *err, size_t errsz);
/* The same for the other workers of this process: joins the address that
 * http_listen opened, without the check. */
int http_listen_shared(const char *host, int port, int shared, int *bound_port, char *err,
                       size_t errsz);

/* Request accessors; strings stay valid until the request is finished. */
/* The request's arena: what is allocated from it is freed with the request
 * (after its reply is written), all at once. */
struct arena *http_req_arena(struct http_req *r);
const char *http_req_id(const struct http_req *r);
const char *http_req_method(const struct http_req *r);
const char *http_req_uri(const struct http_req *r);             /* as received: path?query */
const char *http_req_path(const struct http_req *r);            /* percent-decoded path */
const char *http_req_query_string(const struct http_req *r);    /* raw, or "" */
const char *http_req_arg(struct http_req *r, const char *name); /* first value or NULL */
const char *http_req_header(const struct http_req *r, const char *name);
const char *http_req_cookie(struct http_req *r, const char *name);
/* A field of an application/x-www-form-urlencoded body, or NULL. */
const char *http_req_form(struct http_req *r, const char *name);
const char *http_req_client(const struct http_req *r); /* peer address */
int http_req_is_tls(const struct http_req *r);
const char *http_req_body(const struct http_req *r, size_t *len);

/* Iterates over request headers / query arguments in order. */
typedef void (*http_kv_cb)(const char *name, const char *value, void *arg);
void http_req_foreach_header(const struct http_req *r, http_kv_cb cb, void *arg);
void http_req_foreach_arg(struct http_req *r, http_kv_cb cb, void *arg);
void http_req_foreach_cookie(struct http_req *r, http_kv_cb cb, void *arg);

/* Response headers; values with CR or LF are refused (returns -1). */
int http_req_add_header(struct http_req *r, const char *name, const char *value);

/* Finishes the request: each request is finished exactly once by one of
 * these. After an abort notification the handler still finishes it; the
 * reply then goes nowhere and only frees memory. */
void http_reply(struct http_req *r, int status, const char *content_type, const char *body,
                size_t len);
/* Sends raw bytes straight to the socket and closes it (fault injection). */
void http_reply_raw_and_close(struct http_req *r, const char *bytes, size_t len);

/* cb runs at most once, on the loop, when the client disconnects while the
 * handler still holds the request. */
void http_req_on_abort(struct http_req *r, void (*cb)(void *arg), void *arg);
int http_req_aborted(const struct http_req *r);

/* Monotonic milliseconds. */
double http_now_ms(void);

#endif
