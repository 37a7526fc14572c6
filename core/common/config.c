/* Configuration loading and validation (see config.h).
 *
 * The config file is Lua: it runs in a throwaway state and must return a
 * table. Validation walks that table once, copying what it accepts into a
 * struct config and appending one line per problem, each naming the key path
 * ("apps.demo.secret") and the reason. Nothing starts unless there are none. */
#include "config.h"

#include "env_file.h"
#include "url.h"

#include <arpa/inet.h>
#include <errno.h>
#include <lauxlib.h>
#include <luajit.h>
#include <lua.h>
#include <lualib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

struct check {
    lua_State *L;
    struct config *c;
    char *err;
    size_t errsz, errlen;
    int n_errors;
    struct env_file *env_file; /* the config's env_file, or NULL */
};

static void fail(struct check *k, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct check *k, const char *path, const char *fmt, ...)
{
    k->n_errors++;
    if (k->errlen + 1 >= k->errsz)
        return;
    int n = snprintf(k->err + k->errlen, k->errsz - k->errlen,
                     "%sconfig: %s: ", k->errlen ? "\n" : "", path);
    if (n > 0)
        k->errlen += (size_t)n;
    if (k->errlen >= k->errsz) {
        k->errlen = k->errsz - 1;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(k->err + k->errlen, k->errsz - k->errlen, fmt, ap);
    va_end(ap);
    if (n > 0)
        k->errlen += (size_t)n;
    if (k->errlen >= k->errsz)
        k->errlen = k->errsz - 1;
}

static void join(char *out, size_t outsz, const char *parent, const char *key)
{
    if (parent && *parent)
        snprintf(out, outsz, "%s.%s", parent, key);
    else
        snprintf(out, outsz, "%s", key);
}

/* Refuses keys of the table at idx that are not in allowed (NULL-terminated). */
static void check_keys(struct check *k, int idx, const char *path, const char *const *allowed)
{
    lua_State *L = k->L;
    char p[256];
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            fail(k, path && *path ? path : "(top level)", "keys must be names, found a %s key",
                 luaL_typename(L, -1));
            continue;
        }
        const char *key = lua_tostring(L, -1);
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            ok |= strcmp(*a, key) == 0;
        if (!ok) {
            join(p, sizeof(p), path, key);
            fail(k, p, "unknown key");
        }
    }
}

/* Each getter reads t[key] from the table at idx. A missing key leaves *out
 * at its default and returns 0; a present, valid one returns 1; a wrong one
 * is reported and returns -1. */
static int get_string(struct check *k, int idx, const char *path, const char *key, char **out)
{
    lua_State *L = k->L;
    char p[256];
    lua_getfield(L, idx, key);
    int r = 0;
    if (lua_type(L, -1) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        join(p, sizeof(p), path, key);
        if (strlen(s) != len) {
            fail(k, p, "must not contain NUL bytes");
            r = -1;
        } else {
            free(*out);
            *out = strdup(s);
            r = 1;
        }
    } else if (!lua_isnil(L, -1)) {
        join(p, sizeof(p), path, key);
        fail(k, p, "must be a string, found a %s", luaL_typename(L, -1));
        r = -1;
    }
    lua_pop(L, 1);
    return r;
}

static int get_int(struct check *k, int idx, const char *path, const char *key, int *out, long min,
                   long max)
{
    lua_State *L = k->L;
    char p[256];
    lua_getfield(L, idx, key);
    int r = 0;
    if (!lua_isnil(L, -1)) {
        join(p, sizeof(p), path, key);
        if (lua_type(L, -1) != LUA_TNUMBER) {
            fail(k, p, "must be a number, found a %s", luaL_typename(L, -1));
            r = -1;
        } else {
            lua_Number n = lua_tonumber(L, -1);
            /* Range first: converting NaN or a huge number is undefined. */
            if (!(n >= min && n <= max) || n != (lua_Number)(long)n) {
                fail(k, p, "must be a whole number from %ld to %ld", min, max);
                r = -1;
            } else {
                *out = (int)n;
                r = 1;
            }
        }
    }
    lua_pop(L, 1);
    return r;
}

static int get_size(struct check *k, int idx, const char *path, const char *key, size_t *out,
                    long min, long max)
{
    int v = (int)*out;
    int r = get_int(k, idx, path, key, &v, min, max);
    if (r == 1)
        *out = (size_t)v;
    return r;
}

static int get_bool(struct check *k, int idx, const char *path, const char *key, int *out)
{
    lua_State *L = k->L;
    char p[256];
    lua_getfield(L, idx, key);
    int r = 0;
    if (lua_type(L, -1) == LUA_TBOOLEAN) {
        *out = lua_toboolean(L, -1);
        r = 1;
    } else if (!lua_isnil(L, -1)) {
        join(p, sizeof(p), path, key);
        fail(k, p, "must be true or false, found a %s", luaL_typename(L, -1));
        r = -1;
    }
    lua_pop(L, 1);
    return r;
}

/* Pushes t[key] if it is a table and returns its absolute index; returns 0
 * (and reports a wrong type) otherwise. Pop it with lua_pop when done. */
static int get_table(struct check *k, int idx, const char *path, const char *key)
{
    lua_State *L = k->L;
    lua_getfield(L, idx, key);
    if (lua_istable(L, -1))
        return lua_gettop(L);
    if (!lua_isnil(L, -1)) {
        char p[256];
        join(p, sizeof(p), path, key);
        fail(k, p, "must be a table, found a %s", luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    return 0;
}

/* The number of entries of the table at idx (lua_objlen counts only the
 * array part). */
static size_t table_size(lua_State *L, int idx)
{
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        n++;
        lua_pop(L, 1);
    }
    return n;
}

static char *read_small_file(const char *path, char *why, size_t whysz)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, whysz, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    char buf[4097];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    if (n == 0) {
        snprintf(why, whysz, "%s is empty", path);
        return NULL;
    }
    return strdup(buf);
}

static char *resolve_path(const struct config *c, const char *p)
{
    if (p[0] == '/')
        return strdup(p);
    size_t n = strlen(c->dir) + strlen(p) + 2;
    char *out = malloc(n);
    snprintf(out, n, "%s/%s", c->dir, p);
    return out;
}

/* A secret is written as { env = "NAME" } or { file = "path" } so that the
 * config file itself never holds it. literal_ok also allows a plain string
 * (for keys the operator generates, such as the cookie secret). */
static int get_secret(struct check *k, int idx, const char *path, const char *key, char **out,
                      int literal_ok)
{
    lua_State *L = k->L;
    char p[256], why[512];
    join(p, sizeof(p), path, key);
    lua_getfield(L, idx, key);
    int t = lua_type(L, -1);
    int r = 0;
    if (t == LUA_TSTRING && literal_ok) {
        free(*out);
        *out = strdup(lua_tostring(L, -1));
        r = 1;
    } else if (t == LUA_TTABLE) {
        static const char *const keys[] = {"env", "file", NULL};
        int tidx = lua_gettop(L);
        char *env = NULL, *file = NULL;
        check_keys(k, tidx, p, keys);
        get_string(k, tidx, p, "env", &env);
        get_string(k, tidx, p, "file", &file);
        if (env) {
            const char *v = getenv(env);
            if (!v || !*v)
                v = env_file_get(k->env_file, env);
            if (!v || !*v) {
                fail(k, p, "environment variable %s is not set%s", env,
                     k->env_file ? " (nor in env_file)" : "");
                r = -1;
            } else {
                free(*out);
                *out = strdup(v);
                r = 1;
            }
        } else if (file) {
            char *full = resolve_path(k->c, file);
            char *v = read_small_file(full, why, sizeof(why));
            free(full);
            if (!v) {
                fail(k, p, "%s", why);
                r = -1;
            } else {
                free(*out);
                *out = v;
                r = 1;
            }
        } else {
            fail(k, p, "needs env = \"NAME\" or file = \"path\"");
            r = -1;
        }
        free(env);
        free(file);
    } else if (t != LUA_TNIL) {
        fail(k, p,
             literal_ok ? "must be a string or { env = \"NAME\" } or { file = \"path\" }"
                        : "must be { env = \"NAME\" } or { file = \"path\" }: secrets are "
                          "never written in the config");
        r = -1;
    }
    lua_pop(L, 1);
    return r;
}

int config_parse_listen(const char *s, char **host, int *port)
{
    const char *why;
    return url_parse_listen(s, host, port, &why);
}

/* An allow-list entry: scheme://host[:port][/path-prefix], http or https,
 * parsed into out; NULL when some return URL could match it, else why not.
 * No user info, query or fragment, and nothing a return URL may not hold. */
static unsigned long allow_serials; /* see config_campaign.allow_serial */

static const char *allow_entry(const char *s, struct url_http *out)
{
    const char *why = NULL;
    if (strpbrk(s, "?#@\\ \t\r\n"))
        return "no user info, query, fragment or whitespace";
    if (url_parse_http(s, out, &why) != 0)
        return why;
    if (url_path_disguised(out->path, strlen(out->path)))
        return "a path with dot segments or encoded dots or slashes never matches";
    return NULL;
}

static void check_script(struct check *k, const char *path, char *file)
{
    if (access(file, R_OK) != 0)
        fail(k, path, "cannot read script %s: %s", file, strerror(errno));
}

const char *config_app_kind_name(enum config_app_kind kind)
{
    switch (kind) {
    case APP_WEBSITE: return "website";
    case APP_MINIPROGRAM: return "miniprogram";
    default: return "official_account";
    }
}

/* kind = "official_account" (the default), "website" (an Open Platform
 * website app, for PC QR login), "miniprogram" or "minigame". */
static void load_app_kind(struct check *k, int ai, const char *path, struct config_app *a)
{
    char *kind = NULL, q[300];
    if (get_string(k, ai, path, "kind", &kind) == 1) {
        if (strcmp(kind, "website") == 0)
            a->kind = APP_WEBSITE;
        else if (strcmp(kind, "miniprogram") == 0)
            a->kind = APP_MINIPROGRAM;
        else if (strcmp(kind, "minigame") == 0)
            a->kind = APP_MINIPROGRAM, a->minigame = 1;
        else if (strcmp(kind, "official_account") != 0) {
            snprintf(q, sizeof(q), "%s.kind", path);
            fail(k, q,
                 "must be \"official_account\", \"website\", \"miniprogram\" or "
                 "\"minigame\"");
        }
    }
    free(kind);
}

/* A campaign's reference to an app by name: it must exist and be of the
 * kind the login needs. */
static const struct config_app *app_of_kind(struct check *k, const char *path, const char *name,
                                            enum config_app_kind kind, const char *login)
{
    const struct config_app *a = config_find_app(k->c, name);
    if (!a)
        fail(k, path, "no app named \"%s\"", name);
    else if (a->kind != kind)
        fail(k, path, "app \"%s\" is of kind %s: %s needs an app of kind %s", name,
             config_app_kind_name(a->kind), login, config_app_kind_name(kind));
    else
        return a;
    return NULL;
}

/* website_app = "name" and miniprogram_apps = { "name", ... } (or one name). */
static void load_campaign_logins(struct check *k, int ci, const char *path,
                                 struct config_campaign *cp)
{
    lua_State *L = k->L;
    char q[300], *name = NULL;
    snprintf(q, sizeof(q), "%s.website_app", path);
    if (get_string(k, ci, path, "website_app", &name) == 1)
        cp->website_app = app_of_kind(k, q, name, APP_WEBSITE, "PC QR login (website_app)");
    free(name);
    /* pc_inline = { style = "black" | "white", href = "https://.../qr.css" } */
    int t = get_table(k, ci, path, "pc_inline");
    if (t) {
        static const char *const keys[] = {"style", "href", NULL};
        snprintf(q, sizeof(q), "%s.pc_inline", path);
        check_keys(k, t, q, keys);
        cp->pc_style = strdup("black");
        if (get_string(k, t, q, "style", &cp->pc_style) == 1 && strcmp(cp->pc_style, "black") &&
            strcmp(cp->pc_style, "white")) {
            char r[320];
            snprintf(r, sizeof(r), "%s.style", q);
            fail(k, r, "must be \"black\" or \"white\"");
        }
        if (get_string(k, t, q, "href", &cp->pc_href) == 1 && strncmp(cp->pc_href, "https://", 8)) {
            char r[320];
            snprintf(r, sizeof(r), "%s.href", q);
            fail(k, r, "must be an https:// URL of a stylesheet");
        }
        if (!cp->website_app)
            fail(k, q, "needs website_app");
        lua_pop(L, 1);
    }
    snprintf(q, sizeof(q), "%s.miniprogram_apps", path);
    lua_getfield(L, ci, "miniprogram_apps");
    if (lua_type(L, -1) == LUA_TSTRING) {
        cp->mini_apps = calloc(1, sizeof(*cp->mini_apps));
        const struct config_app *a = app_of_kind(k, q, lua_tostring(L, -1), APP_MINIPROGRAM,
                                                 "Mini Program login (miniprogram_apps)");
        if (a && cp->mini_apps)
            cp->mini_apps[cp->n_mini_apps++] = a;
    } else if (lua_istable(L, -1)) {
        size_t n = lua_objlen(L, -1);
        cp->mini_apps = calloc(n ? n : 1, sizeof(*cp->mini_apps));
        for (size_t i = 1; i <= n && cp->mini_apps; i++) {
            char r[320];
            snprintf(r, sizeof(r), "%s[%zu]", q, i);
            lua_rawgeti(L, -1, (int)i);
            const struct config_app *a =
                lua_type(L, -1) == LUA_TSTRING
                    ? app_of_kind(k, r, lua_tostring(L, -1), APP_MINIPROGRAM,
                                  "Mini Program login (miniprogram_apps)")
                    : NULL;
            if (lua_type(L, -1) != LUA_TSTRING)
                fail(k, r, "must be the name of an app");
            if (a)
                cp->mini_apps[cp->n_mini_apps++] = a;
            lua_pop(L, 1);
        }
    } else if (!lua_isnil(L, -1)) {
        fail(k, q, "must be an app name or a list of app names");
    }
    lua_pop(L, 1);
}

static void load_apps(struct check *k, int top)
{
    lua_State *L = k->L;
    struct config *c = k->c;
    int t = get_table(k, top, "", "apps");
    if (!t)
        return;
    size_t n = table_size(L, t);
    c->apps = calloc(n ? n : 1, sizeof(*c->apps));
    static const char *const keys[] = {"appid", "secret", "domains", "kind", NULL};
    lua_pushnil(L);
    while (lua_next(L, t)) {
        char p[256];
        if (lua_type(L, -2) != LUA_TSTRING || !lua_istable(L, -1)) {
            fail(k, "apps", "each app is name = { appid = ..., secret = ... }");
            lua_pop(L, 1);
            continue;
        }
        struct config_app *a = &c->apps[c->n_apps++];
        a->name = strdup(lua_tostring(L, -2));
        snprintf(p, sizeof(p), "apps.%s", a->name);
        int ai = lua_gettop(L);
        check_keys(k, ai, p, keys);
        load_app_kind(k, ai, p, a);
        if (get_string(k, ai, p, "appid", &a->appid) == 0) {
            char q[300];
            snprintf(q, sizeof(q), "%s.appid", p);
            fail(k, q, "missing");
        }
        if (get_secret(k, ai, p, "secret", &a->secret, 0) == 0) {
            char q[300];
            snprintf(q, sizeof(q), "%s.secret", p);
            fail(k, q, "missing app secret (secret = { env = \"NAME\" } or { file = \"path\" })");
        }
        int d = get_table(k, ai, p, "domains");
        if (d) {
            size_t nd = lua_objlen(L, d);
            a->domains = calloc(nd ? nd : 1, sizeof(char *));
            for (size_t i = 1; i <= nd; i++) {
                lua_rawgeti(L, d, (int)i);
                if (lua_type(L, -1) == LUA_TSTRING)
                    a->domains[a->n_domains++] = strdup(lua_tostring(L, -1));
                else {
                    char q[300];
                    snprintf(q, sizeof(q), "%s.domains[%zu]", p, i);
                    fail(k, q, "must be a host name");
                }
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* A campaign without app = ... uses the config's only official account. */
static char *only_official_account(const struct config *c)
{
    const struct config_app *one = NULL;
    for (size_t i = 0; i < c->n_apps; i++) {
        if (c->apps[i].kind != APP_OFFICIAL_ACCOUNT)
            continue;
        if (one)
            return NULL;
        one = &c->apps[i];
    }
    return one ? strdup(one->name) : NULL;
}

static void load_campaigns(struct check *k, int top)
{
    lua_State *L = k->L;
    struct config *c = k->c;
    int t = get_table(k, top, "", "campaigns");
    if (!t)
        return;
    size_t n = table_size(L, t);
    c->campaigns = calloc(n ? n : 1, sizeof(*c->campaigns));
    static const char *const keys[] = {"app",
                                       "scope",
                                       "scope_override",
                                       "allow",
                                       "script",
                                       "force_popup",
                                       "force_snapshot",
                                       "lang",
                                       "ticket_ttl",
                                       "require_state_cookie",
                                       "website_app",
                                       "miniprogram_apps",
                                       "pc_inline",
                                       NULL};
    lua_pushnil(L);
    while (lua_next(L, t)) {
        char p[256], q[300];
        if (lua_type(L, -2) != LUA_TSTRING || !lua_istable(L, -1)) {
            fail(k, "campaigns", "each campaign is name = { app = ..., allow = { ... } }");
            lua_pop(L, 1);
            continue;
        }
        struct config_campaign *cp = &c->campaigns[c->n_campaigns++];
        cp->name = strdup(lua_tostring(L, -2));
        size_t nl = strlen(cp->name);
        if (nl == 0 || nl > 64 ||
            strspn(cp->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
                nl)
            fail(k, "campaigns", "campaign names are 1-64 letters, digits, _ or - (\"%.64s\")",
                 cp->name);
        cp->scope = strdup("snsapi_base");
        cp->lang = strdup("zh_CN");
        cp->ticket_ttl = 300;
        snprintf(p, sizeof(p), "campaigns.%s", cp->name);
        int ci = lua_gettop(L);
        check_keys(k, ci, p, keys);

        char *app = NULL;
        snprintf(q, sizeof(q), "%s.app", p);
        if (get_string(k, ci, p, "app", &app) == 0)
            app = only_official_account(c);
        if (!app)
            fail(k, q, "missing (the name of an entry of apps)");
        else
            cp->app = app_of_kind(k, q, app, APP_OFFICIAL_ACCOUNT, "the web login (app)");
        free(app);
        load_campaign_logins(k, ci, p, cp);

        if (get_string(k, ci, p, "scope", &cp->scope) == 1 &&
            strcmp(cp->scope, "snsapi_base") != 0 && strcmp(cp->scope, "snsapi_userinfo") != 0) {
            snprintf(q, sizeof(q), "%s.scope", p);
            fail(k, q, "must be \"snsapi_base\" or \"snsapi_userinfo\"");
        }
        get_bool(k, ci, p, "scope_override", &cp->scope_override);
        get_bool(k, ci, p, "force_popup", &cp->force_popup);
        get_bool(k, ci, p, "force_snapshot", &cp->force_snapshot);
        get_bool(k, ci, p, "require_state_cookie", &cp->require_state_cookie);
        if (get_string(k, ci, p, "lang", &cp->lang) == 1 && strcmp(cp->lang, "zh_CN") &&
            strcmp(cp->lang, "zh_TW") && strcmp(cp->lang, "en")) {
            snprintf(q, sizeof(q), "%s.lang", p);
            fail(k, q, "must be \"zh_CN\", \"zh_TW\" or \"en\"");
        }
        get_int(k, ci, p, "ticket_ttl", &cp->ticket_ttl, 10, 3600);

        int a = get_table(k, ci, p, "allow");
        snprintf(q, sizeof(q), "%s.allow", p);
        if (!a) {
            fail(k, q, "missing: the list of allowed return URL prefixes");
        } else {
            size_t na = lua_objlen(L, a);
            cp->allow = calloc(na ? na : 1, sizeof(char *));
            cp->allow_url = calloc(na ? na : 1, sizeof(struct url_http));
            cp->allow_serial = __atomic_add_fetch(&allow_serials, 1, __ATOMIC_RELAXED);
            if (na == 0)
                fail(k, q, "must list at least one URL prefix");
            for (size_t i = 1; i <= na && cp->allow && cp->allow_url; i++) {
                lua_rawgeti(L, a, (int)i);
                const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
                const char *why = s ? allow_entry(s, &cp->allow_url[cp->n_allow]) : "not a string";
                if (why) {
                    char r[320];
                    snprintf(r, sizeof(r), "%s[%zu]", q, i);
                    fail(k, r,
                         "must be an http(s) origin with an optional path, like "
                         "\"https://h5.example.com/spring/\" (%s)",
                         why);
                } else {
                    cp->allow[cp->n_allow++] = strdup(s);
                }
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }

        char *script = NULL;
        if (get_string(k, ci, p, "script", &script) == 1) {
            cp->script = resolve_path(c, script);
            snprintf(q, sizeof(q), "%s.script", p);
            check_script(k, q, cp->script);
        }
        free(script);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* options = { name = "string" | number | boolean } for a module route,
 * kept as strings and handed to the module's new(). */
static void load_route_options(struct check *k, int ri, const char *path, struct config_route *r)
{
    lua_State *L = k->L;
    char p[400];
    int o = get_table(k, ri, path, "options");
    if (!o)
        return;
    size_t n = table_size(L, o);
    r->opt_keys = calloc(n ? n : 1, sizeof(char *));
    r->opt_vals = calloc(n ? n : 1, sizeof(char *));
    lua_pushnil(L);
    while (lua_next(L, o)) {
        int t = lua_type(L, -1);
        if (lua_type(L, -2) != LUA_TSTRING ||
            (t != LUA_TSTRING && t != LUA_TNUMBER && t != LUA_TBOOLEAN)) {
            snprintf(p, sizeof(p), "%s.options", path);
            fail(k, p, "must map names to strings, numbers or booleans");
        } else {
            r->opt_keys[r->n_opts] = strdup(lua_tostring(L, -2));
            r->opt_vals[r->n_opts++] =
                strdup(t == LUA_TBOOLEAN ? (lua_toboolean(L, -1) ? "true" : "false")
                                         : lua_tostring(L, -1));
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static void load_routes(struct check *k, int top)
{
    lua_State *L = k->L;
    struct config *c = k->c;
    int t = get_table(k, top, "", "routes");
    if (!t)
        return;
    size_t n = table_size(L, t);
    c->routes = calloc(n ? n : 1, sizeof(*c->routes));
    lua_pushnil(L);
    while (lua_next(L, t)) {
        char p[300];
        const char *prefix = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        snprintf(p, sizeof(p), "routes[\"%.200s\"]", prefix ? prefix : "?");
        if (!prefix || prefix[0] != '/') {
            fail(k, "routes", "each route is [\"/prefix\"] = \"script.lua\"");
        } else if (lua_type(L, -1) == LUA_TSTRING) {
            struct config_route *r = &c->routes[c->n_routes++];
            r->prefix = strdup(prefix);
            r->script = resolve_path(c, lua_tostring(L, -1));
            check_script(k, p, r->script);
        } else if (lua_istable(L, -1)) {
            static const char *const keys[] = {"module", "options", NULL};
            int ri = lua_gettop(L);
            struct config_route *r = &c->routes[c->n_routes++];
            r->prefix = strdup(prefix);
            check_keys(k, ri, p, keys);
            if (get_string(k, ri, p, "module", &r->module) != 1)
                fail(k, p, "needs a script path or { module = \"name\" }");
            load_route_options(k, ri, p, r);
        } else {
            fail(k, p, "must be a script path, found a %s", luaL_typename(L, -1));
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static void set_defaults(struct config *c)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    c->listen = strdup("127.0.0.1:8080");
    c->workers = cores > 0 ? (int)(cores > 64 ? 64 : cores) : 1;
    c->store = strdup("memory");
    c->require_wechat_browser = 1;
    c->log_level = strdup("info");
    c->wechat_open_base = strdup("https://open.weixin.qq.com");
    c->wechat_api_base = strdup("https://api.weixin.qq.com");
    c->upstream_connect_timeout_ms = 2000;
    c->upstream_timeout_ms = 5000;
    c->lua_cpu_budget_ms = 200;
    c->lua_memory_mb = 64;
    c->limits.max_header_size = 16384;
    c->limits.max_uri_length = 4096;
    c->limits.max_body_size = 65536;
    c->limits.max_connections = 4096;
    c->limits.header_timeout_ms = 10000;
    c->limits.read_timeout_ms = 10000;
    c->limits.write_timeout_ms = 10000;
    c->limits.max_headers = 100;
    c->limits.keepalive_timeout_ms = 30000;
    c->limits.drain_timeout_ms = 10000;
    c->limits.watchdog_ms = 5000;
    c->limits.auth_per_minute = 600;
    c->limits.mp_login_per_minute = 600;
}

const char config_trusted_warning[] =
    "lua.trusted = true: scripts get the whole Lua library (io, os, ffi, jit, debug, "
    "bytecode); their CPU and memory budgets no longer hold and a script can read files, "
    "run programs, see the gateway's secrets or stop the process";

/* limits.trusted_proxies: the addresses of the reverse proxies in front of
 * the gateway, as IP literals; their X-Forwarded-For names the client for
 * the /auth rate limit. Anyone else's header is ignored. */
static void load_trusted_proxies(struct check *k, int t, struct config_limits *l)
{
    lua_State *L = k->L;
    lua_getfield(L, t, "trusted_proxies");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    if (!lua_istable(L, -1)) {
        fail(k, "limits.trusted_proxies", "must be a list of IP addresses");
        lua_pop(L, 1);
        return;
    }
    size_t n = lua_objlen(L, -1);
    l->trusted_proxies = calloc(n ? n : 1, sizeof(char *));
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, (int)i);
        const char *ip = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        unsigned char buf[16];
        char p[48];
        snprintf(p, sizeof(p), "limits.trusted_proxies[%zu]", i);
        if (!ip || (inet_pton(AF_INET, ip, buf) != 1 && inet_pton(AF_INET6, ip, buf) != 1))
            fail(k, p, "must be an IP address (no names, no ranges)");
        else
            l->trusted_proxies[l->n_trusted_proxies++] = strdup(ip);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* lua.env: the names of the environment variables scripts may read with
 * wx.getenv (the process's environment holds the gateway's own secrets). */
static void load_lua_env(struct check *k, int t)
{
    lua_State *L = k->L;
    struct config *c = k->c;
    lua_getfield(L, t, "env");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    if (!lua_istable(L, -1)) {
        fail(k, "lua.env", "must be a list of environment variable names");
        lua_pop(L, 1);
        return;
    }
    size_t n = lua_objlen(L, -1);
    c->lua_env = calloc(n ? n : 1, sizeof(char *));
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, (int)i);
        const char *name = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        size_t len = name ? strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                         "0123456789_")
                          : 0;
        char p[32];
        snprintf(p, sizeof(p), "lua.env[%zu]", i);
        if (!name || len == 0 || name[len] != '\0' || (name[0] >= '0' && name[0] <= '9'))
            fail(k, p, "must be an environment variable name (letters, digits, _)");
        else
            c->lua_env[c->n_lua_env++] = strdup(name);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* admin_listen: a second plain-HTTP listener for the operators' endpoints
 * (/metrics); with it, the public listener no longer serves them. */
static void load_admin_listen(struct check *k, int top)
{
    struct config *c = k->c;
    if (get_string(k, top, "", "admin_listen", &c->admin_listen) != 1)
        return;
    if (config_parse_listen(c->admin_listen, &c->admin_host, &c->admin_port) != 0)
        fail(k, "admin_listen", "bad listen address \"%s\" (expected host:port)", c->admin_listen);
    else if (c->admin_port == 0)
        fail(k, "admin_listen", "needs a port: operators and scrapers must know where it is");
    else if (c->admin_port == c->listen_port && c->listen_host &&
             strcmp(c->admin_host, c->listen_host) == 0)
        fail(k, "admin_listen", "must differ from listen (%s)", c->listen);
}

/* env_file: KEY=VALUE lines that { env = "NAME" } secrets are read from when
 * the process environment does not set NAME (env_file.h). Read before any
 * secret, and only for the load: the values stay in the secrets they fill. */
static void load_env_file(struct check *k, int top)
{
    char *file = NULL, why[512];
    if (get_string(k, top, "", "env_file", &file) != 1)
        return;
    char *full = resolve_path(k->c, file);
    if (!(k->env_file = env_file_read(full, why, sizeof(why))))
        fail(k, "env_file", "%s", why);
    free(full);
    free(file);
}

static void load_top(struct check *k, int top)
{
    static const char *const keys[] = {"listen",
                                       "admin_listen",
                                       "env_file",
                                       "public_url",
                                       "workers",
                                       "store",
                                       "log_level",
                                       "cookie_secret",
                                       "ticket_secret",
                                       "api_keys",
                                       "wechat",
                                       "limits",
                                       "lua",
                                       "apps",
                                       "campaigns",
                                       "default_campaign",
                                       "routes",
                                       "tls",
                                       "require_wechat_browser",
                                       "token_key",
                                       "dashboard",
                                       NULL};
    static const char *const tls_keys[] = {"listen", "cert", "key", NULL};
    static const char *const wechat_keys[] = {"open_base",          "api_base",   "ca_file",
                                              "connect_timeout_ms", "timeout_ms", NULL};
    static const char *const limit_keys[] = {
        "max_header_size",      "max_uri_length",   "max_body_size",       "max_connections",
        "header_timeout_ms",    "read_timeout_ms",  "write_timeout_ms",    "io_timeout_ms",
        "keepalive_timeout_ms", "drain_timeout_ms", "max_headers",         "watchdog_ms",
        "auth_per_minute",      "trusted_proxies",  "mp_login_per_minute", NULL};
    static const char *const lua_keys[] = {"cpu_budget_ms", "memory_mb", "trusted", "env", NULL};
    lua_State *L = k->L;
    struct config *c = k->c;

    check_keys(k, top, "", keys);
    if (get_string(k, top, "", "listen", &c->listen) >= 0 &&
        config_parse_listen(c->listen, &c->listen_host, &c->listen_port) != 0)
        fail(k, "listen", "bad listen address \"%s\" (expected host:port)", c->listen);
    load_admin_listen(k, top);
    load_env_file(k, top);
    if (get_string(k, top, "", "public_url", &c->public_url) == 1 &&
        strncmp(c->public_url, "http://", 7) && strncmp(c->public_url, "https://", 8))
        fail(k, "public_url", "must start with http:// or https://");
    get_int(k, top, "", "workers", &c->workers, 1, 256);
    get_bool(k, top, "", "require_wechat_browser", &c->require_wechat_browser);
    int redis_store = 0;
    if (get_string(k, top, "", "store", &c->store) == 1) {
        redis_store = strncmp(c->store, "redis://", 8) == 0 ||
                      strncmp(c->store, "redis-sentinel://", 17) == 0 ||
                      strncmp(c->store, "redis-cluster://", 16) == 0;
        if (!redis_store && strcmp(c->store, "memory") && strncmp(c->store, "memory?", 7))
            fail(k, "store",
                 "must be \"memory\" (or \"memory?max_mb=N\"), \"redis://host:port/db\", "
                 "\"redis-sentinel://h1:port,h2:port/MASTER/db\" or "
                 "\"redis-cluster://h1:port,h2:port/\"");
    }
    if (get_string(k, top, "", "log_level", &c->log_level) == 1 && strcmp(c->log_level, "debug") &&
        strcmp(c->log_level, "info") && strcmp(c->log_level, "warn") &&
        strcmp(c->log_level, "error"))
        fail(k, "log_level", "must be debug, info, warn or error");
    get_secret(k, top, "", "cookie_secret", &c->cookie_secret, 1);
    get_secret(k, top, "", "ticket_secret", &c->ticket_secret, 1);
    get_secret(k, top, "", "token_key", &c->token_key, 1);
    if (c->token_key && strlen(c->token_key) < 16)
        fail(k, "token_key", "too short: use at least 16 random characters");
    if (redis_store && !c->token_key)
        fail(k, "token_key", "required with a Redis store: users' tokens are encrypted at rest");
    if (c->cookie_secret && strlen(c->cookie_secret) < 16)
        fail(k, "cookie_secret", "too short: use at least 16 random characters");
    if (c->ticket_secret && strlen(c->ticket_secret) < 16)
        fail(k, "ticket_secret", "too short: use at least 16 random characters");

    int t = get_table(k, top, "", "api_keys");
    if (t) {
        size_t n = lua_objlen(L, t);
        c->api_keys = calloc(n ? n : 1, sizeof(char *));
        for (size_t i = 1; i <= n; i++) {
            char name[32], p[64];
            snprintf(name, sizeof(name), "%zu", i);
            lua_rawgeti(L, t, (int)i);
            lua_setfield(L, t, name); /* so get_secret can read it by name */
            snprintf(p, sizeof(p), "api_keys");
            char *v = NULL;
            if (get_secret(k, t, p, name, &v, 1) == 1) {
                if (strlen(v) < 16) {
                    snprintf(p, sizeof(p), "api_keys[%zu]", i);
                    fail(k, p, "too short: use at least 16 random characters");
                    free(v);
                } else {
                    c->api_keys[c->n_api_keys++] = v;
                }
            }
        }
        lua_pop(L, 1);
    }

    if ((t = get_table(k, top, "", "wechat"))) {
        check_keys(k, t, "wechat", wechat_keys);
        get_string(k, t, "wechat", "open_base", &c->wechat_open_base);
        get_string(k, t, "wechat", "api_base", &c->wechat_api_base);
        char *ca = NULL;
        if (get_string(k, t, "wechat", "ca_file", &ca) == 1) {
            c->wechat_ca_file = resolve_path(c, ca);
            if (access(c->wechat_ca_file, R_OK) != 0)
                fail(k, "wechat.ca_file", "cannot read %s: %s", c->wechat_ca_file, strerror(errno));
        }
        free(ca);
        get_int(k, t, "wechat", "connect_timeout_ms", &c->upstream_connect_timeout_ms, 10, 60000);
        get_int(k, t, "wechat", "timeout_ms", &c->upstream_timeout_ms, 10, 120000);
        lua_pop(L, 1);
    }
    if ((t = get_table(k, top, "", "limits"))) {
        struct config_limits *l = &c->limits;
        check_keys(k, t, "limits", limit_keys);
        get_size(k, t, "limits", "max_header_size", &l->max_header_size, 1024, 1 << 20);
        get_size(k, t, "limits", "max_uri_length", &l->max_uri_length, 256, 1 << 20);
        get_size(k, t, "limits", "max_body_size", &l->max_body_size, 0, 64 << 20);
        get_int(k, t, "limits", "max_connections", &l->max_connections, 1, 1000000);
        get_int(k, t, "limits", "header_timeout_ms", &l->header_timeout_ms, 100, 600000);
        /* io_timeout_ms (before read and write timeouts were separate) sets
         * both; the newer keys win where given. */
        int io = 0;
        if (get_int(k, t, "limits", "io_timeout_ms", &io, 100, 600000) == 1)
            l->read_timeout_ms = l->write_timeout_ms = io;
        get_int(k, t, "limits", "read_timeout_ms", &l->read_timeout_ms, 100, 600000);
        get_int(k, t, "limits", "write_timeout_ms", &l->write_timeout_ms, 100, 600000);
        get_int(k, t, "limits", "max_headers", &l->max_headers, 8, 10000);
        get_int(k, t, "limits", "keepalive_timeout_ms", &l->keepalive_timeout_ms, 100, 3600000);
        get_int(k, t, "limits", "drain_timeout_ms", &l->drain_timeout_ms, 0, 600000);
        get_int(k, t, "limits", "watchdog_ms", &l->watchdog_ms, 500, 600000);
        get_int(k, t, "limits", "auth_per_minute", &l->auth_per_minute, 0, 1000000000);
        get_int(k, t, "limits", "mp_login_per_minute", &l->mp_login_per_minute, 0, 1000000000);
        load_trusted_proxies(k, t, l);
        lua_pop(L, 1);
    }
    if ((t = get_table(k, top, "", "tls"))) {
        char *cert = NULL, *key = NULL;
        check_keys(k, t, "tls", tls_keys);
        if (get_string(k, t, "tls", "listen", &c->tls_listen) != 1)
            fail(k, "tls.listen", "missing: the host:port of the HTTPS listener");
        else if (config_parse_listen(c->tls_listen, &c->tls_host, &c->tls_port) != 0)
            fail(k, "tls.listen", "bad listen address \"%s\" (expected host:port)", c->tls_listen);
        if (get_string(k, t, "tls", "cert", &cert) != 1)
            fail(k, "tls.cert", "missing: the certificate chain file (PEM)");
        if (get_string(k, t, "tls", "key", &key) != 1)
            fail(k, "tls.key", "missing: the private key file (PEM)");
        if (cert && access((c->tls_cert = resolve_path(c, cert)), R_OK) != 0)
            fail(k, "tls.cert", "cannot read %s: %s", c->tls_cert, strerror(errno));
        if (key && access((c->tls_key = resolve_path(c, key)), R_OK) != 0)
            fail(k, "tls.key", "cannot read %s: %s", c->tls_key, strerror(errno));
        free(cert);
        free(key);
        lua_pop(L, 1);
    }
    if ((t = get_table(k, top, "", "dashboard"))) {
        static const char *const dashboard_keys[] = {"password", "counters", NULL};
        int counters = 1;
        check_keys(k, t, "dashboard", dashboard_keys);
        get_bool(k, t, "dashboard", "counters", &counters);
        c->dashboard_counters_off = !counters;
        if (get_secret(k, t, "dashboard", "password", &c->dashboard_password, 1) == 1 &&
            strlen(c->dashboard_password) < 8)
            fail(k, "dashboard.password", "too short: use at least 8 characters");
        lua_pop(L, 1);
    }
    if ((t = get_table(k, top, "", "lua"))) {
        check_keys(k, t, "lua", lua_keys);
        get_int(k, t, "lua", "cpu_budget_ms", &c->lua_cpu_budget_ms, 1, 60000);
        get_int(k, t, "lua", "memory_mb", &c->lua_memory_mb, 4, 4096);
        get_bool(k, t, "lua", "trusted", &c->lua_trusted);
        load_lua_env(k, t);
        lua_pop(L, 1);
    }
    load_apps(k, top);
    load_campaigns(k, top);
    if (get_string(k, top, "", "default_campaign", &c->default_campaign) == 1 &&
        !config_find_campaign(c, c->default_campaign))
        fail(k, "default_campaign", "no campaign named \"%s\"", c->default_campaign);
    load_routes(k, top);
    /* A feature that needs a key refuses to start without one. */
    if (c->n_campaigns) {
        if (!c->public_url)
            fail(k, "public_url", "required with campaigns: WeChat calls back PUBLIC_URL/callback");
        if (!c->cookie_secret)
            fail(k, "cookie_secret", "required with campaigns (binds a login to its browser)");
        if (!c->ticket_secret)
            fail(k, "ticket_secret", "required with campaigns (keys the login tickets)");
    }
}

static struct config *validate(lua_State *L, const char *path, char *err, size_t errsz)
{
    struct config *c = calloc(1, sizeof(*c));
    struct check k = {.L = L, .c = c, .err = err, .errsz = errsz};
    err[0] = '\0';
    c->refs = 1;
    c->path = strdup(path);
    char *slash = strrchr(c->path, '/');
    c->dir = slash ? strndup(c->path, (size_t)(slash - c->path)) : strdup(".");
    if (c->dir[0] == '\0') {
        free(c->dir);
        c->dir = strdup("/");
    }
    set_defaults(c);
    load_top(&k, lua_gettop(L));
    env_file_free(k.env_file);
    if (k.n_errors) {
        config_release(c);
        return NULL;
    }
    return c;
}

struct config *config_from_lua(void *vL, const char *path, char *err, size_t errsz)
{
    lua_State *L = vL;
    if (!lua_istable(L, -1)) {
        snprintf(err, errsz, "config: %s: must return a table", path);
        return NULL;
    }
    return validate(L, path, err, errsz);
}

struct config *config_load(const char *path, char *err, size_t errsz)
{
    char *abs = realpath(path, NULL);
    if (!abs) {
        snprintf(err, errsz, "config: %s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    lua_State *L = luaL_newstate();
    if (!L) {
        free(abs);
        snprintf(err, errsz, "config: out of memory");
        return NULL;
    }
    luaL_openlibs(L);
    /* no JIT compiler anywhere: the service runs with MemoryDenyWriteExecute */
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    struct config *c = NULL;
    if (luaL_loadfile(L, abs) != 0 || lua_pcall(L, 0, 1, 0) != 0) {
        const char *msg = lua_tostring(L, -1);
        snprintf(err, errsz, "config: %s", msg ? msg : "error (the error object is not a string)");
    } else {
        c = config_from_lua(L, abs, err, errsz);
    }
    lua_close(L);
    free(abs);
    return c;
}

struct config *config_retain(struct config *c)
{
    if (c)
        __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
    return c;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void config_release_cb(void *c) { config_release(c); }

void config_release(struct config *c)
{
    if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (size_t i = 0; i < c->n_apps; i++) {
        struct config_app *a = &c->apps[i];
        free(a->name);
        free(a->appid);
        if (a->secret)
            explicit_bzero(a->secret, strlen(a->secret));
        free(a->secret);
        free_strv(a->domains, a->n_domains);
    }
    free(c->apps);
    for (size_t i = 0; i < c->n_campaigns; i++) {
        struct config_campaign *cp = &c->campaigns[i];
        free(cp->name);
        free(cp->scope);
        free(cp->lang);
        free(cp->script);
        free_strv(cp->allow, cp->n_allow);
        free(cp->allow_url);
        free(cp->mini_apps);
        free(cp->pc_style);
        free(cp->pc_href);
    }
    free(c->campaigns);
    for (size_t i = 0; i < c->n_routes; i++) {
        free(c->routes[i].prefix);
        free(c->routes[i].script);
        free(c->routes[i].module);
        free_strv(c->routes[i].opt_keys, c->routes[i].n_opts);
        free_strv(c->routes[i].opt_vals, c->routes[i].n_opts);
    }
    free(c->routes);
    free_strv(c->api_keys, c->n_api_keys);
    free_strv(c->lua_env, c->n_lua_env);
    free_strv(c->limits.trusted_proxies, c->limits.n_trusted_proxies);
    free(c->path);
    free(c->dir);
    free(c->listen);
    free(c->listen_host);
    free(c->admin_listen);
    free(c->admin_host);
    free(c->tls_listen);
    free(c->tls_host);
    free(c->tls_cert);
    free(c->tls_key);
    free(c->public_url);
    free(c->store);
    free(c->log_level);
    free(c->cookie_secret);
    free(c->ticket_secret);
    free(c->token_key);
    free(c->dashboard_password);
    free(c->wechat_open_base);
    free(c->wechat_api_base);
    free(c->wechat_ca_file);
    free(c->default_campaign);
    free(c);
}

const struct config_app *config_find_app(const struct config *c, const char *name)
{
    for (size_t i = 0; i < c->n_apps; i++) {
        if (strcmp(c->apps[i].name, name) == 0 ||
            (c->apps[i].appid && strcmp(c->apps[i].appid, name) == 0))
            return &c->apps[i];
    }
    return NULL;
}

const struct config_campaign *config_campaign_of_mini_app(const struct config *c,
                                                          const struct config_app *app)
{
    for (size_t i = 0; i < c->n_campaigns; i++)
        for (size_t j = 0; j < c->campaigns[i].n_mini_apps; j++)
            if (c->campaigns[i].mini_apps[j] == app)
                return &c->campaigns[i];
    return NULL;
}

const struct config_campaign *config_find_campaign(const struct config *c, const char *name)
{
    for (size_t i = 0; i < c->n_campaigns; i++) {
        if (strcmp(c->campaigns[i].name, name) == 0)
            return &c->campaigns[i];
    }
    return NULL;
}

const char **config_secrets(const struct config *c, size_t *n)
{
    const char **v = calloc(c->n_apps + c->n_api_keys + 4, sizeof(char *));
    size_t k = 0;
    for (size_t i = 0; i < c->n_apps; i++)
        if (c->apps[i].secret)
            v[k++] = c->apps[i].secret;
    for (size_t i = 0; i < c->n_api_keys; i++)
        v[k++] = c->api_keys[i];
    if (c->cookie_secret)
        v[k++] = c->cookie_secret;
    if (c->ticket_secret)
        v[k++] = c->ticket_secret;
    if (c->token_key)
        v[k++] = c->token_key;
    if (c->dashboard_password)
        v[k++] = c->dashboard_password;
    *n = k;
    return v;
}
