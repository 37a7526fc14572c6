/* wx.jssdk(app, url): the wx.config parameters {appId, timestamp, nonceStr,
 * signature} for a page, or nil, err. app is the app's name or appid. Waits
 * (without blocking the worker) while the jsapi ticket is fetched. */
#include "config.h"
#include "jssdk.h"
#include "lua_runtime.h"
#include "server.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

struct jssdk_call {
    struct wxlua_task *t;
    lua_State *L; /* where results go */
    const struct config_app *app;
    char *url;
    struct jssdk_op *op;
    int waiting; /* the task yielded */
    int nres;
};

static int push_result(lua_State *L, const struct config_app *app, const char *url,
                       const char *ticket, const char *err)
{
    struct jssdk_sig sig;
    if (ticket && jssdk_sign(ticket, url, &sig) != 0) {
        ticket = NULL;
        err = "no random nonce";
    }
    if (!ticket) {
        lua_pushnil(L);
        lua_pushstring(L, err ? err : "error");
        return 2;
    }
    lua_createtable(L, 0, 4);
    lua_pushstring(L, app->appid);
    lua_setfield(L, -2, "appId");
    lua_pushnumber(L, (lua_Number)strtoll(sig.timestamp, NULL, 10));
    lua_setfield(L, -2, "timestamp");
    lua_pushstring(L, sig.nonce);
    lua_setfield(L, -2, "nonceStr");
    lua_pushstring(L, sig.signature);
    lua_setfield(L, -2, "signature");
    return 1;
}

static void on_ticket(const char *ticket, const char *err, void *arg)
{
    struct jssdk_call *c = arg;
    if (!c->waiting) { /* answered inside jssdk_ticket(): results go on the running stack */
        c->nres = push_result(c->L, c->app, c->url, ticket, err);
        return;
    }
    struct wxlua_task *t = c->t;
    int n = push_result(wxlua_task_thread(t), c->app, c->url, ticket, err);
    free(c->url);
    free(c);
    wxlua_task_resume(t, n);
}

static void cancel(void *arg)
{
    struct jssdk_call *c = arg;
    jssdk_cancel(c->op);
    free(c->url);
    free(c);
}

static int wx_jssdk(lua_State *L)
{
    struct wxlua_task *t = wxlua_task_current(L, "wx.jssdk");
    const char *name = luaL_checkstring(L, 1);
    const char *url = luaL_checkstring(L, 2);
    luaL_argcheck(L, strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0, 2,
                  "must be the page's http(s) URL");
    struct worker *w = wxlua_vm_worker(wxlua_task_vm(t));
    const struct config_app *app = config_find_app(w->cfg, name);
    if (!app) {
        lua_pushnil(L);
        lua_pushstring(L, "unknown app");
        return 2;
    }
    struct jssdk_call *c = calloc(1, sizeof(*c));
    if (!c || !(c->url = strdup(url))) {
        free(c);
        return luaL_error(L, "out of memory");
    }
    c->t = t;
    c->L = L;
    c->app = app;
    c->op = jssdk_ticket(w, app, on_ticket, c);
    if (!c->op) { /* done already */
        int n = c->nres;
        free(c->url);
        free(c);
        return n;
    }
    c->waiting = 1;
    wxlua_task_wait(t, cancel, c);
    return lua_yield(L, 0);
}

void wxlua_jssdk_inject(lua_State *L)
{
    lua_pushcfunction(L, wx_jssdk);
    lua_setfield(L, -2, "jssdk");
}
