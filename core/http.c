/* The evhttp transport (see http.h).
 *
 * Connection tracking. libevent 2.1's evhttp has no per-connection hooks, no
 * connection limit and only an inactivity timeout, which a client sending one
 * byte a second defeats. So every connection's bufferevent is created here
 * (evhttp_set_bevcb) with one extra reference held by a struct conn. When
 * evhttp frees the connection it shuts the socket down (the client sees the
 * end at once), but the bufferevent, and with BEV_OPT_CLOSE_ON_FREE the file
 * descriptor, live on until our periodic sweep sees that evhttp let go
 * (conn_alive) and drops the reference. Keeping the descriptor matters: were
 * its number reused by a new connection while the old bufferevent still had
 * events on it (a TLS one can), the old one would read the new client's
 * bytes. The same sweep enforces the total time a request
 * head may take, notices clients that hung up while a handler holds their
 * request, and keeps the connection count that pauses accept(2) at the
 * limit. */
#include "http.h"

#include "config.h"
#include "crypto.h"
#include "log.h"
#include "metrics.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <fcntl.h>
#include <sys/queue.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SWEEP_INTERVAL_MS 100

struct conn {
    struct conn *prev, *next;
    struct bufferevent *bev;     /* one reference is ours */
    struct http_req *current;    /* the request a handler holds, if any */
    double head_since;           /* waiting for a request head since */
    unsigned served;             /* requests answered on this connection */
    int fd;
};

struct http_server {
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct config_limits limits;
    http_handler handler;
    void *arg;
    struct conn *conns;
    int n_conns;
    struct conn **by_fd;         /* cache fd -> conn, checked against bev */
    int by_fd_cap;
    struct event *sweep;
    SSL_CTX *tls;                /* HTTPS when set */
    int active;                  /* requests held by handlers */
    int accepting;               /* listener enabled */
    int stopped;                 /* stop_accepting was called */
    unsigned rid_prefix;
    unsigned rid_counter;
};

struct http_req {
    struct http_server *srv;
    struct evhttp_request *req;
    struct conn *conn;
    char id[24];
    char *path;
    const char *query;
    struct evkeyvalq args;
    int args_parsed;
    struct evkeyvalq cookies;
    int cookies_parsed;
    struct evkeyvalq form;
    int form_parsed;
    char *body;
    size_t body_len;
    double start;
    void (*abort_cb)(void *);
    void *abort_arg;
    int aborted;
    char client[64];
};

double http_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status < 400 ? "OK" : "Error";
    }
}

/* ---- connection tracking ---- */

static void conn_unlink(struct http_server *s, struct conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->fd >= 0 && c->fd < s->by_fd_cap && s->by_fd[c->fd] == c)
        s->by_fd[c->fd] = NULL;
    s->n_conns--;
}

static void update_accepting(struct http_server *s)
{
    if (s->stopped || !s->bound)
        return;
    struct evconnlistener *l = evhttp_bound_socket_get_listener(s->bound);
    int want = s->n_conns < s->limits.max_connections;
    if (want != s->accepting) {
        if (want)
            evconnlistener_enable(l);
        else
            evconnlistener_disable(l);
        s->accepting = want;
        if (!want)
            log_warn("worker connection limit %d reached: accept paused",
                     s->limits.max_connections);
    }
}

/* Drops our reference: the last one, so the socket is closed (and a TLS
 * connection's SSL freed) here. */
static void conn_release_bev(struct conn *c)
{
    bufferevent_decref(c->bev);
}

static struct bufferevent *on_new_connection(struct event_base *base, void *arg)
{
    struct http_server *s = arg;
    struct bufferevent *bev;
    if (s->tls) {
        SSL *ssl = SSL_new(s->tls);
        if (!ssl)
            return NULL;
        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
        if (!bev) {
            SSL_free(ssl);
            return NULL;
        }
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    } else {
        bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!bev)
        return NULL;
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        bufferevent_free(bev); /* frees the SSL too */
        return NULL;
    }
    bufferevent_incref(bev);
    c->bev = bev;
    c->fd = -1;
    c->head_since = http_now_ms();
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    update_accepting(s);
    return bev;
}

static struct conn *find_conn(struct http_server *s, struct bufferevent *bev)
{
    int fd = (int)bufferevent_getfd(bev);
    if (fd >= 0 && fd < s->by_fd_cap && s->by_fd[fd] && s->by_fd[fd]->bev == bev)
        return s->by_fd[fd];
    for (struct conn *c = s->conns; c; c = c->next) {
        if (c->bev != bev)
            continue;
        c->fd = fd;
        if (fd >= s->by_fd_cap) {
            int cap = s->by_fd_cap ? s->by_fd_cap : 1024;
            while (cap <= fd)
                cap *= 2;
            struct conn **n = realloc(s->by_fd, (size_t)cap * sizeof(*n));
            if (!n)
                return c;
            memset(n + s->by_fd_cap, 0, (size_t)(cap - s->by_fd_cap) * sizeof(*n));
            s->by_fd = n;
            s->by_fd_cap = cap;
        }
        if (fd >= 0)
            s->by_fd[fd] = c;
        return c;
    }
    return NULL;
}

/* Does evhttp still use this connection? bufferevent_free() clears every
 * callback; while alive, evhttp always keeps its event (error) callback, even
 * when it clears the read callback to write a reply. */
static int conn_alive(const struct conn *c)
{
    bufferevent_event_cb eventcb = NULL;
    bufferevent_getcb(c->bev, NULL, NULL, &eventcb, NULL);
    return eventcb != NULL;
}

static void fire_abort(struct http_req *r)
{
    if (r->aborted)
        return;
    r->aborted = 1;
    if (r->abort_cb)
        r->abort_cb(r->abort_arg);
}

/* Has the peer closed its side? (Only asked while a handler holds the
 * request, when evhttp is not reading the socket.) */
static int peer_closed(int fd)
{
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static void sweep(evutil_socket_t fd_unused, short what, void *arg)
{
    struct http_server *s = arg;
    double now = http_now_ms();
    struct conn *c = s->conns;
    while (c) {
        struct conn *next = c->next;
        if (!conn_alive(c)) {
            /* evhttp freed the connection and closed the socket. */
            if (c->current) {
                c->current->conn = NULL;
                fire_abort(c->current);
            }
            conn_unlink(s, c);
            conn_release_bev(c);
            free(c);
        } else if (c->current) {
            int fd = (int)bufferevent_getfd(c->bev);
            if (fd >= 0 && !c->current->aborted && peer_closed(fd))
                fire_abort(c->current);
        } else {
            double limit = c->served ? s->limits.keepalive_timeout_ms
                                     : s->limits.header_timeout_ms;
            int fd = (int)bufferevent_getfd(c->bev);
            if (fd >= 0 && now - c->head_since > limit)
                shutdown(fd, SHUT_RDWR); /* evhttp sees EOF and frees it */
        }
        c = next;
    }
    update_accepting(s);
}

/* ---- requests ---- */

static void finish(struct http_req *r, int status)
{
    struct http_server *s = r->srv;
    log_access(r->id, http_req_method(r), http_req_uri(r), status, http_now_ms() - r->start,
               r->client);
    static const char *const classes[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    metrics_inc("wxgate_requests_total", "code",
                classes[status >= 100 && status < 600 ? status / 100 : 0], NULL);
    s->active--;
    if (r->conn) {
        r->conn->current = NULL;
        r->conn->served++;
        r->conn->head_since = http_now_ms();
    }
    if (r->args_parsed)
        evhttp_clear_headers(&r->args);
    if (r->cookies_parsed)
        evhttp_clear_headers(&r->cookies);
    if (r->form_parsed)
        evhttp_clear_headers(&r->form);
    free(r->path);
    free(r->body);
    free(r);
}

void http_reply(struct http_req *r, int status, const char *content_type, const char *body,
                size_t len)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);
    if (content_type)
        evhttp_add_header(out, "Content-Type", content_type);
    evhttp_add_header(out, "X-Request-Id", r->id);
    if (r->srv->stopped)
        evhttp_add_header(out, "Connection", "close");
    struct evbuffer *buf = evbuffer_new();
    if (buf && len)
        evbuffer_add(buf, body, len);
    evhttp_send_reply(r->req, status, reason_phrase(status), buf);
    if (buf)
        evbuffer_free(buf);
    finish(r, status);
}

void http_reply_raw_and_close(struct http_req *r, const char *bytes, size_t len)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
    if (evcon && r->conn) {
        int fd = (int)bufferevent_getfd(r->conn->bev);
        SSL *ssl = bufferevent_openssl_get_ssl(r->conn->bev);
        /* Nothing else is queued on the connection while a handler holds its
         * request, so the bytes can go straight out, through TLS if any. */
        if (ssl && len)
            SSL_write(ssl, bytes, (int)len);
        else if (fd >= 0 && len) {
            ssize_t w = send(fd, bytes, len, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)w;
        }
        finish(r, 0);
        evhttp_connection_free(evcon); /* frees the request too */
    } else {
        evhttp_send_reply(r->req, 500, "Error", NULL); /* detached: only frees */
        finish(r, 0);
    }
}

int http_req_add_header(struct http_req *r, const char *name, const char *value)
{
    if (strpbrk(name, "\r\n: \t") || strpbrk(value, "\r\n"))
        return -1;
    return evhttp_add_header(evhttp_request_get_output_headers(r->req), name, value);
}

void http_req_on_abort(struct http_req *r, void (*cb)(void *), void *arg)
{
    r->abort_cb = cb;
    r->abort_arg = arg;
}

int http_req_aborted(const struct http_req *r) { return r->aborted; }
const char *http_req_id(const struct http_req *r) { return r->id; }
const char *http_req_uri(const struct http_req *r) { return evhttp_request_get_uri(r->req); }
const char *http_req_path(const struct http_req *r) { return r->path; }
const char *http_req_query_string(const struct http_req *r) { return r->query ? r->query : ""; }
const char *http_req_client(const struct http_req *r) { return r->client; }
int http_req_is_tls(const struct http_req *r) { return r->srv->tls != NULL; }

const char *http_req_body(const struct http_req *r, size_t *len)
{
    *len = r->body_len;
    return r->body;
}

const char *http_req_method(const struct http_req *r)
{
    switch (evhttp_request_get_command(r->req)) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "OTHER";
    }
}

const char *http_req_header(const struct http_req *r, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(r->req), name);
}

void http_req_foreach_header(const struct http_req *r, http_kv_cb cb, void *arg)
{
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, evhttp_request_get_input_headers(r->req), next)
        cb(kv->key, kv->value, arg);
}

static void parse_args(struct http_req *r)
{
    if (r->args_parsed)
        return;
    TAILQ_INIT(&r->args);
    r->args_parsed = 1;
    if (r->query && evhttp_parse_query_str(r->query, &r->args) != 0) {
        /* Malformed pairs are skipped, not fatal: keep what parsed. */
    }
}

const char *http_req_arg(struct http_req *r, const char *name)
{
    parse_args(r);
    return evhttp_find_header(&r->args, name);
}

void http_req_foreach_arg(struct http_req *r, http_kv_cb cb, void *arg)
{
    struct evkeyval *kv;
    parse_args(r);
    TAILQ_FOREACH(kv, &r->args, next)
        cb(kv->key, kv->value, arg);
}

/* Cookie: a=1; b=2 -> pairs; the first occurrence of a name wins. */
static void parse_cookies(struct http_req *r)
{
    if (r->cookies_parsed)
        return;
    TAILQ_INIT(&r->cookies);
    r->cookies_parsed = 1;
    const char *h = http_req_header(r, "Cookie");
    if (!h)
        return;
    char *copy = strdup(h), *save = NULL;
    for (char *tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok)
            continue;
        *eq = '\0';
        char *v = eq + 1;
        size_t vl = strlen(v);
        while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            v[--vl] = '\0';
        if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
            v[vl - 1] = '\0';
            v++;
        }
        if (!evhttp_find_header(&r->cookies, tok))
            evhttp_add_header(&r->cookies, tok, v);
    }
    free(copy);
}

const char *http_req_form(struct http_req *r, const char *name)
{
    if (!r->form_parsed) {
        TAILQ_INIT(&r->form);
        r->form_parsed = 1;
        const char *ct = http_req_header(r, "Content-Type");
        if (r->body && ct && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0 &&
            strlen(r->body) == r->body_len)
            evhttp_parse_query_str(r->body, &r->form);
    }
    return evhttp_find_header(&r->form, name);
}

void http_req_foreach_cookie(struct http_req *r, http_kv_cb cb, void *arg)
{
    struct evkeyval *kv;
    parse_cookies(r);
    TAILQ_FOREACH(kv, &r->cookies, next)
        cb(kv->key, kv->value, arg);
}

const char *http_req_cookie(struct http_req *r, const char *name)
{
    parse_cookies(r);
    return evhttp_find_header(&r->cookies, name);
}

static void make_id(struct http_server *s, char *out, size_t n)
{
    snprintf(out, n, "%08x%08x", s->rid_prefix, ++s->rid_counter);
}

static void client_address(struct evhttp_request *req, char *out, size_t n)
{
    char *addr = NULL;
    ev_uint16_t port = 0;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon)
        evhttp_connection_get_peer(evcon, &addr, &port);
    snprintf(out, n, "%s", addr ? addr : "");
}

static int has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct http_server *s = arg;
    struct http_req *r = calloc(1, sizeof(*r));
    if (!r) {
        evhttp_send_error(req, 503, NULL);
        return;
    }
    r->srv = s;
    r->req = req;
    r->start = http_now_ms();
    make_id(s, r->id, sizeof(r->id));
    client_address(req, r->client, sizeof(r->client));
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon) {
        r->conn = find_conn(s, evhttp_connection_get_bufferevent(evcon));
        if (r->conn)
            r->conn->current = r;
    }
    s->active++;

    const char *uri = evhttp_request_get_uri(req);
    if (strlen(uri) > s->limits.max_uri_length) {
        http_reply(r, 414, "text/plain; charset=utf-8", "URI too long\n", 13);
        return;
    }
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *raw_path = u ? evhttp_uri_get_path(u) : NULL;
    if (!raw_path || raw_path[0] != '/' || strstr(raw_path, "%00") ||
        !(r->path = evhttp_uridecode(raw_path, 0, NULL)) || has_ctl(r->path)) {
        http_reply(r, 400, "text/plain; charset=utf-8", "bad request path\n", 17);
        return;
    }
    r->query = evhttp_uri_get_query(u);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t blen = evbuffer_get_length(in);
    if (blen) {
        r->body = malloc(blen + 1);
        if (!r->body) {
            http_reply(r, 503, "text/plain; charset=utf-8", "busy\n", 5);
            return;
        }
        evbuffer_remove(in, r->body, blen);
        r->body[blen] = '\0';
        r->body_len = blen;
    }
    s->handler(r, s->arg);
}

/* ---- server ---- */

void http_server_set_limits(struct http_server *s, const struct config_limits *l)
{
    s->limits = *l;
    struct timeval tv = {l->io_timeout_ms / 1000, (l->io_timeout_ms % 1000) * 1000};
    evhttp_set_max_headers_size(s->http, (ev_ssize_t)l->max_header_size);
    evhttp_set_max_body_size(s->http, (ev_ssize_t)l->max_body_size);
    evhttp_set_timeout_tv(s->http, &tv);
    update_accepting(s);
}

struct http_server *http_server_new(struct event_base *base, int fd,
                                    const struct config_limits *limits, void *tls,
                                    http_handler h, void *arg)
{
    struct http_server *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->tls = tls;
    s->base = base;
    s->handler = h;
    s->arg = arg;
    s->accepting = 1;
    crypto_random_bytes(&s->rid_prefix, sizeof(s->rid_prefix));
    s->http = evhttp_new(base);
    if (!s->http) {
        free(s);
        return NULL;
    }
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH);
    evhttp_set_default_content_type(s->http, "text/plain; charset=utf-8");
    evhttp_set_bevcb(s->http, on_new_connection, s);
    evhttp_set_gencb(s->http, on_request, s);
    s->bound = evhttp_accept_socket_with_handle(s->http, fd);
    if (!s->bound) {
        evhttp_free(s->http);
        free(s);
        return NULL;
    }
    http_server_set_limits(s, limits);
    s->sweep = event_new(base, -1, EV_PERSIST, sweep, s);
    struct timeval tv = {0, SWEEP_INTERVAL_MS * 1000};
    event_add(s->sweep, &tv);
    return s;
}

void http_server_stop_accepting(struct http_server *s)
{
    if (s->stopped)
        return;
    s->stopped = 1;
    if (s->bound) {
        evhttp_del_accept_socket(s->http, s->bound);
        s->bound = NULL;
    }
}

int http_server_active_requests(const struct http_server *s) { return s->active; }
int http_server_connections(const struct http_server *s) { return s->n_conns; }

int http_server_busy(const struct http_server *s)
{
    int busy = s->active;
    for (const struct conn *c = s->conns; c; c = c->next)
        if (conn_alive(c) && evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
            busy++;
    return busy;
}

void http_server_free(struct http_server *s)
{
    if (!s)
        return;
    event_free(s->sweep);
    evhttp_free(s->http); /* frees every connection and request */
    while (s->conns) {
        struct conn *c = s->conns;
        s->conns = c->next;
        conn_release_bev(c);
        free(c);
    }
    free(s->by_fd);
    free(s);
}

int http_listen(const char *host, int port, int *bound_port, char *err, size_t errsz)
{
    struct addrinfo hints = {0}, *res = NULL;
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0) {
        snprintf(err, errsz, "cannot resolve %s: %s", host, gai_strerror(gai));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        snprintf(err, errsz, "cannot listen on %s:%d: %s", host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}
