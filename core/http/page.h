/* Plain HTML pages for people: errors in Chinese and English with the request
 * id and a retry link, everything escaped. No secrets or internals reach a
 * page: callers pass fixed texts, never upstream replies or error strings. */
#ifndef WX_PAGE_H
#define WX_PAGE_H
#include <stddef.h>

struct http_req;

/* Appends s to buf (capacity cap, length *len) with HTML escaping. */
void page_escape(char *buf, size_t cap, size_t *len, const char *s);

/* Replies with an error page. retry_url may be NULL (no retry link). */
void page_error(struct http_req *r, int status, const char *zh, const char *en,
                const char *retry_url);

/* 503 "the service is busy, please try again": out of memory, or the store
 * did not answer. */
void page_busy(struct http_req *r);

/* For a browser outside WeChat: "open this link in WeChat", with the link
 * as a QR code (SVG, drawn from libqrencode) for a desktop user to scan. */
void page_open_in_wechat(struct http_req *r, const char *url);

/* The PC QR login embedded in the gateway's own page (WeChat's inline form):
 * qr_src is the qrconnect URL for the iframe, which sends the whole page on
 * to the callback once the phone confirms. */
void page_pc_login(struct http_req *r, const char *title, const char *qr_src);

#endif
