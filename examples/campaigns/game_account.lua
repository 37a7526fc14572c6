-- Map the WeChat user to the game's own account: ask the game backend (over
-- wx.http, without blocking the gateway) for the player id of this unionid,
-- creating the player on first login, and hand the game a one-time ticket
-- plus the player id. If the backend is down, the login still completes with
-- the default ticket, and the game can resolve the player later.
local wx = require "wx"

local BACKEND = wx.getenv("GAME_BACKEND") or "http://127.0.0.1:7000"
local KEY = wx.getenv("GAME_BACKEND_KEY") or ""

return {
  login = function(req, user, ctx)
    -- Cache the mapping for an hour: most logins are returning players.
    local cache_key = "player:" .. (user.unionid or user.openid)
    local player = wx.store.get(cache_key)
    if not player then
      local res, err = wx.http.post(BACKEND .. "/players/resolve", {
        unionid = user.unionid, openid = user.openid, appid = user.appid,
        nickname = user.nickname, avatar = user.headimgurl,
      }, { headers = { Authorization = "Bearer " .. KEY }, timeout = 2 })
      if not res or res.status ~= 200 or not res.json or not res.json.player_id then
        wx.log.warn("game backend:", err or (res and res.status))
        return nil  -- the default: return URL + wx_ticket
      end
      player = tostring(res.json.player_id)
      wx.store.set(cache_key, player, 3600)
    end
    return { url = ctx.return_url, params = { player = player } }
  end,
}
