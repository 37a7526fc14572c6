/* wx.log, wx.now, wx.random, wx.sleep: the small parts of the wx API that
 * are not an I/O area of their own. */
#include "config.h"
#include "log.h"
#include "lua_runtime.h"
#include "server.h"

#include "crypto.h"

#include <event2/event.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int wx_log(lua_State *L)
{
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    int level = luaL_checkoption(L, 1, NULL, levels);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    int n = lua_gettop(L);
    lua_getglobal(L, "tostring");
    for (int i = 2; i <= n; i++) {
        lua_pushvalue(L, -1);
        lua_pushvalue(L, i);
        lua_call(L, 1, 1);
        if (i > 2)
            luaL_addchar(&b, ' ');
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    log_msg((enum log_level)level, wxlua_current_rid(L), "lua: %s", lua_tostring(L, -1));
    return 0;
}

/* wx.getenv(name): an environment variable the config lists in lua.env;
 * asking for another is misuse (the environment holds the gateway's own
 * secrets). */
static int wx_getenv(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const struct config *c = wxlua_vm_config(L);
    for (size_t i = 0; c && i < c->n_lua_env; i++) {
        if (strcmp(c->lua_env[i], name) == 0) {
            const char *v = getenv(name);
            if (v)
                lua_pushstring(L, v);
            else
                lua_pushnil(L);
            return 1;
        }
    }
    return luaL_error(L, "wx.getenv: %s is not listed in the config's lua.env", name);
}

/* wx.file(name): the contents of a file next to the script (a page, a
 * template), read while the script loads, never while it serves: file I/O
 * would block the worker. nil, err if it cannot be read. */
static int wx_file(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const char *script = wxlua_loading_script(L);
    if (!script)
        return luaL_error(L, "wx.file reads files only while a script loads (at its top "
                             "level), not while it serves requests");
    if (name[0] == '/' || strstr(name, "..") || name[0] == '\0')
        return luaL_error(L,
                          "wx.file: \"%s\": give a path relative to the script, "
                          "without ..",
                          name);
    const char *slash = strrchr(script, '/');
    int dirlen = slash ? (int)(slash - script) : 1;
    char path[4096];
    if (snprintf(path, sizeof(path), "%.*s/%s", dirlen, slash ? script : ".", name) >=
        (int)sizeof(path))
        return luaL_error(L, "wx.file: path too long");
    FILE *f = fopen(path, "rb");
    if (!f) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: cannot open", name);
        return 2;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        luaL_addlstring(&b, chunk, n);
    int failed = ferror(f);
    fclose(f);
    luaL_pushresult(&b);
    if (failed) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: read error", name);
        return 2;
    }
    return 1;
}

static int wx_now(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

/* wx.random(nbytes[, "hex"|"base62"|"raw"]): bytes from the OS. base62
 * gives nbytes characters; hex gives 2*nbytes. */
static int wx_random(lua_State *L)
{
    static const char *const fmts[] = {"hex", "base62", "raw", NULL};
    lua_Integer n = luaL_optinteger(L, 1, 16);
    int fmt = luaL_checkoption(L, 2, "hex", fmts);
    luaL_argcheck(L, n >= 1 && n <= 1024, 1, "must be from 1 to 1024");
    unsigned char raw[1024];
    char out[2049];
    if (fmt == 1) {
        if (crypto_random_base62(out, (size_t)n) != 0)
            goto fail;
        lua_pushlstring(L, out, (size_t)n);
        return 1;
    }
    if (crypto_random_bytes(raw, (size_t)n) != 0)
        goto fail;
    if (fmt == 2) {
        lua_pushlstring(L, (const char *)raw, (size_t)n);
    } else {
        crypto_hex(raw, (size_t)n, out);
        lua_pushlstring(L, out, 2 * (size_t)n);
    }
    return 1;
fail:
    lua_pushnil(L);
    lua_pushstring(L, "no randomness available");
    return 2;
}

struct sleep_op {
    struct wxlua_task *t;
    struct event *ev;
};

static void sleep_cancel(void *arg)
{
    struct sleep_op *op = arg;
    event_free(op->ev);
    free(op);
}

static void sleep_done(evutil_socket_t fd, short what, void *arg)
{
    struct sleep_op *op = arg;
    struct wxlua_task *t = op->t;
    event_free(op->ev);
    free(op);
    lua_pushboolean(wxlua_task_thread(t), 1);
    wxlua_task_resume(t, 1);
}

/* wx.sleep(seconds): waits on the loop without blocking the worker. */
static int wx_sleep(lua_State *L)
{
    struct wxlua_task *t = wxlua_task_current(L, "wx.sleep");
    lua_Number s = luaL_checknumber(L, 1);
    luaL_argcheck(L, s >= 0 && s <= 60, 1, "must be from 0 to 60 seconds");
    struct worker *w = wxlua_vm_worker(wxlua_task_vm(t));
    struct sleep_op *op = calloc(1, sizeof(*op));
    if (!op)
        return luaL_error(L, "out of memory");
    op->t = t;
    op->ev = evtimer_new(w->base, sleep_done, op);
    struct timeval tv = {(time_t)s, (suseconds_t)((s - (lua_Number)(time_t)s) * 1e6)};
    evtimer_add(op->ev, &tv);
    wxlua_task_wait(t, sleep_cancel, op);
    return lua_yield(L, 0);
}

void wxlua_wx_inject(lua_State *L)
{
    lua_pushcfunction(L, wx_log);
    lua_setfield(L, -2, "log");
    lua_pushcfunction(L, wx_now);
    lua_setfield(L, -2, "now");
    lua_pushcfunction(L, wx_getenv);
    lua_setfield(L, -2, "getenv");
    lua_pushcfunction(L, wx_file);
    lua_setfield(L, -2, "file");
    lua_pushcfunction(L, wx_random);
    lua_setfield(L, -2, "random");
    lua_pushcfunction(L, wx_sleep);
    lua_setfield(L, -2, "sleep");
}
