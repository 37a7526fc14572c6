/* wx.http.request{method, url, headers, body, timeout}: async HTTP through
 * the worker's fetch loop. Returns res {status, headers, body[, json]} or
 * nil, err ("timeout", "connect", "tls", "too_large", "closed", ...). */
#include "config.h"
#include "fetch.h"
#include "lua_runtime.h"
#include "server.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_HEADERS 64

struct http_op {
    struct wxlua_task *t;
    struct fetch *f;
};

static void http_cancel(void *arg)
{
    struct http_op *op = arg;
    fetch_cancel(op->f);
    free(op);
}

static int is_json(const struct fetch_response *res)
{
    for (size_t i = 0; i < res->n_headers; i++) {
        if (strcmp(res->headers[i].name, "content-type") == 0)
            return strstr(res->headers[i].value, "json") != NULL;
    }
    /* WeChat answers JSON as text/plain: sniff an object. */
    return res->body_len > 0 && res->body[0] == '{';
}

/* Sets res.json on the table on top of co when the body decodes. The call
 * runs on the VM's main thread: functions cannot be called on a suspended
 * coroutine's stack, only values pushed and moved onto it. */
static void push_json_field(struct wxlua_task *t, lua_State *co, const struct fetch_response *res)
{
    lua_State *L = wxlua_vm_state(wxlua_task_vm(t));
    int top = lua_gettop(L);
    lua_getglobal(L, "require");
    lua_pushstring(L, "cjson.safe");
    if (lua_pcall(L, 1, 1, 0) != 0) {
        lua_pop(L, 1);
        return;
    }
    lua_getfield(L, -1, "decode");
    lua_remove(L, -2);
    lua_pushlstring(L, res->body, res->body_len);
    if (lua_pcall(L, 1, 1, 0) == 0 && !lua_isnil(L, -1)) {
        lua_xmove(L, co, 1);
        lua_setfield(co, -2, "json");
    }
    lua_settop(L, top);
}

static void http_done(const struct fetch_response *res, void *arg)
{
    struct http_op *op = arg;
    struct wxlua_task *t = op->t;
    lua_State *co = wxlua_task_thread(t);
    free(op);
    if (!res->ok) {
        lua_pushnil(co);
        lua_pushstring(co, res->error ? res->error : "error");
        wxlua_task_resume(t, 2);
        return;
    }
    lua_createtable(co, 0, 4);
    lua_pushinteger(co, (lua_Integer)res->status);
    lua_setfield(co, -2, "status");
    lua_pushlstring(co, res->body ? res->body : "", res->body_len);
    lua_setfield(co, -2, "body");
    lua_createtable(co, 0, (int)res->n_headers);
    for (size_t i = 0; i < res->n_headers; i++) {
        lua_pushstring(co, res->headers[i].value);
        lua_setfield(co, -2, res->headers[i].name);
    }
    lua_setfield(co, -2, "headers");
    if (is_json(res))
        push_json_field(t, co, res);
    wxlua_task_resume(t, 1);
}

static int http_request(lua_State *L)
{
    struct wxlua_task *t = wxlua_task_current(L, "wx.http.request");
    luaL_checktype(L, 1, LUA_TTABLE);
    struct fetch_request req = {0};
    struct fetch_header headers[MAX_HEADERS];
    struct worker *w = wxlua_vm_worker(wxlua_task_vm(t));

    lua_getfield(L, 1, "url");
    req.url = lua_tostring(L, -1);
    if (!req.url || (strncasecmp(req.url, "http://", 7) && strncasecmp(req.url, "https://", 8)))
        return luaL_error(L, "wx.http.request: url must be an http:// or https:// URL");
    lua_getfield(L, 1, "method");
    req.method = lua_isnil(L, -1) ? "GET" : lua_tostring(L, -1);
    if (!req.method || strspn(req.method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(req.method))
        return luaL_error(L, "wx.http.request: method must be an upper-case word");
    lua_getfield(L, 1, "body");
    if (!lua_isnil(L, -1)) {
        if (!lua_isstring(L, -1))
            return luaL_error(L, "wx.http.request: body must be a string");
        req.body = lua_tolstring(L, -1, &req.body_len);
    }
    lua_getfield(L, 1, "timeout");
    if (!lua_isnil(L, -1)) {
        lua_Number s = lua_tonumber(L, -1);
        if (!(s > 0 && s <= 120))
            return luaL_error(L, "wx.http.request: timeout must be from 0 to 120 seconds");
        req.timeout_ms = (long)(s * 1000);
    }
    lua_getfield(L, 1, "headers");
    if (lua_istable(L, -1)) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (req.n_headers == MAX_HEADERS || lua_type(L, -2) != LUA_TSTRING ||
                !lua_isstring(L, -1))
                return luaL_error(L,
                                  "wx.http.request: headers must be at most %d name = "
                                  "\"value\" strings",
                                  MAX_HEADERS);
            const char *name = lua_tostring(L, -2), *value = lua_tostring(L, -1);
            if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
                return luaL_error(L, "wx.http.request: header %s contains CR, LF or ':'", name);
            headers[req.n_headers].name = name;
            headers[req.n_headers++].value = value;
            lua_pop(L, 1); /* the key and value stay referenced by the table */
        }
        req.headers = headers;
    } else if (!lua_isnil(L, -1)) {
        return luaL_error(L, "wx.http.request: headers must be a table");
    }
    req.connect_timeout_ms = w->cfg->upstream_connect_timeout_ms;
    if (!req.timeout_ms)
        req.timeout_ms = w->cfg->upstream_timeout_ms;

    struct http_op *op = calloc(1, sizeof(*op));
    if (!op)
        return luaL_error(L, "out of memory");
    op->t = t;
    op->f = fetch_start(w->fetch, &req, http_done, op);
    if (!op->f) {
        free(op);
        lua_pushnil(L);
        lua_pushstring(L, "bad request");
        return 2;
    }
    wxlua_task_wait(t, http_cancel, op);
    return lua_yield(L, 0);
}

void wxlua_http_inject(lua_State *L)
{
    lua_pushcfunction(L, http_request);
    lua_setfield(L, -2, "request");
}
