-- wx.sign: message authentication for hooks and backends: HMAC-SHA256 in hex
-- or base64url, SHA-1 hex, HS256 JSON Web Tokens, and signed query
-- parameters. Built on wx.crypto (C) and lua-cjson; every comparison of a
-- signature is constant-time.

local crypto = require "wx.crypto"
local url = require "wx.url"
-- A private cjson instance: settings changed by other code do not leak in.
local cjson = require("cjson").new()

local type, pairs, pcall, error, tostring = type, pairs, pcall, error, tostring
local os_time = os.time

local _M = {}

local b64 = crypto.base64url_encode

local function check_key(key, arg, fname)
  if type(key) ~= "string" then
    error("bad argument #" .. arg .. " to '" .. fname .. "' (string key expected, got "
        .. type(key) .. ")", 3)
  end
end

function _M.hmac_sha256_hex(key, msg)
  return crypto.hex(crypto.hmac_sha256(key, msg))
end

function _M.hmac_sha256_base64url(key, msg)
  return b64(crypto.hmac_sha256(key, msg))
end

function _M.sha1_hex(s)
  return crypto.hex(crypto.sha1(s))
end

-- The header is fixed text, so every token we issue has the same header
-- bytes whatever cjson's key order.
local JWT_HEADER = b64('{"alg":"HS256","typ":"JWT"}')

-- jwt_encode(payload, key[, opts]) -> token. opts.exp_in (seconds) sets
-- "exp" = now + exp_in and, unless present, "iat" = now, on a copy of the
-- payload; now is opts.now or os.time().
function _M.jwt_encode(payload, key, opts)
  if type(payload) ~= "table" then
    error("bad argument #1 to 'jwt_encode' (table expected, got " .. type(payload) .. ")", 2)
  end
  check_key(key, 2, "jwt_encode")
  if opts and opts.exp_in then
    local now = opts.now or os_time()
    local p = {}
    for k, v in pairs(payload) do
      p[k] = v
    end
    p.exp = now + opts.exp_in
    if p.iat == nil then
      p.iat = now
    end
    payload = p
  end
  local input = JWT_HEADER .. "." .. b64(cjson.encode(payload))
  return input .. "." .. b64(crypto.hmac_sha256(key, input))
end

local function decode_json_object(s)
  local json = s and crypto.base64url_decode(s)
  if not json or not json:find("^%s*{") then
    return nil
  end
  local ok, t = pcall(cjson.decode, json)
  if ok and type(t) == "table" then
    return t
  end
  return nil
end

-- jwt_decode(token, key[, opts]) -> payload or nil, err. Only HS256 is
-- accepted (never "none" nor another alg named by the token); the signature
-- is checked before the payload is parsed; "exp" must lie after now and
-- "nbf" not after it, with opts.leeway seconds (default 0) of slack; now is
-- opts.now or os.time().
function _M.jwt_decode(token, key, opts)
  check_key(key, 2, "jwt_decode")
  if type(token) ~= "string" then
    return nil, "malformed token"
  end
  local h, p, s = token:match("^([%w_%-]+)%.([%w_%-]+)%.([%w_%-]*)$")
  local header = decode_json_object(h)
  if not header then
    return nil, "malformed token"
  end
  if header.alg ~= "HS256" then
    return nil, "unsupported alg"
  end
  if not crypto.equal(b64(crypto.hmac_sha256(key, h .. "." .. p)), s) then
    return nil, "bad signature"
  end
  local payload = decode_json_object(p)
  if not payload then
    return nil, "malformed token"
  end

  local now = opts and opts.now or os_time()
  local leeway = opts and opts.leeway or 0
  local exp, nbf = payload.exp, payload.nbf
  if exp ~= nil and type(exp) ~= "number" or nbf ~= nil and type(nbf) ~= "number" then
    return nil, "malformed token"
  end
  if exp and now >= exp + leeway then
    return nil, "token expired"
  end
  if nbf and now + leeway < nbf then
    return nil, "token not yet valid"
  end
  return payload
end

-- Canonical form signed by params_sign: every parameter except one named
-- "sig" (so a received args table verifies as is), names sorted bytewise,
-- each written as escape(name) "=" escape(tostring(value)) with wx.url.escape
-- (RFC 3986 unreserved characters kept, everything else %XX uppercase),
-- joined with "&". Example: {b = "x y", a = 1} -> "a=1&b=x%20y".
-- The signature is base64url(HMAC-SHA256(key, canonical)), unpadded.
local function canonical(params)
  if type(params) ~= "table" then
    error("bad argument #1 (params table expected, got " .. type(params) .. ")", 3)
  end
  local copy = {}
  for k, v in pairs(params) do
    if type(k) ~= "string" then
      error("params keys must be strings, got " .. tostring(k), 3)
    end
    if k ~= "sig" then
      copy[k] = v
    end
  end
  return url.encode_query(copy)
end

function _M.params_sign(params, key)
  check_key(key, 2, "params_sign")
  return b64(crypto.hmac_sha256(key, canonical(params)))
end

-- params_verify(params, sig, key) -> boolean.
function _M.params_verify(params, sig, key)
  check_key(key, 3, "params_verify")
  if type(sig) ~= "string" then
    return false
  end
  return crypto.equal(b64(crypto.hmac_sha256(key, canonical(params))), sig)
end

return _M
