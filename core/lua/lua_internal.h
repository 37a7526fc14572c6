/* What the files of the Lua runtime share (see lua_runtime.h): the VM and
 * task structures and the helpers one file offers another. lua_vm.c builds
 * VMs and keeps the budgets, lua_task.c runs coroutines and hooks,
 * lua_route.c answers requests with route scripts, lua_request.c builds the
 * request object. Nothing outside these files includes this header. */
#ifndef WX_LUA_INTERNAL_H
#define WX_LUA_INTERNAL_H
#include "lua_runtime.h"

#include <stddef.h>

struct watchdog_slot;

#define TASK_POOL 64 /* coroutines and task structs kept for reuse, per VM */

struct wxlua_vm {
    lua_State *L;
    struct worker *w; /* NULL for a check-only VM */
    struct config *cfg;
    size_t used, limit; /* bytes allocated by the VM, and its cap */
    int capped;         /* the cap applies (Lua code is running) */
    int retired;
    int tasks;                  /* live tasks */
    struct wxlua_task *current; /* the task being resumed */
    double deadline;            /* of the current resume (monotonic ms) */
    int killed;                 /* the current run went over its budget */
    int collect;                /* run a full GC once the failed task is gone */
    int env_ref;                /* the scripts' environment (lua/wxgate/script_env.lua) */
    int lint_ref;               /* its lint(fn): what a script uses that it lacks */
    const char *loading;        /* the script whose top level is running, or NULL */
    int *route_refs;            /* per cfg->routes: the handler function */
    int *campaign_refs;         /* per cfg->campaigns: the hooks table, or LUA_NOREF */
    int req_mt_ref;             /* the request object's metatable (lua_request.c) */
    /* Reuse: coroutines that returned normally, and task structs. */
    int co_pool[TASK_POOL];
    int n_co_pool;
    struct wxlua_task *free_tasks;
    int n_free_tasks;
};

struct wxlua_task {
    struct wxlua_vm *vm;
    lua_State *co;
    int co_ref;
    struct http_req *r;
    void (*cancel)(void *op); /* the pending async operation */
    void *op;
    wxlua_done_fn done; /* hooks: the caller's continuation */
    void *done_arg;
    int is_route;
    int finished;
    const char *what, *of, *file; /* for the watchdog: "lua hook login", campaign, script */
    const void *req_table;        /* the request object handed to this task's script */
    struct wxlua_task *next_free;
};

extern const char *const wxlua_hook_names[];  /* authorize, login, denied, error */
extern const char *const wxlua_hook_labels[]; /* "lua hook login", ... (watchdog) */

double wxlua_now_ms(void);                  /* monotonic, coarse */
struct wxlua_vm *wxlua_vm_of(lua_State *L); /* the VM of any thread of it */
struct watchdog_slot *wxlua_vm_slot(struct wxlua_vm *vm);
void wxlua_vm_free(struct wxlua_vm *vm); /* now: wxlua_vm_retire when in use */

/* lua_task.c */
struct wxlua_task *wxlua_task_new(struct wxlua_vm *vm, struct http_req *r);
void wxlua_task_run(struct wxlua_task *t, int nargs);
void wxlua_task_abort(void *arg);

/* lua_request.c: pushes the request object of t's request (an empty table
 * without one); its metatable is made once per VM by wxlua_request_init. */
void wxlua_request_init(lua_State *L, struct wxlua_vm *vm);
void wxlua_push_task_request(struct wxlua_task *t);

/* lua_route.c: answers a route task's request with what the script returned. */
void wxlua_route_respond(struct wxlua_task *t, int ok, int nres);

#endif
