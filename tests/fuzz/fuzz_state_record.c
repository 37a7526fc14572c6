/* Fuzzes the login state record (core/login/login.c), which the callback reads
 * back from the store: login_state_decode() on arbitrary bytes, and when it
 * succeeds, encode then decode again must give an identical struct (and
 * encoding that struct again the identical bytes). A second mode builds a
 * record the way login_start() does (scope from the config, a campaign name
 * and an accepted return URL, neither holding a tab or a control character)
 * and checks that encode then decode gives it back. */
#include "login.h"

#include "fuzz_common.h"

static void clear(struct login_state *s) { memset(s, 0, sizeof(*s)); }

static int same(const struct login_state *a, const struct login_state *b)
{
    return a->created == b->created && a->restarts == b->restarts &&
           strcmp(a->scope, b->scope) == 0 && strcmp(a->campaign, b->campaign) == 0 &&
           strcmp(a->return_url, b->return_url) == 0;
}

static int terminated(const struct login_state *s)
{
    return memchr(s->scope, 0, sizeof(s->scope)) && memchr(s->campaign, 0, sizeof(s->campaign)) &&
           memchr(s->return_url, 0, sizeof(s->return_url));
}

static void decode_mode(const uint8_t *data, size_t size)
{
    /* Exact-size copy, not NUL-terminated: decode takes (v, len). */
    char *v = malloc(size ? size : 1);
    if (!v)
        abort();
    memcpy(v, data, size);
    struct login_state a, b;
    clear(&a);
    clear(&b);
    int rc = login_state_decode(v, size, &a);
    FUZZ_CHECK(rc == 0 || rc == -1, "decode returned %d", rc);
    if (rc == 0) {
        FUZZ_CHECK(terminated(&a), "decoded fields are not NUL-terminated");
        /* Fields re-printed by %ld/%d may be longer than they were read
         * (atoi of 3000000000), so give encode room. */
        size_t cap = 8192;
        char *enc = malloc(cap);
        int n = login_state_encode(&a, enc, cap);
        FUZZ_CHECK(n > 0 && (size_t)n == strlen(enc), "encode of a decoded record failed (%d)", n);
        rc = login_state_decode(enc, (size_t)n, &b);
        FUZZ_CHECK(rc == 0, "decode of an encoded record failed: %s", enc);
        FUZZ_CHECK(same(&a, &b), "round trip changed the record: %s", enc);
        char *enc2 = malloc(cap);
        int n2 = login_state_encode(&b, enc2, cap);
        FUZZ_CHECK(n2 == n && memcmp(enc, enc2, (size_t)n) == 0, "encoding is not stable");
        /* Encode must refuse, never overflow, a buffer that is too small. */
        for (size_t small = 0; small <= (size_t)n; small += 1 + (size_t)n / 7) {
            char *buf = malloc(small ? small : 1);
            int r = login_state_encode(&a, buf, small);
            FUZZ_CHECK(r == -1, "encode into %zu bytes claimed %d", small, r);
            free(buf);
        }
        free(enc2);
        free(enc);
    }
    free(v);
}

/* Copies at most max-1 bytes of a part, dropping tabs and control bytes (what
 * the callers guarantee: the allow-list refuses them in return URLs). */
static void take_field(const char *part, char *out, size_t max)
{
    size_t o = 0;
    for (const char *p = part; *p && o + 1 < max; p++)
        if ((unsigned char)*p >= 0x20 && *p != 0x7f)
            out[o++] = *p;
    out[o] = '\0';
}

static void build_mode(const uint8_t *data, size_t size)
{
    struct login_state a, b;
    clear(&a);
    clear(&b);
    uint8_t flags = fuzz_byte(&data, &size);
    long created = 0;
    for (int i = 0; i < 8; i++)
        created = (long)((unsigned long)created << 8 | fuzz_byte(&data, &size));
    a.created = created;
    a.restarts = (int)(fuzz_u16(&data, &size) | (flags & 0x80 ? 0x7fff0000u : 0));
    snprintf(a.scope, sizeof(a.scope), "%s", flags & 1 ? "snsapi_userinfo" : "snsapi_base");
    char *camp = fuzz_take_part(&data, &size);
    char *ret = fuzz_take_part(&data, &size);
    take_field(camp, a.campaign, sizeof(a.campaign));
    take_field(ret, a.return_url, sizeof(a.return_url));
    free(camp);
    free(ret);
    if (!a.campaign[0] || !a.return_url[0])
        return; /* a config names its campaigns; /auth refuses an empty return URL */
    char enc[4096];
    int n = login_state_encode(&a, enc, sizeof(enc));
    FUZZ_CHECK(n > 0, "encode failed");
    FUZZ_CHECK(login_state_decode(enc, (size_t)n, &b) == 0, "decode of a fresh record failed: %s",
               enc);
    FUZZ_CHECK(same(&a, &b), "fresh record changed through encode/decode: %s", enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    if (size > 0 && data[0] == 'B')
        build_mode(data + 1, size - 1);
    else
        decode_mode(data, size);
    return 0;
}
