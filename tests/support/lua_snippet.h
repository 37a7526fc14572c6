/* Runs Lua snippets for the tests of the Lua helpers (lua/wx/) in a
 * fresh LuaJIT state with the C modules they build on preloaded and the
 * globals read-only, as in the runtime. Included by one test file each. */
#ifndef WX_TEST_LUA_SNIPPET_H
#define WX_TEST_LUA_SNIPPET_H
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <lua-cjson.h>

#include "lua_crypto.h"
#include "lua_url.h"

#ifndef WX_SOURCE_DIR
#define WX_SOURCE_DIR "."
#endif

/* Helpers for the snippets, then globals are frozen before any module loads. */
static const char prelude[] =
    "function eq(got, want, what)\n"
    "  if got ~= want then\n"
    "    error(string.format('%s: expected %q, got %q', what or 'value', tostring(want),\n"
    "                        tostring(got)), 2)\n"
    "  end\n"
    "end\n"
    "function raises(f, pattern, ...)\n"
    "  local ok, err = pcall(f, ...)\n"
    "  if ok then error('expected an error matching ' .. pattern, 2) end\n"
    "  if not tostring(err):find(pattern) then\n"
    "    error('error ' .. tostring(err) .. ' does not match ' .. pattern, 2)\n"
    "  end\n"
    "end\n"
    "setmetatable(_G, {__newindex = function(_, k) error('global write: ' .. tostring(k), 2) "
    "end})\n";

static void run_lua(const char *name, const char *code)
{
    lua_State *L = luaL_newstate();

    assert_non_null(L);
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_wx_crypto);
    lua_setfield(L, -2, "wx.crypto");
    lua_pushcfunction(L, luaopen_wx_urlcore);
    lua_setfield(L, -2, "wx.urlcore");
    lua_pushcfunction(L, luaopen_cjson);
    lua_setfield(L, -2, "cjson");
    lua_pop(L, 1);
    lua_pushliteral(L, WX_SOURCE_DIR "/lua/?.lua");
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);

    if (luaL_loadbuffer(L, prelude, sizeof(prelude) - 1, "=prelude") != 0 ||
        lua_pcall(L, 0, 0, 0) != 0 || luaL_loadbuffer(L, code, strlen(code), name) != 0 ||
        lua_pcall(L, 0, 0, 0) != 0) {
        fprintf(stderr, "%s: %s\n", name, lua_tostring(L, -1));
        lua_close(L);
        fail_msg("Lua snippet %s failed", name);
    }
    lua_close(L);
}

#define RUN(code) run_lua("=" __FILE__ ":" #code, code)

#endif
