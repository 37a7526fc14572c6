/* Lua patterns under a budget: string.find, match, gmatch and gsub with the
 * semantics of LuaJIT's, run by the project's own matcher, which counts its
 * steps and asks the runtime every few thousand steps whether the running
 * script is still within its CPU budget. LuaJIT's matcher runs in C where no
 * count hook fires, so a pathological pattern such as
 * ("a"):rep(100):find(("a-"):rep(5) .. "b") would run for minutes. */
#ifndef WX_LUA_PATTERN_H
#define WX_LUA_PATTERN_H
#include <lua.h>

/* Returns non-zero when the running script is over its budget; the matcher
 * then raises "cpu budget exceeded". */
typedef int (*wxlua_budget_fn)(lua_State *L);

/* Replaces find, match, gmatch and gsub in the table on top of L (the string
 * library) with budgeted ones calling over_budget (NULL: never over). */
void wxlua_pattern_inject(lua_State *L, wxlua_budget_fn over_budget);

#endif
