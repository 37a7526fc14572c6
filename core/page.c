/* Error pages (see page.h). */
#include "page.h"

#include "http.h"

#include <stdio.h>
#include <string.h>

void page_escape(char *buf, size_t cap, size_t *len, const char *s)
{
    for (; s && *s && *len + 7 < cap; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        }
        if (rep) {
            size_t n = strlen(rep);
            memcpy(buf + *len, rep, n);
            *len += n;
        } else {
            buf[(*len)++] = *s;
        }
    }
    buf[*len] = '\0';
}

static void put(char *buf, size_t cap, size_t *len, const char *s)
{
    size_t n = strlen(s);
    if (*len + n >= cap)
        n = cap - *len - 1;
    memcpy(buf + *len, s, n);
    *len += n;
    buf[*len] = '\0';
}

void page_error(struct http_req *r, int status, const char *zh, const char *en,
                const char *retry_url)
{
    char page[8192];
    size_t n = 0;
    put(page, sizeof(page), &n,
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        "<title>");
    page_escape(page, sizeof(page), &n, zh);
    put(page, sizeof(page), &n,
        "</title><style>body{font-family:-apple-system,sans-serif;max-width:32em;margin:3em auto;"
        "padding:0 1em;color:#333}h1{font-size:1.3em}p.en{color:#666}small{color:#999}"
        "a.btn{display:inline-block;margin-top:1em;padding:.6em 1.4em;background:#07c160;"
        "color:#fff;border-radius:4px;text-decoration:none}</style></head><body><h1>");
    page_escape(page, sizeof(page), &n, zh);
    put(page, sizeof(page), &n, "</h1><p class=\"en\">");
    page_escape(page, sizeof(page), &n, en);
    put(page, sizeof(page), &n, "</p>");
    if (retry_url) {
        put(page, sizeof(page), &n, "<a class=\"btn\" href=\"");
        page_escape(page, sizeof(page), &n, retry_url);
        put(page, sizeof(page), &n, "\">重试 / Try again</a>");
    }
    put(page, sizeof(page), &n, "<p><small>请求编号 / Request ID: ");
    page_escape(page, sizeof(page), &n, http_req_id(r));
    put(page, sizeof(page), &n, "</small></p></body></html>\n");
    http_req_add_header(r, "Cache-Control", "no-store");
    http_reply(r, status, "text/html; charset=utf-8", page, n);
}
