/* wxgate's HTTP/1.1 server (see http.h).
 *
 * One http_server per listening socket per worker, on the worker's libevent
 * loop. A connection is a non-blocking socket with two events (read and
 * write, plus EV_CLOSED to notice a client that leaves while its request is
 * in a handler), one timer, and one read buffer. It serves one request at a
 * time: the request head is parsed in place in the read buffer
 * (http_parse.c), so the buffer is never moved while a request lives; bytes
 * that follow (pipelined requests) wait there, and are parsed once the reply
 * has been written, so replies go out in order.
 *
 * Each request owns an arena: the request's own state, the handlers' and the
 * reply's. Read buffers and arena blocks come from per-thread caches, so a
 * keep-alive request costs no malloc in the transport. A reply's status line
 * and headers are formatted once into the arena and sent with the body in
 * one writev(); only what the socket does not take at once is copied.
 *
 * Timeouts use libevent's common-timeout queues (O(1) per change): the whole
 * head must arrive within header_timeout_ms from its first byte (or from the
 * connection's start), a body may not pause longer than read_timeout_ms, a
 * reply not stall longer than write_timeout_ms, and an idle keep-alive
 * connection lives keepalive_timeout_ms. At the connection cap, the
 * connection that has been idle longest (no request bytes pending) is closed
 * to admit a new one, as nginx does; only when none is idle does accept wait.
 *
 * TLS runs on the same loop: OpenSSL over the non-blocking socket, with
 * SSL_ERROR_WANT_READ/WRITE mapped onto the two events. */
#include "http.h"

#include "arena.h"
#include "config.h"
#include "crypto.h"
#include "http_parse.h"
#include "log.h"
#include "metrics.h"
#include "url.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define READ_BUFFER_SIZE   4096 /* first size of a read buffer; grows to the head limit */
#define BUFFER_CACHE_MAX   64   /* standard read buffers kept per server */
#define ACCEPT_BURST       64   /* accept() calls per readable listener */
#define MAX_PIPELINE_BURST 256  /* requests answered per turn before yielding */

enum conn_state {
    CS_HANDSHAKE, /* TLS handshake */
    CS_IDLE,      /* waiting for a request: nothing of it received */
    CS_HEAD,      /* part of a request head received */
    CS_BODY,      /* reading a request body */
    CS_HANDLER,   /* a handler holds the request */
    CS_WRITING,   /* the reply is being written */
    CS_GONE,      /* socket closed; a handler still holds the request */
    CS_FREEING,   /* done: freed on the next loop turn (the handler may still
                     be on the stack, using the request's memory) */
};

struct conn;

/* A query argument, cookie or form field, pointing into the arena. */
struct kv {
    const char *name, *value;
};

struct http_req {
    struct conn *c;
    struct http_server *srv;
    struct arena arena;
    struct http_head head; /* points into the connection's read buffer */
    char id[20];
    const char *method;
    const char *target;               /* as received, NUL-terminated in place */
    char *path;                       /* percent-decoded, in the arena */
    const char *query;                /* after '?', or NULL */
    struct kv *args, *cookies, *form; /* parsed on first use, in the arena */
    int n_args, n_cookies, n_form;
    int args_parsed, cookies_parsed, form_parsed;
    char *body; /* NUL-terminated, in the arena */
    size_t body_len;
    struct http_chunked chunked;
    size_t body_cap;
    char *out_headers; /* "Name: value\r\n"..., in the arena */
    size_t out_len, out_cap;
    int has_content_type;
    double start;
    void (*abort_cb)(void *);
    void *abort_arg;
    int aborted;
    int is_head;
};

struct conn {
    struct http_server *s;
    struct conn *prev, *next;   /* every connection */
    struct conn *iprev, *inext; /* idle connections, oldest first */
    int idle_linked;
    int fd;
    SSL *ssl;
    enum conn_state state;
    struct event rev, wev, cev, timer;
    int rev_on, wev_on, cev_on;
    int tls_wants_write; /* an SSL_read needs the socket writable */
    char *rbuf;
    size_t rcap, rlen, rpos; /* rbuf[rpos, rlen): bytes not yet consumed */
    int have_req;            /* req holds a live request */
    size_t head_end;         /* reading a body: the head is rbuf[0, head_end) */
    int keep_alive;
    int in_process;  /* conn_process is on the stack */
    int close_after; /* close once the reply is written */
    /* The reply being written: whole in wbuf, from the arena. */
    const char *wbuf;
    size_t wlen, woff;
    char peer[INET6_ADDRSTRLEN];
    struct http_req req;
};

struct http_server {
    struct event_base *base;
    int fd;
    struct event accept_ev;
    struct event resume_ev; /* re-enables accept after EMFILE */
    int accept_on;
    int stopped;
    SSL_CTX *tls;
    struct config_limits limits;
    const struct timeval *tv_header, *tv_keepalive, *tv_read, *tv_write;
    http_handler handler;
    void *arg;
    struct conn *conns;
    struct conn *idle_head, *idle_tail;
    int n_conns;
    int active;                /* requests held by handlers */
    struct http_field *fields; /* parser scratch: limits.max_headers entries */
    size_t n_field_slots;
    char *buf_cache[BUFFER_CACHE_MAX];
    int n_buf_cache;
    unsigned rid_prefix, rid_counter;
    time_t date_sec;
    char date[40];
    double last_cap_warning;
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
    case 100: return "Continue";
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
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return status < 400 ? "OK" : "Error";
    }
}

/* ---- buffers ---- */

static char *buffer_get(struct http_server *s)
{
    if (s->n_buf_cache)
        return s->buf_cache[--s->n_buf_cache];
    return malloc(READ_BUFFER_SIZE);
}

static void buffer_put(struct http_server *s, char *b, size_t cap)
{
    if (cap == READ_BUFFER_SIZE && s->n_buf_cache < BUFFER_CACHE_MAX)
        s->buf_cache[s->n_buf_cache++] = b;
    else
        free(b);
}

/* ---- events ---- */

static void set_event(struct event *ev, int *on, int want)
{
    if (want && !*on)
        event_add(ev, NULL);
    else if (!want && *on)
        event_del(ev);
    *on = want;
}

static void want_read(struct conn *c, int on) { set_event(&c->rev, &c->rev_on, on); }
static void want_write(struct conn *c, int on) { set_event(&c->wev, &c->wev_on, on); }
static void want_close_notice(struct conn *c, int on) { set_event(&c->cev, &c->cev_on, on); }

static void arm_timer(struct conn *c, const struct timeval *tv) { event_add(&c->timer, tv); }

static void idle_link(struct conn *c)
{
    struct http_server *s = c->s;
    if (c->idle_linked)
        return;
    c->inext = NULL;
    c->iprev = s->idle_tail;
    if (s->idle_tail)
        s->idle_tail->inext = c;
    else
        s->idle_head = c;
    s->idle_tail = c;
    c->idle_linked = 1;
}

static void idle_unlink(struct conn *c)
{
    struct http_server *s = c->s;
    if (!c->idle_linked)
        return;
    if (c->iprev)
        c->iprev->inext = c->inext;
    else
        s->idle_head = c->inext;
    if (c->inext)
        c->inext->iprev = c->iprev;
    else
        s->idle_tail = c->iprev;
    c->idle_linked = 0;
}

static void update_accepting(struct http_server *s)
{
    if (s->stopped)
        return;
    int want = s->n_conns < s->limits.max_connections || s->idle_head != NULL;
    if (want != s->accept_on) {
        if (want)
            event_add(&s->accept_ev, NULL);
        else
            event_del(&s->accept_ev);
        s->accept_on = want;
        if (!want) {
            double now = http_now_ms();
            if (now - s->last_cap_warning > 10000) {
                log_warn("worker connection limit %d reached, none idle: accept paused",
                         s->limits.max_connections);
                s->last_cap_warning = now;
            }
        }
    }
}

/* ---- socket I/O, plain or TLS ---- */

/* > 0 bytes read, 0 end of stream, -1 try later, -2 error. */
static ssize_t conn_recv(struct conn *c, char *buf, size_t len)
{
    if (!c->ssl) {
        ssize_t n = recv(c->fd, buf, len, 0);
        if (n >= 0)
            return n;
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -1 : -2;
    }
    c->tls_wants_write = 0;
    int n = SSL_read(c->ssl, buf, (int)(len > 1 << 30 ? 1 << 30 : len));
    if (n > 0)
        return n;
    switch (SSL_get_error(c->ssl, n)) {
    case SSL_ERROR_WANT_READ: return -1;
    case SSL_ERROR_WANT_WRITE: c->tls_wants_write = 1; return -1;
    case SSL_ERROR_ZERO_RETURN: return 0;
    default: ERR_clear_error(); return -2;
    }
}

/* Bytes written (maybe fewer than len), -1 try later, -2 error. */
static ssize_t conn_send(struct conn *c, const char *buf, size_t len)
{
    if (!c->ssl) {
        ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -1 : -2;
    }
    int n = SSL_write(c->ssl, buf, (int)(len > 1 << 30 ? 1 << 30 : len));
    if (n > 0)
        return n;
    int e = SSL_get_error(c->ssl, n);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
        return -1;
    ERR_clear_error();
    return -2;
}

/* ---- connection lifecycle ---- */

static void conn_process(struct conn *c);
static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);
static void on_peer_closed(evutil_socket_t fd, short what, void *arg);
static void on_timeout(evutil_socket_t fd, short what, void *arg);

static void fire_abort(struct http_req *r)
{
    if (r->aborted)
        return;
    r->aborted = 1;
    if (r->abort_cb)
        r->abort_cb(r->abort_arg);
}

/* Closes the socket. A request held by a handler keeps the connection's
 * memory (its head lives in the read buffer) until the handler replies. */
static void conn_close_socket(struct conn *c)
{
    /* event_del also takes an event out of the active queue. */
    event_del(&c->rev);
    event_del(&c->wev);
    event_del(&c->cev);
    event_del(&c->timer);
    c->rev_on = c->wev_on = c->cev_on = 0;
    idle_unlink(c);
    if (c->fd < 0)
        return;
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    close(c->fd);
    c->fd = -1;
}

static void request_reset(struct conn *c);
static void start_request(struct conn *c);

static void conn_free(struct conn *c)
{
    struct http_server *s = c->s;
    conn_close_socket(c);
    if (c->have_req)
        request_reset(c);
    if (c->rbuf)
        buffer_put(s, c->rbuf, c->rcap);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conns--;
    free(c);
    update_accepting(s);
}

/* Ends a connection now: a handler holding its request is told (abort) and
 * keeps the memory until it replies. */
static void conn_close(struct conn *c)
{
    if (c->state == CS_HANDLER) {
        conn_close_socket(c);
        c->state = CS_GONE;
        fire_abort(&c->req);
        return;
    }
    if (c->state == CS_GONE || c->state == CS_FREEING)
        return;
    conn_free(c);
}

static struct conn *conn_new(struct http_server *s, int fd, const struct sockaddr_storage *ss)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->s = s;
    c->fd = fd;
    if (ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, c->peer, sizeof(c->peer));
    else if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, c->peer,
                  sizeof(c->peer));
    event_assign(&c->rev, s->base, fd, EV_READ | EV_PERSIST, on_read, c);
    event_assign(&c->wev, s->base, fd, EV_WRITE | EV_PERSIST, on_write, c);
    event_assign(&c->cev, s->base, fd, EV_CLOSED | EV_PERSIST, on_peer_closed, c);
    evtimer_assign(&c->timer, s->base, on_timeout, c);
    if (s->tls) {
        c->ssl = SSL_new(s->tls);
        if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
            if (c->ssl)
                SSL_free(c->ssl);
            free(c);
            return NULL;
        }
        SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        SSL_set_accept_state(c->ssl);
        c->state = CS_HANDSHAKE;
    } else {
        c->state = CS_IDLE;
        idle_link(c);
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    want_read(c, 1);
    arm_timer(c, s->tv_header);
    return c;
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
    struct http_server *s = arg;
    for (int i = 0; i < ACCEPT_BURST && !s->stopped; i++) {
        if (s->n_conns >= s->limits.max_connections && !s->idle_head)
            break; /* full, and nobody idle to make room: accept waits */
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4((int)lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: stop accepting for a moment instead of
                 * spinning on a listener that stays readable. */
                log_warn("accept: %s; pausing accept for 100 ms", strerror(errno));
                event_del(&s->accept_ev);
                s->accept_on = 0;
                struct timeval tv = {0, 100000};
                event_add(&s->resume_ev, &tv);
            }
            break;
        }
        /* At the cap, the connection idle for longest makes room. */
        if (s->n_conns >= s->limits.max_connections)
            conn_free(s->idle_head);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (!conn_new(s, fd, &ss))
            close(fd);
    }
    update_accepting(s);
}

static void on_resume_accept(evutil_socket_t fd, short what, void *arg)
{
    struct http_server *s = arg;
    s->accept_on = 0;
    if (!s->stopped) {
        event_add(&s->accept_ev, NULL);
        s->accept_on = 1;
        update_accepting(s);
    }
}

/* ---- replies ---- */

static void put(char **p, const char *s, size_t n)
{
    memcpy(*p, s, n);
    *p += n;
}

static void put_str(char **p, const char *s) { put(p, s, strlen(s)); }

static void put_uint(char **p, unsigned long long v)
{
    char tmp[24];
    int i = 0;
    do {
        tmp[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (i)
        *(*p)++ = tmp[--i];
}

static const char *date_header(struct http_server *s)
{
    time_t now = time(NULL);
    if (now != s->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(s->date, sizeof(s->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        s->date_sec = now;
    }
    return s->date;
}

/* Formats the status line and headers, and queues them with the body. */
static void queue_reply(struct http_req *r, int status, const char *content_type, const char *body,
                        size_t len)
{
    struct conn *c = r->c;
    struct http_server *s = r->srv;
    const char *date = date_header(s);
    int no_body = status < 200 || status == 204 || status == 304;
    int send_body = !no_body && !r->is_head && len;
    if (!content_type && !r->has_content_type && !no_body)
        content_type = "text/plain; charset=utf-8";
    if (s->stopped)
        c->keep_alive = 0;
    const char *reason = reason_phrase(status);
    size_t need = 64 + strlen(reason) + strlen(date) +
                  (content_type ? strlen(content_type) + 16 : 0) + 24 + sizeof(r->id) + 16 + 24 +
                  r->out_len + 2 + (send_body ? len : 0);
    char *buf = arena_alloc(&r->arena, need);
    if (!buf) {
        c->close_after = 1;
        c->wbuf = NULL;
        c->wlen = 0;
        return;
    }
    char *p = buf;
    put_str(&p, "HTTP/1.1 ");
    put_uint(&p, (unsigned)status);
    *p++ = ' ';
    put_str(&p, reason);
    put_str(&p, "\r\nDate: ");
    put_str(&p, date);
    if (content_type) {
        put_str(&p, "\r\nContent-Type: ");
        put_str(&p, content_type);
    }
    if (!no_body) {
        put_str(&p, "\r\nContent-Length: ");
        put_uint(&p, len);
    }
    put_str(&p, "\r\nX-Request-Id: ");
    put_str(&p, r->id);
    if (!c->keep_alive)
        put_str(&p, "\r\nConnection: close");
    else if (r->head.minor == 0)
        put_str(&p, "\r\nConnection: keep-alive");
    put(&p, "\r\n", 2);
    if (r->out_len)
        put(&p, r->out_headers, r->out_len);
    put(&p, "\r\n", 2);
    size_t head_len = (size_t)(p - buf);
    c->close_after = !c->keep_alive;

    /* Plain sockets: one writev of head and body; the body is copied only
     * when the socket does not take it all now. */
    if (!c->ssl && send_body && c->fd >= 0) {
        struct iovec iov[2] = {{buf, head_len}, {(void *)body, len}};
        ssize_t n = writev(c->fd, iov, 2);
        if (n == (ssize_t)(head_len + len)) {
            c->wbuf = buf;
            c->wlen = c->woff = head_len + len;
            return;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            c->wbuf = buf;
            c->wlen = c->woff = 0;
            c->close_after = 1;
            return;
        }
        if (n < 0)
            n = 0;
        memcpy(buf + head_len, body, len);
        c->wbuf = buf;
        c->wlen = head_len + len;
        c->woff = (size_t)n;
        return;
    }
    if (send_body)
        memcpy(p, body, len);
    c->wbuf = buf;
    c->wlen = head_len + (send_body ? len : 0);
    c->woff = 0;
}

/* Writes what is left of the reply; returns 1 when all is written, 0 when
 * waiting for the socket, -1 on error. */
static int write_some(struct conn *c)
{
    if (c->fd < 0)
        return -1;
    while (c->woff < c->wlen) {
        ssize_t n = conn_send(c, c->wbuf + c->woff, c->wlen - c->woff);
        if (n == -1)
            return 0;
        if (n < 0)
            return -1;
        c->woff += (size_t)n;
    }
    return 1;
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    if (c->state != CS_WRITING) {
        /* TLS: a handshake or a read that wanted the socket writable. */
        want_write(c, 0);
        on_read(fd, EV_READ, c);
        return;
    }
    size_t before = c->woff;
    int rc = write_some(c);
    if (rc == 0) {
        if (c->woff != before)
            arm_timer(c, c->s->tv_write); /* progress: the write timeout starts again */
        return;
    }
    want_write(c, 0);
    conn_process(c);
}

/* wxgate_requests_total by status class, looked up once per process. */
static struct metrics_counter *status_class[6];
static pthread_once_t status_class_once = PTHREAD_ONCE_INIT;

static void status_class_init(void)
{
    static const char *const classes[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    for (int i = 0; i < 6; i++)
        status_class[i] = metrics_counter("wxgate_requests_total", "code", classes[i], NULL);
}

/* Frees the connection on the next loop turn (see CS_FREEING). */
static void free_soon(struct conn *c)
{
    conn_close_socket(c);
    c->state = CS_FREEING;
    event_active(&c->timer, EV_TIMEOUT, 0);
}

static void log_and_count(struct http_req *r, int status)
{
    log_access(r->id, r->method ? r->method : "-", r->target ? r->target : "-", status,
               http_now_ms() - r->start, r->c->peer);
    metrics_counter_add(status_class[status >= 100 && status < 600 ? status / 100 : 0], 1);
}

void http_reply(struct http_req *r, int status, const char *content_type, const char *body,
                size_t len)
{
    struct conn *c = r->c;
    struct http_server *s = r->srv;
    log_and_count(r, status);
    s->active--;
    want_close_notice(c, 0);
    if (c->state == CS_GONE) {
        free_soon(c);
        return;
    }
    queue_reply(r, status, content_type, body, len);
    c->state = CS_WRITING;
    /* Inside conn_process the reply is written when the handler returns;
     * else on the next loop turn: either way the request's memory outlives
     * the handler's callback. */
    if (!c->in_process)
        event_active(&c->wev, EV_WRITE, 0);
}

void http_reply_raw_and_close(struct http_req *r, const char *bytes, size_t len)
{
    struct conn *c = r->c;
    log_and_count(r, 0);
    r->srv->active--;
    want_close_notice(c, 0);
    if (c->state != CS_GONE && c->fd >= 0 && len) {
        /* Nothing else is queued while a handler holds the request. */
        ssize_t w = conn_send(c, bytes, len);
        (void)w;
    }
    conn_close_socket(c);
    if (c->in_process)
        c->state = CS_GONE; /* conn_process frees it when the handler returns */
    else
        free_soon(c);
}

/* The reply is written: clear the request and get ready for the next one.
 * Returns 0 when the connection was closed (and freed). */
static int finish_reply(struct conn *c)
{
    request_reset(c);
    c->state = CS_IDLE;
    if (c->close_after || c->fd < 0) {
        conn_free(c);
        return 0;
    }
    /* Move bytes of pipelined requests to the front; give the buffer back
     * when none are left, so idle connections hold no buffer. */
    if (c->rpos == c->rlen) {
        buffer_put(c->s, c->rbuf, c->rcap);
        c->rbuf = NULL;
        c->rcap = c->rlen = c->rpos = 0;
    } else if (c->rpos) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    if (c->rlen == 0) {
        c->state = CS_IDLE;
        idle_link(c);
        arm_timer(c, c->s->tv_keepalive);
    } else {
        c->state = CS_HEAD;
        arm_timer(c, c->s->tv_header);
    }
    want_read(c, 1);
    return 1;
}

static void request_reset(struct conn *c)
{
    if (!c->have_req)
        return;
    arena_reset(&c->req.arena);
    c->have_req = 0;
    c->wbuf = NULL;
    c->wlen = c->woff = 0;
}

/* An error the transport answers itself, and then closes: a plain page in
 * Chinese and English with the request id. */
static void reply_error(struct conn *c, int status, const char *why)
{
    static const struct {
        int status;
        const char *zh, *en;
    } texts[] = {
        {400, "请求格式错误", "Bad request"},
        {408, "请求超时", "Request timeout"},
        {411, "请求缺少长度", "Length required"},
        {413, "请求内容过大", "Request body too large"},
        {414, "请求地址过长", "Request URI too long"},
        {417, "无法满足 Expect 要求", "Expectation failed"},
        {431, "请求头过大", "Request header fields too large"},
        {501, "不支持的请求", "Not implemented"},
        {503, "服务繁忙", "Service unavailable"},
        {505, "不支持的 HTTP 版本", "HTTP version not supported"},
    };
    const char *zh = "请求无效", *en = "Bad request";
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        if (texts[i].status == status) {
            zh = texts[i].zh;
            en = texts[i].en;
        }
    struct http_req *r = &c->req;
    if (!c->have_req)
        start_request(c); /* nothing parsed: a request of its own for the id and log */
    c->keep_alive = 0;
    if (why && strcasecmp(why, en) == 0)
        why = NULL;
    char *body = arena_printf(&r->arena, "%s。\n%s%s%s.\n请求编号 / request id: %s\n", zh, en,
                              why ? ": " : "", why ? why : "", r->id);
    c->s->active++; /* http_reply counts it out */
    c->state = CS_HANDLER;
    r->is_head = 0;
    http_reply(r, status, "text/plain; charset=utf-8", body ? body : "", body ? strlen(body) : 0);
}

/* ---- requests ---- */

/* Percent-decodes src[0..n) into dst, '+' as a space when plus_is_space
 * (query strings and forms); returns the length, or -1 when the result
 * would hold a NUL. */
static long percent_decode(char *dst, const char *src, size_t n, int plus_is_space)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (src[i] == '%' && i + 2 < n && (hi = url_hex_value((unsigned char)src[i + 1])) >= 0 &&
            (lo = url_hex_value((unsigned char)src[i + 2])) >= 0) {
            dst[o] = (char)(hi * 16 + lo);
            i += 2;
        } else if (src[i] == '+' && plus_is_space) {
            dst[o] = ' ';
        } else {
            dst[o] = src[i];
        }
        if (dst[o] == '\0')
            return -1;
        o++;
    }
    dst[o] = '\0';
    return (long)o;
}

static int has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

/* Splits the target into path and query: origin-form "/p?q", absolute-form
 * "http://host/p?q", and "*" (OPTIONS). */
static int split_target(struct http_req *r)
{
    const char *t = r->target;
    const char *path = t;
    if (strncasecmp(t, "http://", 7) == 0 || strncasecmp(t, "https://", 8) == 0) {
        const char *auth = strstr(t, "//") + 2;
        path = auth + strcspn(auth, "/?");
    } else if (t[0] != '/' && strcmp(t, "*") != 0) {
        return -1;
    }
    size_t plen = strcspn(path, "?");
    r->query = path[plen] == '?' ? path + plen + 1 : NULL;
    if (plen == 0) {
        r->path = arena_strdup(&r->arena, "/");
        return r->path ? 0 : -1;
    }
    r->path = arena_alloc(&r->arena, plen + 1);
    if (!r->path || percent_decode(r->path, path, plen, 0) < 0 || has_ctl(r->path) ||
        (r->path[0] != '/' && strcmp(r->path, "*") != 0))
        return -1;
    return 0;
}

/* NUL-terminates the parsed head in place: the separators after the method,
 * the target, each field name (its colon) and each value are ours to
 * overwrite. */
static void terminate_in_place(struct http_head *h)
{
    ((char *)h->method)[h->method_len] = '\0';
    ((char *)h->target)[h->target_len] = '\0';
    for (size_t i = 0; i < h->n_fields; i++) {
        ((char *)h->fields[i].name)[h->fields[i].name_len] = '\0';
        ((char *)h->fields[i].value)[h->fields[i].value_len] = '\0';
    }
}

/* A handler may wait seconds on I/O (WeChat, the store) while thousands of
 * others wait too. When every byte read belongs to this request, its head
 * moves into the request's arena and the read buffer goes back to the
 * cache, so a waiting request holds no read buffer (bench_login.sh measures
 * the memory per waiting login). Pipelined bytes after the request keep the
 * buffer and the head where they are. */
static void detach_head(struct conn *c)
{
    struct http_req *r = &c->req;
    struct http_head *h = &r->head;
    if (c->rpos != c->rlen || !c->rbuf)
        return;
    const char *from = c->rbuf, *end = c->rbuf + c->head_end;
    char *to = arena_alloc(&r->arena, c->head_end);
    if (!to)
        return; /* keeps the buffer: correct, only larger */
    memcpy(to, from, c->head_end);
#define REBASE(p) ((p) = ((p) >= from && (p) < end) ? to + ((p)-from) : (p))
    REBASE(h->method);
    REBASE(h->target);
    REBASE(r->method);
    REBASE(r->target);
    REBASE(r->query);
    for (size_t i = 0; i < h->n_fields; i++) {
        REBASE(h->fields[i].name);
        REBASE(h->fields[i].value);
    }
#undef REBASE
    buffer_put(c->s, c->rbuf, c->rcap);
    c->rbuf = NULL;
    c->rcap = c->rlen = c->rpos = c->head_end = 0;
}

static void dispatch(struct conn *c)
{
    struct http_req *r = &c->req;
    struct http_server *s = c->s;
    if (r->body)
        r->body[r->body_len] = '\0';
    detach_head(c);
    c->state = CS_HANDLER;
    s->active++;
    event_del(&c->timer);
    s->handler(r, s->arg);
}

/* A complete head is at rbuf[rpos]: set up the request and its body. */
static int begin_request(struct conn *c, long head_len)
{
    struct http_server *s = c->s;
    struct http_req *r = &c->req;
    struct http_head *h = &r->head;
    c->rpos += (size_t)head_len;
    c->head_end = c->rpos;
    c->keep_alive = h->keep_alive && !s->stopped;
    struct http_field *fields = arena_alloc(&r->arena, h->n_fields * sizeof(*fields) + 1);
    if (!fields)
        return 503;
    memcpy(fields, h->fields, h->n_fields * sizeof(*fields));
    h->fields = fields;
    terminate_in_place(h);
    r->method = h->method;
    r->target = h->target;
    r->is_head = strcmp(r->method, "HEAD") == 0;
    static const char *const methods[] = {"GET", "POST",   "HEAD", "OPTIONS",
                                          "PUT", "DELETE", "PATCH"};
    int known = 0;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        known |= strcmp(r->method, methods[i]) == 0;
    if (!known)
        return 501;
    if (h->target_len > s->limits.max_uri_length)
        return 414;
    if (split_target(r) != 0)
        return 400;
    if (h->content_length > (long long)s->limits.max_body_size)
        return 413;
    if (h->content_length > 0) {
        r->body_cap = (size_t)h->content_length;
        r->body = arena_alloc(&r->arena, r->body_cap + 1);
    } else if (h->chunked) {
        r->body_cap = s->limits.max_body_size;
        r->body = arena_alloc(&r->arena, r->body_cap + 1);
        http_chunked_init(&r->chunked);
    }
    if ((h->content_length > 0 || h->chunked) && !r->body)
        return 503;
    return 0;
}

/* Moves body bytes from the read buffer into the body. Returns 1 when the
 * body is complete, 0 when more is needed, or an HTTP status to refuse. */
static int take_body(struct conn *c)
{
    struct http_req *r = &c->req;
    size_t avail = c->rlen - c->rpos;
    if (!r->head.chunked) {
        size_t want = r->body_cap - r->body_len;
        size_t n = avail < want ? avail : want;
        memcpy(r->body + r->body_len, c->rbuf + c->rpos, n);
        r->body_len += n;
        c->rpos += n;
        return r->body_len == r->body_cap;
    }
    int done = 0, status = 0;
    const char *why = NULL;
    long used =
        http_chunked_decode(&r->chunked, c->rbuf + c->rpos, avail, r->body, &r->body_len,
                            r->body_cap, c->s->limits.max_header_size, &done, &status, &why);
    if (used < 0) {
        log_msg(LOG_INFO, r->id, "refused chunked body: %s", why);
        return status;
    }
    c->rpos += (size_t)used;
    return done;
}

/* Makes room in the read buffer for more bytes: compacts consumed bytes
 * away when no head points into the buffer, else (reading a body) keeps the
 * head where it is and compacts what follows it; grows the buffer up to the
 * head limit while a head is incomplete. Returns 0 when there is room. */
static int make_room(struct conn *c, size_t head_end)
{
    struct http_server *s = c->s;
    if (!c->rbuf) {
        c->rbuf = buffer_get(s);
        if (!c->rbuf)
            return -1;
        c->rcap = READ_BUFFER_SIZE;
        c->rlen = c->rpos = 0;
    }
    if (c->rlen < c->rcap)
        return 0;
    size_t keep_from = c->state == CS_BODY ? head_end : 0;
    if (c->rpos > keep_from) {
        memmove(c->rbuf + keep_from, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos - keep_from;
        c->rpos = keep_from;
        if (c->rlen < c->rcap)
            return 0;
    }
    if (c->state == CS_BODY)
        return -1; /* cannot happen: the body takes what is read */
    size_t limit = s->limits.max_header_size + 2;
    if (c->rcap >= limit)
        return -1;
    size_t cap = c->rcap * 2 > limit ? limit : c->rcap * 2;
    char *n = malloc(cap);
    if (!n)
        return -1;
    memcpy(n, c->rbuf, c->rlen);
    buffer_put(s, c->rbuf, c->rcap);
    c->rbuf = n;
    c->rcap = cap;
    return 0;
}

/* Reads what the socket has (up to the buffer's room). Returns 1 if bytes
 * came, 0 if none now, -1 when the connection is over. */
static int fill(struct conn *c, size_t head_end)
{
    if (make_room(c, head_end) != 0)
        return -1;
    ssize_t n = conn_recv(c, c->rbuf + c->rlen, c->rcap - c->rlen);
    if (n > 0) {
        c->rlen += (size_t)n;
        return 1;
    }
    if (n == -1) {
        if (c->tls_wants_write)
            want_write(c, 1);
        return 0;
    }
    return -1;
}

/* The request id: 8 hex digits of the server's random prefix, 8 of its
 * counter (formatted by hand: this runs for every request). */
static void put_hex32(char *out, unsigned v)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 7; i >= 0; i--, v >>= 4)
        out[i] = hex[v & 15];
}

static void start_request(struct conn *c)
{
    struct http_req *r = &c->req;
    struct http_server *s = c->s;
    memset(r, 0, sizeof(*r));
    arena_init(&r->arena);
    r->c = c;
    r->srv = s;
    r->start = http_now_ms();
    put_hex32(r->id, s->rid_prefix);
    put_hex32(r->id + 8, ++s->rid_counter);
    r->id[16] = '\0';
    c->have_req = 1;
}

static void send_continue(struct conn *c)
{
    static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
    ssize_t n = conn_send(c, msg, sizeof(msg) - 1);
    (void)n; /* best effort: a client that does not get it sends the body anyway */
}

/* Parses and serves what the read buffer holds, reading more as needed.
 * Loops over pipelined requests while their replies go out at once. */
static void conn_process(struct conn *c)
{
    struct http_server *s = c->s;
    c->in_process = 1;
    for (int served = 0; served < MAX_PIPELINE_BURST;) {
        if (c->state == CS_IDLE || c->state == CS_HEAD) {
            struct http_head h;
            const char *why = NULL;
            struct http_parse_limits lim = {s->limits.max_header_size, s->limits.max_uri_length,
                                            s->n_field_slots};
            long n = c->rlen > c->rpos ? http_parse_head(c->rbuf + c->rpos, c->rlen - c->rpos, &lim,
                                                         &h, s->fields, &why)
                                       : 0;
            if (n == 0) {
                int got = fill(c, 0);
                if (got < 0) {
                    c->in_process = 0;
                    conn_close(c);
                    return;
                }
                if (c->rlen > c->rpos && c->state == CS_IDLE) {
                    /* The first byte of a request: its head has header_timeout_ms. */
                    c->state = CS_HEAD;
                    idle_unlink(c);
                    arm_timer(c, s->tv_header);
                }
                if (got == 0)
                    break;
                continue;
            }
            idle_unlink(c);
            start_request(c);
            if (n < 0) {
                if (why)
                    log_msg(LOG_INFO, c->req.id, "refused request: %s", why);
                reply_error(c, (int)-n, why);
                continue;
            }
            c->req.head = h;
            int refuse = begin_request(c, n);
            if (refuse) {
                reply_error(c, refuse, NULL);
                continue;
            }
            if (c->req.body_cap) {
                c->state = CS_BODY;
                arm_timer(c, s->tv_read);
                if (c->req.head.expect_continue && c->rlen == c->rpos)
                    send_continue(c);
            } else {
                dispatch(c);
            }
            continue;
        }
        if (c->state == CS_BODY) {
            int rc = take_body(c);
            if (rc > 1) {
                reply_error(c, rc, NULL);
                continue;
            }
            if (rc == 1) {
                dispatch(c);
                continue;
            }
            /* Bodies are read past the head, which stays where it is. */
            int got = fill(c, c->head_end);
            if (got < 0) {
                c->in_process = 0;
                conn_close(c);
                return;
            }
            if (got == 0)
                break;
            arm_timer(c, s->tv_read);
            continue;
        }
        if (c->state == CS_HANDLER) {
            /* Waiting on I/O: notice the client leaving meanwhile. */
            want_read(c, 0);
            want_close_notice(c, 1);
            break;
        }
        if (c->state == CS_WRITING) {
            int rc = write_some(c);
            if (rc == 0) {
                want_read(c, 0);
                want_write(c, 1);
                arm_timer(c, s->tv_write);
                break;
            }
            if (rc < 0) {
                c->state = CS_IDLE;
                conn_free(c);
                return;
            }
            if (!finish_reply(c))
                return;
            served++;
            if (c->rlen == 0 && !(c->ssl && SSL_pending(c->ssl) > 0))
                break; /* wait for the next request */
            continue;
        }
        if (c->state == CS_GONE) {
            c->in_process = 0;
            conn_free(c);
            return;
        }
        break;
    }
    c->in_process = 0;
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    if (c->state == CS_HANDSHAKE) {
        int rc = SSL_do_handshake(c->ssl);
        if (rc == 1) {
            c->state = CS_IDLE;
            idle_link(c);
            want_write(c, 0);
            want_read(c, 1);
        } else {
            int e = SSL_get_error(c->ssl, rc);
            if (e == SSL_ERROR_WANT_READ) {
                want_write(c, 0);
                want_read(c, 1);
            } else if (e == SSL_ERROR_WANT_WRITE) {
                want_read(c, 0);
                want_write(c, 1);
            } else {
                ERR_clear_error();
                conn_free(c);
            }
            return;
        }
    }
    if (c->state == CS_WRITING) {
        /* TLS: a write that wanted to read. */
        on_write(fd, EV_WRITE, c);
        return;
    }
    conn_process(c);
}

/* The client closed while a handler held its request. */
static void on_peer_closed(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    want_close_notice(c, 0);
    if (c->state != CS_HANDLER)
        return;
    /* Plain HTTP: bytes before the end are pipelined requests (the client
     * half-closed after sending them): answer them first. Over TLS the bytes
     * are most likely the close_notify alert. */
    char b;
    ssize_t n = c->ssl ? 0 : recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0)
        return;
    conn_close(c);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    switch (c->state) {
    case CS_HEAD: reply_error(c, 408, "the request head did not arrive in time"); return;
    case CS_BODY: reply_error(c, 408, "the request body stalled"); return;
    case CS_FREEING: conn_free(c); return;
    default: conn_close(c); /* idle keep-alive, handshake, or a stalled reader */
    }
}

/* ---- request accessors ---- */

const char *http_req_id(const struct http_req *r) { return r->id; }
const char *http_req_method(const struct http_req *r) { return r->method; }
const char *http_req_uri(const struct http_req *r) { return r->target; }
const char *http_req_path(const struct http_req *r) { return r->path; }
const char *http_req_query_string(const struct http_req *r) { return r->query ? r->query : ""; }
const char *http_req_client(const struct http_req *r) { return r->c->peer; }
int http_req_is_tls(const struct http_req *r) { return r->srv->tls != NULL; }
struct arena *http_req_arena(struct http_req *r) { return &r->arena; }
int http_req_aborted(const struct http_req *r) { return r->aborted; }

const char *http_req_body(const struct http_req *r, size_t *len)
{
    *len = r->body_len;
    return r->body;
}

const char *http_req_header(const struct http_req *r, const char *name)
{
    for (size_t i = 0; i < r->head.n_fields; i++)
        if (strcasecmp(r->head.fields[i].name, name) == 0)
            return r->head.fields[i].value;
    return NULL;
}

void http_req_foreach_header(const struct http_req *r, http_kv_cb cb, void *arg)
{
    for (size_t i = 0; i < r->head.n_fields; i++)
        cb(r->head.fields[i].name, r->head.fields[i].value, arg);
}

/* Splits "a=1&b=2" (a copy in the arena) into pairs, percent-decoded.
 * Pairs with an empty name or a decoded NUL are dropped. */
static int parse_pairs(struct arena *a, const char *s, struct kv **out)
{
    if (!s || !*s)
        return 0;
    size_t n = 1;
    for (const char *p = s; *p; p++)
        n += *p == '&';
    struct kv *kv = arena_alloc(a, n * sizeof(*kv));
    size_t len = strlen(s);
    char *copy = arena_alloc(a, len + 1);
    if (!kv || !copy)
        return 0;
    int count = 0;
    const char *p = s;
    while (*p) {
        size_t plen = strcspn(p, "&");
        const char *eq = memchr(p, '=', plen);
        size_t nlen = eq ? (size_t)(eq - p) : plen;
        char *name = copy;
        long dn = percent_decode(name, p, nlen, 1);
        copy += nlen + 1;
        char *value = copy;
        long dv = eq ? percent_decode(value, eq + 1, plen - nlen - 1, 1) : (value[0] = '\0', 0);
        copy += (eq ? plen - nlen - 1 : 0) + 1;
        if (dn > 0 && dv >= 0) {
            kv[count].name = name;
            kv[count].value = value;
            count++;
        }
        p += plen;
        if (*p == '&')
            p++;
    }
    *out = kv;
    return count;
}

static const char *find_kv(const struct kv *kv, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(kv[i].name, name) == 0)
            return kv[i].value;
    return NULL;
}

static void parse_args(struct http_req *r)
{
    if (r->args_parsed)
        return;
    r->args_parsed = 1;
    r->n_args = parse_pairs(&r->arena, r->query, &r->args);
}

const char *http_req_arg(struct http_req *r, const char *name)
{
    parse_args(r);
    return find_kv(r->args, r->n_args, name);
}

void http_req_foreach_arg(struct http_req *r, http_kv_cb cb, void *arg)
{
    parse_args(r);
    for (int i = 0; i < r->n_args; i++)
        cb(r->args[i].name, r->args[i].value, arg);
}

/* Cookie: a=1; b=2 -> pairs; the first occurrence of a name wins when
 * looked up. Quotes around a value are removed. */
static void parse_cookies(struct http_req *r)
{
    if (r->cookies_parsed)
        return;
    r->cookies_parsed = 1;
    const char *h = http_req_header(r, "Cookie");
    if (!h || !*h)
        return;
    size_t n = 1;
    for (const char *p = h; *p; p++)
        n += *p == ';';
    char *copy = arena_strdup(&r->arena, h);
    struct kv *kv = arena_alloc(&r->arena, n * sizeof(*kv));
    if (!copy || !kv)
        return;
    int count = 0;
    char *save = NULL;
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
        if (!find_kv(kv, count, tok)) {
            kv[count].name = tok;
            kv[count].value = v;
            count++;
        }
    }
    r->cookies = kv;
    r->n_cookies = count;
}

const char *http_req_cookie(struct http_req *r, const char *name)
{
    parse_cookies(r);
    return find_kv(r->cookies, r->n_cookies, name);
}

void http_req_foreach_cookie(struct http_req *r, http_kv_cb cb, void *arg)
{
    parse_cookies(r);
    for (int i = 0; i < r->n_cookies; i++)
        cb(r->cookies[i].name, r->cookies[i].value, arg);
}

const char *http_req_form(struct http_req *r, const char *name)
{
    if (!r->form_parsed) {
        r->form_parsed = 1;
        const char *ct = http_req_header(r, "Content-Type");
        if (r->body && ct && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0 &&
            strlen(r->body) == r->body_len)
            r->n_form = parse_pairs(&r->arena, r->body, &r->form);
    }
    return find_kv(r->form, r->n_form, name);
}

/* Response headers the transport owns are dropped: it frames the reply. */
int http_req_add_header(struct http_req *r, const char *name, const char *value)
{
    if (!*name || strpbrk(value, "\r\n"))
        return -1;
    for (const char *p = name; *p; p++)
        if (!http_is_tchar((unsigned char)*p))
            return -1;
    if (strcasecmp(name, "Content-Length") == 0 || strcasecmp(name, "Transfer-Encoding") == 0 ||
        strcasecmp(name, "Connection") == 0 || strcasecmp(name, "Date") == 0)
        return 0;
    if (strcasecmp(name, "Content-Type") == 0)
        r->has_content_type = 1;
    size_t nl = strlen(name), vl = strlen(value), need = nl + vl + 4;
    if (r->out_len + need > r->out_cap) {
        size_t cap = r->out_cap ? r->out_cap * 2 : 512;
        while (cap < r->out_len + need)
            cap *= 2;
        char *n = arena_alloc(&r->arena, cap);
        if (!n)
            return -1;
        if (r->out_len)
            memcpy(n, r->out_headers, r->out_len);
        r->out_headers = n;
        r->out_cap = cap;
    }
    char *p = r->out_headers + r->out_len;
    put(&p, name, nl);
    put(&p, ": ", 2);
    put(&p, value, vl);
    put(&p, "\r\n", 2);
    r->out_len += need;
    return 0;
}

void http_req_on_abort(struct http_req *r, void (*cb)(void *), void *arg)
{
    r->abort_cb = cb;
    r->abort_arg = arg;
}

/* ---- server ---- */

void http_server_set_limits(struct http_server *s, const struct config_limits *l)
{
    s->limits = *l;
    struct timeval tv;
#define COMMON(field, ms)                                                                          \
    tv.tv_sec = (ms) / 1000;                                                                       \
    tv.tv_usec = ((ms) % 1000) * 1000;                                                             \
    s->field = event_base_init_common_timeout(s->base, &tv);
    COMMON(tv_header, l->header_timeout_ms);
    COMMON(tv_keepalive, l->keepalive_timeout_ms);
    COMMON(tv_read, l->read_timeout_ms);
    COMMON(tv_write, l->write_timeout_ms);
#undef COMMON
    size_t slots = (size_t)l->max_headers;
    if (slots != s->n_field_slots) {
        struct http_field *f = realloc(s->fields, slots * sizeof(*f));
        if (f) {
            s->fields = f;
            s->n_field_slots = slots;
        }
    }
    update_accepting(s);
}

struct http_server *http_server_new(struct event_base *base, int fd,
                                    const struct config_limits *limits, void *tls, http_handler h,
                                    void *arg)
{
    struct http_server *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->base = base;
    s->fd = fd;
    s->tls = tls;
    s->handler = h;
    s->arg = arg;
    crypto_random_bytes(&s->rid_prefix, sizeof(s->rid_prefix));
    pthread_once(&status_class_once, status_class_init);
    event_assign(&s->accept_ev, base, fd, EV_READ | EV_PERSIST, on_accept, s);
    evtimer_assign(&s->resume_ev, base, on_resume_accept, s);
    http_server_set_limits(s, limits);
    if (!s->fields) {
        free(s);
        return NULL;
    }
    return s;
}

/* Drain: no new connections; idle ones are closed now, busy ones after
 * their reply (which says Connection: close). */
void http_server_stop_accepting(struct http_server *s)
{
    if (s->stopped)
        return;
    s->stopped = 1;
    if (s->accept_on)
        event_del(&s->accept_ev);
    s->accept_on = 0;
    event_del(&s->resume_ev);
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    while (s->idle_head)
        conn_free(s->idle_head);
}

int http_server_active_requests(const struct http_server *s) { return s->active; }
int http_server_connections(const struct http_server *s) { return s->n_conns; }
/* Requests in handlers, plus connections in the middle of a request (its
 * head or body arriving) or of a reply: a drain waits for them all. */
int http_server_busy(const struct http_server *s)
{
    int busy = s->active;
    for (const struct conn *c = s->conns; c; c = c->next)
        busy += c->state == CS_HEAD || c->state == CS_BODY || c->state == CS_WRITING;
    return busy;
}

void http_server_free(struct http_server *s)
{
    if (!s)
        return;
    http_server_stop_accepting(s);
    /* Handlers still holding requests are told; they reply into the void. */
    while (s->conns) {
        struct conn *c = s->conns;
        if (c->state == CS_HANDLER) {
            conn_close(c); /* fires the abort: the handler replies and frees it */
            if (s->conns == c && c->state == CS_GONE) {
                /* The handler did not reply at once: drop it ourselves. */
                s->active--;
                c->state = CS_IDLE;
                conn_free(c);
            }
        } else {
            if (c->state == CS_GONE)
                s->active--;
            c->state = c->state == CS_WRITING ? CS_WRITING : CS_IDLE;
            conn_free(c);
        }
    }
    while (s->n_buf_cache)
        free(s->buf_cache[--s->n_buf_cache]);
    free(s->fields);
    free(s);
}

/* Is anyone else serving host:port? A probe socket without SO_REUSEPORT
 * cannot bind where another process's SO_REUSEPORT sockets listen, so a
 * second wxgate on a served address refuses to start instead of silently
 * sharing its traffic. */
static int address_taken(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int taken = bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno == EADDRINUSE;
    close(fd);
    return taken;
}

int http_listen(const char *host, int port, int *bound_port, char *err, size_t errsz)
{
    return http_listen_shared(host, port, 0, bound_port, err, errsz);
}

int http_listen_shared(const char *host, int port, int shared, int *bound_port, char *err,
                       size_t errsz)
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
    const char *fmt = strchr(host, ':') ? "[%s]:%d" : "%s:%d";
    char addr[300];
    snprintf(addr, sizeof(addr), fmt, host, port);
    if (!shared && port != 0 && address_taken(res)) {
        snprintf(err, errsz,
                 "cannot listen on %s: address already in use (is another wxgate "
                 "running?)",
                 addr);
        freeaddrinfo(res);
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 4096) != 0) {
        snprintf(err, errsz, "cannot listen on %s: %s", addr, strerror(errno));
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
