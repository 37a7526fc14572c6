/* Unit tests for core/lua/lua_pattern.c: the budgeted matcher gives LuaJIT's own
 * results (or errors) on the same patterns and subjects, and a pathological
 * pattern is stopped by the budget instead of running for minutes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <lauxlib.h>
#include <lualib.h>

#include "lua_pattern.h"

static int budget_calls;
static int budget_limit; /* over budget after this many checks; 0: never */

static int test_budget(lua_State *L)
{
    (void)L;
    budget_calls++;
    return budget_limit && budget_calls >= budget_limit;
}

/* A state where `ref` is LuaJIT's string library functions and `ours` the
 * budgeted ones. */
static lua_State *new_state(void)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    lua_newtable(L);
    const char *names[] = {"find", "match", "gmatch", "gsub", NULL};
    lua_getglobal(L, "string");
    for (int i = 0; names[i]; i++) {
        lua_getfield(L, -1, names[i]);
        lua_setfield(L, -3, names[i]);
    }
    lua_pop(L, 1);
    lua_setglobal(L, "ref");
    lua_newtable(L);
    wxlua_pattern_inject(L, test_budget);
    lua_setglobal(L, "ours");
    return L;
}

static void run(lua_State *L, const char *code)
{
    if (luaL_dostring(L, code) != 0)
        fail_msg("%s", lua_tostring(L, -1));
}

/* The comparison, in Lua: every function over every subject and pattern,
 * with several start positions and replacements; results are serialised
 * (errors as "error") and must be equal. */
static const char *COMPARE =
    "local function ser(ok, ...)\n"
    "  if not ok then return 'error' end\n"
    "  local t = { select('#', ...) }\n"
    "  for i = 1, select('#', ...) do t[#t + 1] = type((select(i, ...))) .. ':' .. "
    "tostring((select(i, ...))) end\n"
    "  return table.concat(t, '|')\n"
    "end\n"
    "local function gm(f, s, p)\n"
    "  local out, n = {}, 0\n"
    "  for a, b, c in f(s, p) do n = n + 1; out[#out + 1] = tostring(a) .. ',' .. tostring(b) "
    ".. ',' .. tostring(c); if n > 50 then break end end\n"
    "  return table.concat(out, ';')\n"
    "end\n"
    "local repls = { '%0-%1', 'x', '%%', '%2', '', { a = 'A', b = false, ['1'] = 7 },\n"
    "  function(a, b) if a == 'b' then return nil end return (a or '') .. '!' end, 12 }\n"
    "local checked = 0\n"
    "return function(subjects, patterns)\n"
    "  for _, s in ipairs(subjects) do for _, p in ipairs(patterns) do\n"
    "    for _, init in ipairs { nil, 1, 2, -2, 0, 100, -100 } do\n"
    "      for _, fn in ipairs { 'find', 'match' } do\n"
    "        local a = ser(pcall(ref[fn], s, p, init))\n"
    "        local b = ser(pcall(ours[fn], s, p, init))\n"
    "        if a ~= b then error(fn .. '(' .. ('%q'):format(s) .. ', ' .. ('%q'):format(p) .. ', "
    "' "
    ".. tostring(init) .. '): LuaJIT ' .. a .. ', ours ' .. b) end\n"
    "      end\n"
    "    end\n"
    "    local a = ser(pcall(ref.find, s, p, 1, true))\n"
    "    local b = ser(pcall(ours.find, s, p, 1, true))\n"
    "    if a ~= b then error('plain find ' .. ('%q'):format(p) .. ': ' .. a .. ' vs ' .. b) end\n"
    "    a = ser(pcall(gm, ref.gmatch, s, p)); b = ser(pcall(gm, ours.gmatch, s, p))\n"
    "    if a ~= b then error('gmatch(' .. ('%q'):format(s) .. ', ' .. ('%q'):format(p) .. '): ' "
    ".. a .. ' vs ' .. b) end\n"
    "    for ri, r in ipairs(repls) do for _, n in ipairs { nil, 0, 1, 2 } do\n"
    "      a = ser(pcall(ref.gsub, s, p, r, n)); b = ser(pcall(ours.gsub, s, p, r, n))\n"
    "      if a ~= b then error('gsub(' .. ('%q'):format(s) .. ', ' .. ('%q'):format(p) .. ', "
    "repl ' .. ri .. ', ' .. tostring(n) .. '): ' .. a .. ' vs ' .. b) end\n"
    "    end end\n"
    "    checked = checked + 1\n"
    "  end end\n"
    "  return checked\n"
    "end\n";

static void same_as_luajit_on_chosen_patterns(void **state)
{
    (void)state;
    lua_State *L = new_state();
    assert_int_equal(luaL_loadstring(L, COMPARE), 0);
    assert_int_equal(lua_pcall(L, 0, 1, 0), 0);
    lua_setglobal(L, "compare");
    run(L, "local subjects = { '', 'a', 'hello world', 'key=val; k2=v2', '  trim me  ',\n"
           "  'THE (quick) [brown] {fox}', 'a.b.c', '2026-12-01T23:59:59Z', 'aaa', 'abcabcabc',\n"
           "  'x\\0y\\0z', '\\200\\255\\1', 'f(a(b)c)d', '%%', 'https://h5.example.com/p?x=1#h',\n"
           "  'THE END', 'one two  three', '((()))', '[]', '-', '^$' }\n"
           "local patterns = { '', 'o', 'o w', '^h', 'd$', '^$', '.', '.-', '.*', '.+', 'a?b',\n"
           "  '%a+', '%A+', '%d%d%d%d%-%d%d', '%s*(.-)%s*$', '(%w+)=(%w+)', '()', '()a()',\n"
           "  '[aeiou]', '[^aeiou]+', '[a-c]+', '[%a_][%w_]*', '[]]', '[^]]', '[a-]', '[%]]',\n"
           "  '%b()', '%b[]', '%bxy', '%f[%w]%w+', '%f[%W]', '(a)%1', '(a*(.)%w(%s*))',\n"
           "  '%', '[a', '(', ')', '%b', '%f', '%1', '(()', 'x\\0y', '%z', '[%z]', '%c', '%p+',\n"
           "  '%u%l', '%x+', '%g', '%.', 'a-b', '^(.-)%?', '[^%s]+$', '%S+', '(h)(e)(l)(l)(o)',\n"
           "  '((((((((((x))))))))))', '[\\0-\\127]+', '[\\128-\\255]', '^', '$', 'a*$', '(.)%1',\n"
           "  '%w+%.%w+', '[%w%.%-]+', '.-%.', '(%d+)-(%d+)-(%d+)T', '^%s+', '%s+$' }\n"
           "local n = compare(subjects, patterns)\n"
           "assert(n == #subjects * #patterns)\n");
    lua_close(L);
}

/* Random patterns from pieces of pattern syntax, against random subjects:
 * thousands of combinations a person would not think of. */
static void same_as_luajit_on_generated_patterns(void **state)
{
    (void)state;
    lua_State *L = new_state();
    assert_int_equal(luaL_loadstring(L, COMPARE), 0);
    assert_int_equal(lua_pcall(L, 0, 1, 0), 0);
    lua_setglobal(L, "compare");
    run(L,
        "local seed = 12345\n"
        "local function rnd(n) seed = (seed * 1103515245 + 12345) % 2147483648 return seed % n + 1 "
        "end\n"
        "local pieces = { 'a', 'b', '.', '%a', '%d', '%s', '%W', '[ab]', '[^a]', '[a-c]', '*', "
        "'+', '-',\n"
        "  '?', '(', ')', '()', '%1', '%b()', '%f[%a]', '^', '$', '%', '[', ']', '%%', 'x', ' ' }\n"
        "local chars = { 'a', 'b', 'c', ' ', '(', ')', '1', '2', 'x', '%', '.', '\\0' }\n"
        "local subjects, patterns = {}, {}\n"
        "for i = 1, 40 do local t = {} for j = 1, rnd(12) - 1 do t[j] = chars[rnd(#chars)] end\n"
        "  subjects[i] = table.concat(t) end\n"
        "for i = 1, 120 do local t = {} for j = 1, rnd(6) do t[j] = pieces[rnd(#pieces)] end\n"
        "  patterns[i] = table.concat(t) end\n"
        "assert(compare(subjects, patterns) == 40 * 120)\n");
    lua_close(L);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ("a"):rep(100):find(("a-"):rep(5) .. "b") takes minutes in LuaJIT; ours
 * asks the budget every few thousand steps and stops when it says so. */
static void pathological_pattern_is_stopped_by_the_budget(void **state)
{
    (void)state;
    lua_State *L = new_state();
    budget_calls = 0;
    budget_limit = 50;
    double t0 = now_s();
    int rc = luaL_dostring(L, "return ours.find(('a'):rep(100), ('a-'):rep(5) .. 'b')");
    double took = now_s() - t0;
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(lua_tostring(L, -1), "cpu budget exceeded"));
    assert_int_equal(budget_calls, 50);
    assert_true(took < 0.5);
    /* Every entry point counts: gmatch, gsub and match too. */
    const char *calls[] = {
        "for x in ours.gmatch(('a'):rep(100), ('a-'):rep(5) .. 'b') do end",
        "ours.gsub(('a'):rep(100), ('a-'):rep(5) .. 'b', 'x')",
        "ours.match(('a'):rep(100), ('a*'):rep(6) .. 'b')",
        "ours.find(('('):rep(3000), '%b()')", /* quadratic */
        "ours.find(('a'):rep(3000), '%a+$')", /* linear */
        NULL,
    };
    for (int i = 0; calls[i]; i++) {
        budget_calls = 0;
        lua_settop(L, 0);
        rc = luaL_dostring(L, calls[i]);
        if (i == 4) { /* finishes within a few checks, no error */
            assert_int_equal(rc, 0);
            continue;
        }
        assert_int_not_equal(rc, 0);
        assert_non_null(strstr(lua_tostring(L, -1), "cpu budget exceeded"));
    }
    /* With budget left, the same calls of ordinary size just work. */
    budget_limit = 0;
    lua_settop(L, 0);
    run(L, "assert(ours.find(('a'):rep(10) .. 'b', ('a-'):rep(5) .. 'b') == 1)");
    lua_close(L);
}

static void deep_recursion_is_refused(void **state)
{
    (void)state;
    lua_State *L = new_state();
    budget_limit = 0;
    int rc = luaL_dostring(L, "return ours.match(('a'):rep(1000), ('a?'):rep(500))");
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(lua_tostring(L, -1), "pattern too complex"));
    lua_close(L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_as_luajit_on_chosen_patterns),
        cmocka_unit_test(same_as_luajit_on_generated_patterns),
        cmocka_unit_test(pathological_pattern_is_stopped_by_the_budget),
        cmocka_unit_test(deep_recursion_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
