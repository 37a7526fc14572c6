/* The Lua runtime (see lua_runtime.h). */
#include "lua_runtime.h"

#include "config.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "lua_bundle.h"
#include "lua_crypto.h"
#include "lua_pattern.h"
#include "page.h"
#include "server.h"
#include "watchdog.h"

#include <event2/event.h>
#include <lauxlib.h>
#include <lua-cjson.h>

int luaopen_cjson_safe(lua_State *L); /* in lua-cjson, not in its header */
#include <luajit.h>
#include <libgen.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HOOK_EVERY 1000 /* VM instructions between two budget checks */

static const char *const hook_names[] = {"authorize", "login", "denied", "error", NULL};
static const char *const hook_labels[] = {"lua hook authorize", "lua hook login",
                                          "lua hook denied", "lua hook error", NULL};

struct lua_vm {
    lua_State *L;
    struct worker *w;            /* NULL for a check-only VM */
    struct config *cfg;
    size_t used, limit;          /* bytes allocated by the VM, and its cap */
    int capped;                  /* the cap applies (Lua code is running) */
    int retired;
    int tasks;                   /* live tasks */
    struct lua_task *current;    /* the task being resumed */
    double deadline;             /* of the current resume (monotonic ms) */
    int killed;                  /* the current run went over its budget */
    int collect;                 /* run a full GC once the failed task is gone */
    int env_ref;                 /* the scripts' environment (lua/wxgate/script_env.lua) */
    int lint_ref;                /* its lint(fn): what a script uses that it lacks */
    const char *loading;         /* the script whose top level is running, or NULL */
    int *route_refs;             /* per cfg->routes: the handler function */
    int *campaign_refs;          /* per cfg->campaigns: the hooks table, or LUA_NOREF */
};

struct lua_task {
    struct lua_vm *vm;
    lua_State *co;
    int co_ref;
    struct http_req *r;
    void (*cancel)(void *op);    /* the pending async operation */
    void *op;
    lua_done_fn done;            /* hooks: the caller's continuation */
    void *done_arg;
    int is_route;
    int finished;
    const char *what, *of, *file; /* for the watchdog: "lua hook login", campaign, script */
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* The VM's allocator: counts bytes and refuses to grow past the cap while
 * Lua code runs. C code pushing arguments outside a protected call is never
 * refused (an error there would abort the process); it stays small. */
static void *vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct lua_vm *vm = ud;
    if (nsize == 0) {
        free(ptr);
        vm->used -= osize;
        return NULL;
    }
    if (vm->capped && nsize > osize && vm->used - osize + nsize > vm->limit)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p)
        vm->used = vm->used - osize + nsize;
    return p;
}

static struct lua_vm *vm_of(lua_State *L)
{
    void *ud;
    lua_getallocf(L, &ud);
    return ud;
}

/* The watchdog slot of the thread running vm: its worker's, or the main
 * thread's for a VM that only checks scripts. */
static struct watchdog_slot *vm_slot(struct lua_vm *vm)
{
    return vm->w ? vm->w->wd : watchdog_slot(-1);
}

/* Is the running script over its CPU budget? Once it is, it stays so until
 * the run ends (the runtime resets `killed` when it starts the next one), so
 * that whatever catches the first error meets the next. */
static int over_budget(lua_State *L)
{
    struct lua_vm *vm = vm_of(L);
    if (!vm->capped)
        return 0;
    if (!vm->killed && now_ms() > vm->deadline)
        vm->killed = 1;
    return vm->killed;
}

static int budget_spent(lua_State *L)
{
    lua_pushboolean(L, over_budget(L));
    return 1;
}

/* The count hook: stops code that runs past its CPU budget by yielding out
 * of the coroutine (a yield passes through pcall, so the script cannot catch
 * it). Where a yield is impossible (inside a C call such as table.sort) the
 * yield raises an error instead, and keeps doing so on every later check. */
static void budget_hook(lua_State *L, lua_Debug *ar)
{
    struct lua_vm *vm = vm_of(L);
    if (!vm->capped || (!vm->killed && now_ms() <= vm->deadline))
        return; /* the gateway's own code, or a script within its budget */
    vm->killed = 1;
    if (vm->current && L == vm->current->co) {
        lua_yield(L, 0); /* raises instead where the coroutine cannot yield */
        return;
    }
    luaL_error(L, "cpu budget exceeded");
}

static int refuse_global(lua_State *L)
{
    const char *name = lua_tostring(L, 2);
    return luaL_error(L, "assignment to global variable '%s' refused: declare it local",
                      name ? name : "?");
}

static int load_bundled(lua_State *L)
{
    const struct lua_bundle_file *f = lua_touserdata(L, lua_upvalueindex(1));
    if (luaL_loadbuffer(L, f->source, f->len, f->chunkname) != 0)
        return lua_error(L);
    lua_pushstring(L, f->module);
    lua_call(L, 1, 1);
    return 1;
}

int lua_bundle_load(lua_State *L, const char *module)
{
    for (const struct lua_bundle_file *f = lua_bundle_files; f->module; f++) {
        if (strcmp(f->module, module) != 0)
            continue;
        if (luaL_loadbuffer(L, f->source, f->len, f->chunkname) != 0) {
            lua_pop(L, 1);
            return -1;
        }
        return 0;
    }
    return -1;
}

static int open_wx_core(lua_State *L)
{
    lua_newtable(L);
    lua_wx_inject(L);
    lua_jssdk_inject(L);
    lua_newtable(L);
    lua_http_inject(L);
    lua_setfield(L, -2, "http");
    lua_newtable(L);
    lua_store_inject(L);
    lua_setfield(L, -2, "store");
    return 1;
}

static void register_preloads(lua_State *L)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_cjson);
    lua_setfield(L, -2, "cjson");
    lua_pushcfunction(L, luaopen_cjson_safe);
    lua_setfield(L, -2, "cjson.safe");
    lua_pushcfunction(L, luaopen_wx_crypto);
    lua_setfield(L, -2, "wx.crypto");
    lua_pushcfunction(L, open_wx_core);
    lua_setfield(L, -2, "wx.core");
    for (const struct lua_bundle_file *f = lua_bundle_files; f->module; f++) {
        lua_pushlightuserdata(L, (void *)f);
        lua_pushcclosure(L, load_bundled, 1);
        lua_setfield(L, -2, f->module);
    }
    lua_pop(L, 2);
    /* Scripts load only bundled modules and their own files' neighbours. */
    lua_getglobal(L, "package");
    lua_pushstring(L, "");
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);
}

static void lock_globals(lua_State *L)
{
    lua_pushvalue(L, LUA_GLOBALSINDEX);
    lua_newtable(L);
    lua_pushcfunction(L, refuse_global);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, -2);
    lua_pop(L, 1);
}

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

/* Adds the directory of path to the list on top of L, once. */
static void add_script_dir(lua_State *L, const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    const char *dir = dirname(copy);
    size_t n = lua_objlen(L, -1);
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, (int)i);
        int same = strcmp(lua_tostring(L, -1), dir) == 0;
        lua_pop(L, 1);
        if (same) {
            free(copy);
            return;
        }
    }
    lua_pushstring(L, dir);
    lua_rawseti(L, -2, (int)n + 1);
    free(copy);
}

/* Builds the environment scripts run in (lua/wxgate/script_env.lua) and
 * keeps it in vm->env_ref. */
static int open_script_env(struct lua_vm *vm, char *err, size_t errsz)
{
    lua_State *L = vm->L;
    const struct config *c = vm->cfg;
    lua_getglobal(L, "require");
    lua_pushstring(L, "wxgate.script_env");
    if (lua_pcall(L, 1, 1, 0) != 0) {
        snprintf(err, errsz, "script environment: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    lua_createtable(L, 0, 3);
    lua_pushcfunction(L, budget_spent);
    lua_setfield(L, -2, "spent");
    lua_pushboolean(L, c->lua_trusted);
    lua_setfield(L, -2, "trusted");
    lua_newtable(L);
    for (size_t i = 0; i < c->n_routes; i++)
        if (c->routes[i].script)
            add_script_dir(L, c->routes[i].script);
    for (size_t i = 0; i < c->n_campaigns; i++)
        if (c->campaigns[i].script)
            add_script_dir(L, c->campaigns[i].script);
    lua_setfield(L, -2, "dirs");
    if (lua_pcall(L, 1, 3, 0) != 0) {
        snprintf(err, errsz, "script environment: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    vm->lint_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1); /* the scripts' require: reached through the environment */
    vm->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

/* Loads and runs a script file under the budget; leaves its one result on
 * the stack. 0 ok, -1 with err set. */
static int run_script(struct lua_vm *vm, const char *path, char *err, size_t errsz)
{
    lua_State *L = vm->L;
    lua_pushcfunction(L, traceback);
    int base = lua_gettop(L);
    /* Text only: bytecode can break the VM's invariants. */
    if (luaL_loadfilex(L, path, "t") != 0) {
        snprintf(err, errsz, "%s", lua_tostring(L, -1));
        lua_pop(L, 2);
        return -1;
    }
    vm->capped = 1;
    vm->killed = 0;
    vm->deadline = now_ms() + vm->cfg->lua_cpu_budget_ms;
    /* Name what the script uses that scripts lack before it runs. */
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->lint_ref);
    lua_pushvalue(L, -2);
    if (lua_pcall(L, 1, 1, 0) == 0 && lua_isstring(L, -1)) {
        vm->capped = 0;
        snprintf(err, errsz, "%s:%s", path, lua_tostring(L, -1));
        lua_pop(L, 3);
        return -1;
    }
    lua_pop(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->env_ref);
    lua_setfenv(L, -2);
    watchdog_note_script(vm_slot(vm), "loading script", NULL, path);
    vm->loading = path;
    int rc = lua_pcall(L, 0, 1, base);
    vm->loading = NULL;
    watchdog_note_script(vm_slot(vm), NULL, NULL, NULL);
    vm->capped = 0;
    if (rc != 0) {
        snprintf(err, errsz, "%s: %s", path,
                 vm->killed ? "cpu budget exceeded while loading" : lua_tostring(L, -1));
        lua_pop(L, 2);
        lua_gc(L, LUA_GCCOLLECT, 0);
        return -1;
    }
    lua_remove(L, base);
    return 0;
}

static int load_routes(struct lua_vm *vm, char *err, size_t errsz)
{
    lua_State *L = vm->L;
    const struct config *c = vm->cfg;
    vm->route_refs = calloc(c->n_routes ? c->n_routes : 1, sizeof(int));
    for (size_t i = 0; i < c->n_routes; i++) {
        const struct config_route *rt = &c->routes[i];
        if (rt->module) {
            /* A bundled module route: require(module).new(options). */
            lua_getglobal(L, "require");
            lua_pushstring(L, rt->module);
            vm->capped = 1;
            vm->killed = 0;
            vm->deadline = now_ms() + vm->cfg->lua_cpu_budget_ms;
            watchdog_note_script(vm_slot(vm), "loading route", rt->prefix, rt->module);
            int rc = lua_pcall(L, 1, 1, 0);
            if (rc == 0) {
                lua_getfield(L, -1, "new");
                lua_remove(L, -2);
                lua_createtable(L, 0, (int)rt->n_opts);
                for (size_t k = 0; k < rt->n_opts; k++) {
                    lua_pushstring(L, rt->opt_vals[k]);
                    lua_setfield(L, -2, rt->opt_keys[k]);
                }
                lua_pushcfunction(L, traceback);
                lua_insert(L, -3);
                rc = lua_pcall(L, 1, 1, lua_gettop(L) - 2);
                lua_remove(L, -2); /* the traceback function */
            }
            vm->capped = 0;
            watchdog_note_script(vm_slot(vm), NULL, NULL, NULL);
            if (rc != 0) {
                snprintf(err, errsz, "routes[\"%s\"]: %s", rt->prefix, lua_tostring(L, -1));
                lua_pop(L, 1);
                return -1;
            }
        } else if (run_script(vm, rt->script, err, errsz) != 0) {
            return -1;
        }
        if (!lua_isfunction(L, -1)) {
            snprintf(err, errsz, "%s: a route script must return a function(req), not a %s",
                     rt->script ? rt->script : rt->module, luaL_typename(L, -1));
            lua_pop(L, 1);
            return -1;
        }
        vm->route_refs[i] = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    return 0;
}

static int load_campaigns(struct lua_vm *vm, char *err, size_t errsz)
{
    lua_State *L = vm->L;
    const struct config *c = vm->cfg;
    vm->campaign_refs = calloc(c->n_campaigns ? c->n_campaigns : 1, sizeof(int));
    for (size_t i = 0; i < c->n_campaigns; i++) {
        vm->campaign_refs[i] = LUA_NOREF;
        const char *path = c->campaigns[i].script;
        if (!path)
            continue;
        if (run_script(vm, path, err, errsz) != 0)
            return -1;
        if (!lua_istable(L, -1)) {
            snprintf(err, errsz, "%s: a campaign script must return a table of hooks, not a %s",
                     path, luaL_typename(L, -1));
            lua_pop(L, 1);
            return -1;
        }
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            int known = 0;
            if (lua_type(L, -2) == LUA_TSTRING)
                for (const char *const *h = hook_names; *h; h++)
                    known |= strcmp(*h, lua_tostring(L, -2)) == 0;
            if (!known || !lua_isfunction(L, -1)) {
                snprintf(err, errsz,
                         "%s: hook table key %s%s%s: %s", path,
                         lua_type(L, -2) == LUA_TSTRING ? "'" : "",
                         lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "(not a name)",
                         lua_type(L, -2) == LUA_TSTRING ? "'" : "",
                         known ? "must be a function"
                               : "unknown hook (authorize, login, denied, error)");
                lua_pop(L, 3);
                return -1;
            }
            lua_pop(L, 1);
        }
        vm->campaign_refs[i] = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    return 0;
}

static void vm_free(struct lua_vm *vm)
{
    if (!vm)
        return;
    if (vm->L)
        lua_close(vm->L);
    config_release(vm->cfg);
    free(vm->route_refs);
    free(vm->campaign_refs);
    free(vm);
}

struct lua_vm *lua_vm_new(struct worker *w, struct config *cfg, char *err, size_t errsz)
{
    struct lua_vm *vm = calloc(1, sizeof(*vm));
    if (!vm) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    vm->w = w;
    vm->cfg = config_retain(cfg);
    vm->limit = (size_t)cfg->lua_memory_mb << 20;
    vm->L = lua_newstate(vm_alloc, vm);
    if (!vm->L) {
        snprintf(err, errsz, "cannot create a Lua state");
        vm_free(vm);
        return NULL;
    }
    lua_State *L = vm->L;
    luaL_openlibs(L);
    /* Compiled traces do not run count hooks: interpret only, so that the
     * CPU budget holds for every line of every script. */
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    register_preloads(L);
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, HOOK_EVERY);
    lua_getglobal(L, "string");
    wxlua_pattern_inject(L, over_budget);
    lua_pop(L, 1);
    if (open_script_env(vm, err, errsz) != 0) {
        vm_free(vm);
        return NULL;
    }
    lock_globals(L);
    lua_getglobal(L, "require");
    lua_pushstring(L, "wx");
    if (lua_pcall(L, 1, 0, 0) != 0) {
        snprintf(err, errsz, "wx module: %s", lua_tostring(L, -1));
        vm_free(vm);
        return NULL;
    }
    if (load_routes(vm, err, errsz) != 0 || load_campaigns(vm, err, errsz) != 0) {
        vm_free(vm);
        return NULL;
    }
    lua_gc(L, LUA_GCCOLLECT, 0);
    return vm;
}

void lua_vm_retire(struct lua_vm *vm)
{
    if (!vm)
        return;
    vm->retired = 1;
    if (vm->tasks == 0)
        vm_free(vm);
}

struct worker *lua_vm_worker(struct lua_vm *vm) { return vm->w; }

void lua_vm_hold(struct lua_vm *vm) { vm->tasks++; }

void lua_vm_release(struct lua_vm *vm)
{
    if (--vm->tasks == 0 && vm->retired)
        vm_free(vm);
}
lua_State *lua_vm_state(struct lua_vm *vm) { return vm->L; }

int lua_check_scripts(const struct config *cfg, char *err, size_t errsz)
{
    struct lua_vm *vm = lua_vm_new(NULL, (struct config *)cfg, err, errsz);
    if (!vm)
        return -1;
    vm_free(vm);
    return 0;
}

/* ---- tasks ---- */

static struct lua_task *task_new(struct lua_vm *vm, struct http_req *r)
{
    struct lua_task *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->vm = vm;
    t->r = r;
    t->co = lua_newthread(vm->L);
    t->co_ref = luaL_ref(vm->L, LUA_REGISTRYINDEX);
    vm->tasks++;
    return t;
}

void lua_task_free(struct lua_task *t)
{
    struct lua_vm *vm = t->vm;
    if (t->cancel)
        t->cancel(t->op);
    luaL_unref(vm->L, LUA_REGISTRYINDEX, t->co_ref);
    free(t);
    if (vm->collect) {
        /* After a budget kill or out-of-memory error, return what the dead
         * coroutine held before the next request needs it. */
        vm->collect = 0;
        lua_gc(vm->L, LUA_GCCOLLECT, 0);
    }
    if (--vm->tasks == 0 && vm->retired)
        vm_free(vm);
}

static void task_finish(struct lua_task *t, int ok, int nres);

/* Resumes t's coroutine with nargs values on it and handles how it stops. */
static void task_run(struct lua_task *t, int nargs)
{
    struct lua_vm *vm = t->vm;
    vm->current = t;
    vm->killed = 0;
    vm->capped = 1;
    vm->deadline = now_ms() + vm->cfg->lua_cpu_budget_ms;
    watchdog_note_script(vm_slot(vm), t->what, t->of, t->file);
    int rc = lua_resume(t->co, nargs);
    watchdog_note_script(vm_slot(vm), NULL, NULL, NULL);
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
        log_msg(LOG_ERROR, rid, "lua: coroutine.yield() at the top of a request is not allowed; "
                                "only wx async calls may wait");
    } else {
        const char *msg = lua_tostring(t->co, -1);
        luaL_traceback(vm->L, t->co, msg ? msg : "(error object is not a string)", 0);
        log_msg(LOG_ERROR, rid, "lua: %s%s", rc == LUA_ERRMEM ? "memory budget exceeded: " : "",
                lua_tostring(vm->L, -1));
        lua_pop(vm->L, 1);
    }
    metrics_inc("wxgate_lua_errors_total", "kind",
                vm->killed ? "cpu" : rc == LUA_ERRMEM ? "memory" : "error", NULL);
    if (rc == LUA_ERRMEM || vm->killed)
        vm->collect = 1;
    task_finish(t, 0, 0);
}

struct lua_task *lua_task_current(lua_State *L, const char *api)
{
    struct lua_vm *vm = vm_of(L);
    struct lua_task *t = vm->current;
    if (!t || !vm->w)
        luaL_error(L, "%s is only available while serving a request", api);
    if (L != t->co)
        luaL_error(L, "%s cannot wait inside a coroutine the script created; call it from the "
                      "request's own code", api);
    if (t->cancel)
        luaL_error(L, "%s: another wx call of this request is still waiting", api);
    return t;
}

struct lua_vm *lua_task_vm(struct lua_task *t) { return t->vm; }
lua_State *lua_task_thread(struct lua_task *t) { return t->co; }
const char *lua_task_rid(struct lua_task *t) { return t->r ? http_req_id(t->r) : NULL; }

const struct config *wxlua_vm_config(lua_State *L) { return vm_of(L)->cfg; }

const char *wxlua_loading_script(lua_State *L) { return vm_of(L)->loading; }

const char *lua_runtime_current_rid(lua_State *L)
{
    struct lua_vm *vm = vm_of(L);
    return vm->current ? lua_task_rid(vm->current) : NULL;
}

void lua_task_wait(struct lua_task *t, void (*cancel)(void *), void *op)
{
    t->cancel = cancel;
    t->op = op;
}

void lua_task_resume(struct lua_task *t, int nresults)
{
    t->cancel = NULL;
    t->op = NULL;
    task_run(t, nresults);
}

/* The client went away while the task waited: drop its I/O, finish the
 * request (the reply goes nowhere) and let the coroutine be collected. */
static void task_abort(void *arg)
{
    struct lua_task *t = arg;
    if (t->is_route) {
        http_reply(t->r, 499, NULL, NULL, 0);
        lua_task_free(t);
    } else {
        t->finished = 1;
        if (t->cancel)
            t->cancel(t->op);
        t->cancel = NULL;
        t->done(t, 0, 0, t->done_arg);
    }
}

/* ---- routes ---- */

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
static void route_respond(struct lua_task *t, int ok, int nres)
{
    lua_State *co = t->co;
    struct http_req *r = t->r;
    if (!ok) {
        page_error(r, 500, "服务器内部错误", "Internal server error.", NULL);
        return;
    }
    int status = nres >= 1 && lua_type(co, 1) == LUA_TNUMBER ? (int)lua_tointeger(co, 1) : -1;
    size_t len = 0;
    const char *body = nres >= 2 && lua_type(co, 2) == LUA_TSTRING ? lua_tolstring(co, 2, &len)
                                                                   : NULL;
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
        log_msg(LOG_ERROR, http_req_id(r), "lua route %s: must return status (100-599), body "
                "string and an optional headers table of strings", http_req_path(r));
        page_error(r, 500, "服务器内部错误", "Internal server error.", NULL);
        return;
    }
    int has_ctype = 0;
    if (nres >= 3 && lua_istable(co, 3)) {
        lua_pushnil(co);
        while (lua_next(co, 3)) {
            if (lua_type(co, -2) == LUA_TSTRING && strcasecmp(lua_tostring(co, -2),
                                                              "content-type") == 0)
                has_ctype = 1;
            lua_pop(co, 1);
        }
    }
    http_reply(r, status, has_ctype ? NULL : "text/html; charset=utf-8", body, len);
}

static void task_finish(struct lua_task *t, int ok, int nres)
{
    if (t->finished)
        return;
    t->finished = 1;
    if (t->r)
        http_req_on_abort(t->r, NULL, NULL);
    if (t->is_route) {
        route_respond(t, ok, nres);
        lua_task_free(t);
    } else {
        t->done(t, ok, nres, t->done_arg);
    }
}

static int route_matches(const char *prefix, const char *path)
{
    size_t n = strlen(prefix);
    if (strncmp(prefix, path, n) != 0)
        return 0;
    return prefix[n - 1] == '/' || path[n] == '\0' || path[n] == '/';
}

int lua_vm_route(struct lua_vm *vm, struct http_req *r)
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
    struct lua_task *t = task_new(vm, r);
    if (!t) {
        page_error(r, 503, "服务繁忙", "Server busy.", NULL);
        return 1;
    }
    t->is_route = 1;
    t->what = "lua route";
    t->of = c->routes[best].prefix;
    t->file = c->routes[best].script ? c->routes[best].script : c->routes[best].module;
    http_req_on_abort(r, task_abort, t);
    lua_rawgeti(t->co, LUA_REGISTRYINDEX, vm->route_refs[best]);
    lua_push_request(t->co, r);
    task_run(t, 1);
    return 1;
}

int lua_vm_has_hook(struct lua_vm *vm, size_t campaign, const char *name)
{
    if (campaign >= vm->cfg->n_campaigns || vm->campaign_refs[campaign] == LUA_NOREF)
        return 0;
    lua_rawgeti(vm->L, LUA_REGISTRYINDEX, vm->campaign_refs[campaign]);
    lua_getfield(vm->L, -1, name);
    int has = lua_isfunction(vm->L, -1);
    lua_pop(vm->L, 2);
    return has;
}

int lua_vm_call_hook(struct lua_vm *vm, size_t campaign, const char *name, struct http_req *r,
                     lua_push_fn push, lua_done_fn done, void *arg)
{
    struct lua_task *t = task_new(vm, r);
    if (!t)
        return -1;
    t->done = done;
    t->done_arg = arg;
    if (!lua_vm_has_hook(vm, campaign, name)) {
        t->finished = 1;
        done(t, 1, 0, arg);
        return 0;
    }
    t->what = "lua hook";
    for (int i = 0; hook_names[i]; i++)
        if (strcmp(hook_names[i], name) == 0)
            t->what = hook_labels[i];
    t->of = vm->cfg->campaigns[campaign].name;
    t->file = vm->cfg->campaigns[campaign].script;
    lua_rawgeti(t->co, LUA_REGISTRYINDEX, vm->campaign_refs[campaign]);
    lua_getfield(t->co, -1, name);
    lua_remove(t->co, -2);
    lua_push_request(t->co, r);
    int nargs = 1 + (push ? push(t->co, arg) : 0);
    if (r)
        http_req_on_abort(r, task_abort, t);
    task_run(t, nargs);
    return 0;
}

/* ---- the request object ---- */

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

void lua_push_request(lua_State *L, struct http_req *r)
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
