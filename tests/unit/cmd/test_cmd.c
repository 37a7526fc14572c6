/* Unit tests for core/cmd/cmd.c: the subcommands' option parser (getopt_long
 * over a table) and the config-table setters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <lauxlib.h>
#include <lua.h>

#include "cmd.h"

struct opts {
    const char *listen, *store, *config;
    int workers;
};

/* Parses "wxgate sub ARGS..." (args NULL-terminated) into o. */
static int parse(struct opts *o, const char *const *args)
{
    static char *argv[32];
    int argc = 0;
    argv[argc++] = "wxgate";
    argv[argc++] = "sub";
    for (; *args; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    const struct cmd_opt table[] = {
        {"listen", 'l', &o->listen, NULL},
        {"store", 0, &o->store, NULL},
        {"config", 'c', &o->config, NULL},
        {"workers", 0, NULL, &o->workers},
    };
    *o = (struct opts){.listen = "default"};
    return cmd_parse(argc, argv, table, sizeof(table) / sizeof(table[0]));
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void values_in_every_form(void **state)
{
    struct opts o;
    assert_int_equal(parse(&o, ARGS("-l", "a:1", "--store", "memory", "--workers", "3")), CMD_OK);
    assert_string_equal(o.listen, "a:1");
    assert_string_equal(o.store, "memory");
    assert_null(o.config);
    assert_int_equal(o.workers, 3);

    assert_int_equal(parse(&o, ARGS("--listen=b:2", "-cfile.lua", "--workers=2")), CMD_OK);
    assert_string_equal(o.listen, "b:2");
    assert_string_equal(o.config, "file.lua");
    assert_int_equal(o.workers, 2);

    /* A value may start with '-'; a later option wins; a unique prefix is
     * the option. */
    assert_int_equal(parse(&o, ARGS("-c", "-x.lua", "-l", "x:1", "-l", "y:2", "--sto", "s")),
                     CMD_OK);
    assert_string_equal(o.config, "-x.lua");
    assert_string_equal(o.listen, "y:2");
    assert_string_equal(o.store, "s");
}

static void nothing_given_keeps_defaults(void **state)
{
    struct opts o;
    assert_int_equal(parse(&o, ARGS(NULL)), CMD_OK);
    assert_string_equal(o.listen, "default");
    assert_null(o.store);
    assert_int_equal(o.workers, 0);
    assert_int_equal(parse(&o, ARGS("--")), CMD_OK);
}

static void errors(void **state)
{
    struct opts o;
    assert_int_equal(parse(&o, ARGS("--bogus", "x")), CMD_BAD);
    assert_int_equal(parse(&o, ARGS("-x", "x")), CMD_BAD);
    assert_int_equal(parse(&o, ARGS("--help")), CMD_BAD);
    assert_int_equal(parse(&o, ARGS("-l", "a:1", "stray")), CMD_BAD);
    assert_int_equal(parse(&o, ARGS("stray", "-l", "a:1")), CMD_BAD);
    assert_int_equal(parse(&o, ARGS("--", "stray")), CMD_BAD);
    assert_int_equal(parse(&o, ARGS("-l")), CMD_NO_VALUE);
    assert_int_equal(parse(&o, ARGS("--store")), CMD_NO_VALUE);
    assert_int_equal(parse(&o, ARGS("-l", "a:1", "--workers")), CMD_NO_VALUE);
    /* And a good parse after bad ones: getopt's state starts afresh. */
    assert_int_equal(parse(&o, ARGS("-l", "ok:1")), CMD_OK);
    assert_string_equal(o.listen, "ok:1");
}

static void table_setters(void **state)
{
    lua_State *L = luaL_newstate();
    lua_newtable(L);
    cmd_set_str(L, "a", "x");
    cmd_set_str(L, "b", NULL);
    cmd_set_count(L, "n", 4);
    cmd_set_count(L, "zero", 0);
    lua_getfield(L, 1, "a");
    assert_string_equal(lua_tostring(L, -1), "x");
    lua_getfield(L, 1, "b");
    assert_true(lua_isnil(L, -1));
    lua_getfield(L, 1, "n");
    assert_int_equal(lua_tointeger(L, -1), 4);
    lua_getfield(L, 1, "zero");
    assert_true(lua_isnil(L, -1));
    lua_close(L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(values_in_every_form),
        cmocka_unit_test(nothing_given_keeps_defaults),
        cmocka_unit_test(errors),
        cmocka_unit_test(table_setters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
