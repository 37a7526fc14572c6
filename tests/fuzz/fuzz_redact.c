/* Fuzzes log redaction (core/common/log.c).
 * log_redact_url() with outsz 1..4096 (an exact-size heap buffer):
 *   - the output is NUL-terminated within outsz and never writes past it;
 *   - the output is at most as long as the input plus 3 bytes per masked
 *     value, and it is a prefix of the full (outsz 4096+) redaction;
 *   - a value of a sensitive query parameter (code=, access_token=, ...;
 *     any case) that occurs only once in the URL never appears in the output.
 * log_msg() and log_access() with registered secrets (stderr captured in a
 * memfd): the line is one line of JSON-escaped text and neither the raw
 * secret nor the secret after JSON unescaping appears in it, not even its
 * first 8 bytes when the input held them only as part of the whole secret
 * (a line truncated inside a secret). That last check can be turned off
 * with WXGATE_FUZZ_SKIP_SECRET_PREFIX=1 to fuzz the rest while the known
 * leak is open (see tests/fuzz/known_bugs/). */
#include "log.h"

#include "fuzz_common.h"

#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

void __sanitizer_set_report_fd(void *fd);

static const char *const secrets[] = {
    "S3cr3tAppSecretValue0123456789ab", /* an appsecret */
    "ck_se\"cr\\et<>x&=?#/%",           /* JSON- and URL-special bytes */
    "短秘密短秘密",                     /* UTF-8 */
};
#define N_SECRETS (sizeof(secrets) / sizeof(secrets[0]))

static int capture_fd = -1, saved_stderr = -1;
static int check_prefix = 1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *skip = getenv("WXGATE_FUZZ_SKIP_SECRET_PREFIX");
    check_prefix = !(skip && *skip && strcmp(skip, "0") != 0);
    log_set_secrets(secrets, N_SECRETS);
    log_set_level(LOG_INFO);
    capture_fd = memfd_create("fuzz_redact_stderr", 0);
    saved_stderr = dup(STDERR_FILENO);
    if (capture_fd < 0 || saved_stderr < 0)
        abort();
    /* Sanitizer reports keep going to the real stderr while ours is captured. */
    __sanitizer_set_report_fd((void *)(long)saved_stderr);
    return 0;
}

/* Does needle occur exactly once in hay (overlaps counted)? */
static int occurs_once(const char *hay, const char *needle)
{
    const char *p = strstr(hay, needle);
    return p && !strstr(p + 1, needle);
}

/* The sensitive values of uri's query, checked against out. */
static void check_masked(const char *uri, const char *out)
{
    const char *q = strchr(uri, '?');
    if (!q)
        return;
    const char *p = q + 1;
    int checked = 0;
    while (*p && *p != '#' && checked < 16) {
        size_t n = strcspn(p, "&#");
        const char *eq = memchr(p, '=', n);
        if (eq && log_param_is_sensitive(p, (size_t)(eq - p))) {
            checked++;
            size_t vlen = n - (size_t)(eq - p) - 1;
            char *v = strndup(eq + 1, vlen);
            /* Only a value that the URL holds once, outside any other
             * parameter, can be told apart from innocent text; "***" is the
             * mask itself. */
            if (vlen > 0 && !strchr(v, '*') && occurs_once(uri, v))
                FUZZ_CHECK(strstr(out, v) == NULL, "value of %.*s= is in the output: %s",
                           (int)(eq - p), p, out);
            free(v);
        }
        p += n;
        if (*p == '&')
            p++;
    }
}

static size_t n_sensitive(const char *uri)
{
    const char *q = strchr(uri, '?');
    size_t k = 0;
    for (const char *p = q ? q + 1 : ""; *p && *p != '#';) {
        size_t n = strcspn(p, "&#");
        const char *eq = memchr(p, '=', n);
        if (eq && log_param_is_sensitive(p, (size_t)(eq - p)))
            k++;
        p += n;
        if (*p == '&')
            p++;
    }
    return k;
}

static void check_redact_url(const char *uri, size_t outsz)
{
    char *out = malloc(outsz);
    if (!out)
        abort();
    memset(out, 'Z', outsz);
    char *r = log_redact_url(uri, out, outsz);
    FUZZ_CHECK(r == out, "log_redact_url returned another pointer");
    FUZZ_CHECK(memchr(out, '\0', outsz) != NULL, "output not NUL-terminated within %zu", outsz);
    size_t len = strlen(out);
    FUZZ_CHECK(len <= strlen(uri) + 3 * n_sensitive(uri), "output longer than expected: %zu", len);

    size_t full_sz = strlen(uri) + 3 * n_sensitive(uri) + 1;
    char *full = malloc(full_sz);
    log_redact_url(uri, full, full_sz);
    FUZZ_CHECK(strncmp(full, out, len) == 0 && (len == strlen(full) || len == outsz - 1),
               "output with outsz %zu is not a prefix of the full redaction", outsz);
    check_masked(uri, full);
    check_masked(uri, out);
    free(full);
    free(out);
}

/* Reads what the last call wrote to the captured stderr (NUL-terminated). */
static char *captured(size_t *len)
{
    off_t end = lseek(capture_fd, 0, SEEK_END);
    char *buf = malloc((size_t)end + 1);
    ssize_t n = pread(capture_fd, buf, (size_t)end, 0);
    buf[n < 0 ? 0 : n] = '\0';
    *len = n < 0 ? 0 : (size_t)n;
    return buf;
}

static void begin_capture(void)
{
    if (ftruncate(capture_fd, 0) != 0 || lseek(capture_fd, 0, SEEK_SET) != 0)
        abort();
    fflush(stderr);
    dup2(capture_fd, STDERR_FILENO);
}

static void end_capture(void) { dup2(saved_stderr, STDERR_FILENO); }

/* Undoes JSON string escapes (\" \\ \uXXXX for < 0x80) in place. */
static void json_unescape(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            if (*p == 'u' && p[1] && p[2] && p[3] && p[4]) {
                char hex[5] = {p[1], p[2], p[3], p[4], 0};
                *o++ = (char)strtol(hex, NULL, 16);
                p += 4;
            } else {
                *o++ = *p;
            }
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
}

/* Does every occurrence in s of the secret's first 8 bytes start the whole
 * secret? Then those 8 bytes must not reach the log: a line cut short inside
 * a secret would otherwise print its beginning. */
static int prefix_only_in_secret(const char *s, const char *secret)
{
    char pre[9];
    memcpy(pre, secret, 8);
    pre[8] = '\0';
    int seen = 0;
    for (const char *p = s; (p = strstr(p, pre)) != NULL; p++) {
        if (strncmp(p, secret, strlen(secret)) != 0)
            return 0;
        seen = 1;
    }
    return seen;
}

static int has_prefix_of(const char *line, const char *secret)
{
    char pre[9];
    memcpy(pre, secret, 8);
    pre[8] = '\0';
    return strstr(line, pre) != NULL;
}

static void check_line(const char *what, const char *input)
{
    size_t len;
    char *line = captured(&len);
    end_capture();
    if (len == 0) {
        free(line);
        return;
    }
    FUZZ_CHECK(line[len - 1] == '\n' && memchr(line, '\n', len) == line + len - 1,
               "%s: not exactly one line", what);
    FUZZ_CHECK(strlen(line) == len, "%s: NUL byte in the line", what);
    for (size_t i = 0; i + 1 < len; i++)
        FUZZ_CHECK((unsigned char)line[i] >= 0x20 && line[i] != 0x7f, "%s: raw control byte at %zu",
                   what, i);
    for (size_t i = 0; i < N_SECRETS; i++)
        FUZZ_CHECK(strstr(line, secrets[i]) == NULL, "%s: secret %zu in the line: %s", what, i,
                   line);
    json_unescape(line);
    for (size_t i = 0; i < N_SECRETS; i++) {
        FUZZ_CHECK(strstr(line, secrets[i]) == NULL,
                   "%s: secret %zu in the line once JSON-decoded: %s", what, i, line);
        FUZZ_CHECK(!check_prefix || !prefix_only_in_secret(input, secrets[i]) ||
                       !has_prefix_of(line, secrets[i]),
                   "%s: the beginning of secret %zu is in the line: %s", what, i, line);
    }
    free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    unsigned mode = fuzz_byte(&data, &size);
    size_t outsz = 1 + fuzz_u16(&data, &size) % 4096;
    char *uri = fuzz_strndup(data, size);
    check_redact_url(uri, outsz);
    if (mode & 1) {
        begin_capture();
        log_access("0123abcd00000001", "GET", uri, 200, 1.5, "127.0.0.1");
        check_line("log_access", uri);
    }
    if (mode & 2) {
        begin_capture();
        log_msg(LOG_WARN, "0123abcd00000002", "callback: %s", uri);
        check_line("log_msg", uri);
    }
    free(uri);
    return 0;
}
