/* The Lua runtime: one LuaJIT VM per worker (built from a config: lua_vm.c),
 * one coroutine ("task") per request that runs Lua (lua_task.c), with
 * CPU-time and memory budgets, routes (lua_route.c), the request object
 * (lua_request.c), and the async template every yielding wx API follows.
 *
 * The async template (after lua-nginx-module), in a C API function:
 *     struct lua_task *t = lua_task_current(L, "wx.http.request"); // raises on misuse
 *     ...check the arguments...
 *     op = start the I/O with a completion callback
 *     lua_task_wait(t, cancel_op, op);     // cleanup if the task dies first
 *     return lua_yield(L, 0);
 * and in the completion callback, on the loop:
 *     lua_State *co = lua_task_thread(t);  push results on co
 *     lua_task_resume(t, nresults);
 * The Lua wrappers in lua/wx.lua refuse to call an async function where the
 * coroutine cannot yield (table.sort comparators, gsub callbacks), so the
 * C side only has to refuse user coroutines (lua_task_current does). */
#ifndef WX_LUA_RUNTIME_H
#define WX_LUA_RUNTIME_H
#include <lua.h>
#include <stddef.h>

struct config;
struct worker;
struct http_req;
struct lua_vm;
struct lua_task;

/* Builds a VM for cfg on worker w: loads the wx API, every route and campaign
 * script. NULL with a message in err on failure. */
struct lua_vm *lua_vm_new(struct worker *w, struct config *cfg, char *err, size_t errsz);
/* The VM is no longer current: it is freed once its last task ends. */
void lua_vm_retire(struct lua_vm *vm);
struct worker *lua_vm_worker(struct lua_vm *vm);
/* Keeps a VM alive across a reload while C code holds values in it. */
void lua_vm_hold(struct lua_vm *vm);
void lua_vm_release(struct lua_vm *vm);
lua_State *lua_vm_state(struct lua_vm *vm); /* the main thread: for calls made
                                               while a task is suspended */

/* Compiles (without running) every script of cfg in a scratch state, for
 * `wxgate check` and before a reload. 0 ok; -1 with "file:line: msg" lines. */
int lua_check_scripts(const struct config *cfg, char *err, size_t errsz);

/* Serves r if a route matches its path (returns 1), else returns 0. */
int lua_vm_route(struct lua_vm *vm, struct http_req *r);

/* Calls hook `name` of campaign `campaign` (index in cfg->campaigns) in a new
 * task, with the request object and nargs values pushed by push(L, arg).
 * done(t, ok, nres, arg) is called once: ok=1 with the hook's nres results on
 * lua_task_thread(t) (absent hook: ok=1, nres=0), ok=0 after an error (logged
 * with a traceback). done must call lua_task_free(t). Returns -1 if the task
 * could not start (done is not called). */
typedef int (*lua_push_fn)(lua_State *L, void *arg);
typedef void (*lua_done_fn)(struct lua_task *t, int ok, int nres, void *arg);
int lua_vm_call_hook(struct lua_vm *vm, size_t campaign, const char *name, struct http_req *r,
                     lua_push_fn push, lua_done_fn done, void *arg);
int lua_vm_has_hook(struct lua_vm *vm, size_t campaign, const char *name);

/* ---- for C API functions (the async template) ---- */
struct lua_task *lua_task_current(lua_State *L, const char *api);
struct lua_vm *lua_task_vm(struct lua_task *t);
lua_State *lua_task_thread(struct lua_task *t);
const char *lua_task_rid(struct lua_task *t); /* request id or NULL */
const char *lua_runtime_current_rid(lua_State *L); /* of the running task, or NULL */
const struct config *wxlua_vm_config(lua_State *L); /* the config of L's VM */
const char *wxlua_loading_script(lua_State *L); /* the script being loaded, or NULL */
void lua_task_wait(struct lua_task *t, void (*cancel)(void *op), void *op);
void lua_task_resume(struct lua_task *t, int nresults);
void lua_task_free(struct lua_task *t);

/* Pushes the request object of r (method, path, uri, query, headers,
 * cookies, body, client, id) onto L. */
void lua_push_request(lua_State *L, struct http_req *r);

/* Pushes the chunk of a module compiled into the binary (lua/NAME.lua), for
 * use in a plain state. 0 ok, -1 (nothing pushed) when there is none. */
int lua_bundle_load(lua_State *L, const char *module);

/* Per-area injectors: each adds its functions to the table on top of L. */
void lua_wx_inject(lua_State *L);       /* log, now, random, sleep: lua_wx.c */
void lua_http_inject(lua_State *L);     /* http.request: lua_http.c */
void lua_store_inject(lua_State *L);    /* store.get/set/add/incr/del: lua_store.c */
void lua_jssdk_inject(lua_State *L);    /* jssdk: lua_jssdk.c */

#endif
