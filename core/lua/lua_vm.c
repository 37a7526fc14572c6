/* The Lua VM of a worker (see lua_runtime.h): built from a config with the
 * wx API, the scripts' curated environment and every route and campaign
 * script; its allocator and count hook keep the memory and CPU budgets. */
#include "lua_internal.h"

#include "config.h"
#include "log.h"
#include "lua_bundle.h"
#include "lua_crypto.h"
#include "lua_pattern.h"
#include "lua_url.h"
#include "server.h"
#include "watchdog.h"

#include <lauxlib.h>
#include <lua-cjson.h>

int luaopen_cjson_safe(lua_State *L); /* in lua-cjson, not in its header */
#include <libgen.h>
#include <luajit.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HOOK_EVERY 1000 /* VM instructions between two budget checks */

const char *const wxlua_hook_names[] = {"authorize", "login", "denied", "error", NULL};
const char *const wxlua_hook_labels[] = {"lua hook authorize", "lua hook login", "lua hook denied",
                                         "lua hook error", NULL};

double wxlua_now_ms(void)
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
    struct wxlua_vm *vm = ud;
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

struct wxlua_vm *wxlua_vm_of(lua_State *L)
{
    void *ud;
    lua_getallocf(L, &ud);
    return ud;
}

/* The watchdog slot of the thread running vm: its worker's, or the main
 * thread's for a VM that only checks scripts. */
struct watchdog_slot *wxlua_vm_slot(struct wxlua_vm *vm)
{
    return vm->w ? vm->w->wd : watchdog_slot(-1);
}

/* Is the running script over its CPU budget? Once it is, it stays so until
 * the run ends (the runtime resets `killed` when it starts the next one), so
 * that whatever catches the first error meets the next. */
static int over_budget(lua_State *L)
{
    struct wxlua_vm *vm = wxlua_vm_of(L);
    if (!vm->capped)
        return 0;
    if (!vm->killed && wxlua_now_ms() > vm->deadline)
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
    struct wxlua_vm *vm = wxlua_vm_of(L);
    if (!vm->capped || (!vm->killed && wxlua_now_ms() <= vm->deadline))
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
    const struct wxlua_bundle_file *f = lua_touserdata(L, lua_upvalueindex(1));
    if (luaL_loadbuffer(L, f->source, f->len, f->chunkname) != 0)
        return lua_error(L);
    lua_pushstring(L, f->module);
    lua_call(L, 1, 1);
    return 1;
}

int wxlua_bundle_load(lua_State *L, const char *module)
{
    for (const struct wxlua_bundle_file *f = wxlua_bundle_files; f->module; f++) {
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
    wxlua_wx_inject(L);
    wxlua_jssdk_inject(L);
    lua_newtable(L);
    wxlua_http_inject(L);
    lua_setfield(L, -2, "http");
    lua_newtable(L);
    wxlua_store_inject(L);
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
    lua_pushcfunction(L, luaopen_wx_urlcore);
    lua_setfield(L, -2, "wx.urlcore");
    lua_pushcfunction(L, open_wx_core);
    lua_setfield(L, -2, "wx.core");
    for (const struct wxlua_bundle_file *f = wxlua_bundle_files; f->module; f++) {
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
static int open_script_env(struct wxlua_vm *vm, char *err, size_t errsz)
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
static int run_script(struct wxlua_vm *vm, const char *path, char *err, size_t errsz)
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
    vm->deadline = wxlua_now_ms() + vm->cfg->lua_cpu_budget_ms;
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
    watchdog_note_script(wxlua_vm_slot(vm), "loading script", NULL, path);
    vm->loading = path;
    int rc = lua_pcall(L, 0, 1, base);
    vm->loading = NULL;
    watchdog_note_script(wxlua_vm_slot(vm), NULL, NULL, NULL);
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

static int load_routes(struct wxlua_vm *vm, char *err, size_t errsz)
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
            vm->deadline = wxlua_now_ms() + vm->cfg->lua_cpu_budget_ms;
            watchdog_note_script(wxlua_vm_slot(vm), "loading route", rt->prefix, rt->module);
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
            watchdog_note_script(wxlua_vm_slot(vm), NULL, NULL, NULL);
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

static int load_campaigns(struct wxlua_vm *vm, char *err, size_t errsz)
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
                for (const char *const *h = wxlua_hook_names; *h; h++)
                    known |= strcmp(*h, lua_tostring(L, -2)) == 0;
            if (!known || !lua_isfunction(L, -1)) {
                snprintf(err, errsz, "%s: hook table key %s%s%s: %s", path,
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

void wxlua_vm_free(struct wxlua_vm *vm)
{
    if (!vm)
        return;
    if (vm->L)
        lua_close(vm->L);
    while (vm->free_tasks) {
        struct wxlua_task *t = vm->free_tasks;
        vm->free_tasks = t->next_free;
        free(t);
    }
    config_release(vm->cfg);
    free(vm->route_refs);
    free(vm->campaign_refs);
    free(vm);
}

struct wxlua_vm *wxlua_vm_new(struct worker *w, struct config *cfg, char *err, size_t errsz)
{
    struct wxlua_vm *vm = calloc(1, sizeof(*vm));
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
        wxlua_vm_free(vm);
        return NULL;
    }
    lua_State *L = vm->L;
    luaL_openlibs(L);
    /* Compiled traces do not run count hooks: interpret only, so that the
     * CPU budget holds for every line of every script. */
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    register_preloads(L);
    wxlua_request_init(L, vm);
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, HOOK_EVERY);
    lua_getglobal(L, "string");
    wxlua_pattern_inject(L, over_budget);
    lua_pop(L, 1);
    if (open_script_env(vm, err, errsz) != 0) {
        wxlua_vm_free(vm);
        return NULL;
    }
    lock_globals(L);
    lua_getglobal(L, "require");
    lua_pushstring(L, "wx");
    if (lua_pcall(L, 1, 0, 0) != 0) {
        snprintf(err, errsz, "wx module: %s", lua_tostring(L, -1));
        wxlua_vm_free(vm);
        return NULL;
    }
    if (load_routes(vm, err, errsz) != 0 || load_campaigns(vm, err, errsz) != 0) {
        wxlua_vm_free(vm);
        return NULL;
    }
    lua_gc(L, LUA_GCCOLLECT, 0);
    return vm;
}

void wxlua_vm_retire(struct wxlua_vm *vm)
{
    if (!vm)
        return;
    vm->retired = 1;
    if (vm->tasks == 0)
        wxlua_vm_free(vm);
}

struct worker *wxlua_vm_worker(struct wxlua_vm *vm) { return vm->w; }

void wxlua_vm_hold(struct wxlua_vm *vm) { vm->tasks++; }

void wxlua_vm_release(struct wxlua_vm *vm)
{
    if (--vm->tasks == 0 && vm->retired)
        wxlua_vm_free(vm);
}
lua_State *wxlua_vm_state(struct wxlua_vm *vm) { return vm->L; }

int wxlua_check_scripts(const struct config *cfg, char *err, size_t errsz)
{
    struct wxlua_vm *vm = wxlua_vm_new(NULL, (struct config *)cfg, err, errsz);
    if (!vm)
        return -1;
    wxlua_vm_free(vm);
    return 0;
}

const struct config *wxlua_vm_config(lua_State *L) { return wxlua_vm_of(L)->cfg; }

const char *wxlua_loading_script(lua_State *L) { return wxlua_vm_of(L)->loading; }
