/* The subcommands' shared command-line pieces (see cmd.h). */
#include "cmd.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define CMD_MAX_OPTS 16

/* What getopt_long answers for option i: its short letter, or 256 + i for
 * a long-only one (never a character getopt itself returns). */
static int opt_code(const struct cmd_opt *opts, size_t i)
{
    return opts[i].short_name ? opts[i].short_name : 256 + (int)i;
}

int cmd_parse(int argc, char **argv, const struct cmd_opt *opts, size_t n_opts)
{
    struct option longs[CMD_MAX_OPTS + 1] = {{0}};
    /* '+': stop at the first non-option; ':': answer ':' for a missing value */
    char shorts[2 + 2 * CMD_MAX_OPTS + 1] = "+:";
    size_t ns = 2;

    if (n_opts > CMD_MAX_OPTS)
        return CMD_BAD;
    for (size_t i = 0; i < n_opts; i++) {
        longs[i] = (struct option){opts[i].name, required_argument, NULL, opt_code(opts, i)};
        if (opts[i].short_name) {
            shorts[ns++] = opts[i].short_name;
            shorts[ns++] = ':';
        }
    }
    shorts[ns] = '\0';

    /* argv[1], the subcommand, stands where getopt expects the program name. */
    int sub_argc = argc - 1, c;
    char **sub_argv = argv + 1;
    opterr = 0; /* no messages of getopt's own: the caller prints its usage */
    optind = 0; /* 0, not 1: glibc starts afresh, for a second parse in one process */
    while ((c = getopt_long(sub_argc, sub_argv, shorts, longs, NULL)) != -1) {
        if (c == ':')
            return CMD_NO_VALUE;
        size_t i = 0;
        while (i < n_opts && c != opt_code(opts, i))
            i++;
        if (i == n_opts)
            return CMD_BAD; /* '?': unknown, or an ambiguous abbreviation */
        if (opts[i].str)
            *opts[i].str = optarg;
        else
            *opts[i].num = atoi(optarg);
    }
    return optind < sub_argc ? CMD_BAD : CMD_OK;
}

int cmd_wants_help(int argc, char **argv)
{
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    return 0;
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
