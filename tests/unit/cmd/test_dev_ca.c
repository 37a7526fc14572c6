/* Tests for core/cmd/dev_ca.c: the sandbox's development CA. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dev_ca.h"

#include <dirent.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const HOSTS[] = {"127.0.0.1", "localhost", "::1"};

struct fixture {
    char dir[256]; /* the temp dir; the CA goes into dir/ca */
    char ca[300];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/wxgate-test-tls-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->ca, sizeof(f->ca), "%s/ca", f->dir);
    *state = f;
    return 0;
}

static void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[600];
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_rf(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    rm_rf(f->dir);
    free(f);
    return 0;
}

static X509 *load_cert(const char *dir, const char *name)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *fp = fopen(p, "r");
    assert_non_null(fp);
    X509 *x = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(x);
    return x;
}

static long mtime_ns(const char *dir, const char *name)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    return (long)st.st_mtim.tv_sec * 1000000000L + st.st_mtim.tv_nsec;
}

static char *slurp(const char *dir, const char *name)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *fp = fopen(p, "r");
    assert_non_null(fp);
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* X509_verify_cert of the leaf against a store holding only the CA. */
static int verify_leaf(X509 *ca, X509 *leaf, const char *host)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_add_cert(store, ca);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, leaf, NULL);
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
    if (host) {
        if (strchr(host, ':') || (host[0] >= '0' && host[0] <= '9'))
            X509_VERIFY_PARAM_set1_ip_asc(param, host);
        else
            X509_VERIFY_PARAM_set1_host(param, host, 0);
    }
    int ok = X509_verify_cert(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok;
}

static void creates_a_ca_and_a_leaf_that_verifies(void **state)
{
    struct fixture *f = *state;
    char err[512] = "";
    assert_int_equal(dev_ca_issue(f->ca, HOSTS, 3, err, sizeof(err)), 0);

    struct stat st;
    assert_int_equal(stat(f->ca, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    char p[600];
    snprintf(p, sizeof(p), "%s/ca-key.pem", f->ca);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0077, 0);
    snprintf(p, sizeof(p), "%s/server-key.pem", f->ca);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0077, 0);

    X509 *ca = load_cert(f->ca, "ca.pem");
    X509 *leaf = load_cert(f->ca, "server.pem");
    assert_true(X509_check_ca(ca) >= 1);
    assert_int_equal(X509_check_ca(leaf), 0);
    /* EC P-256 keys */
    EVP_PKEY *pub = X509_get0_pubkey(ca);
    assert_int_equal(EVP_PKEY_get_base_id(pub), EVP_PKEY_EC);
    assert_int_equal(EVP_PKEY_get_bits(pub), 256);
    /* the CA lives about ten years */
    int days = 0, secs = 0;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(ca), X509_get0_notAfter(ca)),
                     1);
    assert_true(days >= 3650);

    assert_int_equal(verify_leaf(ca, leaf, NULL), 1);
    assert_int_equal(verify_leaf(ca, leaf, "127.0.0.1"), 1);
    assert_int_equal(verify_leaf(ca, leaf, "localhost"), 1);
    assert_int_equal(verify_leaf(ca, leaf, "::1"), 1);
    assert_int_equal(verify_leaf(ca, leaf, "example.com"), 0);

    /* SAN: DNS for names, IP for addresses; serverAuth EKU */
    GENERAL_NAMES *san = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    assert_non_null(san);
    int dns = 0, ip = 0;
    for (int i = 0; i < sk_GENERAL_NAME_num(san); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);
        dns += g->type == GEN_DNS;
        ip += g->type == GEN_IPADD;
    }
    assert_int_equal(dns, 1);
    assert_int_equal(ip, 2);
    GENERAL_NAMES_free(san);
    assert_true(X509_get_extended_key_usage(leaf) & XKU_SSL_SERVER);
    assert_int_equal(X509_check_ip_asc(leaf, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_host(leaf, "localhost", 0, 0, NULL), 1);

    X509_free(ca);
    X509_free(leaf);
}

static void second_call_reuses_the_files(void **state)
{
    struct fixture *f = *state;
    char err[512] = "";
    assert_int_equal(dev_ca_issue(f->ca, HOSTS, 3, err, sizeof(err)), 0);
    char *ca1 = slurp(f->ca, "ca.pem"), *leaf1 = slurp(f->ca, "server.pem");
    long m1 = mtime_ns(f->ca, "server.pem");
    assert_int_equal(dev_ca_issue(f->ca, HOSTS, 3, err, sizeof(err)), 0);
    /* a subset of the hosts is covered too */
    assert_int_equal(dev_ca_issue(f->ca, HOSTS, 1, err, sizeof(err)), 0);
    char *ca2 = slurp(f->ca, "ca.pem"), *leaf2 = slurp(f->ca, "server.pem");
    assert_string_equal(ca1, ca2);
    assert_string_equal(leaf1, leaf2);
    assert_true(m1 == mtime_ns(f->ca, "server.pem"));
    free(ca1), free(ca2), free(leaf1), free(leaf2);
}

static void a_new_host_reissues_the_leaf_under_the_same_ca(void **state)
{
    struct fixture *f = *state;
    char err[512] = "";
    assert_int_equal(dev_ca_issue(f->ca, HOSTS, 3, err, sizeof(err)), 0);
    char *ca1 = slurp(f->ca, "ca.pem"), *leaf1 = slurp(f->ca, "server.pem");
    const char *more[] = {"127.0.0.1", "localhost", "::1", "sandbox.test", "[fe80::1]", "0.0.0.0"};
    assert_int_equal(dev_ca_issue(f->ca, more, 6, err, sizeof(err)), 0);
    char *ca2 = slurp(f->ca, "ca.pem"), *leaf2 = slurp(f->ca, "server.pem");
    assert_string_equal(ca1, ca2);
    assert_string_not_equal(leaf1, leaf2);
    X509 *ca = load_cert(f->ca, "ca.pem"), *leaf = load_cert(f->ca, "server.pem");
    assert_int_equal(verify_leaf(ca, leaf, "sandbox.test"), 1);
    assert_int_equal(verify_leaf(ca, leaf, "fe80::1"), 1);
    assert_int_equal(verify_leaf(ca, leaf, "127.0.0.1"), 1);
    X509_free(ca);
    X509_free(leaf);
    free(ca1), free(ca2), free(leaf1), free(leaf2);
}

static void a_damaged_ca_is_replaced(void **state)
{
    struct fixture *f = *state;
    char err[512] = "";
    assert_int_equal(dev_ca_issue(f->ca, HOSTS, 3, err, sizeof(err)), 0);
    char *ca1 = slurp(f->ca, "ca.pem");
    char p[600];
    snprintf(p, sizeof(p), "%s/ca-key.pem", f->ca);
    FILE *fp = fopen(p, "w");
    fputs("garbage\n", fp);
    fclose(fp);
    assert_int_equal(dev_ca_issue(f->ca, HOSTS, 3, err, sizeof(err)), 0);
    char *ca2 = slurp(f->ca, "ca.pem");
    assert_string_not_equal(ca1, ca2);
    X509 *ca = load_cert(f->ca, "ca.pem"), *leaf = load_cert(f->ca, "server.pem");
    assert_int_equal(verify_leaf(ca, leaf, "localhost"), 1);
    X509_free(ca);
    X509_free(leaf);
    free(ca1), free(ca2);
}

static void errors_are_reported(void **state)
{
    struct fixture *f = *state;
    char err[512] = "";
    /* a file where the directory should be */
    char p[600];
    snprintf(p, sizeof(p), "%s/file", f->dir);
    FILE *fp = fopen(p, "w");
    fclose(fp);
    assert_int_equal(dev_ca_issue(p, HOSTS, 3, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a directory"));
    /* no usable host */
    const char *none[] = {"0.0.0.0", ""};
    assert_int_equal(dev_ca_issue(f->ca, none, 2, err, sizeof(err)), -1);
    assert_true(err[0] != '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(creates_a_ca_and_a_leaf_that_verifies, setup, teardown),
        cmocka_unit_test_setup_teardown(second_call_reuses_the_files, setup, teardown),
        cmocka_unit_test_setup_teardown(a_new_host_reissues_the_leaf_under_the_same_ca, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_damaged_ca_is_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(errors_are_reported, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
