/* Unit tests for core/lua/lua_vm.c: building a VM from a config, the
 * scripts' curated library and lint, and budgets while a script loads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "lua_runtime.h"

/* Writes script as x.lua and a config routing /x to it; checks the scripts
 * (as `wxgate check` does). 0, or -1 with err. */
static int check_script(const char *script, const char *lua_opts, char *err, size_t errsz)
{
    char dir[] = "/tmp/wxgate-test-vm-XXXXXX", path[256], cfgp[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/x.lua", dir);
    snprintf(cfgp, sizeof(cfgp), "%s/c.lua", dir);
    FILE *f = fopen(path, "w");
    fputs(script, f);
    fclose(f);
    f = fopen(cfgp, "w");
    fprintf(f, "return { routes = { ['/x'] = 'x.lua' }, lua = { cpu_budget_ms = 50%s } }\n",
            lua_opts);
    fclose(f);
    struct config *c = config_load(cfgp, err, errsz);
    assert_non_null(c);
    int rc = wxlua_check_scripts(c, err, errsz);
    config_release(c);
    unlink(path);
    unlink(cfgp);
    rmdir(dir);
    return rc;
}

static void scripts_load_in_the_curated_library(void **state)
{
    char err[4096];
    assert_int_equal(check_script("local wx = require 'wx'\nlocal t = os.time()\n"
                                  "return function() return 200, wx.json.encode({t}) end\n",
                                  "", err, sizeof(err)),
                     0);
    assert_int_equal(check_script("return function() return 200, io.open('/etc/passwd') end\n", "",
                                  err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "x.lua:1: io.open is not available to scripts"));
    /* Trusted: the whole library, without the lint. */
    assert_int_equal(check_script("return function() return 200, io.open('/etc/passwd') end\n",
                                  ", trusted = true", err, sizeof(err)),
                     0);
}

static void loading_runs_under_the_budget(void **state)
{
    char err[4096];
    assert_int_equal(
        check_script("for i = 1, 1e15 do end\nreturn function() end\n", "", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cpu budget exceeded while loading"));
    assert_int_equal(check_script("while true do pcall(function() while true do end end) end\n", "",
                                  err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "cpu budget exceeded"));
    assert_int_equal(check_script("return 42\n", "", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "must return a function"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scripts_load_in_the_curated_library),
        cmocka_unit_test(loading_runs_under_the_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
