/* URLs (see url.h). */
#include "url.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

long url_encode(char *dst, size_t dstsz, const char *src)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
        unsigned char c = *p;
        int keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '.' || c == '_' || c == '~';
        size_t need = keep ? 1 : 3;
        if (o + need >= dstsz)
            return -1;
        if (keep) {
            dst[o++] = (char)c;
        } else {
            dst[o++] = '%';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        }
    }
    if (o >= dstsz)
        return -1;
    dst[o] = '\0';
    return (long)o;
}

int url_hex_value(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

char *url_decode(const char *s, size_t len, size_t *outlen)
{
    char *out = malloc(len + 1), *p = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = url_hex_value(s[i + 1])) >= 0 &&
            (lo = url_hex_value(s[i + 2])) >= 0) {
            *p++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *p++ = s[i];
        }
    }
    *p = '\0';
    if (outlen)
        *outlen = (size_t)(p - out);
    return out;
}

void url_parts_free(struct url_parts *p)
{
    char **f[] = {&p->scheme, &p->user,  &p->password, &p->host, &p->port,
                  &p->path,   &p->query, &p->fragment, &p->zone};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        free(*f[i]);
        *f[i] = NULL;
    }
}

/* A part as a malloc'd string (curl's own is freed with curl_free). */
static int get_part(CURLU *h, CURLUPart what, unsigned flags, char **out)
{
    char *v = NULL;
    *out = NULL;
    CURLUcode rc = curl_url_get(h, what, &v, flags);
    if (rc != CURLUE_OK)
        return rc == CURLUE_OUT_OF_MEMORY ? -1 : 0; /* absent */
    *out = strdup(v);
    curl_free(v);
    return *out ? 0 : -1;
}

int url_split(const char *url, int any_scheme, struct url_parts *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    CURLU *h = curl_url();
    if (!h) {
        *why = "out of memory";
        return -1;
    }
    unsigned flags = CURLU_PATH_AS_IS | (any_scheme ? CURLU_NON_SUPPORT_SCHEME : 0);
    CURLUcode rc = curl_url_set(h, CURLUPART_URL, url, flags);
    if (rc != CURLUE_OK) {
        *why = curl_url_strerror(rc);
        curl_url_cleanup(h);
        return -1;
    }
    char *zone = NULL;
    int bad = get_part(h, CURLUPART_SCHEME, 0, &out->scheme) ||
              get_part(h, CURLUPART_USER, CURLU_URLDECODE, &out->user) ||
              get_part(h, CURLUPART_PASSWORD, CURLU_URLDECODE, &out->password) ||
              get_part(h, CURLUPART_HOST, CURLU_URLDECODE, &out->host) ||
              get_part(h, CURLUPART_PORT, 0, &out->port) ||
              get_part(h, CURLUPART_PATH, 0, &out->path) ||
              get_part(h, CURLUPART_QUERY, 0, &out->query) ||
              get_part(h, CURLUPART_FRAGMENT, 0, &out->fragment) ||
              get_part(h, CURLUPART_ZONEID, 0, &zone);
    curl_url_cleanup(h);
    if (bad) {
        free(zone);
        url_parts_free(out);
        *why = "out of memory";
        return -1;
    }
    out->zone = zone;
    return 0;
}

/* Is the URL written the way it will be read? "scheme://" with both
 * slashes, and the authority exactly host[:port] as parsed: no empty port,
 * and no host that the parser had to normalise (percent-encoding, 2130706433
 * for 127.0.0.1, "https:///x" read as host "x"). Whatever a browser might
 * make of such a URL, a return URL or an allow-list entry has no reason to
 * be written that way. */
static int plainly_written(const char *url, const struct url_http *u)
{
    const char *auth = strstr(url, "://");
    if (!auth || (size_t)(auth - url) != (u->https ? 5u : 4u))
        return 0;
    auth += 3;
    size_t alen = strcspn(auth, "/?#"), hlen = strlen(u->host);
    if (alen < hlen || strncasecmp(auth, u->host, hlen) != 0)
        return 0;
    if (alen == hlen)
        return 1;
    if (auth[hlen] != ':' || alen == hlen + 1)
        return 0;
    for (size_t i = hlen + 1; i < alen; i++)
        if (auth[i] < '0' || auth[i] > '9')
            return 0;
    return 1;
}

int url_parse_http(const char *url, struct url_http *out, const char **why)
{
    struct url_parts p;
    if (url_split(url, 0, &p, why) != 0)
        return -1;
    int rc = -1;
    if (!p.scheme || (strcmp(p.scheme, "http") != 0 && strcmp(p.scheme, "https") != 0))
        *why = "not an http or https URL";
    else if (p.user || p.password)
        *why = "user info in the URL";
    else if (!p.host || !*p.host || strlen(p.host) >= sizeof(out->host))
        *why = "no host, or a host too long";
    else if (p.path && strlen(p.path) >= sizeof(out->path))
        *why = "path too long";
    else {
        out->https = strcmp(p.scheme, "https") == 0;
        out->port = p.port ? atoi(p.port) : (out->https ? 443 : 80);
        size_t i = 0;
        for (; p.host[i]; i++) {
            char c = p.host[i];
            out->host[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
        }
        out->host[i] = '\0';
        snprintf(out->path, sizeof(out->path), "%s", p.path && *p.path ? p.path : "/");
        if (out->port < 1 || out->port > 65535)
            *why = "port out of range";
        else if (p.zone)
            *why = "IPv6 zone ids are not supported";
        else if (!plainly_written(url, out))
            *why = "not written as scheme://host[:port]/path";
        else
            rc = 0;
    }
    url_parts_free(&p);
    return rc;
}

/* Is the host of s ("host:port" or "[v6%zone]:port") what curl made of it
 * (parsed is "host" or "[v6]")? curl normalises "8" to "0.0.0.8", which
 * getaddrinfo would too, but a listen address should say what it means. */
static int host_as_written(const char *s, const char *parsed)
{
    size_t plen = strlen(parsed);
    if (s[0] == '[') {
        size_t raw = strcspn(s + 1, "%]");
        return plen >= 2 && raw == plen - 2 && strncasecmp(s + 1, parsed + 1, raw) == 0;
    }
    const char *colon = strrchr(s, ':');
    return colon && (size_t)(colon - s) == plen && strncasecmp(s, parsed, plen) == 0;
}

int url_parse_listen(const char *s, char **host, int *port, const char **why)
{
    char buf[512];
    /* ":port" means every address; curl needs a host to parse. An IPv6 zone
     * ("[fe80::1%eth0]") is written %25eth0 in a URL. */
    int any = s[0] == ':';
    const char *pct = s[0] == '[' ? strchr(s, '%') : NULL;
    int n = pct ? snprintf(buf, sizeof(buf), "http://%.*s%%25%s", (int)(pct - s), s, pct + 1)
                : snprintf(buf, sizeof(buf), "http://%s%s", any ? "0.0.0.0" : "", s);
    if (n < 0 || n >= (int)sizeof(buf)) {
        *why = "too long";
        return -1;
    }
    struct url_parts p;
    if (url_split(buf, 0, &p, why) != 0)
        return -1;
    int rc = -1;
    char *end = NULL;
    long num = p.port ? strtol(p.port, &end, 10) : -1;
    if (p.user || p.password || p.query || p.fragment || (p.path && strcmp(p.path, "/") != 0) ||
        strpbrk(s, "/?#@"))
        *why = "expected host:port";
    else if (!p.port)
        *why = "no port";
    else if (num < 0 || num > 65535 || *end)
        *why = "port out of range";
    else if (!any && !host_as_written(s, p.host))
        *why = "the host is not written as it is read";
    else if (pct && (!p.zone || !*p.zone || strchr(p.zone, '%')))
        *why = "bad IPv6 zone";
    else {
        /* The host as written (curl agreed it is one): brackets dropped. */
        if (any)
            *host = strdup("0.0.0.0");
        else if (s[0] == '[')
            *host = strndup(s + 1, strcspn(s + 1, "]"));
        else
            *host = strndup(s, (size_t)(strrchr(s, ':') - s));
        *port = (int)num;
        rc = *host ? 0 : -1;
        if (rc)
            *why = "out of memory";
    }
    url_parts_free(&p);
    return rc;
}

int url_query_each(const char *query, int (*fn)(const char *name, const char *value, void *arg),
                   void *arg)
{
    const char *p = query ? query : "";
    while (*p) {
        size_t len = strcspn(p, "&");
        if (len) {
            const char *eq = memchr(p, '=', len);
            size_t nlen = eq ? (size_t)(eq - p) : len;
            char *name = url_decode(p, nlen, NULL);
            char *value = eq ? url_decode(eq + 1, len - nlen - 1, NULL) : NULL;
            if (!name || (eq && !value)) {
                free(name);
                free(value);
                return -1;
            }
            int rc = fn(name, value, arg);
            free(name);
            free(value);
            if (rc)
                return rc;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return 0;
}

int url_path_disguised(const char *path, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        /* Encoded dots, slashes and backslashes only serve to disguise a path. */
        if (path[i] == '%' && i + 3 <= len &&
            (strncasecmp(path + i, "%2e", 3) == 0 || strncasecmp(path + i, "%2f", 3) == 0 ||
             strncasecmp(path + i, "%5c", 3) == 0))
            return 1;
        if (path[i] == '.' && (i == 0 || path[i - 1] == '/')) {
            size_t j = i + 1;
            if (j < len && path[j] == '.')
                j++;
            if (j == len || path[j] == '/')
                return 1;
        }
    }
    return 0;
}

/* Is the (encoded) name of segment seg[0..len) one of the names in pairs?
 * Names compare decoded, with '+' as a space, as a form decoder reads them. */
static int name_in(const char *seg, size_t len, const char *pairs)
{
    size_t nlen = strcspn(seg, "=&");
    if (nlen > len)
        nlen = len;
    size_t a_len, b_len;
    char *a = url_decode(seg, nlen, &a_len);
    if (!a)
        return 0;
    for (char *c = a; c < a + a_len; c++)
        if (*c == '+')
            *c = ' ';
    int found = 0;
    for (const char *p = pairs; *p && !found;) {
        size_t plen = strcspn(p, "&"), pn = strcspn(p, "=&");
        char *b = url_decode(p, pn < plen ? pn : plen, &b_len);
        if (b) {
            for (char *c = b; c < b + b_len; c++)
                if (*c == '+')
                    *c = ' ';
            found = a_len == b_len && memcmp(a, b, a_len) == 0;
            free(b);
        }
        p += plen + (p[plen] == '&');
    }
    free(a);
    return found;
}

char *url_set_query(const char *url, const char *pairs)
{
    size_t base = strcspn(url, "#");
    size_t path_end = strcspn(url, "?#");
    const char *frag = url + base;
    const char *query = path_end < base ? url + path_end + 1 : NULL;
    size_t qlen = query ? (size_t)(url + base - query) : 0;
    size_t cap = strlen(url) + strlen(pairs) + 3;
    char *out = malloc(cap), *o = out;
    if (!out)
        return NULL;
    memcpy(o, url, path_end);
    o += path_end;
    int any = 0;
    for (size_t i = 0; i < qlen;) {
        size_t slen = strcspn(query + i, "&");
        if (slen > qlen - i)
            slen = qlen - i;
        if (slen > 0 && !name_in(query + i, slen, pairs)) {
            *o++ = any ? '&' : '?';
            memcpy(o, query + i, slen);
            o += slen;
            any = 1;
        }
        i += slen + 1;
    }
    if (*pairs) {
        *o++ = any ? '&' : '?';
        memcpy(o, pairs, strlen(pairs));
        o += strlen(pairs);
        any = 1;
    }
    if (!any && query) { /* nothing kept and nothing added: the query as it was */
        memcpy(o, query - 1, qlen + 1);
        o += qlen + 1;
    }
    memcpy(o, frag, strlen(frag) + 1);
    return out;
}

char *url_set_param(const char *url, const char *name, const char *value)
{
    size_t cap = (strlen(name) + strlen(value)) * 3 + 2;
    char *pair = malloc(cap);
    if (!pair)
        return NULL;
    long n = url_encode(pair, cap, name);
    pair[n] = '=';
    url_encode(pair + n + 1, cap - (size_t)n - 1, value);
    char *out = url_set_query(url, pair);
    free(pair);
    return out;
}
