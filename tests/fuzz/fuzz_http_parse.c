/* Fuzzes the strict HTTP/1.1 request parser (core/http/http_parse.c).
 *
 * http_parse_head() on the input, with two sets of small limits (every
 * input and every prefix is an exact-size heap copy, so that a read past the
 * end is caught by AddressSanitizer, and so is a write past the fields
 * array, which holds exactly max_fields entries):
 *   - the answer is 0, the head's length, or -400/414/417/431/501/505, with
 *     a reason exactly when refused;
 *   - an accepted head: its length is at most the input's and max_head, it
 *     ends with CRLF CRLF and holds no bare CR, bare LF or control byte; the
 *     method is a token followed by one space, the target is within
 *     max_target and holds no space, control byte or '#'; the version is
 *     1.0 or 1.1; every field's name is a non-empty token inside the head,
 *     followed by ':', and its value lies inside the head, is trimmed,
 *     holds only VCHAR, obs-text, SP and HTAB and runs to its CRLF; there
 *     are as many fields as lines; host points at the one Host field (there
 *     is one in HTTP/1.1); Content-Length and chunked are never both set,
 *     chunked never in HTTP/1.0, the Content-Length fields agree with
 *     content_length, a Transfer-Encoding is one field "chunked", an Expect
 *     in HTTP/1.1 is "100-continue", and keep_alive and expect_continue
 *     follow from the version and the Connection and Expect fields;
 *   - fed incrementally (every prefix for short inputs, a sample of them
 *     otherwise, the last bytes of the head always): a prefix of an
 *     accepted head gives 0, the head itself gives exactly the same parse
 *     as the whole input; a prefix of an incomplete input gives 0; a prefix
 *     of a refused input gives 0 or the same refusal (or 431, when the head
 *     limit is reached before the offending byte), never "complete", and
 *     once refused stays refused; an input of max_head bytes or more is
 *     never "incomplete".
 * http_chunked_decode() on the input itself and, when the head says
 * chunked, on the bytes after the head: fed whole, byte by byte and split
 * in two, it gives the same answer, output and consumed count; the output
 * never passes out_cap (an exact-size buffer); and all of it agrees with a
 * straightforward reference decoder of the same grammar (sizes of 1 to 16
 * hex digits, extensions checked for bytes only, trailer fields, 413 past
 * out_cap, 431 past max_trailer). */
#include "http_parse.h"

#include <strings.h>

#include "fuzz_common.h"

#define MAX_INPUT   4096
#define OUT_CAP     128
#define MAX_TRAILER 64

static const struct http_parse_limits limit_sets[] = {
    {1024, 256, 16},
    {96, 24, 3},
};

static int tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int value_byte(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

/* ---- heads ---- */

struct parse {
    char *buf;
    size_t len;
    long rc;
    const char *why;
    struct http_head h;
    struct http_field *f;
};

static void parse_run(struct parse *p, const uint8_t *data, size_t len,
                      const struct http_parse_limits *lim)
{
    p->buf = malloc(len ? len : 1);
    p->f = malloc(sizeof(*p->f) * (lim->max_fields ? lim->max_fields : 1));
    if (!p->buf || !p->f)
        abort();
    if (len)
        memcpy(p->buf, data, len);
    p->len = len;
    p->why = "unset";
    p->rc = http_parse_head(p->buf, len, lim, &p->h, p->f, &p->why);
}

static void parse_free(struct parse *p)
{
    free(p->buf);
    free(p->f);
}

static int same_parse(const struct parse *a, const struct parse *b)
{
    if (a->rc != b->rc)
        return 0;
    if (a->rc <= 0)
        return 1;
    const struct http_head *x = &a->h, *y = &b->h;
#define OFF(p, s, q) ((size_t)((q) - (p)->buf))
    if (OFF(a, x, x->method) != OFF(b, y, y->method) || x->method_len != y->method_len ||
        OFF(a, x, x->target) != OFF(b, y, y->target) || x->target_len != y->target_len ||
        x->minor != y->minor || x->n_fields != y->n_fields ||
        x->content_length != y->content_length || x->chunked != y->chunked ||
        x->keep_alive != y->keep_alive || x->expect_continue != y->expect_continue ||
        (x->host ? x->host - x->fields : -1) != (y->host ? y->host - y->fields : -1))
        return 0;
    for (size_t i = 0; i < x->n_fields; i++)
        if (OFF(a, x, x->fields[i].name) != OFF(b, y, y->fields[i].name) ||
            x->fields[i].name_len != y->fields[i].name_len ||
            OFF(a, x, x->fields[i].value) != OFF(b, y, y->fields[i].value) ||
            x->fields[i].value_len != y->fields[i].value_len)
            return 0;
#undef OFF
    return 1;
}

static int name_eq(const struct http_field *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && strncasecmp(f->name, name, n) == 0;
}

static void check_head(const struct parse *p, const struct http_parse_limits *lim)
{
    const char *buf = p->buf;
    const struct http_head *h = &p->h;
    long rc = p->rc;
    FUZZ_CHECK(p->why == NULL, "why \"%s\" on success", p->why);
    FUZZ_CHECK((size_t)rc <= p->len && (size_t)rc <= lim->max_head, "length %ld of %zu, max %zu",
               rc, p->len, lim->max_head);
    FUZZ_CHECK(rc >= 16 && memcmp(buf + rc - 4, "\r\n\r\n", 4) == 0,
               "head of %ld bytes does not end with CRLF CRLF", rc);
    for (long i = 0; i < rc; i++) {
        unsigned char c = (unsigned char)buf[i];
        FUZZ_CHECK(c != '\r' || buf[i + 1] == '\n', "bare CR at %ld", i);
        FUZZ_CHECK(c != '\n' || (i > 0 && buf[i - 1] == '\r'), "bare LF at %ld", i);
        FUZZ_CHECK(c >= 0x20 ? c != 0x7f : (c == '\r' || c == '\n' || c == '\t'),
                   "control byte 0x%02x at %ld", c, i);
    }
    const char *end = buf + rc;
    /* request line: only empty lines before it */
    FUZZ_CHECK(h->method >= buf && h->method_len > 0 && h->method + h->method_len < end,
               "method out of the head");
    for (const char *q = buf; q < h->method; q += 2)
        FUZZ_CHECK(q[0] == '\r' && q[1] == '\n', "something other than CRLF before the method");
    FUZZ_CHECK(h->method - buf <= 4, "more than two empty lines before the method");
    for (size_t i = 0; i < h->method_len; i++)
        FUZZ_CHECK(tchar((unsigned char)h->method[i]), "method byte 0x%02x",
                   (unsigned char)h->method[i]);
    FUZZ_CHECK(h->method[h->method_len] == ' ' && h->target == h->method + h->method_len + 1,
               "method not followed by one space and the target");
    FUZZ_CHECK(h->target_len > 0 && h->target_len <= lim->max_target &&
                   h->target + h->target_len + 10 < end,
               "target of %zu bytes", h->target_len);
    for (size_t i = 0; i < h->target_len; i++) {
        unsigned char c = (unsigned char)h->target[i];
        FUZZ_CHECK(c > 0x20 && c != 0x7f && c != '#', "target byte 0x%02x", c);
    }
    FUZZ_CHECK(h->minor == 0 || h->minor == 1, "minor %d", h->minor);
    FUZZ_CHECK(memcmp(h->target + h->target_len, " HTTP/1.", 8) == 0 &&
                   h->target[h->target_len + 8] == '0' + h->minor &&
                   memcmp(h->target + h->target_len + 9, "\r\n", 2) == 0,
               "version does not match");
    /* fields */
    FUZZ_CHECK(h->fields == p->f && h->n_fields <= lim->max_fields, "%zu fields", h->n_fields);
    size_t crlfs = 0;
    for (const char *q = h->method; q + 1 < end; q++)
        crlfs += q[0] == '\r' && q[1] == '\n';
    FUZZ_CHECK(crlfs == h->n_fields + 2, "%zu fields on %zu lines", h->n_fields, crlfs);
    int hosts = 0, cls = 0, tes = 0, expects = 0, close = 0, keep_alive = 0;
    const char *prev_end = h->target + h->target_len + 11;
    for (size_t i = 0; i < h->n_fields; i++) {
        const struct http_field *f = &h->fields[i];
        FUZZ_CHECK(f->name == prev_end, "field %zu does not start its line", i);
        FUZZ_CHECK(f->name_len > 0 && f->name + f->name_len < end, "field %zu name out", i);
        for (size_t k = 0; k < f->name_len; k++)
            FUZZ_CHECK(tchar((unsigned char)f->name[k]), "field %zu name byte 0x%02x", i,
                       (unsigned char)f->name[k]);
        FUZZ_CHECK(f->name[f->name_len] == ':', "field %zu name not followed by ':'", i);
        FUZZ_CHECK(f->value >= f->name + f->name_len + 1 && f->value + f->value_len < end,
                   "field %zu value out", i);
        for (const char *q = f->name + f->name_len + 1; q < f->value; q++)
            FUZZ_CHECK(*q == ' ' || *q == '\t', "field %zu: skipped a non-blank", i);
        for (size_t k = 0; k < f->value_len; k++)
            FUZZ_CHECK(value_byte((unsigned char)f->value[k]), "field %zu value byte 0x%02x", i,
                       (unsigned char)f->value[k]);
        FUZZ_CHECK(f->value_len == 0 ||
                       (f->value[0] != ' ' && f->value[0] != '\t' &&
                        f->value[f->value_len - 1] != ' ' && f->value[f->value_len - 1] != '\t'),
                   "field %zu value not trimmed", i);
        const char *q = f->value + f->value_len;
        while (*q == ' ' || *q == '\t')
            q++;
        FUZZ_CHECK(q[0] == '\r' && q[1] == '\n', "field %zu value stops before its CRLF", i);
        prev_end = q + 2;
        if (name_eq(f, "host")) {
            hosts++;
            FUZZ_CHECK(h->host == f, "host does not point at the Host field");
        } else if (name_eq(f, "content-length")) {
            cls++;
            long long n = 0;
            for (size_t k = 0; k < f->value_len; k++) {
                FUZZ_CHECK(f->value[k] >= '0' && f->value[k] <= '9', "Content-Length not digits");
                n = n * 10 + (f->value[k] - '0');
            }
            FUZZ_CHECK(f->value_len > 0 && f->value_len <= 18 && n == h->content_length,
                       "Content-Length %.*s, content_length %lld", (int)f->value_len, f->value,
                       h->content_length);
        } else if (name_eq(f, "transfer-encoding")) {
            tes++;
            FUZZ_CHECK(f->value_len == 7 && strncasecmp(f->value, "chunked", 7) == 0,
                       "accepted Transfer-Encoding: %.*s", (int)f->value_len, f->value);
        } else if (name_eq(f, "expect")) {
            expects++;
            FUZZ_CHECK(h->minor == 0 ||
                           (f->value_len == 12 && strncasecmp(f->value, "100-continue", 12) == 0),
                       "accepted Expect: %.*s", (int)f->value_len, f->value);
        } else if (name_eq(f, "connection")) {
            for (size_t a = 0; a <= f->value_len;) { /* each list element, trimmed */
                size_t e = a;
                while (e < f->value_len && f->value[e] != ',')
                    e++;
                size_t x = a, y = e;
                while (x < y && (f->value[x] == ' ' || f->value[x] == '\t'))
                    x++;
                while (y > x && (f->value[y - 1] == ' ' || f->value[y - 1] == '\t'))
                    y--;
                if (y - x == 5 && strncasecmp(f->value + x, "close", 5) == 0)
                    close = 1;
                if (y - x == 10 && strncasecmp(f->value + x, "keep-alive", 10) == 0)
                    keep_alive = 1;
                a = e + 1;
            }
        }
    }
    FUZZ_CHECK(prev_end + 2 == end, "the head does not end after the last field");
    FUZZ_CHECK(hosts <= 1 && (hosts == 1) == (h->host != NULL), "%d Host fields", hosts);
    FUZZ_CHECK(h->minor == 0 || hosts == 1, "HTTP/1.1 head without Host");
    FUZZ_CHECK((cls > 0) == (h->content_length >= 0) && h->content_length >= -1,
               "content_length %lld with %d Content-Length fields", h->content_length, cls);
    FUZZ_CHECK(tes <= 1, "%d Transfer-Encoding fields accepted", tes);
    FUZZ_CHECK(h->keep_alive == (close ? 0 : h->minor == 1 || keep_alive),
               "keep_alive %d in HTTP/1.%d with close %d keep-alive %d", h->keep_alive, h->minor,
               close, keep_alive);
    FUZZ_CHECK(h->expect_continue == (h->minor == 1 && expects > 0),
               "expect_continue %d with %d Expect fields in HTTP/1.%d", h->expect_continue, expects,
               h->minor);
    FUZZ_CHECK((tes > 0) == (h->chunked == 1) && (h->chunked == 0 || h->chunked == 1),
               "chunked %d with %d Transfer-Encoding fields", h->chunked, tes);
    FUZZ_CHECK(!(h->chunked && h->content_length >= 0), "both chunked and Content-Length");
    FUZZ_CHECK(!h->chunked || h->minor == 1, "chunked in HTTP/1.0");
    FUZZ_CHECK(h->keep_alive == 0 || h->keep_alive == 1, "keep_alive %d", h->keep_alive);
    FUZZ_CHECK(h->expect_continue == 0 || (h->expect_continue == 1 && h->minor == 1),
               "expect_continue %d in HTTP/1.%d", h->expect_continue, h->minor);
}

static int status_ok(long rc)
{
    return rc >= 0 || rc == -400 || rc == -414 || rc == -417 || rc == -431 || rc == -501 ||
           rc == -505;
}

static void check_prefix(const uint8_t *data, size_t n, const struct parse *whole,
                         const struct http_parse_limits *lim, long *last)
{
    struct parse p;
    parse_run(&p, data, n, lim);
    FUZZ_CHECK(status_ok(p.rc), "prefix of %zu: %ld", n, p.rc);
    FUZZ_CHECK((p.rc < 0) == (p.why != NULL), "prefix of %zu: why %s with %ld", n,
               p.why ? p.why : "NULL", p.rc);
    if (whole->rc > 0 && n >= (size_t)whole->rc) {
        FUZZ_CHECK(same_parse(&p, whole), "the head alone (%zu bytes) gives %ld (%s), whole %ld", n,
                   p.rc, p.why ? p.why : "-", whole->rc);
    } else if (whole->rc >= 0) {
        FUZZ_CHECK(p.rc == 0, "prefix of %zu gives %ld (%s), whole %ld", n, p.rc,
                   p.why ? p.why : "-", whole->rc);
    } else {
        FUZZ_CHECK(p.rc <= 0, "prefix of %zu complete (%ld), whole refused with %ld", n, p.rc,
                   -whole->rc);
        FUZZ_CHECK(p.rc == 0 || p.rc == whole->rc || p.rc == -431,
                   "prefix of %zu refused with %ld (%s), whole with %ld (%s)", n, -p.rc, p.why,
                   -whole->rc, whole->why);
        FUZZ_CHECK(*last == 0 || p.rc != 0, "prefix of %zu incomplete after a refusal", n);
    }
    *last = p.rc;
    parse_free(&p);
}

/* ---- chunked bodies ---- */

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int bws(uint8_t c) { return c == ' ' || c == '\t'; }

/* chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ( token / quoted-string ) ] )
 * over e[0..len), written as a walk over the grammar. Returns the index of
 * the first byte that no valid chunk-ext can continue with (len when there
 * is none); *accepting says whether e[0..len) is a whole chunk-ext. */
static size_t ref_ext(const uint8_t *e, size_t len, int *accepting)
{
    size_t i = 0, j;
    *accepting = 0;
    for (;;) {
        while (i < len && bws(e[i]))
            i++;
        if (i == len)
            return len;
        if (e[i] != ';')
            return i;
        *accepting = 0;
        i++;
        while (i < len && bws(e[i]))
            i++;
        if (i == len)
            return len;
        if (!tchar(e[i]))
            return i;
        while (i < len && tchar(e[i]))
            i++;
        *accepting = 1;
        for (j = i; j < len && bws(e[j]); j++)
            ;
        if (j == len)
            return len;
        if (e[j] == ';') {
            i = j;
            continue;
        }
        if (e[j] != '=')
            return j;
        *accepting = 0;
        for (i = j + 1; i < len && bws(e[i]); i++)
            ;
        if (i == len)
            return len;
        if (e[i] == '"') {
            for (i++;; i++) {
                if (i == len)
                    return len;
                if (e[i] == '"')
                    break;
                if (e[i] == '\\') {
                    if (++i == len)
                        return len;
                }
                if (!value_byte(e[i]))
                    return i;
            }
            i++;
        } else if (tchar(e[i])) {
            while (i < len && tchar(e[i]))
                i++;
        } else {
            return i;
        }
        *accepting = 1;
        for (j = i; j < len && bws(e[j]); j++)
            ;
        if (j == len)
            return len;
        if (e[j] != ';')
            return j;
        i = j;
    }
}

/* The reference: 0 when the body ended (*used its length), 1 when more
 * bytes are needed, else the status. */
static int ref_chunked(const uint8_t *b, size_t n, size_t cap, size_t max_trailer, char *out,
                       size_t *olen, size_t *used)
{
    size_t p = 0;
    *olen = 0;
    for (;;) {
        unsigned long long size = 0;
        int digits = 0;
        while (p < n && hexval(b[p]) >= 0) {
            if (++digits > 16)
                return 400;
            size = size * 16 + (unsigned)hexval(b[p++]);
        }
        if (p == n)
            return 1;
        if (digits == 0)
            return 400;
        if (b[p] == ';' || b[p] == ' ' || b[p] == '\t') {
            /* The extensions up to the CR: every error here is a 400, so
             * whether the grammar or the 4096-byte line limit trips first
             * does not matter. */
            size_t e = p;
            while (e < n && b[e] != '\r')
                e++;
            int accepting = 0;
            if (ref_ext(b + p, e - p, &accepting) < e - p)
                return 400;
            if (e == n)
                return e - p > 4096 ? 400 : 1;
            if (e - p + 1 > 4096 || !accepting)
                return 400;
            p = e;
        } else if (b[p] != '\r') {
            return 400;
        }
        p++; /* CR */
        if (p == n)
            return 1;
        if (b[p++] != '\n')
            return 400;
        if (size == 0)
            break;
        if (size > cap - *olen)
            return 413;
        for (; size; size--) {
            if (p == n)
                return 1;
            out[(*olen)++] = (char)b[p++];
        }
        if (p == n)
            return 1;
        if (b[p++] != '\r')
            return 400;
        if (p == n)
            return 1;
        if (b[p++] != '\n')
            return 400;
    }
    size_t tr = 0;
    for (;;) {
        if (p == n)
            return 1;
        if (b[p] == '\r') {
            if (++p == n)
                return 1;
            if (b[p++] != '\n')
                return 400;
            *used = p;
            return 0;
        }
        if (!tchar(b[p]))
            return 400;
        for (;;) { /* name and ':' */
            if (p == n)
                return 1;
            if (++tr > max_trailer)
                return 431;
            if (b[p] == ':') {
                p++;
                break;
            }
            if (!tchar(b[p]))
                return 400;
            p++;
        }
        for (;;) { /* value and CR */
            if (p == n)
                return 1;
            if (++tr > max_trailer)
                return 431;
            if (b[p] == '\r') {
                p++;
                break;
            }
            if (!value_byte(b[p]))
                return 400;
            p++;
        }
        if (p == n)
            return 1;
        if (++tr > max_trailer)
            return 431;
        if (b[p++] != '\n')
            return 400;
    }
}

struct dec {
    long consumed; /* -1 when refused */
    int done, status;
    char *out;
    size_t out_len;
};

/* Feeds in[0..n) in pieces of `step` bytes (0: whole), or split at `split`
 * when step is SIZE_MAX. */
static struct dec run_decoder(const uint8_t *in, size_t n, size_t step, size_t split)
{
    struct dec r = {0, 0, 0, malloc(OUT_CAP), 0};
    if (!r.out)
        abort();
    struct http_chunked d;
    http_chunked_init(&d);
    size_t off = 0;
    while (off < n) {
        size_t k = n - off;
        if (step == SIZE_MAX)
            k = off < split ? split - off : n - off;
        else if (step && k > step)
            k = step;
        char *piece = malloc(k);
        if (!piece)
            abort();
        memcpy(piece, in + off, k);
        int status = 0;
        const char *why = NULL;
        long rc = http_chunked_decode(&d, piece, k, r.out, &r.out_len, OUT_CAP, MAX_TRAILER,
                                      &r.done, &status, &why);
        free(piece);
        FUZZ_CHECK(r.out_len <= OUT_CAP, "output %zu past out_cap", r.out_len);
        if (rc < 0) {
            FUZZ_CHECK(rc == -1 && why && (status == 400 || status == 413 || status == 431),
                       "refusal %ld status %d", rc, status);
            FUZZ_CHECK(!r.done, "done and refused");
            r.consumed = -1;
            r.status = status;
            return r;
        }
        FUZZ_CHECK((size_t)rc <= k, "consumed %ld of %zu", rc, k);
        off += (size_t)rc;
        if (r.done)
            break;
        FUZZ_CHECK((size_t)rc == k, "stopped at %ld of %zu without being done", rc, k);
    }
    r.consumed = (long)off;
    return r;
}

static void check_chunked(const uint8_t *in, size_t n)
{
    if (n == 0)
        return;
    struct dec whole = run_decoder(in, n, 0, 0);
    char *ref_out = malloc(OUT_CAP);
    if (!ref_out)
        abort();
    size_t ref_len = 0, used = 0;
    int ref = ref_chunked(in, n, OUT_CAP, MAX_TRAILER, ref_out, &ref_len, &used);
    if (ref == 0)
        FUZZ_CHECK(whole.done && whole.consumed == (long)used,
                   "reference ends the body at %zu, decoder: done %d consumed %ld", used,
                   whole.done, whole.consumed);
    else if (ref == 1)
        FUZZ_CHECK(!whole.done && whole.consumed == (long)n,
                   "reference wants more, decoder: done %d consumed %ld status %d", whole.done,
                   whole.consumed, whole.status);
    else
        FUZZ_CHECK(whole.consumed == -1 && whole.status == ref,
                   "reference refuses with %d, decoder: done %d consumed %ld status %d", ref,
                   whole.done, whole.consumed, whole.status);
    FUZZ_CHECK(whole.out_len == ref_len && memcmp(whole.out, ref_out, ref_len) == 0,
               "output differs from the reference (%zu and %zu bytes)", whole.out_len, ref_len);
    free(ref_out);

    struct dec other[2] = {run_decoder(in, n, 1, 0), run_decoder(in, n, SIZE_MAX, in[0] % n)};
    for (int i = 0; i < 2; i++) {
        FUZZ_CHECK(other[i].consumed == whole.consumed && other[i].done == whole.done &&
                       other[i].status == whole.status && other[i].out_len == whole.out_len &&
                       memcmp(other[i].out, whole.out, whole.out_len) == 0,
                   "%s: consumed %ld done %d status %d, whole: %ld %d %d",
                   i ? "split in two" : "byte by byte", other[i].consumed, other[i].done,
                   other[i].status, whole.consumed, whole.done, whole.status);
        free(other[i].out);
    }
    free(whole.out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT)
        return 0;
    for (size_t l = 0; l < sizeof(limit_sets) / sizeof(limit_sets[0]); l++) {
        const struct http_parse_limits *lim = &limit_sets[l];
        struct parse whole;
        parse_run(&whole, data, size, lim);
        FUZZ_CHECK(status_ok(whole.rc), "answer %ld", whole.rc);
        FUZZ_CHECK((whole.rc < 0) == (whole.why != NULL), "why %s with %ld",
                   whole.why ? whole.why : "NULL", whole.rc);
        if (whole.rc > 0)
            check_head(&whole, lim);
        FUZZ_CHECK(whole.rc != 0 || size < lim->max_head, "incomplete with %zu bytes, max_head %zu",
                   size, lim->max_head);

        /* prefixes, in increasing length, up to the head (or the input) */
        size_t upto = whole.rc > 0 ? (size_t)whole.rc : size;
        long last = 0;
        if (upto <= 64) {
            for (size_t n = 0; n <= upto; n++)
                check_prefix(data, n, &whole, lim, &last);
        } else {
            size_t step = upto / 16;
            for (size_t n = 0; n + 4 < upto; n += step)
                check_prefix(data, n, &whole, lim, &last);
            for (size_t n = upto - 4; n <= upto; n++)
                check_prefix(data, n, &whole, lim, &last);
        }

        if (l == 0 && whole.rc > 0 && whole.h.chunked)
            check_chunked(data + whole.rc, size - (size_t)whole.rc);
        parse_free(&whole);
    }
    check_chunked(data, size);
    return 0;
}
