-- wxgate example config: a Lua file that returns a table.
-- Every key but listen is optional; `wxgate check -c examples/wxgate.lua`
-- validates it and loads every script without starting anything.
return {
  listen = "127.0.0.1:8080",
  -- workers = 2,                       -- default: one per core
  -- public_url = "https://login.example.com",
  -- store = "memory",                  -- or "redis://127.0.0.1:6379/0",
  --   "redis-sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/0",
  --   "redis-cluster://127.0.0.1:7000,127.0.0.1:7001/"
  log_level = "info",

  limits = {
    max_header_size = 16384,            -- request line + headers, bytes
    max_uri_length = 4096,
    max_body_size = 65536,
    max_connections = 4096,             -- per worker
    header_timeout_ms = 10000,          -- the whole request head must arrive in time
    keepalive_timeout_ms = 30000,
    drain_timeout_ms = 10000,           -- SIGTERM waits this long for in-flight requests
  },

  lua = {
    cpu_budget_ms = 200,                -- per run of a script between two waits
    memory_mb = 64,                     -- per worker VM
  },

  routes = {
    ["/hello"] = "hello.lua",           -- relative to this file
  },
}
