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

/* Appends s to buf as the inside of a JSON string. */
static size_t json_escape(char *buf, size_t cap, size_t o, const char *s)
{
    for (; s && *s && o + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(buf + o, cap - o, "\\u%04x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o] = '\0';
    return o;
}

static size_t put_time(char *buf, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, cap, "{\"time\":\"%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(buf + n, cap - n, ".%03ldZ\"", ts.tv_nsec / 1000000);
    return n;
}

/* Writes one finished line with a single write(2), so lines from several
 * threads never interleave. */
static void emit(char *buf, size_t len, size_t cap)
{
    redact_secrets(buf);
    len = strlen(buf);
    if (len + 2 > cap)
        len = cap - 2;
    buf[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, buf, len);
    (void)w;
}

void log_msg(enum log_level level, const char *rid, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char msg[4096];
    char line[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    redact_secrets(msg); /* before escaping, which would change the secret's bytes */

    size_t o = put_time(line, sizeof(line));
    o += (size_t)snprintf(line + o, sizeof(line) - o, ",\"level\":\"%s\"", level_names[level]);
    if (rid) {
        o += (size_t)snprintf(line + o, sizeof(line) - o, ",\"rid\":\"");
        o = json_escape(line, sizeof(line), o, rid);
        o += (size_t)snprintf(line + o, sizeof(line) - o, "\"");
    }
    o += (size_t)snprintf(line + o, sizeof(line) - o, ",\"msg\":\"");
    o = json_escape(line, sizeof(line), o, msg);
    snprintf(line + o, sizeof(line) - o, "\"}");
    emit(line, strlen(line), sizeof(line));
}

void log_access(const char *rid, const char *method, const char *uri, int status,
                double duration_ms, const char *client)
{
    if (LOG_INFO < min_level)
        return;
    char safe[2048];
    char line[8192];
    log_redact_url(uri ? uri : "", safe, sizeof(safe));
    redact_secrets(safe);
    size_t o = put_time(line, sizeof(line));
    o += (size_t)snprintf(line + o, sizeof(line) - o, ",\"level\":\"info\",\"rid\":\"");
    o = json_escape(line, sizeof(line), o, rid);
    o += (size_t)snprintf(line + o, sizeof(line) - o, "\",\"method\":\"");
    o = json_escape(line, sizeof(line), o, method);
    o += (size_t)snprintf(line + o, sizeof(line) - o, "\",\"path\":\"");
    o = json_escape(line, sizeof(line), o, safe);
    o += (size_t)snprintf(line + o, sizeof(line) - o,
                          "\",\"status\":%d,\"ms\":%.3f,\"client\":\"", status, duration_ms);
    o = json_escape(line, sizeof(line), o, client);
    snprintf(line + o, sizeof(line) - o, "\"}");
    emit(line, strlen(line), sizeof(line));
}
