/* Fuzzes the parts of the configuration that are not a Lua table: the
 * listen address parser config_parse_listen() (core/common/config.c), used for
 * `listen`, `tls.listen` and `wxgate demo/sandbox -l`. The full config goes
 * through a Lua state running the config file (trusted input, and the place
 * of config tests in tests/unit/common/test_config.c), so it is not fuzzed here.
 * On success: a malloc'd, non-empty host with no space or tab, a port in
 * 0..65535, and the input is exactly host ":" digits (or "[" host "]:"
 * digits, or ":" digits with host 0.0.0.0) whose value is the port; a host
 * holding ':' came in brackets. On failure: host and port untouched. */
#include "config.h"

#include "fuzz_common.h"

#include <ctype.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *s = fuzz_strndup(data, size);
    char *host = (char *)0x1;
    int port = -12345;
    int rc = config_parse_listen(s, &host, &port);
    FUZZ_CHECK(rc == 0 || rc == -1, "config_parse_listen returned %d", rc);
    if (rc != 0) {
        FUZZ_CHECK(host == (char *)0x1 && port == -12345, "outputs written on failure: %s", s);
        free(s);
        return 0;
    }
    FUZZ_CHECK(host && host != (char *)0x1 && host[0] != '\0', "empty host from %s", s);
    FUZZ_CHECK(!strpbrk(host, " \t"), "whitespace in host \"%s\"", host);
    FUZZ_CHECK(port >= 0 && port <= 65535, "port %d from %s", port, s);

    /* Where the port starts: after "]:" for a bracketed host, else after
     * the only ':'. */
    const char *digits;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        FUZZ_CHECK(close && close[1] == ':', "accepted unterminated [host: %s", s);
        size_t hl = (size_t)(close - s - 1);
        FUZZ_CHECK(hl == 0 ? strcmp(host, "0.0.0.0") == 0
                           : strlen(host) == hl && memcmp(host, s + 1, hl) == 0,
                   "host \"%s\" is not what the brackets held in %s", host, s);
        digits = close + 2;
    } else {
        const char *colon = strchr(s, ':');
        FUZZ_CHECK(colon && !strchr(colon + 1, ':'), "accepted %s", s);
        FUZZ_CHECK(!strchr(host, ':'), "unbracketed host with ':': %s", host);
        size_t hl = (size_t)(colon - s);
        FUZZ_CHECK(hl == 0 ? strcmp(host, "0.0.0.0") == 0
                           : strlen(host) == hl && memcmp(host, s, hl) == 0,
                   "host \"%s\" is not what came before ':' in %s", host, s);
        digits = colon + 1;
    }
    FUZZ_CHECK(*digits != '\0', "empty port accepted: %s", s);
    long v = 0;
    for (const char *d = digits; *d; d++) {
        FUZZ_CHECK(isdigit((unsigned char)*d), "non-digit in port of %s", s);
        if (v <= 65535)
            v = v * 10 + (*d - '0');
    }
    FUZZ_CHECK(v == port, "port %d but the input says %ld: %s", port, v, s);
    free(host);
    free(s);
    return 0;
}
