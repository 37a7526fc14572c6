/* Unit tests for core/common/log.c: log_redact_url (sensitive query values masked,
 * others kept, fragments, empty values, truncation), log_param_is_sensitive,
 * registered secrets masked in log_msg and log_access output, JSON escaping of
 * messages, and level filtering. Output is captured by pointing stderr at a
 * temporary file with dup2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

/* ---- stderr capture ---- */

static FILE *cap_file;
static int cap_saved = -1;
static char cap_buf[65536];

static void capture_begin(void)
{
    fflush(stderr);
    cap_file = tmpfile();
    assert_non_null(cap_file);
    cap_saved = dup(STDERR_FILENO);
    assert_true(cap_saved >= 0);
    assert_true(dup2(fileno(cap_file), STDERR_FILENO) >= 0);
}

/* Restores stderr and returns everything written meanwhile. */
static const char *capture_end(void)
{
    fflush(stderr);
    dup2(cap_saved, STDERR_FILENO);
    close(cap_saved);
    cap_saved = -1;
    rewind(cap_file);
    size_t n = fread(cap_buf, 1, sizeof(cap_buf) - 1, cap_file);
    cap_buf[n] = '\0';
    fclose(cap_file);
    cap_file = NULL;
    return cap_buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static int reset(void **state)
{
    log_set_level(LOG_INFO);
    log_set_secrets(NULL, 0);
    return 0;
}

/* ---- log_param_is_sensitive ---- */

static void test_param_is_sensitive(void **state)
{
    static const char *const yes[] = {
        "code",      "access_token", "refresh_token", "secret",       "appsecret", "ticket",
        "wx_ticket", "token",        "password",      "key",          "api_key",   "sig",
        "signature", "jwt",          "CODE",          "Access_Token", "WX_TICKET",
    };
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!log_param_is_sensitive(yes[i], strlen(yes[i])))
            fail_msg("%s should be sensitive", yes[i]);
    static const char *const no[] = {
        "state", "openid", "appid", "campaign", "return",  "url", "scope", "lang",
        "cod",   "codes",  "xcode", "access",   "tickets", "",    "code_", "grant_type",
    };
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (log_param_is_sensitive(no[i], strlen(no[i])))
            fail_msg("%s should not be sensitive", no[i]);
    /* The name is length-delimited, not NUL-terminated. */
    assert_true(log_param_is_sensitive("code=abc", 4));
    assert_true(log_param_is_sensitive("ticket&x", 6));
    assert_false(log_param_is_sensitive("code=abc", 3));
    assert_false(log_param_is_sensitive("code=abc", 5));
}

/* ---- log_redact_url ---- */

static void redacts(const char *in, const char *want)
{
    char out[1024];
    memset(out, 'Z', sizeof(out));
    assert_ptr_equal(log_redact_url(in, out, sizeof(out)), out);
    if (strcmp(out, want) != 0)
        fail_msg("log_redact_url(\"%s\")\n  got  \"%s\"\n  want \"%s\"", in, out, want);
}

static void test_redact_url_masks_sensitive_values(void **state)
{
    redacts("/callback?code=061abcDEF&state=s1t2", "/callback?code=***&state=s1t2");
    redacts(
        "/sns/oauth2/access_token?appid=wx1&secret=S3CR3T&code=C0DE&grant_type=authorization_code",
        "/sns/oauth2/access_token?appid=wx1&secret=***&code=***&grant_type=authorization_code");
    redacts("/sns/userinfo?access_token=AT&openid=o1&lang=zh_CN",
            "/sns/userinfo?access_token=***&openid=o1&lang=zh_CN");
    redacts("/sns/oauth2/refresh_token?appid=wx1&grant_type=refresh_token&refresh_token=RT",
            "/sns/oauth2/refresh_token?appid=wx1&grant_type=refresh_token&refresh_token=***");
    redacts("/api/ticket?ticket=T1", "/api/ticket?ticket=***");
    redacts("/page?wx_ticket=T1&x=1", "/page?wx_ticket=***&x=1");
    redacts("/x?token=a&key=b&api_key=c&sig=d&signature=e&jwt=f&password=g&appsecret=h",
            "/x?token=***&key=***&api_key=***&sig=***&signature=***&jwt=***&password=***"
            "&appsecret=***");
    /* Names are matched case-insensitively. */
    redacts("/callback?CODE=abc&Code=def", "/callback?CODE=***&Code=***");
    /* A repeated parameter is masked every time. */
    redacts("/callback?code=a&code=b", "/callback?code=***&code=***");
}

static void test_redact_url_keeps_others(void **state)
{
    redacts("/auth?campaign=spring&return=https%3A%2F%2Fh5.example.com%2F",
            "/auth?campaign=spring&return=https%3A%2F%2Fh5.example.com%2F");
    redacts("/healthz", "/healthz");
    redacts("", "");
    redacts("/x?", "/x?");
    redacts("/x?a", "/x?a");
    redacts("/x?a=1", "/x?a=1");
    redacts("/x?a==1", "/x?a==1");
    redacts("/x?a=1&&b=2&", "/x?a=1&&b=2&");
    /* Names that merely contain a sensitive name are not masked. */
    redacts("/x?codex=1&xcode=2&state=code", "/x?codex=1&xcode=2&state=code");
    /* A path that looks like a parameter is not a parameter. */
    redacts("/code=1", "/code=1");
}

static void test_redact_url_empty_and_valueless(void **state)
{
    /* An empty value is still masked (the log says nothing about its length). */
    redacts("/callback?code=&state=s", "/callback?code=***&state=s");
    /* A name with no '=' has no value to mask. */
    redacts("/callback?code&state=s", "/callback?code&state=s");
    /* The value runs to the next '&', '=' inside it included. */
    redacts("/x?secret=a=b=c&y=1", "/x?secret=***&y=1");
}

static void test_redact_url_fragments(void **state)
{
    char out[256];
    /* The query stops at '#': the parameter before it is masked. */
    log_redact_url("/cb?code=SECRETCODE#frag", out, sizeof(out));
    assert_true(strncmp(out, "/cb?code=***", 12) == 0);
    assert_null(strstr(out, "SECRETCODE"));

    log_redact_url("/cb?state=s#/home", out, sizeof(out));
    assert_true(strncmp(out, "/cb?state=s", 11) == 0);

    /* Tokens in a fragment (implicit-flow style) never reach the log. */
    log_redact_url("/cb?x=1#access_token=SECRETTOKEN&y=2", out, sizeof(out));
    assert_true(strncmp(out, "/cb?x=1", 7) == 0);
    assert_null(strstr(out, "SECRETTOKEN"));

    /* A '?' inside the fragment: still nothing sensitive comes out. */
    log_redact_url("/cb#/route?code=SECRETCODE", out, sizeof(out));
    assert_null(strstr(out, "SECRETCODE"));

    /* A fragment without a query is left alone or dropped, never garbled. */
    log_redact_url("/page#top", out, sizeof(out));
    assert_true(strncmp(out, "/page", 5) == 0);
}

static void test_redact_url_truncation(void **state)
{
    static const char in[] = "/callback?code=SECRETCODE&state=abc&access_token=TOKENVALUE";
    static const char full[] = "/callback?code=***&state=abc&access_token=***";
    char out[sizeof(in) + 16];

    /* outsz 0: nothing is written at all. */
    out[0] = 'Q';
    assert_ptr_equal(log_redact_url(in, out, 0), out);
    assert_int_equal(out[0], 'Q');

    for (size_t sz = 1; sz <= sizeof(out); sz++) {
        char *buf = malloc(sz); /* exact size: ASan catches any overrun */
        log_redact_url(in, buf, sz);
        size_t len = strlen(buf);
        assert_true(len < sz);
        /* Always a prefix of the full redacted form... */
        if (strncmp(buf, full, len) != 0)
            fail_msg("outsz %zu: \"%s\" is not a prefix of \"%s\"", sz, buf, full);
        /* ...as long as the room allows. */
        assert_int_equal(len, sz - 1 < strlen(full) ? sz - 1 : strlen(full));
        /* No piece of a sensitive value, however short the buffer. */
        assert_null(strstr(buf, "SEC"));
        assert_null(strstr(buf, "TOK"));
        free(buf);
    }
}

/* ---- log_msg: format, escaping, levels ---- */

static void test_msg_is_one_json_line(void **state)
{
    capture_begin();
    log_msg(LOG_WARN, "rid-123", "hello %s %d", "world", 42);
    const char *out = capture_end();
    assert_int_equal(count_lines(out), 1);
    assert_true(strncmp(out, "{\"time\":\"", 9) == 0);
    assert_non_null(
        strstr(out, "Z\",\"level\":\"warn\",\"rid\":\"rid-123\",\"msg\":\"hello world 42\"}\n"));
    assert_int_equal(out[strlen(out) - 1], '\n');

    capture_begin();
    log_info("no rid");
    out = capture_end();
    assert_non_null(strstr(out, "\"level\":\"info\",\"msg\":\"no rid\"}\n"));
    assert_null(strstr(out, "\"rid\""));
}

static void test_msg_json_escaping(void **state)
{
    capture_begin();
    log_msg(LOG_ERROR, "r\"1", "q\"uote b\\slash nl\n tab\t cr\r bel\x07 del\x7f end");
    const char *out = capture_end();
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "\"rid\":\"r\\\"1\""));
    assert_non_null(strstr(out, "\"msg\":\"q\\\"uote b\\\\slash nl\\u000a tab\\u0009 cr\\u000d "
                                "bel\\u0007 del\\u007f end\"}\n"));

    /* UTF-8 passes through untouched. */
    capture_begin();
    log_info("微信 login");
    out = capture_end();
    assert_non_null(strstr(out, "\"msg\":\"微信 login\"}"));
}

/* A message that grows sixfold when escaped is cut, but the line stays one
 * line and is still closed. */
static void test_msg_long_escaped_is_closed(void **state)
{
    char *msg = malloc(6000);
    memset(msg, '\x01', 5999);
    msg[5999] = '\0';
    capture_begin();
    log_info("%s", msg);
    const char *out = capture_end();
    free(msg);
    assert_int_equal(count_lines(out), 1);
    size_t len = strlen(out);
    assert_true(len <= 8192);
    assert_string_equal(out + len - 3, "\"}\n");
    /* Never a half-written escape before the closing quote. */
    assert_string_equal(out + len - 9, "\\u0001\"}\n");

    char *big = malloc(10000);
    memset(big, 'a', 9999);
    big[9999] = '\0';
    capture_begin();
    log_info("%s", big);
    out = capture_end();
    free(big);
    assert_int_equal(count_lines(out), 1);
    assert_string_equal(out + strlen(out) - 3, "\"}\n");
}

static void test_level_filtering(void **state)
{
    enum log_level l;
    assert_int_equal(log_parse_level("debug", &l), 0);
    assert_int_equal(l, LOG_DEBUG);
    assert_int_equal(log_parse_level("info", &l), 0);
    assert_int_equal(l, LOG_INFO);
    assert_int_equal(log_parse_level("warn", &l), 0);
    assert_int_equal(l, LOG_WARN);
    assert_int_equal(log_parse_level("error", &l), 0);
    assert_int_equal(l, LOG_ERROR);
    l = LOG_WARN;
    assert_int_equal(log_parse_level("verbose", &l), -1);
    assert_int_equal(log_parse_level("", &l), -1);
    assert_int_equal(l, LOG_WARN);

    /* Default level: info. */
    capture_begin();
    log_debug("d1");
    log_info("i1");
    const char *out = capture_end();
    assert_null(strstr(out, "d1"));
    assert_non_null(strstr(out, "i1"));

    log_set_level(LOG_WARN);
    capture_begin();
    log_debug("d2");
    log_info("i2");
    log_warn("w2");
    log_error("e2");
    log_access("rid", "GET", "/x", 200, 1.0, "127.0.0.1");
    out = capture_end();
    assert_int_equal(count_lines(out), 2);
    assert_non_null(strstr(out, "\"level\":\"warn\",\"msg\":\"w2\""));
    assert_non_null(strstr(out, "\"level\":\"error\",\"msg\":\"e2\""));
    assert_null(strstr(out, "\"path\""));

    log_set_level(LOG_ERROR);
    capture_begin();
    log_warn("w3");
    log_error("e3");
    out = capture_end();
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "e3"));

    log_set_level(LOG_DEBUG);
    capture_begin();
    log_debug("d4");
    log_access("rid", "GET", "/x", 200, 1.0, "127.0.0.1");
    out = capture_end();
    assert_int_equal(count_lines(out), 2);
    assert_non_null(strstr(out, "\"level\":\"debug\",\"msg\":\"d4\""));
}

/* ---- secrets ---- */

#define SECRET_A "app-secret-0123456789abcdef"
#define SECRET_B "cookie-secret-9876543210"

static void test_secrets_masked_in_msg(void **state)
{
    const char *list[] = {SECRET_A, SECRET_B, NULL, "abc", "wxyz"};
    log_set_secrets(list, 5);

    capture_begin();
    log_error("upstream said secret=" SECRET_A " and " SECRET_B SECRET_A);
    log_msg(LOG_WARN, SECRET_B, "rid is a secret too");
    log_info("abc is too short to register; wxyz is not");
    const char *out = capture_end();
    assert_int_equal(count_lines(out), 3);
    assert_null(strstr(out, SECRET_A));
    assert_null(strstr(out, SECRET_B));
    assert_null(strstr(out, "0123456789"));
    assert_non_null(
        strstr(out, "\"msg\":\"upstream said secret=[redacted] and [redacted][redacted]\"}"));
    assert_non_null(strstr(out, "\"rid\":\"[redacted]\""));
    /* Secrets under 4 characters are not registered; a 4-character one is
     * masked with a mask no longer than itself. */
    assert_non_null(strstr(out, "\"msg\":\"abc is too short to register; [red is not\"}"));

    /* The set is replaced, not extended. */
    const char *fresh[] = {"a-brand-new-secret-value"};
    log_set_secrets(fresh, 1);
    capture_begin();
    log_info(SECRET_A " a-brand-new-secret-value");
    out = capture_end();
    assert_non_null(strstr(out, SECRET_A " [redacted]"));

    log_set_secrets(NULL, 0);
    capture_begin();
    log_info("a-brand-new-secret-value");
    out = capture_end();
    assert_non_null(strstr(out, "a-brand-new-secret-value"));
}

/* log_set_secrets copies: the caller's strings may go away. */
static void test_secrets_are_copied(void **state)
{
    char *s = strdup("ephemeral-secret-42");
    const char *list[] = {s};
    log_set_secrets(list, 1);
    memset(s, 'x', strlen(s));
    free(s);
    capture_begin();
    log_info("ephemeral-secret-42");
    const char *out = capture_end();
    assert_non_null(strstr(out, "\"msg\":\"[redacted]\""));
}

static void test_access_log(void **state)
{
    const char *list[] = {SECRET_A};
    log_set_secrets(list, 1);
    capture_begin();
    log_access("r-9", "GET",
               "/callback?code=061CODEVALUE&state=st&foo=" SECRET_A "&wx_ticket=TICKETVALUE", 302,
               12.3456, "10.0.0.1");
    log_access("r-10", "POST", "/api/ticket", 200, 0.5, SECRET_A);
    const char *out = capture_end();
    assert_int_equal(count_lines(out), 2);
    assert_null(strstr(out, "061CODEVALUE"));
    assert_null(strstr(out, "TICKETVALUE"));
    assert_null(strstr(out, SECRET_A));
    assert_non_null(strstr(out, "\"level\":\"info\",\"rid\":\"r-9\",\"method\":\"GET\","
                                "\"path\":\"/callback?code=***&state=st&foo=[redacted]"
                                "&wx_ticket=***\",\"status\":302,\"ms\":12.346,"
                                "\"client\":\"10.0.0.1\"}\n"));
    assert_non_null(strstr(out, "\"rid\":\"r-10\",\"method\":\"POST\",\"path\":\"/api/ticket\","
                                "\"status\":200,\"ms\":0.500,\"client\":\"[redacted]\"}\n"));

    /* Control characters and quotes in a request line are escaped. */
    capture_begin();
    log_access("r-11", "GET", "/x?a=\"\n", 400, 0, "::1");
    out = capture_end();
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "\"path\":\"/x?a=\\\"\\u000a\""));

    /* A NULL uri is logged as empty. */
    capture_begin();
    log_access("r-12", "GET", NULL, 400, 0, "::1");
    out = capture_end();
    assert_non_null(strstr(out, "\"path\":\"\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_param_is_sensitive),
        cmocka_unit_test(test_redact_url_masks_sensitive_values),
        cmocka_unit_test(test_redact_url_keeps_others),
        cmocka_unit_test(test_redact_url_empty_and_valueless),
        cmocka_unit_test(test_redact_url_fragments),
        cmocka_unit_test(test_redact_url_truncation),
        cmocka_unit_test_setup_teardown(test_msg_is_one_json_line, reset, reset),
        cmocka_unit_test_setup_teardown(test_msg_json_escaping, reset, reset),
        cmocka_unit_test_setup_teardown(test_msg_long_escaped_is_closed, reset, reset),
        cmocka_unit_test_setup_teardown(test_level_filtering, reset, reset),
        cmocka_unit_test_setup_teardown(test_secrets_masked_in_msg, reset, reset),
        cmocka_unit_test_setup_teardown(test_secrets_are_copied, reset, reset),
        cmocka_unit_test_setup_teardown(test_access_log, reset, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
