/* Unit tests for core/login/login.c: the return-URL allow-list
 * (login_return_allowed), state records (encode/decode), the state-binding
 * cookie (login_state_mac, login_cookie_has, login_cookie_push),
 * login_ticket_key, token sealing
 * (login_token_seal/open). The config and
 * campaigns are built by hand: only the fields these functions read are set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "login.h"
#include "url.h"

/* ---- fixtures ---- */

static char *allow_list[] = {
    "https://h5.example.com/spring/",
    "http://127.0.0.1:8000",
    "https://game.example.com:8443/play",
};

static struct config_campaign campaign = {
    .name = "spring",
    .allow = allow_list,
    .n_allow = sizeof(allow_list) / sizeof(allow_list[0]),
};

static char *allow_v6[] = {"https://[2001:db8::1]:9443/app", "http://[::1]"};

static struct config_campaign campaign_v6 = {
    .name = "v6",
    .allow = allow_v6,
    .n_allow = sizeof(allow_v6) / sizeof(allow_v6[0]),
};

/* The parsed form config.c builds at load (freed by free_fixtures). */
static struct url_http *parsed[32];
static size_t n_parsed;

static void parse_allow(struct config_campaign *c)
{
    static unsigned long serial = 1000000;
    c->allow_serial = ++serial; /* verdicts are cached per allow-list */
    c->allow_url = calloc(c->n_allow ? c->n_allow : 1, sizeof(struct url_http));
    assert_non_null(c->allow_url);
    assert_true(n_parsed < sizeof(parsed) / sizeof(parsed[0]));
    parsed[n_parsed++] = c->allow_url;
    for (size_t i = 0; i < c->n_allow; i++) {
        const char *why;
        if (url_parse_http(c->allow[i], &c->allow_url[i], &why) != 0)
            fail_msg("fixture %s: %s", c->allow[i], why);
    }
}

static int parse_fixtures(void **state)
{
    parse_allow(&campaign);
    parse_allow(&campaign_v6);
    return 0;
}

static int free_fixtures(void **state)
{
    while (n_parsed)
        free(parsed[--n_parsed]);
    return 0;
}

static struct config *new_config(const char *cookie_secret, const char *ticket_secret,
                                 const char *token_key)
{
    struct config *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->cookie_secret = cookie_secret ? strdup(cookie_secret) : NULL;
    c->ticket_secret = ticket_secret ? strdup(ticket_secret) : NULL;
    c->token_key = token_key ? strdup(token_key) : NULL;
    c->public_url = strdup("https://login.example.com");
    return c;
}

static void free_config(struct config *c)
{
    free(c->cookie_secret);
    free(c->ticket_secret);
    free(c->token_key);
    free(c->public_url);
    free(c);
}

static void yes(const struct config_campaign *c, const char *url)
{
    if (!login_return_allowed(c, url))
        fail_msg("refused, expected accepted: %s", url);
}

static void no(const struct config_campaign *c, const char *url)
{
    if (login_return_allowed(c, url))
        fail_msg("accepted, expected refused: %s", url);
}

/* ---- login_return_allowed ---- */

static void allow_accepts_listed_urls(void **state)
{
    yes(&campaign, "https://h5.example.com/spring/");
    yes(&campaign, "https://h5.example.com/spring/index.html");
    yes(&campaign, "https://h5.example.com/spring/a/b?x=1&y=2#frag");
    yes(&campaign, "https://h5.example.com/spring/?from=wx");
    yes(&campaign, "http://127.0.0.1:8000");
    yes(&campaign, "http://127.0.0.1:8000/");
    yes(&campaign, "http://127.0.0.1:8000/anything/at/all?q=1");
    yes(&campaign, "http://127.0.0.1:8000?x=1");
    yes(&campaign, "http://127.0.0.1:8000#top");
    /* scheme and host are case-insensitive */
    yes(&campaign, "HTTPS://H5.Example.COM/spring/x");
    yes(&campaign, "https://game.example.com:8443/play");
}

static void allow_refuses_other_hosts(void **state)
{
    no(&campaign, "https://evil.com/spring/");
    no(&campaign, "https://example.com/spring/");
    no(&campaign, "https://x.h5.example.com/spring/");
    no(&campaign, "https://h5.example.com.evil.com/spring/");
    no(&campaign, "https://good.com.evil.com/spring/");
    no(&campaign, "https://h5.example.com./spring/");
    no(&campaign, "https://h5-example.com/spring/");
    no(&campaign, "http://localhost:8000/");
    no(&campaign, "http://2130706433:8000/");
    no(&campaign, "http://127.0.0.2:8000/");
}

static void allow_refuses_non_absolute_urls(void **state)
{
    no(&campaign, "");
    no(&campaign, "//evil.com/");
    no(&campaign, "//h5.example.com/spring/");
    no(&campaign, "/spring/");
    no(&campaign, "spring/");
    no(&campaign, "h5.example.com/spring/");
    no(&campaign, "https:/h5.example.com/spring/");
    no(&campaign, "https:h5.example.com/spring/");
    no(&campaign, "https:///h5.example.com/spring/");
    no(&campaign, "https://");
    no(&campaign, "https:///");
    no(&campaign, "https://?x");
}

static void allow_refuses_other_schemes(void **state)
{
    no(&campaign, "javascript:alert(1)");
    no(&campaign, "javascript://h5.example.com/spring/%0aalert(1)");
    no(&campaign, "JavaScript://h5.example.com/spring/");
    no(&campaign, "data:text/html,<script>alert(1)</script>");
    no(&campaign, "ftp://h5.example.com/spring/");
    no(&campaign, "wss://h5.example.com/spring/");
    no(&campaign, "httpx://h5.example.com/spring/");
    /* right host, wrong one of http/https */
    no(&campaign, "http://h5.example.com/spring/");
    no(&campaign, "https://127.0.0.1:8000/");
    no(&campaign, "http://game.example.com:8443/play");
}

static void allow_refuses_userinfo(void **state)
{
    no(&campaign, "https://user@h5.example.com/spring/");
    no(&campaign, "https://user:pw@h5.example.com/spring/");
    no(&campaign, "https://h5.example.com@evil.com/spring/");
    no(&campaign, "https://h5.example.com:443@evil.com/spring/");
    no(&campaign, "http://127.0.0.1:8000@evil.com/");
    no(&campaign, "https://@h5.example.com/spring/");
}

static void allow_refuses_control_and_encoded_characters(void **state)
{
    no(&campaign, "https://h5.example.com/spring/%0d%0aSet-Cookie:x=1");
    no(&campaign, "https://h5.example.com/spring/%0D%0A");
    no(&campaign, "https://h5.example.com/spring/%0a");
    no(&campaign, "https://h5.example.com/spring/?x=%0d");
    no(&campaign, "https://h5.example.com/spring/%00.html");
    no(&campaign, "https://h5.example.com/spring/\r\nX: y");
    no(&campaign, "https://h5.example.com/spring/\n");
    no(&campaign, "https://h5.example.com/spring/\t");
    no(&campaign, "https://h5.example.com/spring/a b");
    no(&campaign, "https://h5.example.com/spring/\x7f");
    no(&campaign, "https://h5.example.com/spring/\"onload=");
    no(&campaign, "https://h5.example.com/spring/<script>");
    no(&campaign, " https://h5.example.com/spring/");
    no(&campaign, "https://h5.example.com /spring/");
    no(&campaign, "https://h5.exa%6dple.com/spring/");
}

static void allow_normalizes_ports(void **state)
{
    /* default ports are the same as none, on either side */
    yes(&campaign, "https://h5.example.com:443/spring/");
    yes(&campaign, "http://127.0.0.1:8000/");
    yes(&campaign, "https://game.example.com:8443/play/x");
    no(&campaign, "https://h5.example.com:80/spring/");
    no(&campaign, "https://h5.example.com:444/spring/");
    no(&campaign, "https://h5.example.com:8443/spring/");
    no(&campaign, "http://127.0.0.1/");
    no(&campaign, "http://127.0.0.1:80/");
    no(&campaign, "http://127.0.0.1:8001/");
    no(&campaign, "http://127.0.0.1:80000/");
    no(&campaign, "https://game.example.com/play");
    no(&campaign, "https://game.example.com:443/play");
    /* malformed ports */
    no(&campaign, "https://h5.example.com:/spring/");
    no(&campaign, "https://h5.example.com:0/spring/");
    no(&campaign, "https://h5.example.com:65536/spring/");
    no(&campaign, "https://h5.example.com:443443/spring/");
    no(&campaign, "https://h5.example.com:-443/spring/");
    no(&campaign, "https://h5.example.com:+443/spring/");
    no(&campaign, "https://h5.example.com:44 3/spring/");
    no(&campaign, "https://h5.example.com:443:443/spring/");
    no(&campaign, "https://h5.example.com:0x1bb/spring/");

    static char *v[] = {"https://h:443/", "http://p:80/x"};
    struct config_campaign c = {.name = "ports", .allow = v, .n_allow = 2};
    parse_allow(&c);
    yes(&c, "https://h/");
    yes(&c, "https://h:443/");
    yes(&c, "https://h/anything");
    yes(&c, "http://p/x");
    yes(&c, "http://p:80/x/y");
    no(&c, "https://h:8443/");
    no(&c, "http://h/");
    no(&c, "http://p:8080/x");
}

static void allow_matches_path_prefixes(void **state)
{
    /* without a trailing slash: the path itself, below it, or a query */
    yes(&campaign, "https://game.example.com:8443/play");
    yes(&campaign, "https://game.example.com:8443/play/");
    yes(&campaign, "https://game.example.com:8443/play/x");
    yes(&campaign, "https://game.example.com:8443/play?x");
    yes(&campaign, "https://game.example.com:8443/play#x");
    no(&campaign, "https://game.example.com:8443/playground");
    no(&campaign, "https://game.example.com:8443/play.html");
    no(&campaign, "https://game.example.com:8443/pla");
    no(&campaign, "https://game.example.com:8443/");
    no(&campaign, "https://game.example.com:8443");
    no(&campaign, "https://game.example.com:8443?x=/play");
    no(&campaign, "https://game.example.com:8443/Play");
    no(&campaign, "https://game.example.com:8443/x/play");

    /* with a trailing slash: only below it */
    yes(&campaign, "https://h5.example.com/spring/x");
    no(&campaign, "https://h5.example.com/springtime/");
    no(&campaign, "https://h5.example.com/");
    no(&campaign, "https://h5.example.com");
    no(&campaign, "https://h5.example.com?/spring/");
    no(&campaign, "https://h5.example.com#/spring/");
    no(&campaign, "https://h5.example.com/autumn/spring/");
}

static void allow_refuses_dot_segments_and_disguises(void **state)
{
    no(&campaign, "https://h5.example.com/spring/../admin");
    no(&campaign, "https://h5.example.com/spring/..");
    no(&campaign, "https://h5.example.com/spring/./x");
    no(&campaign, "https://h5.example.com/spring/.");
    no(&campaign, "https://h5.example.com/spring/a/../../admin");
    no(&campaign, "https://h5.example.com/spring/..?x");
    no(&campaign, "https://game.example.com:8443/play/../admin");
    no(&campaign, "http://127.0.0.1:8000/../x");
    /* encoded dots, slashes and backslashes, in either case */
    no(&campaign, "https://h5.example.com/spring/%2e%2e/admin");
    no(&campaign, "https://h5.example.com/spring/%2E%2E/admin");
    no(&campaign, "https://h5.example.com/spring/.%2e/admin");
    no(&campaign, "https://h5.example.com/spring/%2e./admin");
    no(&campaign, "https://h5.example.com/spring/%2e");
    no(&campaign, "https://h5.example.com/spring/..%2fadmin");
    no(&campaign, "https://h5.example.com/spring/a%2Fb");
    no(&campaign, "https://h5.example.com/spring/..%5cadmin");
    no(&campaign, "https://h5.example.com/spring/%5C");
    /* raw backslashes, anywhere */
    no(&campaign, "https://h5.example.com/spring/..\\admin");
    no(&campaign, "https://h5.example.com/spring\\..\\admin");
    no(&campaign, "https://h5.example.com\\@evil.com/spring/");
    no(&campaign, "https:\\\\h5.example.com/spring/");
    no(&campaign, "https://evil.com\\.h5.example.com/spring/");
    /* dots that are not whole segments are fine */
    yes(&campaign, "https://h5.example.com/spring/..x");
    yes(&campaign, "https://h5.example.com/spring/x..");
    yes(&campaign, "https://h5.example.com/spring/.well-known");
    yes(&campaign, "https://h5.example.com/spring/a.b.c");
    yes(&campaign, "https://h5.example.com/spring/?x=/../");
}

static void allow_handles_ipv6_literals(void **state)
{
    yes(&campaign_v6, "https://[2001:db8::1]:9443/app");
    yes(&campaign_v6, "https://[2001:db8::1]:9443/app/x?y");
    yes(&campaign_v6, "https://[2001:DB8::1]:9443/app");
    yes(&campaign_v6, "http://[::1]/");
    yes(&campaign_v6, "http://[::1]:80/x");
    no(&campaign_v6, "https://[2001:db8::1]/app");
    no(&campaign_v6, "https://[2001:db8::1]:9443/apple");
    no(&campaign_v6, "https://[2001:db8::2]:9443/app");
    no(&campaign_v6, "http://[::1]:8080/");
    no(&campaign_v6, "https://[::1]/");
    no(&campaign_v6, "http://[::1/");
    no(&campaign_v6, "http://[::1]x/");
    no(&campaign_v6, "http://[::1]:/");
    no(&campaign_v6, "http://[::1%25eth0]/");
    no(&campaign_v6, "http://[::g]/");
    no(&campaign_v6, "http://::1/");
    no(&campaign_v6, "http://[evil.com]/");
    no(&campaign_v6, "http://user@[::1]/");
    /* and the other campaign does not list any */
    no(&campaign, "http://[::1]:8000/");
    no(&campaign, "http://[127.0.0.1]:8000/");
    no(&campaign, "http://[::ffff:127.0.0.1]:8000/");
}

static void allow_refuses_overlong_urls_and_empty_lists(void **state)
{
    char url[2100];
    int n = snprintf(url, sizeof(url), "https://h5.example.com/spring/");
    memset(url + n, 'a', sizeof(url) - 1 - (size_t)n);
    url[sizeof(url) - 1] = '\0';
    no(&campaign, url);
    url[2000] = '\0';
    yes(&campaign, url);
    url[2001] = '\0';
    url[2000] = 'a';
    no(&campaign, url);

    struct config_campaign empty = {.name = "empty", .allow = NULL, .n_allow = 0};
    parse_allow(&empty);
    no(&empty, "https://h5.example.com/spring/");

    /* (an entry no URL can match is refused when the config loads:
     * tests/unit/common/test_config.c) */
}

/* ---- state records ---- */

static void state_round_trip(void **state)
{
    struct login_state s = {.created = 1700000000L, .restarts = 2}, d;
    snprintf(s.scope, sizeof(s.scope), "snsapi_userinfo");
    snprintf(s.campaign, sizeof(s.campaign), "spring");
    snprintf(s.return_url, sizeof(s.return_url), "https://h5.example.com/spring/?a=1&b=2#x");
    char buf[4096];
    int n = login_state_encode(&s, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(buf));
    assert_string_equal(buf, "v1\t1700000000\t2\tsnsapi_userinfo\tspring\t"
                             "https://h5.example.com/spring/?a=1&b=2#x");
    memset(&d, 0x5a, sizeof(d));
    assert_int_equal(login_state_decode(buf, (size_t)n, &d), 0);
    assert_int_equal(d.created, s.created);
    assert_int_equal(d.restarts, s.restarts);
    assert_string_equal(d.scope, s.scope);
    assert_string_equal(d.campaign, s.campaign);
    assert_string_equal(d.return_url, s.return_url);

    /* the longest return_url the record holds */
    memset(s.return_url, 'u', sizeof(s.return_url) - 1);
    s.return_url[sizeof(s.return_url) - 1] = '\0';
    n = login_state_encode(&s, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(login_state_decode(buf, (size_t)n, &d), 0);
    assert_string_equal(d.return_url, s.return_url);

    /* decode reads len bytes only: no terminator needed */
    char raw[64];
    memcpy(raw, "v1\t5\t0\tsnsapi_base\tc\thttps://x/yyyyyyyyyy", 38);
    assert_int_equal(login_state_decode(raw, 38, &d), 0);
    assert_int_equal(d.created, 5);
    assert_string_equal(d.scope, "snsapi_base");
    assert_string_equal(d.return_url, "https://x/yyyyyyy");
}

static void state_encode_refuses_small_buffers(void **state)
{
    struct login_state s = {.created = 1, .restarts = 0};
    snprintf(s.scope, sizeof(s.scope), "snsapi_base");
    snprintf(s.campaign, sizeof(s.campaign), "c");
    snprintf(s.return_url, sizeof(s.return_url), "https://x/");
    char buf[64];
    int n = login_state_encode(&s, buf, sizeof(buf));
    assert_int_equal(n, (int)strlen("v1\t1\t0\tsnsapi_base\tc\thttps://x/"));
    assert_int_equal(login_state_encode(&s, buf, (size_t)n), -1);
    assert_int_equal(login_state_encode(&s, buf, (size_t)n + 1), n);
    assert_int_equal(login_state_encode(&s, buf, 4), -1);
}

static void state_decode_rejects(void **state)
{
    struct login_state d;
    const char *bad[] = {
        "",
        "v1",
        "v1\t",
        "v2\t1\t0\tsnsapi_base\tc\thttps://x/",
        "V1\t1\t0\tsnsapi_base\tc\thttps://x/",
        "v10\t1\t0\tsnsapi_base\tc\thttps://x/",
        "v1 1\t0\tsnsapi_base\tc\thttps://x/",
        "1\t0\tsnsapi_base\tc\thttps://x/",
        "v1\t1\t0\tsnsapi_base\tc",
        "v1\t1\t0\tsnsapi_base",
        "v1\t1\t0\tsnsapi_base\tc\t",
        "v1\t1\t0\t\tc\thttps://x/",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (login_state_decode(bad[i], strlen(bad[i]), &d) != -1)
            fail_msg("accepted: \"%s\"", bad[i]);

    /* a valid record cut short */
    const char *ok = "v1\t1\t0\tsnsapi_base\tc\thttps://x/";
    assert_int_equal(login_state_decode(ok, strlen(ok), &d), 0);
    assert_int_equal(login_state_decode(ok, 2, &d), -1);
    assert_int_equal(login_state_decode(ok, strlen(ok) - strlen("\thttps://x/"), &d), -1);

    /* too long */
    size_t big = 4096;
    char *v = malloc(big + 1);
    assert_non_null(v);
    memcpy(v, "v1\t1\t0\tsnsapi_base\tc\thttps://x/", strlen(ok));
    memset(v + strlen(ok), 'a', big - strlen(ok));
    v[big] = '\0';
    assert_int_equal(login_state_decode(v, big, &d), -1);
    assert_int_equal(login_state_decode(v, big - 1, &d), 0);
    assert_int_equal(strlen(d.return_url), sizeof(d.return_url) - 1);
    free(v);
}

/* ---- the state cookie ---- */

static void state_mac_is_deterministic_per_secret(void **state)
{
    struct config *a = new_config("cookie-secret-A-0123456789", "t", NULL);
    struct config *b = new_config("cookie-secret-B-0123456789", "t", NULL);
    char m1[23], m2[23], m3[23], m4[23];
    memset(m1, 'X', sizeof(m1));
    login_state_mac(a, "STATE0123456789abcdefghijklmnopq", m1);
    login_state_mac(a, "STATE0123456789abcdefghijklmnopq", m2);
    login_state_mac(b, "STATE0123456789abcdefghijklmnopq", m3);
    login_state_mac(a, "STATE0123456789abcdefghijklmnopr", m4);
    assert_int_equal(strlen(m1), 22);
    assert_int_equal(strspn(m1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                "0123456789-_"),
                     22);
    assert_string_equal(m1, m2);
    assert_string_not_equal(m1, m3);
    assert_string_not_equal(m1, m4);

    /* no secret at all still gives a well-formed mac */
    struct config *none = new_config(NULL, NULL, NULL);
    login_state_mac(none, "s", m1);
    assert_int_equal(strlen(m1), 22);
    free_config(a);
    free_config(b);
    free_config(none);
}

#define MAC_A "AAAAAAAAAAAAAAAAAAAAAA"
#define MAC_B "BBBBBBBBBBBBBBBBBBBBBB"
#define MAC_C "CCCCCCCCCCCCCCCCCCCCCC"
#define MAC_D "DDDDDDDDDDDDDDDDDDDDDD"
#define MAC_E "EEEEEEEEEEEEEEEEEEEEEE"
#define MAC_N "nnnnnnnnnnnnnnnnnnnn-_"

static void cookie_has(void **state)
{
    assert_int_equal(login_cookie_has(NULL, MAC_A), -1);
    assert_int_equal(login_cookie_has("", MAC_A), -1);
    assert_int_equal(login_cookie_has("garbage", MAC_A), -1);
    assert_int_equal(login_cookie_has("...", MAC_A), -1);
    assert_int_equal(login_cookie_has(MAC_A "x", MAC_A), -1);
    assert_int_equal(login_cookie_has("AAAAAAAAAAAAAAAAAAAAA", MAC_A), -1);

    assert_int_equal(login_cookie_has(MAC_A, MAC_A), 1);
    assert_int_equal(login_cookie_has(MAC_B "." MAC_A, MAC_A), 1);
    assert_int_equal(login_cookie_has(MAC_B "." MAC_C "." MAC_D "." MAC_A, MAC_A), 1);
    assert_int_equal(login_cookie_has("junk." MAC_A ".", MAC_A), 1);
    assert_int_equal(login_cookie_has(".." MAC_A, MAC_A), 1);

    assert_int_equal(login_cookie_has(MAC_B, MAC_A), 0);
    assert_int_equal(login_cookie_has(MAC_B "." MAC_C, MAC_A), 0);
    assert_int_equal(login_cookie_has("junk." MAC_B, MAC_A), 0);
    /* a mac only as part of a longer entry does not count */
    assert_int_equal(login_cookie_has(MAC_B "." MAC_A "A", MAC_A), 0);
    assert_int_equal(login_cookie_has("x" MAC_A "." MAC_B, MAC_A), 0);
}

static void cookie_push(void **state)
{
    char out[128];
    login_cookie_push(NULL, MAC_N, out, sizeof(out));
    assert_string_equal(out, MAC_N);
    login_cookie_push("", MAC_N, out, sizeof(out));
    assert_string_equal(out, MAC_N);
    login_cookie_push(MAC_A, MAC_N, out, sizeof(out));
    assert_string_equal(out, MAC_N "." MAC_A);

    /* at most three old ones, most recent first */
    login_cookie_push(MAC_A "." MAC_B "." MAC_C "." MAC_D "." MAC_E, MAC_N, out, sizeof(out));
    assert_string_equal(out, MAC_N "." MAC_A "." MAC_B "." MAC_C);

    /* malformed entries are dropped */
    login_cookie_push("junk." MAC_A ".AAAA<script>AAAAAAAAAA.." MAC_B
                      ".AAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAA AAAAAAAA;." MAC_C,
                      MAC_N, out, sizeof(out));
    assert_string_equal(out, MAC_N "." MAC_A "." MAC_B "." MAC_C);

    /* the new one is not repeated */
    login_cookie_push(MAC_A "." MAC_N "." MAC_B, MAC_N, out, sizeof(out));
    assert_string_equal(out, MAC_N "." MAC_A "." MAC_B);

    /* what push writes, has finds */
    struct config *cfg = new_config("cookie-secret-0123456789", "t", NULL);
    char m1[23], m2[23];
    login_state_mac(cfg, "state-one", m1);
    login_state_mac(cfg, "state-two", m2);
    login_cookie_push(NULL, m1, out, sizeof(out));
    char out2[128];
    login_cookie_push(out, m2, out2, sizeof(out2));
    assert_int_equal(login_cookie_has(out2, m1), 1);
    assert_int_equal(login_cookie_has(out2, m2), 1);
    assert_int_equal(login_cookie_has(out2, MAC_A), 0);
    free_config(cfg);
}

static void cookie_push_never_overflows(void **state)
{
    const char *old = MAC_A "." MAC_B "." MAC_C "." MAC_D;
    for (size_t sz = 1; sz <= 128; sz++) {
        char *out = malloc(sz); /* exact size: ASan catches any overflow */
        assert_non_null(out);
        login_cookie_push(old, MAC_N, out, sz);
        size_t n = strnlen(out, sz);
        assert_true(n < sz);
        /* whatever fits is a prefix of the full value, whole entries only
         * once the new mac is complete */
        assert_memory_equal(out, MAC_N "." MAC_A "." MAC_B "." MAC_C, n);
        if (n >= 22)
            assert_int_equal((n - 22) % 23, 0);
        free(out);
    }
}

/* ---- URLs and tickets ---- */

/* A ticket's value carries its campaign ahead of the user record; a value
 * without one (written before) is the record alone. */
static void ticket_value_carries_its_campaign(void **state)
{
    char camp[80];
    char *v = login_ticket_value("spring-2026", "{\"openid\":\"o1\",\"nickname\":\"a\\tb\"}");
    assert_non_null(v);
    const char *rec = login_ticket_record(v, camp, sizeof(camp));
    assert_string_equal(camp, "spring-2026");
    assert_string_equal(rec, "{\"openid\":\"o1\",\"nickname\":\"a\\tb\"}");
    free(v);
    rec = login_ticket_record("{\"campaign\":\"old\"}", camp, sizeof(camp));
    assert_string_equal(camp, "");
    assert_string_equal(rec, "{\"campaign\":\"old\"}");
    /* a camp too long for the buffer: the record still comes back */
    v = login_ticket_value("abcdefghij", "{}");
    rec = login_ticket_record(v, camp, 4);
    assert_string_equal(camp, "");
    assert_string_equal(rec, "{}");
    free(v);
}

static void ticket_key_depends_on_secret(void **state)
{
    struct config *a = new_config("c", "ticket-secret-A-0123456789", NULL);
    struct config *b = new_config("c", "ticket-secret-B-0123456789", NULL);
    char k1[64], k2[64], k3[64], k4[64];
    login_ticket_key(a, "TICKET123", k1);
    login_ticket_key(a, "TICKET123", k2);
    login_ticket_key(b, "TICKET123", k3);
    login_ticket_key(a, "TICKET124", k4);
    assert_memory_equal(k1, "tk:", 3);
    assert_int_equal(strlen(k1), 3 + 32);
    assert_int_equal(strspn(k1 + 3, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                    "0123456789-_"),
                     32);
    assert_string_equal(k1, k2);
    assert_string_not_equal(k1, k3);
    assert_string_not_equal(k1, k4);
    assert_null(strstr(k1, "TICKET123"));

    /* the cookie secret plays no part */
    struct config *c = new_config("other", "ticket-secret-A-0123456789", NULL);
    login_ticket_key(c, "TICKET123", k3);
    assert_string_equal(k1, k3);
    free_config(a);
    free_config(b);
    free_config(c);
}

/* ---- tokens ---- */

#define RECORD "v1\tACCESS-TOKEN-xyz\tREFRESH-TOKEN-abc\t1700007200\t1702592000\tsnsapi_base"

static void token_sealed_with_key(void **state)
{
    struct config *cfg = new_config("c", "t", "token-key-0123456789abcdef");
    struct config *other = new_config("c", "t", "token-key-9876543210fedcba");
    size_t len = 0;
    char *sealed = login_token_seal(cfg, "ut:wxA:openid1", RECORD, &len);
    assert_non_null(sealed);
    assert_int_equal(len, strlen(sealed));
    assert_null(strstr(sealed, "ACCESS-TOKEN"));
    assert_null(strstr(sealed, "REFRESH-TOKEN"));
    assert_null(strstr(sealed, "snsapi"));
    assert_memory_not_equal(sealed, "v1\t", 3);

    char *plain = login_token_open(cfg, "ut:wxA:openid1", sealed, len);
    assert_non_null(plain);
    assert_string_equal(plain, RECORD);
    free(plain);

    /* a second seal differs (fresh nonce) but opens the same */
    size_t len2 = 0;
    char *sealed2 = login_token_seal(cfg, "ut:wxA:openid1", RECORD, &len2);
    assert_non_null(sealed2);
    assert_string_not_equal(sealed, sealed2);
    plain = login_token_open(cfg, "ut:wxA:openid1", sealed2, len2);
    assert_non_null(plain);
    assert_string_equal(plain, RECORD);
    free(plain);
    free(sealed2);

    /* wrong key, another store key, tampering, plain records: refused */
    assert_null(login_token_open(other, "ut:wxA:openid1", sealed, len));
    assert_null(login_token_open(cfg, "ut:wxA:openid2", sealed, len));
    assert_null(login_token_open(cfg, "ut:wxB:openid1", sealed, len));
    assert_null(login_token_open(cfg, "", sealed, len));
    assert_null(login_token_open(cfg, "ut:wxA:openid1", sealed, len - 1));
    char *t = strdup(sealed);
    t[len / 2] = t[len / 2] == 'A' ? 'B' : 'A';
    assert_null(login_token_open(cfg, "ut:wxA:openid1", t, len));
    free(t);
    assert_null(login_token_open(cfg, "ut:wxA:openid1", RECORD, strlen(RECORD)));
    assert_null(login_token_open(cfg, "ut:wxA:openid1", "", 0));
    assert_null(login_token_open(cfg, "ut:wxA:openid1", "v1.", 3));
    free(sealed);
    free_config(cfg);
    free_config(other);
}

static void token_plain_without_key(void **state)
{
    struct config *cfg = new_config("c", "t", NULL);
    size_t len = 0;
    char *v = login_token_seal(cfg, "ut:wxA:openid1", RECORD, &len);
    assert_non_null(v);
    assert_string_equal(v, RECORD);
    assert_int_equal(len, strlen(RECORD));
    char *plain = login_token_open(cfg, "ut:wxA:openid1", v, len);
    assert_non_null(plain);
    assert_string_equal(plain, RECORD);
    free(plain);
    /* the store key does not matter without a key */
    plain = login_token_open(cfg, "ut:other", v, len);
    assert_non_null(plain);
    assert_string_equal(plain, RECORD);
    free(plain);
    /* reads len bytes only */
    plain = login_token_open(cfg, "k", "v1\tabcdef", 5);
    assert_non_null(plain);
    assert_string_equal(plain, "v1\tab");
    free(plain);
    free(v);

    /* anything else is refused, including a sealed value */
    struct config *keyed = new_config("c", "t", "token-key-0123456789abcdef");
    char *sealed = login_token_seal(keyed, "ut:wxA:openid1", RECORD, &len);
    assert_non_null(sealed);
    assert_null(login_token_open(cfg, "ut:wxA:openid1", sealed, len));
    free(sealed);
    assert_null(login_token_open(cfg, "k", "", 0));
    assert_null(login_token_open(cfg, "k", "v1", 2));
    assert_null(login_token_open(cfg, "k", "v2\tx", 4));
    assert_null(login_token_open(cfg, "k", "garbage", 7));
    assert_null(login_token_open(cfg, "k", "V1\tx", 4));
    free_config(keyed);
    free_config(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(allow_accepts_listed_urls),
        cmocka_unit_test(allow_refuses_other_hosts),
        cmocka_unit_test(allow_refuses_non_absolute_urls),
        cmocka_unit_test(allow_refuses_other_schemes),
        cmocka_unit_test(allow_refuses_userinfo),
        cmocka_unit_test(allow_refuses_control_and_encoded_characters),
        cmocka_unit_test(allow_normalizes_ports),
        cmocka_unit_test(allow_matches_path_prefixes),
        cmocka_unit_test(allow_refuses_dot_segments_and_disguises),
        cmocka_unit_test(allow_handles_ipv6_literals),
        cmocka_unit_test(allow_refuses_overlong_urls_and_empty_lists),
        cmocka_unit_test(state_round_trip),
        cmocka_unit_test(state_encode_refuses_small_buffers),
        cmocka_unit_test(state_decode_rejects),
        cmocka_unit_test(state_mac_is_deterministic_per_secret),
        cmocka_unit_test(cookie_has),
        cmocka_unit_test(cookie_push),
        cmocka_unit_test(cookie_push_never_overflows),
        cmocka_unit_test(ticket_value_carries_its_campaign),
        cmocka_unit_test(ticket_key_depends_on_secret),
        cmocka_unit_test(token_sealed_with_key),
        cmocka_unit_test(token_plain_without_key),
    };
    return cmocka_run_group_tests(tests, parse_fixtures, free_fixtures);
}
