/* Unit tests for core/common/metrics.c: counters with and without labels, label
 * value escaping, gauges, histogram buckets/sum/count, HELP/TYPE lines,
 * sorted deterministic output and exact counts under concurrent increments.
 * The registry is process-global and series are never removed: every test
 * uses metric names of its own and looks only at its own lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include <cmocka.h>

#include "metrics.h"

static char *render(void)
{
    size_t len = 0;
    char *text = metrics_render(&len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    return text;
}

/* Does the exposition hold this exact line? */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

static void want_line(const char *text, const char *line)
{
    if (!has_line(text, line))
        fail_msg("missing line \"%s\" in:\n%s", line, text);
}

/* The lines that start with prefix, joined with '\n' (malloc'd). */
static char *lines_of(const char *text, const char *prefix)
{
    size_t cap = strlen(text) + 1, o = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    out[0] = '\0';
    size_t n = strlen(prefix);
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) + 1 : strlen(p);
        if (strncmp(p, prefix, n) == 0) {
            memcpy(out + o, p, l);
            o += l;
            out[o] = '\0';
        }
        p += l;
    }
    return out;
}

static void counter_without_labels(void **state)
{
    metrics_inc("tm_plain_total", NULL);
    metrics_add("tm_plain_total", 2.5, NULL);
    metrics_add("tm_plain_total", 0.5, NULL);
    char *text = render();
    want_line(text, "tm_plain_total 4");
    assert_null(strstr(text, "tm_plain_total{"));
    free(text);
}

static void counter_with_labels(void **state)
{
    metrics_inc("tm_lab_total", "campaign", "a", NULL);
    metrics_inc("tm_lab_total", "campaign", "a", NULL);
    metrics_inc("tm_lab_total", "campaign", "b", NULL);
    metrics_inc("tm_lab_total", "campaign", "a", "result", "ok", NULL);
    metrics_add("tm_lab_total", 10, "campaign", "a", "result", "ok", NULL);
    /* a NULL value renders as an empty string */
    metrics_inc("tm_lab_total", "campaign", NULL, NULL);
    char *text = render();
    want_line(text, "tm_lab_total{campaign=\"a\"} 2");
    want_line(text, "tm_lab_total{campaign=\"b\"} 1");
    want_line(text, "tm_lab_total{campaign=\"a\",result=\"ok\"} 11");
    want_line(text, "tm_lab_total{campaign=\"\"} 1");
    char *mine = lines_of(text, "tm_lab_total");
    /* sorted by the series key "family{labels}" (',' sorts before '}') */
    assert_string_equal(mine, "tm_lab_total{campaign=\"\"} 1\n"
                              "tm_lab_total{campaign=\"a\",result=\"ok\"} 11\n"
                              "tm_lab_total{campaign=\"a\"} 2\n"
                              "tm_lab_total{campaign=\"b\"} 1\n");
    free(mine);
    free(text);
}

static void label_values_are_escaped(void **state)
{
    metrics_inc("tm_esc_total", "v", "say \"hi\"", NULL);
    metrics_inc("tm_esc_total", "v", "C:\\dir\\", NULL);
    metrics_inc("tm_esc_total", "v", "two\nlines", NULL);
    metrics_inc("tm_esc_total", "v", "\\\"\n", NULL);
    char *text = render();
    want_line(text, "tm_esc_total{v=\"say \\\"hi\\\"\"} 1");
    want_line(text, "tm_esc_total{v=\"C:\\\\dir\\\\\"} 1");
    want_line(text, "tm_esc_total{v=\"two\\nlines\"} 1");
    want_line(text, "tm_esc_total{v=\"\\\\\\\"\\n\"} 1");
    /* no raw newline splits a series line */
    char *mine = lines_of(text, "tm_esc_total");
    int n = 0;
    for (char *p = mine; *p; p++)
        n += *p == '\n';
    assert_int_equal(n, 4);
    assert_null(strstr(text, "two\nlines"));
    free(mine);
    free(text);
}

static void gauge_set(void **state)
{
    metrics_set("tm_gauge", 5, NULL);
    metrics_set("tm_gauge", 3, NULL);
    metrics_set("tm_gauge_l", 7, "worker", "1", NULL);
    metrics_set("tm_gauge_l", -2.5, "worker", "2", NULL);
    metrics_set("tm_gauge_l", 0, "worker", "1", NULL);
    char *text = render();
    want_line(text, "tm_gauge 3");
    want_line(text, "tm_gauge_l{worker=\"1\"} 0");
    want_line(text, "tm_gauge_l{worker=\"2\"} -2.5");
    assert_false(has_line(text, "tm_gauge 5"));
    assert_false(has_line(text, "tm_gauge 8"));
    free(text);
}

static void histogram_buckets_sum_count(void **state)
{
    metrics_observe("tm_hist_seconds", 0.00390625, "route", "/auth", NULL); /* every bucket */
    metrics_observe("tm_hist_seconds", 0.25, "route", "/auth", NULL);       /* le=0.25 (edge) */
    metrics_observe("tm_hist_seconds", 3, "route", "/auth", NULL);          /* le=5 */
    metrics_observe("tm_hist_seconds", 100, "route", "/auth", NULL);        /* +Inf only */
    char *text = render();
    char *mine = lines_of(text, "tm_hist_seconds");
    assert_string_equal(mine, "tm_hist_seconds_bucket{route=\"/auth\",le=\"0.005\"} 1\n"
                              "tm_hist_seconds_bucket{route=\"/auth\",le=\"0.01\"} 1\n"
                              "tm_hist_seconds_bucket{route=\"/auth\",le=\"0.025\"} 1\n"
                              "tm_hist_seconds_bucket{route=\"/auth\",le=\"0.05\"} 1\n"
                              "tm_hist_seconds_bucket{route=\"/auth\",le=\"0.1\"} 1\n"
                              "tm_hist_seconds_bucket{route=\"/auth\",le=\"0.25\"} 2\n"
                              "tm_hist_seconds_bucket{route=\"/auth\",le=\"0.5\"} 2\n"
                              "tm_hist_seconds_bucket{route=\"/auth\",le=\"1\"} 2\n"
                              "tm_hist_seconds_bucket{route=\"/auth\",le=\"2.5\"} 2\n"
                              "tm_hist_seconds_bucket{route=\"/auth\",le=\"5\"} 3\n"
                              "tm_hist_seconds_bucket{route=\"/auth\",le=\"10\"} 3\n"
                              "tm_hist_seconds_bucket{route=\"/auth\",le=\"30\"} 3\n"
                              "tm_hist_seconds_bucket{route=\"/auth\",le=\"+Inf\"} 4\n"
                              "tm_hist_seconds_sum{route=\"/auth\"} 103.25390625\n"
                              "tm_hist_seconds_count{route=\"/auth\"} 4\n");
    free(mine);
    free(text);

    /* without labels */
    metrics_observe("tm_hist2_seconds", 0.5, NULL);
    metrics_observe("tm_hist2_seconds", 0.75, NULL);
    text = render();
    want_line(text, "tm_hist2_seconds_bucket{le=\"0.25\"} 0");
    want_line(text, "tm_hist2_seconds_bucket{le=\"0.5\"} 1");
    want_line(text, "tm_hist2_seconds_bucket{le=\"1\"} 2");
    want_line(text, "tm_hist2_seconds_bucket{le=\"+Inf\"} 2");
    want_line(text, "tm_hist2_seconds_sum 1.25");
    want_line(text, "tm_hist2_seconds_count 2");
    free(text);
}

static void help_and_type_lines(void **state)
{
    metrics_describe("tm_help_total", "counter", "Logins started.");
    metrics_describe("tm_help_total", "gauge", "Described twice: the first one stays.");
    metrics_describe("tm_help_hist_seconds", "histogram", "Request latency.");
    metrics_describe("tm_help_unused_total", "counter", "Never incremented.");
    metrics_inc("tm_help_total", "campaign", "a", NULL);
    metrics_inc("tm_help_total", "campaign", "b", NULL);
    metrics_observe("tm_help_hist_seconds", 0.01, NULL);
    char *text = render();

    char *mine = lines_of(text, "# HELP tm_help_total ");
    assert_string_equal(mine, "# HELP tm_help_total Logins started.\n");
    free(mine);
    mine = lines_of(text, "# TYPE tm_help_total ");
    assert_string_equal(mine, "# TYPE tm_help_total counter\n");
    free(mine);

    /* HELP then TYPE, right before the family's first series */
    const char *h = strstr(text, "# HELP tm_help_total Logins started.\n"
                                 "# TYPE tm_help_total counter\n"
                                 "tm_help_total{campaign=\"a\"} 1\n"
                                 "tm_help_total{campaign=\"b\"} 1\n");
    assert_non_null(h);
    h = strstr(text, "# HELP tm_help_hist_seconds Request latency.\n"
                     "# TYPE tm_help_hist_seconds histogram\n"
                     "tm_help_hist_seconds_bucket{le=\"0.005\"} 0\n");
    assert_non_null(h);

    /* a family without series has no lines */
    assert_null(strstr(text, "tm_help_unused_total"));
    free(text);
}

static void output_is_sorted_and_deterministic(void **state)
{
    metrics_inc("tm_sort_c_total", NULL);
    metrics_inc("tm_sort_a_total", "k", "z", NULL);
    metrics_inc("tm_sort_b_total", NULL);
    metrics_inc("tm_sort_a_total", "k", "m", NULL);
    metrics_inc("tm_sort_a_total", "k", "a", NULL);
    char *text = render();
    char *mine = lines_of(text, "tm_sort_");
    assert_string_equal(mine, "tm_sort_a_total{k=\"a\"} 1\n"
                              "tm_sort_a_total{k=\"m\"} 1\n"
                              "tm_sort_a_total{k=\"z\"} 1\n"
                              "tm_sort_b_total 1\n"
                              "tm_sort_c_total 1\n");
    char *again = render();
    assert_string_equal(text, again);
    free(again);
    free(mine);
    free(text);

    /* every line is a comment or "name[{labels}] value", families contiguous */
    text = render();
    char last[256] = "";
    char seen[64][256];
    size_t n_seen = 0;
    for (char *p = text; *p;) {
        char *e = strchr(p, '\n');
        assert_non_null(e);
        if (*p != '#') {
            size_t nl = strcspn(p, "{ ");
            assert_true(nl > 0 && nl < sizeof(last));
            char fam[256];
            memcpy(fam, p, nl);
            fam[nl] = '\0';
            static const char *const suffix[] = {"_bucket", "_sum", "_count"};
            for (int k = 0; k < 3; k++) {
                size_t sl = strlen(suffix[k]);
                if (nl > sl && strcmp(fam + nl - sl, suffix[k]) == 0) {
                    fam[nl - sl] = '\0';
                    break;
                }
            }
            if (strcmp(fam, last) != 0) {
                for (size_t i = 0; i < n_seen; i++)
                    if (strcmp(seen[i], fam) == 0)
                        fail_msg("series of %s are not contiguous:\n%s", fam, text);
                if (n_seen < 64)
                    snprintf(seen[n_seen++], sizeof(seen[0]), "%s", fam);
                snprintf(last, sizeof(last), "%s", fam);
            }
        }
        p = e + 1;
    }
    free(text);
}

#define THREADS    4
#define PER_THREAD 10000

static void *bump(void *arg)
{
    for (int i = 0; i < PER_THREAD; i++) {
        metrics_inc("tm_threads_total", "k", "shared", NULL);
        if (i % 100 == 0)
            metrics_observe("tm_threads_seconds", 0.5, NULL);
    }
    return NULL;
}

static void concurrent_increments_are_exact(void **state)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, bump, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    char *text = render();
    want_line(text, "tm_threads_total{k=\"shared\"} 40000");
    want_line(text, "tm_threads_seconds_count 400");
    want_line(text, "tm_threads_seconds_sum 200");
    want_line(text, "tm_threads_seconds_bucket{le=\"0.5\"} 400");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counter_without_labels),
        cmocka_unit_test(counter_with_labels),
        cmocka_unit_test(label_values_are_escaped),
        cmocka_unit_test(gauge_set),
        cmocka_unit_test(histogram_buckets_sum_count),
        cmocka_unit_test(help_and_type_lines),
        cmocka_unit_test(output_is_sorted_and_deterministic),
        cmocka_unit_test(concurrent_increments_are_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
