/* Unit tests for core/common/env_file.c: KEY=VALUE lines with comments,
 * export and quotes, a later line overriding an earlier one, a malformed
 * line named by number without its text, a file open to every user
 * refused, a missing file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "env_file.h"

/* Writes text to a fresh temporary file with the given mode; returns its path. */
static char *put(const char *text, mode_t mode)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/wxenv-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static void test_lines(void **state)
{
    char why[256];
    char *path = put("# secrets\n"
                     "\n"
                     "A=plain\n"
                     "  export B = spaced  \n"
                     "; another comment\n"
                     "C=\"double quoted\"\n"
                     "D='single'\n"
                     "E=has=equals\n"
                     "A=later wins\n"
                     "F=\n",
                     0640);
    struct env_file *e = env_file_read(path, why, sizeof(why));
    unlink(path);
    assert_non_null(e);
    assert_string_equal(env_file_get(e, "A"), "later wins");
    assert_string_equal(env_file_get(e, "B"), "spaced");
    assert_string_equal(env_file_get(e, "C"), "double quoted");
    assert_string_equal(env_file_get(e, "D"), "single");
    assert_string_equal(env_file_get(e, "E"), "has=equals");
    assert_string_equal(env_file_get(e, "F"), "");
    assert_null(env_file_get(e, "G"));
    env_file_free(e);
    assert_null(env_file_get(NULL, "A"));
}

static void test_malformed_line_named_by_number(void **state)
{
    char why[256];
    char *path = put("A=1\nthis is the-secret-text\n", 0600);
    assert_null(env_file_read(path, why, sizeof(why)));
    unlink(path);
    assert_non_null(strstr(why, "line 2"));
    assert_null(strstr(why, "the-secret-text"));

    path = put("1BAD=x\n", 0600);
    assert_null(env_file_read(path, why, sizeof(why)));
    unlink(path);
    assert_non_null(strstr(why, "line 1"));
}

static void test_open_to_everyone_refused(void **state)
{
    char why[256];
    char *path = put("A=1\n", 0644);
    assert_null(env_file_read(path, why, sizeof(why)));
    unlink(path);
    assert_non_null(strstr(why, "every user"));
    assert_non_null(strstr(why, "644"));
}

static void test_missing_file(void **state)
{
    char why[256];
    assert_null(env_file_read("/nonexistent/wxgate/secrets.env", why, sizeof(why)));
    assert_non_null(strstr(why, "cannot read /nonexistent/wxgate/secrets.env"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_malformed_line_named_by_number),
        cmocka_unit_test(test_open_to_everyone_refused),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
