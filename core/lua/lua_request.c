/* The request object a script receives: method, path, uri, query_string,
 * query, headers (lower-case names), cookies, body, client, scheme and id.
 *
 * As OpenResty's ngx.req, it is read from the request on first use: the
 * object is an empty table whose metatable's __index builds the field asked
 * for and keeps it in the table, so a route that reads one header pays for
 * one header, not for every header, cookie and argument of the request.
 * The table holds nothing of its own: the running task knows which table it
 * handed out (t->req_table), so a read through any other table (one a
 * script kept from an earlier request) is refused with an error instead of
 * touching memory that is gone. A kept table stays alive, so its address
 * cannot be reused by the current task's table. */
#include "lua_internal.h"

#include "http.h"

#include <lauxlib.h>
#include <string.h>

static void set_lower(const char *name, const char *value, void *arg)
{
    lua_State *L = arg;
    char key[128];
    size_t i = 0;
    for (; name[i] && i < sizeof(key) - 1; i++)
        key[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
    key[i] = '\0';
    lua_getfield(L, -1, key);
    int present = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (!present) {
        lua_pushstring(L, value);
        lua_setfield(L, -2, key);
    }
}

static void set_first(const char *name, const char *value, void *arg)
{
    lua_State *L = arg;
    lua_getfield(L, -1, name);
    int present = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (!present) {
        lua_pushstring(L, value);
        lua_setfield(L, -2, name);
    }
}

/* Pushes field k of r; 0 (nothing pushed) when k names no field. */
static int push_field(lua_State *L, struct http_req *r, const char *k)
{
    switch (k[0]) {
    case 'b':
        if (strcmp(k, "body") == 0) {
            size_t len;
            const char *body = http_req_body(r, &len);
            if (!body)
                return 0;
            lua_pushlstring(L, body, len);
            return 1;
        }
        break;
    case 'c':
        if (strcmp(k, "client") == 0) {
            lua_pushstring(L, http_req_client(r));
            return 1;
        }
        if (strcmp(k, "cookies") == 0) {
            lua_newtable(L);
            http_req_foreach_cookie(r, set_first, L);
            return 1;
        }
        break;
    case 'h':
        if (strcmp(k, "headers") == 0) {
            lua_newtable(L);
            http_req_foreach_header(r, set_lower, L);
            return 1;
        }
        break;
    case 'i':
        if (strcmp(k, "id") == 0) {
            lua_pushstring(L, http_req_id(r));
            return 1;
        }
        break;
    case 'm':
        if (strcmp(k, "method") == 0) {
            lua_pushstring(L, http_req_method(r));
            return 1;
        }
        break;
    case 'p':
        if (strcmp(k, "path") == 0) {
            lua_pushstring(L, http_req_path(r));
            return 1;
        }
        break;
    case 'q':
        if (strcmp(k, "query") == 0) {
            lua_newtable(L);
            http_req_foreach_arg(r, set_first, L);
            return 1;
        }
        if (strcmp(k, "query_string") == 0) {
            lua_pushstring(L, http_req_query_string(r));
            return 1;
        }
        break;
    case 's':
        if (strcmp(k, "scheme") == 0) {
            lua_pushstring(L, http_req_is_tls(r) ? "https" : "http");
            return 1;
        }
        break;
    case 'u':
        if (strcmp(k, "uri") == 0) {
            lua_pushstring(L, http_req_uri(r));
            return 1;
        }
        break;
    }
    return 0;
}

/* __index(req, k): builds the field, keeps it in req, returns it. */
static int req_index(lua_State *L)
{
    if (lua_type(L, 2) != LUA_TSTRING)
        return 0;
    struct wxlua_vm *vm = wxlua_vm_of(L);
    struct wxlua_task *t = vm->current;
    if (!t || !t->r || t->req_table != lua_topointer(L, 1))
        return luaL_error(L,
                          "req.%s: this request object belongs to a request that has "
                          "ended (keep what you need from it, not the object)",
                          lua_tostring(L, 2));
    if (!push_field(L, t->r, lua_tostring(L, 2)))
        return 0;
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);
    return 1;
}

void wxlua_request_init(lua_State *L, struct wxlua_vm *vm)
{
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, req_index);
    lua_setfield(L, -2, "__index");
    vm->req_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

void wxlua_push_task_request(struct wxlua_task *t)
{
    lua_State *L = t->co;
    lua_createtable(L, 0, 0);
    if (!t->r)
        return;
    t->req_table = lua_topointer(L, -1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->vm->req_mt_ref);
    lua_setmetatable(L, -2);
}
