/* URLs: the one module that parses them, over libcurl's URL API (curl_url),
 * for return URLs and allow-list entries, listen addresses and store URLs;
 * plus the encoder for query values.
 *
 * Encoding a query value is the product's hot path (every /auth builds an
 * authorize URL), so url_encode writes into the caller's buffer instead of
 * allocating. */
#ifndef WX_URL_H
#define WX_URL_H
#include <stddef.h>

#define URL_HOST_MAX 256
#define URL_PATH_MAX 2048

/* Percent-encodes src into dst as a URL component: letters, digits and
 * "-._~" stay, every other byte becomes %XX (upper-case hex), as WeChat's own
 * examples do. Returns the encoded length, or -1 when it does not fit in
 * dstsz (with its NUL). */
long url_encode(char *dst, size_t dstsz, const char *src);

/* The value of a hex digit, or -1. */
int url_hex_value(int ch);

/* A malloc'd, percent-decoded copy of s[0..len) ('+' stays '+'); *outlen
 * (when given) is its length, which may include NUL bytes. NULL when out of
 * memory. */
char *url_decode(const char *s, size_t len, size_t *outlen);

/* The parts of a URL as curl_url splits it, each malloc'd (NULL when
 * absent). The path is kept as written (not normalised); user, password and
 * host are percent-decoded. */
struct url_parts {
    char *scheme, *user, *password, *host, *port, *path, *query, *fragment;
    char *zone; /* an IPv6 zone id */
};

/* Splits url. any_scheme: accept schemes libcurl does not know (redis://).
 * 0, or -1 with *why (a static string). */
int url_split(const char *url, int any_scheme, struct url_parts *out, const char **why);
void url_parts_free(struct url_parts *p);

/* An absolute http(s) URL reduced to what an allow-list compares. The host
 * is lower-cased and normalised as a browser would (0x7f.1 is 127.0.0.1). */
struct url_http {
    int https;
    int port;                /* explicit, or the scheme's default */
    char host[URL_HOST_MAX]; /* an IPv6 literal keeps its brackets */
    char path[URL_PATH_MAX]; /* "/" at least; as written, without the query */
};

/* Parses an http or https URL without user info (a return URL, an allow-list
 * entry). 0, or -1 with *why. */
int url_parse_http(const char *url, struct url_http *out, const char **why);

/* Does path[0..len) hold a dot segment ("/../", "/.") or an encoded dot,
 * slash or backslash? Such paths only serve to disguise where a URL leads:
 * return URLs and allow-list entries may not have them. */
int url_path_disguised(const char *path, size_t len);

/* "host:port", "[v6]:port" or ":port" (every address). host is malloc'd,
 * without brackets. 0, or -1 with *why. */
int url_parse_listen(const char *s, char **host, int *port, const char **why);

/* Calls fn for each name=value of a query string, both percent-decoded (a
 * name without '=' has a NULL value); stops at, and returns, the first
 * non-zero return of fn. -1 when out of memory. */
int url_query_each(const char *query, int (*fn)(const char *name, const char *value, void *arg),
                   void *arg);

/* url with the parameters of pairs (percent-encoded "k=v&k2=v2") in its
 * query: parameters of the same names are dropped (names compare decoded),
 * the others keep their text and order, pairs come last, and the fragment
 * stays after the query ("https://a.com/p#/spa" -> "https://a.com/p?k=v#/spa").
 * With nothing to keep or add, the query stays as it was. malloc'd, or NULL
 * when out of memory. */
char *url_set_query(const char *url, const char *pairs);
/* url_set_query with one name=value, percent-encoded here. */
char *url_set_param(const char *url, const char *name, const char *value);

#endif
