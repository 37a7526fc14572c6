/* The "wx.urlcore" Lua module: the URL module (url.c, over curl_url) for
 * lua/wx/url.lua, so that scripts and the gateway read a URL the same way. */
#ifndef WX_LUA_URL_H
#define WX_LUA_URL_H
#include <lua.h>

int luaopen_wx_urlcore(lua_State *L);

#endif
