/* wx.urlcore: split, escape, unescape and set_query from url.c, for
 * lua/wx/url.lua. */
#include "lua_url.h"

#include "url.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

/* split(url) → { scheme, user, password, host, port, path, query, fragment }
 * as curl_url reads it (any scheme; host lower-cased by the caller), or
 * nil, why. */
static int url_split_lua(lua_State *L)
{
    const char *url = luaL_checkstring(L, 1);
    struct url_parts p;
    const char *why = NULL;
    if (url_split(url, 1, &p, &why) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, why ? why : "invalid URL");
        return 2;
    }
    const struct {
        const char *name;
        const char *value;
    } f[] = {{"scheme", p.scheme}, {"user", p.user},         {"password", p.password},
             {"host", p.host},     {"port", p.port},         {"path", p.path},
             {"query", p.query},   {"fragment", p.fragment}, {"zone", p.zone}};
    lua_createtable(L, 0, 9);
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        if (f[i].value) {
            lua_pushstring(L, f[i].value);
            lua_setfield(L, -2, f[i].name);
        }
    }
    url_parts_free(&p);
    return 1;
}

/* escape(s): every byte but letters, digits and "-._~" as %XX. */
static int url_escape_lua(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    if (memchr(s, '\0', len)) { /* url_encode reads a C string: NUL bytes by hand */
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (size_t i = 0; i < len; i++) {
            char one[2] = {s[i], '\0'}, enc[4];
            if (s[i] == '\0')
                luaL_addlstring(&b, "%00", 3);
            else if (url_encode(enc, sizeof(enc), one) > 0)
                luaL_addstring(&b, enc);
        }
        luaL_pushresult(&b);
        return 1;
    }
    size_t cap = len * 3 + 1;
    char *out = malloc(cap);
    long n = out ? url_encode(out, cap, s) : -1;
    if (n < 0) {
        free(out);
        return luaL_error(L, "out of memory");
    }
    lua_pushlstring(L, out, (size_t)n);
    free(out);
    return 1;
}

/* unescape(s): %XX decoded; malformed escapes kept as written. */
static int url_unescape_lua(lua_State *L)
{
    size_t len, n;
    const char *s = luaL_checklstring(L, 1, &len);
    char *out = url_decode(s, len, &n);
    if (!out)
        return luaL_error(L, "out of memory");
    lua_pushlstring(L, out, n);
    free(out);
    return 1;
}

/* set_query(url, pairs): url_set_query (pairs already encoded). */
static int url_set_query_lua(lua_State *L)
{
    char *out = url_set_query(luaL_checkstring(L, 1), luaL_checkstring(L, 2));
    if (!out)
        return luaL_error(L, "out of memory");
    lua_pushstring(L, out);
    free(out);
    return 1;
}

int luaopen_wx_urlcore(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"split", url_split_lua},
        {"escape", url_escape_lua},
        {"unescape", url_unescape_lua},
        {"set_query", url_set_query_lua},
        {NULL, NULL},
    };
    lua_createtable(L, 0, 3);
    luaL_register(L, NULL, fns);
    return 1;
}
