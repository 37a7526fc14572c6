/* Prometheus metrics: counters, gauges and histograms with labels, shared by
 * every worker (one mutex; the hot paths add a handful of increments per
 * request), rendered in the text exposition format for GET /metrics. */
#ifndef WX_METRICS_H
#define WX_METRICS_H
#include <stddef.h>

/* labels: NULL or pairs "name", "value", ..., NULL. Values are escaped. */
void metrics_add(const char *name, double v, ...);     /* counter += v */
void metrics_set(const char *name, double v, ...);     /* gauge = v */
void metrics_observe(const char *name, double v, ...); /* histogram (seconds) */

/* A counter series looked up once, for hot paths: adding to it is one
 * atomic add, with no formatting or lookup. The handle lives as long as the
 * process; NULL when the series table is full (adding to NULL does nothing). */
struct metrics_counter;
struct metrics_counter *metrics_counter(const char *name, ...);
void metrics_counter_add(struct metrics_counter *c, unsigned long long n);
/* metrics_counter_add on the label-less series `name`, looked up on first use
 * and kept in *slot (a static of the caller), from any thread. */
void metrics_counter_add_to(struct metrics_counter **slot, const char *name, unsigned long long n);

/* Help text for a metric family (once, at start). */
void metrics_describe(const char *name, const char *type, const char *help);
/* Describes every family wxgate has (metrics_catalog.c). */
void metrics_describe_catalog(void);

/* The exposition text (malloc'd; caller frees). */
char *metrics_render(size_t *len);

#define metrics_inc(name, ...) metrics_add(name, 1.0, __VA_ARGS__)

#endif
