/* Fuzzes the state-binding cookie (core/login/login.c): login_cookie_has() and
 * login_cookie_push() on a hostile cookie value, a fresh MAC (22 base64url
 * characters, as login_state_mac() makes) and any output size.
 *   - has() agrees with a reference reading of the cookie (1 / 0 / -1);
 *   - push() never writes past outsz (an exact-size heap buffer, so
 *     AddressSanitizer sees one byte too many) and NUL-terminates within it;
 *   - with room for the MAC, the output is the MAC then at most 3 previous
 *     22-character entries, all separated by '.', each taken from the old
 *     cookie, none equal to the new MAC; with the production size (128) it
 *     keeps min(3, usable old entries); and has() finds the pushed MAC. */
#include "login.h"

#include "fuzz_common.h"

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Reference: 1 if some '.'-separated 22-char entry equals mac, 0 if there
 * are 22-char entries but none does, -1 otherwise. */
static int ref_has(const char *cookie, const char *mac)
{
    int usable = 0;
    const char *p = cookie;
    while (*p) {
        size_t n = strcspn(p, ".");
        if (n == 22 &&
            strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") >= 22) {
            usable = 1; /* only well-formed MACs count */
            if (memcmp(p, mac, 22) == 0)
                return 1;
        }
        p += n;
        if (*p == '.')
            p++;
    }
    return usable ? 0 : -1;
}

/* Number of 22-char entries of cookie that differ from mac. */
static int ref_others(const char *cookie, const char *mac)
{
    int k = 0;
    const char *p = cookie ? cookie : "";
    while (*p) {
        size_t n = strcspn(p, ".");
        if (n == 22 && memcmp(p, mac, 22) != 0 &&
            strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") >= 22)
            k++; /* only well-formed MACs are carried over */
        p += n;
        if (*p == '.')
            p++;
    }
    return k;
}

/* Is the 22 bytes at e a '.'-delimited entry of cookie? */
static int is_entry_of(const char *cookie, const char *e)
{
    const char *p = cookie ? cookie : "";
    while (*p) {
        size_t n = strcspn(p, ".");
        if (n == 22 && memcmp(p, e, 22) == 0)
            return 1;
        p += n;
        if (*p == '.')
            p++;
    }
    return 0;
}

static void check_push(const char *cookie, const char *mac, size_t outsz)
{
    char *out = malloc(outsz ? outsz : 1);
    if (!out)
        abort();
    memset(out, 'Z', outsz ? outsz : 1);
    login_cookie_push(cookie, mac, out, outsz);
    if (outsz == 0) {
        free(out);
        return;
    }
    FUZZ_CHECK(memchr(out, '\0', outsz) != NULL, "push output not NUL-terminated within %zu",
               outsz);
    size_t len = strlen(out);
    if (outsz < 23) {
        /* No room for the MAC: a truncated one, nothing else. */
        FUZZ_CHECK(len == outsz - 1 && memcmp(out, mac, len) == 0, "outsz %zu: %s", outsz, out);
        free(out);
        return;
    }
    FUZZ_CHECK(len >= 22 && memcmp(out, mac, 22) == 0, "push output does not start with the MAC");
    FUZZ_CHECK((len - 22) % 23 == 0, "push output length %zu is not 22 + k*23: %s", len, out);
    int kept = (int)((len - 22) / 23);
    FUZZ_CHECK(kept <= 3, "push kept %d old entries: %s", kept, out);
    for (int i = 0; i < kept; i++) {
        const char *e = out + 22 + 23 * i;
        FUZZ_CHECK(e[0] == '.', "entries not separated by '.': %s", out);
        FUZZ_CHECK(memchr(e + 1, '.', 22) == NULL, "entry holds a '.': %s", out);
        FUZZ_CHECK(memcmp(e + 1, mac, 22) != 0, "the new MAC is kept twice: %s", out);
        FUZZ_CHECK(is_entry_of(cookie, e + 1), "kept an entry that was not in the cookie: %s", out);
    }
    FUZZ_CHECK(login_cookie_has(out, mac) == 1, "has() does not find the pushed MAC in %s", out);
    if (outsz >= 128) {
        int want = ref_others(cookie, mac);
        FUZZ_CHECK(kept == (want < 3 ? want : 3), "kept %d of %d usable old entries", kept, want);
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    /* The new MAC: 22 base64url characters (from the first 22 bytes). */
    char mac[23];
    for (int i = 0; i < 22; i++)
        mac[i] = b64url[fuzz_byte(&data, &size) & 63];
    mac[22] = '\0';
    unsigned outsz = fuzz_u16(&data, &size) % 300;
    char *cookie = fuzz_strndup(data, size);

    int h = login_cookie_has(cookie, mac);
    FUZZ_CHECK(h == ref_has(cookie, mac), "has() = %d, reference %d, cookie %s", h,
               ref_has(cookie, mac), cookie);
    FUZZ_CHECK(login_cookie_has(NULL, mac) == -1, "has(NULL) != -1");

    check_push(cookie, mac, outsz);
    check_push(cookie, mac, 128); /* what login_set_state_cookie uses */
    check_push(NULL, mac, 128);

    /* Pushing twice: the cookie a browser sends back after another login. */
    char first[128], second[128];
    login_cookie_push(cookie, mac, first, sizeof(first));
    char mac2[23];
    memcpy(mac2, mac, 23);
    mac2[0] = mac2[0] == 'A' ? 'B' : 'A';
    login_cookie_push(first, mac2, second, sizeof(second));
    FUZZ_CHECK(login_cookie_has(second, mac2) == 1 && login_cookie_has(second, mac) == 1,
               "second push lost a MAC: %s", second);
    free(cookie);
    return 0;
}
