/* The subcommands' shared command-line pieces (see cmd.h). */
#include "cmd.h"

#include <getopt.h>
#include <stdlib.h>

#define CMD_MAX_OPTS 16

int cmd_parse(int argc, char **argv, const struct cmd_opt *opts, size_t n_opts)
{
    struct option longs[CMD_MAX_OPTS + 1] = {{0}};
    char shorts[2 + 2 * CMD_MAX_OPTS + 1] = "+:"; /* stop at a non-option; ':' for a missing value */
    size_t ns = 2;

    if (n_opts > CMD_MAX_OPTS)
        return CMD_BAD;
    for (size_t i = 0; i < n_opts; i++) {
        /* getopt_long answers a long option with its short letter, or with
         * 256 + its index when it has none. */
        longs[i] = (struct option){opts[i].name, required_argument, NULL,
                                   opts[i].short_name ? opts[i].short_name : 256 + (int)i};
        if (opts[i].short_name) {
            shorts[ns++] = opts[i].short_name;
            shorts[ns++] = ':';
        }
    }
    shorts[ns] = '\0';

    /* argv[1], the subcommand, stands where getopt expects the program name. */
    int sub_argc = argc - 1;
    char **sub_argv = argv + 1;
    int c, rc = CMD_OK;
    opterr = 0;   /* no messages of getopt's own: the caller prints its usage */
    optind = 0;   /* 0, not 1: glibc re-initializes, for a second parse in one process */
    while (rc == CMD_OK && (c = getopt_long(sub_argc, sub_argv, shorts, longs, NULL)) != -1) {
        if (c == ':') {
            rc = CMD_NO_VALUE;
            break;
        }
        size_t i = 0;
        while (i < n_opts && c != (opts[i].short_name ? opts[i].short_name : 256 + (int)i))
            i++;
        if (i == n_opts) {
            rc = CMD_BAD; /* '?': unknown, or an ambiguous abbreviation */
            break;
        }
        if (opts[i].str)
            *opts[i].str = optarg;
        else
            *opts[i].num = atoi(optarg);
    }
    if (rc == CMD_OK && optind < sub_argc)
        rc = CMD_BAD;
    return rc;
}

void cmd_set_str(lua_State *L, const char *key, const char *val)
{
    if (!val)
        return;
    lua_pushstring(L, val);
    lua_setfield(L, -2, key);
}

void cmd_set_count(lua_State *L, const char *key, int n)
{
    if (n <= 0)
        return;
    lua_pushinteger(L, n);
    lua_setfield(L, -2, key);
}
