-- The demo campaign: a small page and the backend behind it, as a campaign
-- team would write them. Served by wxgate as a route (["/demo"]), but nothing
-- here depends on that: the backend talks to the gateway over HTTP only.
--
--   GET  /demo/              the page (index.html)
--   GET  /demo/api/me        the logged-in user of this browser's session
--   POST /demo/api/session   redeems ?ticket= through the gateway's
--                            POST /api/ticket (bearer key), starts a session
--   POST /demo/api/logout
local wx = require "wx"

local GATEWAY = wx.getenv("WXGATE_DEMO_GATEWAY") or "http://127.0.0.1:8080"
local API_KEY = wx.getenv("WXGATE_DEMO_API_KEY") or ""
local SESSION_TTL = 3600

local page = assert(wx.file("index.html"))

local function json(status, t, headers)
  headers = headers or {}
  headers["Content-Type"] = "application/json; charset=utf-8"
  headers["Cache-Control"] = "no-store"
  return status, wx.json.encode(t), headers
end

local function session_user(req)
  local sid = req.cookies.demo_session
  if not sid or not sid:match("^%w+$") then return nil end
  local v = wx.store.get("demo:session:" .. sid)
  return v and wx.json.decode(v)
end

local function redeem(req)
  local ticket = req.query.ticket
  if not ticket or not ticket:match("^%w+$") then
    return json(400, { error = "missing ticket" })
  end
  local res, err = wx.http.post(GATEWAY .. "/api/ticket", "ticket=" .. ticket, {
    headers = { Authorization = "Bearer " .. API_KEY,
                ["Content-Type"] = "application/x-www-form-urlencoded" },
    timeout = 5,
  })
  if not res then return json(502, { error = "gateway unreachable: " .. err }) end
  if res.status ~= 200 or not res.json then
    return json(401, { error = "ticket refused: log in again" })
  end
  local u = res.json
  local user = { nickname = u.nickname, headimgurl = u.headimgurl, openid = u.openid,
                 unionid = u.unionid, scope = u.scope, kind = u.kind, app = u.app }
  local sid = wx.random(24, "base62")
  assert(wx.store.set("demo:session:" .. sid, wx.json.encode(user), SESSION_TTL))
  return json(200, user, {
    ["Set-Cookie"] = "demo_session=" .. sid .. "; Path=/demo; HttpOnly; SameSite=Lax; Max-Age="
      .. SESSION_TTL })
end

return function(req)
  local path = req.path
  if path == "/demo" then return wx.redirect("/demo/") end
  if path == "/demo/" or path == "/demo/index.html" then
    return 200, page, { ["Content-Type"] = "text/html; charset=utf-8",
                        ["Cache-Control"] = "no-store" }
  end
  if path == "/demo/api/me" then
    local user = session_user(req)
    if not user then return json(401, { error = "not logged in" }) end
    return json(200, user)
  end
  if path == "/demo/api/session" and req.method == "POST" then return redeem(req) end
  if path == "/demo/api/logout" and req.method == "POST" then
    local sid = req.cookies.demo_session
    if sid and sid:match("^%w+$") then wx.store.del("demo:session:" .. sid) end
    return json(200, { ok = true }, { ["Set-Cookie"] = "demo_session=; Path=/demo; Max-Age=0" })
  end
  return 404, "not found"
end
