-- The environment campaign scripts and routes run in: a curated standard
-- library, as Redis gives its scripts. Nothing in it reaches files,
-- processes, the environment, bytecode or the VM's internals, and nothing in
-- it can catch a spent CPU budget for good.
--
-- Run once per VM by the runtime (core/lua/lua_runtime.c), in the gateway's own
-- trusted environment, with:
--   opts.spent()   true once the running script is over its CPU budget
--   opts.dirs      directories a script's require() may load .lua files from
--   opts.trusted   lua.trusted = true: scripts get the whole library
-- Returns the environment scripts are loaded with, the require they use, and
-- lint(fn): nil, or where the compiled script fn uses something unavailable
-- (wxgate.lint), so that `wxgate check` names it before the script runs.
--
-- Budgets: pcall, xpcall, coroutine.resume and coroutine.wrap are replaced in
-- the whole VM by versions that re-raise "cpu budget exceeded" once the
-- budget is spent, so that no handler, loop or coroutine can swallow it; the
-- error reaches the request's own coroutine, which the runtime ends.
return function(opts)
  local spent = opts.spent
  local error, type, select, setmetatable, setfenv = error, type, select, setmetatable, setfenv
  local tostring, pairs, ipairs, concat = tostring, pairs, ipairs, table.concat
  local raw_load, raw_loadfile, raw_collect = load, loadfile, collectgarbage
  local raw_pcall, raw_xpcall = pcall, xpcall
  local raw_create, raw_resume = coroutine.create, coroutine.resume
  local BUDGET = "cpu budget exceeded"

  local function unless_spent(...)
    if spent() then error(BUDGET, 0) end
    return ...
  end
  function pcall(...) return unless_spent(raw_pcall(...)) end
  function xpcall(...) return unless_spent(raw_xpcall(...)) end
  coroutine.resume = function(...) return unless_spent(raw_resume(...)) end
  local function wrap_result(ok, ...)
    if spent() then error(BUDGET, 0) end
    if not ok then error((...), 0) end
    return ...
  end
  coroutine.wrap = function(f)
    local co = raw_create(f)
    return function(...) return wrap_result(raw_resume(co, ...)) end
  end

  -- string.dump would hand out bytecode, which load refuses anyway.
  string.dump = nil

  if opts.trusted then
    return _G, require, function() return nil end
  end

  local function unavailable(name, hint)
    error(name .. " is not available to scripts" .. (hint or "") .. " (see \"What scripts "
      .. "can use\" in the README; lua.trusted = true lifts this)", 3)
  end
  -- A table that raises a clear error for the names of a library's functions
  -- that scripts do not get.
  local function curated(name, lib, keep)
    local t = {}
    for _, k in ipairs(keep) do t[k] = lib[k] end
    return setmetatable(t, {
      __index = function(_, k)
        if lib[k] ~= nil then unavailable(name .. "." .. tostring(k)) end
      end,
      __newindex = function(_, k) error("cannot change " .. name .. "." .. tostring(k), 2) end,
      __metatable = false,
    })
  end
  setmetatable(string, { __index = function(_, k)
    if k == "dump" then unavailable("string.dump") end
  end, __metatable = false })

  local env = {}
  local KEPT_OS = { "time", "clock", "date", "difftime" }
  local safe_os = curated("os", os, KEPT_OS)
  local safe_debug = curated("debug", debug, { "traceback" })

  -- Text chunks only, loaded into the scripts' environment (or env).
  local function load_text(chunk, chunkname, mode, fenv)
    if type(chunk) == "function" then
      local parts, reader = {}, chunk
      while true do
        local piece = reader()
        if piece == nil or piece == "" then break end
        if type(piece) ~= "string" then error("reader function must return a string", 2) end
        parts[#parts + 1] = piece
      end
      chunk = concat(parts)
      chunkname = chunkname or "=(load)"
    elseif type(chunk) ~= "string" then
      error("bad argument #1 to 'load' (string or function expected)", 2)
    end
    if (mode ~= nil and mode ~= "t") or chunk:byte(1) == 27 then
      return nil, "binary chunks (bytecode) cannot be loaded: only text"
    end
    if fenv ~= nil and type(fenv) ~= "table" then
      error("bad argument #4 to 'load' (table expected)", 2)
    end
    local f, err = raw_load(chunk, chunkname or chunk, "t")
    if not f then return nil, err end
    return setfenv(f, fenv or env)
  end

  -- Globals scripts do not get, with a hint at what to use instead.
  local UNAVAILABLE = {
    io = ": use wx.file at load time", ffi = "", jit = "", package = "", dofile = "",
    loadfile = "", getfenv = "", setfenv = "", module = "", newproxy = "", gcinfo = "",
    print = ": use wx.log",
  }
  local lint = require "wxgate.lint"
  local function set_of(list)
    local t = {}
    for _, k in ipairs(list) do t[k] = true end
    return t
  end
  local function keys_of(lib)
    local t = {}
    for k in pairs(lib) do t[k] = true end
    return t
  end
  local string_kept = keys_of(string)
  string_kept.dump = nil
  local uses = {
    globals = UNAVAILABLE,
    fields = { os = keys_of(os), debug = keys_of(debug), string = { dump = true } },
    kept = { os = set_of(KEPT_OS), debug = { traceback = true }, string = string_kept },
    modules = { io = true, ffi = true, jit = true, package = true },
  }
  -- "N: io.open is not available to scripts (...)" (N: the line), or nil.
  local function lint_fn(fn)
    local where = lint(fn, uses)
    if where then
      return where .. " is not available to scripts (see \"What scripts can use\" in the "
        .. "README; lua.trusted = true lifts this)"
    end
  end

  local PUBLIC = { wx = true, ["wx.url"] = true, ["wx.sign"] = true, cjson = true,
                   ["cjson.safe"] = true }
  local LIBS = { string = string, table = table, math = math, coroutine = coroutine,
                 bit = bit, os = safe_os, debug = safe_debug }
  local loaded, loading = {}, {}
  local dirs = opts.dirs or {}
  -- require: the wx API and cjson, the curated libraries, and .lua files in
  -- the scripts' own directories (text only, in this environment).
  local function script_require(name)
    if type(name) ~= "string" then
      error("bad argument #1 to 'require' (string expected, got " .. type(name) .. ")", 2)
    end
    if loaded[name] ~= nil then return loaded[name] end
    if LIBS[name] then return LIBS[name] end
    if UNAVAILABLE[name] or name:find("^jit%.") or name:find("^ffi%.") then
      unavailable(name)
    end
    if PUBLIC[name] then
      loaded[name] = require(name)
      return loaded[name]
    end
    if not name:find("^[%w_]+[%w_.]*$") or name:find("..", 1, true) then
      error("module '" .. name .. "' not found: a module name is letters, digits, _ and .", 2)
    end
    if loading[name] then error("module '" .. name .. "' requires itself", 2) end
    local tried = {}
    for _, dir in ipairs(dirs) do
      local path = dir .. "/" .. name:gsub("%.", "/") .. ".lua"
      local f, err = raw_loadfile(path, "t")
      if f then
        local problem = lint_fn(f)
        if problem then error(path .. ":" .. problem, 2) end
        setfenv(f, env)
        loading[name] = true
        local ok, res = raw_pcall(f, name)
        loading[name] = nil
        if not ok then error(res, 0) end
        if res == nil then res = true end
        loaded[name] = res
        return res
      end
      if not err:find("No such file", 1, true) and not err:find("cannot open", 1, true) then
        error(err, 2)
      end
      tried[#tried + 1] = path
    end
    error("module '" .. name .. "' is not available to scripts: not a wx module and not in "
      .. (#tried > 0 and concat(tried, ", ") or "the scripts' directories"), 2)
  end

  local function safe_collectgarbage(what)
    if what == nil or what == "collect" then return raw_collect("collect") end
    if what == "count" then return raw_collect("count") end
    error("collectgarbage(\"" .. tostring(what) .. "\") is not available to scripts: only "
      .. "\"count\" and \"collect\"", 2)
  end

  for _, k in ipairs { "assert", "error", "ipairs", "next", "pairs", "rawequal", "rawget",
                       "rawset", "select", "setmetatable", "getmetatable", "tonumber",
                       "tostring", "type", "unpack", "_VERSION" } do
    env[k] = _G[k]
  end
  env.pcall, env.xpcall = pcall, xpcall
  env.load = load_text
  env.loadstring = function(s, chunkname) return load_text(s, chunkname) end
  env.require = script_require
  env.collectgarbage = safe_collectgarbage
  for name, lib in pairs(LIBS) do env[name] = lib end
  env._G = env

  setmetatable(env, {
    __index = function(_, k)
      if UNAVAILABLE[k] then unavailable(k, UNAVAILABLE[k]) end
    end,
    __newindex = function(_, k)
      error("assignment to global variable '" .. tostring(k) .. "' refused: declare it local", 2)
    end,
    __metatable = false,
  })
  return env, script_require, lint_fn
end
