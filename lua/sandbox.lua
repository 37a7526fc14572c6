-- sandbox: an offline WeChat served by wxgate's own Lua runtime
-- (`wxgate sandbox`). open.weixin.qq.com's authorize page and
-- api.weixin.qq.com's OAuth and JS-SDK endpoints on one address, with the
-- control API under /_sandbox/. This module owns startup (config, identity
-- helpers, URLs) and dispatch; the parts live in lua/sandbox/:
--   config     apps, users, the default set, openid/unionid derivation
--   state      shared state in wx.store: generation, clock, counters, errors
--   authorize  the authorize page, consent, grants, codes, snapshot mode
--   qrconnect  the PC website login: desktop QR page, simulated phone scan
--   api        the sns/ and cgi-bin/ endpoints
--   faults     injected latency, HTTP errors, garbage, cut connections
--   control    /_sandbox/ (and the public avatars and icons)
--   pages      HTML and SVG;  json  WeChat-ordered JSON
local wx = require "wx"
local config = require "sandbox.config"
local state = require "sandbox.state"
local authorize = require "sandbox.authorize"
local api = require "sandbox.api"
local faults = require "sandbox.faults"
local control = require "sandbox.control"
local pages = require "sandbox.pages"
local qrconnect = require "sandbox.qrconnect"

local _M = {}

local API = {
  ["/sns/oauth2/access_token"] = api.access_token,
  ["/sns/oauth2/refresh_token"] = api.refresh_token,
  ["/sns/userinfo"] = api.userinfo,
  ["/sns/auth"] = api.auth,
  ["/cgi-bin/token"] = api.cgi_token,
  ["/cgi-bin/ticket/getticket"] = api.getticket,
  ["/sns/jscode2session"] = api.jscode2session,
  ["/wxa/business/getuserphonenumber"] = api.getuserphonenumber,
}
local PAGES = {
  ["/connect/oauth2/authorize"] = authorize.authorize,
  ["/connect/oauth2/authorize_reply"] = authorize.reply,
  ["/connect/qrconnect"] = qrconnect.qrconnect,
}
-- The QR page's poll and the simulated phone: not WeChat endpoints of their
-- own (not counted, no faults).
local QR_PAGES = {
  ["/connect/l/qrconnect"] = qrconnect.poll,
  ["/connect/confirm"] = qrconnect.confirm,
  ["/connect/confirm_reply"] = qrconnect.confirm_reply,
}

local function port_of(addr)
  return addr and addr:match(":(%d+)$")
end

-- new(options) → handler(req). options (strings, all optional): config (a
-- sandbox config file), listen, tls_listen, control_token.
function _M.new(options)
  options = options or {}
  local cfg = config.load(options.config)
  local sb = {
    cfg = cfg,
    I = config.identities(cfg),
    control_open = control.loopback_only(options),
    control_token = options.control_token,
    compare_key = wx.random(16, "hex"),
  }
  math.randomseed(tonumber(wx.random(6, "hex"), 16))

  local tls_port = port_of(options.tls_listen)
  local default_host = options.listen or "127.0.0.1:9000"
  -- The sandbox's own URL as the caller reached it (for avatar and icon
  -- URLs): public_url when configured, else the Host header; https when the
  -- Host names the TLS listener's port.
  function sb.base_url(req)
    if cfg.public_url then return cfg.public_url end
    local host = req and req.headers and req.headers.host
    if not host or host == "" or host:find("[^%w%.%-:%[%]]") then host = default_host end
    local scheme = (tls_port and port_of(host) == tls_port) and "https" or "http"
    return scheme .. "://" .. host
  end
  function sb.avatar_url(u, base)
    return u.avatar or (base .. "/_sandbox/avatar/" .. u.id .. ".svg")
  end
  function sb.icon_url(a, base)
    return a.icon or (base .. "/_sandbox/icon/" .. a.appid .. ".svg")
  end

  return function(req)
    local path = req.path
    local ctx = state.load(sb)
    ctx.req = req

    local fn = API[path]
    if fn then
      ctx.endpoint = path
      state.count(ctx, path)
      local s, b, h = faults.apply(ctx, path, true)
      if s then return s, b, h end
      return fn(ctx, req.query or {})
    end
    fn = PAGES[path]
    if fn then
      ctx.endpoint = path
      state.count(ctx, path)
      local s, b, h = faults.apply(ctx, path, false)
      if s then return s, b, h end
      return fn(ctx, req)
    end
    fn = QR_PAGES[path]
    if fn then return fn(ctx, req) end
    local rest = path:match("^/_sandbox/(.+)$")
    if rest then return control.handle(ctx, req, rest) end
    if path == "/" then
      return 200, pages.index(sb.base_url(req), cfg, sb.I, sb.control_open), pages.HTML_HEADERS
    end
    if path:find("^/sns/") or path:find("^/cgi%-bin/") or path:find("^/wxa/") then
      -- an API path WeChat has but the sandbox does not serve
      return 404, '{"errcode":-1,"errmsg":"the sandbox does not serve ' .. path:gsub('[^%w/_%-]', '')
        .. '"}', state.JSON_HEADERS
    end
    return 404, "<!DOCTYPE html><title>404</title><p>Not found.</p>", pages.HTML_HEADERS
  end
end

return _M
