/* The memory store: one key-value table per process, shared by every worker
 * thread, with TTLs and a memory cap.
 *
 * A key hashes (SipHash-1-3 with a random seed, so crafted keys cannot pile
 * into one chain) to one of 64 shards: a chained hash table behind its own
 * mutex, so workers rarely wait for each other. Each shard also keeps its
 * entries that have a TTL in a min-heap ordered by expiry time. An expired
 * key is dropped when a call finds it (lazy expiry), and every call pops a
 * few expired keys off the top of its shard's heap (active expiry), so keys
 * nobody reads again do not pile up.
 *
 * Every entry is charged (key, value and bookkeeping) against the cap. A
 * write that would pass the cap first sweeps the expired keys of every
 * shard. If that is not enough, it evicts evictable entries, oldest first:
 * those written with store_add_evictable (login states that nobody may ever
 * call back for), kept per shard in insertion order. Only then does it fail
 * with "store full": no other live entry is ever evicted, so a flood of
 * /auth makes old unused states give way instead of refusing every login.
 *
 * Replies are built under the shard lock, then queued on the calling
 * connection and delivered on the next turn of its event loop, as Redis
 * replies are: every caller sees one order (the call returns, then the
 * callback runs), whichever store it talks to. A get copies its value into
 * the queued reply. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "metrics.h"
#include "store_impl.h"

#include <event2/event.h>

#define SHARD_BITS      6
#define NSHARDS         (1u << SHARD_BITS)
#define MIN_BUCKETS     16
#define MIN_HEAP        16
#define EXPIRE_PER_CALL 16         /* expired keys one call may sweep */
#define DEFAULT_MAX_MB  512        /* a cap, not a reservation: used as filled */
#define MAX_MAX_MB      (1u << 20) /* 1 TiB */
#define NOT_IN_HEAP     SIZE_MAX
#define EVICT_SLACK     64 /* evict 1/64 of the cap more than a write needs */

struct entry {
    struct entry *next;          /* bucket chain */
    struct entry *older, *newer; /* the shard's evictable entries, oldest first */
    int evictable;
    uint64_t hash;
    uint64_t expire_at; /* ms on the store clock; 0: never */
    size_t heap_idx;    /* index in the shard's heap; NOT_IN_HEAP without TTL */
    size_t klen, vlen;
    char data[]; /* the key, then the value */
};

struct shard {
    _Alignas(64) pthread_mutex_t lock; /* one cache line per shard at least */
    struct entry **buckets;
    size_t mask; /* buckets - 1 (a power of two) */
    size_t count;
    struct entry **heap; /* min-heap on expire_at */
    size_t heap_len, heap_cap;
    struct entry *oldest, *newest; /* evictable entries in insertion order */
};

struct mem_store {
    store_t base;
    uint64_t seed[2];
    size_t cap;
    _Atomic size_t used;
    _Atomic int64_t clock_offset; /* store_memory_advance_clock() */
    _Atomic size_t evictions;     /* evictable entries evicted to make room */
    struct shard shards[NSHARDS];
};

/* A reply waiting for the next turn of its connection's loop. */
struct pending {
    store_cb cb;
    void *arg;
    struct store_reply r;
    char *value; /* a get's copy (malloc'd), handed over as r.value */
};

/* A worker's connection: the queue of replies its loop delivers. */
struct mem_conn {
    store_conn_t base;
    struct event *deliver; /* active while replies wait */
    struct pending *q;
    size_t head, len, cap; /* q[head, head + len) wait */
};

static const char err_full[] = "store full";
static const char err_nomem[] = "out of memory";

/* ---------------------------------------------------------------- hashing */

static uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

static void sipround(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = rotl(v[1], 13);
    v[1] ^= v[0];
    v[0] = rotl(v[0], 32);
    v[2] += v[3];
    v[3] = rotl(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = rotl(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = rotl(v[1], 17);
    v[1] ^= v[2];
    v[2] = rotl(v[2], 32);
}

/* SipHash-1-3 (as Redis uses for its dicts). Words are read in host order:
 * the hash never leaves the process, so only its spread matters. */
static uint64_t siphash13(const uint64_t k[2], const unsigned char *in, size_t len)
{
    uint64_t v[4] = {0x736f6d6570736575ULL ^ k[0], 0x646f72616e646f6dULL ^ k[1],
                     0x6c7967656e657261ULL ^ k[0], 0x7465646279746573ULL ^ k[1]};
    uint64_t last = (uint64_t)len << 56, m;
    size_t i;

    for (i = 0; i + 8 <= len; i += 8) {
        memcpy(&m, in + i, 8);
        v[3] ^= m;
        sipround(v);
        v[0] ^= m;
    }
    for (int shift = 0; i < len; i++, shift += 8)
        last |= (uint64_t)in[i] << shift;
    v[3] ^= last;
    sipround(v);
    v[0] ^= last;
    v[2] ^= 0xff;
    sipround(v);
    sipround(v);
    sipround(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* The top bits pick the shard, the low bits the bucket inside it. */
static struct shard *shard_of(struct mem_store *m, uint64_t hash)
{
    return &m->shards[hash >> (64 - SHARD_BITS)];
}

static struct entry **bucket_of(struct shard *sh, uint64_t hash)
{
    return &sh->buckets[hash & sh->mask];
}

/* ------------------------------------------------------------------ clock */

/* Milliseconds on CLOCK_MONOTONIC plus the test offset: wall-clock jumps
 * never expire or revive keys. */
static uint64_t mem_now(struct mem_store *m)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + atomic_load(&m->clock_offset);
    return ms > 0 ? (uint64_t)ms : 0;
}

static uint64_t expiry_for(uint64_t now, uint64_t ttl_ms)
{
    if (!ttl_ms)
        return 0;
    return ttl_ms > UINT64_MAX - now ? UINT64_MAX : now + ttl_ms;
}

static bool is_expired(const struct entry *e, uint64_t now)
{
    return e->expire_at && e->expire_at <= now;
}

/* -------------------------------------------------------- the expiry heap */

static void heap_place(struct shard *sh, size_t i, struct entry *e)
{
    sh->heap[i] = e;
    e->heap_idx = i;
}

static void heap_up(struct shard *sh, size_t i)
{
    struct entry *e = sh->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (sh->heap[parent]->expire_at <= e->expire_at)
            break;
        heap_place(sh, i, sh->heap[parent]);
        i = parent;
    }
    heap_place(sh, i, e);
}

static void heap_down(struct shard *sh, size_t i)
{
    struct entry *e = sh->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= sh->heap_len)
            break;
        if (child + 1 < sh->heap_len && sh->heap[child + 1]->expire_at < sh->heap[child]->expire_at)
            child++;
        if (sh->heap[child]->expire_at >= e->expire_at)
            break;
        heap_place(sh, i, sh->heap[child]);
        i = child;
    }
    heap_place(sh, i, e);
}

/* Make room for one more heap slot before a write commits, so the commit
 * itself cannot fail half-way. */
static int heap_reserve(struct shard *sh)
{
    if (sh->heap_len < sh->heap_cap)
        return 0;
    size_t cap = sh->heap_cap ? sh->heap_cap * 2 : MIN_HEAP;
    struct entry **heap = realloc(sh->heap, cap * sizeof *heap);
    if (!heap)
        return -1;
    sh->heap = heap;
    sh->heap_cap = cap;
    return 0;
}

static void heap_push(struct shard *sh, struct entry *e)
{
    heap_place(sh, sh->heap_len++, e);
    heap_up(sh, e->heap_idx);
}

/* Remove e from anywhere in the heap: the last element takes its place and
 * moves up or down to where it belongs. */
static void heap_remove(struct shard *sh, struct entry *e)
{
    size_t i = e->heap_idx;
    struct entry *last = sh->heap[--sh->heap_len];
    if (i < sh->heap_len) {
        heap_place(sh, i, last);
        heap_up(sh, i);
        heap_down(sh, last->heap_idx);
    }
    e->heap_idx = NOT_IN_HEAP;
}

/* ---------------------------------------------------------------- entries */

/* What an entry is charged against the cap: itself plus its bucket and
 * heap pointers. */
static size_t entry_cost(size_t klen, size_t vlen)
{
    return sizeof(struct entry) + 2 * sizeof(struct entry *) + klen + vlen;
}

static struct entry *entry_new(uint64_t hash, const char *key, size_t klen, const char *val,
                               size_t vlen, uint64_t expire_at)
{
    struct entry *e = malloc(sizeof *e + klen + vlen);
    if (!e)
        return NULL;
    e->next = e->older = e->newer = NULL;
    e->evictable = 0;
    e->hash = hash;
    e->expire_at = expire_at;
    e->heap_idx = NOT_IN_HEAP;
    e->klen = klen;
    e->vlen = vlen;
    memcpy(e->data, key, klen);
    memcpy(e->data + klen, val, vlen);
    return e;
}

/* Account for an entry of old_cost bytes becoming new_cost bytes (0: none).
 * Growth past the cap is refused; the check and the charge are one atomic
 * step, so racing writers cannot overshoot together. */
static int mem_charge(struct mem_store *m, size_t old_cost, size_t new_cost)
{
    if (new_cost <= old_cost) {
        atomic_fetch_sub(&m->used, old_cost - new_cost);
        return 0;
    }
    size_t grow = new_cost - old_cost;
    if (atomic_fetch_add(&m->used, grow) + grow > m->cap) {
        atomic_fetch_sub(&m->used, grow);
        return -1;
    }
    return 0;
}

static void evict_list_add(struct shard *sh, struct entry *e)
{
    e->older = sh->newest;
    e->newer = NULL;
    if (sh->newest)
        sh->newest->newer = e;
    else
        sh->oldest = e;
    sh->newest = e;
}

static void evict_list_remove(struct shard *sh, struct entry *e)
{
    if (!e->evictable)
        return;
    if (e->older)
        e->older->newer = e->newer;
    else
        sh->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        sh->newest = e->older;
}

/* Unlink and free the entry *slot points at. */
static void entry_remove(struct mem_store *m, struct shard *sh, struct entry **slot)
{
    struct entry *e = *slot;
    *slot = e->next;
    evict_list_remove(sh, e);
    if (e->heap_idx != NOT_IN_HEAP)
        heap_remove(sh, e);
    sh->count--;
    mem_charge(m, entry_cost(e->klen, e->vlen), 0);
    free(e);
}

/* Put e in the table: in place of *slot's entry, or at the head of its
 * bucket when slot is NULL. The caller has charged e and reserved a heap
 * slot, so this cannot fail. */
static void entry_link(struct shard *sh, struct entry **slot, struct entry *e)
{
    if (slot) {
        struct entry *old = *slot;
        e->next = old->next;
        *slot = e;
        if (old->heap_idx != NOT_IN_HEAP)
            heap_remove(sh, old);
        evict_list_remove(sh, old);
        free(old);
    } else {
        struct entry **head = bucket_of(sh, e->hash);
        e->next = *head;
        *head = e;
        sh->count++;
    }
    if (e->expire_at)
        heap_push(sh, e);
    if (e->evictable)
        evict_list_add(sh, e);
}

/* The link that points at key's entry, or NULL when the key is absent. An
 * expired entry found on the way is removed (lazy expiry). */
static struct entry **find_live(struct mem_store *m, struct shard *sh, uint64_t hash,
                                const char *key, size_t klen, uint64_t now)
{
    for (struct entry **slot = bucket_of(sh, hash); *slot; slot = &(*slot)->next) {
        struct entry *e = *slot;
        if (e->hash != hash || e->klen != klen || memcmp(e->data, key, klen) != 0)
            continue;
        if (!is_expired(e, now))
            return slot;
        entry_remove(m, sh, slot);
        return NULL;
    }
    return NULL;
}

/* Write key=val in place of *slot's entry (slot NULL: a new key). Everything
 * that can fail happens before the table changes. Returns NULL, err_full or
 * err_nomem. */
static const char *entry_put(struct mem_store *m, struct shard *sh, struct entry **slot,
                             uint64_t hash, const char *key, size_t klen, const char *val,
                             size_t vlen, uint64_t expire_at, int evictable)
{
    size_t old_cost = slot ? entry_cost((*slot)->klen, (*slot)->vlen) : 0;
    size_t new_cost = entry_cost(klen, vlen);
    if (new_cost > m->cap)
        return err_full; /* could never fit: skip the malloc */
    if (expire_at && heap_reserve(sh) < 0)
        return err_nomem;
    struct entry *e = entry_new(hash, key, klen, val, vlen, expire_at);
    if (!e)
        return err_nomem;
    e->evictable = evictable;
    if (mem_charge(m, old_cost, new_cost) < 0) {
        free(e);
        return err_full;
    }
    entry_link(sh, slot, e);
    return NULL;
}

/* ----------------------------------------------------------------- shards */

/* Pop up to limit expired entries off the top of the shard's heap. */
static void expire_some(struct mem_store *m, struct shard *sh, uint64_t now, size_t limit)
{
    while (limit-- && sh->heap_len && is_expired(sh->heap[0], now)) {
        struct entry *e = sh->heap[0];
        struct entry **slot = bucket_of(sh, e->hash);
        while (*slot != e)
            slot = &(*slot)->next;
        entry_remove(m, sh, slot);
    }
}

/* Move every entry to a table of n buckets. On allocation failure the old
 * table stays: slower chains, still correct. */
static void shard_rehash(struct shard *sh, size_t n)
{
    struct entry **buckets = calloc(n, sizeof *buckets);
    if (!buckets)
        return;
    for (size_t i = 0; i <= sh->mask; i++) {
        struct entry *e = sh->buckets[i], *next;
        for (; e; e = next) {
            next = e->next;
            e->next = buckets[e->hash & (n - 1)];
            buckets[e->hash & (n - 1)] = e;
        }
    }
    free(sh->buckets);
    sh->buckets = buckets;
    sh->mask = n - 1;
}

/* Keep the load factor between 1/8 and 1, and give back heap space after a
 * wave of expiries. Runs only at unlock, when no slot pointer is held. */
static void shard_fit(struct shard *sh)
{
    size_t n = sh->mask + 1;
    if (sh->count > n)
        shard_rehash(sh, n * 2);
    else if (n > MIN_BUCKETS && sh->count < n / 8)
        shard_rehash(sh, n / 2);

    if (sh->heap_cap > MIN_HEAP && sh->heap_len < sh->heap_cap / 4) {
        struct entry **heap = realloc(sh->heap, sh->heap_cap / 2 * sizeof *heap);
        if (heap) {
            sh->heap = heap;
            sh->heap_cap /= 2;
        }
    }
}

/* Every call takes its shard through these two: locking also does the
 * call's share of active expiry. */
static void shard_lock(struct mem_store *m, struct shard *sh, uint64_t now)
{
    pthread_mutex_lock(&sh->lock);
    expire_some(m, sh, now, EXPIRE_PER_CALL);
}

static void shard_unlock(struct shard *sh)
{
    shard_fit(sh);
    pthread_mutex_unlock(&sh->lock);
}

/* Drop every expired key of every shard, one shard lock at a time (never
 * two at once, so no lock order to get wrong). The heaps make this cost
 * one look per shard plus the keys actually dropped. */
static void sweep_all(struct mem_store *m)
{
    uint64_t now = mem_now(m);
    for (unsigned i = 0; i < NSHARDS; i++) {
        shard_lock(m, &m->shards[i], now);
        expire_some(m, &m->shards[i], now, SIZE_MAX);
        shard_unlock(&m->shards[i]);
    }
}

static int shard_init(struct shard *sh)
{
    memset(sh, 0, sizeof *sh);
    sh->buckets = calloc(MIN_BUCKETS, sizeof *sh->buckets);
    if (!sh->buckets)
        return -1;
    sh->mask = MIN_BUCKETS - 1;
    if (pthread_mutex_init(&sh->lock, NULL) != 0) {
        free(sh->buckets);
        return -1;
    }
    return 0;
}

static void shard_free(struct shard *sh)
{
    for (size_t i = 0; i <= sh->mask; i++) {
        struct entry *e = sh->buckets[i], *next;
        for (; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(sh->buckets);
    free(sh->heap);
    pthread_mutex_destroy(&sh->lock);
}

/* ----------------------------------------------------------------- writes */

struct write;
typedef void write_fn(struct mem_store *m, struct shard *sh, uint64_t hash, const struct write *w,
                      uint64_t now, struct store_reply *r);

/* One write call, applied under its shard's lock by mem_write(). */
struct write {
    write_fn *apply;
    const char *key;
    size_t klen;
    const char *val;
    size_t vlen;
    long long delta;
    uint64_t ttl_ms;
    int evictable; /* add: the entry may be evicted to make room */
};

static void apply_set(struct mem_store *m, struct shard *sh, uint64_t hash, const struct write *w,
                      uint64_t now, struct store_reply *r)
{
    struct entry **slot = find_live(m, sh, hash, w->key, w->klen, now);
    r->err = entry_put(m, sh, slot, hash, w->key, w->klen, w->val, w->vlen,
                       expiry_for(now, w->ttl_ms), 0);
}

static void apply_add(struct mem_store *m, struct shard *sh, uint64_t hash, const struct write *w,
                      uint64_t now, struct store_reply *r)
{
    if (find_live(m, sh, hash, w->key, w->klen, now)) {
        r->status = STORE_EXISTS;
        return;
    }
    r->err = entry_put(m, sh, NULL, hash, w->key, w->klen, w->val, w->vlen,
                       expiry_for(now, w->ttl_ms), w->evictable);
}

/* Integers are stored as decimal text, so get returns them readably. A new
 * key gets the call's TTL; an existing one keeps its own. */
static void apply_incr(struct mem_store *m, struct shard *sh, uint64_t hash, const struct write *w,
                       uint64_t now, struct store_reply *r)
{
    struct entry **slot = find_live(m, sh, hash, w->key, w->klen, now);
    uint64_t expire_at = expiry_for(now, w->ttl_ms);
    long long n = 0;
    char text[24];

    if (slot) {
        struct entry *e = *slot;
        if (store_parse_ll(e->data + e->klen, e->vlen, &n) < 0) {
            r->err = "not an integer";
            return;
        }
        expire_at = e->expire_at;
    }
    if (__builtin_add_overflow(n, w->delta, &n)) {
        r->err = "increment would overflow";
        return;
    }
    int len = snprintf(text, sizeof text, "%lld", n);
    r->err = entry_put(m, sh, slot, hash, w->key, w->klen, text, (size_t)len, expire_at, 0);
    r->number = n;
}

static void apply_del(struct mem_store *m, struct shard *sh, uint64_t hash, const struct write *w,
                      uint64_t now, struct store_reply *r)
{
    struct entry **slot = find_live(m, sh, hash, w->key, w->klen, now);
    if (slot)
        entry_remove(m, sh, slot);
    else
        r->status = STORE_NOT_FOUND;
}

/* Delivers the replies queued before this turn began; those their callbacks
 * queue wait for the next turn. */
static void deliver_replies(evutil_socket_t fd, short what, void *arg)
{
    struct mem_conn *mc = arg;
    size_t n = mc->len;
    while (n--) {
        struct pending p = mc->q[mc->head++];
        mc->len--;
        if (mc->len == 0)
            mc->head = 0;
        p.r.value = p.value;
        p.cb(&p.r, p.arg);
        free(p.value);
    }
    if (mc->len)
        event_active(mc->deliver, 0, 0);
}

/* Queues r (and value, whose ownership it takes) for cb on the next turn of
 * c's loop. 0, or -1 (value freed, cb never called) when out of memory. */
static int queue_reply(store_conn_t *c, const struct store_reply *r, char *value, store_cb cb,
                       void *arg)
{
    struct mem_conn *mc = (struct mem_conn *)c;
    if (mc->head + mc->len == mc->cap) {
        if (mc->head > 0) { /* room at the front: slide down */
            memmove(mc->q, mc->q + mc->head, mc->len * sizeof(*mc->q));
            mc->head = 0;
        } else {
            size_t cap = mc->cap ? mc->cap * 2 : 16;
            struct pending *q = realloc(mc->q, cap * sizeof(*q));
            if (!q) {
                free(value);
                return -1;
            }
            mc->q = q;
            mc->cap = cap;
        }
    }
    mc->q[mc->head + mc->len++] = (struct pending){cb, arg, *r, value};
    if (mc->len == 1)
        event_active(mc->deliver, 0, 0);
    return 0;
}

/* wxgate_store_evictions_total, looked up once. */
static struct metrics_counter *evictions_series;

/* Evicts evictable entries, oldest first, until need more bytes fit under
 * the cap: from shard `first` on, one shard lock at a time. Returns how many
 * were evicted. */
static size_t evict_oldest(struct mem_store *m, unsigned first, size_t need)
{
    size_t evicted = 0;
    uint64_t now = mem_now(m);
    for (unsigned k = 0; k < NSHARDS && atomic_load(&m->used) + need > m->cap; k++) {
        struct shard *sh = &m->shards[(first + k) % NSHARDS];
        shard_lock(m, sh, now);
        while (sh->oldest && atomic_load(&m->used) + need > m->cap) {
            struct entry *e = sh->oldest;
            struct entry **slot = bucket_of(sh, e->hash);
            while (*slot != e)
                slot = &(*slot)->next;
            entry_remove(m, sh, slot);
            evicted++;
        }
        shard_unlock(sh);
    }
    atomic_fetch_add(&m->evictions, evicted);
    if (evicted)
        metrics_counter_add_to(&evictions_series, "wxgate_store_evictions_total", evicted);
    return evicted;
}

/* Run one write under its shard's lock and reply after unlocking. A write
 * refused for room is retried after sweep_all() has dropped every expired
 * key, then after evicting the oldest evictable entries, so "store full"
 * means full of data that may not be evicted. */
static int mem_write(store_conn_t *c, const struct write *w, store_cb cb, void *arg)
{
    struct mem_store *m = (struct mem_store *)c->store;
    uint64_t hash = siphash13(m->seed, (const unsigned char *)w->key, w->klen);
    struct shard *sh = shard_of(m, hash);
    struct store_reply r;

    for (int tries = 0;; tries++) {
        uint64_t now = mem_now(m);
        r = (struct store_reply){.status = STORE_OK};
        shard_lock(m, sh, now);
        w->apply(m, sh, hash, w, now, &r);
        shard_unlock(sh);
        /* Other workers may take the room made for this write: evict again,
         * a few times, while there is anything left to evict. */
        if (r.err != err_full || tries == 8)
            break;
        if (tries == 0)
            sweep_all(m);
        else if (!evict_oldest(m, (unsigned)(sh - m->shards),
                               entry_cost(w->klen, w->vlen) + m->cap / EVICT_SLACK))
            break;
    }
    if (r.err)
        r.status = STORE_ERROR;
    return queue_reply(c, &r, NULL, cb, arg);
}

/* ------------------------------------------------------------ the vtable */

/* The value is copied out under the lock and handed to the callback on the
 * next turn. */
static int mem_get(store_conn_t *c, const char *key, size_t klen, store_cb cb, void *arg)
{
    struct mem_store *m = (struct mem_store *)c->store;
    uint64_t hash = siphash13(m->seed, (const unsigned char *)key, klen);
    struct shard *sh = shard_of(m, hash);
    uint64_t now = mem_now(m);
    struct store_reply r = {.status = STORE_NOT_FOUND};
    char *copy = NULL;

    shard_lock(m, sh, now);
    struct entry **slot = find_live(m, sh, hash, key, klen, now);
    if (slot) {
        struct entry *e = *slot;
        copy = malloc(e->vlen + 1);
        if (copy) {
            memcpy(copy, e->data + e->klen, e->vlen);
            copy[e->vlen] = '\0';
            r = (struct store_reply){.status = STORE_OK, .len = e->vlen};
        } else {
            r = (struct store_reply){.status = STORE_ERROR, .err = err_nomem};
        }
    }
    shard_unlock(sh);
    return queue_reply(c, &r, copy, cb, arg);
}

static int mem_set(store_conn_t *c, const char *key, size_t klen, const char *val, size_t vlen,
                   uint64_t ttl_ms, store_cb cb, void *arg)
{
    struct write w = {
        .apply = apply_set, .key = key, .klen = klen, .val = val, .vlen = vlen, .ttl_ms = ttl_ms};
    return mem_write(c, &w, cb, arg);
}

static int mem_add(store_conn_t *c, const char *key, size_t klen, const char *val, size_t vlen,
                   uint64_t ttl_ms, int evictable, store_cb cb, void *arg)
{
    struct write w = {.apply = apply_add,
                      .key = key,
                      .klen = klen,
                      .val = val,
                      .vlen = vlen,
                      .ttl_ms = ttl_ms,
                      .evictable = evictable};
    return mem_write(c, &w, cb, arg);
}

static int mem_incr(store_conn_t *c, const char *key, size_t klen, long long delta, uint64_t ttl_ms,
                    store_cb cb, void *arg)
{
    struct write w = {
        .apply = apply_incr, .key = key, .klen = klen, .delta = delta, .ttl_ms = ttl_ms};
    return mem_write(c, &w, cb, arg);
}

static int mem_del(store_conn_t *c, const char *key, size_t klen, store_cb cb, void *arg)
{
    struct write w = {.apply = apply_del, .key = key, .klen = klen};
    return mem_write(c, &w, cb, arg);
}

/* A connection to the memory store: every thread works on the shared
 * table directly; the connection only queues the replies for its loop. */
/* Nothing to replicate: answers at once (on the next loop turn). */
static int mem_sync(store_conn_t *c, const char *key, size_t klen, store_cb cb, void *arg)
{
    (void)key;
    (void)klen;
    struct store_reply r = {.status = STORE_OK};
    return queue_reply(c, &r, NULL, cb, arg);
}

static store_conn_t *mem_attach(store_t *s, struct event_base *base)
{
    if (!base)
        return NULL;
    struct mem_conn *mc = calloc(1, sizeof(*mc));
    if (!mc)
        return NULL;
    mc->base.store = s;
    mc->deliver = event_new(base, -1, 0, deliver_replies, mc);
    if (!mc->deliver) {
        free(mc);
        return NULL;
    }
    return &mc->base;
}

/* Replies still queued are dropped: their callers are being torn down. */
static void mem_detach(store_conn_t *c)
{
    struct mem_conn *mc = (struct mem_conn *)c;
    for (size_t i = 0; i < mc->len; i++)
        free(mc->q[mc->head + i].value);
    event_free(mc->deliver);
    free(mc->q);
    free(mc);
}

/* Every connection must be detached first. */
static void mem_close(store_t *s)
{
    struct mem_store *m = (struct mem_store *)s;
    for (unsigned i = 0; i < NSHARDS; i++)
        shard_free(&m->shards[i]);
    free(m);
}

static const struct store_ops memory_ops = {
    .close = mem_close,
    .attach = mem_attach,
    .detach = mem_detach,
    .get = mem_get,
    .set = mem_set,
    .add = mem_add,
    .incr = mem_incr,
    .del = mem_del,
    .sync = mem_sync,
};

/* ------------------------------------------------------------ public API */

/* opts: "" or "?max_mb=N" with N in 1..MAX_MAX_MB. */
static int parse_opts(const char *opts, size_t *max_mb, const char **err)
{
    *max_mb = DEFAULT_MAX_MB;
    if (!*opts)
        return 0;
    if (strncmp(opts, "?max_mb=", 8) != 0) {
        *err = "memory store: unknown option (expected memory?max_mb=N)";
        return -1;
    }
    const char *num = opts + 8;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(num, &end, 10);
    if (*num < '0' || *num > '9' || *end || errno || n == 0 || n > MAX_MAX_MB) {
        *err = "memory store: max_mb must be a whole number from 1 to 1048576";
        return -1;
    }
    *max_mb = (size_t)n;
    return 0;
}

store_t *store_memory_open(const char *opts, const char **err)
{
    size_t max_mb;
    if (parse_opts(opts, &max_mb, err) < 0)
        return NULL;

    struct mem_store *m = aligned_alloc(_Alignof(struct mem_store), sizeof *m);
    if (!m) {
        *err = err_nomem;
        return NULL;
    }
    m->base.ops = &memory_ops;
    m->cap = max_mb << 20;
    atomic_init(&m->used, 0);
    atomic_init(&m->evictions, 0);
    atomic_init(&m->clock_offset, 0);
    if (getrandom(m->seed, sizeof m->seed, 0) != (ssize_t)sizeof m->seed) {
        free(m);
        *err = "memory store: no random seed for the hash";
        return NULL;
    }
    for (unsigned i = 0; i < NSHARDS; i++) {
        if (shard_init(&m->shards[i]) == 0)
            continue;
        while (i--)
            shard_free(&m->shards[i]);
        free(m);
        *err = err_nomem;
        return NULL;
    }
    return &m->base;
}

void store_memory_advance_clock(store_t *s, int64_t ms)
{
    if (s && s->ops == &memory_ops)
        atomic_fetch_add(&((struct mem_store *)s)->clock_offset, ms);
}

void store_memory_stats(store_t *s, size_t *keys, size_t *bytes, size_t *evicted)
{
    struct mem_store *m = (struct mem_store *)s;
    size_t n = 0;
    for (unsigned i = 0; i < NSHARDS; i++) {
        pthread_mutex_lock(&m->shards[i].lock);
        n += m->shards[i].count;
        pthread_mutex_unlock(&m->shards[i].lock);
    }
    *keys = n;
    *bytes = atomic_load(&m->used);
    if (evicted)
        *evicted = atomic_load(&m->evictions);
}
