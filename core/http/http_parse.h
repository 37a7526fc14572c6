/* A strict HTTP/1.1 request parser (RFC 9112), with no I/O and no
 * allocation: the request head is parsed in place, and the fields point into
 * the caller's buffer. It decides the framing of the body (Content-Length or
 * chunked) and refuses every head that two parsers could read differently:
 * that is how request smuggling starts.
 *
 * Refused, with 400: a bare CR or LF, NUL or any other control byte in the
 * head; an invalid token in the method or a field name; a space before a
 * field's colon; obs-fold; an empty field name; both Content-Length and
 * Transfer-Encoding; several differing Content-Lengths or one that is not
 * digits; a Transfer-Encoding other than a single final "chunked" (501 for
 * codings before it), or any in HTTP/1.0; no Host in HTTP/1.1 or more than
 * one Host; HTTP/0.9. 414, 431 and 505 for a long target, a big head or many
 * fields, and an HTTP version other than 1.0 or 1.1 (an HTTP/2 preface). */
#ifndef WX_HTTP_PARSE_H
#define WX_HTTP_PARSE_H
#include <stddef.h>

struct http_field {
    const char *name;
    size_t name_len;
    const char *value; /* without surrounding whitespace */
    size_t value_len;
};

struct http_head {
    const char *method;
    size_t method_len;
    const char *target;
    size_t target_len;
    int minor;                 /* HTTP/1.minor: 0 or 1 */
    struct http_field *fields; /* the caller's array */
    size_t n_fields;
    /* Framing and connection management, from the fields. */
    long long content_length;      /* -1: no Content-Length */
    int chunked;                   /* Transfer-Encoding: chunked */
    int keep_alive;                /* after this request (version and Connection) */
    int expect_continue;           /* Expect: 100-continue (HTTP/1.1) */
    const struct http_field *host; /* NULL when absent */
};

struct http_parse_limits {
    size_t max_head;   /* request line and fields, with the blank line */
    size_t max_target; /* the request target */
    size_t max_fields;
};

/* Parses the head at the start of buf[0..len). Returns the head's length
 * (its blank line included) when it is complete, 0 when more bytes are
 * needed (and the limits allow them), or -STATUS when the request must be
 * refused: 400, 414, 417, 431, 501 or 505; *why then names the reason in a few
 * words (a static string). fields must hold lim->max_fields entries. Up to
 * two empty lines before the request line are skipped, as RFC 9112 allows. */
long http_parse_head(const char *buf, size_t len, const struct http_parse_limits *lim,
                     struct http_head *h, struct http_field *fields, const char **why);

/* Incremental decoder of a chunked body. The data of each chunk is appended
 * to the caller's output; chunk extensions and trailer fields are checked
 * and dropped. */
struct http_chunked {
    int state;
    unsigned long long left; /* bytes left in the current chunk */
    size_t line;             /* bytes of the current size/trailer line so far */
    size_t trailer;          /* bytes of trailers so far */
    int digits;
};

void http_chunked_init(struct http_chunked *d);
/* Consumes in[0..len): appends chunk data to out (out_len grows, never past
 * out_cap). Returns the number of input bytes consumed. *done is set when
 * the last chunk and the trailers were read (the bytes after them are not
 * consumed). Sets *status to 400 for a malformed body or 413 when the data
 * would pass out_cap, and returns -1; the connection must then be closed. */
long http_chunked_decode(struct http_chunked *d, const char *in, size_t len, char *out,
                         size_t *out_len, size_t out_cap, size_t max_trailer, int *done,
                         int *status, const char **why);

/* Is c a tchar (RFC 9110 token character)? */
int http_is_tchar(unsigned char c);

#endif
