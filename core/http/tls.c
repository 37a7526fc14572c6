/* TLS server contexts for HTTPS listeners, over OpenSSL 3 (see tls.h). */
#include "tls.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>

/* err = "what: the first OpenSSL reason"; clears OpenSSL's error queue. */
void tls_error(char *err, size_t errsz, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    unsigned long e = ERR_peek_error();
    if (e) {
        char reason[256];
        ERR_error_string_n(e, reason, sizeof(reason));
        snprintf(err, errsz, "%s: %s", what, reason);
    } else {
        snprintf(err, errsz, "%s", what);
    }
    ERR_clear_error();
}

SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file, char *err, size_t errsz)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        tls_error(err, errsz, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        tls_error(err, errsz, "cannot load certificate %s", cert_file);
        goto bad;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
            tls_error(err, errsz, "private key %s does not match certificate %s", key_file,
                      cert_file);
        else
            tls_error(err, errsz, "cannot load private key %s", key_file);
        goto bad;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        tls_error(err, errsz, "private key %s does not match certificate %s", key_file, cert_file);
        goto bad;
    }
    return ctx;
bad:
    SSL_CTX_free(ctx);
    return NULL;
}
