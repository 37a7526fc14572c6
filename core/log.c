/* Logging: JSON lines on stderr with secret redaction (see log.h). */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static enum log_level min_level = LOG_INFO;

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
 * longer than the shortest masked secret plus what follows is shifted). */
static void redact_secrets(char *buf)
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
        /* A secret cut short by a buffer limit: mask its beginning too. */
        size_t blen = strlen(buf);
        for (size_t k = slen - 1; k >= 4; k--) {
            if (k <= blen && memcmp(buf + blen - k, secrets[i], k) == 0) {
                size_t mlen = k < sizeof(mask) - 1 ? k : sizeof(mask) - 1;
                memcpy(buf + blen - k, mask, mlen);
                buf[blen - k + mlen] = '\0';
                break;
            }
        }
    }
    pthread_mutex_unlock(&secrets_lock);
}

int log_param_is_sensitive(const char *name, size_t len)
{
    static const char *const names[] = {
        "secret", "appsecret", "code", "access_token", "refresh_token", "ticket",
        "wx_ticket", "token", "password", "key", "api_key", "sig", "signature", "jwt",
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
#define PUT(c) do { if (o + 1 < outsz) out[o++] = (c); } while (0)
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
                    PUT('*'); PUT('*'); PUT('*');
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
#define TAIL 256

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
    ssize_t w = write(STDERR_FILENO, l->buf, len);
    (void)w;
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

void log_access(const char *rid, const char *method, const char *uri, int status,
                double duration_ms, const char *client)
{
    if (LOG_INFO < min_level)
        return;
    char safe[2048];
    struct line l = {.len = 0};
    log_redact_url(uri ? uri : "", safe, sizeof(safe));
    redact_secrets(safe);
    line_time(&l);
    line_printf(&l, ",\"level\":\"info\",\"rid\":\"");
    line_json(&l, rid);
    line_printf(&l, "\",\"method\":\"");
    line_json(&l, method);
    line_printf(&l, "\",\"path\":\"");
    line_json(&l, safe);
    line_printf(&l, "\",\"status\":%d,\"ms\":%.3f,\"client\":\"", status, duration_ms);
    line_json(&l, client);
    line_printf(&l, "\"}");
    emit(&l);
}
