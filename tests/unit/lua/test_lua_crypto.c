/* Unit tests for core/lua/lua_crypto.c and the Lua helper built on it
 * (lua/wx/sign.lua): Lua snippets run by lua_snippet.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lua_snippet.h"

static const char crypto_snippet[] =
    "local c = require 'wx.crypto'\n"
    "local js = 'jsapi_ticket=sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-'\n"
    "  .. 'HhTdfl2fzFy1AOcHKP7qg&noncestr=Wm3WZYTPz0wzccnW&timestamp=1414587457'\n"
    "  .. '&url=http://mp.weixin.qq.com?params=value'\n"
    "eq(c.hex(c.sha1(js)), '0f9de62fce790f9a083d5c99e95740ceb90c27ed', 'jssdk sha1')\n"
    "eq(#c.sha1(''), 20)\n"
    "eq(c.hex(c.sha256('')),\n"
    "   'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'sha256 of nothing')\n"
    "eq(c.hex(c.sha256('abc')),\n"
    "   'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 'sha256')\n"
    "eq(c.hex(c.hmac_sha256('Jefe', 'what do ya want for nothing?')),\n"
    "   '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843', 'hmac')\n"
    "eq(c.hex('\\0\\1\\127\\255'), '00017fff')\n"
    "eq(c.hex(''), '')\n"
    "eq(c.base64url_encode('\\251\\255'), '-_8')\n"
    "eq(c.base64url_encode(''), '')\n"
    "eq(c.base64url_decode('Zm9vYmE'), 'fooba')\n"
    "eq(c.base64url_decode('Zm9vYg=='), 'foob')\n"
    "for _, bad in ipairs({'Z', 'Zm+v', 'Zm9v=', 'Zh', 'a b'}) do\n"
    "  local v, err = c.base64url_decode(bad)\n"
    "  eq(v, nil, bad) eq(err, 'invalid base64url')\n"
    "end\n"
    "for n = 1, 40 do\n"
    "  local r = c.random_bytes(n)\n"
    "  eq(#r, n)\n"
    "  eq(c.base64url_decode(c.base64url_encode(r)), r, 'round trip')\n"
    "end\n"
    "eq(#c.random_bytes(4096), 4096)\n"
    "assert(c.random_bytes(16) ~= c.random_bytes(16))\n"
    "local h = c.random_hex(16)\n"
    "eq(#h, 32) assert(h:find('^[0-9a-f]+$'))\n"
    "local b = c.random_base62(22)\n"
    "eq(#b, 22) assert(b:find('^[0-9A-Za-z]+$'))\n"
    "eq(c.equal('abc', 'abc'), true)\n"
    "eq(c.equal('abc', 'abd'), false)\n"
    "eq(c.equal('abc', 'abcd'), false)\n"
    "eq(c.equal('', ''), true)\n"
    "raises(c.random_bytes, 'bad argument #1', 0)\n"
    "raises(c.random_bytes, 'bad argument #1', 4097)\n"
    "raises(c.random_bytes, 'bad argument #1', 1.5)\n"
    "raises(c.random_bytes, 'bad argument #1', 'x')\n"
    "raises(c.random_bytes, 'bad argument #1')\n"
    "raises(c.random_hex, 'bad argument #1', -1)\n"
    "raises(c.random_base62, 'bad argument #1', 5000)\n"
    "raises(c.hmac_sha256, 'bad argument #2', 'k', nil)\n"
    "raises(c.sha1, 'bad argument #1', {})\n"
    "raises(c.sha256, 'bad argument #1', nil)\n"
    "raises(c.equal, 'bad argument #2', 'a', false)\n"
    "raises(c.base64url_decode, 'bad argument #1', nil)\n";

static void test_lua_crypto_primitives(void **state) { RUN(crypto_snippet); }

static const char jwt_snippet[] =
    "local sign = require 'wx.sign'\n"
    "local c = require 'wx.crypto'\n"
    "local cjson = require 'cjson'\n"
    "local tok = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.'\n"
    "  .. 'eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.'\n"
    "  .. 'SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c'\n"
    "local key = 'your-256-bit-secret'\n"
    "local p = assert(sign.jwt_decode(tok, key))\n"
    "eq(p.sub, '1234567890') eq(p.name, 'John Doe') eq(p.iat, 1516239022)\n"
    "local v, err = sign.jwt_decode(tok, 'other-secret')\n"
    "eq(v, nil) eq(err, 'bad signature')\n"
    /* round trip */
    "local t = sign.jwt_encode({sub = 'o123', n = 5, list = {1, 2}}, key)\n"
    "eq(t:match('^[^.]+'), 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9', 'header')\n"
    "assert(t:find('^[%w_-]+%.[%w_-]+%.[%w_-]+$'))\n"
    "p = assert(sign.jwt_decode(t, key))\n"
    "eq(p.sub, 'o123') eq(p.n, 5) eq(p.list[2], 2) eq(p.exp, nil)\n"
    /* alg none and other algs */
    "local b64 = c.base64url_encode\n"
    "local body = b64('{\"sub\":\"admin\"}')\n"
    "for _, alg in ipairs({'none', 'None', 'HS512', 'hs256', 'RS256'}) do\n"
    "  local h = b64('{\"alg\":\"' .. alg .. '\",\"typ\":\"JWT\"}')\n"
    "  v, err = sign.jwt_decode(h .. '.' .. body .. '.', key)\n"
    "  eq(v, nil, alg) eq(err, 'unsupported alg')\n"
    "  v, err = sign.jwt_decode(h .. '.' .. body .. '.' .. b64(c.hmac_sha256(key, h .. '.' .. "
    "body)), key)\n"
    "  eq(v, nil, alg) eq(err, 'unsupported alg')\n"
    "end\n"
    "v, err = sign.jwt_decode(b64('{\"typ\":\"JWT\"}') .. '.' .. body .. '.', key)\n"
    "eq(err, 'unsupported alg')\n"
    /* tampering */
    "local h0, p0, s0 = t:match('^([^.]+)%.([^.]+)%.([^.]+)$')\n"
    "v, err = sign.jwt_decode(h0 .. '.' .. body .. '.' .. s0, key)\n"
    "eq(v, nil) eq(err, 'bad signature')\n"
    "local flipped = s0:sub(1, -2) .. (s0:sub(-1) == 'A' and 'B' or 'A')\n"
    "v, err = sign.jwt_decode(h0 .. '.' .. p0 .. '.' .. flipped, key)\n"
    "eq(v, nil) eq(err, 'bad signature')\n"
    "v, err = sign.jwt_decode(h0 .. '.' .. p0 .. '.', key)\n"
    "eq(err, 'bad signature')\n"
    /* malformed */
    "for _, bad in ipairs({'', 'a.b', 'a.b.c.d', h0 .. '.' .. p0, '..', 'x.' .. p0 .. '.' .. s0,\n"
    "                      b64('[1]') .. '.' .. p0 .. '.' .. s0, t .. ' ', t .. '='}) do\n"
    "  v, err = sign.jwt_decode(bad, key)\n"
    "  eq(v, nil, bad) assert(err)\n"
    "end\n"
    "eq(select(2, sign.jwt_decode(nil, key)), 'malformed token')\n"
    "local arr = b64(c.hmac_sha256(key, h0 .. '.' .. b64('[1]')))\n"
    "eq(select(2, sign.jwt_decode(h0 .. '.' .. b64('[1]') .. '.' .. arr, key)), 'malformed "
    "token')\n"
    /* exp, nbf, leeway */
    "t = sign.jwt_encode({sub = 'x'}, key, {exp_in = 60, now = 1000})\n"
    "p = assert(sign.jwt_decode(t, key, {now = 1059}))\n"
    "eq(p.exp, 1060) eq(p.iat, 1000)\n"
    "v, err = sign.jwt_decode(t, key, {now = 1060})\n"
    "eq(v, nil) eq(err, 'token expired')\n"
    "assert(sign.jwt_decode(t, key, {now = 1064, leeway = 5}))\n"
    "eq(select(2, sign.jwt_decode(t, key)), 'token expired', 'os.time')\n"
    "t = sign.jwt_encode({sub = 'x', iat = 5}, key, {exp_in = 3600})\n"
    "p = assert(sign.jwt_decode(t, key))\n"
    "eq(p.iat, 5) assert(p.exp >= os.time() + 3590)\n"
    "t = sign.jwt_encode({sub = 'x', nbf = 2000}, key)\n"
    "eq(select(2, sign.jwt_decode(t, key, {now = 1999})), 'token not yet valid')\n"
    "assert(sign.jwt_decode(t, key, {now = 2000}))\n"
    "assert(sign.jwt_decode(t, key, {now = 1990, leeway = 10}))\n"
    "t = sign.jwt_encode({exp = 'soon'}, key)\n"
    "eq(select(2, sign.jwt_decode(t, key)), 'malformed token')\n"
    /* misuse */
    "raises(sign.jwt_encode, 'table expected', 'x', key)\n"
    "raises(sign.jwt_encode, 'string key', {}, nil)\n"
    "raises(sign.jwt_decode, 'string key', tok, 42)\n";

static void test_lua_jwt(void **state) { RUN(jwt_snippet); }

static const char sign_snippet[] =
    "local sign = require 'wx.sign'\n"
    "local c = require 'wx.crypto'\n"
    "eq(sign.sha1_hex('abc'), 'a9993e364706816aba3e25717850c26c9cd0d89d')\n"
    "eq(sign.hmac_sha256_hex('Jefe', 'what do ya want for nothing?'),\n"
    "   '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843')\n"
    "eq(sign.hmac_sha256_base64url('Jefe', 'what do ya want for nothing?'),\n"
    "   'W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM')\n"
    "local key = 'k3y'\n"
    "local params = {openid = 'o6_bmjrPTlm6_2sgVt7hMZOPfL2M', ts = 1700000000, b = 'x y/&'}\n"
    "local sig = sign.params_sign(params, key)\n"
    "eq(#sig, 43)\n"
    "eq(sig, sign.hmac_sha256_base64url(key,\n"
    "   'b=x%20y%2F%26&openid=o6_bmjrPTlm6_2sgVt7hMZOPfL2M&ts=1700000000'), 'canonical form')\n"
    "eq(sign.params_verify(params, sig, key), true)\n"
    "eq(sign.params_verify({openid = params.openid, ts = '1700000000', b = 'x y/&', sig = sig},\n"
    "   sig, key), true, 'received args with sig')\n"
    "eq(sign.params_verify(params, sig, 'other'), false)\n"
    "eq(sign.params_verify({openid = 'x', ts = 1700000000, b = 'x y/&'}, sig, key), false)\n"
    "eq(sign.params_verify({openid = params.openid, ts = 1700000000}, sig, key), false)\n"
    "eq(sign.params_verify(params, sig:sub(1, -2), key), false)\n"
    "eq(sign.params_verify(params, nil, key), false)\n"
    "eq(sign.params_sign({}, key), sign.hmac_sha256_base64url(key, ''))\n"
    "raises(sign.params_sign, 'strings', {[1] = 'a'}, key)\n"
    "raises(sign.params_sign, 'string key', params)\n"
    "raises(sign.params_verify, 'string key', params, sig)\n"
    "raises(sign.params_sign, 'params table', 'a=1', key)\n";

static void test_lua_sign_params(void **state) { RUN(sign_snippet); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lua_crypto_primitives),
        cmocka_unit_test(test_lua_jwt),
        cmocka_unit_test(test_lua_sign_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
