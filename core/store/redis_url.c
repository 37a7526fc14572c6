/* The Redis store urls (see store_redis.h):
 *
 *   redis://[[user]:password@]host[:port][/db][?options]
 *   redis-sentinel://[[user]:password@]h1[:port],h2[:port],.../MASTER[/db][?options]
 *   redis-cluster://[[user]:password@]h1[:port],h2[:port],...[/][?options]
 *
 * options: prefix, timeout_ms, connect_timeout_ms, password_env. The
 * credentials are the data nodes' (sentinels are asked without them). Every
 * host is resolved here, once, on the main thread, so reconnecting on a
 * worker never waits for DNS. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "store_redis.h"
#include "url.h"

#define DEFAULT_PORT               6379
#define DEFAULT_SENTINEL_PORT      26379
#define DEFAULT_PREFIX             "wxgate:"
#define DEFAULT_TIMEOUT_MS         500
#define DEFAULT_CONNECT_TIMEOUT_MS 500
#define MAX_TIMEOUT_MS             600000
#define MAX_DB                     65535
#define MAX_MASTER_NAME            128

/* A whole number from lo to hi, digits only. */
static int parse_int(const char *s, size_t len, long lo, long hi, int *out)
{
    long long v;
    if (!len || s[0] == '-' || store_parse_ll(s, len, &v) < 0 || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* The numeric addresses of host, so that no connect ever resolves a name. */
static const char *resolve(struct redis_host *h, const char *host)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return "redis url: cannot resolve the host";
    for (ai = res; ai && h->naddrs < 4; ai = ai->ai_next) {
        if (getnameinfo(ai->ai_addr, ai->ai_addrlen, h->addrs[h->naddrs], RCONN_HOST_MAX, NULL, 0,
                        NI_NUMERICHOST) == 0) {
            h->addr_ptrs[h->naddrs] = h->addrs[h->naddrs];
            h->naddrs++;
        }
    }
    freeaddrinfo(res);
    return h->naddrs ? NULL : "redis url: cannot resolve the host";
}

struct options {
    struct redis_common *rc;
    char **password_env;
    const char *why;
};

/* One name=value of the query (both already decoded). */
static int parse_option(const char *name, const char *v, void *arg)
{
    struct options *o = arg;
    struct redis_common *rc = o->rc;
    size_t vlen = v ? strlen(v) : 0;
    if (!v) {
        o->why = "redis url: options are name=value";
    } else if (strcmp(name, "prefix") == 0) {
        free(rc->prefix);
        rc->prefix = strdup(v);
        rc->plen = vlen;
        if (!rc->prefix)
            o->why = "out of memory";
    } else if (strcmp(name, "timeout_ms") == 0) {
        if (parse_int(v, vlen, 1, MAX_TIMEOUT_MS, &rc->opts.timeout_ms) < 0)
            o->why = "redis url: timeout_ms must be from 1 to 600000";
    } else if (strcmp(name, "connect_timeout_ms") == 0) {
        if (parse_int(v, vlen, 1, MAX_TIMEOUT_MS, &rc->opts.connect_timeout_ms) < 0)
            o->why = "redis url: connect_timeout_ms must be from 1 to 600000";
    } else if (strcmp(name, "password_env") == 0) {
        free(*o->password_env);
        *o->password_env = strdup(v);
        if (!*o->password_env)
            o->why = "out of memory";
    } else {
        o->why = "redis url: unknown option (expected prefix, timeout_ms, connect_timeout_ms, "
                 "password_env)";
    }
    return o->why != NULL;
}

/* One host[:port] of the url into h (port defaults to default_port). */
static const char *parse_host(struct redis_host *h, const char *hostport, size_t len,
                              int default_port)
{
    char buf[300];
    struct url_parts p;
    const char *why = NULL;
    if (len == 0 || len > 256)
        return "redis url: missing host";
    snprintf(buf, sizeof buf, "redis://%.*s/", (int)len, hostport);
    if (url_split(buf, 1, &p, &why) != 0)
        return "redis url: bad host";
    h->port = default_port;
    if (!p.host || !*p.host || p.user || p.password)
        why = "redis url: missing host";
    else if (p.port && parse_int(p.port, strlen(p.port), 1, 65535, &h->port) < 0)
        why = "redis url: port must be from 1 to 65535";
    if (!why) {
        size_t hl = strlen(p.host);
        char *host = hl >= 2 && p.host[0] == '[' ? strndup(p.host + 1, hl - 2) : strdup(p.host);
        why = host ? resolve(h, host) : "out of memory";
        free(host);
    }
    url_parts_free(&p);
    return why;
}

/* The path: "/db" (redis://), "/MASTER[/db]" (sentinel), "/" or nothing
 * (cluster: one database only). */
static const char *parse_path(struct redis_common *rc, const char *path)
{
    if (!path || !*path || strcmp(path, "/") == 0)
        return rc->kind == REDIS_SENTINEL ? "redis url: name the master: "
                                            "redis-sentinel://h1:26379,h2:26379/MASTER/db"
                                          : NULL;
    const char *db = path + 1;
    if (rc->kind == REDIS_CLUSTER)
        return "redis url: a cluster has database 0 only: redis-cluster://h1:7000,h2:7001/";
    if (rc->kind == REDIS_SENTINEL) {
        const char *slash = strchr(db, '/');
        size_t n = slash ? (size_t)(slash - db) : strlen(db);
        if (n == 0 || n > MAX_MASTER_NAME || memchr(db, ' ', n))
            return "redis url: name the master: redis-sentinel://h1:26379,h2:26379/MASTER/db";
        rc->master = strndup(db, n);
        if (!rc->master)
            return "out of memory";
        if (!slash || !slash[1])
            return NULL;
        db = slash + 1;
    }
    if (parse_int(db, strlen(db), 0, MAX_DB, &rc->opts.db) < 0)
        return "redis url: the database must be a number from 0 to 65535";
    return NULL;
}

/* The password named by ?password_env=NAME, so configs need not hold it. */
static const char *password_from_env(struct redis_common *rc, const char *name)
{
    if (rc->password)
        return "redis url: give the password in the url or password_env, not both";
    const char *pw = getenv(name);
    if (!pw || !*pw)
        return "redis url: the variable named by password_env is not set";
    rc->password = strdup(pw);
    return rc->password ? NULL : "out of memory";
}

/* Everything but the host list: the url with its hosts replaced by one
 * placeholder, split by the URL module. */
static const char *parse_rest(struct redis_common *rc, const char *url, char **password_env)
{
    struct url_parts p;
    const char *why = NULL;
    if (url_split(url, 1, &p, &why) != 0) {
        /* curl's words, but never the url itself (it may hold the password) */
        static _Thread_local char msg[160];
        snprintf(msg, sizeof msg, "redis url: %s", why);
        return msg;
    }
    if (p.user && !p.password)
        why = "redis url: write credentials as redis://:PASSWORD@host";
    else if (p.fragment)
        why = "redis url: no #fragment";
    else
        why = parse_path(rc, p.path);
    if (!why && p.query) {
        struct options o = {rc, password_env, NULL};
        if (url_query_each(p.query, parse_option, &o) < 0)
            why = "out of memory";
        else
            why = o.why;
    }
    if (!why) {
        if (p.user && *p.user)
            rc->user = strdup(p.user);
        if (p.password && *p.password)
            rc->password = strdup(p.password);
    }
    if (p.password)
        explicit_bzero(p.password, strlen(p.password));
    url_parts_free(&p);
    return why;
}

const char *redis_url_parse(struct redis_common *rc, const char *url, enum redis_kind kind)
{
    static const char *const schemes[] = {"redis://", "redis-sentinel://", "redis-cluster://"};
    const char *scheme = schemes[kind];
    size_t sl = strlen(scheme);
    rc->kind = kind;
    rc->opts.timeout_ms = DEFAULT_TIMEOUT_MS;
    rc->opts.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    rc->opts.check_primary = kind == REDIS_SENTINEL;
    rc->prefix = strdup(DEFAULT_PREFIX);
    rc->plen = strlen(DEFAULT_PREFIX);
    if (!rc->prefix)
        return "out of memory";
    if (strncmp(url, scheme, sl) != 0)
        return "redis url: unknown scheme";

    /* authority = [userinfo@]hosts, up to the path, query or fragment */
    const char *auth = url + sl;
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
            at = auth + i;
    const char *hosts = at ? at + 1 : auth;
    size_t hlen = (size_t)(auth + alen - hosts);
    if (hlen == 0 || hosts[hlen - 1] == ',')
        return "redis url: missing host";

    /* The rest through the URL module, with one placeholder host. */
    size_t ulen = strlen(url);
    char *single = malloc(ulen + 32);
    char *password_env = NULL;
    if (!single)
        return "out of memory";
    snprintf(single, ulen + 32, "redis://%.*shost%s", (int)(hosts - auth), auth, auth + alen);
    const char *why = parse_rest(rc, single, &password_env);
    explicit_bzero(single, ulen + 32);
    free(single);
    if (!why && password_env)
        why = password_from_env(rc, password_env);
    free(password_env);

    /* The hosts: one for redis://, one or more for the others. */
    int default_port = kind == REDIS_SENTINEL ? DEFAULT_SENTINEL_PORT : DEFAULT_PORT;
    for (const char *h = hosts; !why && h < hosts + hlen;) {
        const char *comma = memchr(h, ',', (size_t)(hosts + hlen - h));
        size_t n = comma ? (size_t)(comma - h) : (size_t)(hosts + hlen - h);
        if (rc->nhosts == (kind == REDIS_SINGLE ? 1 : REDIS_MAX_HOSTS))
            why = kind == REDIS_SINGLE ? "redis url: one host only (redis-sentinel:// or "
                                         "redis-cluster:// take several)"
                                       : "redis url: at most 16 hosts";
        else
            why = parse_host(&rc->hosts[rc->nhosts++], h, n, default_port);
        h += n + 1;
    }
    rc->opts.user = rc->user;
    rc->opts.password = rc->password;
    return why;
}

void redis_common_free(struct redis_common *rc)
{
    free(rc->user);
    if (rc->password) {
        explicit_bzero(rc->password, strlen(rc->password));
        free(rc->password);
    }
    free(rc->prefix);
    free(rc->master);
}
