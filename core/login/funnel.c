/* The campaign funnel's counters (funnel.h): per-worker cells of pending
 * counts, the process's aggregate of per-minute buckets, its record format
 * (JSON) and the views and reports built from records. */
#include "funnel.h"

#include "metrics.h"
#include "wechat.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CAMPAIGNS 64
#define CELLS         16
#define RING          1440 /* minutes kept: one day */
#define ERR_SLOTS     8    /* distinct errcodes per campaign; the last is "other" */
#define PAGES         16   /* distinct return pages per campaign; the rest is "other" */
#define NAME_MAX_LEN  128
#define PAGE_MAX_LEN  256
#define ERR_OTHER     (-2147483647 - 1)

/* Upper bounds (seconds) of the /auth-to-completion histogram; a state is
 * valid for 600 s, so the last bucket holds the rare slower ones. */
static const int lat_bounds[] = {1, 2, 3, 5, 8, 13, 20, 30, 45, 60, 90, 120, 300, 600};
#define LAT_N ((int)(sizeof(lat_bounds) / sizeof(lat_bounds[0])) + 1)

const char *const funnel_event_names[FUNNEL_N_EVENTS] = {
    "started",          "sent_to_wechat",     "returned_with_code",
    "completed_ticket", "completed_redirect", "redeemed",
    "declined",         "restarted",          "state_expired",
    "wechat_errors",    "timeouts",           "hook_errors",
    "refused",          "other_errors",       "snapshot_users",
};

/* ---- per-worker cells ---- */

struct cell_row {
    unsigned long long ev[FUNNEL_N_EVENTS];
    unsigned long long lat[LAT_N];
};
static struct cell_row cells[CELLS][MAX_CAMPAIGNS] __attribute__((aligned(64)));
static __thread int my_cell;

static char names[MAX_CAMPAIGNS][NAME_MAX_LEN];
static int n_names; /* published with release once names[n] is written */
static pthread_mutex_t names_mu = PTHREAD_MUTEX_INITIALIZER;

static int enabled = 1;

void funnel_set_enabled(int on) { __atomic_store_n(&enabled, on, __ATOMIC_RELAXED); }

static int on(void) { return __atomic_load_n(&enabled, __ATOMIC_RELAXED); }

void funnel_bind_worker(int worker_id) { my_cell = worker_id % CELLS; }

/* The campaign's slot, added on first sight; -1 when the table is full or
 * the name too long. Lock-free once the name is known. */
static int campaign_slot(const char *name)
{
    if (!name || strlen(name) >= NAME_MAX_LEN)
        return -1;
    int n = __atomic_load_n(&n_names, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    pthread_mutex_lock(&names_mu);
    int slot = -1;
    n = n_names;
    for (int i = 0; i < n && slot < 0; i++)
        if (strcmp(names[i], name) == 0)
            slot = i;
    if (slot < 0 && n < MAX_CAMPAIGNS) {
        snprintf(names[n], NAME_MAX_LEN, "%s", name);
        __atomic_store_n(&n_names, n + 1, __ATOMIC_RELEASE);
        slot = n;
    }
    pthread_mutex_unlock(&names_mu);
    return slot;
}

static void cell_add(int slot, enum funnel_event e)
{
    __atomic_fetch_add(&cells[my_cell][slot].ev[e], 1, __ATOMIC_RELAXED);
}

void funnel_note(const char *campaign, enum funnel_event e)
{
    if (!on())
        return;
    int slot = campaign_slot(campaign);
    if (slot >= 0 && (unsigned)e < FUNNEL_N_EVENTS)
        cell_add(slot, e);
}

/* ---- campaigns' buckets ---- */

struct bucket {
    long minute;
    unsigned ev[FUNNEL_N_EVENTS];
    unsigned lat[LAT_N];
    unsigned err[ERR_SLOTS];
};

struct camp {
    char name[NAME_MAX_LEN];
    unsigned long long total[FUNNEL_N_EVENTS], lat[LAT_N], err_total[ERR_SLOTS];
    int errcode[ERR_SLOTS], n_err;
    struct {
        char page[PAGE_MAX_LEN];
        unsigned long long n;
    } pages[PAGES];
    int n_pages;
    unsigned long long pages_other;
    struct bucket ring[RING];
};

struct set {
    struct camp *c[MAX_CAMPAIGNS];
    int n, instances;
};

static long now_minute(void) { return (long)time(NULL) / 60; }

/* The bucket of minute, recycled when it held an older minute; NULL when
 * the minute is out of the last day or older than what the slot holds. */
static struct bucket *bucket_at(struct camp *c, long minute)
{
    long now = now_minute();
    if (minute > now || minute <= now - RING)
        return NULL;
    struct bucket *b = &c->ring[minute % RING];
    if (b->minute > minute)
        return NULL;
    if (b->minute != minute) {
        memset(b, 0, sizeof(*b));
        b->minute = minute;
    }
    return b;
}

static int err_slot(struct camp *c, int code)
{
    for (int i = 0; i < c->n_err; i++)
        if (c->errcode[i] == code)
            return i;
    if (c->n_err < ERR_SLOTS - 1) {
        c->errcode[c->n_err] = code;
        return c->n_err++;
    }
    c->errcode[ERR_SLOTS - 1] = ERR_OTHER;
    if (c->n_err < ERR_SLOTS)
        c->n_err = ERR_SLOTS;
    return ERR_SLOTS - 1;
}

static void add_page(struct camp *c, const char *page, unsigned long long n)
{
    for (int i = 0; i < c->n_pages; i++)
        if (strcmp(c->pages[i].page, page) == 0) {
            c->pages[i].n += n;
            return;
        }
    if (c->n_pages < PAGES && strlen(page) < PAGE_MAX_LEN) {
        snprintf(c->pages[c->n_pages].page, PAGE_MAX_LEN, "%s", page);
        c->pages[c->n_pages++].n = n;
    } else {
        c->pages_other += n;
    }
}

static struct camp *set_camp(struct set *s, int i, const char *name)
{
    if (i < 0 || i >= MAX_CAMPAIGNS)
        return NULL;
    if (!s->c[i]) {
        s->c[i] = calloc(1, sizeof(struct camp));
        if (!s->c[i])
            return NULL;
        snprintf(s->c[i]->name, NAME_MAX_LEN, "%s", name);
    }
    if (s->n <= i)
        s->n = i + 1;
    return s->c[i];
}

/* A view's campaign by name, added when new. */
static struct camp *view_camp(struct set *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (s->c[i] && strcmp(s->c[i]->name, name) == 0)
            return s->c[i];
    return strlen(name) < NAME_MAX_LEN ? set_camp(s, s->n, name) : NULL;
}

/* ---- the aggregate ---- */

static struct set agg;
static pthread_mutex_t agg_mu = PTHREAD_MUTEX_INITIALIZER;
static int agg_dirty;

static struct camp *agg_camp(const char *name)
{
    int slot = campaign_slot(name);
    return slot < 0 ? NULL : set_camp(&agg, slot, names[slot]);
}

static void merge_locked(void)
{
    long minute = now_minute();
    int n = __atomic_load_n(&n_names, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++) {
        struct camp *c = NULL;
        struct bucket *b = NULL;
        for (int k = 0; k < CELLS; k++) {
            struct cell_row *row = &cells[k][i];
            for (int e = 0; e < FUNNEL_N_EVENTS + LAT_N; e++) {
                unsigned long long *p =
                    e < FUNNEL_N_EVENTS ? &row->ev[e] : &row->lat[e - FUNNEL_N_EVENTS];
                if (!__atomic_load_n(p, __ATOMIC_RELAXED))
                    continue;
                unsigned long long d = __atomic_exchange_n(p, 0, __ATOMIC_RELAXED);
                if (!c && !(c = set_camp(&agg, i, names[i])))
                    return;
                if (!b)
                    b = bucket_at(c, minute);
                if (e < FUNNEL_N_EVENTS) {
                    c->total[e] += d;
                    if (b)
                        b->ev[e] += (unsigned)d;
                } else {
                    c->lat[e - FUNNEL_N_EVENTS] += d;
                    if (b)
                        b->lat[e - FUNNEL_N_EVENTS] += (unsigned)d;
                }
                agg_dirty = 1;
            }
        }
    }
}

void funnel_merge(void)
{
    pthread_mutex_lock(&agg_mu);
    merge_locked();
    pthread_mutex_unlock(&agg_mu);
}

int funnel_take_dirty(void)
{
    pthread_mutex_lock(&agg_mu);
    merge_locked();
    int d = agg_dirty;
    agg_dirty = 0;
    pthread_mutex_unlock(&agg_mu);
    return d;
}

/* The return page without query or fragment: no user data, few values. */
static void page_of(const char *url, char *out, size_t n)
{
    size_t len = url ? strcspn(url, "?#") : 0;
    if (len >= n)
        len = n - 1;
    memcpy(out, url ? url : "", len);
    out[len] = '\0';
}

void funnel_completed(const char *campaign, int with_ticket, int snapshot, long seconds,
                      const char *return_url)
{
    int slot = on() ? campaign_slot(campaign) : -1;
    if (slot < 0)
        return;
    int li = 0;
    while (li < LAT_N - 1 && seconds > lat_bounds[li])
        li++;
    cell_add(slot, with_ticket ? FUNNEL_COMPLETED_TICKET : FUNNEL_COMPLETED_REDIRECT);
    if (snapshot)
        cell_add(slot, FUNNEL_SNAPSHOT);
    __atomic_fetch_add(&cells[my_cell][slot].lat[li], 1, __ATOMIC_RELAXED);
    char page[PAGE_MAX_LEN];
    page_of(return_url, page, sizeof(page));
    pthread_mutex_lock(&agg_mu);
    struct camp *c = set_camp(&agg, slot, names[slot]);
    if (c)
        add_page(c, page, 1);
    agg_dirty = 1;
    pthread_mutex_unlock(&agg_mu);
}

void funnel_failed(const char *campaign, const char *kind, int wechat_err, int errcode)
{
    if (!on())
        return;
    enum funnel_event e = FUNNEL_OTHER_ERROR;
    if (strcmp(kind, "expired") == 0)
        e = FUNNEL_STATE_EXPIRED;
    else if (wechat_err == WECHAT_TIMEOUT || wechat_err == WECHAT_NETWORK)
        e = FUNNEL_TIMEOUT;
    else if (wechat_err != WECHAT_OK)
        e = FUNNEL_WECHAT_ERROR;
    else if (strcmp(kind, "refused") == 0)
        e = FUNNEL_REFUSED;
    if (e != FUNNEL_WECHAT_ERROR) {
        funnel_note(campaign, e);
        return;
    }
    /* rare: counted straight into the aggregate, with the errcode */
    pthread_mutex_lock(&agg_mu);
    struct camp *c = agg_camp(campaign);
    if (c) {
        int k = err_slot(c, errcode);
        struct bucket *b = bucket_at(c, now_minute());
        c->total[e]++;
        c->err_total[k]++;
        if (b) {
            b->ev[e]++;
            b->err[k]++;
        }
        agg_dirty = 1;
    }
    pthread_mutex_unlock(&agg_mu);
}

void funnel_redeemed(const char *campaign, const char *user_json, size_t len)
{
    json_t *u = NULL;
    const char *c = campaign;
    if (!c[0]) {
        u = json_loadb(user_json, len, 0, NULL);
        c = json_string_value(json_object_get(u, "campaign"));
    }
    if (c) {
        funnel_note(c, FUNNEL_REDEEMED);
        metrics_inc("wxgate_tickets_redeemed_total", "campaign", c, NULL);
    }
    json_decref(u);
}

/* ---- adding campaigns together ---- */

static void camp_add(struct camp *d, const struct camp *s)
{
    for (int e = 0; e < FUNNEL_N_EVENTS; e++)
        d->total[e] += s->total[e];
    for (int i = 0; i < LAT_N; i++)
        d->lat[i] += s->lat[i];
    int map[ERR_SLOTS];
    for (int i = 0; i < s->n_err; i++) {
        map[i] = err_slot(d, s->errcode[i]);
        d->err_total[map[i]] += s->err_total[i];
    }
    for (int i = 0; i < s->n_pages; i++)
        add_page(d, s->pages[i].page, s->pages[i].n);
    d->pages_other += s->pages_other;
    for (int r = 0; r < RING; r++) {
        const struct bucket *sb = &s->ring[r];
        struct bucket *b = sb->minute ? bucket_at(d, sb->minute) : NULL;
        if (!b)
            continue;
        for (int e = 0; e < FUNNEL_N_EVENTS; e++)
            b->ev[e] += sb->ev[e];
        for (int i = 0; i < LAT_N; i++)
            b->lat[i] += sb->lat[i];
        for (int i = 0; i < s->n_err; i++)
            b->err[map[i]] += sb->err[i];
    }
}

/* ---- records ---- */

static json_t *ull_array(const unsigned long long *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_integer((json_int_t)v[i]));
    return a;
}

static json_t *uint_array(const unsigned *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

static void errcode_key(int code, char *out, size_t n)
{
    if (code == ERR_OTHER)
        snprintf(out, n, "other");
    else
        snprintf(out, n, "%d", code);
}

static json_t *camp_record(const struct camp *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "t", ull_array(c->total, FUNNEL_N_EVENTS));
    json_object_set_new(o, "l", ull_array(c->lat, LAT_N));
    json_t *e = json_object(), *p = json_object(), *m = json_array();
    char key[16];
    for (int i = 0; i < c->n_err; i++) {
        errcode_key(c->errcode[i], key, sizeof(key));
        json_object_set_new(e, key, json_integer((json_int_t)c->err_total[i]));
    }
    for (int i = 0; i < c->n_pages; i++)
        json_object_set_new(p, c->pages[i].page, json_integer((json_int_t)c->pages[i].n));
    long now = now_minute();
    for (int r = 0; r < RING; r++) {
        const struct bucket *b = &c->ring[r];
        if (!b->minute || b->minute <= now - RING)
            continue;
        json_t *be = json_object();
        for (int i = 0; i < c->n_err; i++)
            if (b->err[i]) {
                errcode_key(c->errcode[i], key, sizeof(key));
                json_object_set_new(be, key, json_integer(b->err[i]));
            }
        json_array_append_new(m, json_pack("[I,o,o,o]", (json_int_t)b->minute,
                                           uint_array(b->ev, FUNNEL_N_EVENTS),
                                           uint_array(b->lat, LAT_N), be));
    }
    json_object_set_new(o, "e", e);
    json_object_set_new(o, "p", p);
    json_object_set_new(o, "po", json_integer((json_int_t)c->pages_other));
    json_object_set_new(o, "m", m);
    return o;
}

static json_t *set_record(const struct set *s)
{
    json_t *ev = json_array(), *camps = json_object();
    for (int e = 0; e < FUNNEL_N_EVENTS; e++)
        json_array_append_new(ev, json_string(funnel_event_names[e]));
    for (int i = 0; i < s->n; i++)
        if (s->c[i])
            json_object_set_new(camps, s->c[i]->name, camp_record(s->c[i]));
    return json_pack("{s:i,s:o,s:i,s:o}", "v", 1, "events", ev, "lat_n", LAT_N, "campaigns", camps);
}

char *funnel_record(void)
{
    pthread_mutex_lock(&agg_mu);
    merge_locked();
    json_t *r = set_record(&agg);
    pthread_mutex_unlock(&agg_mu);
    char *s = r ? json_dumps(r, JSON_COMPACT) : NULL;
    json_decref(r);
    return s;
}

static int parse_errcode(const char *key)
{
    return strcmp(key, "other") == 0 ? ERR_OTHER : atoi(key);
}

/* Adds one record campaign (o) to c; map[k] is the record's event k here. */
static void camp_add_record(struct camp *c, json_t *o, const int *map, size_t n_ev)
{
    json_t *t = json_object_get(o, "t"), *l = json_object_get(o, "l"), *v;
    size_t i;
    const char *key;
    json_array_foreach(t, i, v) if (i < n_ev && map[i] >= 0) c->total[map[i]] +=
        (unsigned long long)json_integer_value(v);
    json_array_foreach(l, i, v) if (i < (size_t)LAT_N) c->lat[i] +=
        (unsigned long long)json_integer_value(v);
    json_object_foreach(json_object_get(o, "e"), key, v)
        c->err_total[err_slot(c, parse_errcode(key))] += (unsigned long long)json_integer_value(v);
    json_object_foreach(json_object_get(o, "p"), key, v)
        add_page(c, key, (unsigned long long)json_integer_value(v));
    c->pages_other += (unsigned long long)json_integer_value(json_object_get(o, "po"));
    json_t *m;
    json_array_foreach(json_object_get(o, "m"), i, m)
    {
        struct bucket *b = bucket_at(c, (long)json_integer_value(json_array_get(m, 0)));
        if (!b)
            continue;
        size_t k;
        json_array_foreach(json_array_get(m, 1), k, v) if (k < n_ev && map[k] >= 0) b->ev[map[k]] +=
            (unsigned)json_integer_value(v);
        json_array_foreach(json_array_get(m, 2), k, v) if (k < (size_t)LAT_N) b->lat[k] +=
            (unsigned)json_integer_value(v);
        json_object_foreach(json_array_get(m, 3), key, v) b->err[err_slot(c, parse_errcode(key))] +=
            (unsigned)json_integer_value(v);
    }
}

/* Adds a record to s, finding campaigns with get. */
static int set_add_record(struct set *s, const char *json, size_t len,
                          struct camp *(*get)(struct set *, const char *))
{
    json_t *r = json_loadb(json, len, 0, NULL);
    json_t *ev = json_object_get(r, "events"), *camps = json_object_get(r, "campaigns");
    if (!json_is_array(ev) || !json_is_object(camps) ||
        json_integer_value(json_object_get(r, "lat_n")) != LAT_N) {
        json_decref(r);
        return -1;
    }
    size_t n_ev = json_array_size(ev);
    int *map = calloc(n_ev + 1, sizeof(int));
    for (size_t i = 0; map && i < n_ev; i++) {
        const char *name = json_string_value(json_array_get(ev, i));
        map[i] = -1;
        for (int e = 0; name && e < FUNNEL_N_EVENTS; e++)
            if (strcmp(name, funnel_event_names[e]) == 0)
                map[i] = e;
    }
    const char *name;
    json_t *o;
    json_object_foreach(camps, name, o)
    {
        struct camp *c = map ? get(s, name) : NULL;
        if (c)
            camp_add_record(c, o, map, n_ev);
    }
    free(map);
    json_decref(r);
    return 0;
}

static struct camp *agg_get(struct set *s, const char *name)
{
    (void)s;
    return agg_camp(name);
}

int funnel_load_record(const char *json, size_t len)
{
    pthread_mutex_lock(&agg_mu);
    int rc = set_add_record(&agg, json, len, agg_get);
    agg_dirty = 1;
    pthread_mutex_unlock(&agg_mu);
    return rc;
}

/* ---- views ---- */

struct funnel_view {
    struct set s;
};

struct funnel_view *funnel_view_new(void) { return calloc(1, sizeof(struct funnel_view)); }

void funnel_view_free(struct funnel_view *v)
{
    if (!v)
        return;
    for (int i = 0; i < v->s.n; i++)
        free(v->s.c[i]);
    free(v);
}

void funnel_view_add_local(struct funnel_view *v)
{
    pthread_mutex_lock(&agg_mu);
    merge_locked();
    for (int i = 0; i < agg.n; i++) {
        struct camp *d = agg.c[i] ? view_camp(&v->s, agg.c[i]->name) : NULL;
        if (d)
            camp_add(d, agg.c[i]);
    }
    pthread_mutex_unlock(&agg_mu);
}

int funnel_view_add_record(struct funnel_view *v, const char *json, size_t len)
{
    return set_add_record(&v->s, json, len, view_camp);
}

void funnel_view_set_instances(struct funnel_view *v, int n) { v->s.instances = n; }

/* ---- the report ---- */

int funnel_window_minutes(const char *window)
{
    if (!window || strcmp(window, "1h") == 0)
        return 60;
    if (strcmp(window, "15m") == 0)
        return 15;
    if (strcmp(window, "1d") == 0)
        return RING;
    if (strcmp(window, "all") == 0)
        return 0;
    return -1;
}

/* The q-quantile's bucket bound in seconds, or null without completions. */
static json_t *quantile(const unsigned long long *lat, double q)
{
    unsigned long long n = 0, seen = 0;
    for (int i = 0; i < LAT_N; i++)
        n += lat[i];
    if (!n)
        return json_null();
    unsigned long long rank = (unsigned long long)(q * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    for (int i = 0; i < LAT_N - 1; i++) {
        seen += lat[i];
        if (seen >= rank)
            return json_integer(lat_bounds[i]);
    }
    return json_integer(lat_bounds[LAT_N - 2]);
}

static unsigned long long failed_of(const unsigned long long *ev)
{
    return ev[FUNNEL_STATE_EXPIRED] + ev[FUNNEL_WECHAT_ERROR] + ev[FUNNEL_TIMEOUT] +
           ev[FUNNEL_REFUSED] + ev[FUNNEL_OTHER_ERROR];
}

static json_t *camp_report(const struct camp *c, int window)
{
    unsigned long long ev[FUNNEL_N_EVENTS] = {0}, lat[LAT_N] = {0}, err[ERR_SLOTS] = {0};
    long now = now_minute();
    long span = window ? window : RING, bin = span <= 60 ? 1 : 30, nbins = span / bin;
    long start = now - span + 1;
    json_t *done = json_array(), *fail = json_array();
    unsigned long long *sd = calloc((size_t)nbins, sizeof(*sd)),
                       *sf = calloc((size_t)nbins, sizeof(*sf));
    for (int r = 0; c && r < RING; r++) {
        const struct bucket *b = &c->ring[r];
        if (!b->minute || b->minute < start || b->minute > now)
            continue;
        for (int e = 0; e < FUNNEL_N_EVENTS; e++)
            ev[e] += b->ev[e];
        for (int i = 0; i < LAT_N; i++)
            lat[i] += b->lat[i];
        for (int i = 0; i < c->n_err; i++)
            err[i] += b->err[i];
        unsigned long long bev[FUNNEL_N_EVENTS];
        for (int e = 0; e < FUNNEL_N_EVENTS; e++)
            bev[e] = b->ev[e];
        long k = (b->minute - start) / bin;
        if (sd && sf && k >= 0 && k < nbins) {
            sd[k] += bev[FUNNEL_COMPLETED_TICKET] + bev[FUNNEL_COMPLETED_REDIRECT];
            sf[k] += failed_of(bev);
        }
    }
    if (c && !window) {
        memcpy(ev, c->total, sizeof(ev));
        memcpy(lat, c->lat, sizeof(lat));
        memcpy(err, c->err_total, sizeof(err));
    }
    for (long k = 0; sd && sf && k < nbins; k++) {
        json_array_append_new(done, json_integer((json_int_t)sd[k]));
        json_array_append_new(fail, json_integer((json_int_t)sf[k]));
    }
    free(sd);
    free(sf);
    json_t *o = json_object();
    json_object_set_new(o, "campaign", json_string(c ? c->name : ""));
    for (int e = 0; e < FUNNEL_N_EVENTS; e++)
        json_object_set_new(o, funnel_event_names[e], json_integer((json_int_t)ev[e]));
    unsigned long long completed = ev[FUNNEL_COMPLETED_TICKET] + ev[FUNNEL_COMPLETED_REDIRECT];
    json_object_set_new(o, "completed", json_integer((json_int_t)completed));
    json_object_set_new(o, "failed", json_integer((json_int_t)failed_of(ev)));
    json_object_set_new(o, "completion_rate",
                        ev[FUNNEL_STARTED]
                            ? json_real((double)completed / (double)ev[FUNNEL_STARTED])
                            : json_null());
    json_t *by = json_object();
    char key[16];
    for (int i = 0; c && i < c->n_err; i++)
        if (err[i]) {
            errcode_key(c->errcode[i], key, sizeof(key));
            json_object_set_new(by, key, json_integer((json_int_t)err[i]));
        }
    json_object_set_new(o, "wechat_errors_by_errcode", by);
    json_object_set_new(o, "median_seconds", quantile(lat, 0.5));
    json_object_set_new(o, "p99_seconds", quantile(lat, 0.99));
    /* the top return pages, most used first (since the counters began) */
    json_t *pages = json_array();
    int order[PAGES], n = c ? c->n_pages : 0;
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && c->pages[order[j]].n > c->pages[order[j - 1]].n; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int i = 0; i < n && i < 5; i++)
        json_array_append_new(pages, json_pack("{s:s,s:I}", "page", c->pages[order[i]].page,
                                               "count", (json_int_t)c->pages[order[i]].n));
    json_object_set_new(o, "top_return_pages", pages);
    json_object_set_new(o, "series",
                        json_pack("{s:I,s:I,s:o,s:o}", "bin_seconds", (json_int_t)bin * 60, "start",
                                  (json_int_t)start * 60, "completed", done, "failed", fail));
    return o;
}

json_t *funnel_view_report(struct funnel_view *v, const char *window, const char *campaign,
                           const char *const *extra, size_t n_extra)
{
    int minutes = funnel_window_minutes(window);
    if (minutes < 0)
        return NULL;
    for (size_t i = 0; i < n_extra; i++)
        if (!campaign || strcmp(extra[i], campaign) == 0)
            view_camp(&v->s, extra[i]);
    json_t *list = json_array();
    for (int i = 0; i < v->s.n; i++) {
        const struct camp *c = v->s.c[i];
        if (c && (!campaign || strcmp(c->name, campaign) == 0))
            json_array_append_new(list, camp_report(c, minutes));
    }
    return json_pack("{s:s,s:I,s:i,s:o}", "window", window ? window : "1h", "generated_at",
                     (json_int_t)time(NULL), "instances", v->s.instances ? v->s.instances : 1,
                     "campaigns", list);
}
