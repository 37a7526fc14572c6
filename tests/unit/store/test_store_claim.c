/* Unit tests for core/store/store_claim.c on the memory store: the first
 * claimer wins, the others get its result, give up, or time out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include <event2/event.h>

#include "store.h"

struct seen {
    int calls;
    enum store_claim_outcome outcome;
    char value[64];
};

static void record(enum store_claim_outcome o, const char *v, size_t len, void *arg)
{
    struct seen *s = arg;
    s->calls++;
    s->outcome = o;
    if (v && len < sizeof(s->value)) {
        memcpy(s->value, v, len);
        s->value[len] = '\0';
    }
}

struct fixture {
    struct event_base *base;
    store_t *s;
    store_conn_t *c;
};

static int setup(void **state)
{
    static struct fixture f;
    f.base = event_base_new();
    f.s = store_open("memory", NULL);
    f.c = store_attach(f.s, f.base);
    *state = &f;
    return f.c ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_detach(f->c);
    store_close(f->s);
    event_base_free(f->base);
    return 0;
}

static void run_until(struct fixture *f, const struct seen *s)
{
    for (int i = 0; i < 1000 && !s->calls; i++)
        event_base_loop(f->base, EVLOOP_ONCE);
    assert_int_equal(s->calls, 1);
}

static void set_value(const struct store_reply *r, void *arg) { (void)r, (void)arg; }

/* Sets key=value from a timer, as the claim's owner would finish. */
struct later {
    store_conn_t *c;
    const char *key, *value;
};

static void finish_later(evutil_socket_t fd, short what, void *arg)
{
    struct later *l = arg;
    store_set(l->c, l->key, strlen(l->key), l->value, strlen(l->value), 0, set_value, NULL);
}

static void first_wins_second_gets_the_result(void **state)
{
    struct fixture *f = *state;
    struct store_claim_spec spec = {
        .claim_key = "cx:A", .claim_value = "P", .poll_ms = 10, .wait_ms = 2000};
    struct seen first = {0}, second = {0};
    assert_int_equal(store_claim(f->c, f->base, &spec, record, &first), 0);
    assert_int_equal(first.calls, 0); /* never inside the call */
    run_until(f, &first);
    assert_int_equal(first.outcome, STORE_CLAIM_WON);

    assert_int_equal(store_claim(f->c, f->base, &spec, record, &second), 0);
    struct later l = {f->c, "cx:A", "L:outcome"};
    struct timeval tv = {0, 50 * 1000};
    event_base_once(f->base, -1, EV_TIMEOUT, finish_later, &l, &tv);
    run_until(f, &second);
    assert_int_equal(second.outcome, STORE_CLAIM_RESULT);
    assert_string_equal(second.value, "L:outcome");
}

static int ready(const char *v, size_t len, void *arg)
{
    (void)arg;
    if (!v)
        return 0;
    return len == 5 && memcmp(v, "ready", 5) == 0 ? 1 : -1;
}

static void waiting_on_another_key_until_accepted_or_refused(void **state)
{
    struct fixture *f = *state;
    struct store_claim_spec spec = {.claim_key = "lk:B",
                                    .claim_value = "7",
                                    .claim_ttl_ms = 10000,
                                    .result_key = "jt:B",
                                    .accept = ready,
                                    .poll_ms = 10,
                                    .wait_ms = 2000};
    struct seen owner = {0}, waiter = {0}, refused = {0};
    assert_int_equal(store_claim(f->c, f->base, &spec, record, &owner), 0);
    run_until(f, &owner);
    assert_int_equal(owner.outcome, STORE_CLAIM_WON);
    /* The result key is absent for a while (accept says wait), then set. */
    assert_int_equal(store_claim(f->c, f->base, &spec, record, &waiter), 0);
    struct later l = {f->c, "jt:B", "ready"};
    struct timeval tv = {0, 40 * 1000};
    event_base_once(f->base, -1, EV_TIMEOUT, finish_later, &l, &tv);
    run_until(f, &waiter);
    assert_int_equal(waiter.outcome, STORE_CLAIM_RESULT);
    assert_string_equal(waiter.value, "ready");
    /* A value accept refuses gives up at once. */
    struct later bad = {f->c, "jt:B", "broken"};
    finish_later(-1, 0, &bad);
    assert_int_equal(store_claim(f->c, f->base, &spec, record, &refused), 0);
    run_until(f, &refused);
    assert_int_equal(refused.outcome, STORE_CLAIM_FAILED);
}

static void a_held_claim_times_out_or_is_not_waited_for(void **state)
{
    struct fixture *f = *state;
    struct store_claim_spec spec = {
        .claim_key = "cx:C", .claim_value = "P", .poll_ms = 10, .wait_ms = 60};
    struct seen owner = {0}, waiter = {0}, nowait = {0};
    assert_int_equal(store_claim(f->c, f->base, &spec, record, &owner), 0);
    run_until(f, &owner);
    assert_int_equal(store_claim(f->c, f->base, &spec, record, &waiter), 0);
    run_until(f, &waiter);
    assert_int_equal(waiter.outcome, STORE_CLAIM_TIMEOUT);
    spec.wait_ms = 0;
    assert_int_equal(store_claim(f->c, f->base, &spec, record, &nowait), 0);
    run_until(f, &nowait);
    assert_int_equal(nowait.outcome, STORE_CLAIM_TIMEOUT);
    /* The default result rule: the claim key gone is a failure. */
    struct seen gone = {0};
    spec.wait_ms = 1000;
    spec.claim_key = "cx:D";
    assert_int_equal(store_claim(f->c, f->base, &spec, record, &owner), 0);
    owner.calls = 0;
    run_until(f, &owner);
    assert_int_equal(store_claim(f->c, f->base, &spec, record, &gone), 0);
    store_del(f->c, "cx:D", 4, NULL, NULL);
    run_until(f, &gone);
    assert_int_equal(gone.outcome, STORE_CLAIM_FAILED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(first_wins_second_gets_the_result, setup, teardown),
        cmocka_unit_test_setup_teardown(waiting_on_another_key_until_accepted_or_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_held_claim_times_out_or_is_not_waited_for, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
