-- The wx API for scripts: require "wx".
-- C parts (wx.core) do the I/O on the worker's event loop; this module adds
-- the checks and conveniences that are plain logic. Every async function
-- refuses to run where the coroutine cannot yield (a table.sort comparator,
-- a gsub callback, a metamethod called from C) with a clear error instead of
-- leaving an orphaned call behind.
local core = require "wx.core"
local cjson = require "cjson"
local url = require "wx.url"
local sign = require "wx.sign"

local isyieldable = coroutine.isyieldable
local error, type = error, type

local function async(name, fn)
  return function(...)
    if not isyieldable() then
      error(name .. " cannot wait here: it was called from inside a C function "
        .. "(such as a table.sort comparator or a string.gsub callback); call it "
        .. "outside that function", 2)
    end
    return fn(...)
  end
end

local wx = {}

wx.json = cjson.new()
wx.url = url
wx.sign = sign
wx.now = core.now
wx.getenv = core.getenv
wx.file = core.file
wx.random = core.random
wx.sleep = async("wx.sleep", core.sleep)
wx.jssdk = async("wx.jssdk", core.jssdk)

local log = core.log
wx.log = setmetatable({
  debug = function(...) return log("debug", ...) end,
  info = function(...) return log("info", ...) end,
  warn = function(...) return log("warn", ...) end,
  error = function(...) return log("error", ...) end,
}, { __call = function(_, ...) return log("info", ...) end })

local request = async("wx.http.request", core.http.request)
local http = { request = request }
function http.get(u, opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("wx.http.get: opts must be a table", 2) end
  opts.method, opts.url = "GET", u
  return request(opts)
end
function http.post(u, body, opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("wx.http.post: opts must be a table", 2) end
  opts.method, opts.url = "POST", u
  if type(body) == "table" then
    opts.body = cjson.encode(body)
    opts.headers = opts.headers or {}
    opts.headers["Content-Type"] = opts.headers["Content-Type"] or "application/json"
  else
    opts.body = body
  end
  return request(opts)
end
wx.http = http

local store = {}
for _, name in ipairs { "get", "set", "add", "incr", "del" } do
  store[name] = async("wx.store." .. name, core.store[name])
end
wx.store = store

-- wx.redirect(url[, status]) → status, body, headers for a route.
function wx.redirect(to, status)
  if type(to) ~= "string" or to:find("[\r\n]") then
    error("wx.redirect: url must be a string without CR or LF", 2)
  end
  return status or 302, "", { Location = to }
end

return wx
