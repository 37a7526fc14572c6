/* Unit tests for core/login/funnel.c: events noted from several worker cells
 * are merged into one count, failures land in their exit, records round-trip
 * and add up across instances, windows and errcodes are reported. The
 * aggregate is process-wide: each test uses its own campaign names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <pthread.h>

#include "funnel.h"
#include "wechat.h"

/* The report's object for campaign name (window w), as JSON; caller frees. */
static json_t *report_of(struct funnel_view *v, const char *w, const char *name)
{
    json_t *r = funnel_view_report(v, w, name, NULL, 0);
    assert_non_null(r);
    json_t *c = json_incref(json_array_get(json_object_get(r, "campaigns"), 0));
    json_decref(r);
    assert_non_null(c);
    return c;
}

static json_t *local_report(const char *w, const char *name)
{
    struct funnel_view *v = funnel_view_new();
    funnel_view_add_local(v);
    json_t *c = report_of(v, w, name);
    funnel_view_free(v);
    return c;
}

static long long num(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }

static void *noter(void *arg)
{
    funnel_bind_worker((int)(intptr_t)arg);
    for (int i = 0; i < 1000; i++)
        funnel_note("threads", FUNNEL_STARTED);
    return NULL;
}

static void cells_of_every_worker_add_up(void **state)
{
    (void)state;
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, noter, (void *)(intptr_t)i);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    json_t *c = local_report("15m", "threads");
    assert_int_equal(num(c, "started"), 4000);
    json_t *all = local_report("all", "threads");
    assert_int_equal(num(all, "started"), 4000);
    json_decref(c);
    json_decref(all);
}

static void failures_land_in_their_exit(void **state)
{
    (void)state;
    funnel_failed("exits", "expired", WECHAT_OK, 0);
    funnel_failed("exits", "upstream", WECHAT_TIMEOUT, 0);
    funnel_failed("exits", "upstream", WECHAT_UNKNOWN, 40029);
    funnel_failed("exits", "upstream", WECHAT_QUOTA, 45011);
    funnel_failed("exits", "upstream", WECHAT_QUOTA, 45011);
    funnel_note("exits", FUNNEL_HOOK_ERROR); /* the default was used: no exit */
    funnel_failed("exits", "refused", WECHAT_OK, 0);
    funnel_failed("exits", "upstream", WECHAT_OK, 0);
    json_t *c = local_report("1h", "exits");
    assert_int_equal(num(c, "state_expired"), 1);
    assert_int_equal(num(c, "timeouts"), 1);
    assert_int_equal(num(c, "wechat_errors"), 3);
    assert_int_equal(num(c, "hook_errors"), 1);
    assert_int_equal(num(c, "hook_errors"), 1);
    assert_int_equal(num(c, "refused"), 1);
    assert_int_equal(num(c, "other_errors"), 1);
    assert_int_equal(num(c, "failed"), 7);
    json_t *by = json_object_get(c, "wechat_errors_by_errcode");
    assert_int_equal(num(by, "45011"), 2);
    assert_int_equal(num(by, "40029"), 1);
    json_decref(c);
}

static void completions_give_quantiles_pages_and_no_query(void **state)
{
    (void)state;
    for (int i = 0; i < 99; i++)
        funnel_completed("times", 1, 0, 2, "https://h5.example.com/a?openid=secret#x");
    funnel_completed("times", 0, 1, 100, "https://h5.example.com/b");
    json_t *c = local_report("15m", "times");
    assert_int_equal(num(c, "completed"), 100);
    assert_int_equal(num(c, "completed_ticket"), 99);
    assert_int_equal(num(c, "snapshot_users"), 1);
    assert_int_equal(num(c, "median_seconds"), 2);
    assert_int_equal(num(c, "p99_seconds"), 2);
    json_t *pages = json_object_get(c, "top_return_pages");
    assert_string_equal(json_string_value(json_object_get(json_array_get(pages, 0), "page")),
                        "https://h5.example.com/a");
    char *s = json_dumps(c, 0);
    assert_null(strstr(s, "openid"));
    free(s);
    json_decref(c);
}

static void records_round_trip_and_add_up(void **state)
{
    (void)state;
    funnel_note("fleet", FUNNEL_STARTED);
    funnel_note("fleet", FUNNEL_REDEEMED);
    funnel_failed("fleet", "upstream", WECHAT_QUOTA, 45011);
    char *rec = funnel_record();
    assert_non_null(rec);
    /* another instance's record added to this one's live counts: doubled */
    struct funnel_view *v = funnel_view_new();
    funnel_view_add_local(v);
    assert_int_equal(funnel_view_add_record(v, rec, strlen(rec)), 0);
    funnel_view_set_instances(v, 2);
    json_t *r = funnel_view_report(v, "15m", "fleet", NULL, 0);
    assert_int_equal(num(r, "instances"), 2);
    json_t *c = json_array_get(json_object_get(r, "campaigns"), 0);
    assert_int_equal(num(c, "started"), 2);
    assert_int_equal(num(c, "redeemed"), 2);
    assert_int_equal(num(json_object_get(c, "wechat_errors_by_errcode"), "45011"), 2);
    json_decref(r);
    funnel_view_free(v);
    assert_int_equal(funnel_view_add_record(v = funnel_view_new(), "{not json", 9), -1);
    funnel_view_free(v);
    free(rec);
}

static void windows_and_listed_campaigns(void **state)
{
    (void)state;
    assert_int_equal(funnel_window_minutes("15m"), 15);
    assert_int_equal(funnel_window_minutes("1h"), 60);
    assert_int_equal(funnel_window_minutes("1d"), 1440);
    assert_int_equal(funnel_window_minutes("all"), 0);
    assert_int_equal(funnel_window_minutes("2w"), -1);
    struct funnel_view *v = funnel_view_new();
    const char *extra[] = {"quiet"};
    assert_null(funnel_view_report(v, "2w", NULL, extra, 1));
    json_t *r = funnel_view_report(v, "1d", NULL, extra, 1);
    json_t *c = json_array_get(json_object_get(r, "campaigns"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "campaign")), "quiet");
    assert_int_equal(num(c, "started"), 0);
    assert_true(json_is_null(json_object_get(c, "median_seconds")));
    assert_int_equal(json_array_size(json_object_get(json_object_get(c, "series"), "completed")),
                     48);
    json_decref(r);
    funnel_view_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cells_of_every_worker_add_up),
        cmocka_unit_test(failures_land_in_their_exit),
        cmocka_unit_test(completions_give_quantiles_pages_and_no_query),
        cmocka_unit_test(records_round_trip_and_add_up),
        cmocka_unit_test(windows_and_listed_campaigns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
