/* A test-only LD_PRELOAD shim that counts the heap allocations of a whole
 * process (malloc, calloc, realloc and the aligned allocators, from every
 * library), so a test can assert how many a request costs. On SIGUSR2 it
 * writes "alloc_count=N" to stderr. Not for the sanitizer build, which has
 * allocators of its own. Every allocation and free goes to glibc's
 * allocator, also in a binary linked with jemalloc: the count is of calls,
 * whichever allocator would have served them. */
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static unsigned long long count;

static void counted(void) { __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED); }

void *malloc(size_t n)
{
    counted();
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    counted();
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    counted();
    return __libc_realloc(p, n);
}

void free(void *p) { __libc_free(p); }

void *memalign(size_t align, size_t n)
{
    counted();
    return __libc_memalign(align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    counted();
    return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    counted();
    void *p = __libc_memalign(align, n);
    if (!p)
        return 12; /* ENOMEM */
    *out = p;
    return 0;
}

static void report(int sig)
{
    char buf[64] = "alloc_count=";
    char digits[24];
    unsigned long long v = __atomic_load_n(&count, __ATOMIC_RELAXED);
    int i = 0;
    do {
        digits[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    size_t o = strlen(buf);
    while (i)
        buf[o++] = digits[--i];
    buf[o++] = '\n';
    ssize_t w = write(STDERR_FILENO, buf, o);
    (void)w;
}

__attribute__((constructor)) static void install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = report;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR2, &sa, NULL);
}
