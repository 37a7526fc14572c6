/* Crypto helpers over OpenSSL's libcrypto: OS randomness, HMAC-SHA256, SHA-1,
 * hex and base64url, constant-time comparison. */
#ifndef WX_CRYPTO_H
#define WX_CRYPTO_H
#include <stddef.h>

int crypto_random_bytes(void *buf, size_t n);                  /* 0 ok, -1 failure */
int crypto_random_base62(char *out, size_t n);                 /* n chars + NUL; 0 ok */
void crypto_hex(const unsigned char *in, size_t n, char *out); /* out: 2n+1 */
void crypto_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
                        unsigned char out[32]);
void crypto_sha1(const void *msg, size_t len, unsigned char out[20]);
void crypto_sha256(const void *msg, size_t len, unsigned char out[32]);
/* base64url without padding; out needs 4*ceil(n/3)+1 bytes; returns length. */
size_t crypto_base64url_encode(const unsigned char *in, size_t n, char *out);
/* Accepts base64url with or without padding; out needs 3*len/4+3 bytes.
 * Returns 0 and sets *outlen, or -1 on invalid input. */
int crypto_base64url_decode(const char *in, size_t len, unsigned char *out, size_t *outlen);
/* Constant-time equality of two byte strings (lengths may differ). */
int crypto_equal(const void *a, size_t alen, const void *b, size_t blen);

/* Authenticated encryption for values at rest: AES-256-GCM under a key
 * derived from `secret` (SHA-256), a random 96-bit nonce, and ad bound in
 * (e.g. the store key, so a value cannot be moved to another key).
 * seal writes "v1." + base64url(nonce | ciphertext | tag); returns a malloc'd
 * string or NULL. open returns the malloc'd plaintext (NUL-terminated) and
 * its length, or NULL when the value is not genuine. */
char *crypto_seal(const char *secret, const void *ad, size_t adlen, const void *plain, size_t len);
char *crypto_open(const char *secret, const void *ad, size_t adlen, const char *sealed,
                  size_t sealed_len, size_t *len);

#endif
