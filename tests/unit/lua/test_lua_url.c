/* Unit tests for core/lua/lua_url.c and lua/wx/url.lua (the wx.url API over
 * the URL module): Lua snippets run by lua_snippet.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lua_snippet.h"

static const char url_escape_snippet[] =
    "local url = require 'wx.url'\n"
    "eq(url.escape('aZ09-._~'), 'aZ09-._~')\n"
    "eq(url.escape('a b&c=d/e?f#g+h%'), 'a%20b%26c%3Dd%2Fe%3Ff%23g%2Bh%25')\n"
    "eq(url.escape('\\228\\184\\173'), '%E4%B8%AD')\n"
    "eq(url.escape(42), '42')\n"
    "eq(url.unescape('a%20b+c%2B%e4%B8%AD'), 'a b+c+\\228\\184\\173')\n"
    "eq(url.unescape('a+b', true), 'a b')\n"
    "eq(url.unescape('100%', true), '100%', 'malformed kept')\n"
    "eq(url.unescape('%zz%4'), '%zz%4')\n"
    "eq(url.unescape(url.escape('\\0\\1 \\255~')), '\\0\\1 \\255~')\n"
    "raises(url.escape, 'bad argument', nil)\n"
    "raises(url.unescape, 'bad argument', {})\n"
    "local m, l = url.parse_query('a=1&b=x+y&a=2&&c&d=%3D=&%E4%B8%AD=v')\n"
    "eq(m.a, '1') eq(m.b, 'x y') eq(m.c, '') eq(m.d, '==') eq(m['\\228\\184\\173'], 'v')\n"
    "eq(#l, 6) eq(l[3][1], 'a') eq(l[3][2], '2') eq(l[4][1], 'c')\n"
    "eq(url.encode_query({b = 'x y', a = 1, c = true}), 'a=1&b=x%20y&c=true')\n"
    "eq(url.encode_query({{'z', '1'}, {'a', '&'}, {'z', 2}}), 'z=1&a=%26&z=2')\n"
    "eq(url.encode_query({}), '')\n"
    "raises(url.encode_query, 'table', 'a=b')\n"
    "raises(url.encode_query, 'function value', {a = print})\n";

static void test_lua_url_escape_query(void **state) { RUN(url_escape_snippet); }

static const char url_parse_snippet[] =
    "local url = require 'wx.url'\n"
    "local t = "
    "assert(url.parse('HTTPS://Bob:pw@H5.Example.COM:8443/spring/a%20b?x=1&y=a+b&x=2#/"
    "route?q=1'))\n"
    "eq(t.scheme, 'https') eq(t.user, 'Bob:pw') eq(t.host, 'h5.example.com') eq(t.port, 8443)\n"
    "eq(t.path, '/spring/a%20b') eq(t.query, 'x=1&y=a+b&x=2') eq(t.fragment, '/route?q=1')\n"
    "eq(t.args.x, '1') eq(t.args.y, 'a b') eq(#t.arg_pairs, 3) eq(t.arg_pairs[3][2], '2')\n"
    "eq(url.build(t), 'https://Bob:pw@h5.example.com:8443/spring/a%20b?x=1&y=a+b&x=2#/route?q=1')\n"
    "t = assert(url.parse('http://a.com'))\n"
    "eq(t.path, '') eq(t.port, nil) eq(t.query, nil) eq(t.fragment, nil) eq(t.user, nil)\n"
    "eq(next(t.args), nil)\n"
    "t = assert(url.parse('http://a.com/?#'))\n"
    "eq(t.path, '/') eq(t.query, '') eq(t.fragment, '')\n"
    "eq(url.build(t), 'http://a.com/?#')\n"
    "t = assert(url.parse('http://[::1]:8080/x'))\n"
    "eq(t.host, '[::1]') eq(t.port, 8080)\n"
    "t = assert(url.parse('/cb?code=C&state=S#top'))\n"
    "eq(t.scheme, nil) eq(t.host, nil) eq(t.path, '/cb') eq(t.args.code, 'C') eq(t.fragment, "
    "'top')\n"
    "eq(url.build(t), '/cb?code=C&state=S#top')\n"
    "for _, u in ipairs({'https://a.com/p', 'http://127.0.0.1:80/a/b?c=d', 'weixin://dl/x',\n"
    "                    'https://a.com/p#/spa/route', 'https://a.com/%E4%B8%AD?q=%20'}) do\n"
    "  eq(url.build(assert(url.parse(u))), u, 'round trip')\n"
    "end\n"
    "eq(url.build({scheme = 'https', host = 'a.com', path = '/x', query = 'a=1'}),\n"
    "   'https://a.com/x?a=1')\n"
    "raises(url.build, 'scheme', {host = 'a.com'})\n"
    "local bad = {'', 'a.com/path', '//evil.com/x', 'https:/a.com', 'javascript:alert(1)',\n"
    "  'https://a.com/a b', 'https://a.com/\\n', 'https://a.com\\t/', 'https://a.com/\\0',\n"
    "  ' https://a.com', 'https://a.com\\\\@b.com/', 'https://a.com/\\\\evil', '/\\\\evil.com',\n"
    "  'https://', 'https:///path', 'https://a.com:0/', 'https://a.com:65536/',\n"
    "  'https://a.com:8x/', 'https://a.com:-1/', 'https://a@b@c.com/',\n"
    "  'https://\\228\\184\\173.com/', '1http://a.com/', 'https://a.com\\127/', 'https://[zz]/'}\n"
    "for _, u in ipairs(bad) do\n"
    "  local v, err = url.parse(u)\n"
    "  eq(v, nil, string.format('%q', u)) assert(type(err) == 'string')\n"
    "end\n"
    "eq(select(2, url.parse(nil)), 'url must be a string')\n"
    "eq(url.parse('https://good.com@evil.com/').host, 'evil.com', 'userinfo is not the host')\n"
    "eq(url.parse('https://good.com%2F@evil.com/').host, 'evil.com')\n";

static void test_lua_url_parse_build(void **state) { RUN(url_parse_snippet); }

static const char url_add_query_snippet[] =
    "local url = require 'wx.url'\n"
    "local T = {wx_ticket = 'T'}\n"
    "eq(url.add_query('https://a.com/p#/spa/route', T), 'https://a.com/p?wx_ticket=T#/spa/route')\n"
    "eq(url.add_query('https://a.com/p?x=1#h', T), 'https://a.com/p?x=1&wx_ticket=T#h')\n"
    "eq(url.add_query('https://a.com/p', T), 'https://a.com/p?wx_ticket=T')\n"
    "eq(url.add_query('https://a.com', T), 'https://a.com?wx_ticket=T')\n"
    "eq(url.add_query('https://a.com/#/a?b=c', T), 'https://a.com/?wx_ticket=T#/a?b=c')\n"
    "eq(url.add_query('https://a.com/p?', T), 'https://a.com/p?wx_ticket=T')\n"
    "eq(url.add_query('https://a.com/p?wx_ticket=OLD&x=%20&wx_ticket=2#f', T),\n"
    "   'https://a.com/p?x=%20&wx_ticket=T#f', 'replaced')\n"
    "eq(url.add_query('https://a.com/p?a=1', {z = 'x y', b = '&'}),\n"
    "   'https://a.com/p?a=1&b=%26&z=x%20y', 'sorted')\n"
    "eq(url.add_query('https://a.com/p', {{'z', 1}, {'b', 2}}), 'https://a.com/p?z=1&b=2')\n"
    "eq(url.add_query('https://a.com/p?x=1#h', {}), 'https://a.com/p?x=1#h')\n"
    "eq(url.add_query('/p#h', T), '/p?wx_ticket=T#h')\n"
    "local v, err = url.add_query('not a url', T)\n"
    "eq(v, nil) assert(err)\n"
    "raises(url.add_query, 'table', 'https://a.com/', 'x=1')\n";

static void test_lua_url_add_query(void **state) { RUN(url_add_query_snippet); }

static const char urlcore_snippet[] =
    "local core = require 'wx.urlcore'\n"
    "local p = assert(core.split('https://U%40x:pw@H5.Example.com:8443/a%20b?x=1#f'))\n"
    "eq(p.scheme, 'https') eq(p.user, 'U@x') eq(p.password, 'pw') eq(p.port, '8443')\n"
    "eq(p.path, '/a%20b') eq(p.query, 'x=1') eq(p.fragment, 'f')\n"
    "eq(select(2, core.split('http://[zz]/')) ~= nil, true, 'bad host has a reason')\n"
    "eq(core.escape('a\\0b c'), 'a%00b%20c')\n"
    "eq(core.unescape('a%00b%zz'), 'a\\0b%zz')\n"
    "-- the host scripts see is the host the gateway's allow-lists see\n"
    "eq(require('wx.url').parse('https://0x7f.1/'), nil, 'a host not written plainly')\n";

static void test_lua_urlcore(void **state) { RUN(urlcore_snippet); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lua_urlcore),
        cmocka_unit_test(test_lua_url_escape_query),
        cmocka_unit_test(test_lua_url_parse_build),
        cmocka_unit_test(test_lua_url_add_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
