/* `wxgate demo`: the gateway, the sandbox (unless --sandbox points at a
 * running one) and the example campaign "demo" in one command. The config is
 * built by lua/wxgate/demo_config.lua from the command line. */
#include "cmd.h"
#include "config.h"
#include "lua_runtime.h"
#include "server.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct demo_opts {
    const char *listen, *public_url, *store, *examples; /* the gateway */
    const char *sandbox, *ca_file;                      /* a running sandbox, its CA */
    int workers;
    char api_key[128];
};

static int demo_usage(void)
{
    fprintf(stderr, "usage: wxgate demo [-l ADDR] [--store URL] [--sandbox URL [--ca-file PEM]]\n"
                    "                   [--public-url URL] [--examples DIR] [--workers N]\n"
                    "  -l ADDR          where the gateway listens (default 127.0.0.1:8080)\n"
                    "  --store URL      memory (default), redis://host:port/db,\n"
                    "                   redis-sentinel://h1:port,h2:port/MASTER/db or\n"
                    "                   redis-cluster://h1:port,h2:port/\n"
                    "  --sandbox URL    use a running `wxgate sandbox` instead of an embedded one\n"
                    "  --public-url URL the URL users reach (a load balancer in front of several\n"
                    "                   demos); default http://ADDR\n"
                    "  --examples DIR   where examples/demo lives (default: beside the binary)\n");
    return 2;
}

/* examples/ of the source tree the binary was built in: build/wxgate → ../examples */
static char *default_examples(void)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return strdup("examples");
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    char path[4200];
    snprintf(path, sizeof(path), "%s/../examples", exe);
    char *real = realpath(path, NULL);
    return real ? real : strdup("examples");
}

static void print_ready(const struct server *s, void *arg)
{
    const struct demo_opts *o = arg;
    const struct config *c = s->cfg;
    printf("gateway: %s\n", c->public_url);
    printf("sandbox: %s\n", o->sandbox ? o->sandbox : c->public_url);
    printf("campaign: %s/demo/\n", c->public_url);
    printf("api_key: %s\n", o->api_key);
    fflush(stdout);
}

int demo_main(int argc, char **argv)
{
    struct demo_opts o = {.listen = "127.0.0.1:8080", .store = "memory"};
    const struct cmd_opt opts[] = {
        {"listen", 'l', &o.listen, NULL}, {"public-url", 0, &o.public_url, NULL},
        {"store", 0, &o.store, NULL},     {"examples", 0, &o.examples, NULL},
        {"sandbox", 0, &o.sandbox, NULL}, {"ca-file", 0, &o.ca_file, NULL},
        {"workers", 0, NULL, &o.workers},
    };
    if (cmd_parse(argc, argv, opts, sizeof(opts) / sizeof(opts[0])) != CMD_OK)
        return demo_usage();
    char *host = NULL;
    int port;
    if (config_parse_listen(o.listen, &host, &port) != 0 || port == 0) {
        fprintf(stderr, "wxgate demo: bad listen address %s (host:port, port not 0)\n", o.listen);
        free(host);
        return 1;
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
    char *examples = o.examples ? strdup(o.examples) : default_examples();

    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
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
    lua_getfield(L, -1, "app_secret");
    setenv("WXGATE_DEMO_APP_SECRET", lua_tostring(L, -1), 1);
    lua_getfield(L, -2, "api_key");
    snprintf(o.api_key, sizeof(o.api_key), "%s", lua_tostring(L, -1));
    lua_pop(L, 3);
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
