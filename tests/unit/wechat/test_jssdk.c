/* Unit tests for core/wechat/jssdk.c: the wx.config fields it signs (the
 * ticket owner's store protocol is covered by the integration tests against
 * the sandbox and Redis, and its claim by test_store_claim.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "jssdk.h"

static void signs_with_a_fresh_nonce_and_the_current_time(void **state)
{
    const char *ticket = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl";
    const char *url = "https://h5.example.com/p?x=1#/spa";
    struct jssdk_sig a, b;
    long before = (long)time(NULL);
    assert_int_equal(jssdk_sign(ticket, url, &a), 0);
    assert_int_equal(jssdk_sign(ticket, url, &b), 0);
    long t = strtol(a.timestamp, NULL, 10);
    assert_true(t >= before && t <= (long)time(NULL));
    assert_int_equal(strlen(a.nonce), 16);
    assert_int_not_equal(strcmp(a.nonce, b.nonce), 0);
    /* WeChat's rule: sha1 of the sorted fields, the URL without its fragment. */
    char s[512], hex[41];
    unsigned char d[20];
    snprintf(s, sizeof(s), "jsapi_ticket=%s&noncestr=%s&timestamp=%s&url=%s", ticket, a.nonce,
             a.timestamp, "https://h5.example.com/p?x=1");
    crypto_sha1(s, strlen(s), d);
    for (int i = 0; i < 20; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    assert_string_equal(a.signature, hex);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(signs_with_a_fresh_nonce_and_the_current_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
