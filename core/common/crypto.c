/* Crypto helpers over OpenSSL's libcrypto: OS randomness (RAND_bytes),
 * HMAC-SHA256, SHA-1, SHA-256, lowercase hex, unpadded base64url,
 * constant-time comparison and sealing values at rest (AES-256-GCM).
 * Thread-safe: the only state is per thread (a randomness pool, keyed HMAC
 * and cipher contexts), so no call takes a lock. */
#include "crypto.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SHA256_Init and friends: deprecated in OpenSSL 3 in favour of EVP, which
 * allocates per call; HMAC keeps its keyed states with them. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

static const char base62_chars[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The digest functions have no error return: a libcrypto that cannot hash
 * (allocation failure, a provider refusing SHA-1) must not yield a made-up
 * digest that later compares equal to something. */
static void crypto_fatal(const char *what)
{
    fprintf(stderr, "wxgate: libcrypto %s failed\n", what);
    abort();
}

/* Small requests (nonces, ids, tokens: every login takes four) are served
 * from a per-thread pool filled 256 bytes at a time: RAND_bytes costs the
 * same for 12 bytes as for 256 (a lock, a fork check and the DRBG's
 * reseed bookkeeping). Bytes leave the pool once and are wiped as they go;
 * a forked child starts with an empty pool so it never repeats the
 * parent's bytes. */
#define RAND_POOL  256
#define RAND_SMALL 64
static _Thread_local struct {
    unsigned char buf[RAND_POOL];
    size_t left; /* unused bytes at the end of buf */
} rand_pool;
static pthread_once_t rand_once = PTHREAD_ONCE_INIT;

static void rand_pool_forget(void) { OPENSSL_cleanse(&rand_pool, sizeof(rand_pool)); }

static void rand_pool_init(void) { pthread_atfork(NULL, NULL, rand_pool_forget); }

static int rand_os(unsigned char *p, size_t n)
{
    while (n > 0) {
        int chunk = n > INT32_MAX ? INT32_MAX : (int)n;
        if (RAND_bytes(p, chunk) != 1)
            return -1;
        p += chunk;
        n -= (size_t)chunk;
    }
    return 0;
}

int crypto_random_bytes(void *buf, size_t n)
{
    if (n > RAND_SMALL)
        return rand_os(buf, n);
    pthread_once(&rand_once, rand_pool_init);
    if (rand_pool.left < n) {
        if (rand_os(rand_pool.buf, RAND_POOL) != 0)
            return -1;
        rand_pool.left = RAND_POOL;
    }
    unsigned char *from = rand_pool.buf + RAND_POOL - rand_pool.left;
    memcpy(buf, from, n);
    OPENSSL_cleanse(from, n);
    rand_pool.left -= n;
    return 0;
}

/* Rejection sampling: only bytes below 248 (= 4 * 62) are used, so every
 * character of the alphabet is equally likely. */
int crypto_random_base62(char *out, size_t n)
{
    unsigned char pool[64];
    size_t have = 0, used = 0, i = 0;

    while (i < n) {
        if (used == have) {
            if (crypto_random_bytes(pool, sizeof(pool)) != 0) {
                OPENSSL_cleanse(pool, sizeof(pool));
                out[0] = '\0';
                return -1;
            }
            have = sizeof(pool);
            used = 0;
        }
        unsigned char b = pool[used++];
        if (b < 248)
            out[i++] = base62_chars[b % 62];
    }
    out[n] = '\0';
    OPENSSL_cleanse(pool, sizeof(pool));
    return 0;
}

void crypto_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

/* HMAC-SHA256 (RFC 2104) over libcrypto's SHA-256 block functions, with
 * the keyed inner and outer states kept in a small per-thread cache: the
 * cookie and ticket keys are used for every login, and OpenSSL 3's HMAC()
 * allocates a dozen times per call. A cached state is the key's first
 * compression step, as sensitive as the key itself and kept as the config
 * keeps the key. */
#define HMAC_BLOCK 64
#define HMAC_CACHE 4

struct hmac_state {
    size_t klen;                   /* 0: unused slot */
    unsigned char key[HMAC_BLOCK]; /* the key, or its hash when longer than a block */
    SHA256_CTX inner, outer;
};

static _Thread_local struct hmac_state hmac_cache[HMAC_CACHE];
static _Thread_local unsigned hmac_next;

static const struct hmac_state *hmac_keyed(const void *key, size_t klen)
{
    unsigned char k[HMAC_BLOCK];
    if (klen > HMAC_BLOCK) {
        crypto_sha256(key, klen, k);
        klen = 32;
    } else if (klen) {
        memcpy(k, key, klen);
    }
    /* An empty key is valid (if weak): it is stored as one zero block. */
    size_t id_len = klen ? klen : HMAC_BLOCK;
    if (!klen)
        memset(k, 0, HMAC_BLOCK);
    for (int i = 0; i < HMAC_CACHE; i++)
        if (hmac_cache[i].klen == id_len && memcmp(hmac_cache[i].key, k, id_len) == 0) {
            OPENSSL_cleanse(k, sizeof(k));
            return &hmac_cache[i];
        }
    struct hmac_state *st = &hmac_cache[hmac_next++ % HMAC_CACHE];
    unsigned char pad[HMAC_BLOCK];
    memset(pad, 0, sizeof(pad));
    memcpy(pad, k, klen);
    for (int i = 0; i < HMAC_BLOCK; i++)
        pad[i] ^= 0x36;
    if (SHA256_Init(&st->inner) != 1 || SHA256_Update(&st->inner, pad, HMAC_BLOCK) != 1)
        crypto_fatal("HMAC-SHA256");
    for (int i = 0; i < HMAC_BLOCK; i++)
        pad[i] ^= 0x36 ^ 0x5c;
    if (SHA256_Init(&st->outer) != 1 || SHA256_Update(&st->outer, pad, HMAC_BLOCK) != 1)
        crypto_fatal("HMAC-SHA256");
    memcpy(st->key, k, id_len);
    st->klen = id_len;
    OPENSSL_cleanse(pad, sizeof(pad));
    OPENSSL_cleanse(k, sizeof(k));
    return st;
}

void crypto_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
                        unsigned char out[32])
{
    const struct hmac_state *st = hmac_keyed(key, klen);
    SHA256_CTX ctx = st->inner;
    unsigned char inner[32];
    if ((mlen && SHA256_Update(&ctx, msg, mlen) != 1) || SHA256_Final(inner, &ctx) != 1)
        crypto_fatal("HMAC-SHA256");
    ctx = st->outer;
    if (SHA256_Update(&ctx, inner, sizeof(inner)) != 1 || SHA256_Final(out, &ctx) != 1)
        crypto_fatal("HMAC-SHA256");
    OPENSSL_cleanse(&ctx, sizeof(ctx));
    OPENSSL_cleanse(inner, sizeof(inner));
}

/* The one-shot SHA functions, not EVP_Digest: EVP looks the algorithm up
 * in the provider tables on every call, which costs more than hashing the
 * short messages hashed here (secrets, signatures). */
void crypto_sha1(const void *msg, size_t len, unsigned char out[20])
{
    static const unsigned char empty;

    if (!SHA1(msg ? msg : &empty, len, out))
        crypto_fatal("SHA-1");
}

void crypto_sha256(const void *msg, size_t len, unsigned char out[32])
{
    static const unsigned char empty;

    if (!SHA256(msg ? msg : &empty, len, out))
        crypto_fatal("SHA-256");
}

size_t crypto_base64url_encode(const unsigned char *in, size_t n, char *out)
{
    size_t i = 0, o = 0;

    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url_chars[v >> 18];
        out[o++] = b64url_chars[(v >> 12) & 63];
        out[o++] = b64url_chars[(v >> 6) & 63];
        out[o++] = b64url_chars[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64url_chars[v >> 18];
        out[o++] = b64url_chars[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64url_chars[v >> 18];
        out[o++] = b64url_chars[(v >> 12) & 63];
        out[o++] = b64url_chars[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Strict decoding: only the base64url alphabet; padding, when present, must
 * complete the last quantum exactly; the unused low bits of the last
 * character must be zero, so each byte string has exactly one encoding
 * (matters when an encoded signature is compared as a string). */
int crypto_base64url_decode(const char *in, size_t len, unsigned char *out, size_t *outlen)
{
    size_t datalen = len, o = 0;
    uint32_t acc = 0;
    int bits = 0;

    if (len > 0 && in[len - 1] == '=') {
        if (len % 4 != 0)
            return -1;
        datalen = len - 1;
        if (in[datalen - 1] == '=')
            datalen--;
    }
    if (datalen % 4 == 1)
        return -1;
    if (datalen != len && (datalen % 4 == 0))
        return -1; /* padding after a complete quantum */

    for (size_t i = 0; i < datalen; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return -1;
    *outlen = o;
    return 0;
}

/* Equal lengths: CRYPTO_memcmp. Different lengths: still walk alen bytes
 * so the time depends on the lengths only, never on the content. */
int crypto_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen != blen) {
        (void)CRYPTO_memcmp(a, a, alen);
        return 0;
    }
    return CRYPTO_memcmp(a, b, alen) == 0;
}

/* ---- values at rest ---- */

#define SEAL_NONCE 12
#define SEAL_TAG   16

/* A keyed AES-256-GCM context per direction and secret, kept per thread:
 * deriving the key (SHA-256), fetching the cipher and expanding the key
 * schedule cost more than sealing a token record, and a worker seals with
 * one or two secrets for its whole life. A later call sets only the nonce.
 * The cache holds the secret's digest, never the secret itself. */
#define SEAL_CACHE 4
struct seal_ctx {
    unsigned char id[32]; /* SHA-256(SHA-256(secret)): which secret */
    EVP_CIPHER_CTX *enc, *dec;
};
static _Thread_local struct seal_ctx seal_cache[SEAL_CACHE];
static _Thread_local unsigned seal_next;
static pthread_key_t seal_key;
static pthread_once_t seal_once = PTHREAD_ONCE_INIT;

/* At thread exit: free the thread's contexts (workers come and go). */
static void seal_cache_free(void *cache)
{
    struct seal_ctx *c = cache;
    for (int i = 0; i < SEAL_CACHE; i++) {
        EVP_CIPHER_CTX_free(c[i].enc);
        EVP_CIPHER_CTX_free(c[i].dec);
        memset(&c[i], 0, sizeof(c[i]));
    }
}

static void seal_once_init(void) { pthread_key_create(&seal_key, seal_cache_free); }

static struct seal_ctx *seal_ctx_for(const char *secret)
{
    unsigned char key[32], id[32];
    crypto_sha256(secret, strlen(secret), key);
    crypto_sha256(key, sizeof(key), id);
    struct seal_ctx *c = NULL;
    for (int i = 0; i < SEAL_CACHE && !c; i++)
        if (seal_cache[i].enc && memcmp(seal_cache[i].id, id, sizeof(id)) == 0)
            c = &seal_cache[i];
    if (!c) {
        pthread_once(&seal_once, seal_once_init);
        pthread_setspecific(seal_key, seal_cache);
        c = &seal_cache[seal_next++ % SEAL_CACHE];
        EVP_CIPHER_CTX_free(c->enc);
        EVP_CIPHER_CTX_free(c->dec);
        c->enc = EVP_CIPHER_CTX_new();
        c->dec = EVP_CIPHER_CTX_new();
        if (!c->enc || !c->dec ||
            EVP_EncryptInit_ex(c->enc, EVP_aes_256_gcm(), NULL, key, NULL) != 1 ||
            EVP_DecryptInit_ex(c->dec, EVP_aes_256_gcm(), NULL, key, NULL) != 1) {
            EVP_CIPHER_CTX_free(c->enc);
            EVP_CIPHER_CTX_free(c->dec);
            c->enc = c->dec = NULL;
            c = NULL;
        } else {
            memcpy(c->id, id, sizeof(id));
        }
    }
    OPENSSL_cleanse(key, sizeof(key));
    return c;
}

char *crypto_seal(const char *secret, const void *ad, size_t adlen, const void *plain, size_t len)
{
    size_t raw_len = SEAL_NONCE + len + SEAL_TAG;
    unsigned char *raw = malloc(raw_len);
    char *out = malloc(3 + 4 * ((raw_len + 2) / 3) + 1);
    struct seal_ctx *sc = seal_ctx_for(secret);
    EVP_CIPHER_CTX *ctx = sc ? sc->enc : NULL;
    int ok = raw && out && ctx && len <= INT_MAX && adlen <= INT_MAX &&
             crypto_random_bytes(raw, SEAL_NONCE) == 0;
    int n = 0;
    ok = ok && EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, raw) == 1 &&
         EVP_EncryptUpdate(ctx, NULL, &n, ad, (int)adlen) == 1 &&
         EVP_EncryptUpdate(ctx, raw + SEAL_NONCE, &n, plain, (int)len) == 1 &&
         EVP_EncryptFinal_ex(ctx, raw + SEAL_NONCE + n, &n) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG, raw + SEAL_NONCE + len) == 1;
    if (ok) {
        memcpy(out, "v1.", 3);
        crypto_base64url_encode(raw, raw_len, out + 3);
    } else {
        free(out);
        out = NULL;
    }
    if (raw)
        OPENSSL_cleanse(raw, raw_len);
    free(raw);
    return out;
}

char *crypto_open(const char *secret, const void *ad, size_t adlen, const char *sealed,
                  size_t sealed_len, size_t *len)
{
    if (sealed_len < 3 || memcmp(sealed, "v1.", 3) != 0 || sealed_len > (1u << 24))
        return NULL;
    unsigned char *raw = malloc(sealed_len);
    size_t raw_len = 0;
    if (!raw || crypto_base64url_decode(sealed + 3, sealed_len - 3, raw, &raw_len) != 0 ||
        raw_len < SEAL_NONCE + SEAL_TAG) {
        free(raw);
        return NULL;
    }
    size_t ct_len = raw_len - SEAL_NONCE - SEAL_TAG;
    char *plain = malloc(ct_len + 1);
    struct seal_ctx *sc = seal_ctx_for(secret);
    EVP_CIPHER_CTX *ctx = sc ? sc->dec : NULL;
    int n = 0;
    int ok =
        plain && ctx && adlen <= INT_MAX && EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, raw) == 1 &&
        EVP_DecryptUpdate(ctx, NULL, &n, ad, (int)adlen) == 1 &&
        EVP_DecryptUpdate(ctx, (unsigned char *)plain, &n, raw + SEAL_NONCE, (int)ct_len) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG, raw + SEAL_NONCE + ct_len) == 1 &&
        EVP_DecryptFinal_ex(ctx, (unsigned char *)plain + n, &n) == 1;
    free(raw);
    if (!ok) {
        if (plain)
            OPENSSL_cleanse(plain, ct_len);
        free(plain);
        return NULL;
    }
    plain[ct_len] = '\0';
    *len = ct_len;
    return plain;
}
