/* Unit tests for core/lua/lua_json.c: jansson values pushed as Lua tables (what a
 * hook sees of the user record). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <lauxlib.h>
#include <lualib.h>

#include "lua_json.h"

/* Pushes the JSON text, then runs the Lua check with it as `v`; the check
 * returns true or an error message. */
static void check(const char *json, const char *lua_check)
{
    json_t *v = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    assert_non_null(v);
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    assert_int_equal(luaL_loadstring(L, lua_check), 0);
    wxlua_push_json(L, v);
    if (lua_pcall(L, 1, 1, 0) != 0 || !lua_toboolean(L, -1))
        fail_msg("%s: %s", json, lua_tostring(L, -1) ? lua_tostring(L, -1) : "false");
    lua_close(L);
    json_decref(v);
}

static void user_record(void **state)
{
    (void)state;
    check("{\"openid\":\"o1\",\"nickname\":\"小明\",\"sex\":1,\"privilege\":[],"
          "\"is_snapshotuser\":false,\"score\":1.5}",
          "local v = ... return v.openid == 'o1' and v.nickname == '小明' and v.sex == 1 "
          "and type(v.privilege) == 'table' and #v.privilege == 0 "
          "and v.is_snapshotuser == false and v.score == 1.5");
}

static void arrays_nesting_and_null(void **state)
{
    (void)state;
    check("[\"a\",[1,2,{\"k\":true}],null]",
          "local v = ... return #v == 3 and v[1] == 'a' and v[2][2] == 2 and v[2][3].k == true "
          "and type(v[3]) == 'userdata'");
    check("\"a\\u0000b\"", "local v = ... return #v == 3");
}

static void deep_nesting_is_cut(void **state)
{
    (void)state;
    char json[200] = "";
    for (int i = 0; i < 40; i++)
        strcat(json, "[");
    for (int i = 0; i < 40; i++)
        strcat(json, "]");
    check(json, "local v, d = ..., 0 while type(v) == 'table' do v = v[1]; d = d + 1 end "
                "return d <= 33 and d >= 32");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(user_record),
        cmocka_unit_test(arrays_nesting_and_null),
        cmocka_unit_test(deep_nesting_is_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
