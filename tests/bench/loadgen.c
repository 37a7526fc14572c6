/* wxgate_loadgen: drives N virtual browsers through whole WeChat logins
 * against wxgate and `wxgate sandbox` (issue 11).
 *
 * Each browser has its own cookies (the gateway's and the sandbox's) and one
 * keep-alive connection per host, and loops:
 *   GET  gateway /auth?campaign=C&return=R   302 to the sandbox's authorize, Set-Cookie state
 *   GET  sandbox /connect/oauth2/authorize   302 to the gateway's /callback (consent granted
 *                                            ahead by the caller: POST /_sandbox/grant)
 *   GET  gateway /callback?code&state        302 to R with wx_ticket
 *   POST gateway /api/ticket                 200 with the user's JSON
 * Before its first login a browser POSTs /_sandbox/login?user=U (not timed)
 * to get the sandbox's login cookie.
 *
 * A minimal HTTP/1.1 client on libevent bufferevents: Content-Length,
 * chunked or close-delimited bodies, Location and Set-Cookie (name=value
 * only). Plain HTTP, IPv4 (loopback benchmarks).
 *
 * Reports completed logins/s, whole-login latency (p50/p99/max) and per step,
 * errors by kind and step, the gateway's CPU per completed login (utime+stime
 * from /proc/PID/stat, -p PID) and its RSS (VmRSS, sampled every 20 ms):
 * start, peak, end, and per in-flight login: (RSS - start) / W at the sample
 * where the most browsers (W) waited on /callback together. Human lines,
 * then one JSON line (the last line of stdout).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { GW, SB };
enum step { ST_LOGIN, ST_AUTH, ST_AUTHORIZE, ST_CALLBACK, ST_TICKET, NSTEPS };
static const char *step_name[NSTEPS] = {"sandbox_login", "auth", "authorize", "callback", "ticket"};
enum errkind { E_CONNECT, E_TIMEOUT, E_CLOSED, E_STATUS, E_ANSWER, NERR };
static const char *err_name[NERR] = {"connect", "timeout", "closed", "status", "answer"};

#define MAX_URL  2048
#define NCOOKIES 4

struct host {
    char base[256];    /* "http://host:port", what a Location starts with */
    char hosthdr[256]; /* the Host header */
    struct sockaddr_in addr;
};

struct browser;

enum rstate {
    R_IDLE,
    R_HEAD,
    R_BODY,
    R_CHUNK_SIZE,
    R_CHUNK_DATA,
    R_CHUNK_CRLF,
    R_TRAILER,
    R_UNTIL_CLOSE
};

struct conn {
    struct bufferevent *bev;
    struct browser *b;
    int host;
    int connected;
    unsigned requests; /* answered on this connection */
    enum rstate rs;
    long remaining;
    int keepalive;
    int got_bytes;
    /* the response */
    int status;
    char location[MAX_URL];
    char body[4096];
    size_t body_len;
};

struct cookie {
    char name[64];
    char value[256];
};

struct browser {
    int id;
    const char *user;
    enum step step;
    struct conn c[2];
    struct cookie jar[2][NCOOKIES];
    char next[MAX_URL]; /* path of the next request */
    char ticket[256];
    double t_login, t_step; /* start of the login (intended) and of the request */
    struct event *timer;    /* request timeout, or delayed start */
    int retried;
    int has_login_cookie;
    int in_login;   /* counted in inflight */
    int done;       /* no more logins */
    double pending; /* -R: intended start of a delayed login */
};

/* ---- options ---- */
static struct host hosts[2];
static const char *campaign = "base";
static const char *ret_url = "https://h5.example.com/page";
static const char *api_key = "";
static char *users[64];
static int nusers;
static int conc = 10;
static double duration = 10;
static long count_max = 0; /* -n: logins to start, 0 = by duration */
static double warmup = 0;
static double timeout_s = 10;
static double rate = 0;       /* -R: logins started per second (0: closed loop) */
static double ramp = 0;       /* browsers start spread over this many seconds */
static int inflight_mode = 0; /* -i */
/* -H: every browser stops before /callback until all have got there, then
 * all send it at once: N logins waiting on WeChat together, which a ramp
 * cannot reach when starting N logins takes longer than the upstream. */
static int hold_callbacks = 0;
static struct browser **held;
static long n_held, n_failed_before_release;
static int released;
static double first_held;
static int gw_pid = 0;
static int quiet = 0;
static double upstream_ms = -1; /* -U: for the report only */
static const char *label = "";

/* ---- state ---- */
static struct event_base *base;
static struct browser *browsers;
static double t0, t_measure, t_end_measure;
static int measuring;
static int stopping;
static long started, completed, failed, started_total;
static long errs[NERR][NSTEPS];
static long bad_status[NSTEPS][6]; /* by class: 1xx..5xx, [0] other */
static long inflight, inflight_max;
static long new_conns;
static double next_slot; /* -R: intended start of the next login */
static char auth_path[MAX_URL];

struct lat {
    double *v;
    size_t n, cap;
};
static struct lat lat_login, lat_step[NSTEPS];

static long rss_start, rss_peak, rss_end;
/* The most browsers waiting on /callback at one RSS sample, and the RSS
 * then: what a login waiting on WeChat costs the gateway. */
static long cb_wait_max, rss_at_cb_wait_max;
static double cpu_start, cpu_end;
static double self_start, self_end; /* the load generator's own CPU */
static struct event *sample_ev, *end_ev, *warm_ev;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void lat_add(struct lat *l, double v)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4096;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v) {
            perror("realloc");
            exit(2);
        }
    }
    l->v[l->n++] = v;
}
static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double pct(struct lat *l, double p)
{ /* l sorted */
    if (!l->n)
        return 0;
    size_t i = (size_t)ceil(p / 100.0 * l->n);
    if (i < 1)
        i = 1;
    if (i > l->n)
        i = l->n;
    return l->v[i - 1];
}

/* ---- /proc ---- */
static double proc_cpu(int pid)
{ /* seconds of utime + stime */
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* comm may hold spaces */
    if (!p)
        return -1;
    unsigned long ut = 0, st = 0;
    /* after ')': state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}
static long proc_rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) {
            kb = atol(line + 6);
            break;
        }
    fclose(f);
    return kb;
}

/* ---- URLs ---- */
static int parse_base(const char *url, struct host *h)
{
    const char *p = url;
    if (strncmp(p, "http://", 7))
        return -1;
    p += 7;
    const char *end = p + strcspn(p, "/");
    char hp[200];
    if ((size_t)(end - p) >= sizeof hp)
        return -1;
    memcpy(hp, p, end - p);
    hp[end - p] = 0;
    snprintf(h->base, sizeof h->base, "http://%s", hp);
    snprintf(h->hosthdr, sizeof h->hosthdr, "%s", hp);
    char *colon = strrchr(hp, ':');
    const char *port = "80";
    if (colon) {
        *colon = 0;
        port = colon + 1;
    }
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(hp, port, &hints, &res))
        return -1;
    memcpy(&h->addr, res->ai_addr, sizeof h->addr);
    freeaddrinfo(res);
    return 0;
}
static void urlencode(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s && o + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~')
            out[o++] = ch;
        else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = 0;
}

/* ---- the browser ---- */
static void start_login(struct browser *b);
static void send_request(struct browser *b);
static void conn_close(struct conn *c);

static void login_over(struct browser *b)
{
    if (b->in_login) {
        b->in_login = 0;
        inflight--;
    }
}

static void release_held(void);

static void fail(struct browser *b, enum errkind k)
{
    if (hold_callbacks && !released) {
        n_failed_before_release++;
        release_held();
    }
    if (measuring) {
        errs[k][b->step]++;
        failed++;
    }
    event_del(b->timer);
    login_over(b);
    /* After a failure the connections start fresh. */
    conn_close(&b->c[GW]);
    conn_close(&b->c[SB]);
    if (k == E_CONNECT) { /* do not spin on a refused port */
        struct timeval tv = {0, 50000};
        evtimer_add(b->timer, &tv);
        b->step = ST_AUTH;
        b->t_step = -1; /* the timer starts a login */
        return;
    }
    start_login(b);
}

static void jar_set(struct browser *b, int host, const char *v)
{
    /* "name=value; attrs": keep name=value; Max-Age=0 deletes. */
    const char *eq = strchr(v, '='), *semi = strchr(v, ';');
    if (!eq || (semi && semi < eq))
        return;
    size_t nl = eq - v, vl = semi ? (size_t)(semi - eq - 1) : strlen(eq + 1);
    while (vl && (eq[vl] == ' ' || eq[vl] == '\r'))
        vl--;
    if (nl >= 64 || vl >= 256)
        return;
    int del = semi && strcasestr(semi, "max-age=0") != NULL;
    struct cookie *free_slot = NULL;
    for (int i = 0; i < NCOOKIES; i++) {
        struct cookie *ck = &b->jar[host][i];
        if (ck->name[0] && strlen(ck->name) == nl && !memcmp(ck->name, v, nl)) {
            if (del)
                ck->name[0] = 0;
            else {
                memcpy(ck->value, eq + 1, vl);
                ck->value[vl] = 0;
            }
            return;
        }
        if (!ck->name[0] && !free_slot)
            free_slot = ck;
    }
    if (del || !free_slot)
        return;
    memcpy(free_slot->name, v, nl);
    free_slot->name[nl] = 0;
    memcpy(free_slot->value, eq + 1, vl);
    free_slot->value[vl] = 0;
}

static void parse_head(struct conn *c, char *h, size_t len)
{
    struct browser *b = c->b;
    h[len - 1] = 0;
    c->status = 0;
    c->location[0] = 0;
    c->remaining = -1;
    c->keepalive = 1;
    c->body_len = 0;
    int chunked = 0;
    if (strncmp(h, "HTTP/1.", 7) || strlen(h) < 12) {
        c->status = -1;
        return;
    }
    if (h[7] == '0')
        c->keepalive = 0;
    c->status = atoi(h + 9);
    char *line = strstr(h, "\r\n");
    while (line) {
        line += 2;
        char *end = strstr(line, "\r\n");
        if (end)
            *end = 0;
        char *colon = strchr(line, ':');
        if (colon) {
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t nl = colon - line;
            if (nl == 14 && !strncasecmp(line, "content-length", 14))
                c->remaining = atol(v);
            else if (nl == 8 && !strncasecmp(line, "location", 8))
                snprintf(c->location, sizeof c->location, "%s", v);
            else if (nl == 10 && !strncasecmp(line, "set-cookie", 10))
                jar_set(b, c->host, v);
            else if (nl == 17 && !strncasecmp(line, "transfer-encoding", 17))
                chunked = strcasestr(v, "chunked") != NULL;
            else if (nl == 10 && !strncasecmp(line, "connection", 10)) {
                if (strcasestr(v, "close"))
                    c->keepalive = 0;
                else if (strcasestr(v, "keep-alive"))
                    c->keepalive = 1;
            }
        }
        line = end;
    }
    if (chunked)
        c->rs = R_CHUNK_SIZE;
    else if (c->remaining > 0)
        c->rs = R_BODY;
    else if (c->remaining == 0 || c->status == 204 || c->status == 304 || c->status / 100 == 1)
        c->rs = R_IDLE;
    else {
        c->rs = R_UNTIL_CLOSE;
        c->keepalive = 0;
    }
}

static void body_take(struct conn *c, struct evbuffer *in, size_t n)
{
    size_t room = sizeof c->body - 1 - c->body_len;
    size_t k = n < room ? n : room;
    if (k)
        evbuffer_copyout(in, c->body + c->body_len, k);
    c->body_len += k;
    c->body[c->body_len] = 0;
    evbuffer_drain(in, n);
}

static void on_response(struct browser *b, struct conn *c);

static void conn_close(struct conn *c)
{
    if (c->bev)
        bufferevent_free(c->bev);
    c->bev = NULL;
    c->connected = 0;
    c->requests = 0;
    c->rs = R_IDLE;
}

/* One response is complete on c. */
static void response_done(struct conn *c)
{
    struct browser *b = c->b;
    c->rs = R_IDLE;
    c->requests++;
    if (!c->keepalive)
        conn_close(c);
    on_response(b, c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (evbuffer_get_length(in))
        c->got_bytes = 1;
    for (;;) {
        switch (c->rs) {
        case R_IDLE:
            evbuffer_drain(in, evbuffer_get_length(in)); /* nothing asked */
            return;
        case R_HEAD: {
            struct evbuffer_ptr p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
            if (p.pos < 0) {
                if (evbuffer_get_length(in) > 65536) {
                    fail(c->b, E_ANSWER);
                }
                return;
            }
            size_t hl = p.pos + 4;
            char *h = malloc(hl + 1);
            evbuffer_remove(in, h, hl);
            h[hl] = 0;
            parse_head(c, h, hl);
            free(h);
            if (c->status < 0) {
                fail(c->b, E_ANSWER);
                return;
            }
            if (c->rs == R_IDLE) {
                response_done(c);
                return;
            }
            break;
        }
        case R_BODY: {
            size_t have = evbuffer_get_length(in);
            size_t n = have < (size_t)c->remaining ? have : (size_t)c->remaining;
            body_take(c, in, n);
            c->remaining -= n;
            if (c->remaining == 0) {
                response_done(c);
                return;
            }
            return;
        }
        case R_CHUNK_SIZE: {
            size_t n;
            char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
            if (!line)
                return;
            c->remaining = strtol(line, NULL, 16);
            free(line);
            c->rs = c->remaining > 0 ? R_CHUNK_DATA : R_TRAILER;
            break;
        }
        case R_CHUNK_DATA: {
            size_t have = evbuffer_get_length(in);
            if (!have)
                return;
            size_t n = have < (size_t)c->remaining ? have : (size_t)c->remaining;
            body_take(c, in, n);
            c->remaining -= n;
            if (c->remaining == 0)
                c->rs = R_CHUNK_CRLF;
            break;
        }
        case R_CHUNK_CRLF:
            if (evbuffer_get_length(in) < 2)
                return;
            evbuffer_drain(in, 2);
            c->rs = R_CHUNK_SIZE;
            break;
        case R_TRAILER: {
            size_t n;
            char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
            if (!line)
                return;
            free(line);
            if (n == 0) {
                response_done(c);
                return;
            }
            break;
        }
        case R_UNTIL_CLOSE: body_take(c, in, evbuffer_get_length(in)); return;
        }
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    struct browser *b = c->b;
    if (what & BEV_EVENT_CONNECTED) {
        c->connected = 1;
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return;
    }
    /* EOF or error */
    int was_connected = c->connected;
    enum rstate rs = c->rs;
    unsigned reused = c->requests;
    int got = c->got_bytes;
    if (rs == R_UNTIL_CLOSE && (what & BEV_EVENT_EOF)) {
        conn_close(c);
        on_response(b, c);
        return;
    }
    conn_close(c);
    if (rs == R_IDLE)
        return; /* an idle keep-alive connection went away */
    if (!was_connected) {
        fail(b, E_CONNECT);
        return;
    }
    if (reused && !got && !b->retried) { /* keep-alive race: once more, on a new connection */
        b->retried = 1;
        send_request(b);
        return;
    }
    fail(b, E_CLOSED);
}

static void on_timer(evutil_socket_t fd, short ev, void *arg)
{
    struct browser *b = arg;
    if (b->t_step < 0) {
        start_login(b);
        return;
    } /* a delayed start */
    fail(b, E_TIMEOUT);
}

static void send_request(struct browser *b)
{
    int host = (b->step == ST_LOGIN || b->step == ST_AUTHORIZE) ? SB : GW;
    struct conn *c = &b->c[host];
    if (inflight_mode) { /* one connection per browser at a time */
        struct conn *o = &b->c[!host];
        if (o->bev && o->rs == R_IDLE)
            conn_close(o);
    }
    if (!c->bev) {
        c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
        bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
        if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&hosts[host].addr,
                                       sizeof hosts[host].addr) < 0) {
            conn_close(c);
            fail(b, E_CONNECT);
            return;
        }
        if (measuring)
            new_conns++;
    }
    c->b = b;
    c->host = host;
    c->rs = R_HEAD;
    c->got_bytes = 0;
    char cookies[1200];
    size_t o = 0;
    cookies[0] = 0;
    for (int i = 0; i < NCOOKIES; i++) {
        struct cookie *ck = &b->jar[host][i];
        if (!ck->name[0])
            continue;
        o += snprintf(cookies + o, sizeof cookies - o, "%s%s=%s", o ? "; " : "Cookie: ", ck->name,
                      ck->value);
        if (o >= sizeof cookies) {
            o = sizeof cookies - 1;
            break;
        }
    }
    if (o)
        o += snprintf(cookies + o, sizeof cookies - o, "\r\n");
    struct evbuffer *out = bufferevent_get_output(c->bev);
    const char *ua =
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800323b) NetType/WIFI";
    if (b->step == ST_TICKET) {
        evbuffer_add_printf(out,
                            "POST /api/ticket HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: "
                            "%zu\r\n\r\nticket=%s",
                            hosts[host].hosthdr, api_key, strlen(b->ticket) + 7, b->ticket);
    } else if (b->step == ST_LOGIN) {
        char u[128];
        urlencode(b->user, u, sizeof u);
        evbuffer_add_printf(
            out, "POST /_sandbox/login?user=%s HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\n\r\n",
            u, hosts[host].hosthdr);
    } else {
        evbuffer_add_printf(out,
                            "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n"
                            "Accept: text/html\r\n%s\r\n",
                            b->next, hosts[host].hosthdr, ua, cookies);
    }
    struct timeval tv = {(time_t)timeout_s, (suseconds_t)((timeout_s - (time_t)timeout_s) * 1e6)};
    b->t_step = now_s();
    evtimer_add(b->timer, &tv);
}

/* The path of a Location on HOST, without the fragment; NULL if elsewhere. */
static const char *location_path(const char *loc, int host, char *out, size_t cap)
{
    size_t bl = strlen(hosts[host].base);
    if (strncmp(loc, hosts[host].base, bl) || (loc[bl] != '/' && loc[bl] != 0))
        return NULL;
    const char *p = loc + bl;
    size_t n = strcspn(p, "#");
    if (n == 0 || n >= cap)
        return NULL;
    memcpy(out, p, n);
    out[n] = 0;
    return out;
}

static void bad_status_count(struct browser *b, int status)
{
    int cls = status / 100;
    if (measuring)
        bad_status[b->step][cls >= 1 && cls <= 5 ? cls : 0]++;
}

static void on_response(struct browser *b, struct conn *c)
{
    event_del(b->timer);
    double t = now_s();
    b->retried = 0;
    if (measuring && b->step != ST_LOGIN)
        lat_add(&lat_step[b->step], t - b->t_step);
    switch (b->step) {
    case ST_LOGIN:
        if (c->status != 200) {
            bad_status_count(b, c->status);
            fail(b, E_STATUS);
            return;
        }
        b->has_login_cookie = 1;
        start_login(b);
        return;
    case ST_AUTH:
        if (c->status != 302) {
            bad_status_count(b, c->status);
            fail(b, E_STATUS);
            return;
        }
        if (!location_path(c->location, SB, b->next, sizeof b->next)) {
            fail(b, E_ANSWER);
            return;
        }
        b->step = ST_AUTHORIZE;
        break;
    case ST_AUTHORIZE:
        if (c->status != 302) {
            bad_status_count(b, c->status);
            fail(b, E_STATUS);
            return;
        }
        if (!location_path(c->location, GW, b->next, sizeof b->next) ||
            strncmp(b->next, "/callback?", 10)) {
            fail(b, E_ANSWER);
            return;
        }
        b->step = ST_CALLBACK;
        if (hold_callbacks && !released) {
            if (!n_held)
                first_held = now_s();
            held[n_held++] = b;
            release_held();
            return;
        }
        break;
    case ST_CALLBACK: {
        if (c->status != 302) {
            bad_status_count(b, c->status);
            fail(b, E_STATUS);
            return;
        }
        const char *tk = strstr(c->location, "wx_ticket=");
        if (!tk) {
            fail(b, E_ANSWER);
            return;
        }
        tk += 10;
        size_t n = strcspn(tk, "&#");
        if (!n || n >= sizeof b->ticket) {
            fail(b, E_ANSWER);
            return;
        }
        memcpy(b->ticket, tk, n);
        b->ticket[n] = 0;
        b->step = ST_TICKET;
        break;
    }
    case ST_TICKET:
        if (c->status != 200) {
            bad_status_count(b, c->status);
            fail(b, E_STATUS);
            return;
        }
        if (!strstr(c->body, "\"openid\"")) {
            fail(b, E_ANSWER);
            return;
        }
        if (measuring) {
            completed++;
            lat_add(&lat_login, t - b->t_login);
        }
        login_over(b);
        start_login(b);
        return;
    default: return;
    }
    send_request(b);
}

/* -H: sends the held /callbacks once every browser is held or has failed
 * (or 15 s after the first was held, so that a lost browser cannot stall
 * the run). */
static void release_held(void)
{
    if (released || !n_held ||
        (n_held + n_failed_before_release < conc && now_s() - first_held < 15))
        return;
    released = 1;
    for (long i = 0; i < n_held; i++) {
        held[i]->t_step = now_s();
        send_request(held[i]);
    }
}

static void start_login(struct browser *b)
{
    if (stopping || b->done) {
        b->done = 1;
        return;
    }
    if (!b->has_login_cookie) {
        b->step = ST_LOGIN;
        send_request(b);
        return;
    }
    if (count_max && started_total >= count_max) {
        b->done = 1;
        return;
    }
    double t = now_s(), when = t;
    if (b->pending > 0) { /* a delayed start whose slot is taken */
        when = b->pending;
        b->pending = 0;
    } else if (rate > 0) {
        if (next_slot < t - 1.0)
            next_slot = t - 1.0; /* do not save up more than 1 s */
        when = next_slot;
        next_slot += 1.0 / rate;
        if (when > t) {
            double d = when - t;
            struct timeval tv = {(time_t)d, (suseconds_t)((d - (time_t)d) * 1e6)};
            b->pending = when;
            b->t_step = -1;
            evtimer_add(b->timer, &tv);
            return;
        }
    }
    b->retried = 0;
    started_total++;
    if (measuring)
        started++;
    b->in_login = 1;
    inflight++;
    if (inflight > inflight_max)
        inflight_max = inflight;
    b->t_login = when; /* intended start: latency includes waiting for a browser */
    b->step = ST_AUTH;
    snprintf(b->next, sizeof b->next, "%s", auth_path);
    send_request(b);
}

/* ---- timers: sampling, warm-up, end ---- */
static void sample(evutil_socket_t fd, short ev, void *arg)
{
    if (gw_pid && measuring) {
        long r = proc_rss_kb(gw_pid), waiting = 0;
        if (r > rss_peak)
            rss_peak = r;
        for (int i = 0; i < conc; i++)
            waiting += browsers[i].in_login && browsers[i].step == ST_CALLBACK;
        if (waiting > cb_wait_max || (waiting == cb_wait_max && r > rss_at_cb_wait_max)) {
            cb_wait_max = waiting;
            rss_at_cb_wait_max = r;
        }
    }
    release_held();
    if (count_max && !stopping) { /* -n: all done? */
        int all = 1;
        for (int i = 0; i < conc && all; i++)
            if (!browsers[i].done)
                all = 0;
        if (all)
            event_active(end_ev, EV_TIMEOUT, 0);
    }
}

static double self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static void begin_measure(evutil_socket_t fd, short ev, void *arg)
{
    measuring = 1;
    t_measure = now_s();
    self_start = self_cpu();
    if (gw_pid) {
        cpu_start = proc_cpu(gw_pid);
        rss_start = rss_peak = proc_rss_kb(gw_pid);
    }
}

static void end_run(evutil_socket_t fd, short ev, void *arg)
{
    if (stopping)
        return;
    stopping = 1;
    t_end_measure = now_s();
    self_end = self_cpu();
    if (gw_pid) {
        cpu_end = proc_cpu(gw_pid);
        rss_end = proc_rss_kb(gw_pid);
        if (rss_end > rss_peak)
            rss_peak = rss_end;
    }
    measuring = 0;
    event_base_loopbreak(base);
}

static void on_sigint(evutil_socket_t fd, short ev, void *arg) { end_run(0, 0, NULL); }

/* ---- report ---- */
static void report(void)
{
    double el = t_end_measure - t_measure;
    if (lat_login.n)
        qsort(lat_login.v, lat_login.n, sizeof(double), cmp_d);
    for (int s = 0; s < NSTEPS; s++)
        if (lat_step[s].n)
            qsort(lat_step[s].v, lat_step[s].n, sizeof(double), cmp_d);
    long nerr = 0;
    for (int k = 0; k < NERR; k++)
        for (int s = 0; s < NSTEPS; s++)
            nerr += errs[k][s];
    double lps = el > 0 ? completed / el : 0;
    double p50 = pct(&lat_login, 50) * 1e3, p99 = pct(&lat_login, 99) * 1e3,
           mx = lat_login.n ? lat_login.v[lat_login.n - 1] * 1e3 : 0;
    double cpu_us = (gw_pid && completed) ? (cpu_end - cpu_start) * 1e6 / completed : -1;
    /* Per login waiting on WeChat: the RSS when the most browsers waited on
     * /callback together, over how many they were. */
    double rss_per =
        gw_pid && cb_wait_max ? (double)(rss_at_cb_wait_max - rss_start) / cb_wait_max : -1;
    if (!quiet) {
        printf("loadgen %s: %d browsers%s, %.1f s measured%s%s\n", label, conc,
               inflight_mode ? " (in-flight mode)" : "", el,
               rate > 0 ? ", rate-limited" : ", closed loop", warmup > 0 ? " after warm-up" : "");
        printf("  logins: started %ld, completed %ld, failed %ld, unfinished at the end %ld\n",
               started, completed, failed, inflight);
        printf("  completed logins/s: %.1f\n", lps);
        printf("  whole login: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", p50, p99, mx);
        for (int s = ST_AUTH; s < NSTEPS; s++)
            printf("    %-10s p50 %8.2f ms  p99 %8.2f ms  (%zu)\n", step_name[s],
                   pct(&lat_step[s], 50) * 1e3, pct(&lat_step[s], 99) * 1e3, lat_step[s].n);
        printf("  in flight: max %ld; new connections %ld; loadgen CPU %.0f%% of a core\n",
               inflight_max, new_conns, el > 0 ? (self_end - self_start) * 100 / el : 0);
        printf("  errors: %ld\n", nerr);
        for (int k = 0; k < NERR; k++)
            for (int s = 0; s < NSTEPS; s++)
                if (errs[k][s]) {
                    printf("    %s at %s: %ld", err_name[k], step_name[s], errs[k][s]);
                    if (k == E_STATUS)
                        for (int cl = 0; cl < 6; cl++)
                            if (bad_status[s][cl])
                                printf(" (%dxx: %ld)", cl, bad_status[s][cl]);
                    printf("\n");
                }
        if (gw_pid) {
            printf("  gateway pid %d: CPU %.3f s, %.1f us per completed login\n", gw_pid,
                   cpu_end - cpu_start, cpu_us);
            printf("  gateway RSS: start %ld KiB, peak %ld KiB, end %ld KiB; %ld KiB with %ld "
                   "logins waiting on /callback together: %.2f KiB per in-flight login\n",
                   rss_start, rss_peak, rss_end, rss_at_cb_wait_max, cb_wait_max, rss_per);
        }
        if (upstream_ms >= 0)
            printf("  p99 minus upstream time (%.0f ms): %+.2f ms\n", upstream_ms,
                   p99 - upstream_ms);
    }
    printf(
        "{\"label\":\"%s\",\"concurrency\":%d,\"inflight_mode\":%s,\"rate\":%.1f,\"seconds\":%.3f,"
        "\"started\":%ld,\"completed\":%ld,\"failed\":%ld,\"unfinished\":%ld,"
        "\"logins_per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,",
        label, conc, inflight_mode ? "true" : "false", rate, el, started, completed, failed,
        inflight, lps, p50, p99, mx);
    printf("\"steps\":{");
    for (int s = ST_AUTH; s < NSTEPS; s++)
        printf("%s\"%s\":{\"p50_ms\":%.3f,\"p99_ms\":%.3f}", s > ST_AUTH ? "," : "", step_name[s],
               pct(&lat_step[s], 50) * 1e3, pct(&lat_step[s], 99) * 1e3);
    printf("},\"errors\":%ld,\"errors_by_kind\":{", nerr);
    int first = 1;
    for (int k = 0; k < NERR; k++)
        for (int s = 0; s < NSTEPS; s++)
            if (errs[k][s]) {
                printf("%s\"%s_%s\":%ld", first ? "" : ",", err_name[k], step_name[s], errs[k][s]);
                first = 0;
            }
    printf("},\"inflight_max\":%ld,\"new_connections\":%ld,\"loadgen_cpu_s\":%.3f", inflight_max,
           new_conns, self_end - self_start);
    if (gw_pid)
        printf(",\"gateway_pid\":%d,\"gateway_cpu_s\":%.3f,\"cpu_us_per_login\":%.1f,"
               "\"rss_start_kb\":%ld,\"rss_peak_kb\":%ld,\"rss_end_kb\":%ld,\"rss_per_inflight_"
               "kb\":%.3f,\"callback_waiting_max\":%ld",
               gw_pid, cpu_end - cpu_start, cpu_us, rss_start, rss_peak, rss_end, rss_per,
               cb_wait_max);
    if (upstream_ms >= 0)
        printf(",\"upstream_ms\":%.1f,\"p99_minus_upstream_ms\":%.3f", upstream_ms,
               p99 - upstream_ms);
    printf("}\n");
    fflush(stdout);
}

static void usage(void)
{
    fprintf(
        stderr,
        "usage: wxgate_loadgen -g GATEWAY_URL -s SANDBOX_URL [options]\n"
        "  -g URL    the gateway, http://host:port (its public_url)\n"
        "  -s URL    the sandbox, http://host:port (the gateway's open_base)\n"
        "  -C NAME   campaign (default base)      -r URL   return URL (default "
        "https://h5.example.com/page)\n"
        "  -k KEY    API key for POST /api/ticket\n"
        "  -u U,U..  sandbox users, round-robin over the browsers (default xiaoming);\n"
        "            grant consent ahead for snsapi_userinfo campaigns\n"
        "  -c N      browsers (concurrent logins, default 10)\n"
        "  -d SEC    measure for SEC seconds (default 10)   -n N  or until N logins\n"
        "  -w SEC    warm-up before measuring (default 0)   -t SEC  request timeout (default 10)\n"
        "  -R RATE   start at most RATE logins/s (default: closed loop); latency counts from the\n"
        "            intended start\n"
        "  -S SEC    spread the browsers' first logins over SEC seconds\n"
        "  -i        in-flight mode: one connection per browser at a time (fds for 10k browsers)\n"
        "  -H        hold every /callback until all browsers are there, then send them at once\n"
        "  -p PID    the gateway's PID: CPU per login (/proc/PID/stat) and RSS (/proc/PID/status)\n"
        "  -U MS     upstream time of one login, to print p99 minus it\n"
        "  -L TEXT   label in the report           -q  only the JSON line\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *gw = NULL, *sb = NULL, *ul = "xiaoming";
    int opt;
    while ((opt = getopt(argc, argv, "g:s:C:r:k:u:c:d:n:w:t:R:S:iHp:U:L:qh")) != -1) {
        switch (opt) {
        case 'g': gw = optarg; break;
        case 's': sb = optarg; break;
        case 'C': campaign = optarg; break;
        case 'r': ret_url = optarg; break;
        case 'k': api_key = optarg; break;
        case 'u': ul = optarg; break;
        case 'c': conc = atoi(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'n': count_max = atol(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 't': timeout_s = atof(optarg); break;
        case 'R': rate = atof(optarg); break;
        case 'S': ramp = atof(optarg); break;
        case 'i': inflight_mode = 1; break;
        case 'H': hold_callbacks = 1; break;
        case 'p': gw_pid = atoi(optarg); break;
        case 'U': upstream_ms = atof(optarg); break;
        case 'L': label = optarg; break;
        case 'q': quiet = 1; break;
        default: usage();
        }
    }
    if (!gw || !sb || conc < 1)
        usage();
    if (parse_base(gw, &hosts[GW]) || parse_base(sb, &hosts[SB])) {
        fprintf(stderr, "loadgen: bad URL (http://host:port only)\n");
        return 2;
    }
    char *ucopy = strdup(ul);
    for (char *tok = strtok(ucopy, ","); tok && nusers < 64; tok = strtok(NULL, ","))
        users[nusers++] = tok;
    if (!nusers)
        usage();
    char cq[256], rq[1024];
    urlencode(campaign, cq, sizeof cq);
    urlencode(ret_url, rq, sizeof rq);
    snprintf(auth_path, sizeof auth_path, "/auth?campaign=%s&return=%s", cq, rq);

    /* Two connections per browser, plus some room. */
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl)) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        rlim_t need = (rlim_t)conc * (inflight_mode ? 1 : 2) + 64;
        if (rl.rlim_cur < need)
            fprintf(stderr,
                    "loadgen: warning: %d browsers need about %lu file descriptors, the limit is "
                    "%lu%s\n",
                    conc, (unsigned long)need, (unsigned long)rl.rlim_cur,
                    inflight_mode ? "" : " (try -i)");
    }
    signal(SIGPIPE, SIG_IGN);
    if (gw_pid && proc_cpu(gw_pid) < 0) {
        fprintf(stderr, "loadgen: no /proc/%d/stat\n", gw_pid);
        return 2;
    }

    base = event_base_new();
    browsers = calloc(conc, sizeof *browsers);
    held = calloc(conc, sizeof *held);
    t0 = now_s();
    next_slot = t0;
    for (int i = 0; i < conc; i++) {
        struct browser *b = &browsers[i];
        b->id = i;
        b->user = users[i % nusers];
        b->timer = evtimer_new(base, on_timer, b);
        b->c[GW].b = b->c[SB].b = b;
        b->c[GW].host = GW;
        b->c[SB].host = SB;
    }
    sample_ev = event_new(base, -1, EV_PERSIST, sample, NULL);
    struct timeval st = {0, 20000};
    event_add(sample_ev, &st);
    end_ev = evtimer_new(base, end_run, NULL);
    struct event *sig = evsignal_new(base, SIGINT, on_sigint, NULL);
    event_add(sig, NULL);
    struct event *sigt = evsignal_new(base, SIGTERM, on_sigint, NULL);
    event_add(sigt, NULL);
    if (warmup > 0) {
        warm_ev = evtimer_new(base, begin_measure, NULL);
        struct timeval wt = {(time_t)warmup, (suseconds_t)((warmup - (time_t)warmup) * 1e6)};
        event_add(warm_ev, &wt);
    } else {
        begin_measure(0, 0, NULL);
    }
    if (!count_max) {
        double total = warmup + duration;
        struct timeval et = {(time_t)total, (suseconds_t)((total - (time_t)total) * 1e6)};
        event_add(end_ev, &et);
    }
    for (int i = 0; i < conc; i++) {
        struct browser *b = &browsers[i];
        if (ramp > 0) {
            double d = ramp * i / conc;
            struct timeval tv = {(time_t)d, (suseconds_t)((d - (time_t)d) * 1e6)};
            b->t_step = -1;
            evtimer_add(b->timer, &tv);
        } else {
            start_login(b);
        }
    }
    event_base_dispatch(base);
    report();
    for (int i = 0; i < conc; i++) {
        conn_close(&browsers[i].c[GW]);
        conn_close(&browsers[i].c[SB]);
        event_free(browsers[i].timer);
    }
    return 0;
}
