-- sandbox.authorize: open.weixin.qq.com's web authorization. Owns
-- GET /connect/oauth2/authorize (WeChat's strict checks, in its order: the
-- parameter order, appid, redirect_uri and its registered domains, scope,
-- state), the consent page and its reply POST /connect/oauth2/authorize_reply
-- (Allow, Deny, or switch the test user holding the phone), grants, snapshot
-- mode, and minting authorization codes.
local wx = require "wx"
local url = require "wx.url"
local json = require "sandbox.json"
local state = require "sandbox.state"
local pages = require "sandbox.pages"

local store = wx.store
local concat = table.concat

local _M = {}

local COOKIE = "wxsbx_user"
_M.COOKIE = COOKIE
local GRANT_TTL = 365 * 86400
local CODE_KEEP = 1800 -- a code record stays this long (it is valid for 300 s)

-- WeChat matches authorize links against a fixed pattern: known parameters
-- must come in this order (unknown ones are ignored).
local ORDER = { "appid", "redirect_uri", "response_type", "scope", "state", "forcePopup",
                "forceSnapShot", "connect_redirect" }
local RANK = {}
for i, k in ipairs(ORDER) do RANK[k] = i end

local function oops(ctx, code, msg, detail)
  if ctx.endpoint then state.count(ctx, ctx.endpoint, "e") end
  local h = {}
  for k, v in pairs(pages.HTML_HEADERS) do h[k] = v end
  h["X-Sandbox-Error"] = tostring(code)
  return 200, pages.oops(code, msg, detail), h
end

-- Checks an authorize query string. Returns info or nil, code, msg, detail.
function _M.check(sb, raw)
  local args, raw_args, last = {}, {}, 0
  for seg in (raw or ""):gmatch("[^&]+") do
    local k, v = seg:match("^([^=]*)=?(.*)$")
    k = url.unescape(k, true)
    local r = RANK[k]
    if r then
      if raw_args[k] then
        return nil, "param_duplicate", "参数错误", k .. " 出现了不止一次 (appears more than once)"
      end
      if r < last then
        return nil, "param_order", "该链接无法访问",
          "参数顺序错误：微信按 appid, redirect_uri, response_type, scope, state"
          .. "[, forcePopup, forceSnapShot, connect_redirect]#wechat_redirect 的顺序校验链接 "
          .. "(parameters out of WeChat's order; '" .. k .. "' came after '" .. ORDER[last] .. "')"
      end
      last = r
      raw_args[k] = v
      args[k] = url.unescape(v, true)
    end
  end

  if not args.appid or args.appid == "" then return nil, "10012", "appid不能为空" end
  local app = sb.cfg.app_by_id[args.appid]
  if not app then return nil, "40013", "invalid appid", "appid " .. args.appid .. " 不存在" end

  if not args.redirect_uri or args.redirect_uri == "" then
    return nil, "10011", "redirect_uri不能为空"
  end
  if raw_args.redirect_uri:find("[:/?#]") then
    return nil, "10003", "redirect_uri参数错误",
      "redirect_uri 必须经过一次 urlEncode (must be URL-encoded once)"
  end
  local t = url.parse(args.redirect_uri)
  if not t or (t.scheme ~= "http" and t.scheme ~= "https") or not t.host then
    return nil, "10003", "redirect_uri参数错误",
      "redirect_uri 不是 http(s) 链接" .. (args.redirect_uri:find("%%%x%x")
        and " (URL-encoded twice?)" or "") .. ": " .. args.redirect_uri
  end
  local ok_host = false
  for _, d in ipairs(app.domains) do
    if d == t.host then ok_host = true end
  end
  if not ok_host then
    return nil, "10003", "redirect_uri域名与后台配置不一致",
      "域名 " .. t.host .. " 不在该公众号的网页授权域名中 (registered: "
      .. concat(app.domains, ", ") .. ")"
  end

  if args.response_type ~= "code" then
    return nil, "response_type", "response_type参数错误", "response_type 必须为 code"
  end
  if not args.scope or args.scope == "" then return nil, "10010", "scope不能为空" end
  if not app.scopes[args.scope] then
    return nil, "10005", "此公众号并没有这些scope的权限", "scope: " .. args.scope
  end
  if not args.state or args.state == "" then return nil, "10013", "state不能为空" end
  if #args.state > 128 or args.state:find("[^A-Za-z0-9]") then
    return nil, "state", "state参数错误",
      "state 只能是 a-zA-Z0-9，最长 128 字节 (got " .. #args.state .. " bytes)"
  end
  return {
    app = app, redirect = args.redirect_uri, scope = args.scope, state = args.state,
    force_popup = args.forcePopup == "true", force_snapshot = args.forceSnapShot == "true",
  }
end

-- The test user holding the phone: the cookie's, else the first one.
function _M.current_user(sb, req)
  local id = req.cookies and req.cookies[COOKIE]
  return sb.cfg.user_by_id[id or ""] or sb.cfg.users[1]
end

function _M.user_cookie(u)
  return COOKIE .. "=" .. u.id .. "; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax"
end

local function grant_key(ctx, appid, uid)
  return state.key(ctx, "grant", appid .. ":" .. uid)
end

function _M.grant(ctx, appid, uid, scope)
  -- snsapi_userinfo covers snsapi_base; a base grant never downgrades it
  if scope == "snsapi_base" and store.get(grant_key(ctx, appid, uid)) then return true end
  return store.set(grant_key(ctx, appid, uid), scope, GRANT_TTL)
end

function _M.revoke(ctx, appid, uid)
  return store.del(grant_key(ctx, appid, uid))
end

function _M.granted(ctx, appid, uid)
  return store.get(grant_key(ctx, appid, uid))
end

-- A new code for (app, user, scope); snapshot codes yield a virtual user.
function _M.mint_code(ctx, appid, uid, scope, snapshot)
  local code = wx.random(32, "base62")
  store.set(state.key(ctx, "code", code), json.encode {
    a = appid, u = uid, s = scope, t = ctx.now, n = snapshot and 1 or nil,
  }, CODE_KEEP)
  return code
end

local function back_to(info, params, extra_headers)
  local to = url.add_query(info.redirect, params)
  local h = { Location = to, ["Cache-Control"] = "no-store" }
  for k, v in pairs(extra_headers or {}) do h[k] = v end
  return 302, "", h
end

local function with_code(ctx, info, u, snapshot, headers)
  local code = _M.mint_code(ctx, info.app.appid, u.id, info.scope, snapshot)
  return back_to(info, { { "code", code }, { "state", info.state } }, headers)
end

-- What authorize does for a checked request and a user.
local function decide(ctx, info, u, raw)
  if info.scope == "snsapi_userinfo" and (info.force_snapshot or ctx.snapshot) then
    return with_code(ctx, info, u, true)
  end
  if info.scope == "snsapi_base" then
    return with_code(ctx, info, u, false)
  end
  if not info.force_popup and _M.granted(ctx, info.app.appid, u.id) == "snsapi_userinfo" then
    return with_code(ctx, info, u, false)
  end
  local sb = ctx.sb
  local base = sb.base_url(ctx.req)
  return 200, pages.consent(info.app, u, sb.cfg.users, raw,
    function(a) return sb.icon_url(a, base) end,
    function(x) return sb.avatar_url(x, base) end), pages.HTML_HEADERS
end

-- GET /connect/oauth2/authorize
function _M.authorize(ctx, req)
  if req.method ~= "GET" and req.method ~= "HEAD" then
    return oops(ctx, "405", "请在微信客户端打开链接", "authorize accepts GET only")
  end
  local raw = req.query_string or ""
  local info, code, msg, detail = _M.check(ctx.sb, raw)
  if not info then return oops(ctx, code, msg, detail) end
  if info.app.kind ~= "official_account" then
    return oops(ctx, "10005", "此公众号并没有这些scope的权限",
      "网页授权需要公众号 (an official account); " .. info.app.appid .. " is a " .. info.app.kind
      .. " app" .. (info.app.kind == "website" and ": use /connect/qrconnect" or ""))
  end
  return decide(ctx, info, _M.current_user(ctx.sb, req), raw)
end

-- POST /connect/oauth2/authorize_reply: q (the authorize query), user,
-- action = allow | deny | switch.
function _M.reply(ctx, req)
  if req.method ~= "POST" then
    return oops(ctx, "405", "请在微信客户端打开链接", "authorize_reply accepts POST only")
  end
  local form = url.parse_query(req.body or "")
  local raw = form.q or ""
  if raw:find("[%z\1-\32\127]") then
    return oops(ctx, "param_error", "参数错误", "the authorize query has control characters")
  end
  local info, code, msg, detail = _M.check(ctx.sb, raw)
  if not info then return oops(ctx, code, msg, detail) end
  local u = ctx.sb.cfg.user_by_id[form.user or ""]
  if not u then return oops(ctx, "user", "参数错误", "unknown test user") end
  local cookie = { ["Set-Cookie"] = _M.user_cookie(u) }
  if form.action == "allow" then
    _M.grant(ctx, info.app.appid, u.id, info.scope)
    return with_code(ctx, info, u, false, cookie)
  elseif form.action == "deny" then
    return back_to(info, { { "state", info.state } }, cookie)
  elseif form.action == "switch" then
    return 303, "", { Location = "/connect/oauth2/authorize?" .. raw .. "#wechat_redirect",
                      ["Set-Cookie"] = cookie["Set-Cookie"], ["Cache-Control"] = "no-store" }
  end
  return oops(ctx, "action", "参数错误", "action must be allow, deny or switch")
end

return _M
