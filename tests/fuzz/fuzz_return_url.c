/* Fuzzes login_return_allowed() (core/login/login.c): the return-URL allow-list,
 * the gateway's open-redirect guard. Beyond "no crash", every accepted URL is
 * checked by an independent reading of it:
 *   - it starts with http:// or https:// (any case);
 *   - no control character, space, backslash, '"', '<', '>' anywhere, no
 *     encoded CR, LF or NUL, no '@' in the authority;
 *   - its host (between :// and the next / ? # or :, a [v6] literal kept
 *     whole), lowercased, and its scheme and effective port equal those of
 *     one allow entry, whose path prefix it honours, with no dot segments;
 *   - url_set_param() (the default outcome sets wx_ticket) keeps the
 *     origin, the path and the fragment, leaves exactly one wx_ticket (the
 *     new one, last in the query), and the result is still accepted. */
#include "config.h"
#include "login.h"

#include "fuzz_common.h"
#include "url.h"

#include <ctype.h>
#include <strings.h>

static char *allow_list[] = {
    "https://h5.example.com/spring/",
    "http://127.0.0.1:8000",
    "https://[::1]:8443/x",
};
static struct config_campaign campaign = {
    .name = "fuzz",
    .scope = "snsapi_base",
    .allow = allow_list,
    .n_allow = sizeof(allow_list) / sizeof(allow_list[0]),
};

struct ref_origin {
    int https;
    char host[300];
    long port;
    const char *path; /* "/..." or "" or starting at ? / # */
};

/* An independent, deliberately naive reading of scheme://host[:port]rest. */
static int ref_parse(const char *url, struct ref_origin *o)
{
    const char *p;
    if (strncasecmp(url, "https://", 8) == 0) {
        o->https = 1;
        p = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        o->https = 0;
        p = url + 7;
    } else {
        return -1;
    }
    size_t hl;
    if (*p == '[') {
        const char *e = strchr(p, ']');
        if (!e)
            return -1;
        hl = (size_t)(e - p) + 1;
    } else {
        hl = strcspn(p, "/?#:");
    }
    if (hl >= sizeof(o->host))
        return -1;
    for (size_t i = 0; i < hl; i++)
        o->host[i] = (char)tolower((unsigned char)p[i]);
    o->host[hl] = '\0';
    p += hl;
    o->port = o->https ? 443 : 80;
    if (*p == ':') {
        p++;
        size_t dl = strcspn(p, "/?#");
        if (dl == 0)
            return -1;
        long port = 0;
        for (size_t i = 0; i < dl; i++) {
            if (!isdigit((unsigned char)p[i]))
                return -1;
            if (port < 1000000)
                port = port * 10 + (p[i] - '0');
        }
        o->port = port;
        p += dl;
    }
    o->path = p;
    return 0;
}

static int path_has_dot_segment(const char *path, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && path[j] != '/')
            j++;
        size_t seg = j - i;
        if ((seg == 1 && path[i] == '.') || (seg == 2 && path[i] == '.' && path[i + 1] == '.'))
            return 1;
        i = j + 1;
    }
    for (size_t k = 0; k + 3 <= len; k++)
        if (strncasecmp(path + k, "%2e", 3) == 0)
            return 1;
    return 0;
}

static void check_accepted(const char *url)
{
    size_t len = strlen(url);
    FUZZ_CHECK(strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0,
               "accepted a URL that is not http(s): %s", url);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        FUZZ_CHECK(c > 0x20 && c != 0x7f, "control character or space at %zu in %s", i, url);
        FUZZ_CHECK(c != '\\', "backslash in accepted %s", url);
        FUZZ_CHECK(c != '"' && c != '<' && c != '>', "markup character in accepted %s", url);
    }
    FUZZ_CHECK(!strcasestr(url, "%0d") && !strcasestr(url, "%0a") && !strcasestr(url, "%00"),
               "encoded CR/LF/NUL in accepted %s", url);
    const char *auth = strstr(url, "://") + 3;
    size_t alen = strcspn(auth, "/?#");
    FUZZ_CHECK(memchr(auth, '@', alen) == NULL, "userinfo in accepted %s", url);

    struct ref_origin u;
    FUZZ_CHECK(ref_parse(url, &u) == 0, "accepted URL with an unreadable authority: %s", url);
    FUZZ_CHECK(u.host[0] != '\0', "accepted URL with an empty host: %s", url);
    size_t plen = strcspn(u.path, "?#");
    FUZZ_CHECK(plen == 0 || u.path[0] == '/', "path does not start with '/': %s", url);
    FUZZ_CHECK(!path_has_dot_segment(u.path, plen), "dot segment in accepted %s", url);

    int matched = 0;
    for (size_t i = 0; i < campaign.n_allow && !matched; i++) {
        struct ref_origin a;
        if (ref_parse(allow_list[i], &a) != 0)
            abort();
        if (a.https != u.https || a.port != u.port || strcmp(a.host, u.host) != 0)
            continue;
        size_t pl = strlen(a.path);
        if (pl == 0 || strcmp(a.path, "/") == 0) {
            matched = 1;
        } else if (plen >= pl && strncmp(u.path, a.path, pl) == 0 &&
                   (a.path[pl - 1] == '/' || plen == pl || u.path[pl] == '/')) {
            matched = 1;
        }
    }
    FUZZ_CHECK(matched, "accepted URL matches no allow entry (host \"%s\" port %ld https %d): %s",
               u.host, u.port, u.https, url);

    /* The default outcome: the ticket is added, the origin and fragment kept. */
    char *with = url_set_param(url, "wx_ticket", "Tk0_-x");
    FUZZ_CHECK(with != NULL, "url_set_param failed on %s", url);
    struct ref_origin w;
    FUZZ_CHECK(ref_parse(with, &w) == 0 && w.https == u.https && w.port == u.port &&
                   strcmp(w.host, u.host) == 0,
               "adding the ticket changed the origin: %s -> %s", url, with);
    const char *frag = strchr(url, '#');
    const char *wfrag = strchr(with, '#');
    FUZZ_CHECK((frag == NULL) == (wfrag == NULL) && (!frag || strcmp(frag, wfrag) == 0),
               "fragment not kept: %s -> %s", url, with);
    /* with = url up to its query (unchanged), a query whose last parameter
     * is the ticket, then the fragment. */
    size_t upath = strcspn(url, "?#");
    FUZZ_CHECK(strncmp(with, url, upath) == 0 && (with[upath] == '?'),
               "text before the query changed: %s -> %s", url, with);
    static const char param[] = "wx_ticket=Tk0_-x";
    size_t wbase = wfrag ? (size_t)(wfrag - with) : strlen(with);
    FUZZ_CHECK(wbase >= sizeof(param) &&
                   strncmp(with + wbase - (sizeof(param) - 1), param, sizeof(param) - 1) == 0 &&
                   (with[wbase - sizeof(param)] == '?' || with[wbase - sizeof(param)] == '&'),
               "ticket not added as the last parameter of the query: %s", with);
    int tickets = 0;
    for (size_t i = upath + 1; i < wbase;) {
        size_t seg = strcspn(with + i, "&#");
        tickets += seg >= 10 && strncmp(with + i, "wx_ticket=", 10) == 0;
        i += seg + 1;
    }
    FUZZ_CHECK(tickets == 1, "an older wx_ticket is left in the query: %s -> %s", url, with);
    if (strlen(with) <= 2000)
        FUZZ_CHECK(login_return_allowed(&campaign, with) == 1,
                   "URL with the ticket added is refused: %s -> %s", url, with);
    free(with);
}

/* The allow-list in the parsed form that config.c builds at load. */
static void parse_allow_list(void)
{
    static struct url_http parsed[sizeof(allow_list) / sizeof(allow_list[0])];
    for (size_t i = 0; i < campaign.n_allow; i++) {
        const char *why;
        FUZZ_CHECK(url_parse_http(allow_list[i], &parsed[i], &why) == 0, "fixture %s: %s",
                   allow_list[i], why);
    }
    campaign.allow_url = parsed;
    campaign.allow_serial = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!campaign.allow_url)
        parse_allow_list();
    if (size > 4096)
        return 0;
    char *url = fuzz_strndup(data, size);
    int ok = login_return_allowed(&campaign, url);
    FUZZ_CHECK(ok == 0 || ok == 1, "unexpected result %d", ok);
    if (ok)
        check_accepted(url);
    free(url);
    return 0;
}
