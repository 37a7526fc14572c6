/* Error pages (see page.h). */
#include "page.h"

#include "http.h"

#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void page_escape(char *buf, size_t cap, size_t *len, const char *s)
{
    if (cap == 0 || *len >= cap)
        return;
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

void page_busy(struct http_req *r)
{
    page_error(r, 503, "服务繁忙，请稍后再试", "The service is busy, please try again.", NULL);
}

/* Appends an SVG of url as a QR code (one rect per dark module). */
static void put_qr_svg(char *buf, size_t cap, size_t *len, const char *url)
{
    QRcode *qr = QRcode_encodeString(url, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (!qr)
        return;
    int w = qr->width, quiet = 4;
    char tmp[512];
    snprintf(tmp, sizeof(tmp),
             "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" width=\"220\" "
             "height=\"220\" shape-rendering=\"crispEdges\"><rect width=\"100%%\" "
             "height=\"100%%\" fill=\"#fff\"/><path fill=\"#000\" d=\"",
             w + 2 * quiet, w + 2 * quiet);
    put(buf, cap, len, tmp);
    for (int y = 0; y < w; y++) {
        for (int x = 0; x < w; x++) {
            if (qr->data[y * w + x] & 1) {
                snprintf(tmp, sizeof(tmp), "M%d %dh1v1h-1z", x + quiet, y + quiet);
                put(buf, cap, len, tmp);
            }
        }
    }
    put(buf, cap, len, "\"/></svg>");
    QRcode_free(qr);
}

void page_pc_login(struct http_req *r, const char *title, const char *qr_src)
{
    char page[8192];
    size_t n = 0;
    put(page, sizeof(page), &n,
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>");
    page_escape(page, sizeof(page), &n, title);
    put(page, sizeof(page), &n,
        " · 微信登录</title><style>body{font-family:-apple-system,sans-serif;margin:3em auto;"
        "max-width:40em;color:#333;text-align:center}h1{font-size:1.3em}p.en{color:#666}"
        "iframe{border:0;width:300px;height:400px}small{color:#999}</style></head><body><h1>");
    page_escape(page, sizeof(page), &n, title);
    put(page, sizeof(page), &n,
        "</h1><p>请使用微信扫描二维码登录</p><p class=\"en\">Scan the code with WeChat to log "
        "in.</p><iframe id=\"wx-qr\" title=\"WeChat QR login\" "
        "sandbox=\"allow-scripts allow-same-origin allow-top-navigation\" src=\"");
    page_escape(page, sizeof(page), &n, qr_src);
    put(page, sizeof(page), &n, "\"></iframe><p><small>请求编号 / Request ID: ");
    page_escape(page, sizeof(page), &n, http_req_id(r));
    put(page, sizeof(page), &n, "</small></p></body></html>\n");
    http_req_add_header(r, "Cache-Control", "no-store");
    http_reply(r, 200, "text/html; charset=utf-8", page, n);
}

void page_open_in_wechat(struct http_req *r, const char *url)
{
    size_t cap = 65536, n = 0;
    char *page = malloc(cap);
    if (!page) {
        page_busy(r);
        return;
    }
    page[0] = '\0';
    put(page, cap, &n,
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        "<title>请在微信中打开</title><style>body{font-family:-apple-system,sans-serif;"
        "max-width:32em;margin:3em auto;padding:0 1em;color:#333;text-align:center}"
        "h1{font-size:1.3em}p.en{color:#666}small{color:#999;word-break:break-all}</style>"
        "</head><body><h1>请在微信中打开此链接</h1>"
        "<p class=\"en\">Please open this link in WeChat: scan the code with WeChat, or send "
        "the link to WeChat on your phone.</p>");
    put_qr_svg(page, cap, &n, url);
    put(page, cap, &n, "<p><small>");
    page_escape(page, cap, &n, url);
    put(page, cap, &n, "</small></p><p><small>请求编号 / Request ID: ");
    page_escape(page, cap, &n, http_req_id(r));
    put(page, cap, &n, "</small></p></body></html>\n");
    http_req_add_header(r, "Cache-Control", "no-store");
    http_reply(r, 403, "text/html; charset=utf-8", page, n);
    free(page);
}
