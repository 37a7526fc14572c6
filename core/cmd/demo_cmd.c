/* `wxgate demo`: the gateway, the sandbox (unless --sandbox points at a
 * running one) and the example campaign "demo" in one command. The config is
 * built by lua/wxgate/demo_config.lua from the command line. */
#include "cmd.h"
#include "config.h"
#include "lua_runtime.h"
#include "server.h"

#include <lauxlib.h>
#include <luajit.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct demo_opts {
    const char *listen, *public_url, *store, *examples; /* the gateway */
    const char *sandbox, *ca_file;                      /* a running sandbox, its CA */
    const char *dashboard;                              /* the admin listener */
    int workers;
    char api_key[128];
};

/* Where the demo looks for its examples (the folder with demo/app.lua),
 * after --examples, first match wins:
 *  1. the source tree's examples/, when this binary runs from the build
 *     folder it was built in (whatever folder `cmake -B` named);
 *  2. the data directory beside the binary (BIN/../share/wxgate/examples):
 *     an installation under any prefix;
 *  3. the data directory the build was configured with (WXGATE_DATADIR).
 * Fills dirs with malloc'd strings and returns how many. */
#define DEMO_SEARCH_MAX 3
static size_t examples_search_path(char *dirs[DEMO_SEARCH_MAX])
{
    char exe[4096];
    size_t n = 0;
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (len > 0) {
        exe[len] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        char *built = realpath(WXGATE_BUILD_DIR, NULL);
        if (built && strcmp(built, exe) == 0 && (dirs[n] = strdup(WXGATE_SOURCE_DIR "/examples")))
            n++;
        free(built);
        if (asprintf(&dirs[n], "%s/%s/examples", exe, WXGATE_DATADIR_FROM_BIN) > 0)
            n++;
    }
    if ((dirs[n] = strdup(WXGATE_DATADIR "/examples")))
        n++;
    return n;
}

static void free_search_path(char *dirs[], size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(dirs[i]);
}

static int demo_usage(FILE *out)
{
    char *dirs[DEMO_SEARCH_MAX];
    size_t n = examples_search_path(dirs);
    fprintf(out, "usage: wxgate demo [-l ADDR] [--store URL] [--sandbox URL [--ca-file PEM]]\n"
                 "                   [--public-url URL] [--examples DIR] [--workers N]\n"
                 "                   [--dashboard ADDR]\n"
                 "  -l, --listen ADDR  where the gateway listens (default 127.0.0.1:8080)\n"
                 "  --store URL        memory (default), redis://host:port/db,\n"
                 "                     redis-sentinel://h1:port,h2:port/MASTER/db or\n"
                 "                     redis-cluster://h1:port,h2:port/\n"
                 "  --sandbox URL      use a running `wxgate sandbox` instead of an embedded one\n"
                 "  --ca-file PEM      the CA of that sandbox's HTTPS certificate\n"
                 "  --public-url URL   the URL users reach (a load balancer in front of several\n"
                 "                     demos); default http://ADDR\n"
                 "  --workers N        worker threads (default: one per core)\n"
                 "  --dashboard ADDR   the admin listener with /dashboard and /metrics\n"
                 "                     (default: the gateway's host, its port + 1)\n"
                 "  --examples DIR     the folder with demo/app.lua; without it, the first of:\n");
    for (size_t i = 0; i < n; i++)
        fprintf(out, "                       %s\n", dirs[i]);
    free_search_path(dirs, n);
    return out == stderr ? 2 : 0;
}

static int has_demo(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/demo/app.lua", dir);
    return access(path, R_OK) == 0;
}

/* The examples folder as an absolute path (the demo config's routes are
 * relative to it), or NULL after saying where it looked. */
static char *find_examples(const char *given)
{
    if (given) {
        char *abs = realpath(given, NULL);
        if (abs && has_demo(abs))
            return abs;
        free(abs);
        fprintf(stderr, "wxgate demo: --examples %s: no demo/app.lua there\n", given);
        return NULL;
    }
    char *dirs[DEMO_SEARCH_MAX];
    size_t n = examples_search_path(dirs);
    char *found = NULL;
    for (size_t i = 0; i < n && !found; i++)
        if (has_demo(dirs[i]))
            found = realpath(dirs[i], NULL);
    if (!found) {
        fprintf(stderr, "wxgate demo: cannot find the examples (demo/app.lua); looked in:\n");
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "  %s\n", dirs[i]);
        fprintf(stderr, "give the folder with --examples DIR\n");
    }
    free_search_path(dirs, n);
    return found;
}

static void print_ready(const struct server *s, void *arg)
{
    const struct demo_opts *o = arg;
    const struct config *c = s->cfg;
    printf("gateway: %s\n", c->public_url);
    printf("sandbox: %s\n", o->sandbox ? o->sandbox : c->public_url);
    printf("campaign: %s/demo/\n", c->public_url);
    printf("api_key: %s\n", o->api_key);
    const char *host = strcmp(c->admin_host, "0.0.0.0") == 0 ? "127.0.0.1" : c->admin_host;
    printf("dashboard: http://%s:%d/dashboard\n", host, s->admin_port);
    fflush(stdout);
}

int demo_main(int argc, char **argv)
{
    struct demo_opts o = {.listen = "127.0.0.1:8080", .store = "memory"};
    const struct cmd_opt opts[] = {
        {"listen", 'l', &o.listen, NULL}, {"public-url", 0, &o.public_url, NULL},
        {"store", 0, &o.store, NULL},     {"examples", 0, &o.examples, NULL},
        {"sandbox", 0, &o.sandbox, NULL}, {"ca-file", 0, &o.ca_file, NULL},
        {"workers", 0, NULL, &o.workers}, {"dashboard", 0, &o.dashboard, NULL},
    };
    if (cmd_wants_help(argc, argv))
        return demo_usage(stdout);
    if (cmd_parse(argc, argv, opts, sizeof(opts) / sizeof(opts[0])) != CMD_OK)
        return demo_usage(stderr);
    char *host = NULL;
    int port;
    if (config_parse_listen(o.listen, &host, &port) != 0 || port == 0) {
        fprintf(stderr, "wxgate demo: bad listen address %s (host:port, port not 0)\n", o.listen);
        free(host);
        return 1;
    }
    char dashboard[300];
    if (!o.dashboard) {
        if (port == 65535) {
            fprintf(stderr, "wxgate demo: give the dashboard's address with --dashboard\n");
            free(host);
            return 1;
        }
        snprintf(dashboard, sizeof(dashboard), "%s:%d", host, port + 1);
        o.dashboard = dashboard;
    }
    char public_url[512];
    snprintf(public_url, sizeof(public_url), "http://%s:%d",
             strcmp(host, "0.0.0.0") == 0 ? "127.0.0.1" : host, port);
    free(host);
    if (o.public_url) {
        size_t n = strlen(o.public_url);
        while (n && o.public_url[n - 1] == '/')
            n--;
        snprintf(public_url, sizeof(public_url), "%.*s", (int)n, o.public_url);
    }
    char *examples = find_examples(o.examples);
    if (!examples)
        return 1;

    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    /* no JIT compiler anywhere: the service runs with MemoryDenyWriteExecute */
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    char err[8192];
    struct config *c = NULL;
    if (wxlua_bundle_load(L, "wxgate.demo_config") != 0 || lua_pcall(L, 0, 1, 0) != 0) {
        snprintf(err, sizeof(err), "cannot load the demo config");
        goto done;
    }
    lua_newtable(L);
    cmd_set_str(L, "listen", o.listen);
    cmd_set_str(L, "public_url", public_url);
    cmd_set_str(L, "store", o.store);
    cmd_set_str(L, "dashboard", o.dashboard);
    cmd_set_str(L, "sandbox", o.sandbox ? o.sandbox : public_url);
    cmd_set_str(L, "ca_file", o.ca_file);
    cmd_set_str(L, "examples", examples);
    cmd_set_count(L, "workers", o.workers);
    lua_pushboolean(L, o.sandbox == NULL);
    lua_setfield(L, -2, "embedded_sandbox");
    if (lua_pcall(L, 1, 2, 0) != 0) {
        snprintf(err, sizeof(err), "%s", lua_tostring(L, -1));
        goto done;
    }
    /* The apps' secrets, for the config's { env = "NAME" } entries. */
    lua_getfield(L, -1, "env");
    for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1))
        if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING)
            setenv(lua_tostring(L, -2), lua_tostring(L, -1), 1);
    lua_pop(L, 1);
    lua_getfield(L, -1, "api_key");
    snprintf(o.api_key, sizeof(o.api_key), "%s", lua_tostring(L, -1));
    lua_pop(L, 2);
    setenv("WXGATE_DEMO_API_KEY", o.api_key, 1);
    setenv("WXGATE_DEMO_GATEWAY", public_url, 1);
    char path[4200];
    snprintf(path, sizeof(path), "%s/(demo)", examples);
    c = config_from_lua(L, path, err, sizeof(err));
done:
    lua_close(L);
    free(examples);
    if (!c) {
        fprintf(stderr, "wxgate demo: %s\n", err);
        return 1;
    }
    if (wxlua_check_scripts(c, err, sizeof(err)) != 0) {
        fprintf(stderr, "wxgate demo: %s\n", err);
        config_release(c);
        return 1;
    }
    return server_run(c, NULL, print_ready, &o);
}
