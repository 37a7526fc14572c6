-- sandbox.config: the sandbox's apps and test users. Owns the built-in
-- default set, loading a user's config file (-c FILE, a Lua file returning a
-- table), checking it with clear messages, and the identities derived from
-- it: openid per (app, user), unionid per (open-platform account, user), and
-- the virtual openid of snapshot mode. Runs once per worker at startup.
local sign = require "wx.sign"

local type, pairs, ipairs, error, tostring, tonumber, setfenv, loadfile =
  type, pairs, ipairs, error, tostring, tonumber, setfenv, loadfile
local format = string.format

local _M = {}

local KNOWN_SCOPES = { snsapi_base = true, snsapi_userinfo = true }
_M.KNOWN_SCOPES = KNOWN_SCOPES
-- What an app is, and so which logins it serves: an official account (web
-- authorization), an Open Platform website app (PC QR login, snsapi_login),
-- a Mini Program or a Mini Game (wx.login() codes, jscode2session).
local KINDS = { official_account = true, website = true, miniprogram = true, minigame = true }
_M.KINDS = KINDS

-- The built-in set: documented development values (docs/sandbox.md).
function _M.default()
  return {
    quota = 2000,
    seed = "wxgate-sandbox",
    apps = {
      { appid = "wx_sandbox_demo", secret = "sandbox_demo_secret", name = "沙箱演示号",
        domains = { "127.0.0.1", "localhost" }, open_account = "wxgate-open",
        color = "#07c160" },
      { appid = "wx_sandbox_game", secret = "sandbox_game_secret", name = "沙箱游戏中心",
        domains = { "127.0.0.1", "localhost" }, open_account = "wxgate-open",
        color = "#fa9d3b" },
      { appid = "wx_sandbox_solo", secret = "sandbox_solo_secret", name = "独立活动号",
        domains = { "127.0.0.1", "localhost" }, color = "#10aeff" },
      { appid = "wx_sandbox_base", secret = "sandbox_base_secret", name = "未认证订阅号",
        domains = { "127.0.0.1", "localhost" }, scopes = { "snsapi_base" },
        color = "#888888" },
      { appid = "wx_sandbox_web", secret = "sandbox_web_secret", name = "沙箱网站应用",
        kind = "website", domains = { "127.0.0.1", "localhost" }, open_account = "wxgate-open",
        color = "#2b6de5" },
      { appid = "wx_sandbox_mp", secret = "sandbox_mp_secret", name = "沙箱小程序",
        kind = "miniprogram", open_account = "wxgate-open", color = "#6467f0" },
      { appid = "wx_sandbox_minigame", secret = "sandbox_minigame_secret", name = "沙箱小游戏",
        kind = "minigame", open_account = "wxgate-open", color = "#e64340" },
    },
    users = {
      { id = "xiaoming", nickname = "小明", phone = "13800138000" },
      { id = "meimei", nickname = "韩梅梅", phone = "13900139000" },
      { id = "lilei", nickname = "李雷" },
      { id = "panda", nickname = "熊猫 🐼 <Tom & \"Jerry\">", phone = "+852 61234567" },
    },
  }
end

local function fail(where, msg)
  error(format("sandbox config %s: %s", where, msg), 0)
end

local function check_keys(t, where, allowed)
  for k in pairs(t) do
    if type(k) ~= "string" or not allowed[k] then
      fail(where, format("unknown key %s", tostring(k)))
    end
  end
end

local function set(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local APP_KEYS = set { "appid", "secret", "name", "domains", "scopes", "open_account", "icon",
                       "color", "kind" }
local USER_KEYS = set { "id", "nickname", "avatar", "sex", "province", "city", "country",
                        "color", "phone" }
local TOP_KEYS = set { "apps", "users", "quota", "seed", "public_url", "snapshot" }

local function str(v, where, pattern, what)
  if type(v) ~= "string" or v == "" then
    fail(where, "must be a non-empty string")
  end
  if pattern and not v:find(pattern) then
    fail(where, what)
  end
  return v
end

local function opt_str(v, where)
  if v == nil then return "" end
  if type(v) ~= "string" then fail(where, "must be a string") end
  return v
end

local function check_color(v, where)
  if v == nil then return nil end
  return str(v, where, "^#%x%x%x%x?%x?%x?$", "must be a colour like #07c160")
end

-- Checks and normalises a config table; returns the table the sandbox uses.
function _M.check(c, origin)
  origin = origin or "(built-in)"
  local W = function(p) return origin .. ": " .. p end
  if type(c) ~= "table" then fail(origin, "must return a table") end
  check_keys(c, origin, TOP_KEYS)
  local out = {
    quota = 2000, seed = "wxgate-sandbox", apps = {}, users = {}, app_by_id = {},
    user_by_id = {}, snapshot = c.snapshot == true,
  }
  if c.quota ~= nil then
    local q = tonumber(c.quota)
    if not q or q < 0 or q ~= math.floor(q) then fail(W "quota", "must be a whole number >= 0") end
    out.quota = q
  end
  if c.seed ~= nil then out.seed = str(c.seed, W "seed") end
  if c.public_url ~= nil then
    out.public_url = str(c.public_url, W "public_url", "^https?://[^/?#]+$",
                         "must be scheme://host[:port] with no path")
  end
  if c.snapshot ~= nil and type(c.snapshot) ~= "boolean" then
    fail(W "snapshot", "must be true or false")
  end

  if type(c.apps) ~= "table" or #c.apps == 0 then fail(W "apps", "must list at least one app") end
  for i, a in ipairs(c.apps) do
    local p = W(format("apps[%d]", i))
    if type(a) ~= "table" then fail(p, "must be a table") end
    check_keys(a, p, APP_KEYS)
    local app = {
      appid = str(a.appid, p .. ".appid", "^[A-Za-z0-9_%-]+$", "letters, digits, _ and - only"),
      secret = str(a.secret, p .. ".secret"),
      open_account = a.open_account ~= nil and str(a.open_account, p .. ".open_account") or nil,
      icon = a.icon ~= nil and str(a.icon, p .. ".icon", "^https?://", "must be an http(s) URL")
             or nil,
      color = check_color(a.color, p .. ".color") or "#07c160",
      domains = {}, scopes = {}, scope_list = {},
    }
    app.name = a.name ~= nil and str(a.name, p .. ".name") or app.appid
    app.kind = a.kind ~= nil and str(a.kind, p .. ".kind") or "official_account"
    if not KINDS[app.kind] then
      fail(p .. ".kind", "must be official_account, website, miniprogram or minigame")
    end
    -- a Mini Program has no web callback domains; the others need one or two
    local mini = app.kind == "miniprogram" or app.kind == "minigame"
    local domains = a.domains
    if mini and domains == nil then domains = {} end
    if #app.appid > 64 then fail(p .. ".appid", "at most 64 characters") end
    if out.app_by_id[app.appid] then fail(p .. ".appid", "duplicate appid " .. app.appid) end
    if type(domains) ~= "table" or (#domains == 0 and not mini) then
      fail(p .. ".domains", "must list one or two callback domains")
    end
    if #domains > 2 then
      fail(p .. ".domains", "WeChat allows at most two web authorization callback domains")
    end
    for j, d in ipairs(domains) do
      local dp = format("%s.domains[%d]", p, j)
      d = str(d, dp, "^[A-Za-z0-9.%-:%[%]]+$",
              "a host name only (no scheme, path or port), like h5.example.com")
      local host = d:lower()
      if host:find(":", 1, true) and not host:find("^%[") then
        -- a bare IPv6 address is accepted, written with brackets as URLs have it
        if host:find("^[%x:]+$") and select(2, host:gsub(":", "")) >= 2 then
          host = "[" .. host .. "]"
        else
          fail(dp, "a host name only, without a port (WeChat matches the host alone)")
        end
      end
      app.domains[#app.domains + 1] = host
    end
    -- a website app has snsapi_login only; a Mini Program no web scope at all
    local scopes = a.scopes or { "snsapi_base", "snsapi_userinfo" }
    if app.kind == "website" then
      if a.scopes ~= nil then fail(p .. ".scopes", "a website app has snsapi_login only") end
      scopes = {}
      app.scopes.snsapi_login, app.scope_list[1] = true, "snsapi_login"
    elseif mini then
      if a.scopes ~= nil then fail(p .. ".scopes", "a Mini Program has no web scopes") end
      scopes = {}
    elseif type(scopes) ~= "table" or #scopes == 0 then
      fail(p .. ".scopes", "must list scopes")
    end
    for j, s in ipairs(scopes) do
      if not KNOWN_SCOPES[s] then
        fail(format("%s.scopes[%d]", p, j), "must be snsapi_base or snsapi_userinfo")
      end
      app.scopes[s] = true
      app.scope_list[#app.scope_list + 1] = s
    end
    out.apps[#out.apps + 1] = app
    out.app_by_id[app.appid] = app
  end

  if type(c.users) ~= "table" or #c.users == 0 then fail(W "users", "must list at least one user") end
  for i, u in ipairs(c.users) do
    local p = W(format("users[%d]", i))
    if type(u) ~= "table" then fail(p, "must be a table") end
    check_keys(u, p, USER_KEYS)
    local user = {
      id = str(u.id, p .. ".id", "^[A-Za-z0-9_%-]+$", "letters, digits, _ and - only"),
      nickname = str(u.nickname, p .. ".nickname"),
      avatar = u.avatar ~= nil and str(u.avatar, p .. ".avatar", "^https?://",
                                       "must be an http(s) URL") or nil,
      province = opt_str(u.province, p .. ".province"),
      city = opt_str(u.city, p .. ".city"),
      country = opt_str(u.country, p .. ".country"),
      color = check_color(u.color, p .. ".color"),
      phone = u.phone ~= nil and str(u.phone, p .. ".phone", "^%+?[%d ]+$",
                                     "digits, with an optional +CC prefix") or nil,
      sex = 0,
    }
    if #user.id > 32 then fail(p .. ".id", "at most 32 characters") end
    if u.sex ~= nil then
      if u.sex ~= 0 and u.sex ~= 1 and u.sex ~= 2 then fail(p .. ".sex", "must be 0, 1 or 2") end
      user.sex = u.sex
    end
    if out.user_by_id[user.id] then fail(p .. ".id", "duplicate user id " .. user.id) end
    out.users[#out.users + 1] = user
    out.user_by_id[user.id] = user
  end
  return out
end

-- A config file is plain Lua data: it runs with an empty environment except
-- for a few pure helpers and os.getenv (for secrets kept outside the file).
function _M.load(path)
  if not path or path == "" then
    return _M.check(_M.default(), "(built-in)")
  end
  local chunk, err = loadfile(path)
  if not chunk then fail(path, err) end
  setfenv(chunk, {
    os = { getenv = os.getenv }, string = string, table = table, math = math,
    tostring = tostring, tonumber = tonumber, ipairs = ipairs, pairs = pairs,
  })
  local ok, c = pcall(chunk)
  if not ok then fail(path, tostring(c)) end
  return _M.check(c, path)
end

-- Identities: stable for a seed, 28 characters like WeChat's, "o"-prefixed.
local function ident(seed, ...)
  local msg = table.concat({ ... }, "\0")
  return "o" .. sign.hmac_sha256_base64url(seed, msg):sub(1, 27)
end

function _M.identities(cfg)
  local openids, unionids, snaps = {}, {}, {}
  local seed = cfg.seed
  local I = {}
  function I.openid(appid, uid)
    local k = appid .. "\0" .. uid
    local v = openids[k]
    if not v then
      v = ident(seed, "openid", appid, uid)
      openids[k] = v
    end
    return v
  end
  -- nil for an app that is not bound to an open-platform account
  function I.unionid(app, uid)
    if not app.open_account then return nil end
    local k = app.open_account .. "\0" .. uid
    local v = unionids[k]
    if not v then
      v = ident(seed, "unionid", app.open_account, uid)
      unionids[k] = v
    end
    return v
  end
  -- the virtual identity a snapshot-page user gets (never a real openid)
  function I.snapshot_openid(appid, uid)
    local k = appid .. "\0" .. uid
    local v = snaps[k]
    if not v then
      v = ident(seed, "snapshot", appid, uid)
      snaps[k] = v
    end
    return v
  end
  return I
end

return _M
