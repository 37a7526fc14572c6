-- A route: wxgate maps a path prefix to this file (see examples/wxgate.lua).
-- It gets the request and returns status, body[, headers], Rack-style.
local wx = require "wx"

return function(req)
  local visits = wx.store.incr("hello:visits", 1, 3600)
  return 200, wx.json.encode({
    hello = req.query.name or "world",
    visits = visits,
    request_id = req.id,
  }), { ["Content-Type"] = "application/json" }
end
