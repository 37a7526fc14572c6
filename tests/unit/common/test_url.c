/* Unit tests for core/common/url.c: the URL module over curl_url (return URLs and
 * allow-list entries, listen addresses, store URLs' parts, queries) and the
 * query-value encoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "url.h"

static void encode(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(url_encode(out, sizeof(out), "https://login.example.com/callback"), 42);
    assert_string_equal(out, "https%3A%2F%2Flogin.example.com%2Fcallback");
    assert_int_equal(url_encode(out, sizeof(out), "a-b._~ 微"), 18);
    assert_string_equal(out, "a-b._~%20%E5%BE%AE");
    assert_int_equal(url_encode(out, 4, "abcd"), -1); /* no room for the NUL */
    assert_int_equal(url_encode(out, 4, "a/"), -1);
    assert_int_equal(url_encode(out, 5, "a/"), 4);
    assert_int_equal(url_encode(out, 1, ""), 0);
}

static void decode_and_queries(void **state)
{
    (void)state;
    size_t n;
    char *s = url_decode("a%3Ab%00c+%zz%4", 15, &n);
    assert_int_equal(n, 11);
    assert_memory_equal(s, "a:b\0c+%zz%4", 11);
    free(s);
}

static int collect(const char *name, const char *value, void *arg)
{
    char *out = arg;
    size_t o = strlen(out);
    snprintf(out + o, 256 - o, "[%s=%s]", name, value ? value : "(none)");
    return strcmp(name, "stop") == 0 ? 7 : 0;
}

static void query_each(void **state)
{
    (void)state;
    char out[256] = "";
    assert_int_equal(url_query_each("a=1&&b=%41&c&d=", collect, out), 0);
    assert_string_equal(out, "[a=1][b=A][c=(none)][d=]");
    out[0] = '\0';
    assert_int_equal(url_query_each("x=1&stop=1&y=2", collect, out), 7);
    assert_string_equal(out, "[x=1][stop=1]");
    assert_int_equal(url_query_each(NULL, collect, out), 0);
}

static void ok_http(const char *url, int https, const char *host, int port, const char *path)
{
    struct url_http u;
    const char *why = NULL;
    if (url_parse_http(url, &u, &why) != 0)
        fail_msg("refused %s: %s", url, why);
    assert_int_equal(u.https, https);
    assert_string_equal(u.host, host);
    assert_int_equal(u.port, port);
    assert_string_equal(u.path, path);
}

static void bad_http(const char *url)
{
    struct url_http u;
    const char *why = NULL;
    if (url_parse_http(url, &u, &why) == 0)
        fail_msg("accepted %s as %s:%d%s", url, u.host, u.port, u.path);
    assert_non_null(why);
}

static void http_urls(void **state)
{
    (void)state;
    ok_http("https://h5.example.com/spring/", 1, "h5.example.com", 443, "/spring/");
    ok_http("HTTP://H5.Example.COM:8080", 0, "h5.example.com", 8080, "/");
    ok_http("https://h5.example.com/a/../b?x=1#f", 1, "h5.example.com", 443, "/a/../b");
    ok_http("http://[2001:db8::1]:9443/app", 0, "[2001:db8::1]", 9443, "/app");
    ok_http("https://h5.example.com:0443/", 1, "h5.example.com", 443, "/");
    bad_http("http://a_b.example:99999/"); /* the port: no URL can ever match */
    bad_http("https://h5.example.com:0/");
    bad_http("https://h5.example.com:/x");
    bad_http("https://user@h5.example.com/");
    bad_http("https://:pw@h5.example.com/");
    bad_http("https:/h5.example.com/");
    bad_http("https:///h5.example.com/");
    bad_http("https://h5.exa%6dple.com/");
    bad_http("http://2130706433/");
    bad_http("http://0x7f.1/");
    bad_http("http://[fe80::1%25eth0]/");
    bad_http("ftp://h5.example.com/");
    bad_http("javascript:alert(1)");
    bad_http("//h5.example.com/");
    bad_http("h5.example.com/");
    bad_http("http://a b/");
    bad_http("");
}

static void disguised_paths(void **state)
{
    (void)state;
    static const char *const yes[] = {"/a/../b",  "/..",    "/.",     "/a/./b",
                                      "/%2e%2e/", "/a%2Fb", "/a%5cb", "./x"};
    static const char *const no[] = {"/", "/a.b/c", "/..a/", "/a../", "/a%20b", ""};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!url_path_disguised(yes[i], strlen(yes[i])))
            fail_msg("not seen: %s", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (url_path_disguised(no[i], strlen(no[i])))
            fail_msg("seen: %s", no[i]);
}

static void split_store_urls(void **state)
{
    (void)state;
    struct url_parts p;
    const char *why;
    assert_int_equal(url_split("redis://us%40er:p%40ss@[::1]:6380/2?prefix=a%3A#f", 1, &p, &why),
                     0);
    assert_string_equal(p.scheme, "redis");
    assert_string_equal(p.user, "us@er");
    assert_string_equal(p.password, "p@ss");
    assert_string_equal(p.host, "[::1]");
    assert_string_equal(p.port, "6380");
    assert_string_equal(p.path, "/2");
    assert_string_equal(p.query, "prefix=a%3A");
    assert_string_equal(p.fragment, "f");
    url_parts_free(&p);
    assert_int_equal(url_split("redis://h", 0, &p, &why), -1); /* unknown scheme */
    assert_int_equal(url_split("redis://", 1, &p, &why), -1);
    assert_non_null(why);
}

static void listen_addresses(void **state)
{
    (void)state;
    char *h = NULL;
    int port = 0;
    const char *why;
    assert_int_equal(url_parse_listen("[fe80::1%eth0]:8443", &h, &port, &why), 0);
    assert_string_equal(h, "fe80::1%eth0");
    assert_int_equal(port, 8443);
    free(h);
    assert_int_equal(url_parse_listen(":9000", &h, &port, &why), 0);
    assert_string_equal(h, "0.0.0.0");
    free(h);
    static const char *const bad[] = {"h:80/x", "h:80?x",  "u@h:80", "h",
                                      "h:",     "h:65536", "[::1]",  "h:8a"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (url_parse_listen(bad[i], &h, &port, &why) == 0)
            fail_msg("accepted %s", bad[i]);
}

static void set_param_cases(void **state)
{
    struct {
        const char *url, *name, *value, *want;
    } cases[] = {
        {"https://a.example.com/p", "ticket", "T1", "https://a.example.com/p?ticket=T1"},
        {"https://a.example.com/p?x=1", "ticket", "T1", "https://a.example.com/p?x=1&ticket=T1"},
        {"https://a.example.com/p?", "ticket", "T1", "https://a.example.com/p?ticket=T1"},
        {"https://a.example.com/p?x=1&", "ticket", "T1", "https://a.example.com/p?x=1&ticket=T1"},
        {"https://a.example.com/p#/spa/route", "ticket", "T1",
         "https://a.example.com/p?ticket=T1#/spa/route"},
        {"https://a.example.com/p?x=1#frag", "ticket", "T1",
         "https://a.example.com/p?x=1&ticket=T1#frag"},
        {"https://a.example.com/p#frag?y=2", "ticket", "T1",
         "https://a.example.com/p?ticket=T1#frag?y=2"},
        {"https://a.example.com/p?#", "t", "v", "https://a.example.com/p?t=v#"},
        {"https://a.example.com/p#", "t", "v", "https://a.example.com/p?t=v#"},
        {"https://a.example.com/p", "error", "a b&c=d#e/f?g+h%",
         "https://a.example.com/p?error=a%20b%26c%3Dd%23e%2Ff%3Fg%2Bh%25"},
        {"https://a.example.com/p", "t", "", "https://a.example.com/p?t="},
        {"https://a.example.com/p", "t", "Az09-._~", "https://a.example.com/p?t=Az09-._~"},
        {"https://a.example.com/p", "t", "\xe4\xb8\xad", "https://a.example.com/p?t=%E4%B8%AD"},
        /* a parameter of the same name is replaced, wherever and however written */
        {"https://a.example.com/p?wx_ticket=EVIL&x=1", "wx_ticket", "T",
         "https://a.example.com/p?x=1&wx_ticket=T"},
        {"https://a.example.com/p?wx%5Fticket=EVIL&y=2&wx_ticket=2#f", "wx_ticket", "T",
         "https://a.example.com/p?y=2&wx_ticket=T#f"},
        {"https://a.example.com/p?a+b=1&c", "a b", "2", "https://a.example.com/p?c&a%20b=2"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = url_set_param(cases[i].url, cases[i].name, cases[i].value);
        assert_non_null(got);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("%s + %s=%s:\n got  %s\n want %s", cases[i].url, cases[i].name, cases[i].value,
                     got, cases[i].want);
        free(got);
    }
}

static void set_query_keeps_what_it_does_not_replace(void **state)
{
    (void)state;
    char *u = url_set_query("https://a.com/p?x=1&&y=2#h", "");
    assert_string_equal(u, "https://a.com/p?x=1&y=2#h");
    free(u);
    u = url_set_query("https://a.com/p?#h", "");
    assert_string_equal(u, "https://a.com/p?#h");
    free(u);
    u = url_set_query("https://a.com/p?a=1&b=2", "a=3&c=4");
    assert_string_equal(u, "https://a.com/p?b=2&a=3&c=4");
    free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(set_param_cases),
        cmocka_unit_test(set_query_keeps_what_it_does_not_replace),
        cmocka_unit_test(encode),
        cmocka_unit_test(decode_and_queries),
        cmocka_unit_test(query_each),
        cmocka_unit_test(http_urls),
        cmocka_unit_test(disguised_paths),
        cmocka_unit_test(split_store_urls),
        cmocka_unit_test(listen_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
