/* Per-request arenas (see arena.h). */
#include "arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN     16
#define CACHE_MAX 64 /* blocks kept per thread: 256 KiB (what a burst leaves behind) */

struct arena_block {
    struct arena_block *next;
    size_t size; /* usable bytes after the header */
    _Alignas(ALIGN) char data[];
};

struct arena_cleanup {
    struct arena_cleanup *next;
    void (*fn)(void *);
    void *arg;
};

/* A standard block is ARENA_BLOCK_SIZE bytes with its header: exactly a
 * page and one of the allocator's size classes. (With the header on top,
 * 4,112 bytes, jemalloc gave every block 5,120 bytes straddling two pages;
 * a request waiting on WeChat kept both resident.) */
#define BLOCK_USABLE (ARENA_BLOCK_SIZE - sizeof(struct arena_block))

/* Standard-size blocks freed by arenas of this thread, ready for reuse. */
static _Thread_local struct arena_block *cache;
static _Thread_local int cached;

void arena_init(struct arena *a) { memset(a, 0, sizeof(*a)); }

/* A block with at least `size` usable bytes. */
static struct arena_block *block_new(size_t size)
{
    if (size <= BLOCK_USABLE && cache) {
        struct arena_block *b = cache;
        cache = b->next;
        cached--;
        return b;
    }
    if (size < BLOCK_USABLE)
        size = BLOCK_USABLE;
    struct arena_block *b = malloc(sizeof(*b) + size);
    if (b)
        b->size = size;
    return b;
}

static void block_free(struct arena_block *b)
{
    if (b->size == BLOCK_USABLE && cached < CACHE_MAX) {
        b->next = cache;
        cache = b;
        cached++;
        return;
    }
    free(b);
}

void arena_cache_trim(void)
{
    while (cache) {
        struct arena_block *b = cache;
        cache = b->next;
        free(b);
    }
    cached = 0;
}

void arena_reset(struct arena *a)
{
    while (a->cleanups) {
        struct arena_cleanup *c = a->cleanups;
        a->cleanups = c->next;
        c->fn(c->arg);
    }
    while (a->blocks) {
        struct arena_block *b = a->blocks;
        a->blocks = b->next;
        block_free(b);
    }
    a->pos = a->end = NULL;
}

void *arena_alloc(struct arena *a, size_t n)
{
    n = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (n == 0)
        n = ALIGN;
    if ((size_t)(a->end - a->pos) >= n) {
        void *p = a->pos;
        a->pos += n;
        return p;
    }
    if (n > ARENA_BLOCK_SIZE / 4) {
        /* A big allocation gets its own block, behind the current one, so
         * the free space of the current block is not wasted. */
        struct arena_block *b = block_new(n);
        if (!b)
            return NULL;
        if (a->blocks) {
            b->next = a->blocks->next;
            a->blocks->next = b;
        } else {
            b->next = NULL;
            a->blocks = b;
            a->pos = b->data + n;
            a->end = b->data + b->size;
        }
        return b->data;
    }
    struct arena_block *b = block_new(BLOCK_USABLE);
    if (!b)
        return NULL;
    b->next = a->blocks;
    a->blocks = b;
    a->pos = b->data + n;
    a->end = b->data + b->size;
    return b->data;
}

void *arena_calloc(struct arena *a, size_t n)
{
    void *p = arena_alloc(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

char *arena_strdup(struct arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }

char *arena_printf(struct arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = (size_t)(a->end - a->pos);
    int n = vsnprintf(a->pos, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    if ((size_t)n < room)
        return arena_alloc(a, (size_t)n + 1); /* the bytes are already there */
    char *p = arena_alloc(a, (size_t)n + 1);
    if (!p)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

int arena_on_reset(struct arena *a, void (*fn)(void *), void *arg)
{
    struct arena_cleanup *c = arena_alloc(a, sizeof(*c));
    if (!c)
        return -1;
    c->fn = fn;
    c->arg = arg;
    c->next = a->cleanups;
    a->cleanups = c;
    return 0;
}
