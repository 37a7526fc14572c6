/* Building short strings without printf, for the per-request paths (the
 * authorize URL, the state record, the cookie): appends are bounds-checked
 * copies, and a builder that ran out of room says so instead of writing past
 * its buffer. printf's format parsing was a twentieth of /auth's time. */
#ifndef WX_STRBUF_H
#define WX_STRBUF_H
#include <stddef.h>
#include <string.h>

struct strbuf {
    char *p, *end; /* next byte; end of the buffer (one byte kept for the NUL) */
    int full;      /* something did not fit: the result is unusable */
};

static inline struct strbuf strbuf_init(char *buf, size_t size)
{
    struct strbuf b = {buf, buf + size - 1, size == 0};
    if (size)
        *buf = '\0';
    return b;
}

static inline void strbuf_putn(struct strbuf *b, const char *s, size_t n)
{
    if (b->full || (size_t)(b->end - b->p) < n) {
        b->full = 1;
        return;
    }
    memcpy(b->p, s, n);
    b->p += n;
    *b->p = '\0';
}

static inline void strbuf_put(struct strbuf *b, const char *s) { strbuf_putn(b, s, strlen(s)); }

static inline void strbuf_num(struct strbuf *b, long long v)
{
    char tmp[24], *q = tmp + sizeof(tmp);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--q = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--q = '-';
    strbuf_putn(b, q, (size_t)(tmp + sizeof(tmp) - q));
}

/* Length written, or -1 if it did not fit. */
static inline long strbuf_done(const struct strbuf *b, const char *buf)
{
    return b->full ? -1 : (long)(b->p - buf);
}

/* Copies src into dst[size], cut to fit, always terminated (strlcpy). */
static inline void str_copy(char *dst, size_t size, const char *src)
{
    if (!size)
        return;
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

#endif
