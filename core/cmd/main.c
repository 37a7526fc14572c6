/* wxgate: the command line. Read top-down: main → server (server.c) →
 * handlers (handler_*.c) → Lua runtime (lua_runtime.c) → fetch/store. */
#include "cmd.h"
#include "config.h"
#include "log.h"
#include "lua_runtime.h"
#include "server.h"
#include "store.h"

int sandbox_main(int argc, char **argv); /* sandbox_cmd.c */
int demo_main(int argc, char **argv);    /* demo_cmd.c */
int version_main(void);                  /* version_cmd.c */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Read by jemalloc (linked into the release binary) at start. A background
 * thread returns freed pages to the system after the decay time (10 s), so
 * the memory of a spike comes back once it is over; without it jemalloc
 * purges only while allocating, and an idle gateway kept its peak RSS
 * (tests/bench/bench_chaos.sh checks it). Unused without jemalloc. */
const char *malloc_conf = "background_thread:true";

static int usage(FILE *out)
{
    fprintf(out, "usage: wxgate run -c FILE      serve with the config in FILE (-c, --config)\n"
                 "       wxgate check -c FILE    validate FILE, its store url and scripts\n"
                 "       wxgate sandbox [...]    the offline WeChat (wxgate sandbox --help)\n"
                 "       wxgate demo [...]       gateway + sandbox + example campaign "
                 "(wxgate demo --help)\n"
                 "       wxgate version          version, git revision, library versions\n");
    return out == stderr ? 2 : 0;
}

/* Loads and validates FILE and every script it names; prints what is wrong. */
static struct config *load_checked(const char *path)
{
    static char err[16384];
    struct config *c = config_load(path, err, sizeof(err));
    if (c && wxlua_check_scripts(c, err, sizeof(err)) != 0) {
        config_release(c);
        c = NULL;
    }
    if (!c)
        fprintf(stderr, "%s\n", err);
    return c;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr);
    const char *cmd = argv[1];
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0)
        return version_main();
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
        return usage(stdout);
    if (strcmp(cmd, "sandbox") == 0)
        return sandbox_main(argc, argv);
    if (strcmp(cmd, "demo") == 0)
        return demo_main(argc, argv);
    if (strcmp(cmd, "check") == 0 || strcmp(cmd, "run") == 0) {
        const char *path = NULL;
        const struct cmd_opt opts[] = {{"config", 'c', &path, NULL}};
        if (cmd_wants_help(argc, argv))
            return usage(stdout);
        int rc = cmd_parse(argc, argv, opts, 1);
        if (rc == CMD_BAD)
            return usage(stderr);
        if (rc == CMD_NO_VALUE || !path) {
            fprintf(stderr, "wxgate %s: missing -c FILE\n", cmd);
            return 2;
        }
        struct config *c = load_checked(path);
        if (!c)
            return 1;
        if (strcmp(cmd, "check") == 0) {
            /* The store url too (read and resolved; nothing connects). */
            const char *why = "cannot open";
            store_t *s = store_open(c->store, &why);
            if (!s) {
                fprintf(stderr, "%s: store: %s\n", path, why);
                config_release(c);
                return 1;
            }
            store_close(s);
            if (c->lua_trusted)
                fprintf(stderr, "WARNING: %s\n", config_trusted_warning);
            printf("%s: ok (%zu apps, %zu campaigns, %zu routes)\n", path, c->n_apps,
                   c->n_campaigns, c->n_routes);
            config_release(c);
            return 0;
        }
        return server_run(c, path, NULL, NULL);
    }
    fprintf(stderr, "wxgate: unknown command \"%s\"\n", cmd);
    return usage(stderr);
}
