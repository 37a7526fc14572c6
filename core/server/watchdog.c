/* The watchdog (see watchdog.h).
 *
 * Each slot holds `since`: the time (monotonic ms) from which its thread may
 * be stuck, 0 when it is not watched. A worker's loop timer moves `since` to
 * now several times per hard limit; a busy main thread sets it once and
 * clears it when done. The notes are plain byte arrays written by their own
 * thread and read by the watchdog only to print them: a torn read prints a
 * mixed line, never crashes, and only matters at the moment the process
 * exits anyway. */
#include "watchdog.h"

#include "log.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct watchdog_slot {
    int id;          /* worker index, or -1 for the main thread */
    long long since; /* atomic */
    struct event *beat;
    char rid[40];
    char request[160];
    char busy[128];               /* watchdog_busy's note */
    const char *what, *of, *file; /* atomic; watchdog_note_script */
};

static struct {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int running;
    int n; /* slots: workers, then the main thread */
    struct watchdog_slot *slots;
    int hard_ms;
    long long deadline; /* atomic; 0: none */
} wd = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void copy_note(char *dst, size_t size, const char *src)
{
    size_t n = src ? strnlen(src, size - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

/* Reads a note another thread may be writing: bounded, always terminated. */
static void read_note(char *dst, size_t size, const char *src, size_t src_size)
{
    size_t n = size < src_size ? size : src_size;
    memcpy(dst, src, n);
    dst[n - 1] = '\0';
}

static void stuck(struct watchdog_slot *s, long long for_ms)
{
    char rid[40], request[160], script[512];
    read_note(rid, sizeof(rid), s->rid, sizeof(s->rid));
    read_note(request, sizeof(request), s->request, sizeof(s->request));
    const char *what = __atomic_load_n(&s->what, __ATOMIC_ACQUIRE);
    const char *of = __atomic_load_n(&s->of, __ATOMIC_ACQUIRE);
    const char *file = __atomic_load_n(&s->file, __ATOMIC_ACQUIRE);
    if (what)
        snprintf(script, sizeof(script), "%s%s%s%s%s%s", what, of ? " " : "", of ? of : "",
                 file ? " (" : "", file ? file : "", file ? ")" : "");
    else
        read_note(script, sizeof(script), s->busy, sizeof(s->busy));
    char who[32];
    if (s->id < 0)
        snprintf(who, sizeof(who), "the main thread");
    else
        snprintf(who, sizeof(who), "worker %d's event loop", s->id);
    log_msg(LOG_ERROR, rid[0] ? rid : NULL,
            "watchdog: %s has not turned for %lld ms (limit %d ms)%s%s%s%s; stopping the "
            "process (exit %d) so that the service manager restarts it",
            who, for_ms, wd.hard_ms, request[0] ? "; request " : "", request,
            script[0] ? "; running " : "", script, WATCHDOG_EXIT);
    _exit(WATCHDOG_EXIT);
}

static void *watch(void *arg)
{
    int period = wd.hard_ms / 10 < 100 ? wd.hard_ms / 10 : 100;
    pthread_mutex_lock(&wd.lock);
    while (wd.running) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)period * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&wd.wake, &wd.lock, &until);
        if (!wd.running)
            break;
        long long now = mono_ms();
        for (int i = 0; i < wd.n; i++) {
            long long since = __atomic_load_n(&wd.slots[i].since, __ATOMIC_ACQUIRE);
            if (since && now - since > wd.hard_ms)
                stuck(&wd.slots[i], now - since);
        }
        long long deadline = __atomic_load_n(&wd.deadline, __ATOMIC_ACQUIRE);
        if (deadline && now > deadline) {
            log_msg(LOG_ERROR, NULL,
                    "watchdog: still running %lld ms after the drain deadline "
                    "(a worker does not stop); exiting (exit %d)",
                    now - deadline, WATCHDOG_EXIT);
            _exit(WATCHDOG_EXIT);
        }
    }
    pthread_mutex_unlock(&wd.lock);
    return NULL;
}

int watchdog_start(int n_workers, int hard_ms)
{
    wd.n = n_workers + 1;
    wd.slots = calloc((size_t)wd.n, sizeof(*wd.slots));
    if (!wd.slots)
        return -1;
    for (int i = 0; i < wd.n; i++)
        wd.slots[i].id = i < n_workers ? i : -1;
    wd.hard_ms = hard_ms;
    wd.deadline = 0;
    wd.running = 1;
    if (pthread_create(&wd.thread, NULL, watch, NULL) != 0) {
        wd.running = 0;
        free(wd.slots);
        wd.slots = NULL;
        return -1;
    }
    return 0;
}

void watchdog_stop(void)
{
    if (!wd.slots)
        return;
    pthread_mutex_lock(&wd.lock);
    wd.running = 0;
    pthread_cond_signal(&wd.wake);
    pthread_mutex_unlock(&wd.lock);
    pthread_join(wd.thread, NULL);
    free(wd.slots); /* every loop has unwatched its slot */
    wd.slots = NULL;
}

struct watchdog_slot *watchdog_slot(int i)
{
    if (!wd.slots)
        return NULL;
    return i < 0 ? &wd.slots[wd.n - 1] : i < wd.n - 1 ? &wd.slots[i] : NULL;
}

static void on_beat(evutil_socket_t fd, short what, void *arg)
{
    struct watchdog_slot *s = arg;
    __atomic_store_n(&s->since, mono_ms(), __ATOMIC_RELEASE);
}

int watchdog_watch(struct watchdog_slot *s, struct event_base *base)
{
    if (!s)
        return 0;
    s->beat = event_new(base, -1, EV_PERSIST, on_beat, s);
    if (!s->beat)
        return -1;
    int every = wd.hard_ms / 5 < 250 ? wd.hard_ms / 5 : 250;
    struct timeval tv = {every / 1000, (every % 1000) * 1000};
    on_beat(-1, 0, s);
    return event_add(s->beat, &tv);
}

void watchdog_unwatch(struct watchdog_slot *s)
{
    if (!s)
        return;
    __atomic_store_n(&s->since, 0, __ATOMIC_RELEASE);
    if (s->beat) {
        event_free(s->beat);
        s->beat = NULL;
    }
}

void watchdog_busy(struct watchdog_slot *s, const char *what)
{
    if (!s)
        return;
    copy_note(s->busy, sizeof(s->busy), what);
    __atomic_store_n(&s->since, mono_ms(), __ATOMIC_RELEASE);
}

void watchdog_idle(struct watchdog_slot *s)
{
    if (!s)
        return;
    __atomic_store_n(&s->since, 0, __ATOMIC_RELEASE);
    s->busy[0] = '\0';
}

void watchdog_note_request(struct watchdog_slot *s, const char *rid, const char *method,
                           const char *path)
{
    if (!s)
        return;
    copy_note(s->rid, sizeof(s->rid), rid);
    size_t m = strnlen(method, 16);
    if (m + 2 >= sizeof(s->request))
        return;
    memcpy(s->request, method, m);
    s->request[m] = ' ';
    copy_note(s->request + m + 1, sizeof(s->request) - m - 1, path);
}

void watchdog_note_script(struct watchdog_slot *s, const char *what, const char *of,
                          const char *file)
{
    if (!s)
        return;
    __atomic_store_n(&s->of, of, __ATOMIC_RELAXED);
    __atomic_store_n(&s->file, file, __ATOMIC_RELAXED);
    __atomic_store_n(&s->what, what, __ATOMIC_RELEASE);
}

void watchdog_deadline(int ms) { __atomic_store_n(&wd.deadline, mono_ms() + ms, __ATOMIC_RELEASE); }
