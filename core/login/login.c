/* The login flow's shared pieces (see login.h). */
#include "login.h"

#include "config.h"
#include "crypto.h"
#include "strbuf.h"
#include "http.h"
#include "page.h"
#include "url.h"

#include <lua.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- allow-lists ---- */

/* Does the URL up to its query (scheme://host[:port]/path) fall under one of
 * the campaign's entries? Parsed with the URL module, the way a browser
 * reads it. */
static int prefix_allowed(const struct config_campaign *c, const char *prefix)
{
    struct url_http u;
    const char *why;
    if (url_parse_http(prefix, &u, &why) != 0 || url_path_disguised(u.path, strlen(u.path)))
        return 0;
    size_t plen = strlen(u.path);
    for (size_t i = 0; i < c->n_allow; i++) {
        const struct url_http *a = &c->allow_url[i];
        if (a->https != u.https || a->port != u.port || strcmp(a->host, u.host) != 0)
            continue;
        size_t alen = strlen(a->path);
        if (strcmp(a->path, "/") == 0)
            return 1;
        if (plen < alen || strncmp(u.path, a->path, alen) != 0)
            continue;
        /* "/spring" allows "/spring" and "/spring/..." but not "/springtime" */
        if (a->path[alen - 1] == '/' || plen == alen || u.path[alen] == '/')
            return 1;
    }
    return 0;
}

/* Recent verdicts of this thread. Parsing with curl_url allocates, and most
 * logins of a campaign come back to the same few pages, so the verdict on
 * a URL's prefix (it does not depend on the query) is kept, keyed by the
 * campaign's allow-list: its address and the serial of the config load
 * that made it (a reload makes new lists, maybe at old addresses). */
#define VERDICTS       64
#define VERDICT_PREFIX 240

struct verdict {
    const struct config_campaign *campaign;
    unsigned long serial;
    int allowed;
    char prefix[VERDICT_PREFIX];
};

static _Thread_local struct verdict verdicts[VERDICTS];

static int cached_prefix_allowed(const struct config_campaign *c, const char *url, size_t plen)
{
    char prefix[URL_PATH_MAX + URL_HOST_MAX + 32];
    if (plen >= sizeof(prefix))
        return 0;
    memcpy(prefix, url, plen);
    prefix[plen] = '\0';
    if (plen >= VERDICT_PREFIX)
        return prefix_allowed(c, prefix);
    unsigned long h = 5381 ^ (unsigned long)(uintptr_t)c ^ c->allow_serial;
    for (size_t i = 0; i < plen; i++)
        h = h * 33 + (unsigned char)prefix[i];
    struct verdict *v = &verdicts[h % VERDICTS];
    if (v->campaign == c && v->serial == c->allow_serial && strcmp(v->prefix, prefix) == 0)
        return v->allowed;
    int allowed = prefix_allowed(c, prefix);
    v->campaign = c;
    v->serial = c->allow_serial;
    v->allowed = allowed;
    memcpy(v->prefix, prefix, plen + 1);
    return allowed;
}

int login_return_allowed(const struct config_campaign *c, const char *url)
{
    size_t len = strlen(url);
    if (len == 0 || len > 2000)
        return 0;
    for (const char *p = url; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        /* A browser reads '\\' as '/' where a URL parser may not: refused. */
        if (ch <= 0x20 || ch == 0x7f || ch == '\\' || ch == '"' || ch == '<' || ch == '>')
            return 0;
    }
    /* Encoded CR, LF and NUL have no business in a return URL either. */
    if (strcasestr(url, "%0d") || strcasestr(url, "%0a") || strcasestr(url, "%00"))
        return 0;
    return cached_prefix_allowed(c, url, strcspn(url, "?#"));
}

/* ---- state records ---- */

int login_state_encode(const struct login_state *s, char *out, size_t outsz)
{
    struct strbuf b = strbuf_init(out, outsz);
    strbuf_put(&b, "v1\t");
    strbuf_num(&b, s->created);
    strbuf_put(&b, "\t");
    strbuf_num(&b, s->restarts);
    strbuf_put(&b, "\t");
    strbuf_put(&b, s->scope);
    strbuf_put(&b, "\t");
    strbuf_put(&b, s->campaign);
    strbuf_put(&b, "\t");
    strbuf_put(&b, s->return_url);
    long n = strbuf_done(&b, out);
    return n > 0 ? (int)n : -1;
}

int login_state_decode(const char *v, size_t len, struct login_state *s)
{
    char buf[4096];
    if (len >= sizeof(buf) || len < 3 || memcmp(v, "v1\t", 3) != 0)
        return -1;
    memcpy(buf, v, len);
    buf[len] = '\0';
    char *save = NULL;
    char *f[7];
    int n = 0;
    for (char *tok = strtok_r(buf, "\t", &save); tok && n < 7; tok = strtok_r(NULL, "\t", &save))
        f[n++] = tok;
    char *end;
    if (n != 6)
        return -1;
    s->created = strtol(f[1], &end, 10);
    if (*end != '\0' || end == f[1])
        return -1;
    s->restarts = atoi(f[2]);
    snprintf(s->scope, sizeof(s->scope), "%s", f[3]);
    snprintf(s->campaign, sizeof(s->campaign), "%s", f[4]);
    snprintf(s->return_url, sizeof(s->return_url), "%s", f[5]);
    return 0;
}

/* ---- the state-binding cookie ---- */

void login_state_mac(const struct config *cfg, const char *state, char out[23])
{
    unsigned char mac[32];
    char b64[48];
    const char *key = cfg->cookie_secret ? cfg->cookie_secret : "";
    crypto_hmac_sha256(key, strlen(key), state, strlen(state), mac);
    crypto_base64url_encode(mac, 16, b64);
    memcpy(out, b64, 22);
    out[22] = '\0';
}

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int login_cookie_has(const char *cookie, const char *mac)
{
    if (!cookie || !*cookie)
        return -1;
    int usable = 0;
    const char *p = cookie;
    while (*p) {
        size_t n = strcspn(p, ".");
        if (n == 22 && strspn(p, b64url_chars) >= 22) {
            usable = 1;
            if (crypto_equal(p, 22, mac, 22))
                return 1;
        }
        p += n;
        if (*p == '.')
            p++;
    }
    return usable ? 0 : -1;
}

void login_cookie_push(const char *cookie, const char *mac, char *out, size_t outsz)
{
    if (outsz == 0)
        return;
    str_copy(out, outsz, mac);
    size_t o = strlen(out);
    int kept = 0;
    const char *p = cookie ? cookie : "";
    while (*p && kept < 3 && o + 24 < outsz) {
        size_t n = strcspn(p, ".");
        /* Only well-formed MACs are carried over into Set-Cookie. */
        if (n == 22 && strncmp(p, mac, 22) != 0 && strspn(p, b64url_chars) >= 22) {
            out[o++] = '.';
            memcpy(out + o, p, 22);
            o += 22;
            out[o] = '\0';
            kept++;
        }
        p += n;
        if (*p == '.')
            p++;
    }
}

void login_set_state_cookie(struct http_req *r, const struct config *cfg, const char *old,
                            const char *state)
{
    char mac[23], value[128], header[256];
    login_state_mac(cfg, state, mac);
    login_cookie_push(old, mac, value, sizeof(value));
    int secure = cfg->public_url && strncmp(cfg->public_url, "https://", 8) == 0;
    struct strbuf b = strbuf_init(header, sizeof(header));
    strbuf_put(&b, LOGIN_COOKIE "=");
    strbuf_put(&b, value);
    strbuf_put(&b, "; Path=/; Max-Age=");
    strbuf_num(&b, LOGIN_STATE_TTL);
    strbuf_put(&b, secure ? "; HttpOnly; SameSite=Lax; Secure" : "; HttpOnly; SameSite=Lax");
    http_req_add_header(r, "Set-Cookie", header);
}

/* ---- URLs and tickets ---- */

void login_ticket_key(const struct config *cfg, const char *ticket, char out[64])
{
    unsigned char mac[32];
    const char *key = cfg->ticket_secret ? cfg->ticket_secret : "";
    crypto_hmac_sha256(key, strlen(key), ticket, strlen(ticket), mac);
    memcpy(out, KEY_TICKET, 3);
    crypto_base64url_encode(mac, 24, out + 3);
}

char *login_token_seal(const struct config *cfg, const char *key, const char *record, size_t *len)
{
    char *out = cfg->token_key
                    ? crypto_seal(cfg->token_key, key, strlen(key), record, strlen(record))
                    : strdup(record);
    if (out)
        *len = strlen(out);
    return out;
}

char *login_token_open(const struct config *cfg, const char *key, const char *v, size_t len)
{
    size_t n;
    if (cfg->token_key)
        return crypto_open(cfg->token_key, key, strlen(key), v, len, &n);
    return len >= 3 && memcmp(v, "v1\t", 3) == 0 ? strndup(v, len) : NULL;
}

char *login_tokens_seal(const struct config *cfg, const char *key, const struct login_tokens *t,
                        size_t *len)
{
    char record[4096];
    int n = snprintf(record, sizeof(record), "v1\t%s\t%s\t%ld\t%ld\t%s", t->access,
                     t->refresh ? t->refresh : "", t->access_expires,
                     (long)time(NULL) + LOGIN_TOKENS_TTL, t->scope ? t->scope : "");
    char *out =
        n > 0 && (size_t)n < sizeof(record) ? login_token_seal(cfg, key, record, len) : NULL;
    explicit_bzero(record, sizeof(record));
    return out;
}

int login_tokens_open(const struct config *cfg, const char *key, const char *v, size_t len,
                      struct login_tokens *t)
{
    char *buf = login_token_open(cfg, key, v, len);
    if (!buf)
        return -1;
    size_t blen = strlen(buf);
    char *f[6];
    int nf = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, "\t", &save); tok && nf < 6; tok = strtok_r(NULL, "\t", &save))
        f[nf++] = tok;
    int ok = nf == 6 && strcmp(f[0], "v1") == 0;
    if (ok) {
        t->access = strdup(f[1]);
        t->refresh = f[2][0] ? strdup(f[2]) : NULL;
        t->access_expires = strtol(f[3], NULL, 10);
        t->scope = strdup(f[5]);
        ok = t->access && t->scope && (t->refresh || !f[2][0]);
        if (!ok) {
            login_token_free(t->access);
            login_token_free(t->refresh);
            free(t->scope);
        }
    }
    explicit_bzero(buf, blen); /* strtok_r cut it into fields: wipe all of it */
    free(buf);
    return ok ? 0 : -1;
}

void login_token_free(char *token)
{
    if (token)
        explicit_bzero(token, strlen(token));
    free(token);
}

void login_redirect_uri(const struct config *cfg, char *out, size_t outsz)
{
    const char *base = cfg->public_url ? cfg->public_url : "";
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    struct strbuf b = strbuf_init(out, outsz);
    strbuf_putn(&b, base, n);
    strbuf_put(&b, "/callback");
}

/* ---- hooks ---- */

int login_is_pc(const char *scope) { return scope && strcmp(scope, "snsapi_login") == 0; }

void login_push_hook_ctx(lua_State *L, const struct config_campaign *c, const char *scope,
                         const char *return_url)
{
    lua_createtable(L, 0, 5);
    lua_pushstring(L, c->name);
    lua_setfield(L, -2, "campaign");
    lua_pushstring(L, c->app->name);
    lua_setfield(L, -2, "app");
    lua_pushstring(L, c->app->appid);
    lua_setfield(L, -2, "appid");
    lua_pushstring(L, scope);
    lua_setfield(L, -2, "scope");
    lua_pushstring(L, return_url);
    lua_setfield(L, -2, "return_url");
}

/* ---- pages ---- */

void login_page_expired(struct http_req *r, const char *retry)
{
    page_error(r, 400, "登录已过期，请返回重新打开页面",
               "This login has expired or was already used. Please go back and open the page "
               "again.",
               retry);
}

void login_page_upstream(struct http_req *r, const char *retry)
{
    page_error(r, 502, "微信暂时无法完成登录，请稍后重试",
               "WeChat could not complete the login right now. Please try again.", retry);
}

/* ---- ticket values ---- */

char *login_ticket_value(const char *campaign, const char *user_json)
{
    size_t c = strlen(campaign), u = strlen(user_json);
    char *v = malloc(c + 1 + u + 1);
    if (v) {
        memcpy(v, campaign, c);
        v[c] = '\t';
        memcpy(v + c + 1, user_json, u + 1);
    }
    return v;
}

const char *login_ticket_record(const char *value, char *campaign, size_t size)
{
    size_t n = strcspn(value, "\t{");
    campaign[0] = '\0';
    if (value[n] != '\t')
        return value; /* a record alone (written before campaigns were kept) */
    if (n < size) {
        memcpy(campaign, value, n);
        campaign[n] = '\0';
    }
    return value + n + 1;
}
