-- Redirect rules: where a user lands after login depends on the time window
-- of the campaign and on a stable A/B bucket. Copy, change the table, reload
-- (kill -HUP): no recompiling.
local wx = require "wx"

-- Each rule applies from `from` (inclusive) to `to` (exclusive), unix seconds.
-- `pages` lists the A/B variants with their weights.
local RULES = {
  { from = 0, to = 1893456000,   -- until 2030-01-01
    pages = { { url = "https://h5.example.com/spring/a.html", weight = 50 },
              { url = "https://h5.example.com/spring/b.html", weight = 50 } } },
}
local AFTER = "https://h5.example.com/spring/ended.html"

-- A stable bucket in [0, 100) per user and campaign: the same user always
-- sees the same variant, and variants are independent across campaigns.
local function bucket(user, campaign)
  local h = wx.sign.hmac_sha256_hex("ab-salt:" .. campaign, user.unionid or user.openid)
  return tonumber(h:sub(1, 8), 16) % 100
end

local function pick(pages, b)
  local total = 0
  for _, p in ipairs(pages) do total = total + p.weight end
  local at = b * total / 100
  for _, p in ipairs(pages) do
    if at < p.weight then return p.url end
    at = at - p.weight
  end
  return pages[#pages].url
end

return {
  login = function(req, user, ctx)
    local now = wx.now()
    for _, rule in ipairs(RULES) do
      if now >= rule.from and now < rule.to then
        local url = pick(rule.pages, bucket(user, ctx.campaign))
        -- Keep the user's own query (e.g. a share code) on the landing page.
        local q = wx.url.parse(ctx.return_url)
        if q and q.query then url = url .. "?" .. q.query end
        return url        -- the gateway adds the one-time wx_ticket
      end
    end
    return { url = AFTER, ticket = false }
  end,
}
