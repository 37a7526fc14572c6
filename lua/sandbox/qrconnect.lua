-- sandbox.qrconnect: open.weixin.qq.com's PC website login (an Open Platform
-- website app, scope snsapi_login). Owns:
--   GET  /connect/qrconnect          the desktop page with the QR code; the
--        authorize checks (parameter order, appid, redirect_uri and its
--        domains, state) plus: the app must be a website app and the scope
--        snsapi_login. Optional after state: WeChat's inline-form parameters
--        (login_type, self_redirect, style, href), accepted and shown.
--   GET  /connect/l/qrconnect?uuid   the page's poll, as WeChat's long poll
--        answers: wx_errcode 408 waiting, 404 scanned, 405 confirmed (with
--        wx_code and the redirect), 403 declined, 402 expired
--   GET  /connect/confirm?uuid       the simulated phone after the scan: marks
--        the QR scanned by the test user holding the phone, asks to confirm
--   POST /connect/confirm_reply      the phone's answer (allow | deny)
-- and scan(ctx, uuid, user, action) for the control API (/_sandbox/qrscan).
-- Confirming mints an authorization code for snsapi_login that
-- sns/oauth2/access_token exchanges like any other; declining sends the
-- desktop back to redirect_uri with state only, as WeChat does.
local wx = require "wx"
local url = require "wx.url"
local json = require "sandbox.json"
local state = require "sandbox.state"
local pages = require "sandbox.pages"
local authorize = require "sandbox.authorize"

local store = wx.store
local concat = table.concat
local h = pages.escape

local _M = {}

local QR_LIFE = 300 -- a QR code is valid for 5 minutes
local KEEP = 1800

local function qr_key(ctx, uuid) return state.key(ctx, "qr", uuid) end

local function load(ctx, uuid)
  if type(uuid) ~= "string" or not uuid:find("^[A-Za-z0-9]+$") then return nil end
  local raw = store.get(qr_key(ctx, uuid))
  local ok, rec = pcall(json.decode, raw or "null")
  return ok and type(rec) == "table" and rec or nil
end

local function save(ctx, uuid, rec)
  store.set(qr_key(ctx, uuid), json.encode(rec), KEEP)
end

local function oops(ctx, code, msg, detail)
  if ctx.endpoint then state.count(ctx, ctx.endpoint, "e") end
  local hd = {}
  for k, v in pairs(pages.HTML_HEADERS) do hd[k] = v end
  hd["X-Sandbox-Error"] = tostring(code)
  return 200, pages.oops(code, msg, detail), hd
end

local DESKTOP_CSS = [[
body{margin:0;background:#333;font:14px/1.5 -apple-system,"PingFang SC","Microsoft YaHei",sans-serif;color:#fff}
.box{width:380px;margin:60px auto;text-align:center}
.box h1{font-size:20px;font-weight:normal;margin:0 0 24px}
.qr{display:inline-block;background:#fff;padding:12px;border-radius:4px}
.qr svg{display:block;width:240px;height:240px}
.status{margin:20px 0;font-size:14px;color:#ccc}
.status.ok{color:#07c160}
.phone{margin-top:32px;padding-top:16px;border-top:1px dashed #666;font-size:13px;color:#aaa}
.phone a{color:#9ecbff}
.meta{color:#888;font-size:12px;margin-top:16px;word-break:break-all}
]]

-- A QR-like picture for the uuid: finder squares and modules derived from
-- it (the sandbox's phone is simulated, nothing decodes it).
local function qr_svg(uuid)
  local n = 25
  local cells = {}
  local seed = 0
  for i = 1, #uuid do seed = (seed * 31 + uuid:byte(i)) % 2147483647 end
  local function finder(x0, y0)
    cells[#cells + 1] = string.format(
      "M%d %dh7v7h-7zM%d %dv5h5v-5zM%d %dh3v3h-3z", x0, y0, x0 + 1, y0 + 1, x0 + 2, y0 + 2)
  end
  finder(0, 0); finder(n - 7, 0); finder(0, n - 7)
  for y = 0, n - 1 do
    for x = 0, n - 1 do
      local corner = (x < 8 and y < 8) or (x >= n - 8 and y < 8) or (x < 8 and y >= n - 8)
      seed = (seed * 1103515245 + 12345) % 2147483648
      if not corner and seed % 7 < 3 then
        cells[#cells + 1] = string.format("M%d %dh1v1h-1z", x, y)
      end
    end
  end
  return concat {
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="-2 -2 ', n + 4, " ", n + 4,
    '" shape-rendering="crispEdges"><path fill="#000" fill-rule="evenodd" d="', concat(cells),
    '"/></svg>',
  }
end

local function desktop_page(app, uuid, inline)
  local poll = "/connect/l/qrconnect?uuid=" .. uuid
  local phone = "/connect/confirm?uuid=" .. uuid
  return concat {
    '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>微信登录</title>',
    "<style>", DESKTOP_CSS, inline.style == "white" and "body{background:#fff;color:#191919}" or "",
    inline.login_type == "jssdk" and
      ".box{width:auto;margin:8px}.box h1{font-size:15px;margin-bottom:8px}.qr svg{width:180px;height:180px}"
      or "",
    "</style></head><body><div class=\"box\" id=\"qrconnect\" data-uuid=\"", h(uuid), "\">",
    "<h1>微信登录 · ", h(app.name), "</h1>",
    '<div class="qr" id="qrcode">', qr_svg(uuid), "</div>",
    '<p class="status" id="status">请使用微信扫描二维码登录「', h(app.name), "」</p>",
    '<div class="phone">沙箱：没有真手机？<a id="simulate-scan" href="', h(phone),
    '" target="_blank" rel="opener">在新窗口用模拟手机扫码</a>',
    "，或用控制接口 POST /_sandbox/qrscan?uuid=", h(uuid), "&amp;action=confirm</div>",
    '<div class="meta">wxgate sandbox · 离线微信沙箱 · not real WeChat</div>',
    "</div><script>(function(){",
    "var st=document.getElementById('status');",
    "var selfRedirect=", inline.self_redirect == "true" and "true" or "false", ";",
    "function go(u){var w=(selfRedirect||window.top===window)?window:window.top;w.location.href=u;}",
    "function poll(){var x=new XMLHttpRequest();x.open('GET','", poll, "');",
    "x.onload=function(){var r;try{r=JSON.parse(x.responseText)}catch(e){return setTimeout(poll,1000)}",
    "if(r.wx_errcode===404){st.textContent='扫描成功，请在微信中点击确认即可登录';st.className='status ok';}",
    "if(r.wx_errcode===405||r.wx_errcode===403){st.textContent=r.wx_errcode===405?'登录成功，正在跳转…':'您已取消此次登录';go(r.redirect);return;}",
    "if(r.wx_errcode===402){st.textContent='二维码已失效，请刷新页面';return;}",
    "setTimeout(poll,300);};x.onerror=function(){setTimeout(poll,1000)};x.send();}",
    "poll();})();</script></body></html>",
  }
end

-- GET /connect/qrconnect
function _M.qrconnect(ctx, req)
  if req.method ~= "GET" and req.method ~= "HEAD" then
    return oops(ctx, "405", "请求方法错误", "qrconnect accepts GET only")
  end
  local raw = req.query_string or ""
  local info, code, msg, detail = authorize.check(ctx.sb, raw)
  if not info then return oops(ctx, code, msg, detail) end
  if info.app.kind ~= "website" or info.scope ~= "snsapi_login" then
    return oops(ctx, "10005", "Scope 参数错误或没有 Scope 权限",
      "PC 扫码登录需要网站应用 (a website app) 与 scope=snsapi_login; got " .. info.app.kind
      .. " app with scope " .. info.scope)
  end
  local q = url.parse_query(raw)
  local uuid = wx.random(16, "base62")
  save(ctx, uuid, {
    a = info.app.appid, r = info.redirect, s = info.state, t = ctx.now, st = "waiting",
  })
  store.set(state.key(ctx, "qrlast", "uuid"), uuid, KEEP)
  return 200, desktop_page(info.app, uuid, {
    self_redirect = q.self_redirect, style = q.style, href = q.href, login_type = q.login_type,
  }), pages.HTML_HEADERS
end

local function redirect_of(rec)
  if rec.st == "confirmed" then
    return url.add_query(rec.r, { { "code", rec.code }, { "state", rec.s } })
  end
  return url.add_query(rec.r, { { "state", rec.s } })
end

local ERRCODE = { waiting = 408, scanned = 404, confirmed = 405, declined = 403 }

-- GET /connect/l/qrconnect?uuid
function _M.poll(ctx, req)
  local rec = load(ctx, req.query and req.query.uuid)
  local errcode = not rec and 402 or (ctx.now - rec.t > QR_LIFE and rec.st ~= "confirmed"
    and rec.st ~= "declined") and 402 or ERRCODE[rec.st]
  local done = errcode == 405 or errcode == 403
  return 200, json.object {
    { "wx_errcode", errcode }, { "wx_code", errcode == 405 and rec.code or "" },
    { "redirect", done and redirect_of(rec) or nil },
  }, { ["Content-Type"] = "application/json; charset=utf-8", ["Cache-Control"] = "no-store" }
end

-- The phone's side: scan (mark scanned), confirm (mint a code) or decline.
-- Returns the record or nil, reason.
function _M.scan(ctx, uuid, u, action)
  local rec = load(ctx, uuid)
  if not rec then return nil, "unknown QR code" end
  if ctx.now - rec.t > QR_LIFE then return nil, "QR code expired" end
  if rec.st == "confirmed" or rec.st == "declined" then return nil, "QR code already used" end
  if rec.u and rec.u ~= u.id then return nil, "scanned by another user" end
  rec.u = u.id
  if action == "scan" then
    rec.st = "scanned"
  elseif action == "confirm" or action == "allow" then
    rec.st = "confirmed"
    rec.code = authorize.mint_code(ctx, rec.a, u.id, "snsapi_login", false)
    authorize.grant(ctx, rec.a, u.id, "snsapi_login")
  elseif action == "decline" or action == "deny" then
    rec.st = "declined"
  else
    return nil, "action must be scan, confirm or decline"
  end
  save(ctx, uuid, rec)
  return rec
end

-- The last QR code shown (for the control API when no uuid is given).
function _M.last(ctx)
  return store.get(state.key(ctx, "qrlast", "uuid"))
end

local function phone_page(ctx, app, u, uuid, note)
  local sb = ctx.sb
  local base = sb.base_url(ctx.req)
  local body = concat {
    '<div class="bar">微信登录确认</div><div class="main">',
    '<div class="app"><img alt="" src="', h(sb.icon_url(app, base)), '"><span>', h(app.name),
    "</span></div>",
    note and ('<p class="ask" id="result">' .. h(note) .. "</p>") or concat {
      '<p class="ask">在电脑上登录「', h(app.name), "」</p>",
      '<p class="scope">网站应用 · snsapi_login · 登录后将获取你的昵称、头像</p>',
      '<div class="me" id="current-user" data-user="', h(u.id), '"><img alt="" src="',
      h(sb.avatar_url(u, base)), '"><div><div class="nick">', h(u.nickname),
      '</div><div class="tag">正在扫码的微信用户</div></div></div>',
      '<form method="post" action="/connect/confirm_reply" id="confirm">',
      '<input type="hidden" name="uuid" value="', h(uuid), '">',
      '<input type="hidden" name="user" value="', h(u.id), '">',
      '<div class="btns">',
      '<button type="submit" name="action" value="deny" id="deny">取消登录</button>',
      '<button type="submit" name="action" value="allow" id="allow">确认登录</button>',
      "</div></form>",
    },
    "</div>",
  }
  return 200, pages.shell("微信登录确认", body), pages.HTML_HEADERS
end

-- GET /connect/confirm?uuid: the phone scanned the code.
function _M.confirm(ctx, req)
  local uuid = req.query and req.query.uuid
  local u = authorize.current_user(ctx.sb, req)
  local rec, why = _M.scan(ctx, uuid, u, "scan")
  if not rec then return oops(ctx, "qrcode", "二维码无效", why) end
  return phone_page(ctx, ctx.sb.cfg.app_by_id[rec.a], u, uuid)
end

-- POST /connect/confirm_reply (uuid, user, action)
function _M.confirm_reply(ctx, req)
  if req.method ~= "POST" then return oops(ctx, "405", "请求方法错误", "POST only") end
  local form = url.parse_query(req.body or "")
  local u = ctx.sb.cfg.user_by_id[form.user or ""]
  if not u then return oops(ctx, "user", "参数错误", "unknown test user") end
  local rec, why = _M.scan(ctx, form.uuid, u, form.action)
  if not rec then return oops(ctx, "qrcode", "二维码无效", why) end
  return phone_page(ctx, ctx.sb.cfg.app_by_id[rec.a], u, form.uuid,
    rec.st == "confirmed" and "已确认登录，请在电脑上继续" or "已取消登录")
end

return _M
