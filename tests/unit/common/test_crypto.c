/* Unit tests for core/common/crypto.c: RFC 4231 HMAC-SHA256 vectors, digests (incl.
 * the JS-SDK signature vector), hex, base64url, randomness, crypto_equal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "crypto.h"

static void assert_hex(const unsigned char *md, size_t n, const char *want)
{
    char hex[2 * 64 + 1];

    assert_true(n <= 64);
    crypto_hex(md, n, hex);
    assert_string_equal(hex, want);
}

static void test_hmac_rfc4231(void **state)
{
    static const char tc7_data[] =
        "This is a test using a larger than block-size key and a larger than block-size "
        "data. The key needs to be hashed before being used by the HMAC algorithm.";
    unsigned char key[131], data[50], mac[32];

    memset(key, 0x0b, 20);
    crypto_hmac_sha256(key, 20, "Hi There", 8, mac);
    assert_hex(mac, 32, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

    crypto_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac);
    assert_hex(mac, 32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

    memset(key, 0xaa, 20);
    memset(data, 0xdd, 50);
    crypto_hmac_sha256(key, 20, data, 50, mac);
    assert_hex(mac, 32, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");

    for (int i = 0; i < 25; i++)
        key[i] = (unsigned char)(i + 1);
    memset(data, 0xcd, 50);
    crypto_hmac_sha256(key, 25, data, 50, mac);
    assert_hex(mac, 32, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");

    memset(key, 0x0c, 20);
    crypto_hmac_sha256(key, 20, "Test With Truncation", 20, mac);
    assert_hex(mac, 16, "a3b6167473100ee06e0c796c2955552b");

    memset(key, 0xaa, 131);
    crypto_hmac_sha256(key, 131, "Test Using Larger Than Block-Size Key - Hash Key First", 54, mac);
    assert_hex(mac, 32, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");

    crypto_hmac_sha256(key, 131, tc7_data, strlen(tc7_data), mac);
    assert_hex(mac, 32, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

/* The keyed-state cache: more keys than it holds, interleaved, each
 * result checked against OpenSSL's own HMAC(). */
static void test_hmac_cache_agrees_with_openssl(void **state)
{
    (void)state;
    char keys[9][80];
    for (int i = 0; i < 9; i++) {
        memset(keys[i], 'a' + i, sizeof(keys[i]));
        keys[i][0] = (char)i;
    }
    size_t lens[9] = {1, 5, 16, 32, 63, 64, 65, 80, 0};
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 9; i++) {
            unsigned char mine[32], ref[32];
            unsigned int n = 0;
            char msg[40];
            snprintf(msg, sizeof(msg), "message %d/%d", round, i);
            crypto_hmac_sha256(keys[i], lens[i], msg, strlen(msg), mine);
            assert_non_null(HMAC(EVP_sha256(), keys[i], (int)lens[i], (const unsigned char *)msg,
                                 strlen(msg), ref, &n));
            assert_memory_equal(mine, ref, 32);
        }
}

static void test_hmac_empty(void **state)
{
    unsigned char mac[32];

    crypto_hmac_sha256(NULL, 0, NULL, 0, mac);
    assert_hex(mac, 32, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

static void test_digests(void **state)
{
    static const char jssdk[] =
        "jsapi_ticket=sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-"
        "HhTdfl2fzFy1AOcHKP7qg&noncestr=Wm3WZYTPz0wzccnW&timestamp=1414587457"
        "&url=http://mp.weixin.qq.com?params=value";
    unsigned char md[32];

    crypto_sha1(jssdk, strlen(jssdk), md);
    assert_hex(md, 20, "0f9de62fce790f9a083d5c99e95740ceb90c27ed");
    crypto_sha1("abc", 3, md);
    assert_hex(md, 20, "a9993e364706816aba3e25717850c26c9cd0d89d");
    crypto_sha256("abc", 3, md);
    assert_hex(md, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    crypto_sha256(NULL, 0, md);
    assert_hex(md, 32, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_hex(void **state)
{
    static const unsigned char in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    char out[2 * sizeof(in) + 1];

    crypto_hex(in, sizeof(in), out);
    assert_string_equal(out, "00017f80abff");
    crypto_hex(in, 0, out);
    assert_string_equal(out, "");
}

static void test_base64url_vectors(void **state)
{
    static const struct {
        const char *plain, *enc;
    } v[] = {
        {"", ""},
        {"f", "Zg"},
        {"fo", "Zm8"},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg"},
        {"fooba", "Zm9vYmE"},
        {"foobar", "Zm9vYmFy"},
        {"\xfb\xff", "-_8"},
        {"\xff\xff\xfe", "___-"},
    };
    char enc[64];
    unsigned char dec[64];
    size_t n;

    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        size_t len = strlen(v[i].plain);
        assert_int_equal(crypto_base64url_encode((const unsigned char *)v[i].plain, len, enc),
                         strlen(v[i].enc));
        assert_string_equal(enc, v[i].enc);
        assert_int_equal(crypto_base64url_decode(v[i].enc, strlen(v[i].enc), dec, &n), 0);
        assert_int_equal(n, len);
        assert_memory_equal(dec, v[i].plain, len);
    }
}

static void test_base64url_padding(void **state)
{
    unsigned char dec[16];
    size_t n;

    assert_int_equal(crypto_base64url_decode("Zg==", 4, dec, &n), 0);
    assert_int_equal(n, 1);
    assert_memory_equal(dec, "f", 1);
    assert_int_equal(crypto_base64url_decode("Zm8=", 4, dec, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(dec, "fo", 2);
    assert_int_equal(crypto_base64url_decode("Zm9vYg==", 8, dec, &n), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(dec, "foob", 4);
}

static void test_base64url_invalid(void **state)
{
    static const char *bad[] = {
        "Z",     /* a lone 6-bit group */
        "Zm9vY", /* length % 4 == 1 */
        "Zg=",   /* padding that does not complete the quantum */
        "Zg===",  "Zm9v=", "Zm9v====",     "=",  "==", "====",
        "Z===",   "Z=g=",  "Zm9vYg==Zm9v",       /* padding in the middle */
        "Zm+v",   "Zm/v",                        /* standard base64 alphabet */
        "Zm9v\n", "Zm 9v", "Zm.v",         "Zh", /* non-zero unused bits */
        "Zm9",
    };
    unsigned char dec[32];
    size_t n;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(crypto_base64url_decode(bad[i], strlen(bad[i]), dec, &n), -1);
    /* an embedded NUL is not part of the alphabet */
    assert_int_equal(crypto_base64url_decode("Zm\0v", 4, dec, &n), -1);
}

static void test_base64url_round_trip(void **state)
{
    unsigned char in[200], dec[3 * 268 / 4 + 3];
    char enc[4 * 67 + 1], padded[4 * 67 + 3];
    size_t n;

    for (size_t len = 0; len <= sizeof(in); len++) {
        assert_int_equal(crypto_random_bytes(in, len), 0);
        size_t elen = crypto_base64url_encode(in, len, enc);
        assert_int_equal(elen, (4 * len + 2) / 3);
        assert_int_equal(strlen(enc), elen);
        assert_null(strchr(enc, '='));
        assert_int_equal(crypto_base64url_decode(enc, elen, dec, &n), 0);
        assert_int_equal(n, len);
        assert_memory_equal(dec, in, len);

        /* the same with padding */
        memcpy(padded, enc, elen);
        size_t plen = elen;
        while (plen % 4)
            padded[plen++] = '=';
        assert_int_equal(crypto_base64url_decode(padded, plen, dec, &n), 0);
        assert_int_equal(n, len);
        assert_memory_equal(dec, in, len);
    }
}

static void test_random_bytes(void **state)
{
    unsigned char a[32], b[32];

    assert_int_equal(crypto_random_bytes(a, sizeof(a)), 0);
    assert_int_equal(crypto_random_bytes(b, sizeof(b)), 0);
    assert_memory_not_equal(a, b, sizeof(a));
    assert_int_equal(crypto_random_bytes(a, 0), 0);
}

/* The per-thread pool must not hand a forked child the bytes its parent
 * takes next. */
static void test_random_bytes_after_fork(void **state)
{
    unsigned char warm[8], mine[16], childs[16];
    int fds[2];

    assert_int_equal(crypto_random_bytes(warm, sizeof(warm)), 0); /* the pool is filled */
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        unsigned char b[16];
        _exit(crypto_random_bytes(b, sizeof(b)) == 0 && write(fds[1], b, sizeof(b)) == 16 ? 0 : 1);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(read(fds[0], childs, sizeof(childs)), sizeof(childs));
    assert_int_equal(crypto_random_bytes(mine, sizeof(mine)), 0);
    assert_memory_not_equal(mine, childs, sizeof(mine));
    close(fds[0]);
    close(fds[1]);
}

/* Opens a sealed value with OpenSSL directly: "v1." + base64url(nonce |
 * ciphertext | tag), AES-256-GCM keyed with SHA-256(secret). */
static int reference_open(const char *secret, const char *ad, const char *sealed, char *out)
{
    unsigned char key[32], raw[512];
    size_t raw_len = 0;
    int n = 0, ok;

    crypto_sha256(secret, strlen(secret), key);
    if (strncmp(sealed, "v1.", 3) != 0 ||
        crypto_base64url_decode(sealed + 3, strlen(sealed) - 3, raw, &raw_len) != 0 || raw_len < 28)
        return -1;
    size_t ct = raw_len - 28;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, raw) == 1 &&
         EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *)ad, (int)strlen(ad)) == 1 &&
         EVP_DecryptUpdate(ctx, (unsigned char *)out, &n, raw + 12, (int)ct) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, raw + 12 + ct) == 1 &&
         EVP_DecryptFinal_ex(ctx, (unsigned char *)out + n, &n) == 1;
    EVP_CIPHER_CTX_free(ctx);
    out[ct] = '\0';
    return ok ? 0 : -1;
}

/* Sealing keeps keyed contexts per thread: with more secrets in turn than
 * it keeps, every value still opens with its own secret only, and the
 * format is the documented one. */
static void test_seal_many_secrets(void **state)
{
    static const char *secrets[] = {"secret-one-0123456789",  "secret-two-0123456789",
                                    "secret-three-01234567",  "secret-four-0123456789",
                                    "secret-five-0123456789", "secret-six-0123456789"};
    enum { NS = sizeof(secrets) / sizeof(secrets[0]) };
    char *sealed[NS][3];

    for (int round = 0; round < 3; round++)
        for (int i = 0; i < NS; i++) {
            char plain[64];
            snprintf(plain, sizeof(plain), "value %d of %d", round, i);
            sealed[i][round] = crypto_seal(secrets[i], "ad", 2, plain, strlen(plain));
            assert_non_null(sealed[i][round]);
        }
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < NS; i++) {
            char want[64], ref[512];
            size_t len = 0;
            snprintf(want, sizeof(want), "value %d of %d", round, i);
            char *plain =
                crypto_open(secrets[i], "ad", 2, sealed[i][round], strlen(sealed[i][round]), &len);
            assert_non_null(plain);
            assert_int_equal(len, strlen(want));
            assert_string_equal(plain, want);
            free(plain);
            assert_int_equal(reference_open(secrets[i], "ad", sealed[i][round], ref), 0);
            assert_string_equal(ref, want);
            /* another secret, other associated data, a flipped byte: refused */
            assert_null(crypto_open(secrets[(i + 1) % NS], "ad", 2, sealed[i][round],
                                    strlen(sealed[i][round]), &len));
            assert_null(
                crypto_open(secrets[i], "AD", 2, sealed[i][round], strlen(sealed[i][round]), &len));
            char *bad = strdup(sealed[i][round]);
            bad[10] = bad[10] == 'A' ? 'B' : 'A';
            assert_null(crypto_open(secrets[i], "ad", 2, bad, strlen(bad), &len));
            free(bad);
            /* and the right one still opens after a refusal */
            plain =
                crypto_open(secrets[i], "ad", 2, sealed[i][round], strlen(sealed[i][round]), &len);
            assert_non_null(plain);
            free(plain);
        }
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < NS; i++)
            free(sealed[i][round]);
}

static void test_random_base62(void **state)
{
    static const char charset[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    enum { N = 62 * 200 };
    static char buf[N + 1];
    int seen[256] = {0};

    for (size_t len = 0; len < 100; len++) {
        memset(buf, 'x', len + 2);
        assert_int_equal(crypto_random_base62(buf, len), 0);
        assert_int_equal(strlen(buf), len);
        assert_int_equal(strspn(buf, charset), len);
    }

    assert_int_equal(crypto_random_base62(buf, N), 0);
    assert_int_equal(strlen(buf), N);
    for (size_t i = 0; i < N; i++)
        seen[(unsigned char)buf[i]]++;
    /* every character turns up, none far more often than the mean (200) */
    for (size_t i = 0; i < 62; i++) {
        assert_true(seen[(unsigned char)charset[i]] > 100);
        assert_true(seen[(unsigned char)charset[i]] < 320);
    }
}

static void test_equal(void **state)
{
    assert_true(crypto_equal("abc", 3, "abc", 3));
    assert_false(crypto_equal("abc", 3, "abd", 3));
    assert_false(crypto_equal("abc", 3, "xbc", 3));
    assert_false(crypto_equal("abc", 3, "abcd", 4));
    assert_false(crypto_equal("abcd", 4, "abc", 3));
    assert_false(crypto_equal("", 0, "a", 1));
    assert_true(crypto_equal("", 0, "", 0));
    assert_true(crypto_equal(NULL, 0, NULL, 0));
    assert_true(crypto_equal("a\0b", 3, "a\0b", 3));
    assert_false(crypto_equal("a\0b", 3, "a\0c", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_hmac_cache_agrees_with_openssl),
        cmocka_unit_test(test_hmac_empty),
        cmocka_unit_test(test_digests),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_base64url_vectors),
        cmocka_unit_test(test_base64url_padding),
        cmocka_unit_test(test_base64url_invalid),
        cmocka_unit_test(test_base64url_round_trip),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_random_bytes_after_fork),
        cmocka_unit_test(test_random_base62),
        cmocka_unit_test(test_seal_many_secrets),
        cmocka_unit_test(test_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
