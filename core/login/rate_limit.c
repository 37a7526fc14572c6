/* Per-client request limits (see rate_limit.h). */
#include "rate_limit.h"

#include "arena.h"
#include "config.h"
#include "http.h"
#include "login.h"
#include "strbuf.h"

#include <string.h>
#include <time.h>

void rate_limit_client(const struct config *cfg, struct http_req *r, char *out, size_t size)
{
    const char *peer = http_req_client(r);
    str_copy(out, size, peer);
    const char *xff = NULL;
    for (size_t i = 0; i < cfg->limits.n_trusted_proxies && !xff; i++)
        if (strcmp(cfg->limits.trusted_proxies[i], peer) == 0)
            xff = http_req_header(r, "X-Forwarded-For");
    if (!xff)
        return;
    const char *last = strrchr(xff, ',');
    last = last ? last + 1 : xff;
    last += strspn(last, " \t");
    size_t n = strcspn(last, " \t");
    if (n > 0 && n < size && n <= 45 && strspn(last, "0123456789abcdefABCDEF.:") >= n) {
        memcpy(out, last, n);
        out[n] = '\0';
    }
}

struct rate_check {
    int per_minute;
    rate_limit_cb cb;
    void *arg;
};

static void on_count(const struct store_reply *rep, void *arg)
{
    struct rate_check *rc = arg;
    rc->cb(!(rep->status == STORE_OK && rep->number > rc->per_minute), rc->arg);
}

void rate_limit_check(store_conn_t *store, const struct config *cfg, struct http_req *r,
                      const char *what, int per_minute, rate_limit_cb cb, void *arg)
{
    char client[64], key[128];
    rate_limit_client(cfg, r, client, sizeof(client));
    struct strbuf b = strbuf_init(key, sizeof(key));
    strbuf_put(&b, KEY_RATE);
    strbuf_put(&b, what);
    strbuf_put(&b, ":");
    strbuf_put(&b, client);
    strbuf_put(&b, ":");
    strbuf_num(&b, (long)time(NULL) / 60);
    /* In the request's arena: the request lives until it is answered, and
     * the count comes back before that. */
    struct rate_check *rc = arena_alloc(http_req_arena(r), sizeof(*rc));
    if (!rc || strbuf_done(&b, key) < 0) {
        cb(1, arg);
        return;
    }
    *rc = (struct rate_check){per_minute, cb, arg};
    if (store_incr(store, key, strlen(key), 1, 61000, on_count, rc) != 0)
        cb(1, arg);
}

long rate_limit_retry_after(void) { return 60 - (long)(time(NULL) % 60); }
