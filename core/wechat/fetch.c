/* fetch.c: the upstream HTTP client. A fetch_loop drives curl multi
 * handles from the loop's libevent event_base after curl's multi-event
 * examples (ghiper.c, evhiperfifo.c, multi-event.c): one `struct event` per
 * socket curl asks us to watch, one timer per multi handle, and every
 * request in flight (easy handle, request headers, the response being
 * accumulated). A multi handle's connection cache gives reuse across the
 * requests of a loop; easy handles live for one request only; TLS sessions
 * and DNS answers are shared by all of them (one CURLSH per loop), so a new
 * connection to WeChat resumes its TLS session.
 *
 * Why several multi handles ("shards"): libcurl 7.88 looks for a reusable
 * connection by walking every connection to the host, in use or not, for
 * each new transfer. With 10,000 logins waiting on a slow WeChat that walk
 * is quadratic and stalled the worker's loop for over 5 s (the watchdog
 * stopped the process). A shard takes SHARD_TRANSFERS transfers before the
 * next one is used, so the walk stays short; under ordinary load every call
 * goes to the first shard and finds its kept-alive connections there. */
#include "fetch.h"
#include "metrics.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>

#define UPSTREAM_CONNECTIONS_KEPT  512 /* idle keep-alive connections, first shard */
#define SHARD_TRANSFERS            256 /* transfers a shard takes before the next is used */
#define MAX_SHARDS                 64  /* then the least busy one takes more */
#define DEFAULT_CONNECT_TIMEOUT_MS 2000L
#define DEFAULT_TIMEOUT_MS         5000L
#define DEFAULT_MAX_BODY           ((size_t)4 << 20)

struct shard {
    struct fetch_loop *fl;
    CURLM *multi;
    struct event *timer; /* the multi handle's single timeout (CURLMOPT_TIMERFUNCTION) */
    int running;         /* transfers added and not yet removed */
};

struct fetch_loop {
    struct event_base *base;
    CURLSH *share; /* TLS sessions and DNS answers, for every shard */
    struct shard *shards[MAX_SHARDS];
    int n_shards;
    struct fetch *fetches; /* in flight, callback not yet called */
    int in_callback;       /* a fetch callback is running */
    int closing;           /* fetch_loop_free was called from that callback */
};

struct fetch {
    struct fetch_loop *fl;
    struct shard *sh; /* whose multi handle runs it */
    struct fetch *prev, *next;
    CURL *easy;
    CURLU *url; /* parsed once, by parse_url(); curl reads it (CURLOPT_CURLU) */
    struct curl_slist *req_headers;
    fetch_cb cb;
    void *arg;
    int done; /* unlinked; its callback is running */
    struct timespec started;
    size_t max_body;
    int too_large;
    char *body; /* NUL-terminated for the callback's convenience */
    size_t body_len, body_cap;
    struct fetch_header *headers; /* the reply's, with their strings in the same block */
    size_t n_headers;
    char errbuf[CURL_ERROR_SIZE];
};

static void check_multi_info(struct shard *sh);

/* ---- libevent <-> curl glue ------------------------------------------ */

static void sock_event_cb(evutil_socket_t fd, short kind, void *arg)
{
    struct shard *sh = arg;
    int action =
        ((kind & EV_READ) ? CURL_CSELECT_IN : 0) | ((kind & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;

    /* The socket callback may free this very event inside the action; only
     * sh is used afterwards. */
    curl_multi_socket_action(sh->multi, fd, action, &running);
    check_multi_info(sh);
}

static void timer_event_cb(evutil_socket_t fd, short kind, void *arg)
{
    struct shard *sh = arg;
    int running;

    curl_multi_socket_action(sh->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi_info(sh);
}

/* CURLMOPT_SOCKETFUNCTION: the socket's `struct event` is its curl socketp
 * (curl_multi_assign), re-armed with the new interest on every change and
 * freed on CURL_POLL_REMOVE. Returning -1 fails the transfers on the socket. */
static int sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct shard *sh = userp;
    struct event *ev = socketp;
    short kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
                 ((what & CURL_POLL_OUT) ? EV_WRITE : 0);

    if (what == CURL_POLL_REMOVE) {
        if (ev)
            event_free(ev);
        return 0;
    }
    if (!ev) {
        ev = event_new(sh->fl->base, s, kind, sock_event_cb, sh);
        if (!ev)
            return -1;
        curl_multi_assign(sh->multi, s, ev);
    } else {
        event_del(ev);
        event_assign(ev, sh->fl->base, s, kind, sock_event_cb, sh);
    }
    return event_add(ev, NULL) == 0 ? 0 : -1;
}

/* CURLMOPT_TIMERFUNCTION: -1 removes the timer; 0 fires it on the next loop
 * iteration (curl must not be called back from inside this function). */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct shard *sh = userp;
    struct timeval tv;

    if (timeout_ms < 0)
        return evtimer_del(sh->timer);
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    return evtimer_add(sh->timer, &tv);
}

/* ---- per-request state ------------------------------------------------ */

/* Calls in progress in every worker (wxgate_upstream_in_flight). */
static atomic_long fetches_in_flight;

long fetch_in_flight(void)
{
    return atomic_load_explicit(&fetches_in_flight, memory_order_relaxed);
}

static void link_fetch(struct fetch *f)
{
    atomic_fetch_add_explicit(&fetches_in_flight, 1, memory_order_relaxed);
    f->next = f->fl->fetches;
    if (f->next)
        f->next->prev = f;
    f->fl->fetches = f;
}

static void unlink_fetch(struct fetch *f)
{
    atomic_fetch_sub_explicit(&fetches_in_flight, 1, memory_order_relaxed);
    if (f->prev)
        f->prev->next = f->next;
    else
        f->fl->fetches = f->next;
    if (f->next)
        f->next->prev = f->prev;
    f->prev = f->next = NULL;
}

/* Frees a request that is no longer attached to the multi handle. */
static void fetch_free(struct fetch *f)
{
    if (f->easy)
        curl_easy_cleanup(f->easy);
    curl_url_cleanup(f->url);
    curl_slist_free_all(f->req_headers);
    free(f->headers);
    free(f->body);
    free(f);
}

/* CURLOPT_WRITEFUNCTION: accumulate up to max_body bytes (after content
 * decoding, so a compressed bomb is caught too); beyond it abort the
 * transfer, which finish() reports as "too_large". */
static size_t write_cb(char *data, size_t size, size_t n, void *userp)
{
    struct fetch *f = userp;
    size_t len = size * n;

    if (len > f->max_body - f->body_len) {
        f->too_large = 1;
        return 0;
    }
    if (f->body_len + len + 1 > f->body_cap) {
        size_t cap = f->body_cap ? f->body_cap : 4096;
        while (cap < f->body_len + len + 1)
            cap *= 2;
        if (cap > f->max_body + 1)
            cap = f->max_body + 1;
        char *p = realloc(f->body, cap);
        if (!p)
            return 0;
        f->body = p;
        f->body_cap = cap;
    }
    memcpy(f->body + f->body_len, data, len);
    f->body_len += len;
    f->body[f->body_len] = '\0';
    return len;
}

/* A header value as curl stores it, without surrounding white space: curl
 * trims it, except that an empty value keeps its CR (libcurl 7.88). */
static const char *trimmed(const char *v, size_t *len)
{
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n > 0 && isspace((unsigned char)v[n - 1]))
        n--;
    *len = n;
    return v;
}

/* The reply's header fields from curl's header store (curl_easy_nextheader),
 * in the order they arrived: those of the final response (not of a 100
 * Continue or a proxy's CONNECT reply) and its trailers, continuation lines
 * unfolded by curl. Names are lowercased, values trimmed. One allocation
 * holds the array and, after it, the strings. Returns 0, or -1 when out of
 * memory. */
static int collect_headers(struct fetch *f)
{
    const unsigned int origin = CURLH_HEADER | CURLH_TRAILER;
    struct curl_header *h = NULL;
    size_t n = 0, bytes = 0;

    while ((h = curl_easy_nextheader(f->easy, origin, -1, h))) {
        n++;
        bytes += strlen(h->name) + strlen(h->value) + 2;
    }
    if (n == 0)
        return 0;
    struct fetch_header *arr = malloc(n * sizeof *arr + bytes);
    if (!arr)
        return -1;
    char *p = (char *)(arr + n);
    size_t i = 0;
    while (i < n && (h = curl_easy_nextheader(f->easy, origin, -1, h))) {
        size_t vlen;
        const char *v = trimmed(h->value, &vlen);
        arr[i].name = p;
        for (const char *c = h->name; *c; c++)
            *p++ = (char)tolower((unsigned char)*c);
        *p++ = '\0';
        arr[i].value = p;
        memcpy(p, v, vlen);
        p += vlen;
        *p++ = '\0';
        i++;
    }
    f->headers = arr;
    f->n_headers = i;
    return 0;
}

/* ---- completion ------------------------------------------------------- */

static const char *error_name(CURLcode rc, int too_large)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: return "timeout";
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return "connect";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED: return "tls";
    case CURLE_FILESIZE_EXCEEDED: return "too_large";
    case CURLE_WRITE_ERROR: return too_large ? "too_large" : "error";
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_SEND_ERROR: return "closed";
    default: return "error";
    }
}

/* Query strings carry secrets (appsecret, code, tokens): in a message, drop
 * everything from a '?' up to the next whitespace. */
static void strip_queries(char *s)
{
    char *w = s;
    const char *r = s;

    while (*r) {
        if (*r == '?') {
            while (*r && !isspace((unsigned char)*r))
                r++;
            continue;
        }
        *w++ = *r++;
    }
    *w = '\0';
}

static double ms_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) * 1e3 + (double)(now.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Hands a finished request to its callback, then frees it. The request is
 * detached from the list and the multi handle first, so the callback may
 * start, cancel (even this one: a no-op) or free the loop. */
static void finish(struct fetch *f, CURLcode rc)
{
    struct fetch_loop *fl = f->fl;
    struct fetch_response res = {0};

    unlink_fetch(f);
    f->done = 1;
    if (rc == CURLE_OK && collect_headers(f) != 0) {
        rc = CURLE_OUT_OF_MEMORY;
        snprintf(f->errbuf, sizeof f->errbuf, "out of memory for the reply's headers");
    }
    curl_multi_remove_handle(f->sh->multi, f->easy);
    f->sh->running--;

    res.total_ms = ms_since(&f->started);
    long opened = 0;
    if (curl_easy_getinfo(f->easy, CURLINFO_NUM_CONNECTS, &opened) == CURLE_OK && opened > 0) {
        static struct metrics_counter *new_connections;
        metrics_counter_add_to(&new_connections, "wxgate_upstream_connections_opened_total",
                               (unsigned long long)opened);
    }
    if (rc == CURLE_OK) {
        res.ok = 1;
        curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &res.status);
        res.headers = f->headers;
        res.n_headers = f->n_headers;
        res.body = f->body ? f->body : "";
        res.body_len = f->body_len;
    } else {
        res.error = error_name(rc, f->too_large);
        if (f->too_large)
            snprintf(f->errbuf, sizeof f->errbuf, "reply body over %zu bytes", f->max_body);
        else if (!f->errbuf[0])
            snprintf(f->errbuf, sizeof f->errbuf, "%s", curl_easy_strerror(rc));
        strip_queries(f->errbuf);
        res.detail = f->errbuf;
        res.body = "";
    }

    fl->in_callback = 1;
    f->cb(&res, f->arg);
    fl->in_callback = 0;
    fetch_free(f);
}

static void shard_free(struct shard *sh)
{
    if (sh->multi)
        curl_multi_cleanup(sh->multi);
    if (sh->timer)
        event_free(sh->timer);
    free(sh);
}

/* Every request is gone: the multi handles, then the share they used. */
static void loop_destroy(struct fetch_loop *fl)
{
    for (int i = 0; i < fl->n_shards; i++)
        shard_free(fl->shards[i]);
    if (fl->share)
        curl_share_cleanup(fl->share);
    free(fl);
}

/* Drains curl's completion messages after every socket_action. Messages of a
 * request cancelled by an earlier callback are dropped by
 * curl_multi_remove_handle, so the loop never sees a freed request. If a
 * callback freed the loop, stop and finish the deferred free here. */
static void check_multi_info(struct shard *sh)
{
    struct fetch_loop *fl = sh->fl;
    CURLMsg *msg;
    int left;

    while (!fl->closing && (msg = curl_multi_info_read(sh->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct fetch *f;
        CURLcode rc = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&f);
        finish(f, rc);
    }
    if (fl->closing)
        loop_destroy(fl);
}

/* ---- public API ------------------------------------------------------- */

void fetch_global_init(void)
{
    static int done;

    if (!done) {
        done = 1;
        curl_global_init(CURL_GLOBAL_DEFAULT);
    }
}

/* A new multi handle driven by the loop. The first keeps up to
 * UPSTREAM_CONNECTIONS_KEPT idle connections: the default cache is 4x the
 * transfers currently added, and each call is a transfer of its own that
 * leaves when done, so under load most connections were closed after one
 * use (about 1 new TCP connection per 14 calls in bench_login's setup, with
 * 50 logins at once). The others, used only in bursts, keep as many as
 * they take transfers. */
static struct shard *shard_new(struct fetch_loop *fl)
{
    struct shard *sh = calloc(1, sizeof *sh);
    if (!sh)
        return NULL;
    sh->fl = fl;
    sh->multi = curl_multi_init();
    sh->timer = evtimer_new(fl->base, timer_event_cb, sh);
    if (!sh->multi || !sh->timer) {
        shard_free(sh);
        return NULL;
    }
    curl_multi_setopt(sh->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(sh->multi, CURLMOPT_SOCKETDATA, sh);
    curl_multi_setopt(sh->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(sh->multi, CURLMOPT_TIMERDATA, sh);
    curl_multi_setopt(sh->multi, CURLMOPT_MAXCONNECTS,
                      fl->n_shards == 0 ? (long)UPSTREAM_CONNECTIONS_KEPT : (long)SHARD_TRANSFERS);
    return sh;
}

/* The first shard with room; a new one when all are full; past MAX_SHARDS
 * the least busy. NULL only when out of memory. */
static struct shard *pick_shard(struct fetch_loop *fl)
{
    struct shard *least = NULL;
    for (int i = 0; i < fl->n_shards; i++) {
        if (fl->shards[i]->running < SHARD_TRANSFERS)
            return fl->shards[i];
        if (!least || fl->shards[i]->running < least->running)
            least = fl->shards[i];
    }
    if (fl->n_shards == MAX_SHARDS)
        return least;
    struct shard *sh = shard_new(fl);
    if (sh)
        fl->shards[fl->n_shards++] = sh;
    return sh ? sh : least;
}

struct fetch_loop *fetch_loop_new(struct event_base *base)
{
    struct fetch_loop *fl = calloc(1, sizeof *fl);

    if (!fl)
        return NULL;
    fl->base = base;
    /* One thread uses the share (the loop's), so it needs no lock. */
    fl->share = curl_share_init();
    if (!fl->share ||
        curl_share_setopt(fl->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK ||
        curl_share_setopt(fl->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
        !pick_shard(fl)) {
        loop_destroy(fl);
        return NULL;
    }
    return fl;
}

/* From inside a fetch callback the multi handle is still being drained, so
 * only the requests are cancelled here and check_multi_info frees the rest
 * once the callback returns. */
void fetch_loop_free(struct fetch_loop *fl)
{
    if (!fl || fl->closing)
        return;
    while (fl->fetches)
        fetch_cancel(fl->fetches);
    if (fl->in_callback)
        fl->closing = 1;
    else
        loop_destroy(fl);
}

void fetch_cancel(struct fetch *f)
{
    if (!f || f->done)
        return;
    unlink_fetch(f);
    curl_multi_remove_handle(f->sh->multi, f->easy);
    f->sh->running--;
    fetch_free(f);
}

/* Only absolute http(s) URLs that curl itself can parse are accepted, so a
 * bad URL fails here rather than in a callback. The parsed URL is what curl
 * is given (CURLOPT_CURLU): one parse per call, not two. NULL if refused. */
static CURLU *parse_url(const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL;
    int ok = 0;

    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK)
        ok = strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0;
    curl_free(scheme);
    if (!ok) {
        curl_url_cleanup(u);
        return NULL;
    }
    return u;
}

static int token_ok(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
            return 0;
    return 1;
}

/* Request headers as curl wants them ("Name;" sends an empty value, since
 * "Name:" would delete it). CR/LF in a value would inject headers: refused.
 * curl's automatic "Expect: 100-continue" on large bodies costs a round trip
 * and is turned off unless the caller sets Expect. */
static int build_headers(struct fetch *f, const struct fetch_request *req)
{
    int has_expect = 0;

    for (size_t i = 0; i < req->n_headers; i++) {
        const char *name = req->headers[i].name, *value = req->headers[i].value;
        if (!value)
            value = "";
        if (!name || !token_ok(name) || strpbrk(value, "\r\n"))
            return -1;
        has_expect |= strcasecmp(name, "expect") == 0;

        size_t len = strlen(name) + strlen(value) + 3;
        char *line = malloc(len);
        if (!line)
            return -1;
        if (*value)
            snprintf(line, len, "%s: %s", name, value);
        else
            snprintf(line, len, "%s;", name);
        struct curl_slist *l = curl_slist_append(f->req_headers, line);
        free(line);
        if (!l)
            return -1;
        f->req_headers = l;
    }
    if (!has_expect) {
        struct curl_slist *l = curl_slist_append(f->req_headers, "Expect:");
        if (!l)
            return -1;
        f->req_headers = l;
    }
    return 0;
}

static int set_options(struct fetch *f, const struct fetch_request *req)
{
    CURL *e = f->easy;
    const char *method = req->method ? req->method : "GET";
    int post = req->body != NULL || strcmp(method, "POST") == 0;

#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if (curl_easy_setopt(e, opt, val) != CURLE_OK)                                             \
            return -1;                                                                             \
    } while (0)

    SETOPT(CURLOPT_CURLU, f->url);
    SETOPT(CURLOPT_SHARE, f->fl->share);
    SETOPT(CURLOPT_PRIVATE, f);
    SETOPT(CURLOPT_ERRORBUFFER, f->errbuf);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
    if (req->ca_file)
        SETOPT(CURLOPT_CAINFO, req->ca_file);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS,
           req->connect_timeout_ms > 0 ? req->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS);
    SETOPT(CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS);
    SETOPT(CURLOPT_ACCEPT_ENCODING, "");
    /* Content-Length above the limit fails before the body is read. */
    SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)f->max_body);
    /* WeChat's replies are a few hundred bytes: curl's smallest receive
     * buffer (1 KiB; the default is 16 KiB, per transfer) keeps the memory of
     * thousands of logins waiting on WeChat small (tests/bench/bench_login.sh
     * measures it); a larger reply takes more reads. */
    SETOPT(CURLOPT_BUFFERSIZE, 1024L);
    SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
    SETOPT(CURLOPT_WRITEDATA, f);
    SETOPT(CURLOPT_HTTPHEADER, f->req_headers);

    if (strcmp(method, "HEAD") == 0 && !post) {
        SETOPT(CURLOPT_NOBODY, 1L);
    } else {
        if (post) {
            SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body ? req->body_len : 0));
            SETOPT(CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "");
        }
        if (strcmp(method, post ? "POST" : "GET") != 0)
            SETOPT(CURLOPT_CUSTOMREQUEST, method);
    }
#undef SETOPT
    return 0;
}

struct fetch *fetch_start(struct fetch_loop *fl, const struct fetch_request *req, fetch_cb cb,
                          void *arg)
{
    if (fl->closing || !req->url || (req->method && !token_ok(req->method)))
        return NULL;
    CURLU *url = parse_url(req->url);
    if (!url)
        return NULL;
    struct fetch *f = calloc(1, sizeof *f);
    if (!f) {
        curl_url_cleanup(url);
        return NULL;
    }
    f->url = url;
    f->fl = fl;
    f->cb = cb;
    f->arg = arg;
    f->max_body = req->max_body ? req->max_body : DEFAULT_MAX_BODY;
    clock_gettime(CLOCK_MONOTONIC, &f->started);
    f->easy = curl_easy_init();
    f->sh = pick_shard(fl);
    if (!f->easy || !f->sh || build_headers(f, req) != 0 || set_options(f, req) != 0 ||
        curl_multi_add_handle(f->sh->multi, f->easy) != CURLM_OK) {
        fetch_free(f);
        return NULL;
    }
    f->sh->running++;
    link_fetch(f);
    return f;
}
