/* Per-request memory (an arena; nginx and h2o call it a pool).
 *
 * A request's state is allocated from its arena and freed with it in one go:
 * handlers, the login flow and the Lua glue never free what they take from
 * it. Blocks come from a small per-thread cache, so a request that fits in
 * one block costs no malloc at all once the cache is warm. Allocations larger
 * than a block get a block of their own. Not thread-safe: an arena belongs to
 * the worker thread that made it. */
#ifndef WX_ARENA_H
#define WX_ARENA_H
#include <stddef.h>

#define ARENA_BLOCK_SIZE 4096 /* a standard block, its header included */

struct arena_block;
struct arena_cleanup;

struct arena {
    struct arena_block *blocks;     /* newest first */
    char *pos, *end;                /* free space in the newest block */
    struct arena_cleanup *cleanups; /* newest first */
};

void arena_init(struct arena *a);
/* Frees every block (back to the thread's cache); the arena is empty again. */
void arena_reset(struct arena *a);

/* Aligned to 16 bytes. NULL only when the system is out of memory. */
void *arena_alloc(struct arena *a, size_t n);
void *arena_calloc(struct arena *a, size_t n);
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
/* printf into the arena; NULL on failure. */
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs fn(arg) when the arena is reset, newest first: for what must be
 * released with the request but does not live in it (a retained config). */
int arena_on_reset(struct arena *a, void (*fn)(void *), void *arg);

/* Blocks kept in this thread's cache; frees them all (thread exit, tests). */
void arena_cache_trim(void);

#endif
