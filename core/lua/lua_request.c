/* The request object a script receives: method, path, uri, query, headers
 * (lower-case names), cookies, body, client, scheme and id. */
#include "lua_internal.h"

#include "http.h"

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

void wxlua_push_request(lua_State *L, struct http_req *r)
{
    lua_createtable(L, 0, 12);
    if (!r)
        return;
    lua_pushstring(L, http_req_method(r));
    lua_setfield(L, -2, "method");
    lua_pushstring(L, http_req_path(r));
    lua_setfield(L, -2, "path");
    lua_pushstring(L, http_req_uri(r));
    lua_setfield(L, -2, "uri");
    lua_pushstring(L, http_req_query_string(r));
    lua_setfield(L, -2, "query_string");
    lua_pushstring(L, http_req_id(r));
    lua_setfield(L, -2, "id");
    lua_pushstring(L, http_req_client(r));
    lua_setfield(L, -2, "client");
    lua_pushstring(L, http_req_is_tls(r) ? "https" : "http");
    lua_setfield(L, -2, "scheme");
    size_t blen;
    const char *body = http_req_body(r, &blen);
    if (body) {
        lua_pushlstring(L, body, blen);
        lua_setfield(L, -2, "body");
    }
    lua_newtable(L);
    http_req_foreach_arg(r, set_first, L);
    lua_setfield(L, -2, "query");
    lua_newtable(L);
    http_req_foreach_header(r, set_lower, L);
    lua_setfield(L, -2, "headers");
    lua_newtable(L);
    http_req_foreach_cookie(r, set_first, L);
    lua_setfield(L, -2, "cookies");
}
