/* Logging: one JSON object per line on stderr, with redaction built in.
 *
 * Every line passes through the redactor before it is written: any registered
 * secret (app secrets, cookie/ticket/API keys) is replaced by "[redacted]",
 * and URLs logged through log_redact_url() have the values of sensitive query
 * parameters (secret, code, access_token, refresh_token, ticket, ...) masked.
 * Tokens that come from WeChat are never passed to the logger in the first
 * place; the masks are the second line of defence. */
#ifndef WX_LOG_H
#define WX_LOG_H
#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
int log_parse_level(const char *name, enum log_level *out); /* 0 ok, -1 unknown */

/* Replace the set of strings that must never be printed (copied; thread-safe). */
void log_set_secrets(const char *const *secrets, size_t n);

/* A free-form message. rid may be NULL. */
void log_msg(enum log_level level, const char *rid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_msg(LOG_DEBUG, NULL, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, NULL, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, NULL, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, NULL, __VA_ARGS__)

/* The access log line of one request. Buffered on threads that attached
 * their event loop, else written at once. */
void log_access(const char *rid, const char *method, const char *uri, int status,
                double duration_ms, const char *client);

struct event_base;
/* Buffers this thread's access log lines, flushed by base's loop 20 ms
 * after a batch's first line, and when full. 0 ok. */
int log_access_attach(struct event_base *base);
/* Writes what this thread has buffered. */
void log_access_flush(void);
/* Flushes and stops buffering (the worker is stopping). */
void log_access_detach(void);

/* Copy uri into out (NUL-terminated, truncated to outsz) with the values of
 * sensitive query parameters replaced by "***". Returns out. */
char *log_redact_url(const char *uri, char *out, size_t outsz);

/* Is this query parameter name one whose value is never logged? */
int log_param_is_sensitive(const char *name, size_t len);

#endif
