/* The Lua runtime: one LuaJIT VM per worker (built from a config: lua_vm.c),
 * one coroutine ("task") per request that runs Lua (lua_task.c), with
 * CPU-time and memory budgets, routes (lua_route.c), the request object
 * (lua_request.c), and the async template every yielding wx API follows.
 *
 * The async template (after lua-nginx-module), in a C API function:
 *     struct wxlua_task *t = wxlua_task_current(L, "wx.http.request"); // raises on misuse
 *     ...check the arguments...
 *     op = start the I/O with a completion callback
 *     wxlua_task_wait(t, cancel_op, op);     // cleanup if the task dies first
 *     return lua_yield(L, 0);
 * and in the completion callback, on the loop:
 *     lua_State *co = wxlua_task_thread(t);  push results on co
 *     wxlua_task_resume(t, nresults);
 * The Lua wrappers in lua/wx.lua refuse to call an async function where the
 * coroutine cannot yield (table.sort comparators, gsub callbacks), so the
 * C side only has to refuse user coroutines (wxlua_task_current does). */
#ifndef WX_LUA_RUNTIME_H
#define WX_LUA_RUNTIME_H
#include <lua.h>
#include <stddef.h>

struct config;
struct worker;
struct http_req;
struct wxlua_vm;
struct wxlua_task;

/* Builds a VM for cfg on worker w: loads the wx API, every route and campaign
 * script. NULL with a message in err on failure. */
struct wxlua_vm *wxlua_vm_new(struct worker *w, struct config *cfg, char *err, size_t errsz);
/* The VM is no longer current: it is freed once its last task ends. */
void wxlua_vm_retire(struct wxlua_vm *vm);
struct worker *wxlua_vm_worker(struct wxlua_vm *vm);
/* Keeps a VM alive across a reload while C code holds values in it. */
void wxlua_vm_hold(struct wxlua_vm *vm);
void wxlua_vm_release(struct wxlua_vm *vm);
lua_State *wxlua_vm_state(struct wxlua_vm *vm); /* the main thread: for calls made
                                               while a task is suspended */

/* Compiles (without running) every script of cfg in a scratch state, for
 * `wxgate check` and before a reload. 0 ok; -1 with "file:line: msg" lines. */
int wxlua_check_scripts(const struct config *cfg, char *err, size_t errsz);

/* Serves r if a route matches its path (returns 1), else returns 0. */
int wxlua_vm_route(struct wxlua_vm *vm, struct http_req *r);

/* Calls hook `name` of campaign `campaign` (index in cfg->campaigns) in a new
 * task, with the request object and nargs values pushed by push(L, arg).
 * done(t, ok, nres, arg) is called once: ok=1 with the hook's nres results on
 * wxlua_task_thread(t) (absent hook: ok=1, nres=0), ok=0 after an error (logged
 * with a traceback). done must call wxlua_task_free(t). Returns -1 if the task
 * could not start (done is not called). */
typedef int (*wxlua_push_fn)(lua_State *L, void *arg);
typedef void (*wxlua_done_fn)(struct wxlua_task *t, int ok, int nres, void *arg);
int wxlua_vm_call_hook(struct wxlua_vm *vm, size_t campaign, const char *name, struct http_req *r,
                       wxlua_push_fn push, wxlua_done_fn done, void *arg);
int wxlua_vm_has_hook(struct wxlua_vm *vm, size_t campaign, const char *name);

/* ---- for C API functions (the async template) ---- */
struct wxlua_task *wxlua_task_current(lua_State *L, const char *api);
struct wxlua_vm *wxlua_task_vm(struct wxlua_task *t);
lua_State *wxlua_task_thread(struct wxlua_task *t);
const char *wxlua_task_rid(struct wxlua_task *t);   /* request id or NULL */
const char *wxlua_current_rid(lua_State *L);        /* of the running task, or NULL */
const struct config *wxlua_vm_config(lua_State *L); /* the config of L's VM */
const char *wxlua_loading_script(lua_State *L);     /* the script being loaded, or NULL */
void wxlua_task_wait(struct wxlua_task *t, void (*cancel)(void *op), void *op);
void wxlua_task_resume(struct wxlua_task *t, int nresults);
void wxlua_task_free(struct wxlua_task *t);

/* Pushes the chunk of a module compiled into the binary (lua/NAME.lua), for
 * use in a plain state. 0 ok, -1 (nothing pushed) when there is none. */
int wxlua_bundle_load(lua_State *L, const char *module);

/* Per-area injectors: each adds its functions to the table on top of L. */
void wxlua_wx_inject(lua_State *L);    /* log, now, random, sleep: lua_wx.c */
void wxlua_http_inject(lua_State *L);  /* http.request: lua_http.c */
void wxlua_store_inject(lua_State *L); /* store.get/set/add/incr/del: lua_store.c */
void wxlua_jssdk_inject(lua_State *L); /* jssdk: lua_jssdk.c */

#endif
