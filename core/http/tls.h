/* TLS server contexts for HTTPS listeners, over OpenSSL. */
#ifndef WX_TLS_H
#define WX_TLS_H
#include <stddef.h>
#include <openssl/ssl.h>

/* TLS 1.2+ server context from a PEM chain and key; NULL with err. */
SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file, char *err, size_t errsz);

/* err = "what: the first OpenSSL reason" (printf-style what); clears
 * OpenSSL's error queue. */
void tls_error(char *err, size_t errsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
