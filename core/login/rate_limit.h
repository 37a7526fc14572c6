/* Per-client limits on anonymous endpoints, like nginx's limit_req: a
 * counter per endpoint, client and minute in the store, so that instances
 * sharing a Redis share the count. /auth stores a state per call and
 * /api/mp/login costs a call to WeChat per call: without a limit, one
 * client could fill the store or spend the app's WeChat allowance. */
#ifndef WX_RATE_LIMIT_H
#define WX_RATE_LIMIT_H
#include <stddef.h>

#include "store.h"

struct config;
struct http_req;

/* The client's address into out: the peer, or behind one of
 * limits.trusted_proxies the last X-Forwarded-For address. */
void rate_limit_client(const struct config *cfg, struct http_req *r, char *out, size_t size);

/* allowed: 1 within the limit (or when the store cannot count: a store
 * outage does not lock users out), 0 over it. */
typedef void (*rate_limit_cb)(int allowed, void *arg);

/* Counts this request against `what` (a short name: "auth", "mp") for its
 * client and calls cb once, now or later. per_minute must be > 0. */
void rate_limit_check(store_conn_t *store, const struct config *cfg, struct http_req *r,
                      const char *what, int per_minute, rate_limit_cb cb, void *arg);

/* Seconds until the current minute ends: the Retry-After of a refusal. */
long rate_limit_retry_after(void);

#endif
