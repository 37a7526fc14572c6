/* TLS helpers over OpenSSL: a local development CA for the sandbox, and
 * server contexts for HTTPS listeners. */
#ifndef WX_TLS_H
#define WX_TLS_H
#include <stddef.h>
#include <openssl/ssl.h>

/* Creates (or reuses) dir/ca.pem, dir/ca-key.pem, dir/server.pem and
 * dir/server-key.pem: a development CA and a leaf for hosts. 0 or -1. */
int tls_dev_ca(const char *dir, const char *const *hosts, size_t n_hosts, char *err,
               size_t errsz);

/* TLS 1.2+ server context from a PEM chain and key; NULL with err. */
SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file, char *err, size_t errsz);

#endif
