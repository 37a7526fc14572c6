/* Protocol JSON (jansson) handed to Lua hooks as tables. The protocol path
 * keeps WeChat's replies as jansson values; a Lua table is built only when a
 * hook runs. */
#ifndef WX_LUA_JSON_H
#define WX_LUA_JSON_H
#include <jansson.h>
#include <lua.h>

/* Pushes v as a Lua value: objects and arrays as tables, null as cjson.null
 * (a NULL light userdata), integers and reals as numbers. Nesting deeper than
 * a protocol reply needs (32 levels) is cut to nil. */
void wxlua_push_json(lua_State *L, const json_t *v);

#endif
