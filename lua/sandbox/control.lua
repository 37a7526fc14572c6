-- sandbox.control: the control API under /_sandbox/ for tests, benchmarks
-- and demos (clock, faults, stats, reset, apps, the phone's user, grants,
-- snapshot mode, quota, a JS-SDK signature check), plus the public pieces
-- that live there too (avatars, app icons, a callback page to try the flow).
-- The control API answers only when every listener is on loopback, or when
-- the request carries the control token (X-Sandbox-Token header or ?token=).
local wx = require "wx"
local url = require "wx.url"
local sign = require "wx.sign"
local json = require "sandbox.json"
local state = require "sandbox.state"
local pages = require "sandbox.pages"
local faults = require "sandbox.faults"
local authorize = require "sandbox.authorize"
local api = require "sandbox.api"
local qrconnect = require "sandbox.qrconnect"

local tonumber, tostring, pairs, ipairs = tonumber, tostring, pairs, ipairs

local _M = {}

local JSON = { ["Content-Type"] = "application/json; charset=utf-8", ["Cache-Control"] = "no-store" }

local function reply(status, t, extra)
  local h = JSON
  if extra then
    h = {}
    for k, v in pairs(JSON) do h[k] = v end
    for k, v in pairs(extra) do h[k] = v end
  end
  -- cjson writes "/" as "\/"; control replies are for people too
  return status, (json.encode(t):gsub("\\/", "/")) .. "\n", h
end

local function bad(status, msg)
  return reply(status, { error = msg })
end

-- ---- who may use it ----

local function is_loopback_host(host)
  host = host:lower():gsub("^%[(.*)%]$", "%1")
  return host == "localhost" or host == "::1" or host:find("^127%.%d+%.%d+%.%d+$") ~= nil
end

-- The host part of "HOST:PORT", "[V6]:PORT" or "HOST".
local function listen_host(addr)
  local h = addr:match("^%[([^%]]*)%]") or addr:match("^([^:]*):%d+$") or addr
  return h
end

-- true when every configured listener is on a loopback address
function _M.loopback_only(opts)
  for _, k in ipairs { "listen", "tls_listen" } do
    local a = opts[k]
    if a and a ~= "" and not is_loopback_host(listen_host(a)) then return false end
  end
  return true
end

local function token_ok(sb, req)
  local want = sb.control_token
  if not want or want == "" then return false end
  local got = (req.headers and req.headers["x-sandbox-token"]) or (req.query and req.query.token)
  if type(got) ~= "string" then return false end
  -- compare MACs, so the time taken says nothing about the token
  return sign.hmac_sha256_hex(sb.compare_key, got) == sign.hmac_sha256_hex(sb.compare_key, want)
end

-- ---- helpers ----

-- Parameters from the query, and from a form body on POST/DELETE.
local function params(req)
  local p = {}
  for k, v in pairs(req.query or {}) do p[k] = v end
  local ctype = req.headers and req.headers["content-type"] or ""
  if req.body and req.body ~= "" and ctype:find("x-www-form-urlencoded", 1, true) then
    for k, v in pairs((url.parse_query(req.body))) do
      if p[k] == nil then p[k] = v end
    end
  end
  return p
end

local function endpoint_name(e)
  if not e or e == "" then return nil end
  if e == "*" or e == "all" then return "*" end
  if e:sub(1, 1) ~= "/" then e = "/" .. e end
  return state.is_endpoint[e] and e or nil
end

local function user_json(sb, u, base)
  local openids, unionids = {}, {}
  for _, a in ipairs(sb.cfg.apps) do
    openids[a.appid] = sb.I.openid(a.appid, u.id)
    if a.open_account then unionids[a.open_account] = sb.I.unionid(a, u.id) end
  end
  return {
    id = u.id, nickname = u.nickname, headimgurl = sb.avatar_url(u, base), sex = u.sex,
    openids = openids, unionids = unionids, phone = u.phone,
  }
end

-- A fresh request context after the control record changed.
local function reload(ctx)
  local n = state.load(ctx.sb)
  n.req = ctx.req
  return n
end

local function clock_json(ctx)
  return { now = ctx.now, offset = ctx.ctl.offset, real = wx.now() }
end

-- ---- the routes ----

local H = {}

H["apps"] = function(ctx, req, p)
  local sb = ctx.sb
  local base = sb.base_url(req)
  local apps, users = {}, {}
  for _, a in ipairs(sb.cfg.apps) do
    apps[#apps + 1] = {
      appid = a.appid, secret = a.secret, name = a.name, domains = json.array(a.domains),
      scopes = json.array(a.scope_list), open_account = a.open_account, kind = a.kind,
      unionid = a.open_account ~= nil, icon = sb.icon_url(a, base),
    }
  end
  for _, u in ipairs(sb.cfg.users) do users[#users + 1] = user_json(sb, u, base) end
  return reply(200, { apps = apps, users = users, quota = api.quota_limit(ctx),
                      cookie = authorize.COOKIE })
end

H["login"] = function(ctx, req, p)
  local sb = ctx.sb
  if req.method == "GET" then
    return reply(200, { user = user_json(sb, authorize.current_user(sb, req), sb.base_url(req)) })
  end
  local u = sb.cfg.user_by_id[p.user or ""]
  if not u then return bad(404, "unknown user: " .. tostring(p.user)) end
  return reply(200, { ok = true, user = user_json(sb, u, sb.base_url(req)) },
               { ["Set-Cookie"] = authorize.user_cookie(u) })
end

H["grant"] = function(ctx, req, p)
  local sb = ctx.sb
  local u = sb.cfg.user_by_id[p.user or ""]
  if not u then return bad(404, "unknown user: " .. tostring(p.user)) end
  local a = sb.cfg.app_by_id[p.appid or ""]
  if not a then return bad(404, "unknown appid: " .. tostring(p.appid)) end
  if req.method == "DELETE" then
    authorize.revoke(ctx, a.appid, u.id)
    return reply(200, { ok = true })
  end
  local scope = p.scope or "snsapi_userinfo"
  if not a.scopes[scope] then return bad(400, "the app does not have scope " .. scope) end
  authorize.grant(ctx, a.appid, u.id, scope)
  return reply(200, { ok = true, user = u.id, appid = a.appid,
                      scope = authorize.granted(ctx, a.appid, u.id) })
end

H["clock"] = function(ctx, req, p)
  if req.method == "POST" then
    local adv, off = tonumber(p.advance), tonumber(p.offset)
    local function bad_num(n) return n and (n ~= n or math.abs(n) > 3e8) end
    if (p.advance and not adv) or (p.offset and not off) or (not adv and not off)
       or bad_num(adv) or bad_num(off) then
      return bad(400, "give advance=SECONDS or offset=SECONDS")
    end
    local c, err = state.update(ctx, function(c)
      c.offset = off or ((tonumber(c.offset) or 0) + adv)
    end)
    if not c then return bad(503, "store: " .. tostring(err)) end
    ctx = reload(ctx)
  end
  return reply(200, clock_json(ctx))
end

H["stats"] = function(ctx, req, p)
  local quota = {}
  for _, a in ipairs(ctx.sb.cfg.apps) do quota[a.appid] = api.quota_used(ctx, a.appid) end
  return reply(200, {
    generation = ctx.gen, clock_offset = ctx.ctl.offset, endpoints = state.stats(ctx),
    quota = { limit = api.quota_limit(ctx), used = quota },
  })
end

H["reset"] = function(ctx, req, p)
  if req.method ~= "POST" then return bad(405, "POST /_sandbox/reset") end
  local g, err = state.reset(ctx)
  if not g then return bad(503, "store: " .. tostring(err)) end
  return reply(200, { ok = true, generation = g })
end

local function faults_json(ctx, fs)
  local out = {}
  for e, f in pairs(fs or {}) do
    local t = {}
    for k, v in pairs(f) do t[k] = v end
    t.fired = faults.fired(ctx, f)
    out[e] = t
  end
  return out
end

H["fault"] = function(ctx, req, p)
  if req.method == "GET" then
    return reply(200, { faults = faults_json(ctx, ctx.ctl.faults) })
  end
  local e = endpoint_name(p.endpoint)
  if req.method == "DELETE" or p.type == "none" then
    if p.endpoint and not e then return bad(400, "unknown endpoint: " .. p.endpoint) end
    state.update(ctx, function(c)
      if e then c.faults[e] = nil else c.faults = {} end
    end)
    return reply(200, { ok = true })
  end
  if not e then
    return bad(400, "endpoint must be one of " .. table.concat(state.ENDPOINTS, ", ") .. " or *")
  end
  local f, err = faults.parse(p)
  if not f then return bad(400, err) end
  state.update(ctx, function(c) c.faults[e] = f end)
  return reply(200, { ok = true, endpoint = e, fault = f })
end
H["faults"] = H["fault"]

H["snapshot"] = function(ctx, req, p)
  if req.method == "POST" then
    local v = p.on or p.enabled or p.mode
    local on = v == "1" or v == "true" or v == "on"
    if not on and not (v == "0" or v == "false" or v == "off") then
      return bad(400, "give on=1 or on=0")
    end
    state.update(ctx, function(c) c.snapshot = on end)
    ctx = reload(ctx)
  end
  return reply(200, { snapshot = ctx.snapshot and true or false })
end

H["quota"] = function(ctx, req, p)
  if req.method == "POST" then
    local n = tonumber(p.limit)
    if not n or n < 0 or n % 1 ~= 0 then return bad(400, "give limit=N (a whole number)") end
    state.update(ctx, function(c) c.quota = n end)
    ctx = reload(ctx)
  end
  local used = {}
  for _, a in ipairs(ctx.sb.cfg.apps) do used[a.appid] = api.quota_used(ctx, a.appid) end
  return reply(200, { limit = api.quota_limit(ctx), used = used })
end

-- GET /_sandbox/jssdk/verify?appid&url&noncestr&timestamp&signature: checks
-- a wx.config signature against the app's current jsapi ticket.
H["jssdk/verify"] = function(ctx, req, p)
  local a = ctx.sb.cfg.app_by_id[p.appid or ""]
  if not a then return bad(404, "unknown appid") end
  for _, k in ipairs { "url", "noncestr", "timestamp", "signature" } do
    if not p[k] or p[k] == "" then return bad(400, k .. " is required") end
  end
  local ticket = api.current_ticket(ctx, a.appid)
  if not ticket then return reply(200, { ok = false, reason = "no valid jsapi ticket" }) end
  local page = p.url:gsub("#.*$", "")
  local expected = sign.sha1_hex("jsapi_ticket=" .. ticket .. "&noncestr=" .. p.noncestr
    .. "&timestamp=" .. p.timestamp .. "&url=" .. page)
  return reply(200, { ok = expected == p.signature:lower(), signature = expected })
end

-- POST /_sandbox/wxlogin?appid&user: what wx.login() gives a Mini Program
-- or Mini Game on the user's device, {"code": ...} (single use, 5 minutes);
-- POST /_sandbox/phonecode?appid&user: what getPhoneNumber gives it. The
-- user defaults to the one holding the phone.
local function mini_code(ctx, req, p, mint, needs_phone)
  local sb = ctx.sb
  local a = sb.cfg.app_by_id[p.appid or ""]
  if not a then return bad(404, "unknown appid: " .. tostring(p.appid)) end
  if not api.is_mini(a) then
    return bad(400, "appid " .. a.appid .. " is of kind " .. a.kind .. ", not a Mini Program "
      .. "or Mini Game")
  end
  local u = p.user and sb.cfg.user_by_id[p.user] or (not p.user and
    authorize.current_user(sb, req))
  if not u then return bad(404, "unknown user: " .. tostring(p.user)) end
  if needs_phone and not u.phone then
    return bad(409, "user " .. u.id .. " has no phone number")
  end
  return reply(200, { code = mint(ctx, a.appid, u.id) })
end

-- POST /_sandbox/qrscan?uuid&user&action=scan|confirm|decline: the phone
-- scans the PC login's QR code (uuid: the last one shown when absent; user:
-- the one holding the phone; action: confirm).
H["qrscan"] = function(ctx, req, p)
  local sb = ctx.sb
  local u = p.user and sb.cfg.user_by_id[p.user] or (not p.user and
    authorize.current_user(sb, req))
  if not u then return bad(404, "unknown user: " .. tostring(p.user)) end
  local uuid = p.uuid or qrconnect.last(ctx)
  if not uuid then return bad(404, "no QR code shown yet") end
  local rec, why = qrconnect.scan(ctx, uuid, u, p.action or "confirm")
  if not rec then return bad(409, why) end
  return reply(200, { ok = true, uuid = uuid, user = u.id, status = rec.st })
end

H["wxlogin"] = function(ctx, req, p) return mini_code(ctx, req, p, api.mint_js_code) end
H["phonecode"] = function(ctx, req, p)
  return mini_code(ctx, req, p, api.mint_phone_code, true)
end

local METHODS = {
  apps = { GET = true }, login = { GET = true, POST = true },
  grant = { POST = true, DELETE = true }, clock = { GET = true, POST = true },
  stats = { GET = true }, reset = { POST = true }, fault = { GET = true, POST = true, DELETE = true },
  faults = { GET = true, POST = true, DELETE = true }, snapshot = { GET = true, POST = true },
  quota = { GET = true, POST = true }, ["jssdk/verify"] = { GET = true },
  wxlogin = { POST = true }, phonecode = { POST = true }, qrscan = { POST = true },
}

-- ---- public pieces ----

local function public(ctx, req, rest)
  local sb = ctx.sb
  local id = rest:match("^avatar/([A-Za-z0-9_%-]+)%.svg$")
  if id then
    if id == "_snapshot" then return 200, pages.anonymous_svg(), pages.SVG_HEADERS end
    local u = sb.cfg.user_by_id[id]
    if not u then return 404, "not found\n", { ["Content-Type"] = "text/plain" } end
    return 200, pages.avatar_svg(u), pages.SVG_HEADERS
  end
  id = rest:match("^icon/([A-Za-z0-9_%-]+)%.svg$")
  if id then
    local a = sb.cfg.app_by_id[id]
    if not a then return 404, "not found\n", { ["Content-Type"] = "text/plain" } end
    return 200, pages.icon_svg(a), pages.SVG_HEADERS
  end
  if rest == "callback" then
    return 200, pages.callback(sb.base_url(req), req.query or {}), pages.HTML_HEADERS
  end
  return nil
end

-- Serves /_sandbox/REST.
function _M.handle(ctx, req, rest)
  local s, b, h = public(ctx, req, rest)
  if s then return s, b, h end
  local allowed = METHODS[rest]
  if not allowed then return bad(404, "no such control endpoint: /_sandbox/" .. rest) end
  if not ctx.sb.control_open and not token_ok(ctx.sb, req) then
    return bad(403, "the control API needs the control token (X-Sandbox-Token header or "
      .. "?token=) when the sandbox listens beyond loopback")
  end
  if not allowed[req.method] then
    local list = {}
    for m in pairs(allowed) do list[#list + 1] = m end
    table.sort(list)
    local st, body = bad(405, "method not allowed")
    return st, body, { ["Content-Type"] = JSON["Content-Type"], Allow = table.concat(list, ", ") }
  end
  return H[rest](ctx, req, params(req))
end

return _M
