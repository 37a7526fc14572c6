-- sandbox.api: api.weixin.qq.com. Owns the OAuth token endpoints
-- (sns/oauth2/access_token, sns/oauth2/refresh_token, sns/userinfo,
-- sns/auth) and the JS-SDK ones (cgi-bin/token with its 5-minute overlap
-- and daily quota, cgi-bin/ticket/getticket). Replies are WeChat's, field
-- order included; every error is HTTP 200 with errcode/errmsg and a rid.
-- Expiry is judged by the sandbox clock (state.now), so advancing the clock
-- expires codes and tokens; store TTLs only reclaim memory later.
local wx = require "wx"
local json = require "sandbox.json"
local state = require "sandbox.state"
local crypto = require "wx.crypto"

local store = wx.store
local floor = math.floor
local tonumber = tonumber
local decode = json.decode
local object = json.object

local _M = {}

local CODE_LIFE = 300               -- an authorization code: 5 minutes
local TOKEN_LIFE = 7200             -- access_token (OAuth and basic) and jsapi ticket
local REFRESH_LIFE = 30 * 86400     -- refresh_token: 30 days
local OVERLAP = 300                 -- a replaced basic token keeps working this long
local KEEP = 3600                   -- store records outlive their life by this much
_M.CODE_LIFE, _M.TOKEN_LIFE, _M.REFRESH_LIFE, _M.OVERLAP = CODE_LIFE, TOKEN_LIFE, REFRESH_LIFE,
  OVERLAP

local err, key = state.err, state.key

local function present(v) return v ~= nil and v ~= "" end

local function get_record(ctx, kind, id)
  local raw = store.get(key(ctx, kind, id))
  if not raw then return nil end
  local ok, rec = pcall(decode, raw)
  return ok and type(rec) == "table" and rec or nil
end

-- Stores a new OAuth access_token for rec's app/user/scope; returns it.
local function issue_access_token(ctx, rec)
  local at = wx.random(64, "base62")
  store.set(key(ctx, "at", at), json.encode {
    a = rec.a, u = rec.u, o = rec.o, s = rec.s, n = rec.n, e = ctx.now + TOKEN_LIFE,
  }, TOKEN_LIFE + KEEP)
  return at
end

local function app_unionid(sb, rec)
  if rec.n then return nil end -- a snapshot (virtual) user has no unionid
  local app = sb.cfg.app_by_id[rec.a]
  return app and sb.I.unionid(app, rec.u)
end

-- GET /sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code
function _M.access_token(ctx, q)
  local sb = ctx.sb
  if not present(q.appid) then return err(ctx, 41002) end
  if not present(q.secret) then return err(ctx, 41004) end
  if not present(q.code) then return err(ctx, 41008) end
  if q.grant_type ~= "authorization_code" then return err(ctx, 40002) end
  local app = sb.cfg.app_by_id[q.appid]
  if not app then return err(ctx, 40013) end
  if q.secret ~= app.secret then return err(ctx, 40125) end
  local code = get_record(ctx, "code", q.code)
  if not code or code.a ~= app.appid then return err(ctx, 40029) end
  if ctx.now - code.t > CODE_LIFE then return err(ctx, 42003) end
  -- single use: the first add wins, across workers
  if not store.add(key(ctx, "used", q.code), "1", CODE_LIFE + KEEP) then
    return err(ctx, 40163)
  end
  local snap = code.n == 1
  local rec = {
    a = app.appid, u = code.u, s = code.s, n = snap and 1 or nil,
    o = snap and sb.I.snapshot_openid(app.appid, code.u) or sb.I.openid(app.appid, code.u),
  }
  local at = issue_access_token(ctx, rec)
  local rt = wx.random(64, "base62")
  rec.e = ctx.now + REFRESH_LIFE
  store.set(key(ctx, "rt", rt), json.encode(rec), REFRESH_LIFE + KEEP)
  return state.json(object {
    { "access_token", at }, { "expires_in", TOKEN_LIFE }, { "refresh_token", rt },
    { "openid", rec.o }, { "scope", rec.s }, { "is_snapshotuser", snap and 1 or nil },
    { "unionid", app_unionid(sb, rec) },
  })
end

-- GET /sns/oauth2/refresh_token?appid&grant_type=refresh_token&refresh_token
function _M.refresh_token(ctx, q)
  if not present(q.refresh_token) then return err(ctx, 41003) end
  if not present(q.appid) then return err(ctx, 41002) end
  if q.grant_type ~= "refresh_token" then return err(ctx, 40002) end
  local app = ctx.sb.cfg.app_by_id[q.appid]
  if not app then return err(ctx, 40013) end
  local rec = get_record(ctx, "rt", q.refresh_token)
  if not rec or rec.a ~= app.appid then return err(ctx, 40030) end
  if ctx.now > rec.e then return err(ctx, 42002) end
  local at = issue_access_token(ctx, rec)
  return state.json(object {
    { "access_token", at }, { "expires_in", TOKEN_LIFE }, { "refresh_token", q.refresh_token },
    { "openid", rec.o }, { "scope", rec.s }, { "unionid", app_unionid(ctx.sb, rec) },
  })
end

-- The OAuth token in q.access_token, checked in WeChat's order: the
-- credential first, then the openid. Returns rec or nil, status, body, headers.
local function oauth_token(ctx, q)
  if not present(q.access_token) then return nil, err(ctx, 41001) end
  local rec = get_record(ctx, "at", q.access_token)
  if not rec then return nil, err(ctx, 40001) end
  if ctx.now > rec.e then return nil, err(ctx, 42001) end
  if not present(q.openid) then return nil, err(ctx, 41009) end
  if q.openid ~= rec.o then return nil, err(ctx, 40003) end
  return rec
end

local LANGS = { zh_CN = true, zh_TW = true, en = true }

-- GET /sns/userinfo?access_token&openid&lang
function _M.userinfo(ctx, q)
  local rec, s, b, h = oauth_token(ctx, q)
  if not rec then return s, b, h end
  if rec.s ~= "snsapi_userinfo" and rec.s ~= "snsapi_login" then return err(ctx, 48001) end
  local sb = ctx.sb
  local lang = LANGS[q.lang] and q.lang or "zh_CN"
  local base = sb.base_url(ctx.req)
  if rec.n then
    -- a snapshot-page user: a virtual identity, WeChat's default look
    return state.json(object {
      { "openid", rec.o }, { "nickname", "微信用户" }, { "sex", 0 }, { "language", lang },
      { "city", "" }, { "province", "" }, { "country", "" },
      { "headimgurl", base .. "/_sandbox/avatar/_snapshot.svg" }, { "privilege", json.array() },
    })
  end
  local u = sb.cfg.user_by_id[rec.u]
  if not u then return err(ctx, 40003) end -- the config changed under a live token
  return state.json(object {
    { "openid", rec.o }, { "nickname", u.nickname }, { "sex", u.sex }, { "language", lang },
    { "city", u.city }, { "province", u.province }, { "country", u.country },
    { "headimgurl", sb.avatar_url(u, base) }, { "privilege", json.array() },
    { "unionid", app_unionid(sb, rec) },
  })
end

local OK = '{"errcode":0,"errmsg":"ok"}'

-- GET /sns/auth?access_token&openid
function _M.auth(ctx, q)
  local rec, s, b, h = oauth_token(ctx, q)
  if not rec then return s, b, h end
  return state.json(OK)
end

-- ---- basic access_token (cgi-bin) ----
-- Each fetch takes the next number of the app's sequence (atomic incr) and
-- records when it was issued. Token k is "not latest" once token k+1 exists,
-- and stops working OVERLAP seconds after k+1 was issued.

function _M.quota_limit(ctx)
  return tonumber(ctx.ctl.quota) or ctx.sb.cfg.quota
end

local function day(ctx) -- WeChat's day starts at midnight Beijing time
  return floor((ctx.now + 8 * 3600) / 86400)
end

function _M.quota_used(ctx, appid)
  return tonumber(store.get(key(ctx, "quota", appid .. ":" .. day(ctx)))) or 0
end

-- GET /cgi-bin/token?grant_type=client_credential&appid&secret
function _M.cgi_token(ctx, q)
  if q.grant_type ~= "client_credential" then return err(ctx, 40002) end
  if not present(q.appid) then return err(ctx, 41002) end
  if not present(q.secret) then return err(ctx, 41004) end
  local app = ctx.sb.cfg.app_by_id[q.appid]
  if not app then return err(ctx, 40013) end
  if q.secret ~= app.secret then return err(ctx, 40125) end
  local n = store.incr(key(ctx, "quota", app.appid .. ":" .. day(ctx)), 1, 2 * 86400)
  if n and n > _M.quota_limit(ctx) then return err(ctx, 45009) end
  local seq = store.incr(key(ctx, "bseq", app.appid), 1, 365 * 86400)
  if not seq then return err(ctx, -1) end
  store.set(key(ctx, "bissued", app.appid .. ":" .. seq), tostring(ctx.now), TOKEN_LIFE + KEEP)
  local token = wx.random(64, "base62")
  store.set(key(ctx, "bt", token), json.encode { a = app.appid, k = seq, e = ctx.now + TOKEN_LIFE },
            TOKEN_LIFE + KEEP)
  return state.json(object { { "access_token", token }, { "expires_in", TOKEN_LIFE } })
end

-- A basic token: rec or nil, status, body, headers.
local function basic_token(ctx, q)
  if not present(q.access_token) then return nil, err(ctx, 41001) end
  local rec = get_record(ctx, "bt", q.access_token)
  if not rec then return nil, err(ctx, 40001) end
  if ctx.now > rec.e then return nil, err(ctx, 42001) end
  local latest = tonumber(store.get(key(ctx, "bseq", rec.a))) or rec.k
  if latest > rec.k then
    local replaced = tonumber(store.get(key(ctx, "bissued", rec.a .. ":" .. (rec.k + 1))))
    if replaced and ctx.now > replaced + OVERLAP then return nil, err(ctx, 40001) end
  end
  return rec
end
_M.basic_token = basic_token

local TICKET_TYPES = { jsapi = true, wx_card = true }

-- GET /cgi-bin/ticket/getticket?access_token&type=jsapi
function _M.getticket(ctx, q)
  local rec, s, b, h = basic_token(ctx, q)
  if not rec then return s, b, h end
  local kind = present(q.type) and q.type or "jsapi"
  if not TICKET_TYPES[kind] then return err(ctx, 40097) end
  local k = key(ctx, "ticket", rec.a .. ":" .. kind)
  local t
  for _ = 1, 3 do
    local raw = store.get(k)
    local ok, cur = pcall(decode, raw or "null")
    if ok and type(cur) == "table" and cur.e and ctx.now < cur.e then
      t = cur
      break
    end
    -- none or expired: make one; if another request just did, use theirs
    local new = { t = wx.random(86, "base62"), e = ctx.now + TOKEN_LIFE }
    if raw then store.del(k) end
    if store.add(k, json.encode(new), TOKEN_LIFE + KEEP) then
      t = new
      break
    end
  end
  if not t then return err(ctx, -1) end
  return state.json(object {
    { "errcode", 0 }, { "errmsg", "ok" }, { "ticket", t.t },
    { "expires_in", math.max(1, floor(t.e - ctx.now)) },
  })
end

-- ---- Mini Programs and Mini Games ----
-- wx.login() on a device gives a js_code (minted here by the control API,
-- POST /_sandbox/wxlogin); the app's server trades it for the user's openid,
-- unionid and session_key. The session_key stays the same for an (app, user)
-- until the store forgets it, as WeChat keeps it while the session lives.

local SESSION_LIFE = 3 * 86400

local function is_mini(app) return app.kind == "miniprogram" or app.kind == "minigame" end
_M.is_mini = is_mini

-- A new wx.login() code for (app, user); single use, CODE_LIFE seconds.
function _M.mint_js_code(ctx, appid, uid)
  local code = wx.random(32, "base62")
  store.set(key(ctx, "jscode", code), json.encode { a = appid, u = uid, t = ctx.now },
            CODE_LIFE + KEEP)
  return code
end

local function session_key(ctx, appid, uid)
  local k = key(ctx, "session", appid .. ":" .. uid)
  local sk = store.get(k)
  if sk then return sk end
  -- 16 random bytes in standard base64, as WeChat's session_key
  sk = crypto.base64url_encode(wx.random(16, "raw")):gsub("-", "+"):gsub("_", "/") .. "=="
  if not store.add(k, sk, SESSION_LIFE) then sk = store.get(k) or sk end
  return sk
end

-- GET /sns/jscode2session?appid&secret&js_code&grant_type=authorization_code
function _M.jscode2session(ctx, q)
  local sb = ctx.sb
  if not present(q.appid) then return err(ctx, 41002) end
  if not present(q.secret) then return err(ctx, 41004) end
  if not present(q.js_code) then return err(ctx, 41008) end
  if q.grant_type ~= "authorization_code" then return err(ctx, 40002) end
  local app = sb.cfg.app_by_id[q.appid]
  if not app or not is_mini(app) then return err(ctx, 40013) end
  if q.secret ~= app.secret then return err(ctx, 40125) end
  local code = get_record(ctx, "jscode", q.js_code)
  if not code or code.a ~= app.appid or ctx.now - code.t > CODE_LIFE then
    return err(ctx, 40029)
  end
  if not store.add(key(ctx, "jsused", q.js_code), "1", CODE_LIFE + KEEP) then
    return err(ctx, 40163)
  end
  return state.json(object {
    { "session_key", session_key(ctx, app.appid, code.u) },
    { "openid", sb.I.openid(app.appid, code.u) },
    { "unionid", sb.I.unionid(app, code.u) },
  })
end

-- A new getPhoneNumber code for (app, user); single use, CODE_LIFE seconds.
function _M.mint_phone_code(ctx, appid, uid)
  local code = wx.random(64, "hex")
  store.set(key(ctx, "phonecode", code), json.encode { a = appid, u = uid, t = ctx.now },
            CODE_LIFE + KEEP)
  return code
end

-- POST /wxa/business/getuserphonenumber?access_token=BASIC, body {"code": ...}
function _M.getuserphonenumber(ctx, q)
  local req = ctx.req
  if req.method ~= "POST" then return err(ctx, 43002, "require POST method") end
  local rec, s, b, h = basic_token(ctx, q)
  if not rec then return s, b, h end
  local app = ctx.sb.cfg.app_by_id[rec.a]
  if not app or not is_mini(app) then return err(ctx, 48001) end
  local ok, body = pcall(decode, req.body or "")
  if not ok or type(body) ~= "table" then return err(ctx, 47001) end
  if not present(body.code) or type(body.code) ~= "string" then return err(ctx, 40029) end
  local code = get_record(ctx, "phonecode", body.code)
  if not code or code.a ~= app.appid or ctx.now - code.t > CODE_LIFE then
    return err(ctx, 40029)
  end
  if not store.add(key(ctx, "phoneused", body.code), "1", CODE_LIFE + KEEP) then
    return err(ctx, 40029)
  end
  local u = ctx.sb.cfg.user_by_id[code.u]
  if not u or not u.phone then return err(ctx, 40029) end
  local cc, pure = u.phone:match("^%+(%d+)%s*(.+)$")
  cc, pure = cc or "86", (pure or u.phone):gsub("%s", "")
  return state.json(object {
    { "errcode", 0 }, { "errmsg", "ok" },
    { "phone_info", json.raw(object {
      { "phoneNumber", cc == "86" and pure or ("+" .. cc .. " " .. pure) },
      { "purePhoneNumber", pure }, { "countryCode", cc },
      { "watermark", json.raw(object { { "timestamp", floor(ctx.now) },
                                       { "appid", app.appid } }) },
    }) },
  })
end

-- The current jsapi ticket of an app (for the control API's signature check).
function _M.current_ticket(ctx, appid)
  local raw = store.get(key(ctx, "ticket", appid .. ":jsapi"))
  local ok, cur = pcall(decode, raw or "null")
  if ok and type(cur) == "table" and cur.e and ctx.now < cur.e then return cur.t end
  return nil
end

return _M
