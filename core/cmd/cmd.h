/* What the subcommands (main.c, sandbox_cmd.c, demo_cmd.c) share: one
 * option parser over getopt_long, driven by a table of the command's
 * options, and the setters of the config table a command builds in Lua. */
#ifndef WX_CMD_H
#define WX_CMD_H
#include <lua.h>
#include <stddef.h>

/* One option of a subcommand. Every option takes a value: -x VALUE,
 * --name VALUE or --name=VALUE. */
struct cmd_opt {
    const char *name; /* the long name, without "--" */
    char short_name;  /* -x, or 0 for none */
    const char **str; /* receives the value, or */
    int *num;         /* receives atoi(value) */
};

enum {
    CMD_OK = 0,
    CMD_BAD = -1,      /* an unknown option, or an argument that is not an option */
    CMD_NO_VALUE = -2, /* an option given last, without its value */
};

/* Parses argv[2..] (argv[1] is the subcommand) into the options' targets;
 * a later option overrides an earlier one. Prints nothing: on an error the
 * caller prints its usage. Returns CMD_OK, CMD_BAD or CMD_NO_VALUE. */
int cmd_parse(int argc, char **argv, const struct cmd_opt *opts, size_t n_opts);

/* Whether argv[2..] asks for help (-h or --help): the command then prints
 * its usage on stdout and exits 0. */
int cmd_wants_help(int argc, char **argv);

/* On the table on top of L: t[key] = val, unless val is NULL (not given). */
void cmd_set_str(lua_State *L, const char *key, const char *val);
/* On the table on top of L: t[key] = n, unless n <= 0 (not given). */
void cmd_set_count(lua_State *L, const char *key, int n);

#endif
