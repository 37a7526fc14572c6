/* Shared helpers of the libFuzzer drivers in tests/fuzz/: a property check
 * that aborts (so libFuzzer records the input), and input splitting. */
#ifndef WX_FUZZ_COMMON_H
#define WX_FUZZ_COMMON_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "\nPROPERTY VIOLATED %s:%d: %s\n  ", __FILE__, __LINE__, #cond);       \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A malloc'd, NUL-terminated copy of n bytes (an embedded NUL ends the
 * string, as it would in C callers). */
static inline char *fuzz_strndup(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* Takes one byte off the front of the input (0 when empty). */
static inline uint8_t fuzz_byte(const uint8_t **p, size_t *n)
{
    if (*n == 0)
        return 0;
    uint8_t b = **p;
    (*p)++;
    (*n)--;
    return b;
}

/* Takes a 16-bit little-endian value off the front of the input. */
static inline unsigned fuzz_u16(const uint8_t **p, size_t *n)
{
    unsigned lo = fuzz_byte(p, n);
    return lo | (unsigned)fuzz_byte(p, n) << 8;
}

/* Splits the rest of the input at the first "\xff\xfe" separator (or keeps it
 * whole): *a gets the part before, the input pointer moves past it. */
static inline char *fuzz_take_part(const uint8_t **p, size_t *n)
{
    const uint8_t *s = *p;
    for (size_t i = 0; i + 1 < *n; i++) {
        if (s[i] == 0xff && s[i + 1] == 0xfe) {
            char *part = fuzz_strndup(s, i);
            *p += i + 2;
            *n -= i + 2;
            return part;
        }
    }
    char *part = fuzz_strndup(s, *n);
    *p += *n;
    *n = 0;
    return part;
}

#endif
