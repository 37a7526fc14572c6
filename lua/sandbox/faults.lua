-- sandbox.faults: injected failures. A fault sits on one endpoint (or on
-- "*", every endpoint) in the control record and fires on the next N calls
-- (count), on a fraction of calls (fraction), or both (a fraction of calls
-- until N have fired), or on every call when neither is given. Kinds:
--   latency   wait `delay` seconds, then answer normally
--   500, 502… answer with that HTTP status and an HTML body
--   nonjson   HTTP 200 with an HTML body where JSON was expected
--   close     send a status line, headers and half the body, then close
--   errcode   HTTP 200 with {"errcode":N,"errmsg":"…, rid: …"}
-- `delay` also applies before any other kind. Each fault has an id so that
-- the count of a replaced fault does not carry over.
local wx = require "wx"
local state = require "sandbox.state"
local pages = require "sandbox.pages"

local tonumber, tostring, random = tonumber, tostring, math.random
local format = string.format

local _M = {}

local KINDS = { latency = true, nonjson = true, close = true, errcode = true }

-- Checks control-API parameters; returns a fault table or nil, message.
function _M.parse(args)
  local kind = args.type or args.kind
  if not kind or kind == "" then return nil, "type is required" end
  local status = tonumber(kind)
  if not KINDS[kind] and not (status and status >= 400 and status <= 599 and status % 1 == 0) then
    return nil, "type must be latency, nonjson, close, errcode or an HTTP status 400-599"
  end
  local f = { id = wx.random(6, "hex"), type = kind, status = status }
  if args.count and args.count ~= "" then
    f.count = tonumber(args.count)
    if not f.count or f.count < 1 or f.count % 1 ~= 0 then
      return nil, "count must be a whole number >= 1"
    end
  end
  if args.fraction and args.fraction ~= "" then
    f.fraction = tonumber(args.fraction)
    if not f.fraction or f.fraction <= 0 or f.fraction > 1 then
      return nil, "fraction must be in (0, 1]"
    end
  end
  local delay = args.delay or args.seconds
  if delay and delay ~= "" then
    f.delay = tonumber(delay)
    if not f.delay or f.delay < 0 or f.delay > 60 then
      return nil, "delay must be from 0 to 60 seconds"
    end
  end
  if kind == "latency" and not f.delay then return nil, "latency needs delay=SECONDS" end
  if kind == "errcode" then
    f.errcode = tonumber(args.errcode)
    if not f.errcode or f.errcode % 1 ~= 0 then return nil, "errcode needs errcode=N" end
    if args.errmsg and args.errmsg ~= "" then f.errmsg = args.errmsg end
  end
  return f
end

local function fires(ctx, endpoint, f)
  if f.fraction and random() >= f.fraction then return false end
  if f.count then
    local n = wx.store.incr(state.key(ctx, "fc", f.id), 1, 86400)
    if not n or n > f.count then return false end
  end
  return true
end

-- How many times a counted fault has fired.
function _M.fired(ctx, f)
  if not f.count then return nil end
  return math.min(f.count, tonumber(wx.store.get(state.key(ctx, "fc", f.id))) or 0)
end

local function close_bytes(api)
  local body = api and '{"access_token":"ACCESS_TOKEN_CUT_OFF_IN_THE_MIDDLE","expires_in":7200,'
    .. '"refresh_token":"REFRESH_TOKEN","openid":"OPENID","scope":"snsapi_userinfo"}'
    or "<!DOCTYPE html><html><body>" .. string.rep("微信", 40) .. "</body></html>"
  local half = body:sub(1, math.floor(#body / 2))
  return "HTTP/1.1 200 OK\r\n"
    .. (api and "Content-Type: application/json; encoding=utf-8\r\n"
             or "Content-Type: text/html; charset=utf-8\r\n")
    .. "Content-Length: " .. #body .. "\r\nConnection: close\r\n\r\n" .. half
end

-- Runs the endpoint's fault if one fires: returns nil to answer normally
-- (possibly after a delay) or status, body, headers. api: a JSON endpoint.
function _M.apply(ctx, endpoint, api)
  local faults = ctx.ctl.faults
  local f = faults[endpoint] or faults["*"]
  if not f or not fires(ctx, endpoint, f) then return nil end
  state.count(ctx, endpoint, "f")
  if f.delay and f.delay > 0 then wx.sleep(f.delay) end
  local kind = f.type
  if kind == "latency" then return nil end
  state.count(ctx, endpoint, "e")
  if kind == "close" then
    return 0, close_bytes(api)
  elseif kind == "nonjson" then
    return 200, "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad "
      .. "Gateway</h1></center><hr><center>stgw</center></body></html>",
      { ["Content-Type"] = "text/html" }
  elseif kind == "errcode" then
    ctx.endpoint = nil -- already counted as an error
    if not api then
      return 200, pages.oops(tostring(f.errcode), f.errmsg or state.ERRMSG[f.errcode] or "error"),
        { ["Content-Type"] = "text/html; charset=utf-8", ["X-Sandbox-Error"] = tostring(f.errcode) }
    end
    return state.err(ctx, f.errcode, f.errmsg)
  end
  local status = f.status or 500
  return status, format("<html><head><title>%d</title></head><body><center><h1>%d</h1></center>"
    .. "<hr><center>stgw</center></body></html>", status, status),
    { ["Content-Type"] = "text/html" }
end

return _M
