-- A static page with no backend: the gateway hands it the user in signed
-- parameters it can check with JavaScript-free tools (an edge function, a
-- CDN rule) or a short-lived JWT. No ticket: there is no backend to redeem it.
local wx = require "wx"

-- The page and its edge share this key; keep it out of the script.
local KEY = wx.getenv("STATIC_PAGE_KEY") or "change-me-0123456789abcdef"

return {
  login = function(req, user, ctx)
    -- The page chooses the form through its own return URL: ...?auth=jwt
    local page = wx.url.parse(ctx.return_url)
    if page and page.args.auth == "jwt" then
      return {
        url = ctx.return_url, ticket = false,
        params = { jwt = wx.sign.jwt_encode({ sub = user.openid, nick = user.nickname,
                                              uid = user.unionid }, KEY, { exp_in = 600 }) },
      }
    end
    local params = { openid = user.openid, nick = user.nickname or "",
                     ts = tostring(math.floor(wx.now())) }
    params.sig = wx.sign.params_sign(params, KEY)  -- HMAC-SHA256 of the sorted query
    return { url = ctx.return_url, ticket = false, params = params }
  end,
  denied = function(req, ctx)
    return ctx.return_url  -- no wx_denied flag: the page shows its anonymous view
  end,
}
