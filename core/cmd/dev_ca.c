/* The sandbox's local development CA and its server certificate (see
 * dev_ca.h), over OpenSSL 3.
 *
 * dev_ca_issue() keeps what it can: a still-valid CA is reused (so a CA that
 * a developer already trusts keeps working) and only the leaf is reissued
 * when it no longer covers the hosts or is close to expiry. Files are written
 * to a temporary name and renamed into place, under an flock on dir/.lock, so
 * two sandboxes starting at once never read half a file. */
#include "dev_ca.h"

#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CA_DAYS    (10 * 365 + 3) /* ten years */
#define LEAF_DAYS  825            /* the longest any browser accepts */
#define RENEW_DAYS 30             /* reissue what expires sooner than this */
#define CA_NAME    "wxgate sandbox development CA"

static int path_join(char *out, size_t outsz, const char *dir, const char *name)
{
    int n = snprintf(out, outsz, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

/* ---- reading ---- */

static X509 *read_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    ERR_clear_error();
    return x;
}

static EVP_PKEY *read_key(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    ERR_clear_error();
    return k;
}

/* The certificate is valid now and for at least `days` more days. */
static int valid_for(X509 *x, int days)
{
    time_t now = time(NULL);
    time_t later = now + (time_t)days * 86400;
    return X509_cmp_time(X509_get0_notBefore(x), &now) < 0 &&
           X509_cmp_time(X509_get0_notAfter(x), &later) > 0;
}

static int is_ip(const char *host, unsigned char *buf)
{
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* "[::1]" → "::1"; returns 0 when the host is empty or unspecified (0.0.0.0, ::),
 * which a certificate cannot name. */
static int clean_host(const char *in, char *out, size_t outsz)
{
    size_t n = strlen(in);
    if (n >= 2 && in[0] == '[' && in[n - 1] == ']') {
        in++;
        n -= 2;
    }
    if (n == 0 || n >= outsz)
        return 0;
    memcpy(out, in, n);
    out[n] = '\0';
    return strcmp(out, "0.0.0.0") != 0 && strcmp(out, "::") != 0;
}

static int covers(X509 *leaf, const char *const *hosts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char h[256];
        unsigned char ip[16];
        if (!hosts[i] || !clean_host(hosts[i], h, sizeof(h)))
            continue;
        int ok = is_ip(h, ip) ? X509_check_ip_asc(leaf, h, 0) == 1
                              : X509_check_host(leaf, h, 0, 0, NULL) == 1;
        if (!ok)
            return 0;
    }
    return 1;
}

static int is_ca(X509 *x)
{
    return X509_check_ca(x) >= 1 && (X509_get_extension_flags(x) & EXFLAG_CA);
}

/* ---- building ---- */

static EVP_PKEY *new_key(void) { return EVP_EC_gen("P-256"); }

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return -1;
    int rc = X509_add_ext(cert, ext, -1) == 1 ? 0 : -1;
    X509_EXTENSION_free(ext);
    return rc;
}

static int random_serial(X509 *x)
{
    BIGNUM *bn = BN_new();
    int rc = -1;
    if (bn && BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
        BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        rc = 0;
    BN_free(bn);
    return rc;
}

/* An unsigned certificate for key, issued by issuer (self-issued when issuer is
 * NULL; the caller signs), valid from an hour ago for `days` days, with subject CN = cn. */
static X509 *new_cert(EVP_PKEY *key, const char *cn, X509 *issuer, int days)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    if (!x || !name || X509_set_version(x, 2) != 1 || random_serial(x) != 0 ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400) ||
        X509_set_pubkey(x, key) != 1 ||
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"wxgate", -1,
                                   -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                   0) != 1 ||
        X509_set_subject_name(x, name) != 1 ||
        X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) != 1) {
        X509_NAME_free(name);
        X509_free(x);
        return NULL;
    }
    X509_NAME_free(name);
    return x;
}

static X509 *make_ca(EVP_PKEY *key)
{
    X509 *x = new_cert(key, CA_NAME, NULL, CA_DAYS);
    if (!x)
        return NULL;
    if (add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") != 0 ||
        add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") != 0 ||
        add_ext(x, x, NID_subject_key_identifier, "hash") != 0 ||
        add_ext(x, x, NID_authority_key_identifier, "keyid:always") != 0 ||
        X509_sign(x, key, EVP_sha256()) == 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static X509 *make_leaf(EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key, const char *const *hosts,
                       size_t n)
{
    /* subjectAltName: "DNS:localhost,IP:127.0.0.1,..." */
    char san[4096] = "";
    const char *cn = NULL;
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        char h[256];
        unsigned char ip[16];
        if (!hosts[i] || !clean_host(hosts[i], h, sizeof(h)))
            continue;
        if (strpbrk(h, ", \t\r\n")) /* would break the extension's syntax */
            return NULL;
        int w = snprintf(san + used, sizeof(san) - used, "%s%s:%s", used ? "," : "",
                         is_ip(h, ip) ? "IP" : "DNS", h);
        if (w < 0 || (size_t)w >= sizeof(san) - used)
            return NULL;
        used += (size_t)w;
        if (!cn)
            cn = hosts[i];
    }
    if (!cn)
        return NULL;
    char cnbuf[256];
    clean_host(cn, cnbuf, sizeof(cnbuf));
    X509 *x = new_cert(key, cnbuf, ca, LEAF_DAYS);
    if (!x)
        return NULL;
    if (add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
        add_ext(x, ca, NID_key_usage, "critical,digitalSignature") != 0 ||
        add_ext(x, ca, NID_ext_key_usage, "serverAuth") != 0 ||
        add_ext(x, ca, NID_subject_alt_name, san) != 0 ||
        add_ext(x, ca, NID_subject_key_identifier, "hash") != 0 ||
        add_ext(x, ca, NID_authority_key_identifier, "keyid:always") != 0 ||
        X509_sign(x, ca_key, EVP_sha256()) == 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* ---- writing ---- */

/* Writes a PEM file through a temporary file and rename(); keys get 0600. */
static int write_pem(const char *path, X509 *cert, EVP_PKEY *key, char *err, size_t errsz)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
        snprintf(err, errsz, "%s: path too long", path);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, key ? 0600 : 0644);
    if (fd < 0) {
        snprintf(err, errsz, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        snprintf(err, errsz, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    int ok =
        key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, cert);
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        tls_error(err, errsz, "cannot write %s", path);
        return -1;
    }
    return 0;
}

static int make_dir(const char *dir, char *err, size_t errsz)
{
    if (mkdir(dir, 0700) == 0)
        return 0;
    struct stat st;
    if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    snprintf(err, errsz, "cannot create %s: %s", dir,
             errno == EEXIST ? "exists and is not a directory" : strerror(errno));
    return -1;
}

int dev_ca_issue(const char *dir, const char *const *hosts, size_t n_hosts, char *err, size_t errsz)
{
    char ca_path[4096], ca_key_path[4096], leaf_path[4096], leaf_key_path[4096], lock_path[4096];
    if (!dir || !*dir || path_join(ca_path, sizeof(ca_path), dir, "ca.pem") ||
        path_join(ca_key_path, sizeof(ca_key_path), dir, "ca-key.pem") ||
        path_join(leaf_path, sizeof(leaf_path), dir, "server.pem") ||
        path_join(leaf_key_path, sizeof(leaf_key_path), dir, "server-key.pem") ||
        path_join(lock_path, sizeof(lock_path), dir, ".lock")) {
        snprintf(err, errsz, "bad CA directory");
        return -1;
    }
    int any = 0;
    for (size_t i = 0; i < n_hosts; i++) {
        char h[256];
        if (hosts[i] && clean_host(hosts[i], h, sizeof(h)))
            any = 1;
    }
    if (!any) {
        snprintf(err, errsz, "no host to put in the certificate");
        return -1;
    }
    if (make_dir(dir, err, errsz) != 0)
        return -1;
    int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || flock(lock, LOCK_EX) != 0) {
        snprintf(err, errsz, "cannot lock %s: %s", lock_path, strerror(errno));
        if (lock >= 0)
            close(lock);
        return -1;
    }

    int rc = -1;
    X509 *ca = read_cert(ca_path), *leaf = NULL;
    EVP_PKEY *ca_key = read_key(ca_key_path), *leaf_key = NULL;

    /* Keep the CA while it is sound: a CA, ours (key matches), not expiring. */
    if (!ca || !ca_key || !is_ca(ca) || X509_check_private_key(ca, ca_key) != 1 ||
        !valid_for(ca, RENEW_DAYS)) {
        ERR_clear_error();
        X509_free(ca);
        EVP_PKEY_free(ca_key);
        ca_key = new_key();
        ca = ca_key ? make_ca(ca_key) : NULL;
        if (!ca) {
            tls_error(err, errsz, "cannot create the development CA");
            goto out;
        }
        if (write_pem(ca_key_path, NULL, ca_key, err, errsz) != 0 ||
            write_pem(ca_path, ca, NULL, err, errsz) != 0)
            goto out;
        unlink(leaf_path); /* a leaf of the old CA is useless now */
    }

    leaf = read_cert(leaf_path);
    leaf_key = read_key(leaf_key_path);
    EVP_PKEY *ca_pub = X509_get0_pubkey(ca);
    if (leaf && leaf_key && ca_pub && X509_verify(leaf, ca_pub) == 1 &&
        X509_check_private_key(leaf, leaf_key) == 1 && valid_for(leaf, RENEW_DAYS) &&
        covers(leaf, hosts, n_hosts)) {
        rc = 0; /* all reusable */
        goto out;
    }
    ERR_clear_error();
    X509_free(leaf);
    EVP_PKEY_free(leaf_key);
    leaf_key = new_key();
    leaf = leaf_key ? make_leaf(leaf_key, ca, ca_key, hosts, n_hosts) : NULL;
    if (!leaf) {
        tls_error(err, errsz, "cannot create the server certificate (check the host names)");
        goto out;
    }
    if (write_pem(leaf_key_path, NULL, leaf_key, err, errsz) != 0 ||
        write_pem(leaf_path, leaf, NULL, err, errsz) != 0)
        goto out;
    rc = 0;
out:
    X509_free(ca);
    X509_free(leaf);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(leaf_key);
    flock(lock, LOCK_UN);
    close(lock);
    return rc;
}
