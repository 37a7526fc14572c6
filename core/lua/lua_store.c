/* wx.store.get/set/add/incr/del: the shared store for scripts. Keys live
 * under "lua:" so scripts cannot touch the gateway's own records. TTLs are
 * in seconds. A store that answers at once (memory) returns without
 * yielding; one that answers later (Redis) yields until it does. */
#include "login.h"
#include "lua_runtime.h"
#include "server.h"
#include "store.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

enum op_kind { OP_GET, OP_SET, OP_ADD, OP_INCR, OP_DEL };

struct store_op {
    struct wxlua_task *t;
    enum op_kind kind;
    int waiting; /* the task yielded: resume it on reply */
    int done;    /* replied before the call returned */
    int cancelled;
    lua_State *L; /* where to push results */
    int nres;
};

/* Pushes the Lua results of a reply: get → value | nil; set → true;
 * add → true | false; incr → number; del → true | false; errors → nil, err. */
static int push_reply(lua_State *L, enum op_kind kind, const struct store_reply *r)
{
    if (r->status == STORE_ERROR) {
        lua_pushnil(L);
        lua_pushstring(L, r->err ? r->err : "store error");
        return 2;
    }
    switch (kind) {
    case OP_GET:
        if (r->status == STORE_OK)
            lua_pushlstring(L, r->value, r->len);
        else
            lua_pushnil(L);
        return 1;
    case OP_INCR: lua_pushnumber(L, (lua_Number)r->number); return 1;
    default: lua_pushboolean(L, r->status == STORE_OK); return 1;
    }
}

static void on_reply(const struct store_reply *r, void *arg)
{
    struct store_op *op = arg;
    if (op->cancelled) {
        free(op);
        return;
    }
    if (!op->waiting) {
        op->nres = push_reply(op->L, op->kind, r);
        op->done = 1;
        return;
    }
    struct wxlua_task *t = op->t;
    int n = push_reply(wxlua_task_thread(t), op->kind, r);
    free(op);
    wxlua_task_resume(t, n);
}

/* The reply may still come (Redis): it must find the op and drop it. */
static void store_cancel(void *arg)
{
    struct store_op *op = arg;
    op->cancelled = 1;
}

static int call(lua_State *L, enum op_kind kind, const char *api)
{
    struct wxlua_task *t = wxlua_task_current(L, api);
    struct worker *w = wxlua_vm_worker(wxlua_task_vm(t));
    size_t klen, vlen = 0;
    const char *key = luaL_checklstring(L, 1, &klen);
    const char *val = NULL;
    long long delta = 1;
    double ttl = 0;
    luaL_argcheck(L, klen > 0 && klen <= 512, 1, "key must be 1 to 512 bytes");
    if (kind == OP_SET || kind == OP_ADD) {
        val = luaL_checklstring(L, 2, &vlen);
        luaL_argcheck(L, vlen <= 1 << 20, 2, "value must be at most 1 MiB");
        ttl = luaL_optnumber(L, 3, 0);
    } else if (kind == OP_INCR) {
        lua_Number d = luaL_optnumber(L, 2, 1);
        luaL_argcheck(L, d == (lua_Number)(long long)d, 2, "must be a whole number");
        delta = (long long)d;
        ttl = luaL_optnumber(L, 3, 0);
    }
    /* The TTL is argument 3 of set, add and incr (get and del have none). */
    luaL_argcheck(L, ttl >= 0 && ttl <= 365 * 86400.0, 3,
                  "ttl must be from 0 (none) to one year, in seconds");

    char kbuf[520];
    memcpy(kbuf, KEY_SCRIPTS, 4);
    memcpy(kbuf + 4, key, klen);
    size_t kl = klen + 4;
    uint64_t ttl_ms = (uint64_t)(ttl * 1000);

    struct store_op *op = calloc(1, sizeof(*op));
    if (!op)
        return luaL_error(L, "out of memory");
    op->t = t;
    op->kind = kind;
    op->L = L;
    int rc;
    switch (kind) {
    case OP_GET: rc = store_get(w->store, kbuf, kl, on_reply, op); break;
    case OP_SET: rc = store_set(w->store, kbuf, kl, val, vlen, ttl_ms, on_reply, op); break;
    case OP_ADD: rc = store_add(w->store, kbuf, kl, val, vlen, ttl_ms, on_reply, op); break;
    case OP_INCR: rc = store_incr(w->store, kbuf, kl, delta, ttl_ms, on_reply, op); break;
    default: rc = store_del(w->store, kbuf, kl, on_reply, op); break;
    }
    if (rc != 0) {
        free(op);
        lua_pushnil(L);
        lua_pushstring(L, "store unavailable");
        return 2;
    }
    if (op->done) {
        int n = op->nres;
        free(op);
        return n;
    }
    op->waiting = 1;
    wxlua_task_wait(t, store_cancel, op);
    return lua_yield(L, 0);
}

static int s_get(lua_State *L) { return call(L, OP_GET, "wx.store.get"); }
static int s_set(lua_State *L) { return call(L, OP_SET, "wx.store.set"); }
static int s_add(lua_State *L) { return call(L, OP_ADD, "wx.store.add"); }
static int s_incr(lua_State *L) { return call(L, OP_INCR, "wx.store.incr"); }
static int s_del(lua_State *L) { return call(L, OP_DEL, "wx.store.del"); }

void wxlua_store_inject(lua_State *L)
{
    static const luaL_Reg fns[] = {{"get", s_get},   {"set", s_set}, {"add", s_add},
                                   {"incr", s_incr}, {"del", s_del}, {NULL, NULL}};
    for (const luaL_Reg *f = fns; f->name; f++) {
        lua_pushcfunction(L, f->func);
        lua_setfield(L, -2, f->name);
    }
}
