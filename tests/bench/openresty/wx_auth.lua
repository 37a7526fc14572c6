-- The OpenResty reference for wxgate's GET /auth (tests/bench/bench_http.sh):
-- the same work done the way one would write it for nginx +
-- libnginx-mod-http-lua, in content_by_lua_block { require("wx_auth").auth() }.
--
--   1. the campaign from ?campaign=, the return URL from ?return= (or ?url=),
--      ?scope= refused unless the campaign allows it;
--   2. the return URL checked against the campaign's allow-list: no control
--      bytes, spaces, quotes, '<', '>', '\' or encoded CR/LF/NUL, then
--      scheme, host, port and path prefix ("/spring" allows "/spring" and
--      "/spring/..." but not "/springtime"); wxgate caches its verdict per
--      URL prefix, this one compares with Lua patterns every time;
--   3. a state of 32 base62 characters from RAND_bytes (libcrypto, via ffi),
--      stored with lua_shared_dict:add (add fails if the key exists, as
--      wxgate's store_add does) with the state TTL wxgate uses (1800 s), as a
--      record "v1\tcreated\trestarts\tscope\tcampaign\treturn_url";
--   4. a counter in a second shared dict (what nginx-lua-prometheus does;
--      wxgate counts wxgate_logins_started_total);
--   5. the state cookie: HMAC-SHA256(cookie_secret, state) via ffi to
--      libcrypto's HMAC(), the first 16 bytes in base64url (22 characters);
--   6. 302, Content-Length 0, with Location (WeChat's authorize URL),
--      Set-Cookie, X-Request-Id ($request_id) and Cache-Control: no-store.
--
-- The configuration (secrets, app, campaigns) comes from init_by_lua_block:
-- require("wx_auth").configure{ ... } with the same values as wxgate's config.
local ffi = require "ffi"
local C = ffi.C

ffi.cdef [[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                    const unsigned char *d, size_t n, unsigned char *md,
                    unsigned int *md_len);
int RAND_bytes(unsigned char *buf, int num);
]]

-- nginx is linked against libcrypto; load it by name where that fails.
local crypto
do
  local ok = pcall(function() return C.HMAC end)
  crypto = ok and C or ffi.load("libcrypto.so.3")
end

local ngx = ngx
local ngx_var = ngx.var
local ngx_header = ngx.header
local unescape_uri = ngx.unescape_uri
local escape_uri = ngx.escape_uri
local encode_base64 = ngx.encode_base64
local str_find, str_lower, str_match, str_sub, str_byte = string.find, string.lower,
  string.match, string.sub, string.byte
local gsub = string.gsub
local ffi_string = ffi.string

local STATE_TTL = 1800 -- seconds: LOGIN_STATE_TTL in core/login.h
local STATE_LEN = 32

local cfg -- set by configure()
local sha256 = crypto.EVP_sha256()
local md = ffi.new("unsigned char[32]")
local md_len = ffi.new("unsigned int[1]")
local pool = ffi.new("unsigned char[64]")
local state_buf = ffi.new("char[?]", STATE_LEN)
local base62 = ffi.new("const char[63]",
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
local b64url = { ["+"] = "-", ["/"] = "_" }

local _M = {}

-- "https://host[:port]/path" into its parts, or nil.
local function split_url(url)
  local scheme, rest = str_match(url, "^([%a][%w+.-]*)://(.*)$")
  if not scheme then return nil end
  scheme = str_lower(scheme)
  if scheme ~= "https" and scheme ~= "http" then return nil end
  local hostport, path = str_match(rest, "^([^/?#]*)([^?#]*)")
  if hostport == "" or str_find(hostport, "@", 1, true) then return nil end
  local host, port = str_match(hostport, "^([^:]+):(%d+)$")
  if not host then host, port = hostport, nil end
  if str_find(host, ":", 1, true) then return nil end
  port = tonumber(port) or (scheme == "https" and 443 or 80)
  if path == "" then path = "/" end
  return scheme, str_lower(host), port, path
end

function _M.configure(c)
  local campaigns = {}
  for name, camp in pairs(c.campaigns) do
    local allow = {}
    for i, a in ipairs(camp.allow) do
      local scheme, host, port, path = split_url(a)
      assert(scheme, "bad allow-list entry " .. a)
      allow[i] = { scheme = scheme, host = host, port = port, path = path }
    end
    campaigns[name] = { name = name, appid = c.apps[camp.app].appid,
                        scope = camp.scope or "snsapi_base",
                        scope_override = camp.scope_override, allow = allow }
  end
  local base = gsub(c.public_url, "/+$", "")
  cfg = {
    campaigns = campaigns,
    cookie_secret = c.cookie_secret,
    open_base = c.open_base or "https://open.weixin.qq.com",
    redirect_uri = base .. "/callback",
    secure = str_sub(c.public_url, 1, 8) == "https://",
  }
end

-- Dot segments and encoded dots, slashes and backslashes only serve to
-- disguise a path (url_path_disguised in core/url.c).
local function path_disguised(path)
  if str_find(path, "/%.%.?/") or str_find(path, "/%.%.?$") then return true end
  local l = str_lower(path)
  return str_find(l, "%2e", 1, true) or str_find(l, "%2f", 1, true)
    or str_find(l, "%5c", 1, true)
end

local function return_allowed(camp, url)
  local len = #url
  if len == 0 or len > 2000 then return false end
  -- control bytes, space, DEL, '"', '<', '>', '\'
  if str_find(url, '[%z\1-\32\127"<>\\]') then return false end
  local l = str_lower(url)
  if str_find(l, "%0d", 1, true) or str_find(l, "%0a", 1, true)
     or str_find(l, "%00", 1, true) then
    return false
  end
  local scheme, host, port, path = split_url(url)
  if not scheme or path_disguised(path) then return false end
  for _, a in ipairs(camp.allow) do
    if a.scheme == scheme and a.host == host and a.port == port then
      local ap = a.path
      if ap == "/" then return true end
      local alen = #ap
      if str_sub(path, 1, alen) == ap and
         (str_byte(ap, alen) == 47 or #path == alen or str_byte(path, alen + 1) == 47) then
        return true
      end
    end
  end
  return false
end

local function new_state()
  if crypto.RAND_bytes(pool, 64) ~= 1 then return nil end
  local i, used = 0, 0
  while i < STATE_LEN do
    if used == 64 then
      if crypto.RAND_bytes(pool, 64) ~= 1 then return nil end
      used = 0
    end
    local b = pool[used]
    used = used + 1
    if b < 248 then
      state_buf[i] = base62[b % 62]
      i = i + 1
    end
  end
  return ffi_string(state_buf, STATE_LEN)
end

local function state_mac(state)
  local key = cfg.cookie_secret
  crypto.HMAC(sha256, key, #key, state, #state, md, md_len)
  return (gsub(encode_base64(ffi_string(md, 16), true), "[+/]", b64url))
end

local function refuse(status, msg)
  ngx.status = status
  ngx_header["Content-Type"] = "text/plain; charset=utf-8"
  ngx_header["X-Request-Id"] = ngx_var.request_id
  ngx.print(msg)
  return ngx.exit(status)
end

function _M.auth()
  local name = ngx_var.arg_campaign
  local camp = name and cfg.campaigns[name]
  if not camp then return refuse(404, "There is no such campaign.") end
  local ret = ngx_var.arg_return or ngx_var.arg_url
  ret = ret and unescape_uri(ret)
  if not ret or not return_allowed(camp, ret) then
    ngx.log(ngx.WARN, "auth: return URL refused for campaign ", camp.name)
    return refuse(400, "The return address is not allowed for this campaign.")
  end
  local scope = ngx_var.arg_scope
  if scope then
    scope = unescape_uri(scope)
    if not camp.scope_override or (scope ~= "snsapi_base" and scope ~= "snsapi_userinfo") then
      return refuse(400, "This scope is not allowed for this campaign.")
    end
  else
    scope = camp.scope
  end

  local state = new_state()
  if not state then return refuse(503, "The service is busy, please try again.") end
  local rec = "v1\t" .. ngx.time() .. "\t0\t" .. scope .. "\t" .. camp.name .. "\t" .. ret
  local ok, err = ngx.shared.wx_states:add("st:" .. state, rec, STATE_TTL)
  if not ok then
    ngx.log(ngx.ERR, "login: cannot store the state: ", err)
    return refuse(503, "The service is busy, please try again.")
  end
  ngx.shared.wx_metrics:incr("logins_started_total{campaign=\"" .. camp.name .. "\"}", 1, 0)

  ngx.status = 302
  ngx_header["Content-Type"] = "text/html; charset=utf-8"
  ngx_header["Content-Length"] = 0
  ngx_header["X-Request-Id"] = ngx_var.request_id
  ngx_header["Set-Cookie"] = "wxgate_state=" .. state_mac(state)
    .. "; Path=/; Max-Age=" .. STATE_TTL .. "; HttpOnly; SameSite=Lax"
    .. (cfg.secure and "; Secure" or "")
  ngx_header["Location"] = cfg.open_base .. "/connect/oauth2/authorize?appid="
    .. escape_uri(camp.appid) .. "&redirect_uri=" .. escape_uri(cfg.redirect_uri)
    .. "&response_type=code&scope=" .. scope .. "&state=" .. state
    .. "&connect_redirect=1#wechat_redirect"
  ngx_header["Cache-Control"] = "no-store"
  return ngx.exit(ngx.HTTP_OK)
end

-- GET /bench-state?state=S: the stored record and its remaining TTL, for the
-- harness's check that the state really was stored with the TTL.
function _M.state()
  local key = "st:" .. (ngx_var.arg_state or "")
  local dict = ngx.shared.wx_states
  local v = dict:get(key)
  if not v then return refuse(404, "no such state") end
  ngx_header["Content-Type"] = "text/plain"
  ngx.print(string.format("%d\t%s", dict:ttl(key) or -1, v))
end

return _M
