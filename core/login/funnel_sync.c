/* The funnel's ticks and its records in the store (funnel_sync.h). */
#include "funnel_sync.h"

#include "funnel.h"
#include "log.h"

#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEY_COUNT     "fs:count"
#define KEY_SLOT      "fs:slot:"
#define KEY_RECORD    "fs:n:"
#define MAX_INSTANCES 256

enum sync_phase { PHASE_FIND, PHASE_BUSY, PHASE_READY };

static struct {
    store_conn_t *store; /* NULL: nothing to share (memory store) */
    struct event *tick;
    char node[320];
    long slot;     /* this instance's slot; read by other workers once ready */
    int ready;     /* the record was loaded back: writes may begin */
    int phase;     /* PHASE_*: the start-up lookup's progress */
    int writing;   /* a record write is in flight */
    int unwritten; /* the aggregate changed since the last write */
} g;

static void key_of(char *out, size_t n, const char *prefix, const char *rest)
{
    snprintf(out, n, "%s%s", prefix, rest);
}

static void set_ready(long slot)
{
    g.slot = slot;
    g.unwritten = 1;
    __atomic_store_n(&g.ready, 1, __ATOMIC_RELEASE);
    g.phase = PHASE_READY;
}

static void on_own_record(const struct store_reply *rep, void *arg)
{
    long slot = (long)(intptr_t)arg;
    if (rep->status == STORE_ERROR) {
        g.phase = PHASE_FIND; /* try again on a later tick */
        return;
    }
    if (rep->status == STORE_OK && funnel_load_record(rep->value, rep->len) != 0)
        log_warn("funnel: this instance's earlier counts do not parse; starting afresh");
    set_ready(slot);
}

static void load_own(long slot)
{
    char key[64], num[24];
    if (!g.store)
        return;
    snprintf(num, sizeof(num), "%ld", slot);
    key_of(key, sizeof(key), KEY_RECORD, num);
    if (store_get(g.store, key, strlen(key), on_own_record, (void *)(intptr_t)slot) != 0)
        g.phase = PHASE_FIND;
}

static void find_slot(void);

static void on_slot_added(const struct store_reply *rep, void *arg)
{
    long slot = (long)(intptr_t)arg;
    if (rep->status == STORE_OK)
        load_own(slot);
    else if (rep->status == STORE_EXISTS)
        find_slot(); /* another process of this node won: use its slot */
    else
        g.phase = PHASE_FIND;
}

static void on_slot_counted(const struct store_reply *rep, void *arg)
{
    (void)arg;
    if (rep->status != STORE_OK || rep->number < 1 || !g.store) {
        g.phase = PHASE_FIND;
        return;
    }
    char key[400], val[24];
    snprintf(val, sizeof(val), "%lld", rep->number);
    key_of(key, sizeof(key), KEY_SLOT, g.node);
    if (store_add(g.store, key, strlen(key), val, strlen(val), 0, on_slot_added,
                  (void *)(intptr_t)rep->number) != 0)
        g.phase = PHASE_FIND;
}

static void on_slot(const struct store_reply *rep, void *arg)
{
    (void)arg;
    if (rep->status == STORE_OK) {
        char buf[24];
        snprintf(buf, sizeof(buf), "%.*s", (int)(rep->len < 23 ? rep->len : 23), rep->value);
        long slot = strtol(buf, NULL, 10);
        if (slot >= 1) {
            load_own(slot);
            return;
        }
    }
    if (rep->status == STORE_ERROR || !g.store ||
        store_incr(g.store, KEY_COUNT, strlen(KEY_COUNT), 1, 0, on_slot_counted, NULL) != 0)
        g.phase = PHASE_FIND;
}

static void find_slot(void)
{
    if (!g.store)
        return;
    char key[400];
    key_of(key, sizeof(key), KEY_SLOT, g.node);
    g.phase = PHASE_BUSY;
    if (store_get(g.store, key, strlen(key), on_slot, NULL) != 0)
        g.phase = PHASE_FIND;
}

static void on_written(const struct store_reply *rep, void *arg)
{
    (void)arg;
    g.writing = 0;
    if (rep->status != STORE_OK)
        g.unwritten = 1;
}

static void write_record(void)
{
    char key[64], num[24];
    snprintf(num, sizeof(num), "%ld", g.slot);
    key_of(key, sizeof(key), KEY_RECORD, num);
    char *rec = funnel_record();
    if (!rec)
        return;
    g.unwritten = 0;
    g.writing = 1;
    if (store_set(g.store, key, strlen(key), rec, strlen(rec), 0, on_written, NULL) != 0) {
        g.writing = 0;
        g.unwritten = 1;
    }
    free(rec);
}

/* Every second: fold the cells (counts land in their minute), then, with
 * Redis, find this instance's slot or write its record when it changed. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (funnel_take_dirty())
        g.unwritten = 1;
    if (!g.store)
        return;
    if (g.phase == PHASE_FIND)
        find_slot();
    else if (g.phase == PHASE_READY && g.unwritten && !g.writing)
        write_record();
}

void funnel_sync_flush(void)
{
    if (funnel_take_dirty())
        g.unwritten = 1;
    if (g.store && g.phase == PHASE_READY && g.unwritten && !g.writing)
        write_record();
}

int funnel_sync_start(store_conn_t *store, struct event_base *base, int public_port)
{
    char host[256] = "localhost", nodebuf[8];
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    snprintf(g.node, sizeof(g.node), "%s:%d", host, public_port);
    /* the memory store is this process's alone: nobody to share with */
    g.store = store && store_node(store, nodebuf, sizeof(nodebuf)) ? store : NULL;
    g.phase = PHASE_FIND;
    g.tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {1, 0};
    return g.tick && event_add(g.tick, &tv) == 0 ? 0 : -1;
}

void funnel_sync_stop(void)
{
    if (g.tick)
        event_free(g.tick);
    g.tick = NULL;
    g.store = NULL;
}

/* ---- reading the fleet ---- */

struct collect {
    struct funnel_view *v;
    funnel_collect_cb cb;
    void *arg;
    store_conn_t *store;
    int pending, instances;
};

static void collect_done(struct collect *c)
{
    funnel_view_set_instances(c->v, c->instances);
    c->cb(c->v, c->arg);
    free(c);
}

static void on_record(const struct store_reply *rep, void *arg)
{
    struct collect *c = arg;
    if (rep->status == STORE_OK && funnel_view_add_record(c->v, rep->value, rep->len) == 0)
        c->instances++;
    if (--c->pending == 0)
        collect_done(c);
}

static void on_count(const struct store_reply *rep, void *arg)
{
    struct collect *c = arg;
    long n = 0, own = __atomic_load_n(&g.ready, __ATOMIC_ACQUIRE) ? g.slot : 0;
    if (rep->status == STORE_OK) {
        char buf[24];
        snprintf(buf, sizeof(buf), "%.*s", (int)(rep->len < 23 ? rep->len : 23), rep->value);
        n = strtol(buf, NULL, 10);
    }
    if (n > MAX_INSTANCES)
        n = MAX_INSTANCES;
    c->pending = 1; /* held until every get is issued */
    for (long i = 1; i <= n; i++) {
        if (i == own)
            continue;
        char key[64], num[24];
        snprintf(num, sizeof(num), "%ld", i);
        key_of(key, sizeof(key), KEY_RECORD, num);
        c->pending++;
        if (store_get(c->store, key, strlen(key), on_record, c) != 0)
            c->pending--;
    }
    if (--c->pending == 0)
        collect_done(c);
}

void funnel_collect(store_conn_t *store, funnel_collect_cb cb, void *arg)
{
    struct funnel_view *v = funnel_view_new();
    struct collect *c = calloc(1, sizeof(*c));
    char nodebuf[8];
    if (!v || !c) {
        funnel_view_free(v);
        free(c);
        cb(NULL, arg);
        return;
    }
    funnel_view_add_local(v);
    *c = (struct collect){.v = v, .cb = cb, .arg = arg, .store = store, .instances = 1};
    if (!store || !store_node(store, nodebuf, sizeof(nodebuf)) ||
        store_get(store, KEY_COUNT, strlen(KEY_COUNT), on_count, c) != 0)
        collect_done(c);
}
