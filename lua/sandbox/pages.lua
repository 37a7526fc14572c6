-- sandbox.pages: every HTML page and image the sandbox shows: the consent
-- page (styled like WeChat's, mobile-sized), the authorize error page
-- ("Oops! Something went wrong"), the index and the demo callback page, and
-- the generated SVG avatars and app icons. Everything echoed is escaped.
local format, byte, concat = string.format, string.byte, table.concat
local ipairs = ipairs

local _M = {}

local ESC = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }
local function h(s)
  return (tostring(s or ""):gsub("[&<>\"']", ESC))
end
_M.escape = h

local HTML = { ["Content-Type"] = "text/html; charset=utf-8", ["Cache-Control"] = "no-store" }
_M.HTML_HEADERS = HTML

local CSS = [[
*{box-sizing:border-box}
body{margin:0;background:#ededed;font:15px/1.5 -apple-system,BlinkMacSystemFont,"PingFang SC","Helvetica Neue","Microsoft YaHei",sans-serif;color:#191919;-webkit-text-size-adjust:100%}
.phone{max-width:420px;min-height:100vh;margin:0 auto;background:#fff;display:flex;flex-direction:column}
.bar{height:48px;display:flex;align-items:center;justify-content:center;font-size:17px;font-weight:500;background:#ededed;border-bottom:1px solid #e0e0e0}
.main{flex:1;padding:32px 24px}
.app{display:flex;align-items:center;gap:10px;font-size:15px}
.app img{width:32px;height:32px;border-radius:6px}
.ask{font-size:20px;font-weight:600;margin:28px 0 8px}
.scope{color:#888;font-size:14px;margin:0 0 24px}
.me{display:flex;align-items:center;gap:12px;padding:14px 0;border-top:1px solid #eee;border-bottom:1px solid #eee}
.me img{width:48px;height:48px;border-radius:6px}
.me .nick{font-size:16px}
.me .tag{color:#888;font-size:13px}
.me .check{margin-left:auto;color:#07c160;font-size:20px}
.btns{display:flex;gap:16px;justify-content:center;margin:40px 0 16px}
button{font:inherit;border:0;border-radius:8px;padding:10px 0;width:140px;font-size:17px;font-weight:500;cursor:pointer}
#allow{background:#07c160;color:#fff}
#deny{background:#f2f2f2;color:#07c160}
.picker{margin-top:24px;padding-top:12px;border-top:1px dashed #ddd}
.picker h2{font-size:13px;color:#888;font-weight:normal;margin:0 0 8px}
.picker form{display:inline-block;margin:0 8px 8px 0}
.picker button{width:auto;padding:4px 10px 4px 4px;font-size:13px;font-weight:normal;background:#f7f7f7;color:#191919;display:flex;align-items:center;gap:6px;border:1px solid #eee}
.picker button.on{border-color:#07c160;background:#effaf4}
.picker img{width:24px;height:24px;border-radius:4px}
.foot{text-align:center;color:#b2b2b2;font-size:12px;padding:16px}
.oops{text-align:center;padding-top:60px}
.oops .icon{font-size:64px;color:#fa5151;line-height:1}
.oops h1{font-size:20px;font-weight:500;margin:20px 0 8px}
.oops .code{color:#888;font-size:14px}
.oops .detail{color:#576b95;font-size:14px;word-break:break-all;margin-top:16px;text-align:left;background:#f7f7f7;padding:12px;border-radius:6px}
table{border-collapse:collapse;width:100%;font-size:13px}
td,th{border-bottom:1px solid #eee;padding:6px 4px;text-align:left;vertical-align:top;word-break:break-all}
code{background:#f3f3f3;padding:1px 4px;border-radius:3px;font-size:12px}
.main h2{font-size:15px;margin:24px 0 8px}
]]

local function shell(title, body)
  return concat {
    '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width,initial-scale=1,maximum-scale=1,user-scalable=no">',
    "<title>", h(title), "</title><style>", CSS, "</style></head><body><div class=\"phone\">",
    body,
    '<div class="foot">wxgate sandbox · 离线微信沙箱 · not real WeChat</div></div></body></html>',
  }
end
_M.shell = shell

-- The consent page. a: app, u: current user, users: all test users,
-- q: the raw authorize query (carried back on submit), urls: avatar/icon URL
-- functions.
function _M.consent(a, u, users, q, icon_url, avatar_url)
  local picker = {}
  for _, x in ipairs(users) do
    picker[#picker + 1] = concat {
      '<form method="post" action="/connect/oauth2/authorize_reply">',
      '<input type="hidden" name="q" value="', h(q), '">',
      '<input type="hidden" name="user" value="', h(x.id), '">',
      '<button type="submit" name="action" value="switch" class="sbx-user',
      x.id == u.id and " on" or "", '" data-user="', h(x.id), '" id="user-', h(x.id), '">',
      '<img alt="" src="', h(avatar_url(x)), '">', h(x.nickname), "</button></form>",
    }
  end
  local body = concat {
    '<div class="bar">', h(a.name), "</div>",
    '<div class="main">',
    '<div class="app"><img alt="" src="', h(icon_url(a)), '"><span>', h(a.name), " 申请</span></div>",
    '<p class="ask">获取你的昵称、头像</p>',
    '<p class="scope">网页授权 · snsapi_userinfo</p>',
    '<div class="me" id="current-user" data-user="', h(u.id), '"><img alt="" src="',
    h(avatar_url(u)), '"><div><div class="nick">', h(u.nickname),
    '</div><div class="tag">微信个人信息</div></div><span class="check">✓</span></div>',
    '<form method="post" action="/connect/oauth2/authorize_reply" id="consent">',
    '<input type="hidden" name="q" value="', h(q), '">',
    '<input type="hidden" name="user" value="', h(u.id), '">',
    '<div class="btns">',
    '<button type="submit" name="action" value="deny" id="deny">拒绝</button>',
    '<button type="submit" name="action" value="allow" id="allow">允许</button>',
    "</div></form>",
    '<div class="picker"><h2>沙箱测试用户（切换谁在“拿着手机”）</h2>', concat(picker), "</div>",
    "</div>",
  }
  return shell(a.name .. " 申请获取你的信息", body)
end

-- WeChat's authorize error page: "Oops! Something went wrong:(".
function _M.oops(code, msg, detail)
  local body = concat {
    '<div class="bar">微信网页授权</div><div class="main"><div class="oops">',
    '<div class="icon">!</div><h1>Oops! Something went wrong:(</h1>',
    '<p class="code" id="errcode">', h(code), "</p><p id=\"errmsg\">", h(msg), "</p>",
    detail and ('<div class="detail">' .. h(detail) .. "</div>") or "",
    "</div></div>",
  }
  return shell("Oops! Something went wrong", body)
end

-- GET /: what the sandbox serves and with which apps and users.
function _M.index(base, cfg, I, open)
  local apps, users = {}, {}
  for _, a in ipairs(cfg.apps) do
    apps[#apps + 1] = concat {
      "<tr><td><code>", h(a.appid), "</code><br>", h(a.name), "</td><td><code>", h(a.secret),
      "</code></td><td>", h(a.kind), "</td><td>", h(concat(a.domains, ", ")), "</td><td>",
      h(concat(a.scope_list, " ")),
      "</td><td>", a.open_account and h(a.open_account) or "—", "</td></tr>",
    }
  end
  for _, u in ipairs(cfg.users) do
    users[#users + 1] = concat { "<tr><td><code>", h(u.id), "</code></td><td>", h(u.nickname),
                                 "</td></tr>" }
  end
  -- "try a login" links: the first official account's scopes, the first
  -- website app's QR login
  local try = {}
  local cb = require("wx.url").escape(base .. "/_sandbox/callback")
  local oa, site
  for _, x in ipairs(cfg.apps) do
    if x.kind == "official_account" then oa = oa or x end
    if x.kind == "website" then site = site or x end
  end
  for _, scope in ipairs(oa and oa.scope_list or {}) do
    local href = "/connect/oauth2/authorize?appid=" .. oa.appid .. "&redirect_uri=" .. cb
      .. "&response_type=code&scope=" .. scope .. "&state=sandbox#wechat_redirect"
    try[#try + 1] = concat { '<li><a href="', h(href), '">', h(scope), "</a></li>" }
  end
  if site then
    local href = "/connect/qrconnect?appid=" .. site.appid .. "&redirect_uri=" .. cb
      .. "&response_type=code&scope=snsapi_login&state=sandbox#wechat_redirect"
    try[#try + 1] = concat { '<li><a href="', h(href), '">snsapi_login (PC QR)</a></li>' }
  end
  local body = concat {
    '<div class="bar">wxgate 微信沙箱</div><div class="main">',
    "<p>An offline WeChat: <code>open.weixin.qq.com</code> and <code>api.weixin.qq.com</code> ",
    "on one address. Point the gateway's WeChat base URLs at <code>", h(base), "</code>.</p>",
    "<h2>Try a login</h2><ul>", concat(try), "</ul>",
    "<h2>Apps</h2><table><tr><th>appid</th><th>secret</th><th>kind</th><th>callback domains</th>",
    "<th>scopes</th>",
    "<th>open account</th></tr>", concat(apps), "</table>",
    "<h2>Test users</h2><table>", concat(users), "</table>",
    "<h2>Control API</h2><p>", open and "open on this loopback listener"
      or "needs the control token (<code>X-Sandbox-Token</code>)",
    ": <code>GET /_sandbox/apps</code>, <code>GET /_sandbox/stats</code>, ",
    "<code>POST /_sandbox/reset</code>, <code>POST /_sandbox/clock?advance=S</code>, ",
    "<code>POST /_sandbox/fault</code>, <code>POST /_sandbox/login?user=ID</code>, ",
    "<code>POST /_sandbox/grant</code>, <code>POST /_sandbox/snapshot?on=1</code>, ",
    "<code>POST /_sandbox/wxlogin?appid=A&amp;user=ID</code>, ",
    "<code>POST /_sandbox/phonecode?appid=A&amp;user=ID</code>, ",
    "<code>POST /_sandbox/qrscan?action=confirm</code>.</p>",
    "</div>",
  }
  return shell("wxgate sandbox", body)
end

-- GET /_sandbox/callback: a callback page for trying the flow by hand.
function _M.callback(base, args)
  local code, state = args.code, args.state
  local rows = {}
  for _, k in ipairs { "code", "state" } do
    rows[#rows + 1] = concat { "<tr><th>", k, "</th><td><code>", h(args[k] or "(none)"),
                               "</code></td></tr>" }
  end
  local next_step = code and concat {
    "<h2>Exchange it</h2><p><code>curl '", h(base),
    "/sns/oauth2/access_token?appid=APPID&amp;secret=SECRET&amp;code=", h(code),
    "&amp;grant_type=authorization_code'</code></p>",
  } or "<p>No code: the user refused (拒绝).</p>"
  local body = concat {
    '<div class="bar">回调 callback</div><div class="main"><table>', concat(rows), "</table>",
    next_step, "</div>",
  }
  return shell("sandbox callback", body)
end

-- ---- SVG images ----

-- The first UTF-8 character of s.
local function first_char(s)
  local b = byte(s, 1) or 63
  local n = b >= 0xF0 and 4 or b >= 0xE0 and 3 or b >= 0xC0 and 2 or 1
  return s:sub(1, n)
end

local PALETTE = { "#07c160", "#10aeff", "#fa9d3b", "#fa5151", "#6467f0", "#1485ee", "#ff6146",
                  "#91d300", "#b37feb", "#13c2c2" }
local function color_for(id)
  local sum = 0
  for i = 1, #id do sum = (sum * 31 + byte(id, i)) % 1000003 end
  return PALETTE[sum % #PALETTE + 1]
end

local SVG = { ["Content-Type"] = "image/svg+xml; charset=utf-8",
              ["Cache-Control"] = "public, max-age=86400" }
_M.SVG_HEADERS = SVG

local function letter_svg(letter, bg, radius)
  return format(
    '<svg xmlns="http://www.w3.org/2000/svg" width="132" height="132" viewBox="0 0 132 132">'
    .. '<rect width="132" height="132" rx="%d" fill="%s"/>'
    .. '<text x="66" y="66" dy=".35em" text-anchor="middle" font-size="64" '
    .. 'font-family="PingFang SC,Microsoft YaHei,sans-serif" fill="#fff">%s</text></svg>',
    radius, h(bg), h(letter))
end

function _M.avatar_svg(u)
  return letter_svg(first_char(u.nickname), u.color or color_for(u.id), 12)
end

-- The grey silhouette WeChat shows for a virtual (snapshot) user.
function _M.anonymous_svg()
  return '<svg xmlns="http://www.w3.org/2000/svg" width="132" height="132" viewBox="0 0 132 132">'
    .. '<rect width="132" height="132" rx="12" fill="#c8c8c8"/>'
    .. '<circle cx="66" cy="52" r="24" fill="#fff"/>'
    .. '<path d="M22 122c4-26 22-40 44-40s40 14 44 40z" fill="#fff"/></svg>'
end

function _M.icon_svg(a)
  return letter_svg(first_char(a.name), a.color or color_for(a.appid), 28)
end

return _M
