/* Tasks: one coroutine per request that runs Lua, resumed under the CPU
 * budget, suspended while a wx call waits (the async template of
 * lua_runtime.h), and the campaign hooks that run in them. */
#include "lua_internal.h"

#include "config.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "watchdog.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

static void task_finish(struct wxlua_task *t, int ok, int nres);

/* A task for a request, with a coroutine: both reused when a previous
 * task left them in a clean state (a coroutine that returned normally is
 * ready to run a new function), as creating a thread is most of the cost of
 * a small route. */
struct wxlua_task *wxlua_task_new(struct wxlua_vm *vm, struct http_req *r)
{
    struct wxlua_task *t = vm->free_tasks;
    if (t) {
        vm->free_tasks = t->next_free;
        vm->n_free_tasks--;
        memset(t, 0, sizeof(*t));
    } else if (!(t = calloc(1, sizeof(*t)))) {
        return NULL;
    }
    t->vm = vm;
    t->r = r;
    if (vm->n_co_pool > 0) {
        t->co_ref = vm->co_pool[--vm->n_co_pool];
        lua_rawgeti(vm->L, LUA_REGISTRYINDEX, t->co_ref);
        t->co = lua_tothread(vm->L, -1);
        lua_pop(vm->L, 1);
    } else {
        t->co = lua_newthread(vm->L);
        t->co_ref = luaL_ref(vm->L, LUA_REGISTRYINDEX);
    }
    vm->tasks++;
    return t;
}

void wxlua_task_free(struct wxlua_task *t)
{
    struct wxlua_vm *vm = t->vm;
    if (t->cancel)
        t->cancel(t->op);
    if (lua_status(t->co) == 0 && vm->n_co_pool < TASK_POOL && !vm->retired) {
        lua_settop(t->co, 0); /* returned normally: reusable */
        vm->co_pool[vm->n_co_pool++] = t->co_ref;
    } else {
        luaL_unref(vm->L, LUA_REGISTRYINDEX, t->co_ref);
    }
    if (vm->n_free_tasks < TASK_POOL) {
        t->next_free = vm->free_tasks;
        vm->free_tasks = t;
        vm->n_free_tasks++;
    } else {
        free(t);
    }
    if (vm->collect) {
        /* After a budget kill or out-of-memory error, return what the dead
         * coroutine held before the next request needs it. */
        vm->collect = 0;
        lua_gc(vm->L, LUA_GCCOLLECT, 0);
    }
    if (--vm->tasks == 0 && vm->retired)
        wxlua_vm_free(vm);
}

/* wxgate_lua_runs_total: shows that the protocol path runs no Lua unless a
 * hook or route is configured. */
static struct metrics_counter *runs_series;

/* Resumes t's coroutine with nargs values on it and handles how it stops. */
void wxlua_task_run(struct wxlua_task *t, int nargs)
{
    struct wxlua_vm *vm = t->vm;
    metrics_counter_add_to(&runs_series, "wxgate_lua_runs_total", 1);
    vm->current = t;
    vm->killed = 0;
    vm->capped = 1;
    vm->deadline = wxlua_now_ms() + vm->cfg->lua_cpu_budget_ms;
    watchdog_note_script(wxlua_vm_slot(vm), t->what, t->of, t->file);
    int rc = lua_resume(t->co, nargs);
    watchdog_note_script(wxlua_vm_slot(vm), NULL, NULL, NULL);
    vm->capped = 0;
    vm->current = NULL;
    const char *rid = t->r ? http_req_id(t->r) : NULL;

    if (rc == LUA_YIELD && !vm->killed && t->cancel)
        return; /* waiting for I/O */
    if (rc == 0) {
        task_finish(t, 1, lua_gettop(t->co));
        return;
    }
    if (vm->killed) {
        luaL_traceback(vm->L, t->co, "cpu budget exceeded", 0);
        log_msg(LOG_ERROR, rid, "lua: %s (budget %d ms)", lua_tostring(vm->L, -1),
                vm->cfg->lua_cpu_budget_ms);
        lua_pop(vm->L, 1);
    } else if (rc == LUA_YIELD) {
        log_msg(LOG_ERROR, rid,
                "lua: coroutine.yield() at the top of a request is not allowed; "
                "only wx async calls may wait");
    } else {
        const char *msg = lua_tostring(t->co, -1);
        luaL_traceback(vm->L, t->co, msg ? msg : "(error object is not a string)", 0);
        log_msg(LOG_ERROR, rid, "lua: %s%s", rc == LUA_ERRMEM ? "memory budget exceeded: " : "",
                lua_tostring(vm->L, -1));
        lua_pop(vm->L, 1);
    }
    metrics_inc("wxgate_lua_errors_total", "kind",
                vm->killed         ? "cpu"
                : rc == LUA_ERRMEM ? "memory"
                                   : "error",
                NULL);
    if (rc == LUA_ERRMEM || vm->killed)
        vm->collect = 1;
    task_finish(t, 0, 0);
}

struct wxlua_task *wxlua_task_current(lua_State *L, const char *api)
{
    struct wxlua_vm *vm = wxlua_vm_of(L);
    struct wxlua_task *t = vm->current;
    if (!t || !vm->w)
        luaL_error(L, "%s is only available while serving a request", api);
    if (L != t->co)
        luaL_error(L,
                   "%s cannot wait inside a coroutine the script created; call it from the "
                   "request's own code",
                   api);
    if (t->cancel)
        luaL_error(L, "%s: another wx call of this request is still waiting", api);
    return t;
}

struct wxlua_vm *wxlua_task_vm(struct wxlua_task *t) { return t->vm; }
lua_State *wxlua_task_thread(struct wxlua_task *t) { return t->co; }
const char *wxlua_task_rid(struct wxlua_task *t) { return t->r ? http_req_id(t->r) : NULL; }

const char *wxlua_current_rid(lua_State *L)
{
    struct wxlua_vm *vm = wxlua_vm_of(L);
    return vm->current ? wxlua_task_rid(vm->current) : NULL;
}

void wxlua_task_wait(struct wxlua_task *t, void (*cancel)(void *), void *op)
{
    t->cancel = cancel;
    t->op = op;
}

void wxlua_task_resume(struct wxlua_task *t, int nresults)
{
    t->cancel = NULL;
    t->op = NULL;
    wxlua_task_run(t, nresults);
}

/* The client went away while the task waited: drop its I/O, finish the
 * request (the reply goes nowhere) and let the coroutine be collected. */
void wxlua_task_abort(void *arg)
{
    struct wxlua_task *t = arg;
    if (t->is_route) {
        http_reply(t->r, 499, NULL, NULL, 0);
        wxlua_task_free(t);
    } else {
        t->finished = 1;
        if (t->cancel)
            t->cancel(t->op);
        t->cancel = NULL;
        t->done(t, 0, 0, t->done_arg);
    }
}

static void task_finish(struct wxlua_task *t, int ok, int nres)
{
    if (t->finished)
        return;
    t->finished = 1;
    if (t->r)
        http_req_on_abort(t->r, NULL, NULL);
    if (t->is_route) {
        wxlua_route_respond(t, ok, nres);
        wxlua_task_free(t);
    } else {
        t->done(t, ok, nres, t->done_arg);
    }
}

int wxlua_vm_has_hook(struct wxlua_vm *vm, size_t campaign, const char *name)
{
    if (campaign >= vm->cfg->n_campaigns || vm->campaign_refs[campaign] == LUA_NOREF)
        return 0;
    lua_rawgeti(vm->L, LUA_REGISTRYINDEX, vm->campaign_refs[campaign]);
    lua_getfield(vm->L, -1, name);
    int has = lua_isfunction(vm->L, -1);
    lua_pop(vm->L, 2);
    return has;
}

int wxlua_vm_call_hook(struct wxlua_vm *vm, size_t campaign, const char *name, struct http_req *r,
                       wxlua_push_fn push, wxlua_done_fn done, void *arg)
{
    struct wxlua_task *t = wxlua_task_new(vm, r);
    if (!t)
        return -1;
    t->done = done;
    t->done_arg = arg;
    if (!wxlua_vm_has_hook(vm, campaign, name)) {
        t->finished = 1;
        done(t, 1, 0, arg);
        return 0;
    }
    t->what = "lua hook";
    for (int i = 0; wxlua_hook_names[i]; i++)
        if (strcmp(wxlua_hook_names[i], name) == 0)
            t->what = wxlua_hook_labels[i];
    t->of = vm->cfg->campaigns[campaign].name;
    t->file = vm->cfg->campaigns[campaign].script;
    lua_rawgeti(t->co, LUA_REGISTRYINDEX, vm->campaign_refs[campaign]);
    lua_getfield(t->co, -1, name);
    lua_remove(t->co, -2);
    wxlua_push_task_request(t);
    int nargs = 1 + (push ? push(t->co, arg) : 0);
    if (r)
        http_req_on_abort(r, wxlua_task_abort, t);
    wxlua_task_run(t, nargs);
    return 0;
}
