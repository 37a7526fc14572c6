/* jansson values as Lua tables (see lua_json.h). */
#include "lua_json.h"

#define MAX_DEPTH 32

static void push(lua_State *L, const json_t *v, int depth)
{
    if (!v || depth > MAX_DEPTH || !lua_checkstack(L, 3)) {
        lua_pushnil(L);
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *value;
        lua_createtable(L, 0, (int)json_object_size(v));
        json_object_foreach((json_t *)v, key, value)
        {
            push(L, value, depth + 1);
            lua_setfield(L, -2, key);
        }
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *value;
        lua_createtable(L, (int)json_array_size(v), 0);
        json_array_foreach(v, i, value)
        {
            push(L, value, depth + 1);
            lua_rawseti(L, -2, (int)i + 1);
        }
        break;
    }
    case JSON_STRING: lua_pushlstring(L, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER: lua_pushnumber(L, (lua_Number)json_integer_value(v)); break;
    case JSON_REAL: lua_pushnumber(L, json_real_value(v)); break;
    case JSON_TRUE: lua_pushboolean(L, 1); break;
    case JSON_FALSE: lua_pushboolean(L, 0); break;
    case JSON_NULL: lua_pushlightuserdata(L, NULL); break;
    }
}

void wxlua_push_json(lua_State *L, const json_t *v) { push(L, v, 0); }
