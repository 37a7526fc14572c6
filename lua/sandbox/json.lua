-- sandbox.json: writes WeChat's JSON replies with their fields in WeChat's
-- documented order (cjson's own encoder orders keys by hash), and with an
-- empty list written as [] (cjson writes an empty table as {}). Values are
-- encoded by cjson, so strings are escaped the way WeChat's are ("/" → "\/").
local cjson = require("cjson").new()

local concat, type, ipairs, pairs, error, tostring, tonumber =
  table.concat, type, ipairs, pairs, error, tostring, tonumber
local floor = math.floor
local encode = cjson.encode

local _M = {}

-- A marker for "a JSON array", so that an empty one is still [].
local array_mt = { __name = "sandbox.json.array" }
function _M.array(t)
  return setmetatable(t or {}, array_mt)
end

-- A marker for JSON text written as is (an object() nested in another).
local raw_mt = { __name = "sandbox.json.raw" }
function _M.raw(text)
  return setmetatable({ text }, raw_mt)
end

local value

local function integer(n)
  if n == floor(n) and n > -2^53 and n < 2^53 then
    return string.format("%d", n)
  end
  return encode(n)
end

value = function(v)
  local t = type(v)
  if t == "string" or t == "boolean" then
    return encode(v)
  elseif t == "number" then
    return integer(v)
  elseif t == "table" then
    if getmetatable(v) == raw_mt then return v[1] end
    if getmetatable(v) == array_mt or v[1] ~= nil then
      local out = {}
      for i, x in ipairs(v) do out[i] = value(x) end
      return "[" .. concat(out, ",") .. "]"
    end
    -- a plain table: an object with its keys sorted (deterministic output)
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    local out = {}
    for i, k in ipairs(keys) do
      local x = v[k]
      if x == nil then x = v[tonumber(k)] end
      out[i] = encode(k) .. ":" .. value(x)
    end
    return "{" .. concat(out, ",") .. "}"
  end
  error("sandbox.json: cannot encode a " .. t, 3)
end

-- object({{"name", value}, ...}): fields in the given order; a nil value
-- leaves its field out (so optional fields are written inline).
function _M.object(fields)
  local out = {}
  for i = 1, #fields do
    local kv = fields[i]
    if kv[2] ~= nil then
      out[#out + 1] = encode(tostring(kv[1])) .. ":" .. value(kv[2])
    end
  end
  return "{" .. concat(out, ",") .. "}"
end

_M.encode = function(v) return value(v) end
_M.decode = cjson.decode

return _M
