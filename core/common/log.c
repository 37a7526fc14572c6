/* Logging: JSON lines on stderr with secret redaction (see log.h). */
#include "log.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static enum log_level min_level = LOG_INFO;

static void write_all(const char *p, size_t n);

/* The registered secrets: an immutable array swapped under a lock, so a
 * reload can replace the set while workers log. */
static pthread_mutex_t secrets_lock = PTHREAD_MUTEX_INITIALIZER;
static char **secrets;
static size_t n_secrets;

static const char *level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level) { min_level = level; }

int log_parse_level(const char *name, enum log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

void log_set_secrets(const char *const *list, size_t n)
{
    char **fresh = n ? calloc(n, sizeof(char *)) : NULL;
    size_t kept = 0;
    for (size_t i = 0; i < n && fresh; i++) {
        /* Very short strings would mask innocent text and protect nothing. */
        if (list[i] && strlen(list[i]) >= 4)
            fresh[kept++] = strdup(list[i]);
    }
    pthread_mutex_lock(&secrets_lock);
    char **old = secrets;
    size_t n_old = n_secrets;
    secrets = fresh;
    n_secrets = kept;
    pthread_mutex_unlock(&secrets_lock);
    for (size_t i = 0; i < n_old; i++)
        free(old[i]);
    free(old);
}

/* Masks every registered secret inside buf (in place: "[redacted]" is never
 * longer than the shortest masked secret plus what follows is shifted).
 * cut: buf may end in the middle of a secret (a limit cut it, or the text
 * itself does), so a tail that begins a secret is masked too. */
static void redact_secrets_in(char *buf, int cut)
{
    static const char mask[] = "[redacted]";
    pthread_mutex_lock(&secrets_lock);
    for (size_t i = 0; i < n_secrets; i++) {
        size_t slen = strlen(secrets[i]);
        char *p = buf;
        /* Search on after each mask, so a secret that is part of the mask
         * itself cannot match again. */
        while ((p = strstr(p, secrets[i])) != NULL) {
            size_t mlen = slen < sizeof(mask) - 1 ? slen : sizeof(mask) - 1;
            memcpy(p, mask, mlen);
            memmove(p + mlen, p + slen, strlen(p + slen) + 1);
            p += mlen;
        }
        if (!cut)
            continue;
        /* A secret cut short by a buffer limit: mask its beginning too. */
        size_t blen = strlen(buf);
        for (size_t k = slen - 1; k >= 4; k--) {
            if (k <= blen && buf[blen - k] == secrets[i][0] &&
                memcmp(buf + blen - k, secrets[i], k) == 0) {
                size_t mlen = k < sizeof(mask) - 1 ? k : sizeof(mask) - 1;
                memcpy(buf + blen - k, mask, mlen);
                buf[blen - k + mlen] = '\0';
                break;
            }
        }
    }
    pthread_mutex_unlock(&secrets_lock);
}

static void redact_secrets(char *buf) { redact_secrets_in(buf, 1); }

int log_param_is_sensitive(const char *name, size_t len)
{
    static const char *const names[] = {
        "secret", "appsecret", "code", "access_token", "refresh_token", "ticket",    "wx_ticket",
        "token",  "password",  "key",  "api_key",      "sig",           "signature", "jwt",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i]) == len && strncasecmp(names[i], name, len) == 0)
            return 1;
    }
    return 0;
}

char *log_redact_url(const char *uri, char *out, size_t outsz)
{
    size_t o = 0;
    const char *q = strchr(uri, '?');
    if (outsz == 0)
        return out;
#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (o + 1 < outsz)                                                                         \
            out[o++] = (c);                                                                        \
    } while (0)
    for (const char *p = uri; *p && (!q || p <= q); p++)
        PUT(*p);
    if (q) {
        const char *p = q + 1;
        while (*p && *p != '#') {
            const char *end = p + strcspn(p, "&#");
            const char *eq = memchr(p, '=', (size_t)(end - p));
            size_t nlen = eq ? (size_t)(eq - p) : (size_t)(end - p);
            for (size_t i = 0; i < nlen; i++)
                PUT(p[i]);
            if (eq) {
                PUT('=');
                if (log_param_is_sensitive(p, nlen)) {
                    PUT('*');
                    PUT('*');
                    PUT('*');
                } else {
                    for (const char *v = eq + 1; v < end; v++)
                        PUT(*v);
                }
            }
            p = end;
            if (*p == '&') {
                PUT('&');
                p++;
            }
        }
    }
#undef PUT
    out[o] = '\0';
    return out;
}

/* A log line under construction: every append is clamped so that the line
 * never overflows, and escaped values leave TAIL bytes for the closing
 * fields (a long value is cut, the line stays valid JSON). */
#define LINE_CAP 8192
#define TAIL     256

struct line {
    char buf[LINE_CAP];
    size_t len;
};

static void line_printf(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void line_printf(struct line *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->buf + l->len, LINE_CAP - l->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        l->len += (size_t)n;
    if (l->len >= LINE_CAP)
        l->len = LINE_CAP - 1;
}

/* Appends s as the inside of a JSON string. */
static void line_json(struct line *l, const char *s)
{
    for (; s && *s && l->len + 7 < LINE_CAP - TAIL; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            l->buf[l->len++] = '\\';
            l->buf[l->len++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            l->len += (size_t)snprintf(l->buf + l->len, 7, "\\u%04x", c);
        } else {
            l->buf[l->len++] = (char)c;
        }
    }
    l->buf[l->len] = '\0';
}

static void line_time(struct line *l)
{
    struct timespec ts;
    struct tm tm;
    char when[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    line_printf(l, "{\"time\":\"%s.%03ldZ\"", when, ts.tv_nsec / 1000000);
}

/* Writes one finished line with a single write(2), so lines from several
 * threads never interleave. */
static void emit(struct line *l)
{
    redact_secrets(l->buf);
    size_t len = strlen(l->buf);
    if (len + 2 > LINE_CAP)
        len = LINE_CAP - 2;
    l->buf[len++] = '\n';
    write_all(l->buf, len);
}

void log_msg(enum log_level level, const char *rid, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char msg[4096];
    struct line l = {.len = 0};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    redact_secrets(msg); /* before escaping, which would change the secret's bytes */

    line_time(&l);
    line_printf(&l, ",\"level\":\"%s\"", level_names[level]);
    if (rid) {
        line_printf(&l, ",\"rid\":\"");
        line_json(&l, rid);
        line_printf(&l, "\"");
    }
    line_printf(&l, ",\"msg\":\"");
    line_json(&l, msg);
    line_printf(&l, "\"}");
    emit(&l);
}

/* ---- the access log ----
 *
 * One JSON line per request, formatted without stdio, into a buffer of the
 * worker thread, written in batches as nginx's `access_log ... buffer=64k
 * flush=20ms` does: when the buffer is full, 20 ms after the first line of a
 * batch, and when the worker stops. Under load that is one write(2) per
 * thousand lines or so (a write per idle moment of the loop cost a tenth of
 * /auth's throughput); at rest a line reaches the log within 20 ms. A thread
 * that did not attach a loop writes each line at once. */

#define ACCESS_BUFFER   (64 * 1024)
#define ACCESS_FLUSH_MS 20

struct access_buf {
    char *buf;
    size_t len;
    struct event *timer; /* ACCESS_FLUSH_MS after a batch's first line */
    time_t sec;          /* the cached "YYYY-MM-DDTHH:MM:SS" */
    char stamp[24];
};

static _Thread_local struct access_buf *abuf;
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

/* Whole lines, from any thread, never interleave: a batch is written under
 * one lock (a pipe takes only PIPE_BUF bytes atomically). */
static void write_all(const char *p, size_t n)
{
    pthread_mutex_lock(&write_lock);
    while (n) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w <= 0)
            break;
        p += w;
        n -= (size_t)w;
    }
    pthread_mutex_unlock(&write_lock);
}

void log_access_flush(void)
{
    if (abuf && abuf->len) {
        write_all(abuf->buf, abuf->len);
        abuf->len = 0;
    }
}

static void on_flush(evutil_socket_t fd, short what, void *arg) { log_access_flush(); }

int log_access_attach(struct event_base *base)
{
    struct access_buf *a = calloc(1, sizeof(*a));
    if (!a || !(a->buf = malloc(ACCESS_BUFFER))) {
        free(a);
        return -1;
    }
    a->timer = evtimer_new(base, on_flush, NULL);
    if (!a->timer) {
        free(a->buf);
        free(a);
        return -1;
    }
    abuf = a;
    return 0;
}

void log_access_detach(void)
{
    struct access_buf *a = abuf;
    if (!a)
        return;
    log_access_flush();
    event_free(a->timer);
    free(a->buf);
    free(a);
    abuf = NULL;
}

static char *put_json(char *p, char *end, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; s && *s && p + 6 < end; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(p, "\\u00", 4);
            p[4] = hex[c >> 4];
            p[5] = hex[c & 15];
            p += 6;
        } else {
            *p++ = (char)c;
        }
    }
    return p;
}

static char *put_raw(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

static char *put_num(char *p, unsigned long long v, int min_digits)
{
    char tmp[24];
    int i = 0;
    do {
        tmp[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v || i < min_digits);
    while (i)
        *p++ = tmp[--i];
    return p;
}

void log_access(const char *rid, const char *method, const char *uri, int status,
                double duration_ms, const char *client)
{
    if (LOG_INFO < min_level)
        return;
    char safe[2048], line[LINE_CAP];
    log_redact_url(uri ? uri : "", safe, sizeof(safe));
    /* Secrets are masked in the URL before escaping (which would change a
     * secret's bytes), a URL that ends in the beginning of one included, and
     * in the whole line after (which is never cut). */
    redact_secrets_in(safe, 1);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char stamp_buf[24];
    char *stamp = abuf ? abuf->stamp : stamp_buf;
    if (!abuf || abuf->sec != ts.tv_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(stamp, 24, "%Y-%m-%dT%H:%M:%S", &tm);
        if (abuf)
            abuf->sec = ts.tv_sec;
    }
    /* Escaped fields are clamped to leave room for what follows them. */
    char *p = line, *end = line + LINE_CAP - TAIL;
    p = put_raw(p, "{\"time\":\"");
    p = put_raw(p, stamp);
    *p++ = '.';
    p = put_num(p, (unsigned long long)(ts.tv_nsec / 1000000), 3);
    p = put_raw(p, "Z\",\"level\":\"info\",\"rid\":\"");
    p = put_json(p, end, rid);
    p = put_raw(p, "\",\"method\":\"");
    p = put_json(p, end, method);
    p = put_raw(p, "\",\"path\":\"");
    p = put_json(p, end, safe);
    p = put_raw(p, "\",\"status\":");
    if (status < 0) {
        *p++ = '-';
        status = -status;
    }
    p = put_num(p, (unsigned)status, 1);
    p = put_raw(p, ",\"ms\":");
    unsigned long long us = duration_ms > 0 ? (unsigned long long)(duration_ms * 1000 + 0.5) : 0;
    p = put_num(p, us / 1000, 1);
    *p++ = '.';
    p = put_num(p, us % 1000, 3);
    p = put_raw(p, ",\"client\":\"");
    p = put_json(p, line + LINE_CAP - 8, client);
    p = put_raw(p, "\"}");
    *p = '\0';
    redact_secrets_in(line, 0);
    size_t len = strlen(line);
    line[len++] = '\n';

    struct access_buf *a = abuf;
    if (!a) {
        write_all(line, len);
        return;
    }
    if (a->len + len > ACCESS_BUFFER)
        log_access_flush();
    memcpy(a->buf + a->len, line, len);
    if (a->len == 0) {
        struct timeval soon = {0, ACCESS_FLUSH_MS * 1000};
        event_add(a->timer, &soon);
    }
    a->len += len;
}
