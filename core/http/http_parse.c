/* The strict HTTP/1.1 request parser (see http_parse.h). */
#include "http_parse.h"

#include <string.h>
#include <strings.h>

/* RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
 * "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
int http_is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field values: VCHAR, obs-text, SP and HTAB (RFC 9110 5.5). */
static int is_value_byte(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

/* Request targets: visible ASCII and obs-text, no space. '#' is not part of a
 * request target (fragments are never sent). */
static int is_target_byte(unsigned char c) { return c > 0x20 && c != 0x7f && c != '#'; }

#define REFUSE(status, reason)                                                                     \
    do {                                                                                           \
        *why = (reason);                                                                           \
        return -(status);                                                                          \
    } while (0)

static int name_is(const struct http_field *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && strncasecmp(f->name, name, n) == 0;
}

/* Is this comma-separated token list item equal to tok (case-insensitive)?
 * Walks value and calls back for each trimmed element. */
typedef int (*list_item_fn)(const char *item, size_t len, void *arg);

static int each_list_item(const char *v, size_t len, list_item_fn fn, void *arg)
{
    size_t i = 0;
    for (;;) {
        size_t start = i;
        while (i < len && v[i] != ',')
            i++;
        size_t a = start, b = i;
        while (a < b && (v[a] == ' ' || v[a] == '\t'))
            a++;
        while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
            b--;
        int rc = fn(v + a, b - a, arg);
        if (rc)
            return rc;
        if (i >= len)
            return 0;
        i++; /* past the comma */
    }
}

static int item_eq(const char *item, size_t len, const char *tok)
{
    size_t n = strlen(tok);
    return len == n && strncasecmp(item, tok, n) == 0;
}

struct conn_tokens {
    int close, keep_alive;
};

static int on_connection_item(const char *item, size_t len, void *arg)
{
    struct conn_tokens *t = arg;
    if (item_eq(item, len, "close"))
        t->close = 1;
    else if (item_eq(item, len, "keep-alive"))
        t->keep_alive = 1;
    return 0;
}

struct te_codings {
    int count;      /* codings seen */
    int chunked_at; /* index of the last "chunked", or -1 */
    int chunked_count;
    int bad; /* an empty or invalid element */
};

static int on_te_item(const char *item, size_t len, void *arg)
{
    struct te_codings *t = arg;
    if (len == 0) {
        t->bad = 1;
        return 1;
    }
    for (size_t i = 0; i < len; i++)
        if (!http_is_tchar((unsigned char)item[i]) && item[i] != ';' && item[i] != '=' &&
            item[i] != ' ' && item[i] != '\t' && item[i] != '"') {
            t->bad = 1;
            return 1;
        }
    if (item_eq(item, len, "chunked")) {
        t->chunked_at = t->count;
        t->chunked_count++;
    }
    t->count++;
    return 0;
}

/* 1*DIGIT, at most 18 of them (no sign, no list, no space). */
static long long parse_length(const char *v, size_t len)
{
    if (len == 0 || len > 18)
        return -1;
    long long n = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    return n;
}

static int host_value_ok(const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c <= 0x20 || c >= 0x7f || strchr("/\\@?#\"<>{}|^`", c))
            return 0;
    }
    return 1;
}

/* Decides the framing and connection semantics of a complete head. */
static long head_semantics(struct http_head *h, long head_len, const char **why)
{
    h->content_length = -1;
    h->chunked = 0;
    h->expect_continue = 0;
    h->host = NULL;
    int hosts = 0, te_fields = 0;
    struct conn_tokens conn = {0, 0};
    struct te_codings te = {0, -1, 0, 0};
    for (size_t i = 0; i < h->n_fields; i++) {
        const struct http_field *f = &h->fields[i];
        if (name_is(f, "content-length")) {
            long long n = parse_length(f->value, f->value_len);
            if (n < 0)
                REFUSE(400, "invalid Content-Length");
            if (h->content_length >= 0 && h->content_length != n)
                REFUSE(400, "differing Content-Length fields");
            h->content_length = n;
        } else if (name_is(f, "transfer-encoding")) {
            te_fields++;
            each_list_item(f->value, f->value_len, on_te_item, &te);
            if (te.bad)
                REFUSE(400, "invalid Transfer-Encoding");
        } else if (name_is(f, "host")) {
            if (++hosts > 1)
                REFUSE(400, "more than one Host field");
            if (!host_value_ok(f->value, f->value_len))
                REFUSE(400, "invalid Host");
            h->host = f;
        } else if (name_is(f, "connection")) {
            each_list_item(f->value, f->value_len, on_connection_item, &conn);
        } else if (name_is(f, "expect") && h->minor == 1) {
            if (!item_eq(f->value, f->value_len, "100-continue"))
                REFUSE(417, "unsupported expectation");
            h->expect_continue = 1;
        }
    }
    if (te_fields) {
        if (h->minor == 0)
            REFUSE(400, "Transfer-Encoding in an HTTP/1.0 request");
        if (h->content_length >= 0)
            REFUSE(400, "both Content-Length and Transfer-Encoding");
        if (te.chunked_at != te.count - 1)
            REFUSE(400, "Transfer-Encoding does not end with chunked");
        if (te.chunked_count != 1)
            REFUSE(400, "chunked applied more than once");
        if (te.count > 1)
            REFUSE(501, "unsupported transfer coding");
        h->chunked = 1;
    }
    if (h->minor == 1 && hosts == 0)
        REFUSE(400, "no Host field in an HTTP/1.1 request");
    h->keep_alive = conn.close ? 0 : (h->minor == 1 || conn.keep_alive);
    return head_len;
}

/* What to answer when the head is not complete yet: wait, or refuse it
 * because it could only grow past a limit. */
static long incomplete(size_t len, int in_request_line, size_t target_so_far,
                       const struct http_parse_limits *lim, const char **why)
{
    if (in_request_line && target_so_far > lim->max_target)
        REFUSE(414, "request target too long");
    if (len >= lim->max_head)
        REFUSE(431, "request head too large");
    return 0;
}

long http_parse_head(const char *buf, size_t len, const struct http_parse_limits *lim,
                     struct http_head *h, struct http_field *fields, const char **why)
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t p = 0;
    *why = NULL;
    h->fields = fields;
    h->n_fields = 0;

    /* Empty lines before the request line (RFC 9112 2.2). */
    for (int i = 0; i < 2; i++) {
        if (p < len && b[p] == '\r') {
            if (p + 1 >= len)
                return incomplete(len, 1, 0, lim, why);
            if (b[p + 1] != '\n')
                REFUSE(400, "bare CR");
            p += 2;
        } else if (p < len && b[p] == '\n') {
            REFUSE(400, "bare LF");
        }
    }

    /* method SP request-target SP HTTP-version CRLF */
    size_t m0 = p;
    while (p < len && http_is_tchar(b[p]))
        p++;
    if (p == len)
        return incomplete(len, 1, 0, lim, why);
    if (b[p] != ' ' || p == m0)
        REFUSE(400, p == m0 ? "no method" : "invalid method");
    h->method = buf + m0;
    h->method_len = p - m0;
    p++;

    size_t t0 = p;
    while (p < len && is_target_byte(b[p]))
        p++;
    if (p - t0 > lim->max_target)
        REFUSE(414, "request target too long");
    if (p == len)
        return incomplete(len, 1, p - t0, lim, why);
    if (p == t0)
        REFUSE(400, "no request target");
    if (b[p] == '\r' || b[p] == '\n')
        REFUSE(400, "HTTP/0.9 requests are not supported");
    if (b[p] != ' ')
        REFUSE(400, b[p] == '#' ? "fragment in the request target"
                                : "invalid byte in the request target");
    h->target = buf + t0;
    h->target_len = p - t0;
    p++;

    static const char proto[] = "HTTP/";
    for (size_t i = 0; i < 5; i++, p++) {
        if (p == len)
            return incomplete(len, 1, 0, lim, why);
        if (b[p] != (unsigned char)proto[i])
            REFUSE(400, "invalid HTTP version");
    }
    if (len - p < 5)
        return incomplete(len, 1, 0, lim, why);
    if (b[p] < '0' || b[p] > '9' || b[p + 1] != '.' || b[p + 2] < '0' || b[p + 2] > '9' ||
        b[p + 3] != '\r' || b[p + 4] != '\n')
        REFUSE(400, "invalid HTTP version");
    if (b[p] == '2')
        REFUSE(505, "HTTP/2 is not supported here: use HTTP/1.1 (or h2 through a proxy)");
    if (b[p] != '1' || (b[p + 2] != '0' && b[p + 2] != '1'))
        REFUSE(505, "HTTP version not supported");
    h->minor = b[p + 2] - '0';
    p += 5;

    /* field-line CRLF ... CRLF */
    for (;;) {
        if (p > lim->max_head)
            REFUSE(431, "request head too large");
        if (p == len)
            return incomplete(len, 0, 0, lim, why);
        if (b[p] == '\r') {
            if (p + 1 == len)
                return incomplete(len, 0, 0, lim, why);
            if (b[p + 1] != '\n')
                REFUSE(400, "bare CR");
            p += 2;
            if (p > lim->max_head)
                REFUSE(431, "request head too large");
            return head_semantics(h, (long)p, why);
        }
        if (b[p] == '\n')
            REFUSE(400, "bare LF");
        if (b[p] == ' ' || b[p] == '\t')
            REFUSE(400, "obsolete line folding");
        size_t n0 = p;
        while (p < len && http_is_tchar(b[p]))
            p++;
        if (p == len)
            return incomplete(len, 0, 0, lim, why);
        if (b[p] != ':') {
            if (b[p] == ' ' || b[p] == '\t')
                REFUSE(400, "whitespace before a field's colon");
            REFUSE(400, "invalid field name");
        }
        if (p == n0)
            REFUSE(400, "empty field name");
        size_t n1 = p++;
        while (p < len && (b[p] == ' ' || b[p] == '\t'))
            p++;
        size_t v0 = p;
        while (p < len && is_value_byte(b[p]))
            p++;
        if (p == len)
            return incomplete(len, 0, 0, lim, why);
        if (b[p] == '\n')
            REFUSE(400, "bare LF");
        if (b[p] != '\r')
            REFUSE(400, b[p] ? "control byte in a field value" : "NUL in a field value");
        if (p + 1 == len)
            return incomplete(len, 0, 0, lim, why);
        if (b[p + 1] != '\n')
            REFUSE(400, "bare CR");
        size_t v1 = p;
        while (v1 > v0 && (b[v1 - 1] == ' ' || b[v1 - 1] == '\t'))
            v1--;
        if (h->n_fields == lim->max_fields)
            REFUSE(431, "too many header fields");
        struct http_field *f = &fields[h->n_fields++];
        f->name = buf + n0;
        f->name_len = n1 - n0;
        f->value = buf + v0;
        f->value_len = v1 - v0;
        p += 2;
    }
}

/* ---- chunked bodies ---- */

enum {
    CH_SIZE,           /* chunk-size hex digits */
    CH_SIZE_BWS,       /* whitespace after the size: only before a ';' */
    CH_EXT_NAME_START, /* after ';' (and whitespace): a token must start */
    CH_EXT_NAME,
    CH_EXT_AFTER_NAME,
    CH_EXT_VAL_START, /* after '=' (and whitespace) */
    CH_EXT_TOKEN,
    CH_EXT_QUOTED,
    CH_EXT_QUOTED_ESC,
    CH_EXT_AFTER_VAL,
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER, /* at the start of a trailer line or the final CRLF */
    CH_TRAILER_NAME,
    CH_TRAILER_VALUE,
    CH_TRAILER_LF,
    CH_END_LF,
    CH_DONE,
};

#define MAX_CHUNK_LINE 4096

void http_chunked_init(struct http_chunked *d) { memset(d, 0, sizeof(*d)); }

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#define BAD(st, reason)                                                                            \
    do {                                                                                           \
        *status = (st);                                                                            \
        *why = (reason);                                                                           \
        return -1;                                                                                 \
    } while (0)

long http_chunked_decode(struct http_chunked *d, const char *in, size_t len, char *out,
                         size_t *out_len, size_t out_cap, size_t max_trailer, int *done,
                         int *status, const char **why)
{
    const unsigned char *b = (const unsigned char *)in;
    size_t p = 0;
    *done = d->state == CH_DONE;
    while (p < len) {
        unsigned char c = b[p];
        switch (d->state) {
        case CH_SIZE: {
            int v = hex_value(c);
            if (v >= 0) {
                if (++d->digits > 16)
                    BAD(400, "chunk size too long");
                d->left = d->left * 16 + (unsigned)v;
                p++;
                break;
            }
            if (d->digits == 0)
                BAD(400, "invalid chunk size");
            if (c == ';' || c == ' ' || c == '\t') {
                d->state = CH_SIZE_BWS;
                break; /* CH_SIZE_BWS checks this byte */
            }
            if (c != '\r')
                BAD(400, "invalid chunk size");
            d->state = CH_SIZE_LF;
            p++;
            break;
        }
        /* chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ( token /
         * quoted-string ) ] ), checked to the letter (a lenient reader could
         * take "3 4" for 0x34) and then ignored. */
        case CH_SIZE_BWS:
        case CH_EXT_NAME_START:
        case CH_EXT_NAME:
        case CH_EXT_AFTER_NAME:
        case CH_EXT_VAL_START:
        case CH_EXT_TOKEN:
        case CH_EXT_QUOTED:
        case CH_EXT_QUOTED_ESC:
        case CH_EXT_AFTER_VAL: {
            if (++d->line > MAX_CHUNK_LINE)
                BAD(400, "chunk extension too long");
            int ws = c == ' ' || c == '\t', tok = http_is_tchar(c);
            int st = d->state, next = -1;
            switch (st) {
            case CH_SIZE_BWS:
            case CH_EXT_AFTER_VAL:
                next = ws                                 ? st
                       : c == ';'                         ? CH_EXT_NAME_START
                       : (c == '\r' && st != CH_SIZE_BWS) ? CH_SIZE_LF
                                                          : -1;
                break;
            case CH_EXT_NAME_START: next = ws ? st : tok ? CH_EXT_NAME : -1; break;
            case CH_EXT_NAME:
            case CH_EXT_AFTER_NAME:
                next = (tok && st == CH_EXT_NAME) ? st
                       : ws                       ? CH_EXT_AFTER_NAME
                       : c == '='                 ? CH_EXT_VAL_START
                       : c == ';'                 ? CH_EXT_NAME_START
                       : c == '\r'                ? CH_SIZE_LF
                                                  : -1;
                break;
            case CH_EXT_VAL_START:
                next = ws ? st : c == '"' ? CH_EXT_QUOTED : tok ? CH_EXT_TOKEN : -1;
                break;
            case CH_EXT_TOKEN:
                next = tok         ? st
                       : ws        ? CH_EXT_AFTER_VAL
                       : c == ';'  ? CH_EXT_NAME_START
                       : c == '\r' ? CH_SIZE_LF
                                   : -1;
                break;
            case CH_EXT_QUOTED:
                next = c == '"'           ? CH_EXT_AFTER_VAL
                       : c == '\\'        ? CH_EXT_QUOTED_ESC
                       : is_value_byte(c) ? st
                                          : -1;
                break;
            case CH_EXT_QUOTED_ESC: next = is_value_byte(c) ? CH_EXT_QUOTED : -1; break;
            }
            if (next < 0)
                BAD(400, "invalid chunk extension");
            d->state = next;
            p++;
            break;
        }
        case CH_SIZE_LF:
            if (c != '\n')
                BAD(400, "bare CR in a chunk size line");
            p++;
            d->line = 0;
            d->digits = 0;
            if (d->left == 0) {
                d->state = CH_TRAILER;
            } else {
                if (d->left > out_cap - *out_len)
                    BAD(413, "request body too large");
                d->state = CH_DATA;
            }
            break;
        case CH_DATA: {
            size_t n = len - p;
            if (n > d->left)
                n = (size_t)d->left;
            memcpy(out + *out_len, in + p, n);
            *out_len += n;
            d->left -= n;
            p += n;
            if (d->left == 0)
                d->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (c != '\r')
                BAD(400, "chunk data longer than its size");
            d->state = CH_DATA_LF;
            p++;
            break;
        case CH_DATA_LF:
            if (c != '\n')
                BAD(400, "bare CR after chunk data");
            d->state = CH_SIZE;
            p++;
            break;
        case CH_TRAILER:
            if (c == '\r') {
                d->state = CH_END_LF;
                p++;
                break;
            }
            if (!http_is_tchar(c))
                BAD(400, c == ' ' || c == '\t' ? "obsolete line folding" : "invalid trailer field");
            d->state = CH_TRAILER_NAME;
            break;
        case CH_TRAILER_NAME:
        case CH_TRAILER_VALUE:
        case CH_TRAILER_LF:
            if (++d->trailer > max_trailer)
                BAD(431, "trailer fields too large");
            if (d->state == CH_TRAILER_NAME) {
                if (c == ':')
                    d->state = CH_TRAILER_VALUE;
                else if (!http_is_tchar(c))
                    BAD(400, "invalid trailer field name");
            } else if (d->state == CH_TRAILER_VALUE) {
                if (c == '\r')
                    d->state = CH_TRAILER_LF;
                else if (!is_value_byte(c))
                    BAD(400, "control byte in a trailer field");
            } else {
                if (c != '\n')
                    BAD(400, "bare CR in a trailer field");
                d->state = CH_TRAILER;
            }
            p++;
            break;
        case CH_END_LF:
            if (c != '\n')
                BAD(400, "bare CR after the last chunk");
            p++;
            d->state = CH_DONE;
            *done = 1;
            return (long)p;
        case CH_DONE: *done = 1; return (long)p;
        }
    }
    return (long)p;
}
