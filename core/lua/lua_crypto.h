/* The "wx.crypto" Lua module: C crypto primitives (HMAC, digests, hex,
 * base64url, randomness, constant-time equality) for the Lua helpers. */
#ifndef WX_LUA_CRYPTO_H
#define WX_LUA_CRYPTO_H
#include <lua.h>

int luaopen_wx_crypto(lua_State *L);

#endif
