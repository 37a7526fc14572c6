/* Unit tests for core/common/config.c: defaults of a minimal config, every error
 * message with its key path (unknown keys, types, listen addresses, app
 * secrets from env/file, campaigns and their allow-lists, default_campaign,
 * routes, tls), several errors in one message, config_secrets(),
 * config_retain/config_release, config_parse_listen() and the shipped
 * examples/wxgate.lua (found through WX_SOURCE_DIR). Each test writes
 * its config files into a fresh temporary directory. */
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

#include "config.h"

#ifndef WX_SOURCE_DIR
#define WX_SOURCE_DIR "."
#endif

/* ---- fixtures: a temporary directory per test ---- */

struct tmp {
    char dir[256];   /* as created (mkdtemp) */
    char real[4096]; /* realpath(dir): config paths are resolved */
    char err[4096];
};

static int setup(void **state)
{
    struct tmp *t = calloc(1, sizeof(*t));
    const char *base = getenv("TMPDIR");
    snprintf(t->dir, sizeof(t->dir), "%s/wxcfg-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(t->dir))
        return -1;
    if (!realpath(t->dir, t->real))
        return -1;
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct tmp *t = *state;
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
    int rc = system(cmd);
    (void)rc;
    free(t);
    return 0;
}

/* Writes dir/name (creating one level of subdirectory if name has one). */
static void put(struct tmp *t, const char *name, const char *text)
{
    char p[600];
    const char *slash = strchr(name, '/');
    if (slash) {
        snprintf(p, sizeof(p), "%s/%.*s", t->dir, (int)(slash - name), name);
        mkdir(p, 0700);
    }
    snprintf(p, sizeof(p), "%s/%s", t->dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Writes config.lua with text and loads it. */
static struct config *load(struct tmp *t, const char *text)
{
    char p[600];
    put(t, "config.lua", text);
    snprintf(p, sizeof(p), "%s/config.lua", t->dir);
    memset(t->err, 'X', sizeof(t->err));
    return config_load(p, t->err, sizeof(t->err));
}

/* Loading text must fail, and the message must contain every wanted line. */
static void refused(struct tmp *t, const char *text, const char *want)
{
    struct config *c = load(t, text);
    if (c) {
        config_release(c);
        fail_msg("config accepted, expected \"%s\":\n%s", want, text);
    }
    if (!strstr(t->err, want))
        fail_msg("expected \"%s\" in:\n%s", want, t->err);
}

static struct config *accepted(struct tmp *t, const char *text)
{
    struct config *c = load(t, text);
    if (!c)
        fail_msg("config refused:\n%s\n--\n%s", t->err, text);
    return c;
}

/* A valid base with one app and one campaign; %s is spliced into the table. */
#define APP_ENV    "WXCFG_TEST_SECRET"
#define APP_SECRET "app-secret-0123456789abcdef"
#define FULL_HEAD                                                                                  \
    "return { listen = '127.0.0.1:8080', public_url = 'https://login.example.com',\n"              \
    "  cookie_secret = 'cookie-secret-0123456789', ticket_secret = 'ticket-secret-0123456789',\n"
#define APPS "  apps = { demo = { appid = 'wx0123456789', secret = { env = '" APP_ENV "' } } },\n"

static char *full(const char *extra)
{
    static char buf[4096];
    snprintf(buf, sizeof(buf), FULL_HEAD APPS "%s }\n", extra);
    return buf;
}

static char *with_campaign(const char *camp_fields, const char *extra)
{
    static char buf[4096];
    snprintf(buf, sizeof(buf), FULL_HEAD APPS "  campaigns = { spring = { %s } },\n%s }\n",
             camp_fields, extra);
    return buf;
}

#define ALLOW "allow = { 'https://h5.example.com/spring/' }"

/* ---- defaults ---- */

static void test_minimal_defaults(void **state)
{
    struct tmp *t = *state;
    struct config *c = accepted(t, "return { listen = \"127.0.0.1:8080\" }\n");

    char want[4200];
    snprintf(want, sizeof(want), "%s/config.lua", t->real);
    assert_string_equal(c->path, want);
    assert_string_equal(c->dir, t->real);
    assert_int_equal(c->refs, 1);
    assert_string_equal(c->listen, "127.0.0.1:8080");
    assert_string_equal(c->listen_host, "127.0.0.1");
    assert_int_equal(c->listen_port, 8080);
    assert_true(c->workers >= 1);
    assert_true(c->workers <= 256);
    assert_string_equal(c->store, "memory");
    assert_string_equal(c->log_level, "info");
    assert_int_equal(c->require_wechat_browser, 1);
    assert_null(c->public_url);
    assert_null(c->cookie_secret);
    assert_null(c->ticket_secret);
    assert_null(c->token_key);
    assert_int_equal(c->n_api_keys, 0);
    assert_null(c->tls_listen);
    assert_string_equal(c->wechat_open_base, "https://open.weixin.qq.com");
    assert_string_equal(c->wechat_api_base, "https://api.weixin.qq.com");
    assert_null(c->wechat_ca_file);
    assert_int_equal(c->upstream_connect_timeout_ms, 2000);
    assert_int_equal(c->upstream_timeout_ms, 5000);
    assert_int_equal(c->lua_cpu_budget_ms, 200);
    assert_int_equal(c->lua_memory_mb, 64);
    assert_int_equal(c->limits.max_header_size, 16384);
    assert_int_equal(c->limits.max_uri_length, 4096);
    assert_int_equal(c->limits.max_body_size, 65536);
    assert_int_equal(c->limits.max_connections, 4096);
    assert_int_equal(c->limits.header_timeout_ms, 10000);
    assert_int_equal(c->limits.read_timeout_ms, 10000);
    assert_int_equal(c->limits.write_timeout_ms, 10000);
    assert_int_equal(c->limits.max_headers, 100);
    assert_int_equal(c->limits.keepalive_timeout_ms, 30000);
    assert_int_equal(c->limits.drain_timeout_ms, 10000);
    assert_int_equal(c->n_apps, 0);
    assert_int_equal(c->n_campaigns, 0);
    assert_int_equal(c->n_routes, 0);
    assert_null(c->default_campaign);
    assert_null(config_find_app(c, "demo"));
    assert_null(config_find_campaign(c, "spring"));
    config_release(c);
}

static void test_empty_table_uses_default_listen(void **state)
{
    struct tmp *t = *state;
    struct config *c = accepted(t, "return {}\n");
    assert_string_equal(c->listen, "127.0.0.1:8080");
    assert_string_equal(c->listen_host, "127.0.0.1");
    assert_int_equal(c->listen_port, 8080);
    config_release(c);
}

static void test_explicit_values(void **state)
{
    struct tmp *t = *state;
    struct config *c = accepted(
        t, "return { listen = ':9090', workers = 3, store = 'redis://127.0.0.1:6379/2',\n"
           "  log_level = 'debug', require_wechat_browser = false,\n"
           "  token_key = 'token-key-0123456789abcdef',\n"
           "  public_url = 'http://127.0.0.1:9090',\n"
           "  wechat = { open_base = 'http://127.0.0.1:1', api_base = 'http://127.0.0.1:2',\n"
           "             connect_timeout_ms = 100, timeout_ms = 200 },\n"
           "  limits = { max_header_size = 2048, max_uri_length = 512, max_body_size = 0,\n"
           "             max_connections = 10, header_timeout_ms = 100, io_timeout_ms = 200,\n"
           "             keepalive_timeout_ms = 400, drain_timeout_ms = 0 },\n"
           "  lua = { cpu_budget_ms = 50, memory_mb = 8 } }\n");
    assert_string_equal(c->listen_host, "0.0.0.0");
    assert_int_equal(c->listen_port, 9090);
    assert_int_equal(c->workers, 3);
    assert_string_equal(c->store, "redis://127.0.0.1:6379/2");
    assert_string_equal(c->token_key, "token-key-0123456789abcdef");
    assert_string_equal(c->log_level, "debug");
    assert_int_equal(c->require_wechat_browser, 0);
    assert_string_equal(c->public_url, "http://127.0.0.1:9090");
    assert_string_equal(c->wechat_open_base, "http://127.0.0.1:1");
    assert_string_equal(c->wechat_api_base, "http://127.0.0.1:2");
    assert_int_equal(c->upstream_connect_timeout_ms, 100);
    assert_int_equal(c->upstream_timeout_ms, 200);
    assert_int_equal(c->limits.max_header_size, 2048);
    assert_int_equal(c->limits.max_uri_length, 512);
    assert_int_equal(c->limits.max_body_size, 0);
    assert_int_equal(c->limits.max_connections, 10);
    assert_int_equal(c->limits.header_timeout_ms, 100);
    /* io_timeout_ms, the key from before read and write were separate. */
    assert_int_equal(c->limits.read_timeout_ms, 200);
    assert_int_equal(c->limits.write_timeout_ms, 200);
    assert_int_equal(c->limits.keepalive_timeout_ms, 400);
    assert_int_equal(c->limits.drain_timeout_ms, 0);
    assert_int_equal(c->lua_cpu_budget_ms, 50);
    assert_int_equal(c->lua_memory_mb, 8);
    config_release(c);
}

/* ---- the file itself ---- */

static void test_missing_file(void **state)
{
    struct tmp *t = *state;
    char p[600];
    snprintf(p, sizeof(p), "%s/nope.lua", t->dir);
    assert_null(config_load(p, t->err, sizeof(t->err)));
    assert_non_null(strstr(t->err, "config: "));
    assert_non_null(strstr(t->err, "nope.lua"));
    assert_non_null(strstr(t->err, "cannot read"));
}

static void test_syntax_and_runtime_errors(void **state)
{
    struct tmp *t = *state;
    refused(t, "return { listen = \n", "config: ");
    assert_non_null(strstr(t->err, "config.lua"));
    refused(t, "error('kaboom')\n", "kaboom");
    refused(t, "return 42\n", "must return a table");
    refused(t, "return nil\n", "must return a table");
}

/* ---- unknown keys and types ---- */

static void test_unknown_keys(void **state)
{
    struct tmp *t = *state;
    refused(t, "return { lisen = '127.0.0.1:1' }\n", "config: lisen: unknown key");
    refused(t, "return { [1] = 'x' }\n",
            "config: (top level): keys must be names, found a number key");
    refused(t, "return { limits = { max_header_lines = 1 } }\n",
            "config: limits.max_header_lines: unknown key");
    refused(t, "return { wechat = { base = 'x' } }\n", "config: wechat.base: unknown key");
    refused(t, "return { lua = { budget = 1 } }\n", "config: lua.budget: unknown key");
    refused(t, "return { tls = { listen = ':1', cert = 'c', key = 'k', chain = 1 } }\n",
            "config: tls.chain: unknown key");
    refused(t, "return { limits = { [true] = 1 } }\n",
            "config: limits: keys must be names, found a boolean key");
    refused(t, full("  routes = { ['/m'] = { module = 'sandbox', opts = {} } },\n"),
            "config: routes[\"/m\"].opts: unknown key");

    setenv(APP_ENV, APP_SECRET, 1);
    refused(t,
            FULL_HEAD "  apps = { demo = { appid = 'wx1', secret = { env = '" APP_ENV "' },"
                      " app_id = 'x' } } }\n",
            "config: apps.demo.app_id: unknown key");
    refused(t,
            FULL_HEAD "  apps = { demo = { appid = 'wx1', secret = { env = '" APP_ENV "',"
                      " value = 'x' } } } }\n",
            "config: apps.demo.secret.value: unknown key");
    refused(t, with_campaign(ALLOW ", colour = 'red'", ""),
            "config: campaigns.spring.colour: unknown key");
}

static void test_wrong_types(void **state)
{
    struct tmp *t = *state;
    refused(t, "return { listen = 8080 }\n", "config: listen: must be a string, found a number");
    refused(t, "return { workers = '2' }\n", "config: workers: must be a number, found a string");
    refused(t, "return { workers = 0 }\n", "config: workers: must be a whole number from 1 to 256");
    refused(t, "return { workers = 257 }\n",
            "config: workers: must be a whole number from 1 to 256");
    refused(t, "return { workers = 1.5 }\n",
            "config: workers: must be a whole number from 1 to 256");
    refused(t, "return { workers = math.huge }\n", "config: workers: must be a whole number");
    refused(t, "return { workers = 0/0 }\n", "config: workers: must be a whole number");
    refused(t, "return { require_wechat_browser = 1 }\n",
            "config: require_wechat_browser: must be true or false, found a number");
    refused(t, "return { limits = 5 }\n", "config: limits: must be a table, found a number");
    refused(t, "return { wechat = 'x' }\n", "config: wechat: must be a table, found a string");
    refused(t, "return { apps = true }\n", "config: apps: must be a table, found a boolean");
    refused(t, "return { limits = { max_header_size = 100 } }\n",
            "config: limits.max_header_size: must be a whole number from 1024 to 1048576");
    refused(t, "return { limits = { header_timeout_ms = 'fast' } }\n",
            "config: limits.header_timeout_ms: must be a number, found a string");
    refused(t, "return { lua = { memory_mb = 2 } }\n",
            "config: lua.memory_mb: must be a whole number from 4 to 4096");
    refused(t, "return { wechat = { timeout_ms = 5 } }\n",
            "config: wechat.timeout_ms: must be a whole number from 10 to 120000");
    refused(
        t, "return { store = 'mysql://x' }\n",
        "config: store: must be \"memory\" (or \"memory?max_mb=N\"), \"redis://host:port/db\", "
        "\"redis-sentinel://h1:port,h2:port/MASTER/db\" or \"redis-cluster://h1:port,h2:port/\"");
    refused(t, "return { store = 'redis-cluster://127.0.0.1:7000/' }\n",
            "config: token_key: required with a Redis store: users' tokens are encrypted at rest");
    refused(t, "return { log_level = 'verbose' }\n",
            "config: log_level: must be debug, info, warn or error");
    refused(t, "return { public_url = 'login.example.com' }\n",
            "config: public_url: must start with http:// or https://");
    refused(t, "return { listen = '127.0.0.1:80\\0x' }\n",
            "config: listen: must not contain NUL bytes");
    refused(t, "return { cookie_secret = 'short' }\n",
            "config: cookie_secret: too short: use at least 16 random characters");
    refused(t, "return { ticket_secret = 12 }\n", "config: ticket_secret: must be a string or");
    refused(t, "return { token_key = 'short' }\n",
            "config: token_key: too short: use at least 16 random characters");
    refused(t, "return { store = 'redis://127.0.0.1:6379/0' }\n",
            "config: token_key: required with a Redis store");
    refused(t, "return { api_keys = { 'shortkey' } }\n",
            "config: api_keys[1]: too short: use at least 16 random characters");
    refused(t, "return { wechat = { ca_file = 'missing-ca.pem' } }\n",
            "config: wechat.ca_file: cannot read");
    refused(t, "return { dashboard = { password = 'short' } }\n",
            "config: dashboard.password: too short: use at least 8 characters");
    refused(t, "return { dashboard = { pasword = 'long-enough-pw' } }\n",
            "config: dashboard.pasword: unknown key");
    refused(t, "return { dashboard = { counters = 'no' } }\n", "config: dashboard.counters:");
    struct config *c =
        accepted(t, "return { dashboard = { password = 'long-enough-pw', counters = false } }\n");
    assert_string_equal(c->dashboard_password, "long-enough-pw");
    assert_int_equal(c->dashboard_counters_off, 1);
    size_t n = 0;
    const char **secrets = config_secrets(c, &n);
    int listed = 0;
    for (size_t i = 0; i < n; i++)
        listed |= strcmp(secrets[i], "long-enough-pw") == 0;
    assert_true(listed); /* redacted from logs like the other secrets */
    free(secrets);
    config_release(c);
}

/* ---- listen ---- */

static void test_listen_addresses(void **state)
{
    struct tmp *t = *state;
    struct config *c = accepted(t, "return { listen = '[::1]:80' }\n");
    assert_string_equal(c->listen_host, "::1");
    assert_int_equal(c->listen_port, 80);
    config_release(c);

    c = accepted(t, "return { listen = 'localhost:65535' }\n");
    assert_string_equal(c->listen_host, "localhost");
    assert_int_equal(c->listen_port, 65535);
    config_release(c);

    refused(t, "return { listen = '[::1]80' }\n",
            "config: listen: bad listen address \"[::1]80\" (expected host:port)");
    refused(t, "return { listen = '127.0.0.1' }\n", "config: listen: bad listen address");
    refused(t, "return { listen = '127.0.0.1:' }\n", "config: listen: bad listen address");
    refused(t, "return { listen = '127.0.0.1:65536' }\n", "config: listen: bad listen address");
    refused(t, "return { listen = '127.0.0.1:-1' }\n", "config: listen: bad listen address");
    refused(t, "return { listen = '127.0.0.1:http' }\n", "config: listen: bad listen address");
    refused(t, "return { listen = '[::1' }\n", "config: listen: bad listen address");
    refused(t, "return { listen = 'my host:80' }\n", "config: listen: bad listen address");
}

static void test_parse_listen(void **state)
{
    char *h = NULL;
    int port = -2;
    static const struct {
        const char *in, *host;
        int port;
    } ok[] = {
        {"127.0.0.1:8080", "127.0.0.1", 8080},
        {"0.0.0.0:0", "0.0.0.0", 0},
        {":9000", "0.0.0.0", 9000},
        {"[::1]:80", "::1", 80},
        {"[::]:443", "::", 443},
        {"[fe80::1%eth0]:8443", "fe80::1%eth0", 8443},
        {"localhost:65535", "localhost", 65535},
        {"login.example.com:1", "login.example.com", 1},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        h = NULL;
        port = -2;
        if (config_parse_listen(ok[i].in, &h, &port) != 0)
            fail_msg("refused %s", ok[i].in);
        assert_string_equal(h, ok[i].host);
        assert_int_equal(port, ok[i].port);
        free(h);
    }
    static const char *const bad[] = {
        "",
        "8080",
        "127.0.0.1",
        "127.0.0.1:",
        ":",
        "[::1]80",
        "[::1]",
        "[::1",
        "[::1]:",
        "host:65536",
        "host:99999999999999999999",
        "host:-1",
        "host:80x",
        "host:x80",
        "a b:80",
        "[::1]:8a",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        h = (char *)"untouched";
        if (config_parse_listen(bad[i], &h, &port) == 0)
            fail_msg("accepted \"%s\" as host \"%s\" port %d", bad[i], h, port);
        assert_string_equal(h, "untouched");
    }
}

/* ---- apps and their secrets ---- */

static void test_app_secret_from_env(void **state)
{
    struct tmp *t = *state;
    setenv(APP_ENV, APP_SECRET, 1);
    struct config *c = accepted(t, full(""));
    assert_int_equal(c->n_apps, 1);
    assert_string_equal(c->apps[0].name, "demo");
    assert_string_equal(c->apps[0].appid, "wx0123456789");
    assert_string_equal(c->apps[0].secret, APP_SECRET);
    assert_ptr_equal(config_find_app(c, "demo"), &c->apps[0]);
    assert_ptr_equal(config_find_app(c, "wx0123456789"), &c->apps[0]);
    assert_null(config_find_app(c, "other"));
    config_release(c);

    unsetenv(APP_ENV);
    refused(t, full(""), "config: apps.demo.secret: environment variable " APP_ENV " is not set");
    setenv(APP_ENV, "", 1);
    refused(t, full(""), "config: apps.demo.secret: environment variable " APP_ENV " is not set");
    unsetenv(APP_ENV);
}

static void test_app_secret_from_file(void **state)
{
    struct tmp *t = *state;
    put(t, "secrets/demo", "file-secret-abcdef\n\n");
    struct config *c = accepted(
        t, FULL_HEAD "  apps = { demo = { appid = 'wx1', secret = { file = 'secrets/demo' },\n"
                     "                    domains = { 'login.example.com' } } } }\n");
    assert_string_equal(c->apps[0].secret, "file-secret-abcdef");
    assert_int_equal(c->apps[0].n_domains, 1);
    assert_string_equal(c->apps[0].domains[0], "login.example.com");
    config_release(c);

    /* An absolute path works too. */
    char text[1200];
    snprintf(text, sizeof(text),
             FULL_HEAD
             "  apps = { demo = { appid = 'wx1', secret = { file = '%s/secrets/demo' } } } }\n",
             t->dir);
    c = accepted(t, text);
    assert_string_equal(c->apps[0].secret, "file-secret-abcdef");
    config_release(c);

    refused(t, FULL_HEAD "  apps = { demo = { appid = 'wx1', secret = { file = 'nofile' } } } }\n",
            "config: apps.demo.secret: cannot read ");
    assert_non_null(strstr(t->err, "/nofile"));
    put(t, "secrets/empty", "\n");
    refused(t,
            FULL_HEAD
            "  apps = { demo = { appid = 'wx1', secret = { file = 'secrets/empty' } } } }\n",
            "config: apps.demo.secret: ");
    assert_non_null(strstr(t->err, "secrets/empty is empty"));
}

static void test_app_secret_missing_or_literal(void **state)
{
    struct tmp *t = *state;
    refused(t, FULL_HEAD "  apps = { demo = { appid = 'wx1' } } }\n",
            "config: apps.demo.secret: missing app secret (secret = { env = \"NAME\" } or "
            "{ file = \"path\" })");
    refused(t,
            FULL_HEAD "  apps = { demo = { appid = 'wx1', secret = 'plain-text-secret-123' } } }\n",
            "config: apps.demo.secret: must be { env = \"NAME\" } or { file = \"path\" }: secrets "
            "are never written in the config");
    /* The refused literal is never echoed back. */
    assert_null(strstr(t->err, "plain-text-secret-123"));
    refused(t, FULL_HEAD "  apps = { demo = { appid = 'wx1', secret = {} } } }\n",
            "config: apps.demo.secret: needs env = \"NAME\" or file = \"path\"");
    setenv(APP_ENV, APP_SECRET, 1);
    refused(t, FULL_HEAD "  apps = { demo = { secret = { env = '" APP_ENV "' } } } }\n",
            "config: apps.demo.appid: missing");
    refused(t, FULL_HEAD "  apps = { 'wx1' } }\n",
            "config: apps: each app is name = { appid = ..., secret = ... }");
    refused(t,
            FULL_HEAD "  apps = { demo = { appid = 'wx1', secret = { env = '" APP_ENV "' },"
                      " domains = { 42 } } } }\n",
            "config: apps.demo.domains[1]: must be a host name");
}

/* Secrets given as cookie/ticket/api keys: literal, env and file forms. */
static void test_key_secrets(void **state)
{
    struct tmp *t = *state;
    setenv("WXCFG_TEST_API", "api-key-from-env-0123456789", 1);
    put(t, "keys/ticket", "ticket-from-file-0123456789\n");
    struct config *c = accepted(
        t, "return { cookie_secret = 'cookie-literal-0123456789',\n"
           "  ticket_secret = { file = 'keys/ticket' },\n"
           "  api_keys = { 'api-key-literal-0123456789', { env = 'WXCFG_TEST_API' } } }\n");
    assert_string_equal(c->cookie_secret, "cookie-literal-0123456789");
    assert_string_equal(c->ticket_secret, "ticket-from-file-0123456789");
    assert_int_equal(c->n_api_keys, 2);
    assert_string_equal(c->api_keys[0], "api-key-literal-0123456789");
    assert_string_equal(c->api_keys[1], "api-key-from-env-0123456789");
    config_release(c);
    unsetenv("WXCFG_TEST_API");
    refused(t, "return { api_keys = { { env = 'WXCFG_TEST_API' } } }\n",
            "environment variable WXCFG_TEST_API is not set");
    assert_non_null(strstr(t->err, "config: api_keys"));
}

/* ---- campaigns ---- */

static void test_campaign_accepted(void **state)
{
    struct tmp *t = *state;
    setenv(APP_ENV, APP_SECRET, 1);
    put(t, "campaigns/spring.lua", "return {}\n");
    struct config *c = accepted(
        t,
        with_campaign(
            "app = 'demo', scope = 'snsapi_userinfo', scope_override = true, force_popup = true,"
            " force_snapshot = true, lang = 'en', ticket_ttl = 60, script = 'campaigns/spring.lua',"
            " allow = { 'https://h5.example.com/spring/', 'http://127.0.0.1:8000',"
            " 'https://a.example.com:8443/x' }",
            "  default_campaign = 'spring',\n"));
    assert_int_equal(c->n_campaigns, 1);
    const struct config_campaign *cp = config_find_campaign(c, "spring");
    assert_non_null(cp);
    assert_ptr_equal(cp->app, &c->apps[0]);
    assert_string_equal(cp->scope, "snsapi_userinfo");
    assert_int_equal(cp->scope_override, 1);
    assert_int_equal(cp->force_popup, 1);
    assert_int_equal(cp->force_snapshot, 1);
    assert_string_equal(cp->lang, "en");
    assert_int_equal(cp->ticket_ttl, 60);
    assert_int_equal(cp->n_allow, 3);
    assert_string_equal(cp->allow[0], "https://h5.example.com/spring/");
    assert_string_equal(cp->allow[1], "http://127.0.0.1:8000");
    assert_string_equal(cp->allow[2], "https://a.example.com:8443/x");
    char want[4200];
    snprintf(want, sizeof(want), "%s/campaigns/spring.lua", t->real);
    assert_string_equal(cp->script, want);
    assert_string_equal(c->default_campaign, "spring");
    assert_null(config_find_campaign(c, "autumn"));
    config_release(c);

    /* Defaults: the only app, snsapi_base, zh_CN, 300 s tickets, no script. */
    c = accepted(t, with_campaign(ALLOW, ""));
    cp = &c->campaigns[0];
    assert_ptr_equal(cp->app, &c->apps[0]);
    assert_string_equal(cp->scope, "snsapi_base");
    assert_int_equal(cp->scope_override, 0);
    assert_int_equal(cp->force_popup, 0);
    assert_int_equal(cp->force_snapshot, 0);
    assert_string_equal(cp->lang, "zh_CN");
    assert_int_equal(cp->ticket_ttl, 300);
    assert_null(cp->script);
    config_release(c);

    /* The app may be named by its appid. */
    c = accepted(t, with_campaign("app = 'wx0123456789', " ALLOW, ""));
    assert_ptr_equal(c->campaigns[0].app, &c->apps[0]);
    config_release(c);
}

static void test_campaign_errors(void **state)
{
    struct tmp *t = *state;
    setenv(APP_ENV, APP_SECRET, 1);
    refused(t, with_campaign("app = 'nope', " ALLOW, ""),
            "config: campaigns.spring.app: no app named \"nope\"");
    refused(t, with_campaign("app = 7, " ALLOW, ""),
            "config: campaigns.spring.app: must be a string, found a number");
    /* With two apps, the app must be named. */
    setenv("WXCFG_TEST_SECRET2", "second-secret-0123456789", 1);
    refused(t,
            FULL_HEAD
            "  apps = { a = { appid = 'wx1', secret = { env = '" APP_ENV "' } },\n"
            "           b = { appid = 'wx2', secret = { env = 'WXCFG_TEST_SECRET2' } } },\n"
            "  campaigns = { spring = { " ALLOW " } } }\n",
            "config: campaigns.spring.app: missing (the name of an entry of apps)");
    refused(t, with_campaign("scope = 'snsapi_login', " ALLOW, ""),
            "config: campaigns.spring.scope: must be \"snsapi_base\" or \"snsapi_userinfo\"");
    refused(t, with_campaign("lang = 'fr', " ALLOW, ""),
            "config: campaigns.spring.lang: must be \"zh_CN\", \"zh_TW\" or \"en\"");
    refused(t, with_campaign("ticket_ttl = 5, " ALLOW, ""),
            "config: campaigns.spring.ticket_ttl: must be a whole number from 10 to 3600");
    refused(t, with_campaign("force_popup = 'yes', " ALLOW, ""),
            "config: campaigns.spring.force_popup: must be true or false, found a string");
    refused(t, with_campaign("", ""),
            "config: campaigns.spring.allow: missing: the list of allowed return URL prefixes");
    refused(t, with_campaign("allow = {}", ""),
            "config: campaigns.spring.allow: must list at least one URL prefix");
    refused(t, with_campaign("allow = 'https://h5.example.com/'", ""),
            "config: campaigns.spring.allow: must be a table, found a string");
    refused(t, with_campaign("script = 'missing.lua', " ALLOW, ""),
            "config: campaigns.spring.script: cannot read script ");
    assert_non_null(strstr(t->err, "/missing.lua"));
    refused(t, FULL_HEAD APPS "  campaigns = { 'x' } }\n",
            "config: campaigns: each campaign is name = { app = ..., allow = { ... } }");
    refused(t, with_campaign(ALLOW, "  default_campaign = 'autumn',\n"),
            "config: default_campaign: no campaign named \"autumn\"");
    refused(t, "return { default_campaign = 'autumn' }\n",
            "config: default_campaign: no campaign named \"autumn\"");
}

/* Apps declare their kind; each login of a campaign names an app of the
 * kind it needs, and the only official account is the default app. */
#define KIND_APPS                                                                                  \
    "  apps = { oa = { appid = 'wx_oa', secret = { env = '" APP_ENV "' } },\n"                     \
    "           web = { appid = 'wx_web', kind = 'website', secret = { env = '" APP_ENV "' } },\n" \
    "           mp = { appid = 'wx_mp', kind = 'miniprogram', secret = { env = '" APP_ENV          \
    "' } },\n"                                                                                     \
    "           game = { appid = 'wx_game', kind = 'minigame', secret = { env = '" APP_ENV         \
    "' } } },\n"

static void test_app_kinds(void **state)
{
    struct tmp *t = *state;
    setenv(APP_ENV, APP_SECRET, 1);
    struct config *c = accepted(t, FULL_HEAD KIND_APPS
                                "  campaigns = { spring = { website_app = 'web', miniprogram_apps "
                                "= { 'mp', 'game' }, " ALLOW " } } }\n");
    const struct config_campaign *cp = config_find_campaign(c, "spring");
    assert_string_equal(cp->app->name, "oa");
    assert_int_equal(cp->app->kind, APP_OFFICIAL_ACCOUNT);
    assert_string_equal(cp->website_app->appid, "wx_web");
    assert_int_equal(cp->n_mini_apps, 2);
    assert_int_equal(config_find_app(c, "game")->kind, APP_MINIPROGRAM);
    assert_true(config_find_app(c, "game")->minigame);
    assert_ptr_equal(config_campaign_of_mini_app(c, config_find_app(c, "wx_game")), cp);
    assert_null(config_campaign_of_mini_app(c, config_find_app(c, "oa")));
    config_release(c);
    c = accepted(t, FULL_HEAD KIND_APPS "  campaigns = { spring = { miniprogram_apps = 'mp', " ALLOW
                                        " } } }\n");
    assert_int_equal(config_find_campaign(c, "spring")->n_mini_apps, 1);
    config_release(c);

    refused(t, FULL_HEAD KIND_APPS "  campaigns = { spring = { app = 'web', " ALLOW " } } }\n",
            "config: campaigns.spring.app: app \"web\" is of kind website: the web login (app) "
            "needs an app of kind official_account");
    refused(t,
            FULL_HEAD KIND_APPS "  campaigns = { spring = { website_app = 'oa', " ALLOW " } } }\n",
            "config: campaigns.spring.website_app: app \"oa\" is of kind official_account: PC QR "
            "login (website_app) needs an app of kind website");
    refused(t,
            FULL_HEAD KIND_APPS
            "  campaigns = { spring = { miniprogram_apps = { 'mp', 'web' }, " ALLOW " } } }\n",
            "config: campaigns.spring.miniprogram_apps[2]: app \"web\" is of kind website");
    refused(
        t, FULL_HEAD KIND_APPS "  campaigns = { spring = { website_app = 'nope', " ALLOW " } } }\n",
        "config: campaigns.spring.website_app: no app named \"nope\"");
    refused(
        t, FULL_HEAD KIND_APPS "  campaigns = { spring = { miniprogram_apps = 7, " ALLOW " } } }\n",
        "config: campaigns.spring.miniprogram_apps: must be an app name or a list of app names");
    refused(t, FULL_HEAD KIND_APPS "  campaigns = { spring = { pc_inline = {}, " ALLOW " } } }\n",
            "config: campaigns.spring.pc_inline: needs website_app");
    refused(t,
            FULL_HEAD KIND_APPS "  campaigns = { spring = { website_app = 'web', pc_inline = { "
                                "style = 'red', href = 'http://x/' }, " ALLOW " } } }\n",
            "config: campaigns.spring.pc_inline.style: must be \"black\" or \"white\"");
    assert_non_null(strstr(t->err, "config: campaigns.spring.pc_inline.href: must be an https://"));
    c = accepted(t, FULL_HEAD KIND_APPS "  campaigns = { spring = { website_app = 'web', "
                                        "pc_inline = {}, " ALLOW " } } }\n");
    assert_string_equal(config_find_campaign(c, "spring")->pc_style, "black");
    config_release(c);
    refused(t,
            FULL_HEAD "  apps = { x = { appid = 'wx1', kind = 'bot', secret = { env = '" APP_ENV
                      "' } } } }\n",
            "config: apps.x.kind: must be \"official_account\", \"website\", \"miniprogram\" or "
            "\"minigame\"");
}

/* Campaigns need the keys and the public URL that the login flow uses. */
static void test_campaign_requires_keys(void **state)
{
    struct tmp *t = *state;
    setenv(APP_ENV, APP_SECRET, 1);
    refused(t, "return {" APPS "  campaigns = { spring = { " ALLOW " } } }\n",
            "config: public_url: required with campaigns");
    assert_non_null(strstr(t->err, "config: cookie_secret: required with campaigns"));
    assert_non_null(strstr(t->err, "config: ticket_secret: required with campaigns"));
}

static void test_allow_list_entries(void **state)
{
    struct tmp *t = *state;
    setenv(APP_ENV, APP_SECRET, 1);
    static const char *const bad[] = {
        "https://user@h5.example.com/", /* userinfo */
        "https://user:pw@h5.example.com/",
        "h5.example.com/spring/", /* no scheme */
        "//h5.example.com/",
        "javascript:alert(1)",
        "javascript://h5.example.com/%0aalert(1)",
        "data:text/html,x",
        "ftp://h5.example.com/",
        "https://h5.example.com/?a=1",   /* query */
        "https://h5.example.com/#/home", /* fragment */
        "https://h5.example.com/a b",    /* whitespace */
        "https://h5.example.com\\@evil.com/",
        "https://",
        "https:///path",
        "https://:443/",
        "",
        "http://a_b.example:99999/",      /* no URL can ever match these: */
        "https://h5.example.com/a/../b/", /* return URLs may not hold dot segments */
        "https://h5.example.com/%2e%2e/",
        "https://h5.exa%6dple.com/", /* not written as it is read */
        "http://2130706433/",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char camp[512];
        snprintf(camp, sizeof(camp), "allow = { 'https://ok.example.com/', [[%s]] }", bad[i]);
        refused(t, with_campaign(camp, ""),
                "config: campaigns.spring.allow[2]: must be an http(s) origin with an optional "
                "path, like \"https://h5.example.com/spring/\"");
    }
    refused(t, with_campaign("allow = { 42 }", ""), "config: campaigns.spring.allow[1]: must be");
    /* A control character (here a tab) inside the entry. */
    refused(t, with_campaign("allow = { 'https://h5.example.com/\\tx' }", ""),
            "config: campaigns.spring.allow[1]: must be");
}

/* ---- routes ---- */

static void test_routes(void **state)
{
    struct tmp *t = *state;
    put(t, "lua/hello.lua", "return function() return 200, 'ok' end\n");
    char text[1200];
    snprintf(text, sizeof(text),
             "return { routes = { ['/hello'] = 'lua/hello.lua', ['/abs'] = '%s/lua/hello.lua',\n"
             "  ['/_sandbox'] = { module = 'sandbox', options = { users = 3, tls = false,"
             " name = 'x' } } } }\n",
             t->dir);
    struct config *c = accepted(t, text);
    assert_int_equal(c->n_routes, 3);
    char want[4200], want_abs[4200];
    snprintf(want, sizeof(want), "%s/lua/hello.lua", t->real);
    snprintf(want_abs, sizeof(want_abs), "%s/lua/hello.lua", t->dir);
    int seen = 0;
    for (size_t i = 0; i < c->n_routes; i++) {
        const struct config_route *r = &c->routes[i];
        if (strcmp(r->prefix, "/hello") == 0) {
            seen |= 1;
            assert_string_equal(r->script, want); /* relative to the config's directory */
            assert_null(r->module);
        } else if (strcmp(r->prefix, "/abs") == 0) {
            seen |= 2;
            assert_string_equal(r->script, want_abs);
        } else if (strcmp(r->prefix, "/_sandbox") == 0) {
            seen |= 4;
            assert_null(r->script);
            assert_string_equal(r->module, "sandbox");
            assert_int_equal(r->n_opts, 3);
            for (size_t j = 0; j < r->n_opts; j++) {
                if (strcmp(r->opt_keys[j], "users") == 0)
                    assert_string_equal(r->opt_vals[j], "3");
                else if (strcmp(r->opt_keys[j], "tls") == 0)
                    assert_string_equal(r->opt_vals[j], "false");
                else if (strcmp(r->opt_keys[j], "name") == 0)
                    assert_string_equal(r->opt_vals[j], "x");
                else
                    fail_msg("unexpected option %s", r->opt_keys[j]);
            }
        }
    }
    assert_int_equal(seen, 7);
    config_release(c);
}

/* A config loaded through a relative path from another working directory
 * still resolves its scripts against its own directory. */
static void test_routes_relative_to_config_dir(void **state)
{
    struct tmp *t = *state;
    put(t, "sub/config.lua", "return { routes = { ['/r'] = 'r.lua' } }\n");
    put(t, "sub/r.lua", "return function() return 200, 'ok' end\n");
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(t->dir), 0);
    struct config *c = config_load("sub/config.lua", t->err, sizeof(t->err));
    assert_int_equal(chdir(cwd), 0);
    if (!c)
        fail_msg("%s", t->err);
    char want[4200];
    snprintf(want, sizeof(want), "%s/sub", t->real);
    assert_string_equal(c->dir, want);
    snprintf(want, sizeof(want), "%s/sub/r.lua", t->real);
    assert_string_equal(c->routes[0].script, want);
    config_release(c);

    /* In the parent directory, r.lua does not exist: refused. */
    put(t, "config.lua", "return { routes = { ['/r'] = 'r.lua' } }\n");
    char p[600];
    snprintf(p, sizeof(p), "%s/config.lua", t->dir);
    assert_null(config_load(p, t->err, sizeof(t->err)));
    assert_non_null(strstr(t->err, "config: routes[\"/r\"]: cannot read script "));
}

static void test_route_errors(void **state)
{
    struct tmp *t = *state;
    refused(t, "return { routes = { ['/x'] = 'nope.lua' } }\n",
            "config: routes[\"/x\"]: cannot read script ");
    refused(t, "return { routes = { ['x'] = 'nope.lua' } }\n",
            "config: routes: each route is [\"/prefix\"] = \"script.lua\"");
    refused(t, "return { routes = { 'a.lua' } }\n",
            "config: routes: each route is [\"/prefix\"] = \"script.lua\"");
    refused(t, "return { routes = { ['/x'] = 5 } }\n",
            "config: routes[\"/x\"]: must be a script path, found a number");
    refused(t, "return { routes = { ['/x'] = {} } }\n",
            "config: routes[\"/x\"]: needs a script path or { module = \"name\" }");
    refused(t, "return { routes = { ['/x'] = { module = 'sandbox', options = { {} } } } }\n",
            "config: routes[\"/x\"].options: must map names to strings, numbers or booleans");
    refused(t, "return { routes = '/x' }\n", "config: routes: must be a table, found a string");
}

/* ---- tls ---- */

static void test_tls(void **state)
{
    struct tmp *t = *state;
    put(t, "tls/cert.pem", "CERT\n");
    put(t, "tls/key.pem", "KEY\n");
    struct config *c = accepted(
        t,
        "return { tls = { listen = '[::1]:8443', cert = 'tls/cert.pem', key = 'tls/key.pem' } }\n");
    assert_string_equal(c->tls_listen, "[::1]:8443");
    assert_string_equal(c->tls_host, "::1");
    assert_int_equal(c->tls_port, 8443);
    char want[4200];
    snprintf(want, sizeof(want), "%s/tls/cert.pem", t->real);
    assert_string_equal(c->tls_cert, want);
    snprintf(want, sizeof(want), "%s/tls/key.pem", t->real);
    assert_string_equal(c->tls_key, want);
    config_release(c);

    refused(t, "return { tls = {} }\n",
            "config: tls.listen: missing: the host:port of the HTTPS listener");
    assert_non_null(strstr(t->err, "config: tls.cert: missing: the certificate chain file (PEM)"));
    assert_non_null(strstr(t->err, "config: tls.key: missing: the private key file (PEM)"));
    refused(t, "return { tls = { listen = 'x', cert = 'tls/cert.pem', key = 'tls/key.pem' } }\n",
            "config: tls.listen: bad listen address \"x\" (expected host:port)");
    refused(t, "return { tls = { listen = ':8443', cert = 'nocert.pem', key = 'tls/key.pem' } }\n",
            "config: tls.cert: cannot read ");
    assert_non_null(strstr(t->err, "nocert.pem"));
    refused(t, "return { tls = { listen = ':8443', cert = 'tls/cert.pem', key = 'nokey.pem' } }\n",
            "config: tls.key: cannot read ");
    refused(t, "return { tls = 'on' }\n", "config: tls: must be a table, found a string");
}

/* ---- admin_listen ---- */

static void test_admin_listen(void **state)
{
    struct tmp *t = *state;
    struct config *c = accepted(t, "return { admin_listen = '127.0.0.1:9145' }\n");
    assert_string_equal(c->admin_listen, "127.0.0.1:9145");
    assert_string_equal(c->admin_host, "127.0.0.1");
    assert_int_equal(c->admin_port, 9145);
    config_release(c);
    c = accepted(t, "return { listen = '0.0.0.0:80' }\n");
    assert_null(c->admin_listen);
    config_release(c);

    refused(t, "return { admin_listen = 'nope' }\n",
            "config: admin_listen: bad listen address \"nope\" (expected host:port)");
    refused(t, "return { admin_listen = '127.0.0.1:0' }\n", "config: admin_listen: needs a port");
    refused(t, "return { listen = '127.0.0.1:8080', admin_listen = '127.0.0.1:8080' }\n",
            "config: admin_listen: must differ from listen (127.0.0.1:8080)");
}

/* ---- env_file: { env = NAME } secrets from a file ---- */

static void test_env_file(void **state)
{
    struct tmp *t = *state;
    char p[600];
    put(t, "secrets.env", "# comment\nWXCFG_FILE_SECRET=from-the-file-0123456789\n");
    snprintf(p, sizeof(p), "%s/secrets.env", t->dir);
    chmod(p, 0640);
    unsetenv("WXCFG_FILE_SECRET");
    struct config *c = accepted(t, "return { env_file = 'secrets.env', cookie_secret = { env = "
                                   "'WXCFG_FILE_SECRET' } }\n");
    assert_string_equal(c->cookie_secret, "from-the-file-0123456789");
    config_release(c);

    /* the process environment wins over the file */
    setenv("WXCFG_FILE_SECRET", "from-the-environment-0123", 1);
    c = accepted(t, "return { env_file = 'secrets.env', cookie_secret = { env = "
                    "'WXCFG_FILE_SECRET' } }\n");
    assert_string_equal(c->cookie_secret, "from-the-environment-0123");
    config_release(c);
    unsetenv("WXCFG_FILE_SECRET");

    refused(t, "return { env_file = 'secrets.env', cookie_secret = { env = 'WXCFG_NOT_SET' } }\n",
            "config: cookie_secret: environment variable WXCFG_NOT_SET is not set (nor in "
            "env_file)");
    refused(t, "return { env_file = 'missing.env' }\n", "config: env_file: cannot read ");
    chmod(p, 0644);
    refused(t, "return { env_file = 'secrets.env' }\n", "config: env_file: ");
    assert_non_null(strstr(t->err, "open to every user"));
    assert_null(strstr(t->err, "from-the-file"));
}

/* ---- the shipped example ---- */

/* examples/wxgate.lua validates, and its scripts resolve next to it. */
static void test_example_config(void **state)
{
    char err[4096], dir[4096];
    assert_non_null(realpath(WX_SOURCE_DIR "/examples", dir));
    struct config *c = config_load(WX_SOURCE_DIR "/examples/wxgate.lua", err, sizeof(err));
    if (!c)
        fail_msg("%s", err);
    assert_string_equal(c->dir, dir);
    for (size_t i = 0; i < c->n_routes; i++) {
        const char *s = c->routes[i].script;
        if (s && (strncmp(s, dir, strlen(dir)) != 0 || access(s, R_OK) != 0))
            fail_msg("route %s: script %s", c->routes[i].prefix, s);
    }
    config_release(c);
}

/* ---- several errors together ---- */

static void test_several_errors_in_one_message(void **state)
{
    struct tmp *t = *state;
    unsetenv(APP_ENV);
    refused(t,
            "return { lisen = 'x', workers = 0, store = 'disk', listen = '[::1]80',\n"
            "  limits = { bogus = 1 },\n"
            "  apps = { demo = { appid = 'wx1', secret = { env = '" APP_ENV "' } } } }\n",
            "config: lisen: unknown key");
    static const char *const want[] = {
        "config: listen: bad listen address",
        "config: workers: must be a whole number",
        "config: store: must be",
        "config: limits.bogus: unknown key",
        "config: apps.demo.secret: environment variable " APP_ENV " is not set",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(t->err, want[i]))
            fail_msg("expected \"%s\" in:\n%s", want[i], t->err);
    /* One line per problem. */
    int lines = 1;
    for (const char *p = t->err; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 6);
    assert_int_not_equal(t->err[strlen(t->err) - 1], '\n');
}

/* A small error buffer is filled, NUL-terminated, and never overrun. */
static void test_error_buffer_truncation(void **state)
{
    struct tmp *t = *state;
    put(t, "config.lua", "return { a = 1, b = 2, c = 3, d = 4, e = 5, f = 6 }\n");
    char p[600];
    snprintf(p, sizeof(p), "%s/config.lua", t->dir);
    for (size_t sz = 1; sz < 80; sz++) {
        char *err = malloc(sz); /* exact size, so ASan sees any overrun */
        assert_null(config_load(p, err, sz));
        assert_true(strlen(err) < sz);
        free(err);
    }
}

/* ---- config_secrets ---- */

static void test_secrets_listed(void **state)
{
    struct tmp *t = *state;
    setenv(APP_ENV, APP_SECRET, 1);
    setenv("WXCFG_TEST_SECRET2", "second-secret-0123456789", 1);
    setenv("WXCFG_TEST_TOKEN", "token-key-0123456789abcdef", 1);
    struct config *c = accepted(
        t, "return { public_url = 'https://login.example.com',\n"
           "  cookie_secret = 'cookie-secret-0123456789', ticket_secret = "
           "'ticket-secret-0123456789',\n"
           "  api_keys = { 'api-key-one-0123456789', 'api-key-two-0123456789' },\n"
           "  token_key = { env = 'WXCFG_TEST_TOKEN' },\n"
           "  apps = { a = { appid = 'wx1', secret = { env = '" APP_ENV "' } },\n"
           "           b = { appid = 'wx2', secret = { env = 'WXCFG_TEST_SECRET2' } } } }\n");
    size_t n = 99;
    const char **v = config_secrets(c, &n);
    assert_non_null(v);
    static const char *const want[] = {
        APP_SECRET,
        "second-secret-0123456789",
        "api-key-one-0123456789",
        "api-key-two-0123456789",
        "cookie-secret-0123456789",
        "ticket-secret-0123456789",
        "token-key-0123456789abcdef",
    };
    assert_int_equal(n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < n; i++) {
        int found = 0;
        for (size_t j = 0; j < n; j++)
            found |= strcmp(v[j], want[i]) == 0;
        if (!found)
            fail_msg("secret %zu missing from config_secrets()", i);
    }
    free(v);
    config_release(c);

    c = accepted(t, "return {}\n");
    v = config_secrets(c, &n);
    assert_non_null(v);
    assert_int_equal(n, 0);
    free(v);
    config_release(c);
}

/* ---- reference counting ---- */

static void test_retain_release(void **state)
{
    struct tmp *t = *state;
    setenv(APP_ENV, APP_SECRET, 1);
    put(t, "r.lua", "return function() end\n");
    struct config *c =
        accepted(t, with_campaign(ALLOW, "  routes = { ['/r'] = 'r.lua', ['/m'] = { module = "
                                         "'sandbox', options = { a = 1 } } },\n"
                                         "  api_keys = { 'api-key-one-0123456789' },\n"));
    assert_int_equal(c->refs, 1);
    assert_ptr_equal(config_retain(c), c);
    assert_ptr_equal(config_retain(c), c);
    assert_int_equal(c->refs, 3);
    config_release(c);
    config_release(c);
    assert_int_equal(c->refs, 1);
    assert_string_equal(c->apps[0].secret, APP_SECRET); /* still alive */
    config_release(c); /* freed here: ASan/LSan report a leak or a double free */

    assert_null(config_retain(NULL));
    config_release(NULL);
}

/* Refused configs free everything they allocated on the way (run under
 * ASan/LSan: a leak fails the test binary). */
static void test_refused_configs_do_not_leak(void **state)
{
    struct tmp *t = *state;
    setenv(APP_ENV, APP_SECRET, 1);
    put(t, "cert.pem", "x");
    refused(t,
            with_campaign("app = 'nope', scope = 'x', lang = 'y', script = 'no.lua',"
                          " allow = { 'https://ok.example.com/', 'bad' }",
                          "  routes = { ['/r'] = 'no.lua', ['/m'] = { module = 'm', options = { x "
                          "= 1, {} } } },\n"
                          "  tls = { listen = ':1', cert = 'cert.pem', key = 'nokey' },\n"
                          "  api_keys = { 'api-key-one-0123456789', 'short' },\n"
                          "  wechat = { ca_file = 'nope' }, default_campaign = 'z',\n"),
            "config: campaigns.spring.app: no app named \"nope\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_minimal_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_table_uses_default_listen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_explicit_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syntax_and_runtime_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listen_addresses, setup, teardown),
        cmocka_unit_test(test_parse_listen),
        cmocka_unit_test_setup_teardown(test_admin_listen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_app_secret_from_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_app_secret_from_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_app_secret_missing_or_literal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_campaign_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_campaign_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_campaign_requires_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_app_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allow_list_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routes_relative_to_config_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls, setup, teardown),
        cmocka_unit_test(test_example_config),
        cmocka_unit_test_setup_teardown(test_several_errors_in_one_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_buffer_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_listed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retain_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_configs_do_not_leak, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
