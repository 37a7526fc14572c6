-- One player across every WeChat login of a campaign: the H5 page inside
-- WeChat (user.kind "web"), the desktop site's QR login ("pc") and the Mini
-- Program or Mini Game ("miniprogram"). Each app has its own openid for the
-- same person; apps bound to one Open Platform account share the unionid,
-- so the account is keyed by unionid (by app and openid when there is none:
-- such an app cannot be joined to the others).
--
-- The account id goes to the page as ?account= next to the one-time ticket
-- (web and PC), or into the Mini Program's JSON answer next to "ticket".
local wx = require "wx"

local YEAR = 365 * 86400

-- The account of this person, created on first sight. wx.store.add is
-- atomic across workers and instances: two first logins at once agree.
local function account_of(user)
  local who = user.unionid and ("u:" .. user.unionid) or ("o:" .. user.appid .. ":" .. user.openid)
  local key = "account:" .. who
  local id = wx.store.get(key)
  if id then return id end
  wx.store.add(key, "A" .. wx.random(8, "hex"), YEAR)
  return wx.store.get(key)
end

return {
  login = function(req, user, ctx)
    local account = account_of(user)
    if not account then return nil end -- the store is down: the default ticket still works
    -- which kinds of login this account has used, for the campaign's reports
    wx.store.set("account-kinds:" .. account .. ":" .. user.kind, "1", YEAR)
    if user.kind == "miniprogram" then
      return { params = { account = account } }   -- {"ticket": ..., "account": ...}
    end
    return { url = ctx.return_url, params = { account = account } }
  end,
}
