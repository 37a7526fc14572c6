-- sandbox.state: everything the sandbox remembers, kept in wx.store so that
-- every worker sees the same WeChat. Owns the control record (generation,
-- clock offset, snapshot switch, faults), key naming, the sandbox clock,
-- per-endpoint counters, and the error reply shape with its rid.
--
-- Reset without a key scan: every key carries the generation number of the
-- control record; POST /_sandbox/reset moves to a new generation and the old
-- keys simply die by their TTL.
local wx = require "wx"
local json = require "sandbox.json"

local store = wx.store
local format, floor = string.format, math.floor
local type, tostring = type, tostring

local _M = {}

local CTL_KEY = "sbx:ctl"
local GEN_KEY = "sbx:gen"
local YEAR = 365 * 86400

-- The endpoints WeChat serves, as counted in stats and targeted by faults.
_M.ENDPOINTS = {
  "/connect/oauth2/authorize",
  "/connect/oauth2/authorize_reply",
  "/sns/oauth2/access_token",
  "/sns/oauth2/refresh_token",
  "/sns/userinfo",
  "/sns/auth",
  "/cgi-bin/token",
  "/cgi-bin/ticket/getticket",
  "/connect/qrconnect",
  "/sns/jscode2session",
  "/wxa/business/getuserphonenumber",
}
local is_endpoint = {}
for _, e in ipairs(_M.ENDPOINTS) do is_endpoint[e] = true end
_M.is_endpoint = is_endpoint

-- The control record, decoded once per distinct value per worker.
local cached_raw, cached_ctl
local EMPTY_CTL = { gen = 0, offset = 0, faults = {}, snapshot = nil }

local function decode_ctl(raw)
  if raw == cached_raw then return cached_ctl end
  local ok, c = pcall(json.decode, raw)
  if not ok or type(c) ~= "table" then c = {} end
  c.gen = tonumber(c.gen) or 0
  c.offset = tonumber(c.offset) or 0
  if type(c.faults) ~= "table" then c.faults = {} end
  cached_raw, cached_ctl = raw, c
  return c
end

-- A context for one request: the control record, the clock, key names.
function _M.load(sb)
  local raw = store.get(CTL_KEY)
  local ctl = raw and decode_ctl(raw) or EMPTY_CTL
  local snapshot = ctl.snapshot
  if snapshot == nil then snapshot = sb.cfg.snapshot end
  local prefix = "sbx:" .. ctl.gen .. ":"
  return {
    sb = sb, ctl = ctl, gen = ctl.gen, prefix = prefix, snapshot = snapshot,
    now = wx.now() + ctl.offset,
  }
end

function _M.key(ctx, kind, id)
  return ctx.prefix .. kind .. ":" .. id
end

-- Read-modify-write of the control record (control API only).
function _M.update(ctx, fn)
  local raw = store.get(CTL_KEY)
  local c = raw and json.decode(raw) or { gen = 0, offset = 0, faults = {} }
  if type(c.faults) ~= "table" then c.faults = {} end
  fn(c)
  if c.faults and next(c.faults) == nil then c.faults = nil end
  local ok, err = store.set(CTL_KEY, json.encode(c))
  if not ok then return nil, err end
  return c
end

-- Reset: a fresh generation; apps and users stay (they are config).
function _M.reset(ctx)
  local g, err = store.incr(GEN_KEY, 1)
  if not g then return nil, err end
  local ok, err2 = store.set(CTL_KEY, json.encode { gen = g, offset = 0 })
  if not ok then return nil, err2 end
  return g
end

-- ---- counters ----

function _M.count(ctx, endpoint, what)
  store.incr(ctx.prefix .. (what or "n") .. ":" .. endpoint, 1, YEAR)
end

function _M.stats(ctx)
  local out = {}
  for _, e in ipairs(_M.ENDPOINTS) do
    local n = store.get(ctx.prefix .. "n:" .. e)
    local er = store.get(ctx.prefix .. "e:" .. e)
    local f = store.get(ctx.prefix .. "f:" .. e)
    out[e] = { calls = tonumber(n) or 0, errors = tonumber(er) or 0, faults = tonumber(f) or 0 }
  end
  return out
end

-- ---- replies ----

-- "xxxxxxxx-xxxxxxxx-xxxxxxxx" like WeChat's request ids.
function _M.rid(ctx)
  local r = wx.random(8, "hex")
  return format("%08x-%s-%s", floor(ctx.now) % 0x100000000, r:sub(1, 8), r:sub(9, 16))
end

_M.ERRMSG = {
  [-1] = "system error",
  [40001] = "invalid credential, access_token is invalid or not latest",
  [40002] = "invalid grant_type",
  [40003] = "invalid openid",
  [40013] = "invalid appid",
  [40029] = "invalid code",
  [40030] = "invalid refresh_token",
  [40097] = "invalid args",
  [40125] = "invalid appsecret",
  [40163] = "code been used",
  [41001] = "access_token missing",
  [41002] = "appid missing",
  [41003] = "refresh_token missing",
  [41004] = "appsecret missing",
  [41008] = "missing code",
  [41009] = "missing openid",
  [42001] = "access_token expired",
  [42002] = "refresh_token expired",
  [42003] = "oauth_code expired",
  [45009] = "reach max api daily quota limit",
  [45011] = "api minute-quota reach limit  mustslower  retry next minute",
  [48001] = "api unauthorized",
  [40226] = "high risk user, login blocked",
  [47001] = "data format error",
}

local JSON_HEADERS = { ["Content-Type"] = "application/json; encoding=utf-8" }
_M.JSON_HEADERS = JSON_HEADERS

function _M.json(body)
  return 200, body, JSON_HEADERS
end

-- An API error: HTTP 200, {"errcode":N,"errmsg":"text, rid: ..."}; counted.
function _M.err(ctx, code, msg)
  if ctx.endpoint then _M.count(ctx, ctx.endpoint, "e") end
  msg = msg or _M.ERRMSG[code] or "error"
  return 200, json.object { { "errcode", code }, { "errmsg", msg .. ", rid: " .. _M.rid(ctx) } },
    JSON_HEADERS
end

return _M
