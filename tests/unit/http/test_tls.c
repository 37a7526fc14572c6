/* Tests for core/http/tls.c: server contexts from a PEM chain and key (made by
 * the development CA for the test). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dev_ca.h"
#include "tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const FILES[] = {"ca.pem",         "ca-key.pem", "server.pem",
                                    "server-key.pem", ".lock",      NULL};

static void path(char *out, size_t n, const char *dir, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static void server_ctx_loads_and_checks(void **state)
{
    (void)state;
    char dir[] = "/tmp/wxgate-test-tls-XXXXXX";
    assert_non_null(mkdtemp(dir));
    const char *hosts[] = {"127.0.0.1", "localhost"};
    char err[512] = "", cert[300], key[300], cakey[300];
    assert_int_equal(dev_ca_issue(dir, hosts, 2, err, sizeof(err)), 0);
    path(cert, sizeof(cert), dir, "server.pem");
    path(key, sizeof(key), dir, "server-key.pem");
    path(cakey, sizeof(cakey), dir, "ca-key.pem");

    SSL_CTX *ctx = tls_server_ctx(cert, key, err, sizeof(err));
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    SSL_CTX_free(ctx);
    /* a key of another certificate */
    assert_null(tls_server_ctx(cert, cakey, err, sizeof(err)));
    assert_non_null(strstr(err, "does not match"));
    /* missing files */
    assert_null(tls_server_ctx("/nonexistent/cert.pem", key, err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/cert.pem"));

    for (int i = 0; FILES[i]; i++) {
        char p[300];
        path(p, sizeof(p), dir, FILES[i]);
        unlink(p);
    }
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(server_ctx_loads_and_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
