/* Unit tests for core/common/arena.c: alignment, small allocations packed in
 * one standard block, big ones in blocks of their own that leave the current
 * block usable, the per-thread block cache, printf, and cleanups at reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"

static int teardown(void **state)
{
    (void)state;
    arena_cache_trim();
    return 0;
}

/* Small allocations are aligned and packed one after another in a
 * standard block, which is one page with its header: what a request waiting
 * on WeChat keeps resident (a header on top of a full page made jemalloc
 * spread every block over two pages). */
static void small_allocations_fill_one_page_sized_block(void **state)
{
    (void)state;
    struct arena a;
    arena_init(&a);
    char *first = arena_alloc(&a, 16);
    assert_non_null(first);
    assert_int_equal((uintptr_t)first % 16, 0);
    size_t in_first = 16;
    for (;;) {
        char *p = arena_alloc(&a, (in_first / 16) % 2 ? 16 : 9); /* 9 rounds up to 16 */
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        if (p != first + in_first)
            break;
        memset(p, 0xab, 16);
        in_first += 16;
    }
    assert_true(in_first <= ARENA_BLOCK_SIZE - 16); /* the header shares the page */
    assert_true(in_first >= ARENA_BLOCK_SIZE - 64);
    arena_reset(&a);
}

/* A big allocation gets a block of its own; the small ones after it still
 * come from the current block. */
static void big_allocations_leave_the_current_block_usable(void **state)
{
    (void)state;
    struct arena a;
    arena_init(&a);
    char *small = arena_alloc(&a, 32);
    char *big = arena_alloc(&a, 100000);
    char *after = arena_alloc(&a, 32);
    assert_non_null(small);
    assert_non_null(big);
    assert_non_null(after);
    memset(big, 1, 100000);
    assert_ptr_equal(after, small + 32);
    char *mid = arena_alloc(&a, 3000); /* fits in what is left of the block: taken from it */
    assert_ptr_equal(mid, after + 32);
    memset(mid, 2, 3000);
    char *over = arena_alloc(&a, 2000); /* does not fit, over a quarter block: its own */
    assert_non_null(over);
    memset(over, 3, 2000);
    assert_ptr_equal(arena_alloc(&a, 16), mid + 3008);
    arena_reset(&a);
}

/* A reset arena's standard block goes to the thread's cache and is what
 * the next arena gets: no malloc for a warm request. */
static void blocks_are_reused_through_the_cache(void **state)
{
    (void)state;
    struct arena a, b;
    arena_init(&a);
    char *p = arena_alloc(&a, 64);
    arena_reset(&a);
    arena_init(&b);
    char *q = arena_alloc(&b, 64);
    assert_ptr_equal(p, q);
    arena_reset(&b);
}

static void printf_and_strdup(void **state)
{
    (void)state;
    struct arena a;
    arena_init(&a);
    assert_string_equal(arena_printf(&a, "%s-%d", "login", 42), "login-42");
    char longer[5000];
    memset(longer, 'x', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    char *p = arena_printf(&a, "[%s]", longer);
    assert_non_null(p);
    assert_int_equal(strlen(p), sizeof(longer) + 1);
    assert_string_equal(arena_strndup(&a, "abcdef", 3), "abc");
    assert_string_equal(arena_strdup(&a, "wx"), "wx");
    char *z = arena_calloc(&a, 100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(z[i], 0);
    arena_reset(&a);
}

static int order[4], n_order;
static void note(void *arg) { order[n_order++] = (int)(intptr_t)arg; }

/* Cleanups run at reset, newest first, and once. */
static void cleanups_run_at_reset_newest_first(void **state)
{
    (void)state;
    struct arena a;
    arena_init(&a);
    n_order = 0;
    assert_int_equal(arena_on_reset(&a, note, (void *)1), 0);
    assert_int_equal(arena_on_reset(&a, note, (void *)2), 0);
    assert_int_equal(arena_on_reset(&a, note, (void *)3), 0);
    arena_reset(&a);
    assert_int_equal(n_order, 3);
    assert_int_equal(order[0], 3);
    assert_int_equal(order[1], 2);
    assert_int_equal(order[2], 1);
    arena_reset(&a);
    assert_int_equal(n_order, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(small_allocations_fill_one_page_sized_block, teardown),
        cmocka_unit_test_teardown(big_allocations_leave_the_current_block_usable, teardown),
        cmocka_unit_test_teardown(blocks_are_reused_through_the_cache, teardown),
        cmocka_unit_test_teardown(printf_and_strdup, teardown),
        cmocka_unit_test_teardown(cleanups_run_at_reset_newest_first, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
