/* URL helpers shared by the login flow and the WeChat client.
 *
 * Encoding a query value is the product's hot path (every /auth builds an
 * authorize URL), so it writes into the caller's buffer instead of
 * allocating. */
#ifndef WX_URL_H
#define WX_URL_H
#include <stddef.h>

/* Percent-encodes src into dst as a URL component: letters, digits and
 * "-._~" stay, every other byte becomes %XX (upper-case hex), as
 * evhttp_uriencode and WeChat's own examples do. Returns the encoded length,
 * or -1 when it does not fit in dstsz (with its NUL). */
long url_encode(char *dst, size_t dstsz, const char *src);

#endif
