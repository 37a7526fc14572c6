/* Lua routes: a path prefix served by a script's function(req), which
 * returns status, body and headers. */
#include "lua_internal.h"

#include "config.h"
#include "http.h"
#include "log.h"
#include "page.h"

#include <lauxlib.h>
#include <string.h>
#include <strings.h>

static void add_response_headers(lua_State *L, int idx, struct http_req *r, int *bad)
{
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
            if (http_req_add_header(r, lua_tostring(L, -2), lua_tostring(L, -1)) != 0)
                *bad = 1;
        } else if (lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1)) {
            size_t n = lua_objlen(L, -1);
            for (size_t i = 1; i <= n; i++) {
                lua_rawgeti(L, -1, (int)i);
                if (!lua_isstring(L, -1) ||
                    http_req_add_header(r, lua_tostring(L, -3), lua_tostring(L, -1)) != 0)
                    *bad = 1;
                lua_pop(L, 1);
            }
        } else {
            *bad = 1;
        }
        lua_pop(L, 1);
    }
}

/* A route returned `status, body[, headers]`; status 0 means "write body as
 * raw bytes and close the connection" (used for fault injection). */
void wxlua_route_respond(struct wxlua_task *t, int ok, int nres)
{
    lua_State *co = t->co;
    struct http_req *r = t->r;
    if (!ok) {
        page_error(r, 500, "服务器内部错误", "Internal server error.", NULL);
        return;
    }
    int status = nres >= 1 && lua_type(co, 1) == LUA_TNUMBER ? (int)lua_tointeger(co, 1) : -1;
    size_t len = 0;
    const char *body =
        nres >= 2 && lua_type(co, 2) == LUA_TSTRING ? lua_tolstring(co, 2, &len) : NULL;
    int bad = (status != 0 && (status < 100 || status > 599)) ||
              (nres >= 2 && !body && !lua_isnil(co, 2)) ||
              (nres >= 3 && !lua_istable(co, 3) && !lua_isnil(co, 3));
    if (!bad && status == 0) {
        http_reply_raw_and_close(r, body, len);
        return;
    }
    if (!bad && nres >= 3 && lua_istable(co, 3))
        add_response_headers(co, 3, r, &bad);
    if (bad) {
        log_msg(LOG_ERROR, http_req_id(r),
                "lua route %s: must return status (100-599), body "
                "string and an optional headers table of strings",
                http_req_path(r));
        page_error(r, 500, "服务器内部错误", "Internal server error.", NULL);
        return;
    }
    int has_ctype = 0;
    if (nres >= 3 && lua_istable(co, 3)) {
        lua_pushnil(co);
        while (lua_next(co, 3)) {
            if (lua_type(co, -2) == LUA_TSTRING &&
                strcasecmp(lua_tostring(co, -2), "content-type") == 0)
                has_ctype = 1;
            lua_pop(co, 1);
        }
    }
    http_reply(r, status, has_ctype ? NULL : "text/html; charset=utf-8", body, len);
}

static int route_matches(const char *prefix, const char *path)
{
    size_t n = strlen(prefix);
    if (strncmp(prefix, path, n) != 0)
        return 0;
    return prefix[n - 1] == '/' || path[n] == '\0' || path[n] == '/';
}

int wxlua_vm_route(struct wxlua_vm *vm, struct http_req *r)
{
    const struct config *c = vm->cfg;
    const char *path = http_req_path(r);
    int best = -1;
    size_t best_len = 0;
    for (size_t i = 0; i < c->n_routes; i++) {
        size_t n = strlen(c->routes[i].prefix);
        if (n > best_len && route_matches(c->routes[i].prefix, path)) {
            best = (int)i;
            best_len = n;
        }
    }
    if (best < 0)
        return 0;
    struct wxlua_task *t = wxlua_task_new(vm, r);
    if (!t) {
        page_busy(r);
        return 1;
    }
    t->is_route = 1;
    t->what = "lua route";
    t->of = c->routes[best].prefix;
    t->file = c->routes[best].script ? c->routes[best].script : c->routes[best].module;
    http_req_on_abort(r, wxlua_task_abort, t);
    lua_rawgeti(t->co, LUA_REGISTRYINDEX, vm->route_refs[best]);
    wxlua_push_task_request(t);
    wxlua_task_run(t, 1);
    return 1;
}
