/* The "wx.crypto" Lua module: thin bindings over crypto.h. Digests return raw
 * bytes (wrap with hex or base64url_encode). Misuse raises; an expected
 * failure (bad base64url, no randomness) returns nil, err. */
#include "lua_crypto.h"

#include <lauxlib.h>

#include "crypto.h"

#define WX_CRYPTO_MAX_RANDOM 4096

static int l_hmac_sha256(lua_State *L)
{
    size_t klen, mlen;
    const char *key = luaL_checklstring(L, 1, &klen);
    const char *msg = luaL_checklstring(L, 2, &mlen);
    unsigned char mac[32];

    crypto_hmac_sha256(key, klen, msg, mlen, mac);
    lua_pushlstring(L, (const char *)mac, sizeof(mac));
    return 1;
}

/* A digest of argument 1 with fn, as len raw bytes. */
static int push_digest(lua_State *L, void (*fn)(const void *, size_t, unsigned char *), size_t len)
{
    size_t slen;
    const char *s = luaL_checklstring(L, 1, &slen);
    unsigned char md[32];

    fn(s, slen, md);
    lua_pushlstring(L, (const char *)md, len);
    return 1;
}

static int l_sha1(lua_State *L) { return push_digest(L, crypto_sha1, 20); }

static int l_sha256(lua_State *L) { return push_digest(L, crypto_sha256, 32); }

/* Scratch buffers are userdata so they are collected even if a later push
 * raises out of memory. */
static int l_hex(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    char *out = lua_newuserdata(L, 2 * len + 1);

    crypto_hex((const unsigned char *)s, len, out);
    lua_pushlstring(L, out, 2 * len);
    return 1;
}

static int l_base64url_encode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    char *out = lua_newuserdata(L, 4 * ((len + 2) / 3) + 1);
    size_t n = crypto_base64url_encode((const unsigned char *)s, len, out);

    lua_pushlstring(L, out, n);
    return 1;
}

static int l_base64url_decode(lua_State *L)
{
    size_t len, n;
    const char *s = luaL_checklstring(L, 1, &len);
    unsigned char *out = lua_newuserdata(L, 3 * len / 4 + 3);

    if (crypto_base64url_decode(s, len, out, &n) != 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "invalid base64url");
        return 2;
    }
    lua_pushlstring(L, (const char *)out, n);
    return 1;
}

static size_t check_count(lua_State *L, int arg)
{
    lua_Integer n = luaL_checkinteger(L, arg);

    luaL_argcheck(L, n >= 1 && n <= WX_CRYPTO_MAX_RANDOM && (lua_Number)n == lua_tonumber(L, arg),
                  arg, "expected an integer in 1..4096");
    return (size_t)n;
}

static int push_no_randomness(lua_State *L)
{
    lua_pushnil(L);
    lua_pushliteral(L, "no randomness available");
    return 2;
}

static int l_random_bytes(lua_State *L)
{
    size_t n = check_count(L, 1);
    unsigned char buf[WX_CRYPTO_MAX_RANDOM];

    if (crypto_random_bytes(buf, n) != 0)
        return push_no_randomness(L);
    lua_pushlstring(L, (const char *)buf, n);
    return 1;
}

static int l_random_hex(lua_State *L)
{
    size_t n = check_count(L, 1);
    unsigned char buf[WX_CRYPTO_MAX_RANDOM];
    char hex[2 * WX_CRYPTO_MAX_RANDOM + 1];

    if (crypto_random_bytes(buf, n) != 0)
        return push_no_randomness(L);
    crypto_hex(buf, n, hex);
    lua_pushlstring(L, hex, 2 * n);
    return 1;
}

static int l_random_base62(lua_State *L)
{
    size_t n = check_count(L, 1);
    char buf[WX_CRYPTO_MAX_RANDOM + 1];

    if (crypto_random_base62(buf, n) != 0)
        return push_no_randomness(L);
    lua_pushlstring(L, buf, n);
    return 1;
}

static int l_equal(lua_State *L)
{
    size_t alen, blen;
    const char *a = luaL_checklstring(L, 1, &alen);
    const char *b = luaL_checklstring(L, 2, &blen);

    lua_pushboolean(L, crypto_equal(a, alen, b, blen));
    return 1;
}

static const luaL_Reg wx_crypto_funcs[] = {
    {"hmac_sha256", l_hmac_sha256},
    {"sha1", l_sha1},
    {"sha256", l_sha256},
    {"hex", l_hex},
    {"base64url_encode", l_base64url_encode},
    {"base64url_decode", l_base64url_decode},
    {"random_bytes", l_random_bytes},
    {"random_hex", l_random_hex},
    {"random_base62", l_random_base62},
    {"equal", l_equal},
    {NULL, NULL},
};

int luaopen_wx_crypto(lua_State *L)
{
    lua_createtable(L, 0, sizeof(wx_crypto_funcs) / sizeof(wx_crypto_funcs[0]) - 1);
    luaL_register(L, NULL, wx_crypto_funcs);
    return 1;
}
