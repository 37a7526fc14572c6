-- Finds, before a script runs, the places where it uses what the curated
-- library (wxgate.script_env) does not give scripts: a global such as io or
-- ffi, a function such as os.getenv or string.dump, require "ffi". It reads
-- the compiled bytecode (jit.util), so a local of the same name is never
-- mistaken for the library; a use written another way (local o = os;
-- o.getenv) is still stopped when it runs.
--
-- lint(fn, unavailable) → nil, or "LINE: NAME" for the first use found,
-- where unavailable = { globals = {name=true}, fields = {lib={field=true}},
-- kept = {lib={field=true}}, modules = {name=true} }.
local util = require "jit.util"
local bit = require "bit"
local band, rshift = bit.band, bit.rshift

-- The opcodes, read off tiny functions compiled by this very VM (pc 0 is
-- the function header).
local function first_op(fn, want)
  for pc = 1, util.funcinfo(fn).bytecodes - 1 do
    local ins = util.funcbc(fn, pc)
    if ins and want(ins) then return band(ins, 0xff) end
  end
end
local gfn = function() return os end
local GGET = first_op(gfn, function(ins)
  local ok, k = pcall(util.funck, gfn, -(rshift(ins, 16) + 1))
  return ok and k == "os"
end)
local function is_kstr(ins, fn)
  local ok, k = pcall(util.funck, fn, -(rshift(ins, 16) + 1))
  return ok and k == "x"
end
local kfn = function() return "x" end
local KSTR = first_op(kfn, function(ins) return is_kstr(ins, kfn) end)
local tfn = function(t) return t.getenv end
local TGETS = first_op(tfn, function(ins)
  local ok, k = pcall(util.funck, tfn, -(band(rshift(ins, 16), 0xff) + 1))
  return ok and k == "getenv"
end)

local function kstr(fn, idx)
  local ok, k = pcall(util.funck, fn, -(idx + 1))
  if ok and type(k) == "string" then return k end
end

local function scan(fn, u)
  local info = util.funcinfo(fn)
  for pc = 0, info.bytecodes - 1 do
    local ins = util.funcbc(fn, pc)
    if ins and band(ins, 0xff) == GGET then
      local name = kstr(fn, rshift(ins, 16))
      local line = util.funcinfo(fn, pc).currentline
      local nxt = util.funcbc(fn, pc + 1)
      local op, a = nxt and band(nxt, 0xff), band(rshift(ins, 8), 0xff)
      -- name.field: GGET into register a, then TGETS from it.
      local field = op == TGETS and rshift(nxt, 24) == a and kstr(fn, band(rshift(nxt, 16), 0xff))
      if name and u.globals[name] then
        return line, field and name .. "." .. field or name
      end
      if name and nxt then
        if field and u.kept[name] then
          if u.fields[name] and u.fields[name][field] and not u.kept[name][field] then
            return line, name .. "." .. field
          end
        elseif op == KSTR and name == "require" then
          local mod = kstr(fn, rshift(nxt, 16))
          if mod and (u.modules[mod] or mod:find("^jit%.") or mod:find("^ffi%.")) then
            return line, "require \"" .. mod .. "\""
          end
        end
      end
    end
  end
  for i = 1, info.gcconsts or 0 do
    local ok, k = pcall(util.funck, fn, -i)
    if ok and type(k) == "proto" then
      local line, name = scan(k, u)
      if line then return line, name end
    end
  end
end

return function(fn, unavailable)
  if not (GGET and KSTR and TGETS) then return nil end -- an unknown VM: run-time checks only
  local line, name = scan(fn, unavailable)
  if line then return tostring(line) .. ": " .. name end
end
