/* Metrics registry and exposition (see metrics.h).
 *
 * A series is one (family, label set). Series live in a small open-addressing
 * table keyed by their rendered name ("wxgate_logins_total{campaign=\"a\"}"),
 * and are never removed: label values come from the config (campaigns, apps)
 * and from fixed lists (error names), so the set stays small. */
#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SERIES 4096
#define N_BUCKETS  12

static const double buckets[N_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                          0.5,   1,    2.5,   5,    10,  30};

enum kind { COUNTER, GAUGE, HISTOGRAM };

struct series {
    char *key; /* family{labels} */
    char *family;
    char *labels; /* "a=\"x\",b=\"y\"" or "" */
    enum kind kind;
    double value; /* counter/gauge; histogram: sum */
    unsigned long long count;
    unsigned long long bucket[N_BUCKETS];
    unsigned long long fast; /* counter: what metrics_counter_add added (atomic) */
};

struct family_help {
    char *name, *type, *help;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct series table[MAX_SERIES];
static size_t n_series;
static struct family_help helps[64];
static size_t n_helps;

static unsigned long hash(const char *s)
{
    unsigned long h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h;
}

/* Renders the label pairs of ap into out: a="x",b="y" (values escaped). */
static void render_labels(char *out, size_t outsz, va_list ap)
{
    size_t o = 0;
    out[0] = '\0';
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        if (!v)
            v = "";
        o += (size_t)snprintf(out + o, o < outsz ? outsz - o : 0, "%s%s=\"", o ? "," : "", k);
        for (; *v && o + 4 < outsz; v++) {
            if (*v == '\\' || *v == '"') {
                out[o++] = '\\';
                out[o++] = *v;
            } else if (*v == '\n') {
                out[o++] = '\\';
                out[o++] = 'n';
            } else {
                out[o++] = *v;
            }
        }
        if (o + 2 < outsz)
            out[o++] = '"';
        out[o < outsz ? o : outsz - 1] = '\0';
    }
}

/* Finds or creates the series; called with the lock held. */
static struct series *series_for(const char *family, const char *labels, enum kind kind)
{
    char key[1024];
    snprintf(key, sizeof(key), "%s{%s}", family, labels);
    size_t i = hash(key) % MAX_SERIES;
    for (size_t probes = 0; probes < MAX_SERIES; probes++, i = (i + 1) % MAX_SERIES) {
        if (!table[i].key) {
            if (n_series >= MAX_SERIES * 3 / 4)
                return NULL;
            table[i].key = strdup(key);
            table[i].family = strdup(family);
            table[i].labels = strdup(labels);
            table[i].kind = kind;
            n_series++;
            return &table[i];
        }
        if (strcmp(table[i].key, key) == 0)
            return &table[i];
    }
    return NULL;
}

static void update(const char *name, enum kind kind, double v, va_list ap)
{
    char labels[768];
    render_labels(labels, sizeof(labels), ap);
    pthread_mutex_lock(&lock);
    struct series *s = series_for(name, labels, kind);
    if (s) {
        if (kind == COUNTER)
            s->value += v;
        else if (kind == GAUGE)
            s->value = v;
        else {
            s->value += v;
            s->count++;
            for (int b = 0; b < N_BUCKETS; b++)
                if (v <= buckets[b])
                    s->bucket[b]++;
        }
    }
    pthread_mutex_unlock(&lock);
}

void metrics_add(const char *name, double v, ...)
{
    va_list ap;
    va_start(ap, v);
    update(name, COUNTER, v, ap);
    va_end(ap);
}

struct metrics_counter *metrics_counter(const char *name, ...)
{
    char labels[768];
    va_list ap;
    va_start(ap, name);
    render_labels(labels, sizeof(labels), ap);
    va_end(ap);
    pthread_mutex_lock(&lock);
    struct series *s = series_for(name, labels, COUNTER);
    pthread_mutex_unlock(&lock);
    return (struct metrics_counter *)s;
}

void metrics_counter_add(struct metrics_counter *c, unsigned long long n)
{
    if (c)
        __atomic_fetch_add(&((struct series *)c)->fast, n, __ATOMIC_RELAXED);
}

void metrics_counter_add_to(struct metrics_counter **slot, const char *name, unsigned long long n)
{
    struct metrics_counter *c = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (!c) {
        c = metrics_counter(name, NULL);
        __atomic_store_n(slot, c, __ATOMIC_RELEASE);
    }
    metrics_counter_add(c, n);
}

void metrics_set(const char *name, double v, ...)
{
    va_list ap;
    va_start(ap, v);
    update(name, GAUGE, v, ap);
    va_end(ap);
}

void metrics_observe(const char *name, double v, ...)
{
    va_list ap;
    va_start(ap, v);
    update(name, HISTOGRAM, v, ap);
    va_end(ap);
}

void metrics_describe(const char *name, const char *type, const char *help)
{
    pthread_mutex_lock(&lock);
    int known = 0;
    for (size_t i = 0; i < n_helps; i++)
        known |= strcmp(helps[i].name, name) == 0;
    if (!known && n_helps < sizeof(helps) / sizeof(helps[0])) {
        helps[n_helps].name = strdup(name);
        helps[n_helps].type = strdup(type);
        helps[n_helps].help = strdup(help);
        n_helps++;
    }
    pthread_mutex_unlock(&lock);
}

struct buf {
    char *p;
    size_t len, cap;
};

static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void bprintf(struct buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *p = realloc(b->p, cap);
        if (!p)
            return;
        b->p = p;
        b->cap = cap;
    }
}

static int cmp_series(const void *a, const void *b)
{
    const struct series *x = *(const struct series *const *)a;
    const struct series *y = *(const struct series *const *)b;
    return strcmp(x->key, y->key);
}

char *metrics_render(size_t *len)
{
    struct buf b = {malloc(8192), 0, 8192};
    if (!b.p)
        return NULL;
    b.p[0] = '\0';
    pthread_mutex_lock(&lock);
    struct series *sorted[MAX_SERIES];
    size_t n = 0;
    for (size_t i = 0; i < MAX_SERIES; i++)
        if (table[i].key)
            sorted[n++] = &table[i];
    qsort(sorted, n, sizeof(sorted[0]), cmp_series);
    const char *last = "";
    for (size_t i = 0; i < n; i++) {
        struct series *s = sorted[i];
        if (strcmp(s->family, last) != 0) {
            for (size_t h = 0; h < n_helps; h++)
                if (strcmp(helps[h].name, s->family) == 0)
                    bprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", s->family, helps[h].help, s->family,
                            helps[h].type);
            last = s->family;
        }
        const char *sep = s->labels[0] ? "," : "";
        if (s->kind != HISTOGRAM) {
            double v = s->value + (double)__atomic_load_n(&s->fast, __ATOMIC_RELAXED);
            bprintf(&b, "%s%s%s%s %.17g\n", s->family, s->labels[0] ? "{" : "", s->labels,
                    s->labels[0] ? "}" : "", v);
            continue;
        }
        for (int k = 0; k < N_BUCKETS; k++)
            bprintf(&b, "%s_bucket{%s%sle=\"%g\"} %llu\n", s->family, s->labels, sep, buckets[k],
                    s->bucket[k]);
        bprintf(&b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", s->family, s->labels, sep, s->count);
        bprintf(&b, "%s_sum%s%s%s %.17g\n", s->family, s->labels[0] ? "{" : "", s->labels,
                s->labels[0] ? "}" : "", s->value);
        bprintf(&b, "%s_count%s%s%s %llu\n", s->family, s->labels[0] ? "{" : "", s->labels,
                s->labels[0] ? "}" : "", s->count);
    }
    pthread_mutex_unlock(&lock);
    *len = b.len;
    return b.p;
}
