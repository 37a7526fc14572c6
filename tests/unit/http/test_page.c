/* Unit tests for core/http/page.c: page_escape only (the page builders need a
 * live request). Every HTML-special character is escaped, appending keeps
 * what is already in the buffer, and no input, however long or dense in
 * characters to escape, writes past the buffer or leaves it unterminated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "page.h"

static void escapes_special_characters(void **state)
{
    char buf[256];
    size_t len = 0;
    page_escape(buf, sizeof(buf), &len, "a&b<c>d\"e'f");
    assert_string_equal(buf, "a&amp;b&lt;c&gt;d&quot;e&#39;f");
    assert_int_equal(len, strlen(buf));

    len = 0;
    page_escape(buf, sizeof(buf), &len, "<script>alert('x&y')</script>");
    assert_string_equal(buf, "&lt;script&gt;alert(&#39;x&amp;y&#39;)&lt;/script&gt;");

    /* already-escaped text is escaped again, not trusted */
    len = 0;
    page_escape(buf, sizeof(buf), &len, "&amp;");
    assert_string_equal(buf, "&amp;amp;");

    /* plain text and UTF-8 pass through */
    len = 0;
    page_escape(buf, sizeof(buf), &len, "Hello, \xe5\xbe\xae\xe4\xbf\xa1 / ok=1;");
    assert_string_equal(buf, "Hello, \xe5\xbe\xae\xe4\xbf\xa1 / ok=1;");
}

static void appends_and_handles_empty_input(void **state)
{
    char buf[64];
    size_t len = 0;
    page_escape(buf, sizeof(buf), &len, "a<");
    page_escape(buf, sizeof(buf), &len, ">b");
    assert_string_equal(buf, "a&lt;&gt;b");
    assert_int_equal(len, 10);

    page_escape(buf, sizeof(buf), &len, "");
    assert_string_equal(buf, "a&lt;&gt;b");
    assert_int_equal(len, 10);

    page_escape(buf, sizeof(buf), &len, NULL);
    assert_string_equal(buf, "a&lt;&gt;b");
    assert_int_equal(len, 10);

    memset(buf, 'X', sizeof(buf));
    len = 0;
    page_escape(buf, sizeof(buf), &len, "");
    assert_int_equal(len, 0);
    assert_int_equal(buf[0], '\0');
}

/* Escapes s into a heap buffer of exactly cap bytes (ASan catches overflow)
 * and checks the result is terminated, consistent and a prefix of the full
 * escaping that never ends inside an entity. */
static void check_bounded(const char *s, size_t cap, const char *full)
{
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t len = 0;
    page_escape(buf, cap, &len, s);
    assert_true(len < cap);
    assert_int_equal(buf[len], '\0');
    assert_int_equal(strlen(buf), len);
    assert_memory_equal(buf, full, len);
    /* a cut happens between input characters, never inside an entity */
    const char *amp = strrchr(buf, '&');
    if (amp)
        assert_non_null(strchr(amp, ';'));
    free(buf);
}

static void long_input_never_overflows(void **state)
{
    size_t n = 10000;
    char *plain = malloc(n + 1), *dense = malloc(n + 1), *mixed = malloc(n + 1);
    assert_non_null(plain);
    assert_non_null(dense);
    assert_non_null(mixed);
    memset(plain, 'a', n);
    plain[n] = '\0';
    memset(dense, '"', n);
    dense[n] = '\0';
    const char special[] = "&<>\"'x";
    for (size_t i = 0; i < n; i++)
        mixed[i] = special[i % (sizeof(special) - 1)];
    mixed[n] = '\0';

    /* the full escapings, in a buffer large enough for everything */
    size_t big = 6 * n + 8;
    char *full_plain = malloc(big), *full_dense = malloc(big), *full_mixed = malloc(big);
    size_t l = 0;
    page_escape(full_plain, big, &l, plain);
    assert_int_equal(l, n);
    l = 0;
    page_escape(full_dense, big, &l, dense);
    assert_int_equal(l, 6 * n);
    l = 0;
    page_escape(full_mixed, big, &l, mixed);

    for (size_t cap = 1; cap <= 300; cap++) {
        check_bounded(plain, cap, full_plain);
        check_bounded(dense, cap, full_dense);
        check_bounded(mixed, cap, full_mixed);
    }
    check_bounded(dense, 8192, full_dense);
    check_bounded(mixed, 4096, full_mixed);

    /* appending to a nearly full buffer */
    for (size_t start = 0; start < 64; start++) {
        char *buf = malloc(64);
        assert_non_null(buf);
        memset(buf, 'p', start);
        buf[start] = '\0';
        size_t len = start;
        page_escape(buf, 64, &len, dense);
        assert_true(len < 64);
        assert_true(len >= start);
        assert_int_equal(strlen(buf), len);
        free(buf);
    }

    free(plain);
    free(dense);
    free(mixed);
    free(full_plain);
    free(full_dense);
    free(full_mixed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(escapes_special_characters),
        cmocka_unit_test(appends_and_handles_empty_input),
        cmocka_unit_test(long_input_never_overflows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
