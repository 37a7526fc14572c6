/* `wxgate sandbox`: serves the offline WeChat (lua/sandbox.lua) on wxgate's
 * own runtime, over HTTP and optionally HTTPS with a local development CA.
 * This file only turns the command line into a config; the sandbox itself
 * is Lua. */
#include "cmd.h"
#include "config.h"
#include "log.h"
#include "server.h"
#include "dev_ca.h"
#include "tls.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sandbox_opts {
    const char *listen, *config;
    const char *tls_listen, *ca_dir; /* HTTPS, with the CA kept in ca_dir */
    const char *control_token;
    int workers;
};

static int sandbox_usage(FILE *out)
{
    fprintf(out, "usage: wxgate sandbox [-l ADDR] [-c FILE] [--tls ADDR] [--ca-dir DIR]\n"
                 "                      [--control-token TOKEN] [--workers N]\n"
                 "  -l, --listen ADDR    plain HTTP listener (default 127.0.0.1:9000)\n"
                 "  -c, --config FILE    apps and users (default: the built-in test set)\n"
                 "  --tls ADDR           also serve HTTPS on ADDR with a local CA\n"
                 "  --ca-dir DIR         where the CA and certificate live (default "
                 "/tmp/wxgate-sandbox-ca)\n"
                 "  --control-token T    required for /_sandbox/ unless listening on loopback\n"
                 "  --workers N          worker threads (default: one per core)\n");
    return out == stderr ? 2 : 0;
}

static void print_ready(const struct server *s, void *arg)
{
    const struct sandbox_opts *o = arg;
    const struct config *c = s->cfg;
    printf("sandbox: http://%s%s%s:%d\n", strchr(c->listen_host, ':') ? "[" : "", c->listen_host,
           strchr(c->listen_host, ':') ? "]" : "", s->port);
    if (c->tls_listen) {
        printf("sandbox_tls: https://%s:%d\n", c->tls_host, s->tls_port);
        printf("ca: %s/ca.pem\n", o->ca_dir);
    }
    fflush(stdout);
}

int sandbox_main(int argc, char **argv)
{
    struct sandbox_opts o = {
        .listen = "127.0.0.1:9000", .ca_dir = "/tmp/wxgate-sandbox-ca", .workers = 0};
    const struct cmd_opt opts[] = {
        {"listen", 'l', &o.listen, NULL},
        {"config", 'c', &o.config, NULL},
        {"tls", 0, &o.tls_listen, NULL},
        {"ca-dir", 0, &o.ca_dir, NULL},
        {"control-token", 0, &o.control_token, NULL},
        {"workers", 0, NULL, &o.workers},
    };
    if (cmd_wants_help(argc, argv))
        return sandbox_usage(stdout);
    if (cmd_parse(argc, argv, opts, sizeof(opts) / sizeof(opts[0])) != CMD_OK)
        return sandbox_usage(stderr);

    char err[4096];
    char *config_abs = NULL;
    if (o.config && !(config_abs = realpath(o.config, NULL))) {
        fprintf(stderr, "wxgate sandbox: cannot read %s\n", o.config);
        return 1;
    }
    char cert[4096], key[4096];
    if (o.tls_listen) {
        char *host = NULL;
        int port;
        if (config_parse_listen(o.tls_listen, &host, &port) != 0) {
            fprintf(stderr, "wxgate sandbox: bad --tls address %s\n", o.tls_listen);
            free(config_abs);
            return 1;
        }
        const char *hosts[] = {"127.0.0.1", "localhost", "::1", host};
        size_t n_hosts = strcmp(host, "127.0.0.1") && strcmp(host, "localhost") &&
                                 strcmp(host, "::1") && strcmp(host, "0.0.0.0")
                             ? 4
                             : 3;
        int rc = dev_ca_issue(o.ca_dir, hosts, n_hosts, err, sizeof(err));
        free(host);
        if (rc != 0) {
            fprintf(stderr, "wxgate sandbox: %s\n", err);
            free(config_abs);
            return 1;
        }
        snprintf(cert, sizeof(cert), "%s/server.pem", o.ca_dir);
        snprintf(key, sizeof(key), "%s/server-key.pem", o.ca_dir);
    }

    /* The config a user would write for this, built as a Lua table. */
    lua_State *L = luaL_newstate();
    lua_newtable(L);
    cmd_set_str(L, "listen", o.listen);
    cmd_set_count(L, "workers", o.workers);
    if (o.tls_listen) {
        lua_newtable(L);
        cmd_set_str(L, "listen", o.tls_listen);
        cmd_set_str(L, "cert", cert);
        cmd_set_str(L, "key", key);
        lua_setfield(L, -2, "tls");
    }
    lua_newtable(L); /* routes */
    lua_newtable(L); /* routes["/"] */
    cmd_set_str(L, "module", "sandbox");
    lua_newtable(L); /* options */
    cmd_set_str(L, "config", config_abs);
    cmd_set_str(L, "listen", o.listen);
    cmd_set_str(L, "tls_listen", o.tls_listen);
    cmd_set_str(L, "control_token", o.control_token);
    lua_setfield(L, -2, "options");
    lua_setfield(L, -2, "/");
    lua_setfield(L, -2, "routes");
    char cwd[4096];
    if (!getcwd(cwd, sizeof(cwd)))
        snprintf(cwd, sizeof(cwd), "/");
    strncat(cwd, "/(sandbox)", sizeof(cwd) - strlen(cwd) - 1);
    struct config *c = config_from_lua(L, cwd, err, sizeof(err));
    lua_close(L);
    free(config_abs);
    if (!c) {
        fprintf(stderr, "wxgate sandbox: %s\n", err);
        return 1;
    }
    return server_run(c, NULL, print_ready, &o);
}
