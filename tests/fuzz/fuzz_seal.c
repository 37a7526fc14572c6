/* Fuzzes the at-rest encryption (core/common/crypto.c), which reads values back
 * from a store that may be shared or tampered with. The first byte picks:
 *   0: crypto_open() on arbitrary bytes (exact-size buffer, not
 *      NUL-terminated) must fail cleanly: NULL, no crash, no leak.
 *   1: seal -> open round trip with fuzzed plaintext and ad gives the
 *      plaintext back (NUL-terminated, right length); open with another ad,
 *      another secret, a changed character, a truncated or an extended value
 *      fails.
 *   2: crypto_base64url_decode() on arbitrary bytes: on success, encoding the
 *      result gives the input back without its padding (one canonical form),
 *      and the decoded length is what the input length implies. */
#include "crypto.h"

#include "fuzz_common.h"

static const char *secret = "fuzz-token-key-0123456789abcdef";
static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void open_garbage(const uint8_t *data, size_t size)
{
    size_t adlen = fuzz_byte(&data, &size) % 64;
    if (adlen > size)
        adlen = size;
    uint8_t *ad = malloc(adlen ? adlen : 1);
    memcpy(ad, data, adlen);
    data += adlen;
    size -= adlen;
    char *v = malloc(size ? size : 1);
    memcpy(v, data, size);
    size_t len = 12345;
    char *p = crypto_open(secret, ad, adlen, v, size, &len);
    FUZZ_CHECK(p == NULL, "crypto_open accepted %zu bytes of fuzz data", size);
    FUZZ_CHECK(len == 12345, "crypto_open wrote *len on failure");
    free(v);
    free(ad);
}

static void expect_refused(const char *what, const char *sec, const void *ad, size_t adlen,
                           const char *v, size_t vlen)
{
    char *copy = malloc(vlen ? vlen : 1);
    memcpy(copy, v, vlen);
    size_t n;
    char *p = crypto_open(sec, ad, adlen, copy, vlen, &n);
    FUZZ_CHECK(p == NULL, "crypto_open accepted a value with %s", what);
    free(copy);
}

static void round_trip(const uint8_t *data, size_t size)
{
    size_t adlen = fuzz_byte(&data, &size);
    if (adlen > size)
        adlen = size;
    uint8_t *ad = malloc(adlen + 1);
    memcpy(ad, data, adlen);
    data += adlen;
    size -= adlen;
    uint8_t pick = fuzz_byte(&data, &size);
    uint8_t *plain = malloc(size ? size : 1);
    memcpy(plain, data, size);

    char *sealed = crypto_seal(secret, ad, adlen, plain, size);
    FUZZ_CHECK(sealed != NULL, "crypto_seal failed on %zu bytes", size);
    size_t slen = strlen(sealed);
    FUZZ_CHECK(slen >= 3 && memcmp(sealed, "v1.", 3) == 0, "sealed value lacks v1.");
    FUZZ_CHECK(strspn(sealed + 3, b64url) == slen - 3, "sealed value is not base64url");

    char *copy = malloc(slen);
    memcpy(copy, sealed, slen);
    size_t n = 0;
    char *back = crypto_open(secret, ad, adlen, copy, slen, &n);
    FUZZ_CHECK(back != NULL, "crypto_open refused a fresh seal");
    FUZZ_CHECK(n == size && memcmp(back, plain, size) == 0 && back[n] == '\0',
               "round trip changed the plaintext");
    free(back);
    free(copy);

    /* Bound to the ad: another ad (one byte more, or one byte changed). */
    ad[adlen] = 'x';
    expect_refused("one more byte of ad", secret, ad, adlen + 1, sealed, slen);
    if (adlen > 0) {
        ad[pick % adlen] ^= 1 << (pick % 8);
        expect_refused("a changed ad", secret, ad, adlen, sealed, slen);
        ad[pick % adlen] ^= 1 << (pick % 8);
    }
    expect_refused("another secret", "fuzz-token-key-0123456789abcdeF", ad, adlen, sealed, slen);

    /* Tampering with the value. */
    size_t at = 3 + (size_t)pick * 7919 % (slen - 3);
    char *t = strdup(sealed);
    const char *pos = strchr(b64url, t[at]);
    t[at] = b64url[(pos - b64url + 1 + pick % 63) % 64];
    expect_refused("a changed character", secret, ad, adlen, t, slen);
    free(t);
    expect_refused("the last character dropped", secret, ad, adlen, sealed, slen - 1);
    expect_refused("4 characters dropped", secret, ad, adlen, sealed, slen - 4);
    t = malloc(slen + 4);
    memcpy(t, sealed, slen);
    memcpy(t + slen, "AAAA", 4);
    expect_refused("4 characters added", secret, ad, adlen, t, slen + 4);
    free(t);

    free(sealed);
    free(plain);
    free(ad);
}

static void base64(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1);
    memcpy(in, data, size);
    unsigned char *out = malloc(3 * size / 4 + 3);
    size_t outlen = 0;
    if (crypto_base64url_decode(in, size, out, &outlen) == 0) {
        size_t datalen = size;
        while (datalen > 0 && in[datalen - 1] == '=')
            datalen--;
        FUZZ_CHECK(outlen == datalen * 3 / 4, "decoded %zu bytes from %zu characters", outlen,
                   datalen);
        char *enc = malloc(4 * ((outlen + 2) / 3) + 1);
        size_t elen = crypto_base64url_encode(out, outlen, enc);
        FUZZ_CHECK(elen == datalen && memcmp(enc, in, datalen) == 0,
                   "base64url decode accepted a non-canonical form");
        FUZZ_CHECK(size - datalen <= 2 && (size == datalen || size % 4 == 0),
                   "bad padding accepted");
        free(enc);
    }
    free(out);
    free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    switch (fuzz_byte(&data, &size) % 3) {
    case 0: open_garbage(data, size); break;
    case 1: round_trip(data, size); break;
    default: base64(data, size); break;
    }
    return 0;
}
